//! Every scalar type, with explicit padding where alignment needs it.
use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct AllScalars {
    a: u8,
    b: i8,
    c: u16,
    d: i16,
    _pad: [u8; 2],
    e: u32,
    f: i32,
    g: f32,
    _pad2: [u8; 4],
    h: u64,
    i: i64,
    j: f64,
}

fn main() {
    assert_eq!(AllScalars::LAYOUT.size(), 48);
    assert_eq!(AllScalars::LAYOUT.align(), 8);
}
