use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Reading {
    time: u64,
    value: Option<u32>,
}

fn main() {}
