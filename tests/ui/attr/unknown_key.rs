use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
#[shm(name = "Other")]
struct Point {
    x: f64,
}

fn main() {}
