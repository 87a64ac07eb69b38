use zeroipc::ShmLayout;

#[repr(u32)]
#[derive(Clone, Copy, ShmLayout)]
enum Mode {
    Idle,
    Running,
}

fn main() {}
