use zeroipc::ShmLayout;

#[derive(Clone, Copy, ShmLayout)]
#[shm(label = "x")]
struct Everything {
    ready: bool,
    index: usize,
    next: *const u8,
    int: u32,
}

fn main() {}
