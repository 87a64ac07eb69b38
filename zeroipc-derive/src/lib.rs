//! `#[derive(ShmLayout)]` for `zeroipc`.
//!
//! This crate will hold the derive that checks a `#[repr(C)]` struct for implicit padding,
//! alignment over 8 and fields that cannot be shared, and emits its static layout descriptor.
//! Use it through `zeroipc`, which re-exports it. Until it lands, `ShmLayout` is implemented by
//! `zeroipc` for the fixed-width integers, `f32`, `f64` and arrays of them.
