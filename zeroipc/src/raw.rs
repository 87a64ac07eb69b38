//! The only module that dereferences the shared mapping.
//!
//! A [`Region`] is a bounds-checked window onto the mapping. Everything else in the crate reads
//! and writes shared bytes through it, by offset, and gets either a copy of a plain-old-data
//! value or a reference to an atomic word. No `&T`, `&mut T` or `&[u8]` is ever formed over bytes
//! that another process may write: such references would promise the compiler an immutability or
//! exclusivity that shared memory cannot give.
//!
//! Non-atomic copies (`read`, `write`, `read_bytes`, ...) compile to plain loads and stores, the
//! same `memcpy` the C, C++, Go and Python implementations use. When a peer writes the same bytes
//! concurrently the copy may observe a torn value; because every type copied is
//! `bytemuck::Pod`, any bit pattern is a valid value, so the worst outcome is a meaningless value,
//! never undefined behaviour in our process's own data. Structures that need more than that use
//! the atomic accessors and document their protocol.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64};

use memmap2::MmapRaw;

/// Why a raw access was refused. Callers attach names and offsets when turning this into an
/// [`Error`](crate::Error); with validated geometry only `ReadOnly` is expected in practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// The range does not lie inside the region.
    OutOfBounds,
    /// The address is not aligned for the requested atomic type.
    Misaligned,
    /// The mapping is read-only.
    ReadOnly,
}

/// An owned shared mapping (read-write or read-only) of a whole segment.
#[derive(Debug)]
pub(crate) struct Mapping {
    map: MmapRaw,
    writable: bool,
}

impl Mapping {
    /// Wraps a mapping made by the segment module.
    pub(crate) fn new(map: MmapRaw, writable: bool) -> Self {
        Self { map, writable }
    }

    /// The whole mapping as one region.
    pub(crate) fn region(&self) -> Region<'_> {
        // A mapping of a non-empty file always has a non-null base; the fallback keeps the
        // region empty rather than trusting a null pointer.
        match NonNull::new(self.map.as_mut_ptr()) {
            Some(base) => Region {
                base,
                len: self.map.len(),
                writable: self.writable,
                _mapping: PhantomData,
            },
            None => Region {
                base: NonNull::dangling(),
                len: 0,
                writable: self.writable,
                _mapping: PhantomData,
            },
        }
    }
}

/// A bounds-checked window `[base, base + len)` inside a live [`Mapping`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region<'a> {
    base: NonNull<u8>,
    len: usize,
    writable: bool,
    _mapping: PhantomData<&'a Mapping>,
}

// SAFETY:
// - A `Region` is a pointer range into a shared mapping that lives at least as long as `'a`.
// - Every access through it is either an atomic operation or a byte copy of `Pod` data, both of
//   which other processes perform concurrently anyway; sharing the window between threads adds
//   nothing new.
unsafe impl Send for Region<'_> {}
// SAFETY: see the `Send` impl; `&Region` only offers the same atomic and copying accesses.
unsafe impl Sync for Region<'_> {}

