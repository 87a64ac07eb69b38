use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Holder {
    value: &'static u64,
}

fn main() {}
