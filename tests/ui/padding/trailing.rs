use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Sample {
    time: u64,
    channel: u16,
}

fn main() {}
