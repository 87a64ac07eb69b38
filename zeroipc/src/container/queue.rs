//! A bounded lock-free MPMC queue of `T` (FORMAT.md §4.2), byte-compatible with every ZeroIPC
//! implementation.
//!
//! ```text
//! +0  atomic u32 head       dequeue counter, wraps at 2^32
//! +4  atomic u32 tail       enqueue counter, wraps at 2^32
//! +8  u32 capacity          a power of two, 2 ..= 2^31
//! +12 u32 elem_size
//! +16 slots                 capacity * elem_size bytes
//! +16 + align8(slots)       atomic u32 seq[capacity]
//! ```
//!
//! The algorithm is Dmitry Vyukov's bounded MPMC queue (see `algo/vyukov.rs` for the invariant
//! and every memory ordering); it is the one the C++, C, Go and Python (FFI) implementations use,
//! so processes of all of them can push and pop on one queue at once.
//!
//! Differences from the other implementations: `create` rounds the capacity up to a power of two
//! *and at least 2* (a capacity of 1 breaks the algorithm, FORMAT.md §4.2; the others accept it);
//! `open` rejects a stored capacity that is not a power of two or is 1, an element size that is
//! not `size_of::<T>()`, and an entry whose size disagrees with the geometry. The geometry is
//! copied into the handle at open.
//!
//! Crash behaviour is documented on [`Queue`].

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::algo::{Anomaly, MAX_RETRIES, Side, vyukov};
use crate::container::Capacity;
use crate::container::slotted::{HEADER, Slotted, header_u32};
use crate::error::{Error, PushError, Result};
use crate::journal::{Claim, Journal, Lane, Op, Target, UNCERTAIN_STALLS};
use crate::kind::{
    self, Exercise, Handle, Invalid, Kind, Mismatch, Opened, Recovery, StructureDefect,
    StructureKind,
};
use crate::layout::ShmLayout;
use crate::peers::Liveness;
use crate::raw::{Access, Anchored, Region, Slots, Word, Words};
use crate::runtime;
use crate::segment::Segment;
use crate::wait::{Bell, Chime, Rescue, Watch, pop_until, push_until, timeout_error};

pub(crate) const OFF_HEAD: usize = 0;
pub(crate) const OFF_TAIL: usize = 4;
const OFF_CAPACITY: usize = 8;
const OFF_ELEM_SIZE: usize = 12;
/// The largest capacity accepted at open: differences of positions must fit in an `i32`.
const MAX_CAPACITY: u64 = 1 << 31;
/// The largest capacity created: at exactly 2^31, `t - cap` and `t + cap` are the same u32, so
/// a producer with an old `tail` can mistake a free slot for a full one (the reference has the
/// same edge); one power of two less avoids it.
const MAX_CREATE_CAPACITY: u64 = 1 << 30;

/// A bounded MPMC queue of `T` in a [`Segment`].
///
/// ```no_run
/// use zeroipc::{Queue, Segment};
///
/// let seg = Segment::create("/jobs", 1 << 20)?;
/// let jobs = Queue::<u64>::create(&seg, "jobs", 1000)?; // capacity 1024
/// jobs.push(7).expect("not full");
/// assert_eq!(jobs.pop()?, Some(7));
/// # Ok::<(), zeroipc::Error>(())
/// ```
///
/// # Crashes
///
/// A killed process costs at most the item it was moving. Every operation of this crate records
/// its claim (the positions it is about to take) in its process's lane of the runtime entry
/// before it takes them, and clears it when done. A producer that dies between claiming a
/// position and publishing it would leave consumers stuck at that position (`pop` returns
/// `Ok(None)`, `len` stays above zero), and a consumer that dies after claiming would leave its
/// slot unusable for producers one lap later. Such a claim of a process that is provably dead
/// is undone:
///
/// - by [`pop_timeout`](Self::pop_timeout) and [`push_timeout`](Self::push_timeout) themselves,
///   once they have waited the [stall timeout](Self::set_stall_timeout) behind it;
/// - by [`recover`](Self::recover), `Segment::recover_structure` or `zeroipc repair`, for
///   programs that only poll with `pop`/`push`, which never wait.
///
/// The position is skipped, or the slot freed, and its one item is lost; every other item is
/// delivered exactly once. Processes of the other implementations record nothing: a position
/// one of them leaves stuck stays stuck (`Segment::check_structure` reports it, without a
/// holder), as in every implementation of this format. Nothing spins: every operation returns.
pub struct Queue<T: ShmLayout> {
    /// Process-local guesses of the counters (see `vyukov::Store::tail_guess`), each on a cache
    /// line of its own: a consumer thread writes `head_hint` and a producer thread `tail_hint`
    /// on every operation, and neither may take the line that holds the geometry below, which
    /// every operation of both reads.
    head_hint: CacheLine,
    tail_hint: CacheLine,
    head: Anchored<Word<'static>>,
    tail: Anchored<Word<'static>>,
    slots: Anchored<Slots<'static, T>>,
    seqs: Anchored<Words<'static>>,
    capacity: u32,
    /// The waiter counts of `head` (producers waiting for room) and `tail` (consumers waiting
    /// for an item), rung after each release.
    head_chime: Chime,
    tail_chime: Chime,
    /// The segment's waiter counts and poll interval, for blocking calls.
    bell: Bell,
    /// This process's claims in flight, for recovery when it dies mid-operation.
    journal: Option<Journal>,
    /// The segment offset of the queue's entry (its identity in claims).
    offset: u64,
    stall_timeout: Duration,
    segment: Segment,
    name: String,
    _elem: PhantomData<fn() -> T>,
}

