//! A bounded lock-free LIFO stack of `T` (FORMAT.md §4.3), byte-compatible with every ZeroIPC
//! implementation.
//!
//! ```text
//! +0  atomic i32 top        index of the top element, -1 when empty
//! +4  u32 capacity          1 ..= 2^31 - 1
//! +8  u32 elem_size
//! +12 u32 reserved (0)
//! +16 slots                 capacity * elem_size bytes
//! +16 + align8(slots)       atomic u32 state[capacity]: 0 EMPTY, 1 WRITING, 2 READY, 3 READING
//! ```
//!
//! The algorithm (`algo/stack.rs`) claims a position by CAS on `top`, then the slot by CAS on its
//! state word, so a slot is never read while written or written while read.
//!
//! Crash behaviour is documented on [`Stack`].

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::algo::Side;
use crate::algo::stack::{self as algo, EMPTY, Failure, READING, READY, WRITING};
use crate::container::Capacity;
use crate::container::slotted::{HEADER, Slotted, header_u32};
use crate::error::{Error, PushError, Result};
use crate::journal::{Claim, Journal, Lane, Op as ClaimOp, Target};
use crate::kind::{
    self, Exercise, Handle, Invalid, Kind, Mismatch, Opened, Recovery, StructureDefect,
    StructureKind,
};
use crate::layout::ShmLayout;
use crate::peers::Liveness;
use crate::raw::{Access, Anchored, Region, Slots, Word, Words};
use crate::runtime;
use crate::segment::Segment;
use crate::wait::{Backoff, Bell, Chime, Watch, deadline, pop_until, push_until, timeout_error};

pub(crate) const OFF_TOP: usize = 0;
const OFF_CAPACITY: usize = 4;
const OFF_ELEM_SIZE: usize = 8;
const OFF_RESERVED: usize = 12;
/// `top` is an `i32`, so indices stop at `i32::MAX`.
const MAX_CAPACITY: u64 = i32::MAX as u64;

/// The default bound on waiting for a slot held by another process.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_millis(100);

/// A bounded LIFO stack of `T` in a [`Segment`].
///
/// ```no_run
/// use zeroipc::{Segment, Stack};
///
/// let seg = Segment::create("/work", 1 << 16)?;
/// let undo = Stack::<u32>::create(&seg, "undo", 64)?;
/// undo.push(1).expect("room");
/// undo.push(2).expect("room");
/// assert_eq!(undo.pop()?, Some(2));
/// # Ok::<(), zeroipc::Error>(())
/// ```
///
/// # Crashes
///
/// A peer that dies between moving `top` and finishing its slot leaves the slot EMPTY or
/// WRITING (a pusher) or READY or READING (a popper). Operations that reach such a slot wait a
/// bounded time (the stall timeout, 100 ms by default). If the slot's claim, recorded in the
/// runtime entry like every claim of this crate (see [`Queue`](crate::Queue#crashes)), belongs to
/// a provably dead process, the operation frees the slot and goes on: a pusher takes it, a
/// popper pops what lies below it. Only the dead process's one item is lost.
/// [`recover`](Self::recover) (or `zeroipc repair`) does the same for a stack nobody is using.
///
/// Otherwise the operation tries to undo its own `top` move and fails with
/// [`Error::PeerStalled`] naming the slot and its state; it never hangs. That is the case of a
/// peer of another implementation (they record nothing), and of a live peer descheduled for
/// longer than the stall timeout: with more runnable threads than cores that can take tens of
/// milliseconds, and a timed-out operation whose undo loses a race leaves an element stranded
/// above `top` (the reference implementations behave the same way). Keep the timeout well
/// above the longest scheduling delay you expect.
pub struct Stack<T: ShmLayout> {
    segment: Segment,
    name: String,
    top: Anchored<Word<'static>>,
    slots: Anchored<Slots<'static, T>>,
    states: Anchored<Words<'static>>,
    capacity: u32,
    stall_timeout: Duration,
    /// The waiter count of `top`, rung after each push and pop.
    top_chime: Chime,
    /// The segment's waiter counts and poll interval, for blocking calls.
    bell: Bell,
    /// This process's claims in flight, for recovery when it dies mid-operation.
    journal: Option<Journal>,
    /// The segment offset of the stack's entry (its identity in claims).
    offset: u64,
    _elem: PhantomData<fn() -> T>,
}

