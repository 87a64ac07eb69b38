//! Typed, cross-language, zero-copy POSIX shared memory.
//!
//! `zeroipc` places structures of plain-old-data types in a named shared-memory segment
//! (`/dev/shm/NAME`) laid out in the ZeroIPC format v2, byte for byte, so that the C++, C, Python
//! and Go ZeroIPC implementations, and NumPy code using the bindings `zeroipc-codegen` writes,
//! read and write the very same bytes.
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
//! assert_eq!(temps.get(0)?, 23.5);
//! # Ok::<(), zeroipc::Error>(())
//! ```
//!
//! # What exists
//!
//! The structures of this release are the containers [`Array`], [`Queue`] (bounded lock-free
//! MPMC) and [`Stack`] (bounded lock-free LIFO), and the synchronisation primitives
//! [`Semaphore`], [`Mutex`], [`Barrier`], [`Latch`], [`Once`], [`RwLock`], [`Event`],
//! [`Monitor`] and [`Signal`]. The format defines more kinds (ring, map, set, pool and the
//! codata kinds); this crate lists
//! them in a segment's table like any entry but does not open them yet.
//!
//! # One result shape for every structure
//!
//! Every structure, present and future, follows the same rules, so that a caller can always tell
//! a busy structure from a broken one and never loses a value:
//!
//! | operation | success | nothing to do | failure |
//! |---|---|---|---|
//! | store a value without waiting (`push`) | `Ok(())` | `Err(PushError::Full(value))` | `Err(PushError::Failed(value, Error))` |
//! | take a value without waiting (`pop`) | `Ok(Some(value))` | `Ok(None)` (empty) | `Err(Error)` |
//! | wait with a deadline (`*_timeout`) | `Ok(..)` | `Err(Error::Timeout)`; a value to store comes back in `PushError::Failed` | `Err(Error)` |
//! | address an element (`Array::get`, `set`, atomics) | `Ok(..)` | — | `Err(Error::IndexOutOfBounds)` and others |
//! | take a lock (`Mutex::lock`, `lock_timeout`) | `Ok(guard)` | `Ok(None)` from `try_lock` | `Err(LockError::Failed(Error))`; a dead holder's lock comes with `Err(LockError::OwnerDied(guard, Error))` |
//! | wait for others (`acquire`, `wait`, `call_once`) | `Ok(..)` | `Ok(false)` from `try_*` | `Err(Error::Timeout)` from `_timeout` forms; plain forms block for ever |
//!
//! - "Full" and "empty" are the only outcomes that are not an [`Error`]: they are cheap (no
//!   allocation) and expected, so polling loops may spin on them.
//! - A structure whose shared words are in a state that live peers following the algorithm
//!   cannot produce (corruption, or a process that does not follow it) is
//!   [`Error::CorruptStructure`] whenever the operation can detect it, and then never reported
//!   as full or empty. A stack slot held too long by a stalled or dead peer is
//!   [`Error::PeerStalled`]. Some states look exactly like full or empty and are reported so:
//!   a queue slot claimed by a producer that died before publishing reads as empty (see
//!   [`Queue`]), and a sequence word rewritten to a value behind its counter reads as full.
//! - A value that was not stored is always handed back: [`PushError::into_inner`].
//! - Every error about an entry names the segment and the entry.
//!
//! For example: `queue.push(job)` gives `Err(PushError::Full(job))` on a full queue;
//! `stack.pop()?` gives `None` on an empty stack; `array.get(10)` on a 10-element array gives
//! `Err(Error::IndexOutOfBounds { .. })`; `queue.pop_timeout(d)` gives `Err(Error::Timeout { .. })`.
//!
//! # Untrusted bytes
//!
//! A segment is untrusted input: every header field, table entry and structure header read from
//! it is validated before use, and a malformed segment produces an [`Error`], never a panic or an
//! access outside the mapping. See [`Segment`] for how this crate differs from the other
//! implementations where they are unsafe, and [`Segment::inspect`] for a full report of a
//! segment's defects.
//!
//! Element types implement [`ShmLayout`]: the fixed-width integers, `f32`, `f64`, arrays of
//! them, and `#[repr(C)]` structs with `#[derive(ShmLayout)]`.
//!
//! # Where things live
//!
//! | module | what it holds |
//! |---|---|
//! | `container/` | the container kinds, one file each: `array`, `queue`, `stack`, and `slotted`, the shape queue and stack share (FORMAT.md §4) |
//! | `sync/` | the synchronisation kinds, one file each: `semaphore`, `mutex`, `barrier`, `latch`, `once`, `rwlock`, `event`, `monitor`, and what they share (the blocking loop, the search for a dead holder) (§5) |
//! | `codata/` | the codata kinds, when they arrive (§6) |
//! | `kind` | the one abstraction every kind implements, and what is written once over it: create (all parts of a composite or none), open (every part checked), open-or-create, [`Segment::check_structure`], the fuzz body; the registration list of kinds |
//! | `algo/` | the lock-free algorithms, written against small traits so that `loom` checks the very same code |
//! | `raw` | the only module with `unsafe` mapping access: bounds-checked regions, atomic words, copies |
//! | `segment`, `table` | mapping a segment, and the metadata table with its lock and allocation |
//! | `wait` | waiting for a peer, for every blocking call: spin, then futex sleep on the shared word in bounded slices; the waker side (`Chime`) |
//! | `runtime` | this crate's own entry in a segment, `zeroipc.runtime`: the waiter counts and process records (FORMAT.md, appendix R) |
//! | `peers` | the one liveness model: which processes use a segment, recorded with pid, start time and pid namespace |
//! | `layout`, `error`, `name` | `ShmLayout` and descriptors, the one `Error`, name rules |
//!
//! ## Adding a kind
//!
//! A new kind is one file in its family's folder and one line in the `kinds!` list of `kind`
//! (which also makes its [`StructureKind`] variant), plus a `pub use` here. The file holds:
//!
//! - a type implementing `kind::Kind`: the entry-name suffixes of its parts in creation order
//!   (`[""]` for one entry; `["_state", "_rmtx", "_wmtx", ""]` for an RWLock, FORMAT.md §7), its
//!   parameters and their check (`plan`), the size of each part (`sizes`), initialisation of
//!   fresh bytes (`init`, run before any part is visible), validation of the stored parts into
//!   an immutable geometry with checked arithmetic (`validate`, reads only), how a stored one
//!   differs from requested parameters (`mismatch`), and for reports `describe`, `len` and
//!   `audit` (the defects of its shared words);
//! - the typed handle, implementing `kind::Handle` (its element size and how it is built from
//!   the validated geometry, through views anchored to the mapping) and `kind::Exercise`
//!   (bounded operations for the fuzz body);
//! - its operations, with its algorithm in `algo/` when it is lock-free, and every wait through
//!   `wait`.
//!
//! `create`, `open` and `open_or_create` of the handle are then one line each over `kind`.
//!
//! # The format
//!
//! Section references such as "FORMAT.md §4.2" are to `FORMAT.md` at the root of the source
//! repository: the byte-level description of format v2 as the other implementations write it,
//! which this crate follows.

