//! What the structure modules share: creating-or-opening, the structure error, element sizes,
//! and the shape common to Queue and Stack (FORMAT.md §4.2, §4.3): a 16-byte header, then
//! `capacity` slots, then one 32-bit word per slot at the next 8-byte boundary.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::mem::size_of;

use crate::error::{Error, Result};
use crate::layout::ShmLayout;
use crate::raw::{Access, Anchored, Region, Slots, Words};
use crate::segment::Segment;
use crate::table::align8;

/// Size of the Queue and Stack headers.
const SLOTTED_HEADER: u64 = 16;
/// [`SLOTTED_HEADER`] as an offset into a region.
pub(crate) const SLOTTED_HEADER_LEN: usize = 16;

/// A structure whose header or geometry is inconsistent.
pub(crate) fn corrupt(segment: &Segment, name: &str, kind: &'static str, reason: String) -> Error {
    Error::CorruptStructure {
        segment: segment.name().to_owned(),
        name: name.to_owned(),
        kind,
        reason,
    }
}

/// Opens a structure, or creates it when its entry does not exist (opening again if another
/// process created it first), then checks that its capacity is `capacity`.
pub(crate) fn open_or_create<H>(
    segment: &Segment,
    name: &str,
    capacity: usize,
    open: impl Fn() -> Result<H>,
    create: impl FnOnce() -> Result<H>,
    capacity_of: impl Fn(&H) -> usize,
) -> Result<H> {
    let handle = match open() {
        Err(Error::EntryNotFound { .. }) => match create() {
            // Another process created it between our lookup and our creation.
            Err(Error::DuplicateEntry { .. }) => open()?,
            created => return created,
        },
        opened => opened?,
    };
    let found = capacity_of(&handle);
    if found != capacity {
        return Err(Error::CapacityMismatch {
            segment: segment.name().to_owned(),
            name: name.to_owned(),
            requested: capacity as u64,
            found: found as u64,
        });
    }
    Ok(handle)
}

/// `size_of::<T>()` as the format's `u32` element size, refusing zero-sized and oversized types.
pub(crate) fn elem_size<T: ShmLayout>() -> Result<u32> {
    let size = size_of::<T>();
    u32::try_from(size)
        .ok()
        .filter(|&e| e > 0)
        .ok_or_else(|| Error::InvalidArgument {
            what: "T",
            reason: format!("elements of `{size}` bytes cannot be stored"),
        })
}

/// Byte offsets of a slotted structure: where the per-slot words start and the total size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlottedGeometry {
    pub(crate) words_offset: u64,
    pub(crate) total: u64,
}

/// The geometry of `capacity` slots of `elem` bytes, or `None` on overflow.
pub(crate) fn slotted_geometry(capacity: u64, elem: u64) -> Option<SlottedGeometry> {
    let slots = capacity.checked_mul(elem)?;
    let words_offset = align8(slots)?.checked_add(SLOTTED_HEADER)?;
    let total = capacity.checked_mul(4)?.checked_add(words_offset)?;
    Some(SlottedGeometry {
        words_offset,
        total,
    })
}

/// The slots and per-slot words of the slotted structure in `region`, after checking the stored
/// element size against `T` and the stored capacity against the entry size.
pub(crate) fn open_slotted<T: ShmLayout>(
    segment: &Segment,
    name: &str,
    kind: &'static str,
    region: &Region<'_>,
    capacity: u32,
    elem: u32,
) -> Result<(Anchored<Slots<'static, T>>, Anchored<Words<'static>>)> {
    if elem as usize != size_of::<T>() {
        return Err(Error::TypeMismatch {
            segment: segment.name().to_owned(),
            name: name.to_owned(),
            expected: size_of::<T>(),
            found: format!("`{elem}`-byte elements, capacity `{capacity}`"),
        });
    }
    let size = region.len() as u64;
    let geometry = slotted_geometry(u64::from(capacity), u64::from(elem))
        .ok_or_else(|| corrupt(segment, name, kind, "the geometry overflows".into()))?;
    if geometry.total != size {
        return Err(corrupt(
            segment,
            name,
            kind,
            format!(
                "capacity `{capacity}` of `{elem}`-byte elements needs `{}` bytes, the entry has \
                 `{size}`",
                geometry.total
            ),
        ));
    }
    let words_at = usize::try_from(geometry.words_offset)
        .map_err(|_| corrupt(segment, name, kind, "out of range".into()))?;
    let access = |a| access_error(segment, name, kind, a);
    let slots = region
        .slots::<T>(SLOTTED_HEADER_LEN, capacity as usize)
        .map_err(access)?;
    let words = region.words(words_at, capacity as usize).map_err(access)?;
    let slots = anchor(segment, Anchored::slots(segment.mapping(), slots))?;
    let words = anchor(segment, Anchored::words(segment.mapping(), words))?;
    Ok((slots, words))
}

/// A view anchored to the segment's mapping; `None` (a view outside the mapping) cannot happen
/// for views made from the segment's own regions, and is reported as an internal error.
pub(crate) fn anchor<V>(segment: &Segment, anchored: Option<Anchored<V>>) -> Result<Anchored<V>> {
    anchored.ok_or_else(|| Error::Internal {
        segment: segment.name().to_owned(),
        what: "anchor a view of an entry to its mapping",
        problem: "outside the mapping",
    })
}

/// A refused access while opening a structure: read-only segments cannot host structures whose
/// every operation writes; anything else means the layout is inconsistent.
pub(crate) fn access_error(segment: &Segment, name: &str, kind: &'static str, a: Access) -> Error {
    match a {
        Access::ReadOnly => Error::ReadOnly {
            segment: segment.name().to_owned(),
        },
        Access::Misaligned => corrupt(segment, name, kind, "a word is misaligned".into()),
        Access::OutOfBounds => corrupt(
            segment,
            name,
            kind,
            "a section lies outside the entry".into(),
        ),
    }
}
