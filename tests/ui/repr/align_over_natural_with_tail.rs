use zeroipc::ShmLayout;

// Over-aligned and so also 4 bytes short at the end: one message, the one that names the fix.
#[repr(C, align(8))]
#[derive(Clone, Copy, ShmLayout)]
struct Widened {
    a: u32,
}

fn main() {}
