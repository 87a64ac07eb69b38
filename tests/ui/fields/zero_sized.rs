use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Marker {
    value: u64,
    end: [u8; 0],
}

fn main() {}