impl<T: ShmLayout> fmt::Debug for Stack<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("segment", &self.segment.name())
            .field("name", &self.name)
            .field("elem", &T::LAYOUT.type_name())
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

/// The stack kind: a capacity and an element size.
#[derive(Debug)]
pub(crate) enum StackKind {}

impl Kind for StackKind {
    const KIND: StructureKind = StructureKind::Stack;
    const PARTS: &'static [&'static str] = &[""];
    type Params = Capacity;
    type Geometry = Slotted;

    fn plan(params: Capacity) -> Result<Capacity, (&'static str, String)> {
        let capacity = params.capacity;
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(("capacity", format!("`{capacity}` is outside `1..=2^31-1`")));
        }
        Ok(params)
    }

    fn sizes(params: &Capacity) -> Option<Vec<u64>> {
        Some(vec![Slotted::of(params)?.total])
    }

    fn init(params: &Capacity, parts: &[Region<'_>]) -> Result<(), Access> {
        let [r] = parts else {
            return Err(Access::OutOfBounds);
        };
        let capacity = u32::try_from(params.capacity).map_err(|_| Access::OutOfBounds)?;
        r.write::<i32>(OFF_TOP, -1)?;
        r.write::<u32>(OFF_CAPACITY, capacity)?;
        r.write::<u32>(OFF_ELEM_SIZE, params.elem)?;
        r.write::<u32>(OFF_RESERVED, 0)?;
        // Slots, alignment gap and every state word (EMPTY is 0).
        r.zero(HEADER, r.len().saturating_sub(HEADER))
    }

    fn validate(parts: &[Region<'_>], elem: Option<u32>) -> Result<Slotted, Invalid> {
        let part = kind::only(parts)?;
        let capacity = header_u32(part, OFF_CAPACITY)?;
        let stored_elem = header_u32(part, OFF_ELEM_SIZE)?;
        let top = header_u32(part, OFF_TOP)? as i32;
        if capacity == 0 || u64::from(capacity) > MAX_CAPACITY {
            return Err(Invalid::Corrupt(format!(
                "capacity `{capacity}` is outside `1..=2^31-1`"
            )));
        }
        let geometry = Slotted::validate(part, capacity, stored_elem, elem)?;
        if top < -1 || i64::from(top) >= i64::from(capacity) {
            return Err(Invalid::Corrupt(format!(
                "top `{top}` is outside `-1..{capacity}`"
            )));
        }
        Ok(geometry)
    }

    fn mismatch(requested: &Capacity, found: &Slotted) -> Option<Mismatch> {
        requested.mismatch(u64::from(found.capacity))
    }

    fn describe(geometry: &Slotted) -> String {
        geometry.describe()
    }

    fn len(parts: &[Region<'_>], geometry: &Slotted) -> Option<u64> {
        let top = top_of(kind::only(parts).ok()?)?;
        Some(
            u64::try_from(top.saturating_add(1))
                .ok()?
                .min(u64::from(geometry.capacity)),
        )
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
        let (Ok(top), Ok(states)) = (
            part.atomic_u32(OFF_TOP),
            part.words(geometry.words_at, geometry.capacity as usize),
        ) else {
            return Recovery::default();
        };
        let words = Claimed {
            segment,
            offset,
            top,
            states,
        };
        let done = crate::journal::recover(stall, |uncertain| words.rescue_all(uncertain));
        if done.undone > 0 {
            crate::wait::wake(top, u32::MAX);
        }
        done
    }

    fn audit(parts: &[Region<'_>], geometry: &Slotted) -> Vec<StructureDefect> {
        let Ok(part) = kind::only(parts) else {
            return Vec::new();
        };
        audit(part, geometry)
    }
}

/// `top`, read once.
fn top_of(part: &Region<'_>) -> Option<i32> {
    // Acquire: a snapshot; the state words read after it are at least as new.
    Some(part.load_u32(OFF_TOP, Ordering::Acquire).ok()? as i32)
}

/// The defects of a stack's `top` and state words. In a sound stack at rest, the slots up to
/// `top` are READY and those above are EMPTY; WRITING and READING are the states a peer leaves
/// inside an operation (a push or pop in progress, or one that stopped there).
fn audit(part: &Region<'_>, geometry: &Slotted) -> Vec<StructureDefect> {
    let mut defects = Vec::new();
    let Some(top) = top_of(part) else {
        return defects;
    };
    if top < -1 || i64::from(top) >= i64::from(geometry.capacity) {
        defects.push(StructureDefect {
            slot: None,
            in_flight: false,
            problem: format!("top `{top}` is outside `-1..{}`", geometry.capacity),
            holder: None,
        });
        return defects;
    }
    for slot in 0..geometry.capacity {
        if defects.len() > kind::MAX_DEFECTS {
            break;
        }
        let Some(state) = geometry
            .word_at(slot)
            .and_then(|at| part.load_u32(at, Ordering::Acquire).ok())
        else {
            continue;
        };
        let below = i64::from(slot) <= i64::from(top);
        let (in_flight, problem) = match (state, below) {
            (READY, true) | (EMPTY, false) => continue,
            (WRITING, _) => (
                true,
                "is WRITING: a push claimed it and has not finished (a pusher inside `push`, or \
                 one that stopped there)"
                    .to_owned(),
            ),
            (READING, _) => (
                true,
                "is READING: a pop claimed it and has not finished (a popper inside `pop`, or \
                 one that stopped there)"
                    .to_owned(),
            ),
            (EMPTY, true) => (
                true,
                format!(
                    "is EMPTY, below top `{top}`: a push moved `top` and has not claimed the slot \
                     yet (or stopped there)"
                ),
            ),
            (READY, false) => (
                true,
                format!(
                    "is READY, above top `{top}`: a pop moved `top` and has not claimed the slot \
                     yet (or stopped there)"
                ),
            ),
            (other, _) => (false, format!("has state `{other}`, not 0 ..= 3")),
        };
        defects.push(StructureDefect {
            slot: Some(u64::from(slot)),
            in_flight,
            problem,
            holder: None,
        });
    }
    defects
}

impl<T: ShmLayout> Handle for Stack<T> {
    type Kind = StackKind;

    fn elem() -> Result<u32> {
        kind::elem_size::<T>()
    }
    fn layout() -> Option<&'static crate::layout::Layout> {
        Some(T::LAYOUT)
    }

    fn from_parts(opened: Opened<'_, StackKind>) -> Result<Self> {
        let g = opened.geometry;
        let top = opened.word(0, OFF_TOP)?;
        let slots = opened.slots::<T>(0, HEADER, g.capacity as usize)?;
        let states = opened.words(0, g.words_at, g.capacity as usize)?;
        // Last, once nothing can fail: it may add the runtime entry.
        let offset = opened.offset(0)?;
        let bell = runtime::bell(opened.segment);
        let journal = bell
            .attachment()
            .and_then(|a| Journal::new(a, Target::Stack, offset));
        Ok(Self {
            journal,
            offset,
            segment: opened.segment.clone(),
            name: opened.name.to_owned(),
            top_chime: bell.chime(opened.segment, top.get().atomic()),
            top,
            slots,
            states,
            capacity: g.capacity,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            bell,
            _elem: PhantomData,
        })
    }
}

impl<T: ShmLayout> Exercise for Stack<T> {
    fn exercise(&mut self) {
        self.set_stall_timeout(Duration::from_micros(200));
        let _ = (self.len(), self.is_empty(), self.is_full());
        for _ in 0..2 {
            let _ = self.push(T::zeroed());
            let _ = self.pop();
        }
    }
}

impl<T: ShmLayout> Stack<T> {
    /// Creates the empty stack `name` with `capacity` slots.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for capacity 0 or above `i32::MAX`, or oversized elements;
    /// [`Error::InvalidEntryName`], [`Error::DuplicateEntry`], [`Error::TableFull`],
    /// [`Error::OutOfSpace`], [`Error::ReadOnly`]: the segment is unchanged.
    pub fn create(segment: &Segment, name: &str, capacity: usize) -> Result<Self> {
        kind::create(segment, name, Capacity::of::<T>(capacity)?)
    }

    /// Opens the existing stack `name`. The first queue or stack handle on a writable segment
    /// may add the runtime entry (see [`SegmentOptions::runtime_entry`](crate::SegmentOptions::runtime_entry)).
    ///
    /// # Errors
    ///
    /// [`Error::EntryNotFound`]; [`Error::TypeMismatch`] when the stored element size is not
    /// `size_of::<T>()`; [`Error::CorruptStructure`] for a capacity of 0, a geometry that
    /// disagrees with the entry, or `top` outside `-1..capacity` (a slot state above 3 is
    /// reported by the operation that meets it);
    /// [`Error::ReadOnly`] on a read-only segment.
    pub fn open(segment: &Segment, name: &str) -> Result<Self> {
        kind::open(segment, name)
    }

    /// Opens `name` if it exists (its capacity must equal `capacity`), otherwise creates it.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`create`](Self::create), and [`Error::CapacityMismatch`].
    pub fn open_or_create(segment: &Segment, name: &str, capacity: usize) -> Result<Self> {
        kind::open_or_create(segment, name, Capacity::of::<T>(capacity)?)
    }

    /// How long an operation waits for a slot that another process holds mid-operation before
    /// failing with [`Error::PeerStalled`] (default 100 ms; see the module docs on choosing it).
    pub fn set_stall_timeout(&mut self, timeout: Duration) {
        self.stall_timeout = timeout;
    }

    /// The entry name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Elements on the stack (approximate while other processes push and pop).
    pub fn len(&self) -> usize {
        algo::len(&self.op(None)) as usize
    }

    /// Whether the stack is empty (approximate).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the stack is full (approximate).
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// Pushes `value`.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] with the value when there is no room; [`PushError::Failed`] with the
    /// value and [`Error::PeerStalled`] or [`Error::CorruptStructure`] when the slot stayed busy
    /// past the stall timeout or the stack's words are corrupt.
    pub fn push(&self, value: T) -> std::result::Result<(), PushError<T>> {
        self.push_by(value, None)
    }

    /// Pops the top element; `Ok(None)` when the stack is empty.
    ///
    /// # Errors
    ///
    /// [`Error::PeerStalled`] when the top slot stayed busy past the stall timeout,
    /// [`Error::CorruptStructure`] when `top` is out of range.
    pub fn pop(&self) -> Result<Option<T>> {
        self.pop_by(None)
    }

    /// `push`, waiting for a busy slot no later than `limit` (besides the stall timeout).
    fn push_by(&self, value: T, limit: Option<Instant>) -> std::result::Result<(), PushError<T>> {
        let op = self.op(limit);
        let pushed = algo::push(&op, value);
        op.settle();
        match pushed {
            Ok(()) => {
                self.ring();
                Ok(())
            }
            Err((value, Failure::Full)) => Err(PushError::Full(value)),
            Err((value, other)) => Err(PushError::Failed(value, self.failure(other, &op))),
        }
    }

    /// `pop`, waiting for a busy slot no later than `limit` (besides the stall timeout).
    fn pop_by(&self, limit: Option<Instant>) -> Result<Option<T>> {
        let op = self.op(limit);
        let popped = algo::pop(&op);
        op.settle();
        match popped {
            Ok(Some(item)) => {
                self.ring();
                Ok(Some(item))
            }
            Ok(None) => Ok(None),
            Err(f) => Err(self.failure(f, &op)),
        }
    }

    /// Wakes every waiter on `top`: pushers waiting for room and poppers waiting for an item
    /// sleep on the same word, so a single wake could reach one that cannot proceed and leave
    /// the one that can asleep.
    #[inline]
    fn ring(&self) {
        self.top_chime.ring(self.top.get().atomic(), u32::MAX);
    }

    /// Pushes `value`, waiting up to `timeout` for room: spinning briefly, then sleeping until a
    /// pop of this crate wakes it, or one of another implementation (which never wakes) is
    /// noticed within the segment's
    /// [poll interval](crate::SegmentOptions::poll_interval). A slot held by a stalled peer is
    /// waited for no longer than `timeout` either, except after a claim on `top` that could not
    /// be undone (see the type's docs on crashes), when giving up would strand an element.
    ///
    /// # Errors
    ///
    /// [`PushError::Failed`] with the value and [`Error::Timeout`] when the stack stayed full
    /// until the deadline, or [`Error::PeerStalled`] when a busy slot did; otherwise as
    /// [`push`](Self::push).
    pub fn push_timeout(
        &self,
        value: T,
        timeout: Duration,
    ) -> std::result::Result<(), PushError<T>> {
        let limit = deadline(timeout);
        push_until(
            timeout,
            value,
            &self.watch(),
            |v| self.push_by(v, Some(limit)),
            || {
                timeout_error(
                    self.segment.name(),
                    &self.name,
                    "push_timeout",
                    "the stack stayed full",
                    timeout,
                )
            },
        )
    }

    /// Pops the top element, waiting up to `timeout` for one, as
    /// [`push_timeout`](Self::push_timeout) waits for room.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the stack stayed empty until the deadline, or
    /// [`Error::PeerStalled`] when a busy slot did; otherwise as [`pop`](Self::pop).
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T> {
        let limit = deadline(timeout);
        pop_until(
            timeout,
            &self.watch(),
            || self.pop_by(Some(limit)),
            || {
                timeout_error(
                    self.segment.name(),
                    &self.name,
                    "pop_timeout",
                    "the stack stayed empty",
                    timeout,
                )
            },
        )
    }

    fn failure<S: StackCells>(&self, failure: Failure, op: &Op<'_, S>) -> Error {
        failure_error(
            &self.segment,
            &self.name,
            self.capacity,
            failure,
            op.bound(),
        )
    }

    /// Blocking calls wait on `top`: every push and pop changes it. A slot a peer holds mid-
    /// operation is waited for inside the operation, bounded by the stall timeout.
    fn watch(&self) -> Watch<'_> {
        Watch {
            bell: &self.bell,
            word: self.top.get().atomic().into(),
            at_rest: &|_| true,
            rescue: None,
        }
    }

    /// Undoes the claims of processes that died in the middle of an operation on this stack:
    /// a slot a dead popper claimed (left READY or READING above `top`) is freed, and a slot a
    /// dead pusher claimed (left EMPTY or WRITING) is given up once it is the top. The item
    /// each was moving is lost (counted in the result); every other item stays. Operations
    /// that wait the stall timeout on such a slot do this themselves before failing with
    /// [`Error::PeerStalled`]; this call is for a stack that nobody is using at the moment, or
    /// for `zeroipc repair`. Its limits are those of [`Queue::recover`](crate::Queue::recover).
    ///
    /// # Errors
    ///
    /// None today; `Result` leaves room for the checks of kinds to come.
    pub fn recover(&self) -> Result<Recovery> {
        let words = self.claimed();
        let done =
            crate::journal::recover(self.stall_timeout, |uncertain| words.rescue_all(uncertain));
        if done.undone > 0 {
            self.ring();
        }
        Ok(done)
    }

    /// The words recovery works on.
    fn claimed(&self) -> Claimed<'_> {
        Claimed {
            segment: &self.segment,
            offset: self.offset,
            top: self.top.get().atomic(),
            states: self.states.get(),
        }
    }

    fn op(&self, limit: Option<Instant>) -> Op<'_, Self> {
        Op::new(self, self.journal.as_ref(), limit)
    }
}

