use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Counter {
    #[shm(rename = "zeroipc_count")]
    count: u64,
}

fn main() {}
