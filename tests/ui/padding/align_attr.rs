use zeroipc::ShmLayout;

#[repr(C, align(8))]
#[derive(Clone, Copy, ShmLayout)]
struct Small {
    a: u32,
}

fn main() {}
