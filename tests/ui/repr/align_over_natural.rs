use zeroipc::ShmLayout;

#[repr(C, align(8))]
#[derive(Clone, Copy, ShmLayout)]
struct OverAligned {
    a: u32,
    _pad: [u8; 4],
}

fn main() {}
