//! Claims in flight: what each thread of a recorded process is in the middle of, so that a
//! process that dies between claiming a queue position or stack slot and finishing it can be
//! told apart from one that is merely slow, and its claim undone.
//!
//! Every process record (`peers`) owns [`LANES`] lanes in the runtime entry (FORMAT.md appendix
//! R); a thread takes one of its process's lane numbers on its first operation and keeps it
//! until it exits, so no two live threads of a process share a lane. A lane is a cache line of
//! its own (threads of one process do not share lines), of which two words are used:
//!
//! ```text
//! +0  atomic u64 what   0 = idle; else offset << 8 | HELD << 4 | kind << 2 | op
//! +8  atomic u64 span   first position (or slot) | count << 32
//! +16 atomic u64 seen   0; for a dead process's claim, when a recoverer first found it
//!                       stuck (CLOCK_MONOTONIC ns + 1)
//! ```
//!
//! `offset` is the segment offset of the structure's entry, `kind` 1 queue / 2 stack, `op` 1
//! push / 2 pop. An operation writes `span` then `what` before the compare-and-swap that claims
//! its positions (*intent*), sets `HELD` once that CAS has succeeded (*held*), and clears `what`
//! when it is finished or has given up. Those are ordinary stores to a line no other thread
//! writes; the claim CAS (`SeqCst`, a release) publishes the intent to every process that later
//! reads the counter it moved with acquire ordering. A recoverer therefore reads, for each
//! position, the counter, then the slot's word, then the lanes (the live claims), and acts only
//! if no live lane claims the position.
//!
//! A held claim of a dead process is proof: those positions were its and it will never finish
//! them. An intent without `HELD` is weaker: the process may have died between its CAS and the
//! store of `HELD` (then the positions are its), or before its CAS succeeded (then another
//! producer may hold them, perhaps one that records nothing). Recovery acts on such an intent
//! only after it has stayed stuck for [`UNCERTAIN_STALLS`] stall timeouts since a recoverer
//! first found it so (`seen`, in the dead process's lane: every process agrees on it).
//!
//! A process forked from one with handles inherits them, but not the parent's record: its
//! operations through inherited handles go unrecorded (a fork generation, bumped in the child
//! by a `pthread_atfork` handler, tells).

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::peers::{Attachment, Liveness};
use crate::raw::{Anchored, Region};

/// Lanes per process record: the threads of one process that can be in an operation at once
/// with their claims recorded. A thread beyond them works as usual, unrecorded.
pub(crate) const LANES: usize = LANES_U32 as usize;
/// [`LANES`] as stored.
pub(crate) const LANES_U32: u32 = 8;
/// Size of one lane: a cache line.
pub(crate) const LANE: usize = 64;

/// How many stall timeouts a position claimed only by an intent (not known to be held) of a
/// dead process must stay stuck before recovery undoes it.
pub(crate) const UNCERTAIN_STALLS: u32 = 10;

const OFF_WHAT: usize = 0;
const OFF_SPAN: usize = 8;
/// Written by recoverers, in the lane of a dead process only: when a recoverer first found
/// the claim stuck (`CLOCK_MONOTONIC` nanoseconds, plus one; 0 = not yet), so that processes
/// that come and go agree on how long it has been stuck.
const OFF_SEEN: usize = 16;
const HELD: u64 = 1 << 4;
const OP_MASK: u64 = 0b11;
const KIND_SHIFT: u32 = 2;
const OFFSET_SHIFT: u32 = 8;

/// What a claim is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Positions or a slot claimed to write an item.
    Push = 1,
    /// Positions or a slot claimed to take an item.
    Pop = 2,
}

/// The kinds whose operations claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A queue: positions (counter values).
    Queue = 1,
    /// A stack: a slot index.
    Stack = 2,
}

/// One process's lane numbers, handed to threads (a bit set; a set bit is taken).
static TAKEN: AtomicU32 = AtomicU32::new(0);

