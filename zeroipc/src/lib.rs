//! Typed, cross-language, zero-copy POSIX shared memory.
//!
//! `zeroipc` places arrays, queues and synchronisation primitives of plain-old-data types in a
//! named shared-memory segment (`/dev/shm/NAME`) laid out in the ZeroIPC format v2, byte for
//! byte, so that the C++, C, Python and Go ZeroIPC implementations, and NumPy code using the
//! bindings `zeroipc-codegen` writes, read and write the very same bytes.
//!
//! ```no_run
//! use zeroipc::{Array, Segment};
//!
//! // Process A
//! let seg = Segment::create("/sensors", 1 << 20)?;
//! let temps = Array::<f64>::create(&seg, "temperatures", 1000)?;
//! temps.set(0, 23.5)?;
//!
//! // Process B
//! let seg = Segment::open("/sensors")?;
//! let temps = Array::<f64>::open(&seg, "temperatures")?;
//! assert_eq!(temps.get(0), Some(23.5));
//! # Ok::<(), zeroipc::Error>(())
//! ```
//!
//! A segment is untrusted input: every header field, table entry and structure header read from
//! it is validated before use, and a malformed segment produces an [`Error`], never a panic or an
//! access outside the mapping. See [`Segment`] for how this crate differs from the other
//! implementations where they are unsafe, and [`Segment::inspect`] for a full report of a
//! segment's defects.
//!
//! Element types implement [`ShmLayout`]: the fixed-width integers, `f32`, `f64`, arrays of
//! them, and `#[repr(C)]` structs with `#[derive(ShmLayout)]`.

// The format is little-endian (FORMAT.md §0) and its 64-bit fields are accessed atomically.
#[cfg(not(all(
    target_endian = "little",
    target_has_atomic = "64",
    target_pointer_width = "64"
)))]
compile_error!("zeroipc supports 64-bit little-endian targets with 64-bit atomics only");

mod algo;
mod array;
mod error;
mod layout;
mod name;
mod queue;
mod raw;
mod segment;
mod stack;
mod structure;
pub mod table;
mod wait;

pub use array::{Array, ArrayFormat, Iter};
pub use error::{EntryDefect, Error, HeaderDefect, Result};
pub use layout::{Field, Layout, LayoutKind, Scalar, ShmLayout, StructLayout};
pub use name::{MAX_ENTRY_NAME_LEN, MAX_SEGMENT_NAME_LEN};
pub use queue::Queue;
pub use segment::{
    DEFAULT_LOCK_TIMEOUT, DEFAULT_MAX_ENTRIES, DEFAULT_MODE, Defect, Report, Segment,
    SegmentOptions,
};
pub use stack::{DEFAULT_STALL_TIMEOUT, PushError, Stack};
pub use table::{Entry, HeaderInfo};
pub use zeroipc_derive::ShmLayout;

/// Paths used by the code `#[derive(ShmLayout)]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::layout::{Field, Layout, Scalar, ShmLayout, StructLayout};
    pub use bytemuck;
    pub use core::mem::{align_of, offset_of, size_of};
}

/// Compiles the README's Rust examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
