//! The types the demo shares between Rust, Python and C.
//!
//! They live in their own library crate because the demo's `build.rs` generates the Python and C
//! bindings from them, and a build script can only use types from its build-dependencies.

use zeroipc::ShmLayout;

/// One measurement from a weather station.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, ShmLayout)]
pub struct Reading {
    /// Station number.
    pub station: u32,
    /// Air temperature in degrees Celsius.
    pub temperature: f32,
    /// Relative humidity in percent.
    pub humidity: f32,
    /// How many consumers have processed the reading.
    pub acknowledged: u32,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Wind in m/s: east, north, up.
    pub wind: [f32; 3],
    /// Explicit padding to the 8-byte alignment.
    pub _pad: [u8; 4],
}
