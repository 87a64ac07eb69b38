use zeroipc::ShmLayout;

#[repr(C, align(16))]
#[derive(Clone, Copy, ShmLayout)]
struct Wide {
    a: u64,
    b: u64,
}

fn main() {}
