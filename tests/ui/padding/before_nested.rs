use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Inner {
    a: u64,
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Outer {
    flag: u32,
    inner: Inner,
}

fn main() {}