/// The error for a stack operation that did not complete, `waited` being how long its last
/// wait was allowed to last.
pub(crate) fn failure_error(
    segment: &Segment,
    name: &str,
    capacity: u32,
    failure: Failure,
    waited: Duration,
) -> Error {
    match failure {
        Failure::Stalled { slot, state } => Error::PeerStalled {
            segment: segment.name().to_owned(),
            name: name.to_owned(),
            slot,
            state,
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
        },
        Failure::Corrupt { top } => Error::CorruptStructure {
            segment: segment.name().to_owned(),
            name: name.to_owned(),
            kind: StructureKind::Stack.name(),
            reason: format!("top `{top}` is outside `-1..{}`", capacity),
        },
        Failure::BadState { slot, state } => Error::CorruptStructure {
            segment: segment.name().to_owned(),
            name: name.to_owned(),
            kind: StructureKind::Stack.name(),
            reason: format!("slot `{slot}` has state `{state}`, not 0 ..= 3"),
        },
        Failure::Abandoned => Error::Internal {
            segment: segment.name().to_owned(),
            what: "pop a stack",
            problem: "an abandoned slot escaped the pop loop",
        },
        Failure::Full => Error::InvalidArgument {
            what: "value",
            reason: "the stack is full".into(),
        },
    }
}

