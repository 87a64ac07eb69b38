use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
union Either {
    a: u32,
    b: f32,
}

fn main() {}
