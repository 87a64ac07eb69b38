use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Point {
    #[shm(rename = "3d-x")]
    x: f64,
}

fn main() {}
