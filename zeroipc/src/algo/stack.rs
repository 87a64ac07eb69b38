//! The ZeroIPC stack (FORMAT.md §4.3): a bounded LIFO whose `top` index is claimed with a CAS
//! and whose slots carry a 4-state word (EMPTY → WRITING → READY → READING → EMPTY), so that a
//! slot is never read while being written or overwritten while being read.
//!
//! The slot-state CAS is retried only for a bounded time: a peer that died between moving `top`
//! and finishing its slot would otherwise block the slot forever. On giving up the operation
//! tries to undo its `top` move and reports the stalled slot. This is the reference behaviour;
//! like it, an undo that fails because others moved `top` meanwhile leaves the slot to be
//! reported again by later operations (a crashed peer is not fully recoverable in this format).

use std::sync::atomic::Ordering;

use super::Word;

/// Slot states.
pub(crate) const EMPTY: u32 = 0;
pub(crate) const WRITING: u32 = 1;
pub(crate) const READY: u32 = 2;
pub(crate) const READING: u32 = 3;

/// The shared state a stack operates on. `top` is an `i32` stored as its bits.
pub(crate) trait Store {
    /// The word type.
    type W: Word;
    /// The items.
    type Item;
    /// The index of the top element (`-1` when empty), as `i32` bits.
    fn top(&self) -> &Self::W;
    /// The state word of `slot` (`slot < capacity`); `None` only if the store is corrupt.
    fn state(&self, slot: u32) -> Option<&Self::W>;
    /// Number of slots.
    fn capacity(&self) -> u32;
    /// Writes the item of a slot this thread owns.
    fn write(&self, slot: u32, item: Self::Item);
    /// Reads the item of a slot this thread owns.
    fn read(&self, slot: u32) -> Self::Item;
    /// Called between attempts on a busy slot; returns `false` once the caller should give up.
    fn keep_waiting(&self, attempt: u32) -> bool;
}

/// Why an operation did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Push: no free slot.
    Full,
    /// The slot stayed in `state` for longer than the wait bound.
    Stalled { slot: u32, state: u32 },
    /// `top` is outside `-1..capacity`.
    Corrupt { top: i32 },
}

/// Pushes `item`; on failure the item comes back with the reason.
pub(crate) fn push<S: Store>(s: &S, item: S::Item) -> Result<(), (S::Item, Failure)> {
    let cap = s.capacity();
    let slot = loop {
        // Relaxed: validated by the CAS.
        let c = s.top().load(Ordering::Relaxed) as i32;
        if c < -1 || c >= cap as i32 {
            return Err((item, Failure::Corrupt { top: c }));
        }
        if c >= cap as i32 - 1 {
            return Err((item, Failure::Full));
        }
        // SYNC POINT (top): AcqRel orders our claim with other pushers and poppers of `top`;
        // the slot's contents are handed over by its state word below.
        if s.top()
            .cas_weak(
                c as u32,
                (c + 1) as u32,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            break (c + 1) as u32;
        }
    };
    let Some(state) = s.state(slot) else {
        return Err((item, Failure::Corrupt { top: slot as i32 }));
    };
    let mut attempt = 0;
    loop {
        // SYNC POINT (slot state): Acquire of EMPTY pairs with the popper's Release store of
        // EMPTY, so its read of the old item happened before our write.
        match state.cas_weak(EMPTY, WRITING, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => break,
            Err(seen) => {
                if !s.keep_waiting(attempt) {
                    // Undo our claim if nobody moved top since; then report the stuck slot.
                    let _ = s.top().cas(
                        slot,
                        slot.wrapping_sub(1),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                    return Err((item, Failure::Stalled { slot, state: seen }));
                }
                attempt = attempt.saturating_add(1);
            }
        }
    }
    s.write(slot, item);
    // SYNC POINT (slot state): Release publishes the item to the popper's Acquire CAS
    // READY → READING.
    state.store(READY, Ordering::Release);
    Ok(())
}

/// Pops the top item; `Ok(None)` when empty.
pub(crate) fn pop<S: Store>(s: &S) -> Result<Option<S::Item>, Failure> {
    let cap = s.capacity();
    let slot = loop {
        let c = s.top().load(Ordering::Relaxed) as i32;
        if c < -1 || c >= cap as i32 {
            return Err(Failure::Corrupt { top: c });
        }
        if c < 0 {
            return Ok(None);
        }
        // SYNC POINT (top): as in `push`.
        if s.top()
            .cas_weak(
                c as u32,
                (c - 1) as u32,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            break c as u32;
        }
    };
    let state = s.state(slot).ok_or(Failure::Corrupt { top: slot as i32 })?;
    let mut attempt = 0;
    loop {
        // SYNC POINT (slot state): Acquire of READY pairs with the pusher's Release store.
        match state.cas_weak(READY, READING, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => break,
            Err(seen) => {
                if !s.keep_waiting(attempt) {
                    let _ = s.top().cas(
                        slot.wrapping_sub(1),
                        slot,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                    return Err(Failure::Stalled { slot, state: seen });
                }
                attempt = attempt.saturating_add(1);
            }
        }
    }
    let item = s.read(slot);
    // SYNC POINT (slot state): Release hands the slot back to a pusher's Acquire CAS
    // EMPTY → WRITING, ordering our read before its write.
    state.store(EMPTY, Ordering::Release);
    Ok(Some(item))
}

/// Elements on the stack: `top + 1`, clamped to `0..=capacity`.
pub(crate) fn len<S: Store>(s: &S) -> u32 {
    let c = s.top().load(Ordering::Acquire) as i32;
    if c < 0 {
        0
    } else {
        (c as u32).saturating_add(1).min(s.capacity())
    }
}
