//! The lock-free algorithms of the structures, written against small traits instead of the
//! mapping, so that the very same code runs on shared memory and, in `tests/loom.rs`, under the
//! `loom` model checker (which swaps in its own atomics and checks every interleaving).
//!
//! Nothing in here is `unsafe` or touches memory directly: the stores hand out words and copy
//! items. This module must not refer to other crate modules, because the loom tests include it
//! by path.

use std::sync::atomic::{AtomicU32, Ordering};

/// How many times an operation retries a CAS that others keep winning before it reports the
/// structure as unusable. Live peers never come close; a process rewriting the counters in a
/// loop could otherwise keep an operation spinning for ever.
pub(crate) const MAX_RETRIES: u32 = 1 << 20;

/// A state that live peers following the format cannot produce: the structure's words were
/// corrupted, or are being rewritten by a process that does not follow the algorithm. Reported
/// instead of full/empty so that a caller can tell a broken structure from a busy one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anomaly {
    /// The sequence word of position `pos` is ahead of it while the counter still reads `pos`.
    SeqAhead {
        /// The position (counter value).
        pos: u32,
        /// The sequence word found.
        seq: u32,
    },
    /// `MAX_RETRIES` attempts in a row lost their CAS or found inconsistent words.
    Livelock,
    /// The store has no sequence word for a slot the mask allows.
    NoSlot {
        /// The slot.
        slot: u32,
    },
}

/// Which side of a structure an operation is on, for the claim hooks of the stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Writes an item.
    Push,
    /// Takes an item.
    Pop,
}

pub(crate) mod stack;
pub(crate) mod sync;
pub(crate) mod vyukov;

/// A shared 32-bit word.
pub(crate) trait Word {
    /// `AtomicU32::load`.
    fn load(&self, order: Ordering) -> u32;
    /// `AtomicU32::store`.
    fn store(&self, value: u32, order: Ordering);
    /// `AtomicU32::compare_exchange_weak`.
    fn cas_weak(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32>;
    /// `AtomicU32::compare_exchange`.
    fn cas(&self, current: u32, new: u32, success: Ordering, failure: Ordering)
    -> Result<u32, u32>;
    /// `AtomicU32::fetch_add` (wrapping).
    fn fetch_add(&self, value: u32, order: Ordering) -> u32;
    /// `AtomicU32::swap`.
    fn swap(&self, value: u32, order: Ordering) -> u32;
}

impl Word for AtomicU32 {
    #[inline]
    fn load(&self, order: Ordering) -> u32 {
        AtomicU32::load(self, order)
    }
    #[inline]
    fn store(&self, value: u32, order: Ordering) {
        AtomicU32::store(self, value, order);
    }
    #[inline]
    fn cas_weak(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        self.compare_exchange_weak(current, new, success, failure)
    }
    #[inline]
    fn cas(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        self.compare_exchange(current, new, success, failure)
    }
    #[inline]
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_add(self, value, order)
    }
    #[inline]
    fn swap(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::swap(self, value, order)
    }
}