/// A lane number held by the current thread until it exits.
struct Ticket(Option<usize>);

impl Ticket {
    fn take() -> Self {
        // Relaxed: the bit set only hands out distinct numbers; no data is published with it.
        let mut taken = TAKEN.load(Ordering::Relaxed);
        loop {
            let free = !taken;
            if free == 0 || free.trailing_zeros() as usize >= LANES {
                return Self(None);
            }
            let bit = 1u32 << free.trailing_zeros();
            match TAKEN.compare_exchange_weak(
                taken,
                taken | bit,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Self(Some(free.trailing_zeros() as usize)),
                Err(now) => taken = now,
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(lane) = self.0 {
            // Later operations of this exiting thread (other destructors) go unrecorded.
            let _ = LANE_NUMBER.try_with(|c| c.set(NONE));
            // Relaxed: as in `take`. The lanes of a number handed back are idle: every
            // operation clears its lane before it returns.
            TAKEN.fetch_and(!(1u32 << lane), Ordering::Relaxed);
        }
    }
}

/// The current thread's lane number, once taken: [`NONE`] when every one was taken, [`UNSET`]
/// before the first operation. A `const` cell without a destructor, so that reading it costs
/// one thread-local load on the hot path; the ticket that hands the number back when the
/// thread exits lives in a second thread-local, touched once.
const UNSET: u8 = u8::MAX;
const NONE: u8 = u8::MAX - 1;

thread_local! {
    static LANE_NUMBER: std::cell::Cell<u8> = const { std::cell::Cell::new(UNSET) };
    static TICKET: Ticket = Ticket::take();
}

/// The current thread's lane number, `None` when every one is taken (or the thread is exiting).
#[inline]
fn lane_number() -> Option<usize> {
    let n = LANE_NUMBER.with(std::cell::Cell::get);
    match n {
        UNSET => first_lane_number(),
        NONE => None,
        n => Some(usize::from(n)),
    }
}

#[cold]
#[inline(never)]
fn first_lane_number() -> Option<usize> {
    let n = TICKET.try_with(|t| t.0).ok().flatten();
    let stored = n.and_then(|n| u8::try_from(n).ok()).unwrap_or(NONE);
    LANE_NUMBER.with(|c| c.set(stored));
    n
}

/// A handle's access to its process's lanes for one structure.
#[derive(Debug)]
pub(crate) struct Journal {
    lanes: Anchored<Region<'static>>,
    /// `what` of an intent, without the op.
    base: u64,
    /// The fork generation the journal was made in: a forked child's operations through it
    /// would write into its parent's record.
    forks: u32,
    _attachment: Arc<Attachment>,
}

impl Journal {
    /// The journal of structure `target` at segment offset `offset`, through `attachment`'s
    /// lanes; `None` without lanes or for an offset too large to record.
    pub(crate) fn new(attachment: &Arc<Attachment>, target: Target, offset: u64) -> Option<Self> {
        let lanes = attachment.lanes()?.clone();
        if offset == 0 || offset >> (64 - OFFSET_SHIFT) != 0 {
            return None;
        }
        Some(Self {
            lanes,
            base: offset << OFFSET_SHIFT | (target as u64) << KIND_SHIFT,
            forks: crate::raw::watch_forks(),
            _attachment: Arc::clone(attachment),
        })
    }

    /// The current thread's lane, resolved once per operation.
    #[inline]
    pub(crate) fn lane(&self) -> Option<Lane<'_>> {
        if crate::raw::fork_generation() != self.forks {
            return None;
        }
        let at = lane_number()?.checked_mul(LANE)?;
        let lanes = self.lanes.get();
        let what = lanes.atomic_u64(at.checked_add(OFF_WHAT)?).ok()?;
        let span = lanes.atomic_u64(at.checked_add(OFF_SPAN)?).ok()?;
        Some(Lane {
            what,
            span,
            base: self.base,
        })
    }
}

/// The current thread's lane for one operation on one structure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lane<'a> {
    what: &'a AtomicU64,
    span: &'a AtomicU64,
    base: u64,
}

