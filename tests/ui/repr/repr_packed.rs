use zeroipc::ShmLayout;

#[repr(C, packed)]
#[derive(Clone, Copy, ShmLayout)]
struct Packed {
    tag: u8,
    value: u32,
}

fn main() {}
