use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Wrapper<T> {
    value: T,
}

fn main() {}
