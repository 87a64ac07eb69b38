use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Mask {
    bits: [bool; 8],
}

fn main() {}