/// A process-local atomic on a 128-byte line of its own (two 64-byte lines, against the
/// adjacent-line prefetcher). Only in the handle, never in the segment, where layouts are fixed
/// by the format.
#[derive(Debug, Default)]
#[repr(align(128))]
struct CacheLine(AtomicU32);

impl<T: ShmLayout> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("segment", &self.segment.name())
            .field("name", &self.name)
            .field("elem", &T::LAYOUT.type_name())
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

/// The queue kind: a capacity and an element size.
#[derive(Debug)]
pub(crate) enum QueueKind {}

impl Kind for QueueKind {
    const KIND: StructureKind = StructureKind::Queue;
    const PARTS: &'static [&'static str] = &[""];
    type Params = Capacity;
    type Geometry = Slotted;

    fn plan(params: Capacity) -> Result<Capacity, (&'static str, String)> {
        let requested = params.capacity;
        if requested == 0 || requested > MAX_CREATE_CAPACITY {
            return Err(("capacity", format!("`{requested}` is outside `1..=2^30`")));
        }
        Ok(Capacity {
            capacity: requested.max(2).next_power_of_two(),
            ..params
        })
    }

    fn sizes(params: &Capacity) -> Option<Vec<u64>> {
        Some(vec![Slotted::of(params)?.total])
    }

    fn init(params: &Capacity, parts: &[Region<'_>]) -> Result<(), Access> {
        let [r] = parts else {
            return Err(Access::OutOfBounds);
        };
        let capacity = u32::try_from(params.capacity).map_err(|_| Access::OutOfBounds)?;
        let geometry = Slotted::new(capacity, params.elem).ok_or(Access::OutOfBounds)?;
        r.write::<u32>(OFF_HEAD, 0)?;
        r.write::<u32>(OFF_TAIL, 0)?;
        r.write::<u32>(OFF_CAPACITY, capacity)?;
        r.write::<u32>(OFF_ELEM_SIZE, params.elem)?;
        r.zero(HEADER, geometry.words_at.saturating_sub(HEADER))?;
        // Slot `i` is free for position `i`.
        for i in 0..capacity {
            r.write::<u32>(geometry.word_at(i).ok_or(Access::OutOfBounds)?, i)?;
        }
        Ok(())
    }

    fn validate(parts: &[Region<'_>], elem: Option<u32>) -> Result<Slotted, Invalid> {
        let part = kind::only(parts)?;
        let capacity = header_u32(part, OFF_CAPACITY)?;
        let stored_elem = header_u32(part, OFF_ELEM_SIZE)?;
        let problem = match capacity {
            0 => Some("capacity `0` leaves no slot".to_owned()),
            1 => Some(
                "capacity `1`: a one-slot queue cannot tell full from empty in this format (a \
                 full slot's sequence word equals the value that marks it free for the next \
                 push)"
                    .to_owned(),
            ),
            c if !c.is_power_of_two() => Some(format!(
                "capacity `{c}` is not a power of two, which the wrapping 32-bit counters need"
            )),
            c if u64::from(c) > MAX_CAPACITY => {
                Some(format!("capacity `{c}` exceeds the format's `2^31`"))
            }
            _ => None,
        };
        if let Some(reason) = problem {
            return Err(Invalid::Corrupt(reason));
        }
        Slotted::validate(part, capacity, stored_elem, elem)
    }

    fn mismatch(requested: &Capacity, found: &Slotted) -> Option<Mismatch> {
        requested.mismatch(u64::from(found.capacity))
    }

    fn describe(geometry: &Slotted) -> String {
        geometry.describe()
    }

    fn len(parts: &[Region<'_>], geometry: &Slotted) -> Option<u64> {
        let (head, tail) = counters(kind::only(parts).ok()?)?;
        // Clamped like `Queue::len`; an impossible distance is reported by the audit.
        Some(u64::from(tail.wrapping_sub(head).min(geometry.capacity)))
    }

    fn recover(
        segment: &Segment,
        parts: &[Region<'_>],
        geometry: &Slotted,
        offset: u64,
        stall: Duration,
    ) -> Recovery {
        let [part] = parts else {
            return Recovery::default();
        };
        let (Ok(head), Ok(tail), Ok(seqs)) = (
            part.atomic_u32(OFF_HEAD),
            part.atomic_u32(OFF_TAIL),
            part.words(geometry.words_at, geometry.capacity as usize),
        ) else {
            return Recovery::default();
        };
        let words = Claimed {
            segment,
            offset,
            head,
            tail,
            seqs,
            capacity: geometry.capacity,
        };
        let done = crate::journal::recover(stall, |uncertain| words.rescue(uncertain));
        if done.undone > 0 {
            crate::wait::wake(head, u32::MAX);
            crate::wait::wake(tail, u32::MAX);
        }
        done
    }

    fn claim_mask(geometry: &Slotted) -> u32 {
        geometry.capacity.wrapping_sub(1)
    }

    fn audit(parts: &[Region<'_>], geometry: &Slotted) -> Vec<StructureDefect> {
        let Ok(part) = kind::only(parts) else {
            return Vec::new();
        };
        let before = counters(part);
        let mut defects = audit(part, geometry);
        if counters(part) != before {
            // The counters moved during the scan: what looked inconsistent may be the queue's
            // ordinary progress between the reads.
            for d in &mut defects {
                d.in_flight = true;
                d.problem.push_str(" (the queue changed during the check)");
            }
        }
        defects
    }
}

/// `head` and `tail`, read once each.
fn counters(part: &Region<'_>) -> Option<(u32, u32)> {
    // Acquire: a snapshot; the sequence words read after these are at least as new.
    let head = part.load_u32(OFF_HEAD, Ordering::Acquire).ok()?;
    let tail = part.load_u32(OFF_TAIL, Ordering::Acquire).ok()?;
    Some((head, tail))
}

/// The defects of a queue's counters and sequence words. In a sound queue, with `cap` slots
/// and positions `p` in `[head, head + cap)`: a position below `tail` holds an item, its slot's
/// word reads `p + 1` (published) or `p` (claimed by a producer that has not published); a
/// position from `tail` on is free, its word reads `p` (free) or `p - cap + 1` (its previous
/// item, claimed by a consumer that has not released the slot yet).
fn audit(part: &Region<'_>, geometry: &Slotted) -> Vec<StructureDefect> {
    let mut defects = Vec::new();
    let Some((head, tail)) = counters(part) else {
        return defects;
    };
    let capacity = geometry.capacity;
    let len = tail.wrapping_sub(head);
    if len > capacity {
        defects.push(StructureDefect {
            slot: None,
            in_flight: false,
            problem: format!(
                "`tail - head` is `{len}` (head `{head}`, tail `{tail}`), more than the capacity \
                 `{capacity}`"
            ),
            holder: None,
        });
        return defects;
    }
    for offset in 0..capacity {
        if defects.len() > kind::MAX_DEFECTS {
            break;
        }
        let pos = head.wrapping_add(offset);
        let slot = pos & capacity.wrapping_sub(1);
        let Some(seq) = geometry
            .word_at(slot)
            .and_then(|at| part.load_u32(at, Ordering::Acquire).ok())
        else {
            continue;
        };
        let defect = |in_flight, problem| StructureDefect {
            slot: Some(u64::from(slot)),
            in_flight,
            problem,
            holder: None,
        };
        if offset < len {
            if seq == pos {
                defects.push(defect(
                    true,
                    format!(
                        "position `{pos}` is claimed by a producer and not published (a \
                         producer inside `push`, or one that stopped there)"
                    ),
                ));
            } else if seq != pos.wrapping_add(1) {
                defects.push(defect(
                    false,
                    format!("holds position `{pos}`, but its sequence word reads `{seq}`"),
                ));
            }
        } else if seq == pos.wrapping_sub(capacity).wrapping_add(1) {
            defects.push(defect(
                true,
                format!(
                    "position `{}` is claimed by a consumer and the slot not released (a \
                     consumer inside `pop`, or one that stopped there)",
                    pos.wrapping_sub(capacity)
                ),
            ));
        } else if seq != pos {
            defects.push(defect(
                false,
                format!("is free for position `{pos}`, but its sequence word reads `{seq}`"),
            ));
        }
    }
    defects
}

impl<T: ShmLayout> Handle for Queue<T> {
    type Kind = QueueKind;

    fn elem() -> Result<u32> {
        kind::elem_size::<T>()
    }
    fn layout() -> Option<&'static crate::layout::Layout> {
        Some(T::LAYOUT)
    }

    fn from_parts(opened: Opened<'_, QueueKind>) -> Result<Self> {
        let g = opened.geometry;
        let head = opened.word(0, OFF_HEAD)?;
        let tail = opened.word(0, OFF_TAIL)?;
        let slots = opened.slots::<T>(0, HEADER, g.capacity as usize)?;
        let seqs = opened.words(0, g.words_at, g.capacity as usize)?;
        // Relaxed: starting guesses only.
        let head_hint = CacheLine(AtomicU32::new(head.get().atomic().load(Ordering::Relaxed)));
        let tail_hint = CacheLine(AtomicU32::new(tail.get().atomic().load(Ordering::Relaxed)));
        let bell = runtime::bell(opened.segment);
        let offset = opened.offset(0)?;
        let journal = bell
            .attachment()
            .and_then(|a| Journal::new(a, Target::Queue, offset));
        Ok(Self {
            head_chime: bell.chime(opened.segment, head.get().atomic()),
            tail_chime: bell.chime(opened.segment, tail.get().atomic()),
            head_hint,
            tail_hint,
            head,
            tail,
            slots,
            seqs,
            capacity: g.capacity,
            bell,
            journal,
            offset,
            stall_timeout: crate::container::stack::DEFAULT_STALL_TIMEOUT,
            segment: opened.segment.clone(),
            name: opened.name.to_owned(),
            _elem: PhantomData,
        })
    }
}

impl<T: ShmLayout> Exercise for Queue<T> {
    fn exercise(&mut self) {
        let _ = (self.len(), self.is_empty(), self.is_full());
        for _ in 0..3 {
            let _ = self.push(T::zeroed());
            let _ = self.pop();
        }
        let mut out = [T::zeroed(); 4];
        let _ = self.push_slice(&out);
        let _ = self.pop_into(&mut out);
    }
}

impl<T: ShmLayout> Queue<T> {
    /// Creates the queue `name` with room for `capacity` items, rounded up to a power of two
    /// (at least 2).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for capacity 0, above 2^30, or elements larger than 4 GiB;
    /// [`Error::InvalidEntryName`], [`Error::DuplicateEntry`], [`Error::TableFull`],
    /// [`Error::OutOfSpace`], [`Error::ReadOnly`]: the segment is unchanged.
    pub fn create(segment: &Segment, name: &str, capacity: usize) -> Result<Self> {
        kind::create(segment, name, Capacity::of::<T>(capacity)?)
    }

    /// Opens the existing queue `name`. The first queue or stack handle on a writable segment
    /// may add the runtime entry (see [`SegmentOptions::runtime_entry`](crate::SegmentOptions::runtime_entry)).
    ///
    /// # Errors
    ///
    /// [`Error::EntryNotFound`]; [`Error::TypeMismatch`] when the stored element size is not
    /// `size_of::<T>()`; [`Error::CorruptStructure`] for a capacity that is not a power of two
    /// in `2..=2^31` or a geometry that disagrees with the entry; [`Error::ReadOnly`] on a
    /// read-only segment (every queue operation writes).
    pub fn open(segment: &Segment, name: &str) -> Result<Self> {
        kind::open(segment, name)
    }

    /// Opens `name` if it exists (its capacity must equal `capacity` rounded as by
    /// [`create`](Self::create)), otherwise creates it.
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

    /// Number of slots (a power of two).
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Items in the queue. Approximate: other processes may push and pop while it is computed.
    pub fn len(&self) -> usize {
        vyukov::len(self) as usize
    }

    /// Whether the queue is empty (approximate, as [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue is full (approximate, as [`len`](Self::len)).
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// Enqueues `value`.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] with the value when the queue is full; [`PushError::Failed`] with the
    /// value and [`Error::CorruptStructure`] when the queue's words are inconsistent (a state
    /// that live peers following the format cannot produce). Nothing is stored in either case.
    // Always: the call and the large `Result` returned through memory would cost as much as
    // the operation itself.
    #[inline(always)]
    pub fn push(&self, value: T) -> std::result::Result<(), PushError<T>> {
        let op = self.claiming();
        let pushed = vyukov::push(&op, value);
        op.settle();
        match pushed {
            Ok(()) => {
                self.tail_chime.ring(self.tail.get().atomic(), 1);
                Ok(())
            }
            Err((value, None)) => Err(PushError::Full(value)),
            Err((value, Some(a))) => Err(PushError::Failed(value, self.anomaly(a))),
        }
    }

    /// Dequeues the oldest item; `Ok(None)` when the queue is empty (or its next item is claimed
    /// by a producer that has not published it yet).
    ///
    /// # Errors
    ///
    /// [`Error::CorruptStructure`] when the queue's words are inconsistent; nothing is dequeued.
    // Always: as for `push`.
    #[inline(always)]
    pub fn pop(&self) -> Result<Option<T>> {
        let op = self.claiming();
        let popped = vyukov::pop(&op);
        op.settle();
        match popped {
            Ok(Some(item)) => {
                self.head_chime.ring(self.head.get().atomic(), 1);
                Ok(Some(item))
            }
            Ok(None) => Ok(None),
            Err(a) => Err(self.anomaly(a)),
        }
    }

    /// Enqueues the longest prefix of `items` that fits, claiming all its positions at once
    /// (one update of the shared counter for the whole batch, which is much faster across
    /// processes than pushing one by one); returns how many were enqueued, 0 when full. Peers
    /// see the items as ordinary single pushes, in order.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptStructure`] as for [`push`](Self::push); nothing is enqueued.
    pub fn push_slice(&self, items: &[T]) -> Result<usize> {
        let op = self.claiming();
        let pushed = vyukov::push_batch(&op, items);
        op.settle();
        let n = pushed.map_err(|a| self.anomaly(a))?;
        if n > 0 {
            self.tail_chime.ring(
                self.tail.get().atomic(),
                u32::try_from(n).unwrap_or(u32::MAX),
            );
        }
        Ok(n)
    }

    /// Dequeues up to `out.len()` items, oldest first, claiming them all at once; returns how
    /// many were written to the front of `out`, 0 when empty.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptStructure`] as for [`pop`](Self::pop); nothing is dequeued.
    pub fn pop_into(&self, out: &mut [T]) -> Result<usize> {
        let op = self.claiming();
        let popped = vyukov::pop_batch(&op, out);
        op.settle();
        let n = popped.map_err(|a| self.anomaly(a))?;
        if n > 0 {
            self.head_chime.ring(
                self.head.get().atomic(),
                u32::try_from(n).unwrap_or(u32::MAX),
            );
        }
        Ok(n)
    }

    /// Enqueues `value`, waiting up to `timeout` for room: spinning briefly, then sleeping until
    /// a consumer of this crate wakes it, or a peer of another implementation (which never
    /// wakes) frees a slot, noticed within the segment's
    /// [poll interval](crate::SegmentOptions::poll_interval).
    ///
    /// # Errors
    ///
    /// [`PushError::Failed`] with the value and [`Error::Timeout`] when the queue stayed full
    /// until the deadline, or [`Error::CorruptStructure`] as for [`push`](Self::push).
    pub fn push_timeout(
        &self,
        value: T,
        timeout: Duration,
    ) -> std::result::Result<(), PushError<T>> {
        let tail = self.tail.get();
        // Full at rest: `tail` is a lap ahead of the `head` seen and the item at `head` is
        // published; otherwise a consumer has claimed a slot and not yet released it, or a
        // producer the position at `head` and not yet published it (then consumers wait for
        // it, and with them this call), which changes no counter.
        let at_rest = |head: u32| {
            let published = self
                .seqs
                .get()
                .get((head & self.capacity.wrapping_sub(1)) as usize)
                // Relaxed: a hint of how to wait; the push attempt itself decides.
                .is_some_and(|seq| seq.load(Ordering::Relaxed) != head);
            tail.atomic().load(Ordering::Relaxed) == head.wrapping_add(self.capacity) && published
        };
        // Stuck while `tail` stays put with a consumer between two steps: perhaps a dead one.
        let key = || tail.atomic().load(Ordering::Relaxed);
        let uncertain = self.stall_timeout.saturating_mul(UNCERTAIN_STALLS);
        let run = || self.rescue(uncertain).0.undone > 0;
        let watch = Watch {
            bell: &self.bell,
            word: self.head.get().atomic().into(),
            at_rest: &at_rest,
            rescue: Some(Rescue {
                key: &key,
                after: self.stall_timeout,
                run: &run,
            }),
        };
        push_until(
            timeout,
            value,
            &watch,
            |v| self.push(v),
            || self.timeout("push_timeout", "the queue stayed full", timeout),
        )
    }

    /// Dequeues an item, waiting up to `timeout` for one: spinning briefly, then sleeping until a
    /// producer of this crate wakes it, or a peer of another implementation (which never wakes)
    /// pushes one, noticed within the segment's
    /// [poll interval](crate::SegmentOptions::poll_interval).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the queue stayed empty until the deadline;
    /// [`Error::CorruptStructure`] as for [`pop`](Self::pop).
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T> {
        let head = self.head.get();
        // Empty at rest: `head` has caught up with the `tail` seen; otherwise a producer has
        // claimed a position and not yet published it, which changes no counter.
        let at_rest = |tail: u32| head.atomic().load(Ordering::Relaxed) == tail;
        // Stuck while `head` stays put with a producer between two steps: perhaps a dead one.
        let key = || head.atomic().load(Ordering::Relaxed);
        let uncertain = self.stall_timeout.saturating_mul(UNCERTAIN_STALLS);
        let run = || self.rescue(uncertain).0.undone > 0;
        let watch = Watch {
            bell: &self.bell,
            word: self.tail.get().atomic().into(),
            at_rest: &at_rest,
            rescue: Some(Rescue {
                key: &key,
                after: self.stall_timeout,
                run: &run,
            }),
        };
        pop_until(
            timeout,
            &watch,
            || self.pop(),
            || self.timeout("pop_timeout", "the queue stayed empty", timeout),
        )
    }

    /// How long a blocked call waits behind a position claimed by a peer that does not finish
    /// it before it checks whether that peer died ([`DEFAULT_STALL_TIMEOUT`](crate::DEFAULT_STALL_TIMEOUT)
    /// unless set).
    pub fn set_stall_timeout(&mut self, timeout: Duration) {
        self.stall_timeout = timeout;
    }

    /// Undoes the claims of processes that died in the middle of an operation on this queue:
    /// a position a dead producer claimed and never published is skipped once it is the next
    /// to pop, and a slot a dead consumer claimed and never released is freed. The item each
    /// was moving is lost (counted in the result); every other item stays, delivered exactly
    /// once. `push_timeout` and `pop_timeout` do this themselves after waiting the stall
    /// timeout behind such a claim; `push`, `pop` and the batch calls never wait, so a program
    /// that only polls calls this (or runs `zeroipc repair`) when the queue stays stuck.
    ///
    /// Only claims this crate recorded are undone: processes of the other implementations,
    /// and ours that found no free record or lane, record nothing, and a position one of them
    /// holds stays stuck (`Segment::check_structure` reports it). A position that a live
    /// process of ours also claims is left alone. A claim whose process may have died just
    /// before its claim succeeded (the record says "about to claim", not "claimed") is undone
    /// only once its position has stayed stuck for ten stall timeouts, which this call then
    /// waits for (blocked calls, for as long). The remaining risk: such a position held, in
    /// fact, by a peer that records nothing and has stopped for that long in the middle of an
    /// operation; its item would be lost, the queue stays consistent.
    ///
    /// # Errors
    ///
    /// None today; `Result` leaves room for the checks of kinds to come.
    pub fn recover(&self) -> Result<Recovery> {
        let done = crate::journal::recover(self.stall_timeout, |uncertain| self.rescue(uncertain));
        Ok(done)
    }

    /// One pass of recovery (see [`Claimed::rescue`]), waking the waiters of this process's
    /// kind when something was undone.
    #[cold]
    #[inline(never)]
    fn rescue(&self, uncertain: Duration) -> (Recovery, u64) {
        let words = Claimed {
            segment: &self.segment,
            offset: self.offset,
            head: self.head.get().atomic(),
            tail: self.tail.get().atomic(),
            seqs: self.seqs.get(),
            capacity: self.capacity,
        };
        let (done, left) = words.rescue(uncertain);
        if done.undone > 0 {
            self.head_chime.ring(self.head.get().atomic(), u32::MAX);
            self.tail_chime.ring(self.tail.get().atomic(), u32::MAX);
        }
        (done, left)
    }

    /// The store one operation runs on: the queue, with this thread's lane for its claims.
    #[inline]
    fn claiming(&self) -> Claiming<'_, Self> {
        Claiming::new(self, self.journal.as_ref())
    }

    #[cold]
    #[inline(never)]
    fn anomaly(&self, anomaly: Anomaly) -> Error {
        anomaly_error(&self.segment, &self.name, anomaly)
    }

    #[cold]
    #[inline(never)]
    fn timeout(&self, op: &'static str, condition: &'static str, waited: Duration) -> Error {
        timeout_error(self.segment.name(), &self.name, op, condition, waited)
    }
}

/// The error for an anomaly of the queue `name`'s words.
pub(crate) fn anomaly_error(segment: &Segment, name: &str, anomaly: Anomaly) -> Error {
    let reason = match anomaly {
        Anomaly::SeqAhead { pos, seq } => format!(
            "the sequence word of position `{pos}` reads `{seq}`, ahead of a counter that \
             has not moved"
        ),
        Anomaly::Livelock => format!(
            "`{MAX_RETRIES}` attempts in a row found the counters and sequence words \
             inconsistent"
        ),
        Anomaly::NoSlot { slot } => format!("slot `{slot}` has no sequence word"),
    };
    kind::corrupt(segment, name, StructureKind::Queue, reason)
}

/// The words of a queue that recovery works on, however they were reached (a typed handle, or
/// the stored parts for `Segment::recover_structure`).
pub(crate) struct Claimed<'a> {
    segment: &'a Segment,
    /// The segment offset of the queue's entry (its identity in claims).
    offset: u64,
    head: &'a AtomicU32,
    tail: &'a AtomicU32,
    seqs: Words<'a>,
    capacity: u32,
}

impl Claimed<'_> {
    /// One pass of recovery over the dead processes' claims on this queue; a claim not known
    /// to be held is undone only once it has been found stuck for `uncertain`. Also returns
    /// how many such claims were left stuck.
    fn rescue(&self, uncertain: Duration) -> (Recovery, u64) {
        let mut done = Recovery::default();
        let mut left = 0u64;
        let Some(ledger) = runtime::ledger(self.segment) else {
            return (done, left);
        };
        let claims = ledger.claims(self.offset);
        let dead: Vec<Claim> = claims
            .into_iter()
            .filter(|c| c.liveness == Liveness::Dead)
            .collect();
        for claim in &dead {
            let mut pending = false;
            let mut undone = 0u64;
            // A claim covers at most a lap: beyond it positions repeat.
            for k in 0..claim.count.min(self.capacity) {
                let pos = claim.pos.wrapping_add(k);
                match self.stuck(claim.op, pos) {
                    Stuck::No => continue,
                    Stuck::Later => {
                        pending = true;
                        continue;
                    }
                    Stuck::Now => {}
                }
                if !claim.held && ledger.stuck_for(claim) < uncertain {
                    pending = true;
                    left = left.saturating_add(1);
                    continue;
                }
                // The lanes are read after the counter and the slot that showed the
                // position stuck: a live producer or consumer that took it meanwhile shows.
                if ledger.contested(self.offset, claim.op, pos, &dead) {
                    pending = true;
                    continue;
                }
                if self.undo(claim.op, pos) {
                    undone = undone.saturating_add(1);
                } else {
                    pending = true;
                }
            }
            if undone > 0 {
                ledger.count(undone);
                done.undone = done.undone.saturating_add(undone);
                done.lost = done.lost.saturating_add(undone);
            }
            if pending {
                done.pending = done.pending.saturating_add(1);
            } else {
                ledger.clear(claim);
            }
        }
        ledger.sweep();
        (done, left)
    }

    /// Whether position `pos`, claimed for `op` by a dead process, is stuck: counters first,
    /// then the sequence word.
    fn stuck(&self, op: Op, pos: u32) -> Stuck {
        let Some(seq) = self
            .seqs
            .get((pos & self.capacity.wrapping_sub(1)) as usize)
        else {
            return Stuck::No;
        };
        // Acquire, both: the claim CAS on the counter published the lanes read after; every
        // load of a sequence word is Acquire.
        let passed =
            |counter: &AtomicU32| (counter.load(Ordering::Acquire).wrapping_sub(pos) as i32) > 0;
        match op {
            // Taken (head passed it) and never released: seq still says published.
            Op::Pop if passed(self.head) && seq.load(Ordering::Acquire) == pos.wrapping_add(1) => {
                Stuck::Now
            }
            Op::Pop => Stuck::No,
            // Claimed (tail passed it) and never published: seq still says free; it can be
            // skipped once it is the next to pop.
            Op::Push if passed(self.tail) && seq.load(Ordering::Acquire) == pos => {
                let h = self.head.load(Ordering::Acquire);
                if h == pos {
                    Stuck::Now
                } else if (pos.wrapping_sub(h) as i32) > 0 {
                    Stuck::Later
                } else {
                    Stuck::No
                }
            }
            Op::Push => Stuck::No,
        }
    }

    /// Undoes a stuck position (see [`stuck`](Self::stuck)); whether this call did it.
    fn undo(&self, op: Op, pos: u32) -> bool {
        let Some(seq) = self
            .seqs
            .get((pos & self.capacity.wrapping_sub(1)) as usize)
        else {
            return false;
        };
        match op {
            // The slot goes to the next lap's producer. AcqRel on success: the dead consumer's
            // accesses come before, the next producer's after (it pairs with that producer's
            // Acquire load).
            Op::Pop => seq
                .compare_exchange(
                    pos.wrapping_add(1),
                    pos.wrapping_add(self.capacity),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok(),
            Op::Push => {
                // SYNC POINT (slot seq): Acquire, as every load of a sequence word. Still
                // unpublished after the lanes were read: nobody we know of is about to.
                if seq.load(Ordering::Acquire) != pos {
                    return false;
                }
                // Skip it as a consumer would take it: claim the position on `head` (SeqCst,
                // as every claim), then hand the slot to the next lap's producer.
                if self
                    .head
                    .compare_exchange(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    )
                    .is_err()
                {
                    return false;
                }
                // SYNC POINT (slot seq): Release, as a consumer's release of the slot in `pop`.
                seq.store(pos.wrapping_add(self.capacity), Ordering::Release);
                true
            }
        }
    }
}

/// Whether a dead process's claimed position is stuck.
enum Stuck {
    /// Stuck, and can be undone now.
    Now,
    /// Stuck, but cannot be undone yet (items before it are still to be popped).
    Later,
    /// Not stuck: finished, or undone by someone else.
    No,
}

fn op_of(side: Side) -> Op {
    match side {
        Side::Push => Op::Push,
        Side::Pop => Op::Pop,
    }
}

impl<T: ShmLayout> vyukov::Store for Queue<T> {
    type W = AtomicU32;
    type Item = T;

    #[inline]
    fn head(&self) -> &AtomicU32 {
        self.head.get().atomic()
    }

    #[inline]
    fn tail(&self) -> &AtomicU32 {
        self.tail.get().atomic()
    }

    #[inline]
    fn seq(&self, slot: u32) -> Option<&AtomicU32> {
        self.seqs.get().get(slot as usize)
    }

    fn mask(&self) -> u32 {
        self.capacity.wrapping_sub(1)
    }

    #[inline]
    fn write(&self, slot: u32, item: T) {
        // `slot <= mask < capacity`, inside the validated slots, so this cannot fail.
        let _ = self.slots.get().write(slot as usize, item);
    }

    #[inline]
    fn read(&self, slot: u32) -> T {
        self.slots
            .get()
            .read(slot as usize)
            .unwrap_or_else(T::zeroed)
    }

    // Relaxed: the hints are guesses, validated by the algorithm.
    #[inline]
    fn tail_guess(&self) -> u32 {
        self.tail_hint.0.load(Ordering::Relaxed)
    }

    #[inline]
    fn head_guess(&self) -> u32 {
        self.head_hint.0.load(Ordering::Relaxed)
    }

    #[inline]
    fn note_tail(&self, tail: u32) {
        self.tail_hint.0.store(tail, Ordering::Relaxed);
    }

    #[inline]
    fn note_head(&self, head: u32) {
        self.head_hint.0.store(head, Ordering::Relaxed);
    }
}

/// One operation's store: the queue (typed or run-time typed) and this thread's lane,
/// resolved once per operation.
pub(crate) struct Claiming<'a, Q> {
    queue: &'a Q,
    lane: Option<Lane<'a>>,
    /// Whether the operation recorded an intent (a poll of an empty queue records none, and
    /// then writes nothing to the lane either).
    intended: std::cell::Cell<bool>,
}

