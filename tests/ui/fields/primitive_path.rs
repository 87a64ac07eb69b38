use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Flags {
    set: core::primitive::bool,
}

fn main() {}
