//! The only module that dereferences the shared mapping.
//!
//! A [`Region`] is a bounds-checked window onto the mapping. Everything else in the crate reads
//! and writes shared bytes through it, by offset, and gets either a copy of a plain-old-data
//! value or a reference to an atomic word. No `&T`, `&mut T` or `&[u8]` is ever formed over bytes
//! that another process may write: such references would promise the compiler an immutability or
//! exclusivity that shared memory cannot give.
//!
//! # Every access is atomic
//!
//! Copies (`read`, `write`, `read_slice`, ...) move data in units with `Relaxed` atomic loads and
//! stores, which compile to the same plain moves as the `memcpy` of the C, C++, Go and Python
//! implementations. Because every access of this process is atomic, two threads copying into the
//! same element race only in the sense that one wins, never in the undefined-behaviour sense of
//! the Rust memory model. A value larger than one unit can still be torn by a concurrent writer;
//! every type copied is `bytemuck::Pod`, so a torn value is a meaningless value, never an invalid
//! one. Structures that need more use the atomic accessors and document their protocol.
//!
//! # The copy unit
//!
//! The memory model also forbids *mixed-size* atomic accesses to the same bytes unless they are
//! ordered by happens-before: a copy in 8-byte units over words that `Array::<u32>::fetch_add`
//! touches with 4-byte atomics would be undefined behaviour even though x86 tolerates it. So the
//! unit of a copy is chosen from the element type, never from the address or length of the
//! range:
//!
//! - a copy of elements of `T: ShmLayout` uses [`copy_unit`]`(T::LAYOUT)`: the width of `T`'s
//!   scalars when they all have one width (`u32`, `[f64; 3]`, a record of `u16`s), and otherwise
//!   the width of its narrowest scalar (a record of a `u8` and a `u64` is copied byte by byte,
//!   one of `u32` and `u64` fields in 4-byte units). Every access this crate makes to a scalar
//!   element of width `w` is then a `w`-byte atomic, which is exactly what the atomic accessors
//!   use; a record's fields are only ever copied, always with the record's one unit;
//! - the words of the format's own headers are accessed with their declared width (`u32`, `u64`);
//! - [`Region::zero`] alone picks its unit from the alignment of the range: it initialises bytes
//!   that no other process can see yet (a structure is published through the table only after
//!   it), so every later access is ordered after it by the table's Release/Acquire pair.
//!
//! # Read-only mappings
//!
//! On a read-only mapping loads are `Relaxed` atomic loads of at most 8 bytes (the register width
//! of every target lib.rs admits), followed by a fence when the caller asked for ordering. The
//! standard library documents such loads as valid on read-only memory ("Atomic accesses to
//! read-only memory" in `core::sync::atomic`), and, being atomic, they do not race with a
//! read-write view of the same segment held by this or another thread. Stores and
//! read-modify-write operations are refused before any pointer is formed.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::{
    AtomicI32, AtomicI64, AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering, fence,
};

use memmap2::MmapRaw;

use crate::layout::{Layout, LayoutKind, ShmLayout};

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

    /// Whether `[start, start + len)` lies inside this mapping.
    fn contains(&self, start: *const u8, len: usize) -> bool {
        let base = self.map.as_ptr() as usize;
        let start = start as usize;
        let (Some(end), Some(map_end)) = (start.checked_add(len), base.checked_add(self.map.len()))
        else {
            return false;
        };
        start >= base && end <= map_end
    }

    /// Where `region` starts in this mapping (its offset in the segment); `None` when it is
    /// not inside it.
    pub(crate) fn offset_of(&self, region: &Region<'_>) -> Option<u64> {
        let start = region.base.as_ptr().cast_const();
        if !self.contains(start, region.len) {
            return None;
        }
        let offset = (start as usize).checked_sub(self.map.as_ptr() as usize)?;
        u64::try_from(offset).ok()
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
///
/// # The lifetime of views
///
/// `'a` in `Region<'a>`, [`Word<'a>`], [`Words<'a>`] and [`Slots<'a, T>`] is a span during
/// which the mapping stays mapped: a borrow of the `Mapping` (views made by
/// [`Mapping::region`] and derived from it), or a borrow of an [`Anchored`] that holds an `Arc`
/// of the mapping (views lent by `Anchored::get`). Every SAFETY comment below that says the
/// mapping "outlives `'a`" relies on this; the `'static` an `Anchored` stores internally is
/// never observable outside it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region<'a> {
    base: NonNull<u8>,
    len: usize,
    writable: bool,
    _mapping: PhantomData<&'a Mapping>,
}

// SAFETY:
// - A `Region` is a pointer range into a shared mapping that stays mapped during `'a` (see "The
//   lifetime of views" on `Region`).
// - Every access through it is an atomic operation (copies of `Pod` data move in atomic units),
//   which other processes perform concurrently anyway; sharing the window between threads adds
//   nothing new.
unsafe impl Send for Region<'_> {}
// SAFETY: see the `Send` impl; `&Region` only offers the same atomic and copying accesses.
unsafe impl Sync for Region<'_> {}

