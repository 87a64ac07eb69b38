//! Shared types used by the multi-process and cross-language tests (both sides need the same
//! definitions).

use zeroipc::ShmLayout;

/// A sensor sample: 16 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, ShmLayout)]
pub struct SensorReading {
    /// Degrees Celsius.
    pub temperature: f32,
    /// Relative humidity in percent.
    pub humidity: f32,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
}

/// A different record of another size (24 bytes), for type-mismatch tests.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, ShmLayout)]
pub struct TaggedReading {
    /// The reading.
    pub reading: SensorReading,
    /// Which sensor.
    pub sensor: u32,
    /// Explicit padding.
    pub _pad: [u8; 4],
}

impl SensorReading {
    /// The `i`-th reading of a deterministic series.
    pub fn nth(i: usize) -> Self {
        Self {
            temperature: 20.0 + i as f32 * 0.5,
            humidity: 40.0 + i as f32 * 0.25,
            timestamp: 1_700_000_000_000 + i as u64 * 1000,
        }
    }
}

/// A point in space.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, ShmLayout)]
pub struct Vec3 {
    /// Metres east.
    pub x: f32,
    /// Metres north.
    pub y: f32,
    /// Metres up.
    pub z: f32,
}

/// A record with a nested struct, fixed arrays and every scalar type: the cross-language tests'
/// workhorse (80 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, ShmLayout)]
pub struct Telemetry {
    /// Where the sample was taken.
    pub position: Vec3,
    /// Status bits.
    pub flags: u8,
    /// Signed level.
    pub level: i8,
    /// Channel number.
    pub channel: u16,
    /// Signal quality.
    pub quality: i16,
    /// Explicit padding.
    pub _pad: [u8; 2],
    /// Samples seen.
    pub count: u32,
    /// Change since the last record.
    pub delta: i32,
    /// Gain factor.
    pub gain: f32,
    /// Device serial number.
    pub serial: u64,
    /// Clock offset in nanoseconds.
    pub offset: i64,
    /// The measured value.
    pub value: f64,
    /// Raw samples.
    pub samples: [f32; 4],
    /// NUL-padded ASCII label.
    pub label: [u8; 8],
}

impl Telemetry {
    /// The `i`-th record as Rust writes it; the Python and C interop programs check exactly
    /// these values.
    pub fn nth(i: u32) -> Self {
        let f = i as f32;
        let mut label = [0u8; 8];
        let text = format!("rec{i}");
        label[..text.len()].copy_from_slice(text.as_bytes());
        Self {
            position: Vec3 {
                x: f,
                y: f + 0.5,
                z: -f,
            },
            flags: (i + 1) as u8,
            level: -(i as i8),
            channel: 1000 + i as u16,
            quality: -100 * i as i16,
            _pad: [0; 2],
            count: 7 * i,
            delta: -3 * i as i32,
            gain: 0.25 * f,
            serial: (1 << 40) + u64::from(i),
            offset: -(1 << 33) - i64::from(i),
            value: 1.5 * f64::from(i),
            samples: [0.5 * f, 0.5 * f + 0.5, 0.5 * f + 1.0, 0.5 * f + 1.5],
            label,
        }
    }

    /// Record `i` after a peer in another language updated it, tagging the label with `who`
    /// (`"py"` or `"c"`): `count = 1000 + i`, `value = -2.5 i`, `samples[j] = 10 i + j`,
    /// `position.z = 100 + i`, `label = who + i`.
    pub fn updated(i: u32, who: &str) -> Self {
        let mut r = Self::nth(i);
        let f = i as f32;
        r.count = 1000 + i;
        r.value = -2.5 * f64::from(i);
        r.samples = [10.0 * f, 10.0 * f + 1.0, 10.0 * f + 2.0, 10.0 * f + 3.0];
        r.position.z = 100.0 + f;
        let mut label = [0u8; 8];
        let text = format!("{who}{i}");
        label[..text.len()].copy_from_slice(text.as_bytes());
        r.label = label;
        r
    }
}

/// TESTPLAN F4's 64-byte struct: a hand-written packed NumPy dtype of it is 60 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, ShmLayout)]
pub struct Padded64 {
    /// An identifier.
    pub id: i32,
    /// Three coordinates.
    pub xyz: [f32; 3],
    /// A value.
    pub value: f64,
    /// A name.
    pub name: [u8; 32],
    /// A flag.
    pub flag: u8,
    /// Reserved bytes.
    pub reserved: [u8; 3],
    /// Explicit trailing padding.
    pub _pad: [u8; 4],
}