// Unsafe code is confined to `raw` (every dereference of the mapping) and to the `ShmLayout`
// trait and its impls for the scalars in `layout`; everything else is checked to contain none.
#![deny(unsafe_code)]

// The format is little-endian (FORMAT.md §0) and its 64-bit fields are accessed atomically.
// The targets are also those whose 8-byte `Relaxed` atomic loads the standard library documents
// as valid on read-only memory (`raw`).
#[cfg(not(all(
    target_endian = "little",
    target_has_atomic = "64",
    target_pointer_width = "64",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64",
        target_arch = "powerpc64",
    )
)))]
compile_error!(
    "zeroipc supports 64-bit little-endian x86_64, aarch64, riscv64, loongarch64 and powerpc64 \
     targets only"
);

// The unit tests derive `ShmLayout`, whose expansion names `::zeroipc`.
#[cfg(test)]
extern crate self as zeroipc;

mod algo;
mod container;
mod describe;
mod dynamic;
mod error;
mod failpoint;
mod journal;
mod kind;
mod layout;
mod name;
mod peers;
#[allow(unsafe_code)]
mod raw;
mod runtime;
mod segment;
mod sync;
mod table;
mod wait;

pub use container::array::{Array, ArrayFormat, Iter};
pub use container::dynamic::{DynArray, DynQueue, DynStack, Peek};
pub use container::queue::Queue;
pub use container::stack::{DEFAULT_STALL_TIMEOUT, Stack};
pub use describe::Description;
pub use dynamic::{
    DynField, DynLayout, LayoutError, MAX_DECODED_BYTES, MAX_LAYOUT_DEPTH, MAX_LAYOUT_FIELDS,
    MAX_LAYOUT_NAME_LEN, MAX_LAYOUT_NODES, MAX_LAYOUT_SIZE, Shape, Value,
};
pub use error::{
    EntryDefect, Error, HeaderDefect, LayoutDifference, LockError, LockResult, PushError, Result,
};
pub use kind::{Recovery, StructureDefect, StructureKind, StructureReport};
pub use layout::{Field, Layout, LayoutKind, Scalar, ShmLayout, StructLayout};
pub use name::{MAX_ENTRY_NAME_LEN, MAX_SEGMENT_NAME_LEN};
pub use peers::{Liveness, Peer};
pub use segment::{
    DEFAULT_LOCK_TIMEOUT, DEFAULT_MAX_ENTRIES, DEFAULT_MODE, Defect, MAX_LISTED_DEFECTS, Report,
    Segment, SegmentOptions, Staleness,
};
pub use sync::OWNER_CHECK_INTERVAL;
pub use sync::barrier::Barrier;
pub use sync::event::{Event, EventMode, PULSE_WAIT};
pub use sync::latch::Latch;
pub use sync::monitor::{Monitor, MonitorGuard, RELOCK_GRACE, Waited};
pub use sync::mutex::{Mutex, MutexGuard};
pub use sync::once::Once;
pub use sync::rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use sync::semaphore::Semaphore;
pub use sync::signal::Signal;
pub use table::{Entry, HeaderInfo, MAX_ENTRY_DEFECTS};
pub use wait::DEFAULT_POLL_INTERVAL;
pub use zeroipc_derive::ShmLayout;

