use zeroipc::ShmLayout;

#[repr(C)]
#[derive(ShmLayout)]
struct Samples {
    values: Vec<f64>,
}

fn main() {}
