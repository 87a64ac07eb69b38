use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy)]
struct Plain {
    a: u32,
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Outer {
    plain: Plain,
}

fn main() {}
