use zeroipc::ShmLayout;

// `align(8)` does not excuse the 3 bytes between `a` and `b`.
#[repr(C, align(8))]
#[derive(Clone, Copy, ShmLayout)]
struct Mixed {
    a: u8,
    b: u32,
    c: u64,
}

fn main() {}
