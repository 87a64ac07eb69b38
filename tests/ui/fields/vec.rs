use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Reading {
    time: u64,
    value: Vec<u8>,
}

fn main() {}