/// Generates a checked accessor returning a reference to an atomic word.
macro_rules! atomic_accessor {
    ($(#[$doc:meta])* $fn:ident, $atomic:ty, $prim:ty) => {
        $(#[$doc])*
        #[inline]
        pub(crate) fn $fn(&self, offset: usize) -> Result<&'a $atomic, Access> {
            let ptr = self.ptr_for(offset, size_of::<$prim>(), true)?;
            if !ptr.cast::<$prim>().is_aligned() {
                return Err(Access::Misaligned);
            }
            // SAFETY:
            // - `ptr` is in bounds for `size_of::<$prim>()` bytes (checked by `ptr_for`) and
            //   aligned for `$atomic` (checked above);
            // - the mapping is writable (checked by `ptr_for`) and outlives `'a`, so the reference
            //   cannot dangle;
            // - every access of this crate to shared bytes is atomic (module docs), and other
            //   processes use atomic instructions on these fields too (FORMAT.md marks them
            //   "atomic"); non-atomic peers (pure Python) only affect the values we read.
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

    /// Loads the `u32` at `offset` with `order`; works on read-only mappings too.
    ///
    /// # Panics
    ///
    /// When `order` is `Release` or `AcqRel`, as [`AtomicU32::load`] does.
    pub(crate) fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32, Access> {
        let ptr = self.ptr_for(offset, size_of::<u32>(), false)?.cast::<u32>();
        if !ptr.is_aligned() {
            return Err(Access::Misaligned);
        }
        // SAFETY:
        // - in bounds (checked by `ptr_for`) and aligned (checked above), inside a mapping that
        //   outlives this call, so the pointer is dereferenceable; `AtomicU32` has the size and
        //   alignment of the integer. A shared reference needs no write permission (unlike
        //   `from_ptr`), and on a read-only mapping only a `Relaxed` load is made through it,
        //   which `core::sync::atomic` ("Atomic accesses to read-only memory") allows;
        // - every access of this crate to shared bytes is atomic (module docs), so this load
        //   races with no non-atomic access of ours.
        let word = unsafe { &*ptr.cast::<AtomicU32>() };
        if self.writable {
            return Ok(word.load(order));
        }
        // A read-only mapping allows only `Relaxed` loads of at most register width (module
        // docs); the fence then gives the ordering the caller asked for.
        let value = word.load(Ordering::Relaxed);
        load_fence(order);
        Ok(value)
    }

    /// Loads the `u64` at `offset` with `order`; works on read-only mappings too.
    ///
    /// # Panics
    ///
    /// When `order` is `Release` or `AcqRel`, as [`AtomicU64::load`] does.
    pub(crate) fn load_u64(&self, offset: usize, order: Ordering) -> Result<u64, Access> {
        let ptr = self.ptr_for(offset, size_of::<u64>(), false)?.cast::<u64>();
        if !ptr.is_aligned() {
            return Err(Access::Misaligned);
        }
        // SAFETY:
        // - in bounds (checked by `ptr_for`) and aligned (checked above), inside a mapping that
        //   outlives this call, so the pointer is dereferenceable; `AtomicU64` has the size and
        //   alignment of the integer. A shared reference needs no write permission (unlike
        //   `from_ptr`), and on a read-only mapping only a `Relaxed` load is made through it,
        //   which `core::sync::atomic` ("Atomic accesses to read-only memory") allows;
        // - every access of this crate to shared bytes is atomic (module docs), so this load
        //   races with no non-atomic access of ours.
        let word = unsafe { &*ptr.cast::<AtomicU64>() };
        if self.writable {
            return Ok(word.load(order));
        }
        // A read-only mapping allows only `Relaxed` loads of at most register width (module
        // docs); the fence then gives the ordering the caller asked for.
        let value = word.load(Ordering::Relaxed);
        load_fence(order);
        Ok(value)
    }

    /// Copies the value of `T` at `offset` out of the mapping, in units of
    /// [`copy_unit`]`(T::LAYOUT)`.
    pub(crate) fn read<T: ShmLayout>(&self, offset: usize) -> Result<T, Access> {
        let mut value = T::zeroed();
        self.read_bytes(offset, bytemuck::bytes_of_mut(&mut value), unit_of::<T>())?;
        Ok(value)
    }

    /// Copies `value` into the mapping at `offset`, in units of [`copy_unit`]`(T::LAYOUT)`.
    pub(crate) fn write<T: ShmLayout>(&self, offset: usize, value: T) -> Result<(), Access> {
        self.write_bytes(offset, bytemuck::bytes_of(&value), unit_of::<T>())
    }

    /// Copies `out.len()` bytes starting at `offset` into `out`, in units of `unit` bytes.
    pub(crate) fn read_bytes(
        &self,
        offset: usize,
        out: &mut [u8],
        unit: usize,
    ) -> Result<(), Access> {
        match unit {
            8 => self.read_units::<u64>(offset, out),
            4 => self.read_units::<u32>(offset, out),
            2 => self.read_units::<u16>(offset, out),
            _ => self.read_units::<u8>(offset, out),
        }
    }

    /// Copies `data` into the mapping at `offset`, in units of `unit` bytes.
    pub(crate) fn write_bytes(
        &self,
        offset: usize,
        data: &[u8],
        unit: usize,
    ) -> Result<(), Access> {
        match unit {
            8 => self.write_units::<u64>(offset, data),
            4 => self.write_units::<u32>(offset, data),
            2 => self.write_units::<u16>(offset, data),
            _ => self.write_units::<u8>(offset, data),
        }
    }

    /// Sets `len` bytes starting at `offset` to zero, in the widest units the range's alignment
    /// allows.
    ///
    /// Only for bytes that no other process can reach yet (a structure being created, before the
    /// table publishes it): that is what makes the alignment-based unit safe (module docs).
    pub(crate) fn zero(&self, offset: usize, len: usize) -> Result<(), Access> {
        const ZEROS: [u8; 256] = [0; 256];
        let start = self.ptr_for(offset, len, true)?;
        let mut done = 0usize;
        while let Some(left) = len.checked_sub(done).filter(|&l| l > 0) {
            let n = left.min(ZEROS.len());
            let at = offset.checked_add(done).ok_or(Access::OutOfBounds)?;
            // Chunks of 256 keep the alignment of `start` for every later chunk.
            let unit = unit_for(start, n);
            self.write_bytes(at, ZEROS.get(..n).unwrap_or(&ZEROS), unit)?;
            done = done.saturating_add(n);
        }
        Ok(())
    }

    /// [`read_bytes`](Self::read_bytes) in units of `U`.
    fn read_units<U: Unit>(&self, offset: usize, out: &mut [u8]) -> Result<(), Access> {
        let src = self.ptr_for(offset, out.len(), false)?;
        let unit = size_of::<U>();
        if !src.cast::<U>().is_aligned() || out.len().checked_rem(unit) != Some(0) {
            return Err(Access::Misaligned);
        }
        for (chunk, at) in out.chunks_exact_mut(unit).zip((0..).step_by(unit)) {
            // SAFETY:
            // - `at + unit <= out.len()` (`chunks_exact`) and `[src, src + out.len())` was
            //   checked by `ptr_for`, so the unit is inside the mapping;
            // - `src` is `U`-aligned (checked above) and `at` is a multiple of `unit`.
            let value = unsafe { self.load_unit::<U>(src, at) };
            chunk.copy_from_slice(bytemuck::bytes_of(&value));
        }
        Ok(())
    }

    /// [`write_bytes`](Self::write_bytes) in units of `U`.
    fn write_units<U: Unit>(&self, offset: usize, data: &[u8]) -> Result<(), Access> {
        let dst = self.ptr_for(offset, data.len(), true)?;
        let unit = size_of::<U>();
        if !dst.cast::<U>().is_aligned() || data.len().checked_rem(unit) != Some(0) {
            return Err(Access::Misaligned);
        }
        for (chunk, at) in data.chunks_exact(unit).zip((0..).step_by(unit)) {
            let value: U = bytemuck::pod_read_unaligned(chunk);
            // SAFETY:
            // - `at + unit <= data.len()` (`chunks_exact`) and `[dst, dst + data.len())` was
            //   checked by `ptr_for` with `write = true`, so the unit is inside a writable
            //   mapping;
            // - `dst` is `U`-aligned (checked above) and `at` is a multiple of `unit`.
            unsafe { store_unit(dst, at, value) };
        }
        Ok(())
    }

    /// Loads the unit of type `U` at `base + at` with a `Relaxed` atomic load (valid on
    /// read-only mappings too, module docs).
    ///
    /// # Safety
    ///
    /// `base + at .. base + at + size_of::<U>()` must lie inside this region's mapping and
    /// `base + at` must be aligned for `U`.
    unsafe fn load_unit<U: Unit>(&self, base: *mut u8, at: usize) -> U {
        // SAFETY:
        // - the caller guarantees `base + at` is in bounds of the mapping.
        let ptr = unsafe { base.add(at) }.cast::<U>();
        // SAFETY:
        // - in bounds and aligned (caller), in a mapping that outlives this call; `U` is at most
        //   8 bytes, so a `Relaxed` load is valid even when the mapping is read-only.
        unsafe { U::load_relaxed(ptr) }
    }

    /// Copies `out.len()` values of `T` starting at byte `offset`, in units of
    /// [`copy_unit`]`(T::LAYOUT)`.
    pub(crate) fn read_slice<T: ShmLayout>(
        &self,
        offset: usize,
        out: &mut [T],
    ) -> Result<(), Access> {
        self.read_bytes(offset, bytemuck::cast_slice_mut(out), unit_of::<T>())
    }

    /// Copies `data` into the mapping starting at byte `offset`, in units of
    /// [`copy_unit`]`(T::LAYOUT)`.
    pub(crate) fn write_slice<T: ShmLayout>(
        &self,
        offset: usize,
        data: &[T],
    ) -> Result<(), Access> {
        self.write_bytes(offset, bytemuck::cast_slice(data), unit_of::<T>())
    }
}

/// One validated atomic `u32` word in a writable mapping (a queue counter, a stack's `top`),
/// checked once, when it is made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Word<'a> {
    ptr: NonNull<AtomicU32>,
    _mapping: PhantomData<&'a Mapping>,
}

// SAFETY: as for `Region`: a pointer into shared memory accessed only atomically.
unsafe impl Send for Word<'_> {}
// SAFETY: as for `Region`.
unsafe impl Sync for Word<'_> {}

impl<'a> Word<'a> {
    /// The atomic word.
    #[inline]
    pub(crate) fn atomic(self) -> &'a AtomicU32 {
        // SAFETY:
        // - `ptr` is in bounds, 4-aligned and in a writable mapping (checked by `Region::word`),
        //   which outlives `'a`;
        // - every access of this crate to the word is a 4-byte atomic.
        unsafe { self.ptr.as_ref() }
    }
}

/// Views kept beside a share of their mapping. A child module of `raw`, so that it can build
/// views from their private fields while nothing outside it can read `Anchored::view`.
mod anchor {
    use std::marker::PhantomData;
    use std::mem::size_of;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    use super::{Mapping, Region, Slots, Word, Words};
    use crate::layout::ShmLayout;

    /// A view into a mapping ([`Region`], [`Word`], [`Words`] or [`Slots`]) stored together with a
    /// share of that mapping, so that a structure handle can keep it without a lifetime. The view
    /// is lent out only for as long as the `Anchored` is borrowed, and the mapping stays mapped as
    /// long as the `Anchored` exists: this is what makes handles owned (`'static`).
    #[derive(Debug)]
    pub(crate) struct Anchored<V> {
        // INVARIANT: `view` carries the lifetime `'static` but is valid only while `mapping` is
        // alive; it is read only through `get`, which shortens it to a borrow of `self`. This module
        // is a child of `raw` precisely so that no other code, not even the rest of `raw`, can reach
        // the field.
        view: V,
        mapping: Arc<Mapping>,
    }

    impl<V: Clone> Clone for Anchored<V> {
        fn clone(&self) -> Self {
            Self {
                view: self.view.clone(),
                mapping: Arc::clone(&self.mapping),
            }
        }
    }

    /// Generates the constructor (`Anchored::region`, ..., which checks that the view lies inside
    /// the mapping it is anchored to) and `Anchored::get` (which lends the view out for the borrow
    /// of the `Anchored`) for one view type.
    macro_rules! anchored {
        ($new:ident: $view:ident $(<$t:ident>)? { $($field:ident),* $(; $marker:ident)? }, $range:expr) => {
            impl$(<$t: ShmLayout>)? Anchored<$view<'static $(, $t)?>> {
                /// Anchors `view` to `mapping`; `None` unless every byte of the view lies inside
                /// `mapping`.
                pub(crate) fn $new(mapping: &Arc<Mapping>, view: $view<'_ $(, $t)?>) -> Option<Self> {
                    let (start, len): (*const u8, usize) = $range(&view)?;
                    if !mapping.contains(start, len) {
                        return None;
                    }
                    // The view's lifetime is erased here on purpose: from now on the `Arc` stored
                    // beside it keeps the bytes mapped, and `get` ties every use to a borrow of
                    // `self` (see the invariant on `Anchored::view`).
                    let view = $view {
                        $($field: view.$field,)*
                        _mapping: PhantomData,
                        $($marker: PhantomData,)?
                    };
                    Some(Self { view, mapping: Arc::clone(mapping) })
                }

                /// The view, for as long as `self` is borrowed.
                #[inline]
                pub(crate) fn get(&self) -> $view<'_ $(, $t)?> {
                    self.view
                }
            }
        };
    }

    anchored!(region: Region { base, len, writable }, |r: &Region<'_>| Some((r.base.as_ptr().cast_const(), r.len)));
    anchored!(word: Word { ptr }, |w: &Word<'_>| Some((
        w.ptr.as_ptr().cast::<u8>().cast_const(),
        size_of::<AtomicU32>()
    )));
    anchored!(words: Words { base, len }, |w: &Words<'_>| Some((
        w.base.as_ptr().cast::<u8>().cast_const(),
        w.len.checked_mul(4)?
    )));
    anchored!(slots: Slots<T> { base, len; _elem }, |s: &Slots<'_, T>| Some((
        s.base.as_ptr().cast_const(),
        s.len.checked_mul(size_of::<T>())?
    )));
}

