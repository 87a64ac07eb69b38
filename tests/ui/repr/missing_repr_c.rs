use zeroipc::ShmLayout;

#[derive(Clone, Copy, ShmLayout)]
struct Point {
    x: f64,
    y: f64,
}

fn main() {}
