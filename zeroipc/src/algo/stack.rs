//! The ZeroIPC stack (FORMAT.md §4.3): a bounded LIFO whose `top` index is claimed with a CAS
//! and whose slots carry a 4-state word (EMPTY → WRITING → READY → READING → EMPTY), so that a
//! slot is never read while being written or overwritten while being read.
//!
//! The slot-state CAS is retried only for a bounded time: a peer that died between moving `top`
//! and finishing its slot would otherwise block the slot forever. On giving up the operation
//! tries to undo its `top` move and reports the stalled slot, as the reference does. Unlike the
//! reference, when the undo fails (others moved `top` meanwhile, so the claim cannot be
//! withdrawn) the operation keeps waiting with a longer bound rather than leave an element or a
//! slot stranded above or below `top`; only after that bound does it report the stall (and then
//! the stack may stay inconsistent, which no implementation of this format can repair).

use std::sync::atomic::Ordering;

use super::{MAX_RETRIES, Side, Word};

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
    /// Called between attempts on a busy slot (`attempt` counts from 0 for each wait); returns
    /// `false` once the caller should give up. `committed` is set once the operation could not
    /// undo its claim on `top`: it then waits longer, because giving up would leave the stack
    /// inconsistent.
    fn keep_waiting(&self, attempt: u32, committed: bool) -> bool;
    /// Called before each `top` CAS that claims `slot` (a crash journal records it).
    fn intend(&self, _side: Side, _slot: u32) {}
    /// Called right after that CAS succeeded.
    fn held(&self, _side: Side) {}
    /// Called at each named step of an operation (crash tests stop a process there).
    fn step(&self, _name: &'static str) {}
    /// Called once a wait for `slot` to leave `state` has timed out: whether the slot was
    /// held by a dead peer and is now EMPTY, freed for this operation (a pusher then takes it,
    /// a popper gives it up and pops again).
    fn rescue(&self, _side: Side, _slot: u32, _state: u32) -> bool {
        false
    }
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
    /// Pop: the claimed slot belonged to a dead pusher and was freed; pop again.
    Abandoned,
    /// A slot state word holds a value that is not a state.
    BadState { slot: u32, state: u32 },
}

/// Waits for `state` to go from `from` to `to` on the slot this operation claimed (`top` moved
/// from `claimed_top` to `moved_top`). On a long wait the claim is undone if nobody moved `top`
/// since; if somebody did, the claim cannot be withdrawn and the wait goes on with the longer
/// bound, since giving up then would strand an element or a slot.
fn acquire_slot<S: Store>(
    s: &S,
    state: &S::W,
    slot: u32,
    (from, to): (u32, u32),
    (moved_top, claimed_top): (u32, u32),
) -> Result<(), Failure> {
    let mut attempt = 0u32;
    let mut committed = false;
    loop {
        // SYNC POINT (slot state): Acquire of `from` pairs with the Release store that made the
        // slot `from` (EMPTY by a popper, READY by a pusher), ordering its slot access before
        // ours.
        match state.cas_weak(from, to, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return Ok(()),
            Err(seen) if seen > READING => {
                // Undo our claim; AcqRel as for every `top` CAS (see `push`).
                let _ = s
                    .top()
                    .cas(moved_top, claimed_top, Ordering::AcqRel, Ordering::Relaxed);
                return Err(Failure::BadState { slot, state: seen });
            }
            Err(seen) => {
                if s.keep_waiting(attempt, committed) {
                    attempt = attempt.saturating_add(1);
                    continue;
                }
                let side = if from == EMPTY { Side::Push } else { Side::Pop };
                if s.rescue(side, slot, seen) {
                    if side == Side::Pop {
                        return Err(Failure::Abandoned);
                    }
                    attempt = 0;
                    continue;
                }
                // One strong attempt, so that a spurious weak failure cannot end the wait.
                if state
                    .cas(from, to, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(());
                }
                // Undo the claim if nobody moved `top` since (AcqRel as for every `top` CAS).
                if !committed
                    && s.top()
                        .cas(moved_top, claimed_top, Ordering::AcqRel, Ordering::Relaxed)
                        .is_err()
                {
                    committed = true;
                    attempt = 0;
                    continue;
                }
                return Err(Failure::Stalled { slot, state: seen });
            }
        }
    }
}