pub(crate) use anchor::Anchored;

/// A validated array of atomic `u32` words in a writable mapping (sequence and state words):
/// bounds and alignment are checked once, when it is made, and each access checks the index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Words<'a> {
    base: NonNull<u32>,
    len: usize,
    _mapping: PhantomData<&'a Mapping>,
}

// SAFETY: as for `Region`: a window onto shared memory accessed only atomically.
unsafe impl Send for Words<'_> {}
// SAFETY: as for `Region`.
unsafe impl Sync for Words<'_> {}

impl<'a> Words<'a> {
    /// The word at `index`, or `None` past the end.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<&'a AtomicU32> {
        if index >= self.len {
            return None;
        }
        // SAFETY:
        // - `index < len`, and `len` words from `base` lie inside the writable mapping (checked
        //   by `Region::words`), so the pointer is in bounds;
        // - `base` is 4-aligned (checked) and so is every word after it.
        let ptr = unsafe { self.base.as_ptr().add(index) };
        // SAFETY:
        // - in bounds and aligned (above), writable, and the mapping outlives `'a`;
        // - every access of this crate to these words is atomic.
        Some(unsafe { AtomicU32::from_ptr(ptr) })
    }

    /// The word at `index` as a view of its own, or `None` past the end.
    pub(crate) fn word(&self, index: usize) -> Option<Word<'a>> {
        let word = self.get(index)?;
        Some(Word {
            // The same validated word: in bounds, aligned, writable, mapped for `'a`.
            ptr: NonNull::from(word),
            _mapping: PhantomData,
        })
    }
}

