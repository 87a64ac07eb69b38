use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Callback {
    f: fn(u32) -> u32,
}

fn main() {}
