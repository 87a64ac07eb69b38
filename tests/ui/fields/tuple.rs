use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Pair {
    both: (u32, u32),
}

fn main() {}