/// A validated array of `T` slots in a writable mapping, copied in and out with relaxed atomic
/// units like every other copy (see the module docs).
#[derive(Debug)]
pub(crate) struct Slots<'a, T> {
    base: NonNull<u8>,
    len: usize,
    _mapping: PhantomData<&'a Mapping>,
    _elem: PhantomData<fn() -> T>,
}

impl<T> Clone for Slots<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Slots<'_, T> {}

// SAFETY: as for `Region`.
unsafe impl<T> Send for Slots<'_, T> {}
// SAFETY: as for `Region`.
unsafe impl<T> Sync for Slots<'_, T> {}

impl<T: ShmLayout> Slots<'_, T> {
    /// The copy unit for `T` (module docs). Slot bases are 8-aligned and the slot size is a
    /// multiple of `T`'s alignment, which the unit never exceeds (asserted at compile time), so
    /// every slot is aligned to it and split into whole units.
    const UNIT: usize = {
        let unit = copy_unit(T::LAYOUT);
        assert!(unit <= align_of::<T>() && size_of::<T>() % unit == 0);
        unit
    };

    /// Copies slot `index` out; `None` past the end.
    #[inline]
    pub(crate) fn read(&self, index: usize) -> Option<T> {
        let ptr = self.slot(index)?;
        let mut value = T::zeroed();
        let out = bytemuck::bytes_of_mut(&mut value);
        // `UNIT` is a constant: the match folds away.
        match Self::UNIT {
            // SAFETY:
            // - `ptr` is a whole in-bounds slot of `size_of::<T>() == out.len()` bytes in a writable
            //   mapping (`slot`), 8-aligned plus a multiple of `size_of::<T>()`, so aligned to
            //   `UNIT`, which divides `out.len()` (asserted in `UNIT`); the unit type is `UNIT` wide.
            8 => unsafe { copy_units_out::<u64>(ptr, out) },
            // SAFETY: as for the 8-byte unit.
            4 => unsafe { copy_units_out::<u32>(ptr, out) },
            // SAFETY: as for the 8-byte unit.
            2 => unsafe { copy_units_out::<u16>(ptr, out) },
            // SAFETY: as for the 8-byte unit.
            _ => unsafe { copy_units_out::<u8>(ptr, out) },
        }
        Some(value)
    }

    /// Copies `value` into slot `index`; `false` past the end.
    #[inline]
    pub(crate) fn write(&self, index: usize, value: T) -> bool {
        let Some(ptr) = self.slot(index) else {
            return false;
        };
        let data = bytemuck::bytes_of(&value);
        // `UNIT` is a constant: the match folds away.
        match Self::UNIT {
            // SAFETY: as in `read`, with `data.len() == size_of::<T>()`.
            8 => unsafe { copy_units_in::<u64>(ptr, data) },
            // SAFETY: as for the 8-byte unit.
            4 => unsafe { copy_units_in::<u32>(ptr, data) },
            // SAFETY: as for the 8-byte unit.
            2 => unsafe { copy_units_in::<u16>(ptr, data) },
            // SAFETY: as for the 8-byte unit.
            _ => unsafe { copy_units_in::<u8>(ptr, data) },
        }
        true
    }

    /// The start of slot `index`, a [`SlotPtr`] that may be copied through.
    #[inline]
    fn slot(&self, index: usize) -> Option<SlotPtr> {
        if index >= self.len {
            return None;
        }
        let offset = index.checked_mul(size_of::<T>())?;
        // SAFETY:
        // - `index < len` and `len * size_of::<T>()` bytes from `base` lie inside the writable
        //   mapping (checked by `Region::slots`), so `base + offset` and the whole slot are in
        //   bounds.
        Some(SlotPtr(unsafe { self.base.as_ptr().add(offset) }))
    }
}