/// Generates a checked accessor returning a reference to an atomic word.
macro_rules! atomic_accessor {
    ($(#[$doc:meta])* $fn:ident, $atomic:ty, $prim:ty) => {
        $(#[$doc])*
        pub(crate) fn $fn(&self, offset: usize) -> Result<&'a $atomic, Access> {
            let ptr = self.ptr_for(offset, size_of::<$prim>(), true)?;
            if ptr.align_offset(align_of::<$atomic>()) != 0 {
                return Err(Access::Misaligned);
            }
            // SAFETY:
            // - `ptr` is in bounds for `size_of::<$prim>()` bytes (checked by `ptr_for`) and
            //   aligned for `$atomic` (checked above);
            // - the mapping outlives `'a`, so the reference cannot dangle;
            // - the word is shared with other processes which access it with atomic instructions
            //   as well (FORMAT.md marks these fields "atomic"); non-atomic peers (pure Python)
            //   only affect the values we read, not memory safety, on the targets we support.
            Ok(unsafe { <$atomic>::from_ptr(ptr.cast::<$prim>()) })
        }
    };
}

impl<'a> Region<'a> {
    /// The region's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether writes through this region are allowed.
    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// The sub-window `[offset, offset + len)`, or `None` when it does not fit.
    pub(crate) fn sub(&self, offset: u64, len: u64) -> Option<Region<'a>> {
        let offset = usize::try_from(offset).ok()?;
        let len = usize::try_from(len).ok()?;
        let end = offset.checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY:
        // - `offset <= end <= self.len`, so the result stays inside (or one past) the mapping
        //   allocation that `base` points into.
        let base = unsafe { self.base.add(offset) };
        Some(Region {
            base,
            len,
            writable: self.writable,
            _mapping: PhantomData,
        })
    }

    /// A pointer to `len` bytes at `offset`, after the bounds (and, for writes, writability)
    /// checks.
    fn ptr_for(&self, offset: usize, len: usize, write: bool) -> Result<*mut u8, Access> {
        let end = offset.checked_add(len).ok_or(Access::OutOfBounds)?;
        if end > self.len {
            return Err(Access::OutOfBounds);
        }
        if write && !self.writable {
            return Err(Access::ReadOnly);
        }
        // SAFETY:
        // - `offset + len <= self.len`, so the pointer is inside the mapping (or one past it
        //   when `len == 0`).
        Ok(unsafe { self.base.as_ptr().add(offset) })
    }

    atomic_accessor!(
        /// The `AtomicU32` at `offset`. Refused on a read-only mapping (use
        /// [`load_u32`](Self::load_u32) there).
        atomic_u32, AtomicU32, u32
    );
    atomic_accessor!(
        /// The `AtomicI32` at `offset`. Refused on a read-only mapping.
        atomic_i32, AtomicI32, i32
    );
    atomic_accessor!(
        /// The `AtomicU64` at `offset`. Refused on a read-only mapping.
        atomic_u64, AtomicU64, u64
    );
    atomic_accessor!(
        /// The `AtomicI64` at `offset`. Refused on a read-only mapping.
        atomic_i64, AtomicI64, i64
    );

    /// Atomically loads the `u32` at `offset`; works on read-only mappings too.
    pub(crate) fn load_u32(
        &self,
        offset: usize,
        order: std::sync::atomic::Ordering,
    ) -> Result<u32, Access> {
        let ptr = self.ptr_for(offset, size_of::<u32>(), false)?;
        if ptr.align_offset(align_of::<AtomicU32>()) != 0 {
            return Err(Access::Misaligned);
        }
        // SAFETY:
        // - in bounds and aligned (checked above), inside a mapping that outlives this call;
        // - the reference is only used for one load, which on every supported target is a plain
        //   load instruction and therefore valid on read-only pages as well.
        let atomic = unsafe { AtomicU32::from_ptr(ptr.cast::<u32>()) };
        Ok(atomic.load(order))
    }

    /// Atomically loads the `u64` at `offset`; works on read-only mappings too.
    pub(crate) fn load_u64(
        &self,
        offset: usize,
        order: std::sync::atomic::Ordering,
    ) -> Result<u64, Access> {
        let ptr = self.ptr_for(offset, size_of::<u64>(), false)?;
        if ptr.align_offset(align_of::<AtomicU64>()) != 0 {
            return Err(Access::Misaligned);
        }
        // SAFETY:
        // - in bounds and aligned (checked above), inside a mapping that outlives this call;
        // - used for one load only, a plain load instruction on 64-bit targets (valid on
        //   read-only pages).
        let atomic = unsafe { AtomicU64::from_ptr(ptr.cast::<u64>()) };
        Ok(atomic.load(order))
    }

    /// Copies the `Pod` value at `offset` out of the mapping.
    pub(crate) fn read<T: bytemuck::Pod>(&self, offset: usize) -> Result<T, Access> {
        let ptr = self.ptr_for(offset, size_of::<T>(), false)?;
        // SAFETY:
        // - `size_of::<T>()` bytes at `ptr` are inside the mapping (checked by `ptr_for`);
        // - `read_unaligned` places no alignment requirement on `ptr`;
        // - `T: Pod`, so whatever bytes are there form a valid `T`.
        Ok(unsafe { ptr.cast::<T>().read_unaligned() })
    }

    /// Copies `value` into the mapping at `offset`.
    pub(crate) fn write<T: bytemuck::Pod>(&self, offset: usize, value: T) -> Result<(), Access> {
        let ptr = self.ptr_for(offset, size_of::<T>(), true)?;
        // SAFETY:
        // - `size_of::<T>()` bytes at `ptr` are inside a writable mapping (checked by
        //   `ptr_for`), and no Rust reference to them exists (see the module docs);
        // - `write_unaligned` places no alignment requirement on `ptr`.
        unsafe { ptr.cast::<T>().write_unaligned(value) };
        Ok(())
    }

    /// Copies `out.len()` bytes starting at `offset` into `out`.
    pub(crate) fn read_bytes(&self, offset: usize, out: &mut [u8]) -> Result<(), Access> {
        let ptr = self.ptr_for(offset, out.len(), false)?;
        // SAFETY:
        // - the source range is inside the mapping (checked by `ptr_for`);
        // - `out` is a distinct, exclusively borrowed local buffer of the same length, so the
        //   ranges do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(ptr.cast_const(), out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Copies `data` into the mapping at `offset`.
    pub(crate) fn write_bytes(&self, offset: usize, data: &[u8]) -> Result<(), Access> {
        let ptr = self.ptr_for(offset, data.len(), true)?;
        // SAFETY:
        // - the destination range is inside a writable mapping (checked by `ptr_for`);
        // - `data` is caller memory outside the mapping's write path, so the ranges do not
        //   overlap (a caller cannot hold a `&[u8]` into the mapping: none is ever handed out).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr, data.len()) };
        Ok(())
    }

    /// Sets `len` bytes starting at `offset` to zero.
    pub(crate) fn zero(&self, offset: usize, len: usize) -> Result<(), Access> {
        let ptr = self.ptr_for(offset, len, true)?;
        // SAFETY:
        // - the range is inside a writable mapping (checked by `ptr_for`).
        unsafe { ptr.write_bytes(0, len) };
        Ok(())
    }

    /// Copies `out.len()` values of `T` starting at byte `offset`.
    pub(crate) fn read_slice<T: bytemuck::Pod>(
        &self,
        offset: usize,
        out: &mut [T],
    ) -> Result<(), Access> {
        self.read_bytes(offset, bytemuck::cast_slice_mut(out))
    }

    /// Copies `data` into the mapping starting at byte `offset`.
    pub(crate) fn write_slice<T: bytemuck::Pod>(
        &self,
        offset: usize,
        data: &[T],
    ) -> Result<(), Access> {
        self.write_bytes(offset, bytemuck::cast_slice(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn anon(len: usize) -> Mapping {
        let map = memmap2::MmapOptions::new().len(len).map_anon().unwrap();
        Mapping::new(MmapRaw::from(map), true)
    }

    #[test]
    fn bounds_are_checked() {
        let m = anon(64);
        let r = m.region();
        assert_eq!(r.len(), 64);
        assert!(r.sub(60, 4).is_some());
        assert!(r.sub(60, 5).is_none());
        assert!(r.sub(u64::MAX, 2).is_none());
        assert_eq!(r.read::<u64>(57), Err(Access::OutOfBounds));
        assert_eq!(r.atomic_u32(62).err(), Some(Access::OutOfBounds));
        assert_eq!(r.atomic_u32(2).err(), Some(Access::Misaligned));
        assert_eq!(r.atomic_u64(4).err(), Some(Access::Misaligned));
        assert_eq!(r.write_bytes(usize::MAX, &[1]), Err(Access::OutOfBounds));
    }

    #[test]
    fn copies_and_atomics_see_the_same_bytes() {
        let m = anon(64);
        let r = m.region();
        r.write::<u32>(8, 0xDEAD_BEEF).unwrap();
        assert_eq!(
            r.atomic_u32(8).unwrap().load(Ordering::Relaxed),
            0xDEAD_BEEF
        );
        r.atomic_u64(16).unwrap().store(7, Ordering::Relaxed);
        assert_eq!(r.read::<u64>(16).unwrap(), 7);
        assert_eq!(r.load_u64(16, Ordering::Relaxed).unwrap(), 7);
        let sub = r.sub(16, 16).unwrap();
        assert_eq!(sub.read::<u64>(0).unwrap(), 7);
        r.write_slice(32, &[1u16, 2, 3]).unwrap();
        let mut out = [0u16; 3];
        r.read_slice(32, &mut out).unwrap();
        assert_eq!(out, [1, 2, 3]);
        r.zero(32, 6).unwrap();
        r.read_slice(32, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0]);
    }

    #[test]
    fn read_only_regions_refuse_writes() {
        let m = anon(16);
        let rw = m.region();
        let ro = Region {
            writable: false,
            ..rw
        };
        assert_eq!(ro.write::<u8>(0, 1), Err(Access::ReadOnly));
        assert_eq!(ro.atomic_u32(0).err(), Some(Access::ReadOnly));
        assert_eq!(ro.zero(0, 1), Err(Access::ReadOnly));
        assert!(ro.load_u32(0, Ordering::Relaxed).is_ok());
        assert!(!ro.sub(0, 8).unwrap().writable());
    }
}
