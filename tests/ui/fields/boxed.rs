use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Reading {
    time: u64,
    value: Box<u64>,
}

fn main() {}
