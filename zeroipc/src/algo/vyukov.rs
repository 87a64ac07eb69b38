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
//! Beyond the reference algorithm:
//! - a sequence word *ahead* of our position while the counter has not moved cannot happen with
//!   live, conforming peers (seeing the newer `seq` with Acquire implies seeing the CAS that
//!   preceded it), so it is reported as an [`Anomaly`] instead of retried, and every loop is
//!   capped at `MAX_RETRIES` (an `Anomaly::Livelock` past it): a corrupted or hostile segment
//!   cannot make an operation spin, and its caller can tell it from full or empty;
//! - operations start from a process-local guess of the counter instead of loading it (the
//!   counters share one cache line, which the other side keeps taking). A guess can only lag
//!   behind the counter, and at a lagging position `seq` is always at or ahead of the position
//!   (that position was claimed, so its slot was published or recycled since), never behind; at
//!   the current position "full" shows exactly `seq - t == 1 - cap` and "empty" exactly
//!   `seq - (h + 1) == -1`. So those two values are trusted without touching the counter (the
//!   common case of a consumer polling an empty queue then costs no cache miss on the producer's
//!   line), and any other negative distance, possible only if the counter was rewritten under
//!   us, makes the operation read the counter once;
//! - batches (`push_batch`, `pop_batch`) claim several consecutive positions with one CAS.

use std::sync::atomic::Ordering;

use super::{Anomaly, MAX_RETRIES, Side, Word};

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
    /// A guess of `tail` that saves reading the shared counter (whose cache line the consumer
    /// keeps taking away); any value is safe, a good one saves a cache miss.
    fn tail_guess(&self) -> u32 {
        self.tail().load(Ordering::Relaxed)
    }
    /// A guess of `head`, as [`tail_guess`](Self::tail_guess).
    fn head_guess(&self) -> u32 {
        self.head().load(Ordering::Relaxed)
    }
    /// Called with the new `tail` after a successful push.
    fn note_tail(&self, _tail: u32) {}
    /// Called with the new `head` after a successful pop.
    fn note_head(&self, _head: u32) {}
    /// Called before each claim CAS: the operation is about to claim `count` positions from
    /// `pos` (a crash journal records it).
    fn intend(&self, _side: Side, _pos: u32, _count: u32) {}
    /// Called right after the claim CAS for the last intent succeeded.
    fn held(&self, _side: Side) {}
    /// Called at each named step of an operation (crash tests stop a process there).
    fn step(&self, _name: &'static str) {}
}

/// `(seq - pos)` as a signed distance.
fn distance(seq: u32, pos: u32) -> i32 {
    seq.wrapping_sub(pos) as i32
}

/// Why [`push`] handed its item back: `None` when the queue is full, the anomaly when its words
/// are inconsistent.
pub(crate) type Refused<I> = (I, Option<Anomaly>);

/// Enqueues `item`, or hands it back when the queue is full (or broken).
#[inline]
pub(crate) fn push<S: Store>(s: &S, item: S::Item) -> Result<(), Refused<S::Item>> {
    // The position is only a guess until the CAS below validates it (see the module docs).
    let mut t = s.tail_guess();
    let mut reloaded = false;
    for _ in 0..MAX_RETRIES {
        let slot = t & s.mask();
        let Some(seq) = s.seq(slot) else {
            return Err((item, Some(Anomaly::NoSlot { slot })));
        };
        // SYNC POINT (slot seq): Acquire pairs with the consumer's Release store of
        // `seq = h + cap` in `pop`, so its read of the old item happened before we overwrite it.
        let seen = seq.load(Ordering::Acquire);
        let d = distance(seen, t);
        if d == 0 {
            // SeqCst on success: the slot's ownership is transferred by `seq`, not by `tail`,
            // so this needs no Acquire/Release; SeqCst orders it before the waiter-count load
            // of the wake that follows the push (`wait` module docs). Relaxed on failure.
            s.intend(Side::Push, t, 1);
            s.step("queue.push.intent");
            match s
                .tail()
                .cas_weak(t, t.wrapping_add(1), Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => {
                    s.held(Side::Push);
                    s.step("queue.push.claimed");
                    s.write(slot, item);
                    s.step("queue.push.written");
                    // SYNC POINT (slot seq): Release publishes the item to the consumer's
                    // Acquire load of this `seq` in `pop`.
                    seq.store(t.wrapping_add(1), Ordering::Release);
                    s.note_tail(t.wrapping_add(1));
                    return Ok(());
                }
                Err(current) => {
                    t = current;
                }
            }
        } else if d < 0 {
            // At the current position, "full" shows exactly d == 1 - cap (the slot still holds
            // the item of the previous lap). Any other negative distance means our guess is
            // ahead of the counter (it was rewritten under us): look at the counter once.
            if d != 1i32.wrapping_sub(s.mask().wrapping_add(1) as i32) && !reloaded {
                reloaded = true;
                let current = s.tail().load(Ordering::Relaxed);
                if current != t {
                    t = current;
                    continue;
                }
            }
            return Err((item, None));
        } else {
            // Another producer took position t; catch up with the counter.
            let current = s.tail().load(Ordering::Relaxed);
            if current == t {
                // Impossible with conforming peers (see the module docs), unless the counter
                // wrapped all the way round between the two loads: look once more.
                // SYNC POINT (slot seq): as above.
                if seq.load(Ordering::Acquire) != seen {
                    continue;
                }
                return Err((item, Some(Anomaly::SeqAhead { pos: t, seq: seen })));
            }
            t = current;
        }
    }
    Err((item, Some(Anomaly::Livelock)))
}

