use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Flags {
    ready: bool,
    _pad: [u8; 3],
    count: u32,
}

fn main() {}