impl<'a, Q: vyukov::Store> Claiming<'a, Q> {
    /// The store of one operation on `queue`, recording its claims in this thread's lane of
    /// `journal`, if any.
    #[inline]
    pub(crate) fn new(queue: &'a Q, journal: Option<&'a Journal>) -> Self {
        Self {
            queue,
            lane: journal.and_then(Journal::lane),
            intended: std::cell::Cell::new(false),
        }
    }

    /// Clears this thread's claim: the operation is over.
    #[inline]
    pub(crate) fn settle(&self) {
        if let Some(lane) = &self.lane
            && self.intended.get()
        {
            lane.settle();
        }
    }
}

impl<Q: vyukov::Store<W = AtomicU32>> vyukov::Store for Claiming<'_, Q> {
    type W = AtomicU32;
    type Item = Q::Item;

    #[inline]
    fn head(&self) -> &AtomicU32 {
        vyukov::Store::head(self.queue)
    }

    #[inline]
    fn tail(&self) -> &AtomicU32 {
        vyukov::Store::tail(self.queue)
    }

    #[inline]
    fn seq(&self, slot: u32) -> Option<&AtomicU32> {
        vyukov::Store::seq(self.queue, slot)
    }

    #[inline]
    fn mask(&self) -> u32 {
        vyukov::Store::mask(self.queue)
    }

    #[inline]
    fn write(&self, slot: u32, item: Q::Item) {
        vyukov::Store::write(self.queue, slot, item);
    }

    #[inline]
    fn read(&self, slot: u32) -> Q::Item {
        vyukov::Store::read(self.queue, slot)
    }

    #[inline]
    fn tail_guess(&self) -> u32 {
        vyukov::Store::tail_guess(self.queue)
    }

    #[inline]
    fn head_guess(&self) -> u32 {
        vyukov::Store::head_guess(self.queue)
    }

    #[inline]
    fn note_tail(&self, tail: u32) {
        vyukov::Store::note_tail(self.queue, tail);
    }

    #[inline]
    fn note_head(&self, head: u32) {
        vyukov::Store::note_head(self.queue, head);
    }

    #[inline]
    fn intend(&self, side: Side, pos: u32, count: u32) {
        if let Some(lane) = &self.lane {
            lane.intend(op_of(side), pos, count);
            self.intended.set(true);
        }
    }

    #[inline]
    fn held(&self, side: Side) {
        if let Some(lane) = &self.lane {
            lane.hold(op_of(side));
        }
    }

    #[inline(always)]
    fn step(&self, name: &'static str) {
        crate::failpoint::hit(name);
    }
}