/// What an operation needs of a stack handle, typed or run-time typed.
pub(crate) trait StackCells {
    /// The element.
    type Item;
    /// The `top` word.
    fn top_word(&self) -> &AtomicU32;
    /// The slot state words.
    fn states(&self) -> Words<'_>;
    /// Number of slots.
    fn capacity(&self) -> u32;
    /// How long a busy slot is waited for.
    fn stall_timeout(&self) -> Duration;
    /// The words recovery works on.
    fn claimed(&self) -> Claimed<'_>;
    /// Writes the element of slot `slot < capacity`.
    fn write(&self, slot: u32, item: Self::Item);
    /// Reads the element of slot `slot < capacity`.
    fn read(&self, slot: u32) -> Self::Item;
}

impl<T: ShmLayout> StackCells for Stack<T> {
    type Item = T;

    fn top_word(&self) -> &AtomicU32 {
        self.top.get().atomic()
    }

    fn states(&self) -> Words<'_> {
        self.states.get()
    }

    fn capacity(&self) -> u32 {
        self.capacity
    }

    fn stall_timeout(&self) -> Duration {
        self.stall_timeout
    }

    fn claimed(&self) -> Claimed<'_> {
        Stack::claimed(self)
    }

    fn write(&self, slot: u32, item: T) {
        // `slot < capacity`, inside the validated slots, so this cannot fail.
        let _ = self.slots.get().write(slot as usize, item);
    }

    fn read(&self, slot: u32) -> T {
        self.slots
            .get()
            .read(slot as usize)
            .unwrap_or_else(T::zeroed)
    }
}

