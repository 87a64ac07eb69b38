//! A fixed-length array of `T` in a segment (FORMAT.md §4.1).
//!
//! ```text
//! reference layout (C++, Python, Go, and what we write):  +0 u64 capacity   +8  elements
//! C layout (read only):                                    +0 u64 capacity   +8  u64 elem_size
//!                                                                            +16 elements
//! ```
//!
//! The format stores no element type; the entry size and the capacity must agree with
//! `size_of::<T>()`, which is how a wrong type is caught at open ([`Error::TypeMismatch`]). The C
//! implementation's 16-byte header is recognised by its `elem_size` word and the entry size, and
//! only when the reference layout does not fit: a reference array whose first element happens to
//! equal the element size of the requested type can, for one capacity, also pass as a C array of
//! a smaller type. Both readings stay inside the entry; open arrays with the type they hold.
//!
//! Concurrency and crash behaviour are documented on [`Array`].

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::fmt;
use std::marker::PhantomData;
use std::mem::size_of;
use std::sync::atomic::Ordering;

use crate::container::Capacity;
use crate::error::{Error, Result};
use crate::kind::{
    self, Exercise, Handle, Invalid, Kind, Mismatch, Opened, StructureDefect, StructureKind,
};
use crate::layout::ShmLayout;
use crate::raw::{Access, Anchored, Region};
use crate::segment::Segment;

/// Size of the reference array header (`u64 capacity`).
const HEADER: u64 = 8;
/// Size of the C implementation's array header (`u64 capacity, u64 elem_size`).
const C_HEADER: u64 = 16;
/// [`HEADER`] as an in-region offset.
const HEADER_LEN: usize = 8;

/// Which array header a stored array uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArrayFormat {
    /// `{u64 capacity}` then the elements: C++, Python, Go and this crate.
    Reference,
    /// `{u64 capacity, u64 elem_size}` then the elements: the C implementation.
    CHeader,
}

/// A fixed-length array of `T` living in a [`Segment`].
///
/// Elements are plain memory with no concurrency protocol: [`get`](Array::get) and
/// [`set`](Array::set) copy whole values, and a concurrent writer in another process can make a
/// reader see a torn value (any bit pattern is a valid `T`, so this is never undefined
/// behaviour). Each scalar inside an element is copied with single atomic accesses of its own
/// width (a record whose scalars differ in width, in units of its narrowest scalar), so scalars
/// of one width are never torn, and these copies never mix access sizes with the atomic
/// operations below. For counters and flags shared between processes, arrays of `u32`, `i32`, `u64` and
/// `i64` offer atomic operations ([`Array::<u64>::fetch_add`](Array::fetch_add), ...), which
/// interoperate with the C/C++ implementations' `std::atomic` accesses to the same words.
///
/// A peer that crashes mid-write leaves at most the element it was writing partially updated.
///
/// ```no_run
/// use zeroipc::{Array, Segment};
///
/// let seg = Segment::create("/demo", 1 << 16)?;
/// let hits = Array::<u64>::create(&seg, "hits", 8)?;
/// hits.fetch_add(3, 1, std::sync::atomic::Ordering::Relaxed)?;
/// let temps = Array::<f32>::create(&seg, "temps", 4)?;
/// temps.copy_from_slice(0, &[20.5, 21.0, 21.5, 22.0])?;
/// assert_eq!(temps.to_vec(), [20.5, 21.0, 21.5, 22.0]);
/// # Ok::<(), zeroipc::Error>(())
/// ```
pub struct Array<T: ShmLayout> {
    segment: Segment,
    name: String,
    data: Anchored<Region<'static>>,
    len: usize,
    format: ArrayFormat,
    _elem: PhantomData<fn() -> T>,
}

impl<T: ShmLayout> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("segment", &self.segment.name())
            .field("name", &self.name)
            .field("elem", &T::LAYOUT.type_name())
            .field("len", &self.len)
            .field("format", &self.format)
            .finish()
    }
}

/// The array kind: a capacity and an element size.
#[derive(Debug)]
pub(crate) enum ArrayKind {}

