use zeroipc::ShmLayout;

// `align(8)` restates the alignment `a` already gives, but leaves 4 bytes after `b`.
#[repr(C, align(8))]
#[derive(Clone, Copy, ShmLayout)]
struct Stamped {
    a: u64,
    b: u32,
}

fn main() {}