/// One operation's view of the stack: the algorithm's store plus its wait state.
pub(crate) struct Op<'a, S> {
    stack: &'a S,
    /// The caller's deadline (`*_timeout`), which bounds an uncommitted wait too.
    limit: Option<Instant>,
    deadline: Cell<Option<Instant>>,
    /// How long the last wait was allowed to last, for the error.
    bound: Cell<Duration>,
    backoff: Cell<Backoff>,
    /// This thread's lane for the operation's claims.
    lane: Option<Lane<'a>>,
    /// Whether the operation recorded an intent (a pop of an empty stack records none).
    intended: Cell<bool>,
}

impl<'a, S: StackCells> Op<'a, S> {
    /// One operation on `stack`, recording its claims in this thread's lane of `journal`, if
    /// any, and waiting for busy slots no later than `limit` (besides the stall timeout).
    pub(crate) fn new(stack: &'a S, journal: Option<&'a Journal>, limit: Option<Instant>) -> Self {
        Op {
            stack,
            limit,
            deadline: Cell::new(None),
            bound: Cell::new(stack.stall_timeout()),
            backoff: Cell::new(Backoff::new()),
            lane: journal.and_then(Journal::lane),
            intended: Cell::new(false),
        }
    }

    /// How long the last wait was allowed to last.
    pub(crate) fn bound(&self) -> Duration {
        self.bound.get()
    }