/// Paths used by the code `#[derive(ShmLayout)]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::layout::{Field, Layout, Scalar, ShmLayout, StructLayout};
    pub use bytemuck;
    pub use core::mem::{align_of, offset_of, size_of};
}

/// The fuzz body, shared by the proptest suite and the `cargo fuzz` target. Not a public API.
#[doc(hidden)]
pub mod __fuzz {
    use crate::{Segment, StructureKind};

    /// Checks the entry `name` as every kind, opens it as every kind with several element
    /// types and runs bounded operations on whatever opens; returns the kind of every typed
    /// open that succeeded. Whatever the bytes, nothing here may panic, hang or reach outside
    /// the mapping.
    pub fn exercise_entry(segment: &Segment, name: &str) -> Vec<StructureKind> {
        crate::kind::fuzz_entry(segment, name)
    }
}

/// Crash points for the crash tests (feature `failpoints`); not part of the API.
#[cfg(feature = "failpoints")]
#[doc(hidden)]
pub mod __failpoints {
    /// Arms the crash point `spec` (`NAME`, or `NAME:N` for its N-th hit) in this process, as
    /// `ZEROIPC_FAILPOINT` does at its first point.
    pub fn arm(spec: &str) {
        crate::failpoint::arm(spec);
    }
}

#[cfg(test)]
mod tests {
    /// Every handle can move to and be shared between threads; a change that loses this fails
    /// to compile here.
    #[test]
    fn handles_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::Segment>();
        send_sync::<crate::SegmentOptions>();
        send_sync::<crate::Array<u64>>();
        send_sync::<crate::Iter<'static, u64>>();
        send_sync::<crate::Queue<u64>>();
        send_sync::<crate::Stack<u64>>();
        send_sync::<crate::Report>();
        send_sync::<crate::Error>();
        send_sync::<crate::PushError<u64>>();
    }
}

/// Compiles the README's Rust examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