/// Dequeues the oldest item, or `None` when the queue is empty (or its next item is claimed by
/// a producer that has not published it yet); an anomaly when its words are inconsistent.
#[inline]
pub(crate) fn pop<S: Store>(s: &S) -> Result<Option<S::Item>, Anomaly> {
    let mut h = s.head_guess();
    let mut reloaded = false;
    for _ in 0..MAX_RETRIES {
        let slot = h & s.mask();
        let seq = s.seq(slot).ok_or(Anomaly::NoSlot { slot })?;
        // SYNC POINT (slot seq): Acquire pairs with the producer's Release store of `seq = t + 1`
        // in `push`: the item's bytes are visible.
        let seen = seq.load(Ordering::Acquire);
        let d = distance(seen, h.wrapping_add(1));
        if d == 0 {
            // SeqCst on success, Relaxed on failure: as in `push` (the wake of waiting
            // producers follows the pop).
            s.intend(Side::Pop, h, 1);
            match s
                .head()
                .cas_weak(h, h.wrapping_add(1), Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => {
                    s.held(Side::Pop);
                    s.step("queue.pop.claimed");
                    let item = s.read(slot);
                    s.step("queue.pop.read");
                    // SYNC POINT (slot seq): Release hands the slot to the producer of the next
                    // lap, whose Acquire load in `push` orders its write after our read.
                    seq.store(h.wrapping_add(s.mask()).wrapping_add(1), Ordering::Release);
                    s.note_head(h.wrapping_add(1));
                    return Ok(Some(item));
                }
                Err(current) => {
                    h = current;
                }
            }
        } else if d < 0 {
            // At the current position, "empty" shows exactly d == -1 (not yet published); any
            // other negative distance means a guess ahead of the counter, as in `push`.
            if d != -1 && !reloaded {
                reloaded = true;
                let current = s.head().load(Ordering::Relaxed);
                if current != h {
                    h = current;
                    continue;
                }
            }
            return Ok(None);
        } else {
            let current = s.head().load(Ordering::Relaxed);
            if current == h {
                // As in `push`.
                // SYNC POINT (slot seq): as above.
                if seq.load(Ordering::Acquire) != seen {
                    continue;
                }
                return Err(Anomaly::SeqAhead { pos: h, seq: seen });
            }
            h = current;
        }
    }
    Err(Anomaly::Livelock)
}

/// Enqueues the longest prefix of `items` that fits, with a single claim on `tail` (so a batch
/// costs one round trip of the counter's cache line instead of one per item); returns how many
/// were enqueued (0 when full). Other producers and consumers, of any implementation, see
/// ordinary positions: a batch is a claim of several consecutive free positions at once. An
/// anomaly (nothing enqueued) when the queue's words are inconsistent.
pub(crate) fn push_batch<S: Store>(s: &S, items: &[S::Item]) -> Result<usize, Anomaly>
where
    S::Item: Copy,
{
    let cap = s.mask().wrapping_add(1);
    let want = u32::try_from(items.len()).unwrap_or(u32::MAX).min(cap);
    if want == 0 {
        return Ok(0);
    }
    let mut t = s.tail_guess();
    let mut reloaded = false;
    for _ in 0..MAX_RETRIES {
        // Count the free positions t, t+1, ...: a free slot's seq equals its position.
        let mut free = 0u32;
        let mut first = 0i32;
        let mut first_seq = 0u32;
        while free < want {
            let pos = t.wrapping_add(free);
            let slot = pos & s.mask();
            let seq = s.seq(slot).ok_or(Anomaly::NoSlot { slot })?;
            // SYNC POINT (slot seq): as in `push`.
            let seen = seq.load(Ordering::Acquire);
            let d = distance(seen, pos);
            if d != 0 {
                if free == 0 {
                    first = d;
                    first_seq = seen;
                }
                break;
            }
            free += 1;
        }
        if free > 0 {
            s.intend(Side::Push, t, free);
            match s.tail().cas_weak(
                t,
                t.wrapping_add(free),
                // SeqCst on success, Relaxed on failure: as in `push`.
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    s.held(Side::Push);
                    s.step("queue.push_batch.claimed");
                    for (j, &item) in (0..free).zip(items) {
                        let pos = t.wrapping_add(j);
                        s.write(pos & s.mask(), item);
                        if let Some(seq) = s.seq(pos & s.mask()) {
                            // SYNC POINT (slot seq): as in `push`, per position.
                            seq.store(pos.wrapping_add(1), Ordering::Release);
                        }
                    }
                    s.note_tail(t.wrapping_add(free));
                    return Ok(free as usize);
                }
                Err(current) => {
                    t = current;
                    continue;
                }
            }
        }
        if first < 0 && (first == 1i32.wrapping_sub(cap as i32) || reloaded) {
            return Ok(0);
        }
        reloaded = true;
        let current = s.tail().load(Ordering::Relaxed);
        if current == t {
            return if first > 0 && !moved(s, t, first_seq) {
                Err(Anomaly::SeqAhead {
                    pos: t,
                    seq: first_seq,
                })
            } else {
                Ok(0)
            };
        }
        t = current;
    }
    Err(Anomaly::Livelock)
}

