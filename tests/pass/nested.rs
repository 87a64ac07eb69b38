//! Nested structs three levels deep, arrays of structs and arrays of arrays.
use zeroipc::{LayoutKind, ShmLayout};

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Vec3 {
    x: f32,
    y: f32,
    z: f32,
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Pose {
    position: Vec3,
    orientation: [f32; 4],
    _pad: [u8; 4],
    stamp: u64,
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Frame {
    poses: [Pose; 3],
    grid: [[u16; 4]; 2],
    id: u64,
}

fn main() {
    assert_eq!(Frame::LAYOUT.size(), std::mem::size_of::<Frame>());
    let LayoutKind::Struct(frame) = Frame::LAYOUT.kind() else { panic!() };
    let LayoutKind::Array { elem, len: 3 } = frame.fields()[0].layout().kind() else { panic!() };
    assert_eq!(elem.type_name(), "Pose");
    assert_eq!(frame.fields()[1].layout().type_name(), "[[u16; 4]; 2]");
    assert_eq!(frame.fields()[2].offset(), std::mem::offset_of!(Frame, id));
}
