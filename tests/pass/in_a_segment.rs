//! A derived type used in an `Array`, with doc comments carried into the descriptor.
use zeroipc::{Array, LayoutKind, Segment, ShmLayout};

/// A sensor sample.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, ShmLayout)]
struct SensorReading {
    /// Degrees Celsius.
    temperature: f32,
    humidity: f32,
    timestamp: u64,
}

fn main() {
    let LayoutKind::Struct(s) = SensorReading::LAYOUT.kind() else { panic!() };
    assert_eq!(s.doc(), "A sensor sample.");
    assert_eq!(s.fields()[0].doc(), "Degrees Celsius.");
    let name = format!("/zipc-trybuild-pass-{}", std::process::id());
    let seg = zeroipc::SegmentOptions::new().unlink_on_drop(true).create(&name, 1 << 16).unwrap();
    let a = Array::<SensorReading>::create(&seg, "r", 2).unwrap();
    let r = SensorReading { temperature: 1.5, humidity: 2.5, timestamp: 3 };
    a.set(1, r).unwrap();
    assert_eq!(Array::<SensorReading>::open(&seg, "r").unwrap().get(1).unwrap(), r);
    drop(a);
    let _ = Segment::unlink(&name);
}