/// A pointer to a whole, in-bounds slot of a writable mapping, aligned to its copy unit. Only
/// [`Slots::slot`] makes one.
#[derive(Clone, Copy)]
struct SlotPtr(*mut u8);

/// Copies `out.len()` bytes from a slot in units of `U`.
///
/// # Safety
///
/// `slot` must point to at least `out.len()` bytes inside a live writable mapping, aligned for
/// `U`, and `size_of::<U>()` must divide `out.len()`.
#[inline]
unsafe fn copy_units_out<U: Unit>(slot: SlotPtr, out: &mut [u8]) {
    let unit = size_of::<U>();
    for (chunk, at) in out.chunks_exact_mut(unit).zip((0..).step_by(unit)) {
        // SAFETY:
        // - the caller guarantees an in-bounds, `U`-aligned slot of at least `out.len()` bytes
        //   in a writable mapping; `at + unit <= out.len()`.
        let ptr = unsafe { slot.0.add(at) }.cast::<U>();
        // SAFETY: as above.
        let value = unsafe { U::load_relaxed(ptr) };
        chunk.copy_from_slice(bytemuck::bytes_of(&value));
    }
}

/// Copies `data` into a slot in units of `U`.
///
/// # Safety
///
/// As [`copy_units_out`], with `data.len()` bytes.
#[inline]
unsafe fn copy_units_in<U: Unit>(slot: SlotPtr, data: &[u8]) {
    let unit = size_of::<U>();
    for (chunk, at) in data.chunks_exact(unit).zip((0..).step_by(unit)) {
        // SAFETY:
        // - the caller guarantees an in-bounds, `U`-aligned slot of at least `data.len()` bytes
        //   in a writable mapping; `at + unit <= data.len()`.
        let ptr = unsafe { slot.0.add(at) }.cast::<U>();
        // SAFETY: as above.
        unsafe { U::store_relaxed(ptr, bytemuck::pod_read_unaligned(chunk)) };
    }
}

