use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Sample {
    value: f64,
    Sample: u64,
}

fn main() {}