impl Lane<'_> {
    /// Records the intent to claim `count` positions from `pos` for `op`; call before the CAS.
    #[inline]
    pub(crate) fn intend(&self, op: Op, pos: u32, count: u32) {
        // Relaxed, both: the claim CAS that follows (a SeqCst read-modify-write, so a
        // release) publishes them to whoever reads the counter with acquire ordering; a
        // reader that sees the lane half-written only finds a live claim to wait for.
        self.span
            .store(u64::from(pos) | u64::from(count) << 32, Ordering::Relaxed);
        // Release (free on x86): a reader that sees this intent instead of the `settle` before
        // it also sees what that operation published.
        self.what.store(self.base | op as u64, Ordering::Release);
    }

    /// Records that the claim CAS for the intent succeeded.
    #[inline]
    pub(crate) fn hold(&self, op: Op) {
        // Relaxed: only ever judged after the process is dead, when all its stores are
        // visible; to a live reader it only confirms a claim it waits for anyway.
        self.what
            .store(self.base | op as u64 | HELD, Ordering::Relaxed);
    }

    /// Clears the lane: the operation finished or gave up.
    #[inline]
    pub(crate) fn settle(&self) {
        // Release: the steps that finished the operation (the publishing store of a sequence
        // or state word) are visible to a reader that sees the lane idle with an Acquire
        // load, so it never takes a finished claim for a stuck one.
        self.what.store(0, Ordering::Release);
    }
}

/// A claim read from a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    /// The record of the process that made it, and its owner word when judged.
    pub(crate) record: usize,
    pub(crate) owner: u64,
    /// The process that made it.
    pub(crate) pid: u32,
    /// Whether that process still runs.
    pub(crate) liveness: Liveness,
    /// The segment offset of the structure.
    pub(crate) offset: u64,
    /// The kind of the structure.
    pub(crate) target: Target,
    /// What for.
    pub(crate) op: Op,
    /// Whether the claim CAS is known to have succeeded.
    pub(crate) held: bool,
    /// First position or slot.
    pub(crate) pos: u32,
    /// Number of positions.
    pub(crate) count: u32,
    /// Where the lane is in the runtime entry's lanes and the `what` value read, so that
    /// recovery can clear exactly this claim.
    pub(crate) lane: usize,
    what: u64,
}

impl Claim {
    /// Whether the claim covers position `pos` (wrapping).
    pub(crate) fn covers(&self, pos: u32) -> bool {
        pos.wrapping_sub(self.pos) < self.count
    }

    /// Whether the claim covers slot `slot` of a structure whose positions map to slots by
    /// `mask` (`capacity - 1` for a queue, `u32::MAX` for a stack, whose positions are slots).
    pub(crate) fn covers_slot(&self, slot: u32, mask: u32) -> bool {
        self.count > mask || slot.wrapping_sub(self.pos) & mask < self.count
    }
}

/// A record as claims are read from it: index, owner word, pid and liveness.
pub(crate) type RecordOf = (usize, u64, u32, Liveness);

/// The claims in `lanes` (the lanes area of a runtime entry) of the records `peers` lists, of
/// structure `offset` (any when `None`).
pub(crate) fn claims(lanes: Region<'_>, peers: &[RecordOf], offset: Option<u64>) -> Vec<Claim> {
    let mut out = Vec::new();
    for &(record, owner, pid, liveness) in peers {
        for j in 0..LANES {
            let Some(lane) = record.checked_mul(LANES).and_then(|l| l.checked_add(j)) else {
                continue;
            };
            let Some(at) = lane.checked_mul(LANE) else {
                continue;
            };
            // Acquire: pairs with `settle`'s Release (a cleared lane's operation is visible).
            let (Ok(what), Some(Ok(span))) = (
                lanes.load_u64(at, Ordering::Acquire),
                at.checked_add(OFF_SPAN)
                    .map(|o| lanes.load_u64(o, Ordering::Acquire)),
            ) else {
                continue;
            };
            let Some(mut claim) = decode(what, span, pid, liveness, lane) else {
                continue;
            };
            claim.record = record;
            claim.owner = owner;
            if offset.is_none_or(|o| o == claim.offset) {
                out.push(claim);
            }
        }
    }
    out
}

