use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Reading {
    sensor: u8,
    timestamp: u32,
}

fn main() {}
