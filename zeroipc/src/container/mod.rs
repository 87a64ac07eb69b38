//! The container kinds (FORMAT.md §4): fixed-length arrays and the bounded lock-free queue and
//! stack. Ring, Map, Set and Pool join them here, one file each.

pub(crate) mod array;
pub(crate) mod dynamic;
pub(crate) mod queue;
pub(crate) mod slotted;
pub(crate) mod stack;

use crate::error::Result;
use crate::kind::{self, Mismatch};
use crate::layout::ShmLayout;

/// What a container is created with: a number of elements and their size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Capacity {
    /// Elements asked for (normalised by the kind's `plan`, e.g. rounded up).
    pub(crate) capacity: u64,
    /// Bytes per element.
    pub(crate) elem: u32,
}

impl Capacity {
    /// `capacity` elements of `T`.
    pub(crate) fn of<T: ShmLayout>(capacity: usize) -> Result<Self> {
        Ok(Self {
            capacity: u64::try_from(capacity).unwrap_or(u64::MAX),
            elem: kind::elem_size::<T>()?,
        })
    }

    /// How a stored capacity of `found` differs from this one, if it does.
    pub(crate) fn mismatch(&self, found: u64) -> Option<Mismatch> {
        (self.capacity != found).then_some(Mismatch::Capacity {
            requested: self.capacity,
            found,
        })
    }
}