/// Dequeues up to `out.len()` items with a single claim on `head`: the published items at the
/// front, oldest first; returns how many (0 when empty), or an anomaly (nothing dequeued) when
/// the queue's words are inconsistent.
pub(crate) fn pop_batch<S: Store>(s: &S, out: &mut [S::Item]) -> Result<usize, Anomaly> {
    let cap = s.mask().wrapping_add(1);
    let want = u32::try_from(out.len()).unwrap_or(u32::MAX).min(cap);
    if want == 0 {
        return Ok(0);
    }
    let mut h = s.head_guess();
    let mut reloaded = false;
    for _ in 0..MAX_RETRIES {
        // Count the published positions h, h+1, ...: a published slot's seq is its position + 1.
        let mut ready = 0u32;
        let mut first = 0i32;
        let mut first_seq = 0u32;
        while ready < want {
            let pos = h.wrapping_add(ready);
            let slot = pos & s.mask();
            let seq = s.seq(slot).ok_or(Anomaly::NoSlot { slot })?;
            // SYNC POINT (slot seq): as in `pop`.
            let seen = seq.load(Ordering::Acquire);
            let d = distance(seen, pos.wrapping_add(1));
            if d != 0 {
                if ready == 0 {
                    first = d;
                    first_seq = seen;
                }
                break;
            }
            ready += 1;
        }
        if ready > 0 {
            s.intend(Side::Pop, h, ready);
            match s.head().cas_weak(
                h,
                h.wrapping_add(ready),
                // SeqCst on success, Relaxed on failure: as in `pop`.
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    s.held(Side::Pop);
                    s.step("queue.pop_batch.claimed");
                    for (j, slot_out) in (0..ready).zip(out.iter_mut()) {
                        let pos = h.wrapping_add(j);
                        *slot_out = s.read(pos & s.mask());
                        if let Some(seq) = s.seq(pos & s.mask()) {
                            // SYNC POINT (slot seq): as in `pop`, per position.
                            seq.store(pos.wrapping_add(cap), Ordering::Release);
                        }
                    }
                    s.note_head(h.wrapping_add(ready));
                    return Ok(ready as usize);
                }
                Err(current) => {
                    h = current;
                    continue;
                }
            }
        }
        if first < 0 && (first == -1 || reloaded) {
            return Ok(0);
        }
        reloaded = true;
        let current = s.head().load(Ordering::Relaxed);
        if current == h {
            return if first > 0 && !moved(s, h, first_seq) {
                Err(Anomaly::SeqAhead {
                    pos: h,
                    seq: first_seq,
                })
            } else {
                Ok(0)
            };
        }
        h = current;
    }
    Err(Anomaly::Livelock)
}

/// Whether the sequence word of position `pos` no longer reads `seen` (a wrap of the counter
/// between two loads, not corruption).
fn moved<S: Store>(s: &S, pos: u32, seen: u32) -> bool {
    // SYNC POINT (slot seq): Acquire, as every load of a sequence word.
    s.seq(pos & s.mask())
        .is_some_and(|seq| seq.load(Ordering::Acquire) != seen)
}

/// Items in the queue (`tail - head`, clamped to the capacity): a snapshot that may be stale by
/// the time it is returned.
pub(crate) fn len<S: Store>(s: &S) -> u32 {
    // Acquire, as the reference does for `size`: a count that does not run behind this thread's
    // own earlier observations; it is still only a snapshot.
    let head = s.head().load(Ordering::Acquire);
    let tail = s.tail().load(Ordering::Acquire);
    let n = tail.wrapping_sub(head);
    let cap = s.mask().wrapping_add(1);
    // A "negative" difference means head passed tail in a corrupt segment; a difference above
    // the capacity is a torn snapshot under heavy traffic (or corruption).
    if n > 1 << 31 { 0 } else { n.min(cap) }
}