/// Where a stored array's elements lie.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArrayGeometry {
    pub(crate) capacity: u64,
    pub(crate) elem: u32,
    pub(crate) header: u64,
    pub(crate) format: ArrayFormat,
}

impl Kind for ArrayKind {
    const KIND: StructureKind = StructureKind::Array;
    const PARTS: &'static [&'static str] = &[""];
    type Params = Capacity;
    type Geometry = ArrayGeometry;

    fn plan(params: Capacity) -> Result<Capacity, (&'static str, String)> {
        if params.capacity == 0 {
            return Err((
                "capacity",
                "an array needs 1 or more elements, not `0`".into(),
            ));
        }
        if Self::sizes(&params).is_none() {
            return Err((
                "capacity",
                format!(
                    "`{}` elements of `{}` bytes overflow the size of an entry",
                    params.capacity, params.elem
                ),
            ));
        }
        Ok(params)
    }

    fn sizes(params: &Capacity) -> Option<Vec<u64>> {
        let data = params.capacity.checked_mul(u64::from(params.elem))?;
        Some(vec![data.checked_add(HEADER)?])
    }

    fn init(params: &Capacity, parts: &[Region<'_>]) -> Result<(), Access> {
        let [r] = parts else {
            return Err(Access::OutOfBounds);
        };
        r.write::<u64>(0, params.capacity)?;
        r.zero(HEADER_LEN, r.len().saturating_sub(HEADER_LEN))
    }

    fn validate(parts: &[Region<'_>], elem: Option<u32>) -> Result<ArrayGeometry, Invalid> {
        let part = kind::only(parts)?;
        let size = part.len() as u64;
        let capacity = part.read::<u64>(0).map_err(|_| {
            Invalid::Corrupt(format!(
                "the entry has `{size}` bytes, less than the 8-byte header"
            ))
        })?;
        if capacity == 0 {
            return Err(Invalid::Corrupt("the stored capacity is `0`".into()));
        }
        let geometry = |header, elem, format| ArrayGeometry {
            capacity,
            elem,
            header,
            format,
        };
        // The element size each header implies, if it implies one that fits in a `u32`.
        let reference = size
            .checked_sub(HEADER)
            .filter(|&d| d > 0 && d.checked_rem(capacity) == Some(0))
            .and_then(|d| d.checked_div(capacity))
            .and_then(|e| u32::try_from(e).ok());
        let c_elem = part.read::<u64>(8).ok();
        let c_fit = c_elem
            .filter(|&e| {
                e > 0
                    && capacity
                        .checked_mul(e)
                        .and_then(|d| d.checked_add(C_HEADER))
                        == Some(size)
            })
            .and_then(|e| u32::try_from(e).ok());
        let wanted = |e: u32| elem.is_none_or(|w| w == e);
        if let Some(e) = reference.filter(|&e| wanted(e)) {
            return Ok(geometry(HEADER, e, ArrayFormat::Reference));
        }
        if let Some(e) = c_fit.filter(|&e| wanted(e)) {
            return Ok(geometry(C_HEADER, e, ArrayFormat::CHeader));
        }
        // Explain the mismatch as precisely as the stored geometry allows.
        let found = match (c_fit, reference) {
            (Some(e), _) => format!("`{e}`-byte elements in the C layout, capacity `{capacity}`"),
            (None, Some(e)) => format!("`{e}`-byte elements, capacity `{capacity}`"),
            (None, None) => {
                return Err(Invalid::Corrupt(format!(
                    "capacity `{capacity}` does not fit the `{size}`-byte entry for any element \
                     size"
                )));
            }
        };
        Err(Invalid::ElemSize { found })
    }

    fn mismatch(requested: &Capacity, found: &ArrayGeometry) -> Option<Mismatch> {
        requested.mismatch(found.capacity)
    }

    fn describe(g: &ArrayGeometry) -> String {
        let layout = match g.format {
            ArrayFormat::Reference => "reference layout",
            ArrayFormat::CHeader => "C layout",
        };
        format!(
            "capacity `{}`, `{}`-byte elements, {layout}",
            g.capacity, g.elem
        )
    }

    fn len(_: &[Region<'_>], g: &ArrayGeometry) -> Option<u64> {
        Some(g.capacity)
    }

    fn audit(_: &[Region<'_>], _: &ArrayGeometry) -> Vec<StructureDefect> {
        // Elements are plain bytes: any content is sound.
        Vec::new()
    }
}

impl<T: ShmLayout> Handle for Array<T> {
    type Kind = ArrayKind;

    fn elem() -> Result<u32> {
        kind::elem_size::<T>()
    }
    fn layout() -> Option<&'static crate::layout::Layout> {
        Some(T::LAYOUT)
    }

    fn from_parts(opened: Opened<'_, ArrayKind>) -> Result<Self> {
        let g = opened.geometry;
        let len = usize::try_from(g.capacity).map_err(|_| {
            kind::corrupt(
                opened.segment,
                opened.name,
                StructureKind::Array,
                format!("capacity `{}` does not fit this address space", g.capacity),
            )
        })?;
        let data_len = g.capacity.checked_mul(u64::from(g.elem));
        let data = opened.region(0, g.header, data_len.unwrap_or(u64::MAX))?;
        Ok(Self {
            segment: opened.segment.clone(),
            name: opened.name.to_owned(),
            data,
            len,
            format: g.format,
            _elem: PhantomData,
        })
    }
}

impl<T: ShmLayout> Exercise for Array<T> {
    // The assertions are this crate's own invariants, whatever the stored bytes: a failure is
    // a bug the fuzzer has found.
    #[allow(clippy::panic)]
    fn exercise(&mut self) {
        // Every element goes through the same validated offset arithmetic, so reading the first
        // and last few (and all of small arrays) covers the code.
        let len = self.len();
        assert_eq!(self.iter().size_hint(), (len, Some(len)));
        let head = self.iter().take(16).count();
        let tail = self.iter().rev().take(16).count();
        assert_eq!((head, tail), (len.min(16), len.min(16)));
        if len <= 1024 {
            assert_eq!(self.iter().count(), len, "iteration visits every element");
            assert_eq!(self.to_vec().len(), len);
        }
        if let Some(last) = len.checked_sub(1)
            && let Ok(v) = self.get(last)
        {
            let _ = self.set(last, v);
        }
        assert!(self.get(len).is_err(), "reading past the end fails");
    }
}

impl<T: ShmLayout> Array<T> {
    /// Creates the array `name` with `capacity` zeroed elements, in the reference layout.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for capacity 0 or a size that overflows;
    /// [`Error::InvalidEntryName`], [`Error::DuplicateEntry`], [`Error::TableFull`],
    /// [`Error::OutOfSpace`], [`Error::ReadOnly`]: the segment is unchanged.
    pub fn create(segment: &Segment, name: &str, capacity: usize) -> Result<Self> {
        kind::create(segment, name, Capacity::of::<T>(capacity)?)
    }

    /// Opens the existing array `name`, checking that it holds elements of `size_of::<T>()`
    /// bytes.
    ///
    /// The format stores only the element size, not the type, so open an array with the type
    /// it was created with. In particular, within one process, do not use two handles of
    /// different scalar widths on one entry at once (say `Array::<u64>` and
    /// `Array::<[u32; 2]>`): their concurrent accesses to the same words would differ in width,
    /// which the Rust memory model does not allow.
    ///
    /// # Errors
    ///
    /// [`Error::EntryNotFound`]; [`Error::TypeMismatch`] when the stored geometry implies
    /// another element size; [`Error::CorruptEntry`] / [`Error::CorruptStructure`] when the
    /// entry or the array header is malformed.
    pub fn open(segment: &Segment, name: &str) -> Result<Self> {
        kind::open(segment, name)
    }

    /// Opens `name` if it exists (its capacity must equal `capacity`), otherwise creates it.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`create`](Self::create), and [`Error::CapacityMismatch`].
    pub fn open_or_create(segment: &Segment, name: &str, capacity: usize) -> Result<Self> {
        kind::open_or_create(segment, name, Capacity::of::<T>(capacity)?)
    }

    /// The entry name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements (never true for arrays this crate opens).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Which header the stored array uses.
    pub fn format(&self) -> ArrayFormat {
        self.format
    }

    /// Byte offset of element `index` in the data region, or `None` when out of bounds.
    fn offset(&self, index: usize) -> Option<usize> {
        if index >= self.len {
            return None;
        }
        index.checked_mul(size_of::<T>())
    }

    fn out_of_bounds(&self, index: usize) -> Error {
        Error::IndexOutOfBounds {
            segment: self.segment.name().to_owned(),
            name: self.name.clone(),
            index,
            len: self.len,
        }
    }

    fn access(&self, access: Access, index: usize) -> Error {
        match access {
            Access::ReadOnly => Error::ReadOnly {
                segment: self.segment.name().to_owned(),
            },
            Access::OutOfBounds | Access::Misaligned => self.out_of_bounds(index),
        }
    }

    /// A copy of element `index`.
    ///
    /// A concurrent writer of a multi-word `T` can tear the copy (some words old, some new):
    /// every bit pattern is a valid `T`, so the result is a meaningless value, never undefined
    /// behaviour. Each scalar of `T` is copied whole (see [`Array`]).
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`].
    pub fn get(&self, index: usize) -> Result<T> {
        let offset = self
            .offset(index)
            .ok_or_else(|| self.out_of_bounds(index))?;
        self.data
            .get()
            .read::<T>(offset)
            .map_err(|a| self.access(a, index))
    }

    /// Overwrites element `index`.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`], [`Error::ReadOnly`].
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        let offset = self
            .offset(index)
            .ok_or_else(|| self.out_of_bounds(index))?;
        self.data
            .get()
            .write(offset, value)
            .map_err(|a| self.access(a, index))
    }

    /// Copies `out.len()` elements starting at `start` into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`] when `start + out.len()` exceeds the length.
    pub fn copy_to_slice(&self, start: usize, out: &mut [T]) -> Result<()> {
        let offset = self.range_offset(start, out.len())?;
        self.data
            .get()
            .read_slice(offset, out)
            .map_err(|a| self.access(a, start))
    }

    /// Copies `src` into the array starting at element `start`.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`] when `start + src.len()` exceeds the length;
    /// [`Error::ReadOnly`].
    pub fn copy_from_slice(&self, start: usize, src: &[T]) -> Result<()> {
        let offset = self.range_offset(start, src.len())?;
        self.data
            .get()
            .write_slice(offset, src)
            .map_err(|a| self.access(a, start))
    }

    fn range_offset(&self, start: usize, count: usize) -> Result<usize> {
        match start.checked_add(count) {
            Some(end) if end <= self.len => start
                .checked_mul(size_of::<T>())
                .ok_or_else(|| self.out_of_bounds(start)),
            _ => Err(self.out_of_bounds(start.saturating_add(count).saturating_sub(1))),
        }
    }

    /// Copies every element into a new vector.
    pub fn to_vec(&self) -> Vec<T> {
        let mut out = vec![T::zeroed(); self.len];
        // Cannot fail: the data region holds exactly `len` elements.
        let _ = self.data.get().read_slice(0, &mut out);
        out
    }

    /// Sets every element to `value`.
    ///
    /// # Errors
    ///
    /// [`Error::ReadOnly`].
    pub fn fill(&self, value: T) -> Result<()> {
        for index in 0..self.len {
            self.set(index, value)?;
        }
        Ok(())
    }

    /// An iterator over copies of the elements.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            array: self,
            next: 0,
            end: self.len,
        }
    }
}

