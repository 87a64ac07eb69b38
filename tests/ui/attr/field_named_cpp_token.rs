use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Flags {
    xor: u32,
    uint32_t: u32,
}

fn main() {}