fn decode(what: u64, span: u64, pid: u32, liveness: Liveness, lane: usize) -> Option<Claim> {
    let op = match what & OP_MASK {
        1 => Op::Push,
        2 => Op::Pop,
        _ => return None,
    };
    let target = match (what >> KIND_SHIFT) & 0b11 {
        1 => Target::Queue,
        2 => Target::Stack,
        _ => return None,
    };
    Some(Claim {
        record: 0,
        owner: 0,
        pid,
        liveness,
        offset: what >> OFFSET_SHIFT,
        target,
        op,
        held: what & HELD != 0,
        pos: u32::try_from(span & u64::from(u32::MAX)).ok()?,
        count: u32::try_from(span >> 32).ok()?,
        lane,
        what,
    })
}

/// Whether lane `lane` of `lanes` is idle: no claim in flight and no hold.
pub(crate) fn idle(lanes: Region<'_>, lane: usize) -> bool {
    let Some(at) = lane.checked_mul(LANE) else {
        return true;
    };
    // Acquire: pairs with `settle`'s Release, as in `claims`, and with a hold's release.
    let word = |off: usize| {
        at.checked_add(off)
            .and_then(|o| lanes.load_u64(o, Ordering::Acquire).ok())
            .unwrap_or(0)
    };
    word(OFF_WHAT) == 0
        && (0..HOLDS).all(|k| word(OFF_HOLDS.saturating_add(k.saturating_mul(8))) == 0)
}

/// Clears `claim`'s lane if it still holds that claim: its process is dead and recovery has
/// dealt with every position it covered.
pub(crate) fn clear(lanes: Region<'_>, claim: &Claim) {
    let Some(at) = claim.lane.checked_mul(LANE) else {
        return;
    };
    let (Ok(word), Some(Ok(seen))) = (
        lanes.atomic_u64(at),
        at.checked_add(OFF_SEEN).map(|o| lanes.atomic_u64(o)),
    ) else {
        return;
    };
    // Relaxed: ordered before the lane's release by the CAS below.
    seen.store(0, Ordering::Relaxed);
    // AcqRel: the recovery's writes come before; a later owner of the record writes after.
    let _ = word.compare_exchange(claim.what, 0, Ordering::AcqRel, Ordering::Relaxed);
}

/// How long the dead process's `claim` has been found stuck, by any recoverer: zero the first
/// time (which starts the clock).
pub(crate) fn stuck_for(lanes: Region<'_>, claim: &Claim) -> std::time::Duration {
    let Some(seen) = claim
        .lane
        .checked_mul(LANE)
        .and_then(|at| at.checked_add(OFF_SEEN))
        .and_then(|o| lanes.atomic_u64(o).ok())
    else {
        return std::time::Duration::ZERO;
    };
    let now = monotonic_nanos().saturating_add(1);
    // Relaxed: a timestamp; the first recoverer's CAS wins and all read the same value.
    let first = match seen.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => now,
        Err(first) => first,
    };
    std::time::Duration::from_nanos(now.saturating_sub(first))
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process of the machine.
fn monotonic_nanos() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(t.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(t.tv_nsec).unwrap_or(0))
}

/// A whole recovery of one structure: a pass that undoes what it can (`rescue`, given how
/// long a claim not known to be held must have been stuck, returns what it did and how many
/// such claims it left stuck), then, if any were left, another pass once they have been stuck
/// that long.
pub(crate) fn recover(
    stall: std::time::Duration,
    rescue: impl Fn(std::time::Duration) -> (crate::kind::Recovery, u64),
) -> crate::kind::Recovery {
    let uncertain = stall.saturating_mul(UNCERTAIN_STALLS);
    let (mut done, left) = rescue(uncertain);
    if left > 0 {
        std::thread::sleep(uncertain);
        let (again, _) = rescue(uncertain);
        done.undone = done.undone.saturating_add(again.undone);
        done.lost = done.lost.saturating_add(again.lost);
        done.pending = again.pending;
    }
    done
}