impl<'a> Region<'a> {
    /// The atomic word at `offset` (4-aligned, writable), kept as a [`Word`].
    pub(crate) fn word(&self, offset: usize) -> Result<Word<'a>, Access> {
        let atomic = self.atomic_u32(offset)?;
        Ok(Word {
            ptr: NonNull::from(atomic),
            _mapping: PhantomData,
        })
    }

    /// `count` atomic words at `offset` (4-aligned, writable).
    pub(crate) fn words(&self, offset: usize, count: usize) -> Result<Words<'a>, Access> {
        let bytes = count.checked_mul(4).ok_or(Access::OutOfBounds)?;
        let ptr = self.ptr_for(offset, bytes, true)?.cast::<u32>();
        if !ptr.is_aligned() {
            return Err(Access::Misaligned);
        }
        let base = NonNull::new(ptr).ok_or(Access::OutOfBounds)?;
        Ok(Words {
            base,
            len: count,
            _mapping: PhantomData,
        })
    }

    /// `count` slots of `T` at `offset` (8-aligned, writable).
    pub(crate) fn slots<T: ShmLayout>(
        &self,
        offset: usize,
        count: usize,
    ) -> Result<Slots<'a, T>, Access> {
        let bytes = count
            .checked_mul(size_of::<T>())
            .ok_or(Access::OutOfBounds)?;
        let ptr = self.ptr_for(offset, bytes, true)?;
        if !ptr.cast::<u64>().is_aligned() {
            return Err(Access::Misaligned);
        }
        let base = NonNull::new(ptr).ok_or(Access::OutOfBounds)?;
        Ok(Slots {
            base,
            len: count,
            _mapping: PhantomData,
            _elem: PhantomData,
        })
    }
}

/// The fence that gives a `Relaxed` load on a read-only mapping the ordering the caller asked
/// for. `Acquire` is exact (a Relaxed load then an Acquire fence is the pattern the standard
/// library recommends); `SeqCst` gives a SeqCst fence after the load, which orders like an
/// Acquire load but does not place the load itself in the single total order.
fn load_fence(order: Ordering) {
    match order {
        Ordering::Relaxed => {}
        Ordering::Acquire => fence(Ordering::Acquire),
        Ordering::SeqCst => fence(Ordering::SeqCst),
        // Mirror `AtomicU32::load`, which panics for these orderings.
        _ => panic!("there is no such thing as a release load"),
    }
}

/// The copy unit of elements of a type with this layout: the width of its narrowest scalar,
/// which is the width of all of them when they all have one (module docs).
pub(crate) const fn copy_unit(layout: &Layout) -> usize {
    match layout.kind() {
        LayoutKind::Scalar(s) => s.size(),
        LayoutKind::Array { elem, .. } => copy_unit(elem),
        LayoutKind::Struct(st) => {
            let mut rest = st.fields();
            let mut unit = 8;
            while let [field, tail @ ..] = rest {
                let u = copy_unit(field.layout());
                if u < unit {
                    unit = u;
                }
                rest = tail;
            }
            unit
        }
    }
}