    /// Clears this thread's claim: the operation is over.
    pub(crate) fn settle(&self) {
        if let Some(lane) = &self.lane
            && self.intended.get()
        {
            lane.settle();
        }
    }
}

/// The words of a stack that recovery works on, however they were reached (a typed handle, or
/// the stored parts for `Segment::recover_structure`).
pub(crate) struct Claimed<'a> {
    segment: &'a Segment,
    /// The segment offset of the stack's entry (its identity in claims).
    offset: u64,
    top: &'a AtomicU32,
    states: Words<'a>,
}

impl<'a> Claimed<'a> {
    /// The words of the stack at segment offset `offset`.
    pub(crate) fn new(
        segment: &'a Segment,
        offset: u64,
        top: &'a AtomicU32,
        states: Words<'a>,
    ) -> Self {
        Self {
            segment,
            offset,
            top,
            states,
        }
    }
    /// One pass of recovery over every dead claim on the stack; a claim not known to be held
    /// is undone only once it has been found stuck for `uncertain`. Also returns how many such
    /// claims were left stuck.
    fn rescue_all(&self, uncertain: Duration) -> (Recovery, u64) {
        let mut done = Recovery::default();
        let mut left = 0u64;
        let Some(ledger) = runtime::ledger(self.segment) else {
            return (done, left);
        };
        let dead: Vec<Claim> = ledger
            .claims(self.offset)
            .into_iter()
            .filter(|c| c.liveness == Liveness::Dead)
            .collect();
        for claim in &dead {
            let undone = match self.stuck(claim, None) {
                Stuck::No => {
                    ledger.clear(claim);
                    continue;
                }
                Stuck::Later => false,
                Stuck::Now if !claim.held && ledger.stuck_for(claim) < uncertain => {
                    left = left.saturating_add(1);
                    false
                }
                // The lanes are read after the words that showed the slot stuck.
                Stuck::Now if ledger.contested(self.offset, claim.op, claim.pos, &dead) => false,
                Stuck::Now => self.undo(claim, None),
            };
            if undone {
                ledger.count(1);
                ledger.clear(claim);
                done.undone = done.undone.saturating_add(1);
                done.lost = done.lost.saturating_add(1);
            } else {
                done.pending = done.pending.saturating_add(1);
            }
        }
        ledger.sweep();
        (done, left)
    }

