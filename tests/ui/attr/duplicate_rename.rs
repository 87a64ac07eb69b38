use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Point {
    #[shm(rename = "px", rename = "x_pos")]
    x: f64,
}

fn main() {}
