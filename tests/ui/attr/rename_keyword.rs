use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
#[shm(rename = "class")]
struct Klass {
    x: f64,
}

fn main() {}