/// Pushes `item`; on failure the item comes back with the reason.
pub(crate) fn push<S: Store>(s: &S, item: S::Item) -> Result<(), (S::Item, Failure)> {
    let cap = s.capacity();
    let mut retries = 0u32;
    let slot = loop {
        retries = retries.saturating_add(1);
        if retries > MAX_RETRIES {
            return Err((
                item,
                Failure::Corrupt {
                    top: s.top().load(Ordering::Relaxed) as i32,
                },
            ));
        }
        // Relaxed: validated by the CAS.
        let c = s.top().load(Ordering::Relaxed) as i32;
        if c < -1 || c >= cap as i32 {
            return Err((item, Failure::Corrupt { top: c }));
        }
        if c >= cap as i32 - 1 {
            return Err((item, Failure::Full));
        }
        // SYNC POINT (top): AcqRel orders our claim with other pushers and poppers of `top`;
        // the slot's contents are handed over by its state word below. SeqCst on success,
        // beyond AcqRel, orders the claim before the waiter-count load of the wake that follows
        // (`wait` module docs).
        s.intend(Side::Push, (c + 1) as u32);
        if s.top()
            .cas_weak(
                c as u32,
                (c + 1) as u32,
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            s.held(Side::Push);
            s.step("stack.push.claimed");
            break (c + 1) as u32;
        }
    };
    let Some(state) = s.state(slot) else {
        return Err((item, Failure::Corrupt { top: slot as i32 }));
    };
    if let Err(failure) = acquire_slot(
        s,
        state,
        slot,
        (EMPTY, WRITING),
        (slot, slot.wrapping_sub(1)),
    ) {
        return Err((item, failure));
    }
    s.step("stack.push.writing");
    s.write(slot, item);
    // SYNC POINT (slot state): Release publishes the item to the popper's Acquire CAS
    // READY → READING.
    state.store(READY, Ordering::Release);
    Ok(())
}

/// Pops the top item; `Ok(None)` when empty.
pub(crate) fn pop<S: Store>(s: &S) -> Result<Option<S::Item>, Failure> {
    let cap = s.capacity();
    let mut retries = 0u32;
    let slot = loop {
        retries = retries.saturating_add(1);
        if retries > MAX_RETRIES {
            return Err(Failure::Corrupt {
                top: s.top().load(Ordering::Relaxed) as i32,
            });
        }
        let c = s.top().load(Ordering::Relaxed) as i32;
        if c < -1 || c >= cap as i32 {
            return Err(Failure::Corrupt { top: c });
        }
        if c < 0 {
            return Ok(None);
        }
        // SYNC POINT (top): as in `push`.
        s.intend(Side::Pop, c as u32);
        if s.top()
            .cas_weak(
                c as u32,
                (c - 1) as u32,
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            s.held(Side::Pop);
            s.step("stack.pop.claimed");
            let state = s.state(c as u32).ok_or(Failure::Corrupt { top: c })?;
            match acquire_slot(
                s,
                state,
                c as u32,
                (READY, READING),
                ((c - 1) as u32, c as u32),
            ) {
                // The slot was a dead pusher's and is freed: pop what is below it.
                Err(Failure::Abandoned) => continue,
                other => other?,
            }
            break c as u32;
        }
    };
    let state = s.state(slot).ok_or(Failure::Corrupt { top: slot as i32 })?;
    s.step("stack.pop.reading");
    let item = s.read(slot);
    // SYNC POINT (slot state): Release hands the slot back to a pusher's Acquire CAS
    // EMPTY → WRITING, ordering our read before its write.
    state.store(EMPTY, Ordering::Release);
    Ok(Some(item))
}

/// Elements on the stack: `top + 1`, clamped to `0..=capacity`.
pub(crate) fn len<S: Store>(s: &S) -> u32 {
    // Acquire: a count is only informative, but pairing with the AcqRel `top` CASes keeps it
    // from running behind what this thread already observed of the slots.
    let c = s.top().load(Ordering::Acquire) as i32;
    if c < 0 {
        0
    } else {
        (c as u32).saturating_add(1).min(s.capacity())
    }
}