/// First hold slot of a lane: the words `+24 .. +64`, after the claim's three.
const OFF_HOLDS: usize = 24;
/// Hold slots per lane: the locks one thread can hold at once with their holder recorded.
pub(crate) const HOLDS: usize = 5;
/// The bits of a hold slot that say what is held (the rest is the offset).
const HOLDING_MASK: u64 = (1 << OFFSET_SHIFT) - 1;

/// What a thread holds on a synchronisation structure until it lets go, as its hold slot
/// says: `offset << 8 | holding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holding {
    /// A mutex (a semaphore of one permit, FORMAT.md §5.2) locked.
    Lock = 1,
    /// One of an RWLock's `readers` (§5.7).
    Read = 2,
    /// A once being run: its state EXECUTING (§5.5).
    Run = 3,
}

impl Holding {
    fn of(bits: u64) -> Option<Self> {
        match bits {
            1 => Some(Self::Lock),
            2 => Some(Self::Read),
            3 => Some(Self::Run),
            _ => None,
        }
    }
}

/// A handle's access to its process's hold slots (words `+24 .. +64` of each lane).
///
/// A thread records a hold in its own lane after the acquisition it records (a successful
/// CAS), and clears it before the step that lets go; only it writes those slots while its
/// process lives. A hold therefore never outlives the holding except when the process dies
/// holding: a hold of a dead process is proof that it held, and will never let go.
#[derive(Debug)]
pub(crate) struct Holds {
    lanes: Anchored<Region<'static>>,
    forks: u32,
    _attachment: Arc<Attachment>,
}

impl Holds {
    /// The hold slots of `attachment`'s lanes; `None` without lanes.
    pub(crate) fn new(attachment: &Arc<Attachment>) -> Option<Self> {
        Some(Self {
            lanes: attachment.lanes()?.clone(),
            forks: crate::raw::watch_forks(),
            _attachment: Arc::clone(attachment),
        })
    }

    /// Records that the current thread now holds `holding` on the structure at segment offset
    /// `offset`; the hold, to be released when it lets go. `None` when it cannot be recorded:
    /// every slot of the thread's lane is in use, the thread has no lane, the process is a
    /// child forked from the one that made the handle, or the offset is too large.
    #[inline]
    pub(crate) fn hold(&self, offset: u64, holding: Holding) -> Option<Hold<'_>> {
        if crate::raw::fork_generation() != self.forks
            || offset == 0
            || offset >> (64 - OFFSET_SHIFT) != 0
        {
            return None;
        }
        let first = lane_number()?.checked_mul(LANE)?.checked_add(OFF_HOLDS)?;
        let lanes = self.lanes.get();
        let tag = offset << OFFSET_SHIFT | holding as u64;
        for k in 0..HOLDS {
            let slot = lanes
                .atomic_u64(first.checked_add(k.checked_mul(8)?)?)
                .ok()?;
            // Relaxed, both: only this thread writes its lane's slots while the process lives.
            // The store comes after the acquisition it records; a reader judges a hold only
            // once its process is dead (every store of it visible then), and a live one's hold
            // only tells it who to wait for.
            if slot.load(Ordering::Relaxed) == 0 {
                slot.store(tag, Ordering::Relaxed);
                return Some(Hold {
                    slot,
                    forks: self.forks,
                });
            }
        }
        None
    }
}

/// A recorded hold, until [`release`](Self::release).
#[derive(Debug)]
pub(crate) struct Hold<'a> {
    slot: &'a AtomicU64,
    forks: u32,
}