/// Iterator over copies of an [`Array`]'s elements, from [`Array::iter`].
#[derive(Debug)]
pub struct Iter<'a, T: ShmLayout> {
    array: &'a Array<T>,
    next: usize,
    end: usize,
}

impl<T: ShmLayout> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.next >= self.end {
            return None;
        }
        let value = self.array.get(self.next).ok();
        self.next = self.next.saturating_add(1);
        value
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end.saturating_sub(self.next);
        (n, Some(n))
    }
}

impl<T: ShmLayout> DoubleEndedIterator for Iter<'_, T> {
    fn next_back(&mut self) -> Option<T> {
        if self.next >= self.end {
            return None;
        }
        self.end = self.end.saturating_sub(1);
        self.array.get(self.end).ok()
    }
}

impl<T: ShmLayout> ExactSizeIterator for Iter<'_, T> {}

impl<'a, T: ShmLayout> IntoIterator for &'a Array<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Atomic operations on arrays of 32- and 64-bit integers. The words are naturally aligned
/// (structure bases are 8-aligned and both headers are multiples of 8), so they are the same
/// hardware atomics that C11 `atomic_*` and C++ `std::atomic` use on the same bytes.
macro_rules! atomic_ops {
    ($ty:ty, $atomic:ident, $load:ident, $accessor:ident) => {
        impl Array<$ty> {
            /// Atomically loads element `index`. Works on read-only segments, where the load is
            /// `Relaxed` followed by a fence of `order`: exactly an `Acquire` load for `Acquire`,
            /// and for `SeqCst` ordered like one without joining the single total order of
            /// `SeqCst` operations.
            ///
            /// # Errors
            ///
            /// [`Error::IndexOutOfBounds`].
            ///
            /// # Panics
            ///
            /// When `order` is `Release` or `AcqRel`, as the standard atomics do.
            pub fn load(&self, index: usize, order: Ordering) -> Result<$ty> {
                let offset = self
                    .offset(index)
                    .ok_or_else(|| self.out_of_bounds(index))?;
                let bits = self
                    .data
                    .get()
                    .$load(offset, order)
                    .map_err(|a| self.access(a, index))?;
                Ok(bytemuck::cast(bits))
            }

            /// Atomically stores `value` into element `index`.
            ///
            /// # Errors
            ///
            /// [`Error::IndexOutOfBounds`], [`Error::ReadOnly`].
            ///
            /// # Panics
            ///
            /// When `order` is `Acquire` or `AcqRel`, as the standard atomics do.
            pub fn store(&self, index: usize, value: $ty, order: Ordering) -> Result<()> {
                self.word(index)?.store(value, order);
                Ok(())
            }

            /// Atomically adds `value` (wrapping) and returns the previous value.
            ///
            /// # Errors
            ///
            /// [`Error::IndexOutOfBounds`], [`Error::ReadOnly`].
            pub fn fetch_add(&self, index: usize, value: $ty, order: Ordering) -> Result<$ty> {
                Ok(self.word(index)?.fetch_add(value, order))
            }

            /// Atomically subtracts `value` (wrapping) and returns the previous value.
            ///
            /// # Errors
            ///
            /// [`Error::IndexOutOfBounds`], [`Error::ReadOnly`].
            pub fn fetch_sub(&self, index: usize, value: $ty, order: Ordering) -> Result<$ty> {
                Ok(self.word(index)?.fetch_sub(value, order))
            }

            /// Atomically replaces element `index` with `new` if it equals `current`. The inner
            /// result is `Ok(previous)` on success and `Err(actual)` otherwise, as in
            /// [`std::sync::atomic`].
            ///
            /// # Errors
            ///
            /// [`Error::IndexOutOfBounds`], [`Error::ReadOnly`].
            ///
            /// # Panics
            ///
            /// When `failure` is `Release` or `AcqRel`, as the standard atomics do.
            pub fn compare_exchange(
                &self,
                index: usize,
                current: $ty,
                new: $ty,
                success: Ordering,
                failure: Ordering,
            ) -> Result<std::result::Result<$ty, $ty>> {
                Ok(self
                    .word(index)?
                    .compare_exchange(current, new, success, failure))
            }

            fn word(&self, index: usize) -> Result<&std::sync::atomic::$atomic> {
                let offset = self
                    .offset(index)
                    .ok_or_else(|| self.out_of_bounds(index))?;
                self.data
                    .get()
                    .$accessor(offset)
                    .map_err(|a| self.access(a, index))
            }
        }
    };
}

atomic_ops!(u32, AtomicU32, load_u32, atomic_u32);
atomic_ops!(i32, AtomicI32, load_u32, atomic_i32);
atomic_ops!(u64, AtomicU64, load_u64, atomic_u64);
atomic_ops!(i64, AtomicI64, load_u64, atomic_i64);
