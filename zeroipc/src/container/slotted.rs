//! The shape Queue and Stack share (FORMAT.md §4.2, §4.3): a 16-byte header, then `capacity`
//! slots of `elem_size` bytes, then one 32-bit word per slot at the next 8-byte boundary.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use crate::container::Capacity;
use crate::kind::Invalid;
use crate::raw::Region;
use crate::table::align8;

/// Size of the Queue and Stack headers, where the slots start.
pub(crate) const HEADER: usize = 16;

/// Where the sections of a slotted structure lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slotted {
    /// Number of slots.
    pub(crate) capacity: u32,
    /// Bytes per slot.
    pub(crate) elem: u32,
    /// Offset of the per-slot words.
    pub(crate) words_at: usize,
    /// Size of the whole structure.
    pub(crate) total: u64,
}

impl Slotted {
    /// The geometry of `capacity` slots of `elem` bytes, or `None` on overflow.
    pub(crate) fn new(capacity: u32, elem: u32) -> Option<Self> {
        let slots = u64::from(capacity).checked_mul(u64::from(elem))?;
        let words_at = align8(slots)?.checked_add(HEADER as u64)?;
        let total = u64::from(capacity).checked_mul(4)?.checked_add(words_at)?;
        Some(Self {
            capacity,
            elem,
            words_at: usize::try_from(words_at).ok()?,
            total,
        })
    }

    /// The geometry a container created with `params` has, or `None` on overflow.
    pub(crate) fn of(params: &Capacity) -> Option<Self> {
        Self::new(u32::try_from(params.capacity).ok()?, params.elem)
    }

    /// Checks the stored `capacity` and `elem` against the entry `part` and the element size
    /// the caller needs (`None`: any).
    pub(crate) fn validate(
        part: &Region<'_>,
        capacity: u32,
        stored_elem: u32,
        elem: Option<u32>,
    ) -> Result<Self, Invalid> {
        if elem.is_some_and(|e| e != stored_elem) {
            return Err(Invalid::ElemSize {
                found: format!("`{stored_elem}`-byte elements, capacity `{capacity}`"),
            });
        }
        if stored_elem == 0 {
            return Err(Invalid::Corrupt("the element size is `0`".into()));
        }
        let size = part.len() as u64;
        let geometry = Self::new(capacity, stored_elem)
            .ok_or_else(|| Invalid::Corrupt("the geometry overflows".into()))?;
        if geometry.total != size {
            return Err(Invalid::Corrupt(format!(
                "capacity `{capacity}` of `{stored_elem}`-byte elements needs `{}` bytes, the \
                 entry has `{size}`",
                geometry.total
            )));
        }
        Ok(geometry)
    }

    /// The offset of the word of `slot`.
    pub(crate) fn word_at(&self, slot: u32) -> Option<usize> {
        (slot as usize).checked_mul(4)?.checked_add(self.words_at)
    }

    /// In words, for reports.
    pub(crate) fn describe(&self) -> String {
        format!(
            "capacity `{}`, `{}`-byte elements",
            self.capacity, self.elem
        )
    }
}

/// Reads the `u32` header field at `offset`, or explains that the entry is too short.
pub(crate) fn header_u32(part: &Region<'_>, offset: usize) -> Result<u32, Invalid> {
    part.read::<u32>(offset).map_err(|_| {
        Invalid::Corrupt(format!(
            "the entry has `{}` bytes, less than the 16-byte header",
            part.len()
        ))
    })
}
