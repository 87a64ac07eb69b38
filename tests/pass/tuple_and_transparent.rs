//! Tuple structs, `repr(transparent)`, `align(8)` without padding and renames.
use zeroipc::{LayoutKind, ShmLayout};

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Pair(u32, f32);

#[repr(transparent)]
#[derive(Clone, Copy, ShmLayout)]
struct Meters(f64);

#[repr(C, align(8))]
#[derive(Clone, Copy, ShmLayout)]
#[shm(rename = "Span")]
struct Interval {
    #[shm(rename = "lo")]
    start: Meters,
    end: Meters,
    counts: Pair,
}

fn main() {
    let LayoutKind::Struct(pair) = Pair::LAYOUT.kind() else { panic!() };
    assert_eq!(pair.fields()[1].name(), "f1");
    assert_eq!(pair.fields()[1].offset(), 4);
    assert_eq!(Meters::LAYOUT.size(), 8);
    let LayoutKind::Struct(span) = Interval::LAYOUT.kind() else { panic!() };
    assert_eq!(span.name(), "Span");
    assert_eq!(span.fields()[0].name(), "lo");
    assert_eq!(Interval::LAYOUT.size(), 24);
}