    /// Whether the slot of a dead process's `claim` is stuck. `waiting` is set when an
    /// operation of ours waits on that slot, having moved `top` past it already (a pusher for
    /// EMPTY, a popper for READY).
    fn stuck(&self, claim: &Claim, waiting: Option<Side>) -> Stuck {
        let slot = claim.pos;
        let Some(state) = self.states.get(slot as usize) else {
            return Stuck::No;
        };
        // Acquire, both: `top` first (its claim CAS published the lanes read after), then the
        // slot, as every judgement of a slot state.
        let top = self.top.load(Ordering::Acquire) as i32;
        let seen = state.load(Ordering::Acquire);
        let slot_i = slot as i32;
        match claim.op {
            // A dead popper's slot, READY (never taken) or READING (mid-copy), above `top`:
            // its claim moved `top` below it. At or below `top` the slot holds a live item
            // (the claim is stale) unless a pusher waits on it, which then frees it itself.
            ClaimOp::Pop if seen == READY || seen == READING => {
                if waiting == Some(Side::Push) || slot_i > top {
                    Stuck::Now
                } else {
                    Stuck::Later
                }
            }
            // A dead pusher's slot, EMPTY or WRITING: given up at the top, as a popper would;
            // below the top once the poppers above reach it; above the top a popper waits on
            // it and gives it up itself.
            ClaimOp::Push if seen == EMPTY || seen == WRITING => {
                if waiting == Some(Side::Pop) || slot_i == top {
                    Stuck::Now
                } else {
                    Stuck::Later
                }
            }
            _ => Stuck::No,
        }
    }

    /// Frees the stuck slot of a dead process's `claim` (see [`stuck`](Self::stuck)); whether
    /// this call did it.
    fn undo(&self, claim: &Claim, waiting: Option<Side>) -> bool {
        let slot = claim.pos;
        let Some(state) = self.states.get(slot as usize) else {
            return false;
        };
        // SYNC POINT (slot state): Acquire, as every judgement of a slot state.
        let seen = state.load(Ordering::Acquire);
        match claim.op {
            // AcqRel: the dead popper's accesses come before, the next pusher's after.
            ClaimOp::Pop if seen == READY || seen == READING => state
                .compare_exchange(seen, EMPTY, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok(),
            ClaimOp::Push if seen == EMPTY || seen == WRITING => {
                // Take it off the top as a popper would (SeqCst, as every claim on `top`),
                // unless our popper already did.
                if waiting != Some(Side::Pop)
                    && self
                        .top
                        .compare_exchange(
                            slot,
                            slot.wrapping_sub(1),
                            Ordering::SeqCst,
                            Ordering::Relaxed,
                        )
                        .is_err()
                {
                    return false;
                }
                if seen == WRITING {
                    // AcqRel, as above.
                    let _ =
                        state.compare_exchange(WRITING, EMPTY, Ordering::AcqRel, Ordering::Relaxed);
                }
                true
            }
            _ => false,
        }
    }
}

/// Whether a dead process's claimed slot is stuck.
enum Stuck {
    /// Stuck, and can be freed now.
    Now,
    /// Stuck, but cannot be freed yet, or not by this caller.
    Later,
    /// Not stuck: finished, or freed by someone else.
    No,
}

fn claim_op(side: Side) -> ClaimOp {
    match side {
        Side::Push => ClaimOp::Push,
        Side::Pop => ClaimOp::Pop,
    }
}

impl<S: StackCells> algo::Store for Op<'_, S> {
    type W = AtomicU32;
    type Item = S::Item;

