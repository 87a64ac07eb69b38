//! Shared types used by the multi-process tests (both sides need the same definitions).

use zeroipc::ShmLayout;

/// The record of issue examples: 16 bytes, no padding.
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