impl Hold<'_> {
    /// Clears the hold. Call it before the read-modify-write or store that lets go, with
    /// release ordering: that orders the clear before it, so that whoever acquires next never
    /// finds this hold still recorded.
    #[inline]
    pub(crate) fn release(&self) {
        // A forked child's copy of a guard: the slot is its parent's.
        if crate::raw::fork_generation() == self.forks {
            // Relaxed: ordered by the releasing operation that follows (see above).
            self.slot.store(0, Ordering::Relaxed);
        }
    }
}

/// A hold read from a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Holder {
    /// The record of the process that holds, and its owner word when judged.
    pub(crate) record: usize,
    pub(crate) owner: u64,
    /// The process that holds.
    pub(crate) pid: u32,
    /// Whether it still runs.
    pub(crate) liveness: Liveness,
    /// What it holds.
    pub(crate) holding: Holding,
    /// Where the slot is in the lanes, and the value read, so that exactly this hold is taken.
    at: usize,
    tag: u64,
}

/// The holds in `lanes` of the records `peers` lists on the structure at `offset`.
pub(crate) fn holders(lanes: Region<'_>, peers: &[RecordOf], offset: u64) -> Vec<Holder> {
    let mut out = Vec::new();
    for &(record, owner, pid, liveness) in peers {
        for j in 0..LANES {
            let Some(first) = record
                .checked_mul(LANES)
                .and_then(|l| l.checked_add(j))
                .and_then(|l| l.checked_mul(LANE))
                .and_then(|at| at.checked_add(OFF_HOLDS))
            else {
                continue;
            };
            for k in 0..HOLDS {
                let Some(at) = k.checked_mul(8).and_then(|o| first.checked_add(o)) else {
                    continue;
                };
                // Acquire: keeps these loads after the caller's acquiring load of the
                // structure's word; a let-go seen there (a release that followed the hold's
                // clear) hides the hold here.
                let Ok(tag) = lanes.load_u64(at, Ordering::Acquire) else {
                    continue;
                };
                let Some(holding) = Holding::of(tag & HOLDING_MASK) else {
                    continue;
                };
                if tag >> OFFSET_SHIFT == offset {
                    out.push(Holder {
                        record,
                        owner,
                        pid,
                        liveness,
                        holding,
                        at,
                        tag,
                    });
                }
            }
        }
    }
    out
}

/// Takes a dead process's hold away: whether this call did (exactly one of several callers
/// does). The caller then holds in its place, or undoes what the hold stood for.
///
/// The slot goes to [`TAKING_OVER`] first, then `still_owned` says whether the hold's record
/// still has the owner judged dead. A record with a hold in any slot is never freed, and
/// `TAKING_OVER` is one, so after that CAS the record cannot change hands: if its owner is
/// still the dead one, the hold was the dead one's, and the slot is cleared. If not, the record
/// was freed and claimed again before the CAS, by a process that now holds the same structure
/// from the same slot (the same tag): the hold is a live one, and is given back.
pub(crate) fn take_hold(
    lanes: Region<'_>,
    holder: &Holder,
    still_owned: impl FnOnce() -> bool,
) -> bool {
    let Ok(slot) = lanes.atomic_u64(holder.at) else {
        return false;
    };
    // AcqRel: the judgement's reads come before; what the taker does as holder comes after.
    if slot
        .compare_exchange(holder.tag, TAKING_OVER, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    if still_owned() {
        // Release: after the checks; nothing else reads this slot's value but as "not a hold".
        slot.store(0, Ordering::Release);
        true
    } else {
        // A live holder's slot: back as it was, unless it has let go (or held again) meanwhile.
        let _ = slot.compare_exchange(
            TAKING_OVER,
            holder.tag,
            Ordering::Release,
            Ordering::Relaxed,
        );
        false
    }
}

/// A hold slot's value while a waiter takes a dead process's hold ([`take_hold`]): not a hold
/// (its `holding` bits are none of [`Holding`]'s), but not free either.
pub(crate) const TAKING_OVER: u64 = u64::MAX;