    fn top(&self) -> &AtomicU32 {
        self.stack.top_word()
    }

    fn state(&self, slot: u32) -> Option<&AtomicU32> {
        self.stack.states().get(slot as usize)
    }

    fn capacity(&self) -> u32 {
        self.stack.capacity()
    }

    fn write(&self, slot: u32, item: S::Item) {
        self.stack.write(slot, item);
    }

    fn read(&self, slot: u32) -> S::Item {
        self.stack.read(slot)
    }

    fn keep_waiting(&self, attempt: u32, committed: bool) -> bool {
        if attempt == 0 {
            // A new wait: a fresh clock and back-off. A committed wait (the claim on `top` could
            // not be undone) gets ten times the bound, at least a second.
            let bound = if committed {
                self.stack
                    .stall_timeout()
                    .saturating_mul(10)
                    .max(Duration::from_secs(1))
            } else {
                self.stack.stall_timeout()
            };
            let mut until = deadline(bound);
            if let Some(limit) = self.limit.filter(|&l| !committed && l < until) {
                until = limit;
            }
            let now = Instant::now();
            self.bound.set(
                until
                    .checked_duration_since(now)
                    .unwrap_or_default()
                    .min(bound),
            );
            self.deadline.set(Some(until));
            self.backoff.set(Backoff::new());
        }
        let Some(deadline) = self.deadline.get() else {
            return false;
        };
        let mut backoff = self.backoff.get();
        let more = backoff.snooze(deadline);
        self.backoff.set(backoff);
        more
    }

    fn intend(&self, side: Side, slot: u32) {
        if let Some(lane) = &self.lane {
            lane.intend(claim_op(side), slot, 1);
            self.intended.set(true);
        }
    }

    fn held(&self, side: Side) {
        if let Some(lane) = &self.lane {
            lane.hold(claim_op(side));
        }
    }

    #[inline(always)]
    fn step(&self, name: &'static str) {
        crate::failpoint::hit(name);
    }

    #[cold]
    #[inline(never)]
    fn rescue(&self, side: Side, slot: u32, _state: u32) -> bool {
        let stack = self.stack.claimed();
        let Some(ledger) = runtime::ledger(stack.segment) else {
            return false;
        };
        // The claim in the way is the other side's: a popper's slot for a pusher, a pusher's
        // for a popper; one not known to be held only once it has been found stuck for
        // `UNCERTAIN_STALLS` stall timeouts (by this or earlier operations, of any process).
        let other = match side {
            Side::Push => ClaimOp::Pop,
            Side::Pop => ClaimOp::Push,
        };
        let dead: Vec<Claim> = ledger
            .claims(stack.offset)
            .into_iter()
            .filter(|c| c.liveness == Liveness::Dead)
            .collect();
        let uncertain = self
            .stack
            .stall_timeout()
            .saturating_mul(crate::journal::UNCERTAIN_STALLS);
        let Some(claim) = dead.iter().find(|c| {
            c.op == other
                && c.covers(slot)
                && matches!(stack.stuck(c, Some(side)), Stuck::Now)
                && (c.held || ledger.stuck_for(c) >= uncertain)
        }) else {
            return false;
        };
        if ledger.contested(stack.offset, claim.op, slot, &dead) || !stack.undo(claim, Some(side)) {
            return false;
        }
        ledger.count(1);
        ledger.clear(claim);
        true
    }
}