/// [`copy_unit`] of `T`.
const fn unit_of<T: ShmLayout>() -> usize {
    copy_unit(T::LAYOUT)
}

/// The widest unit (8, 4, 2 or 1 bytes) that divides both the address and the length.
fn unit_for(ptr: *mut u8, len: usize) -> usize {
    [8, 4, 2]
        .into_iter()
        .find(|&u| ptr.align_offset(u) == 0 && len.checked_rem(u) == Some(0))
        .unwrap_or(1)
}

/// Stores one unit with a `Relaxed` atomic store at `base + at`.
///
/// # Safety
///
/// `base + at .. base + at + size_of::<U>()` must lie inside a writable mapping that outlives the
/// call, and `base + at` must be aligned for `U`.
unsafe fn store_unit<U: Unit>(base: *mut u8, at: usize, value: U) {
    // SAFETY:
    // - the caller guarantees `base + at` is in bounds of the mapping.
    let ptr = unsafe { base.add(at) }.cast::<U>();
    // SAFETY:
    // - in bounds, aligned and writable (caller).
    unsafe { U::store_relaxed(ptr, value) };
}

/// The integer widths copies move, each with its atomic counterpart.
trait Unit: bytemuck::Pod {
    /// `Relaxed` atomic load.
    ///
    /// # Safety
    ///
    /// `ptr` must be aligned and point into a mapping (read-only is fine: the load is `Relaxed`
    /// and at most 8 bytes) that outlives the call.
    unsafe fn load_relaxed(ptr: *mut Self) -> Self;

    /// `Relaxed` atomic store.
    ///
    /// # Safety
    ///
    /// `ptr` must be aligned and point into a writable mapping that outlives the call.
    unsafe fn store_relaxed(ptr: *mut Self, value: Self);
}

macro_rules! unit_impl {
    ($($prim:ty => $atomic:ty),*) => {$(
        impl Unit for $prim {
            #[inline]
            unsafe fn load_relaxed(ptr: *mut Self) -> Self {
                // SAFETY:
                // - aligned and valid for reads for the call (caller), so the shared reference
                //   (which, unlike `from_ptr`, needs no write permission) is sound; a `Relaxed`
                //   load of at most 8 bytes is valid on read-only memory;
                // - every access of this crate to shared words is atomic and of the width the
                //   copy-unit rule gives these bytes, so no non-atomic or mixed-size access races
                //   it.
                unsafe { &*ptr.cast::<$atomic>() }.load(Ordering::Relaxed)
            }
            #[inline]
            unsafe fn store_relaxed(ptr: *mut Self, value: Self) {
                // SAFETY:
                // - aligned and valid for reads and writes for the call (caller);
                // - every access of this crate to shared words is atomic and of the width the
                //   copy-unit rule gives these bytes, so no non-atomic or mixed-size access races
                //   it.
                unsafe { <$atomic>::from_ptr(ptr) }.store(value, Ordering::Relaxed);
            }
        }
    )*};
}

unit_impl!(u8 => AtomicU8, u16 => AtomicU16, u32 => AtomicU32, u64 => AtomicU64);

/// The low 32 bits of a `u64` counter of the mapping, as the `futex` system call takes its word
/// (`wait::Futex::LowHalf`): for the kernel only. Nothing in this crate loads or stores through
/// the result, since a 32-bit access to bytes that are also accessed as 64 bits would be a
/// mixed-size access (module docs); the kernel's comparison and queueing by address are outside
/// the Rust memory model, as every other process's accesses are.
pub(crate) fn low_half_for_kernel(counter: &AtomicU64) -> &AtomicU32 {
    let base = std::ptr::from_ref(counter).cast::<AtomicU32>();
    // The low half is the first four bytes on little-endian targets, the last four otherwise.
    let half = if cfg!(target_endian = "little") {
        base
    } else {
        base.wrapping_add(1)
    };
    // SAFETY:
    // - `counter` is 8 bytes, 8-aligned, so either 4-byte half is in bounds and 4-aligned, and
    //   lives as long as the borrow of `counter`;
    // - `AtomicU32` allows shared mutation, so the reference promises no immutability;
    // - it is never accessed through by Rust code (above): the kernel alone reads it.
    unsafe { &*half }
}

/// How many times this process is a fork away from the process that first called
/// [`watch_forks`]: bumped in a child by the `pthread_atfork` handler that registers.
static FORKS: AtomicU32 = AtomicU32::new(0);

