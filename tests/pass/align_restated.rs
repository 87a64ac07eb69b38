//! `align(N)` equal to the fields' own alignment, with no padding, is accepted.
use zeroipc::ShmLayout;

#[repr(C, align(8))]
#[derive(Clone, Copy, ShmLayout)]
struct Restated {
    a: u64,
    b: u32,
    c: u32,
}

#[repr(C, align(4))]
#[derive(Clone, Copy, ShmLayout)]
struct Small {
    a: u16,
    b: u16,
    c: u32,
}

fn main() {
    assert_eq!(Restated::LAYOUT.size(), 16);
    assert_eq!(Restated::LAYOUT.align(), 8);
    assert_eq!(size_of::<Restated>(), 16);
    assert_eq!(Small::LAYOUT.size(), 8);
    assert_eq!(Small::LAYOUT.align(), 4);
}
