//! Dmitry Vyukov's bounded MPMC queue ("Bounded MPMC queue", 1024cores.net, 2010), in the exact
//! form of FORMAT.md §4.2: 32-bit `head`/`tail` counters that wrap, a power-of-two number of
//! slots, and one 32-bit sequence word per slot.
//!
//! Invariant at rest: for every position `p` in `[head, tail)` slot `p % cap` holds an item and
//! `seq == p + 1`; for `p` in `[tail, head + cap)`, `seq == p`. A producer owns position `t`
//! once its CAS moves `tail` from `t` to `t + 1`, writes the slot, then publishes it with
//! `seq = t + 1`; a consumer owns position `h` once its CAS moves `head`, reads the slot, then
//! frees it for the next lap with `seq = h + cap`. All differences are computed in wrapping u32
//! arithmetic and read as `i32`, which is why the capacity must be a power of two (so that
//! `p % cap` stays continuous across the 2^32 wrap) and at most 2^31.
//!
//! Beyond the reference algorithm: a sequence word *ahead* of our position while the counter has
//! not moved cannot happen with live, conforming peers (seeing the newer `seq` with Acquire
//! implies seeing the CAS that preceded it), so it is reported as full/empty instead of retried
//! forever: a corrupted or hostile segment cannot make an operation spin.

use std::sync::atomic::Ordering;

use super::Word;

/// The shared state a queue operates on.
pub(crate) trait Store {
    /// The word type.
    type W: Word;
    /// The items.
    type Item;
    /// The dequeue counter.
    fn head(&self) -> &Self::W;
    /// The enqueue counter.
    fn tail(&self) -> &Self::W;
    /// The sequence word of `slot` (`slot <= mask`); `None` only if the store is corrupt.
    fn seq(&self, slot: u32) -> Option<&Self::W>;
    /// `capacity - 1`.
    fn mask(&self) -> u32;
    /// Writes the item of a slot this thread owns.
    fn write(&self, slot: u32, item: Self::Item);
    /// Reads the item of a slot this thread owns.
    fn read(&self, slot: u32) -> Self::Item;
}

/// `(seq - pos)` as a signed distance.
fn distance(seq: u32, pos: u32) -> i32 {
    seq.wrapping_sub(pos) as i32
}

/// Enqueues `item`, or hands it back when the queue is full.
pub(crate) fn push<S: Store>(s: &S, item: S::Item) -> Result<(), S::Item> {
    // Relaxed: the tail value is only a guess; the CAS below validates it.
    let mut t = s.tail().load(Ordering::Relaxed);
    loop {
        let slot = t & s.mask();
        let Some(seq) = s.seq(slot) else {
            return Err(item);
        };
        // SYNC POINT (slot seq): Acquire pairs with the consumer's Release store of
        // `seq = h + cap` in `pop`, so its read of the old item happened before we overwrite it.
        let d = distance(seq.load(Ordering::Acquire), t);
        if d == 0 {
            // Relaxed: the slot's ownership is transferred by `seq`, not by `tail`.
            match s
                .tail()
                .cas_weak(t, t.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    s.write(slot, item);
                    // SYNC POINT (slot seq): Release publishes the item to the consumer's
                    // Acquire load of this `seq` in `pop`.
                    seq.store(t.wrapping_add(1), Ordering::Release);
                    return Ok(());
                }
                Err(current) => t = current,
            }
        } else if d < 0 {
            // The slot still holds the item of the previous lap: full.
            return Err(item);
        } else {
            // Another producer took position t; catch up with the counter.
            let current = s.tail().load(Ordering::Relaxed);
            if current == t {
                // Impossible with conforming peers (see the module docs): corrupt state.
                return Err(item);
            }
            t = current;
        }
    }
}

/// Dequeues the oldest item, or `None` when the queue is empty (or its next item is claimed by
/// a producer that has not published it yet).
pub(crate) fn pop<S: Store>(s: &S) -> Option<S::Item> {
    let mut h = s.head().load(Ordering::Relaxed);
    loop {
        let slot = h & s.mask();
        let seq = s.seq(slot)?;
        // SYNC POINT (slot seq): Acquire pairs with the producer's Release store of `seq = t + 1`
        // in `push`: the item's bytes are visible.
        let d = distance(seq.load(Ordering::Acquire), h.wrapping_add(1));
        if d == 0 {
            match s
                .head()
                .cas_weak(h, h.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    let item = s.read(slot);
                    // SYNC POINT (slot seq): Release hands the slot to the producer of the next
                    // lap, whose Acquire load in `push` orders its write after our read.
                    seq.store(h.wrapping_add(s.mask()).wrapping_add(1), Ordering::Release);
                    return Some(item);
                }
                Err(current) => h = current,
            }
        } else if d < 0 {
            return None;
        } else {
            let current = s.head().load(Ordering::Relaxed);
            if current == h {
                return None;
            }
            h = current;
        }
    }
}

/// Items in the queue (`tail - head`, clamped to the capacity): a snapshot that may be stale by
/// the time it is returned.
pub(crate) fn len<S: Store>(s: &S) -> u32 {
    let head = s.head().load(Ordering::Acquire);
    let tail = s.tail().load(Ordering::Acquire);
    let n = tail.wrapping_sub(head);
    let cap = s.mask().wrapping_add(1);
    // A "negative" difference means head passed tail in a corrupt segment; a difference above
    // the capacity is a torn snapshot under heavy traffic (or corruption).
    if n > 1 << 31 { 0 } else { n.min(cap) }
}