/// Registers (once) the handler behind [`fork_generation`]; returns the generation.
pub(crate) fn watch_forks() -> u32 {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    extern "C" fn in_child() {
        // Relaxed: read only by this process's threads (after the fork, only the forking one).
        // An atomic add is async-signal-safe, as a fork handler must be.
        FORKS.fetch_add(1, Ordering::Relaxed);
    }
    REGISTER.call_once(|| {
        // SAFETY: `pthread_atfork` only stores the handler, a plain `extern "C"` function that
        // does nothing but an atomic add (safe in a forked child, where only async-signal-safe
        // calls are allowed) and lives as long as the program. A failure (ENOMEM) leaves forks
        // undetected: then a child writes its claims into its parent's record.
        let _ = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    });
    fork_generation()
}

/// The fork generation (see [`watch_forks`], which must have been called): a handle that
/// keeps its process's record in the segment compares it to tell that it now runs in a forked
/// child, whose operations must not write into the parent's record.
#[inline]
pub(crate) fn fork_generation() -> u32 {
    // Relaxed: see `in_child`.
    FORKS.load(Ordering::Relaxed)
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
        assert_eq!(r.write_bytes(usize::MAX, &[1], 1), Err(Access::OutOfBounds));
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
    fn the_copy_unit_is_the_width_of_the_element_scalars() {
        use crate::layout::{Field, Scalar, StructLayout};
        // Scalars and arrays of them: their own width, whatever the total size.
        assert_eq!(unit_of::<u8>(), 1);
        assert_eq!(unit_of::<i16>(), 2);
        assert_eq!(unit_of::<u32>(), 4);
        assert_eq!(unit_of::<f32>(), 4);
        assert_eq!(unit_of::<u64>(), 8);
        assert_eq!(unit_of::<[u32; 2]>(), 4, "8 bytes of u32 stay 4-byte units");
        assert_eq!(unit_of::<[u8; 32]>(), 1);
        assert_eq!(unit_of::<[[f64; 2]; 3]>(), 8);
        // Records: one width if every scalar has it, else the narrowest.
        static U16S: StructLayout = StructLayout::new(
            "U16s",
            "",
            &[
                Field::new("a", 0, &Layout::scalar(Scalar::U16), ""),
                Field::new("b", 2, &Layout::scalar(Scalar::I16), ""),
            ],
        );
        static MIXED: StructLayout = StructLayout::new(
            "Mixed",
            "",
            &[
                Field::new("a", 0, &Layout::scalar(Scalar::U32), ""),
                Field::new("b", 4, &Layout::scalar(Scalar::F32), ""),
                Field::new("c", 8, &Layout::scalar(Scalar::U64), ""),
            ],
        );
        static WITH_BYTE: StructLayout = StructLayout::new(
            "WithByte",
            "",
            &[
                Field::new("c", 0, &Layout::scalar(Scalar::U64), ""),
                Field::new(
                    "flag",
                    8,
                    &Layout::array(&Layout::scalar(Scalar::U8), 8),
                    "",
                ),
            ],
        );
        assert_eq!(copy_unit(&Layout::structure(4, 2, &U16S)), 2);
        assert_eq!(copy_unit(&Layout::structure(16, 8, &MIXED)), 4);
        assert_eq!(copy_unit(&Layout::structure(16, 8, &WITH_BYTE)), 1);
        // Zeroing new bytes uses the alignment of the range instead.
        let m = anon(64);
        let base = m.region().ptr_for(0, 64, false).unwrap();
        assert_eq!(unit_for(base, 64), 8);
        assert_eq!(unit_for(base, 12), 4);
    }

    #[test]
    fn a_u32_slice_copy_round_trips_with_the_atomic_view_of_each_word() {
        let m = anon(64);
        let r = m.region();
        // An 8-aligned range of whole u32 pairs: once copied in 8-byte units, now in 4-byte ones.
        r.write_slice(8, &[1u32, 2, 3, 4]).unwrap();
        r.atomic_u32(12).unwrap().fetch_add(10, Ordering::Relaxed);
        let mut out = [0u32; 4];
        r.read_slice(8, &mut out).unwrap();
        assert_eq!(out, [1, 12, 3, 4]);
        // A range misaligned for the element's unit is refused, not split into narrower units.
        assert_eq!(r.read_slice(10, &mut out[..1]), Err(Access::Misaligned));
    }

    #[test]
    fn read_only_regions_load_with_atomics() {
        let m = anon(32);
        let rw = m.region();
        rw.write::<u64>(8, 0x0102_0304_0506_0708).unwrap();
        rw.write::<u32>(16, 42).unwrap();
        let ro = Region {
            writable: false,
            ..rw
        };
        assert_eq!(ro.read::<u64>(8).unwrap(), 0x0102_0304_0506_0708);
        assert_eq!(
            ro.load_u64(8, Ordering::Acquire).unwrap(),
            0x0102_0304_0506_0708
        );
        assert_eq!(ro.load_u32(16, Ordering::SeqCst).unwrap(), 42);
        let mut out = [0u8; 4];
        ro.read_slice(8, &mut out).unwrap();
        assert_eq!(out, [8, 7, 6, 5]);
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
