//! Waiting for a peer, for every blocking call: spin briefly, yield a little, then sleep in the
//! kernel on the shared 32-bit word whose change lets the call proceed (Linux `FUTEX_WAIT`,
//! shared, never `FUTEX_PRIVATE`: the word lives in a mapping other processes share), in slices
//! that start at 50 µs and double up to the segment's poll interval ([`DEFAULT_POLL_INTERVAL`],
//! 64 ms). The slices bound how late a change made by an implementation that never wakes
//! anybody (all the others: they poll) is noticed. A handle that finds its word changed at the
//! end of a slice nobody woke it in has such a peer, and for the next 10 s caps its slices at
//! 1 ms, the others' own polling step; so do waiters on a segment without waiter counts, whom
//! nothing can wake. Each slice costs a timer wake-up (5 µs of CPU on bare
//! metal, 50–90 µs in a virtual machine), which is why slices are not short by default. Deadlines are
//! on the monotonic clock (`Instant`). Elsewhere than Linux, the sleeping phase is a plain sleep of the slice.
//!
//! # Waking exactly when somebody sleeps
//!
//! The format has no waiter counts, so they live in the runtime entry (`runtime`), one per
//! bucket of words. A waiter increments its word's bucket before it sleeps and decrements it
//! after; a release of ours (a push, a pop) reads the bucket of the word it changed and makes
//! the wake-up system call only when it is not zero. Without waiters a release therefore pays
//! one load of a line that is only read, and no system call.
//!
//! No wake is lost. The releaser changes the word with a `SeqCst` read-modify-write (the CAS
//! that claims a position), then loads the bucket (`SeqCst`). The waiter increments the bucket
//! (`SeqCst`), then loads the word (`SeqCst`) and sleeps only if it still holds the value seen
//! before the failed attempt; the kernel repeats that comparison atomically with queueing the
//! waiter. In the single total order of `SeqCst` operations, either the releaser's bucket load
//! comes after the increment (it wakes, and the wake finds the waiter queued, or the kernel's
//! comparison fails because the word changed first), or the waiter's load comes after the
//! change (it does not sleep). A word that changes in a step after the one the waiter can see
//! (a queue slot published after its position was claimed) is not covered: such a waiter is
//! "not at rest" and polls in short slices instead, until the in-flight step lands.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, PushError, Result};
use crate::peers::Attachment;
use crate::raw::{Anchored, Word, Words};
use crate::runtime;
use crate::segment::Segment;
use std::sync::Arc;

/// Spins before the first yield.
const SPINS: u32 = 64;
/// Yields before the first sleep.
const YIELDS: u32 = 16;
/// The longest sleep.
const MAX_SLEEP: Duration = Duration::from_micros(1024);
/// The first slice of a kernel sleep; each next one is twice as long, up to [`MAX_SLICE`].
const MIN_SLICE: Duration = Duration::from_micros(50);
/// The default longest kernel sleep of a blocked call before it looks again
/// ([`SegmentOptions::poll_interval`](crate::SegmentOptions::poll_interval)).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(64);
/// The longest sleep once a handle has seen a change nobody woke it for, and on segments
/// without waiter counts: the polling step of the other implementations (FORMAT.md §3,
/// schedule B1).
const FOREIGN_POLL: Duration = Duration::from_millis(1);
/// How long a change nobody woke for keeps a handle's waiters at [`FOREIGN_POLL`], in
/// nanoseconds: a peer that never wakes shows itself again within it while it is active, and a
/// stray one (a release of ours racing with the end of a slice) is forgotten.
const FOREIGN_MEMORY: u64 = 10_000_000_000;

/// Nanoseconds since this process first asked, on the monotonic clock.
fn since_epoch() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The 32-bit word a waiter sleeps on (the kernel's futex word): a `u32` word of the format,
/// or the low half of one of its `u64` counters (a Signal's version). This crate reads and
/// changes a `u64` counter only as 64 bits (the memory model forbids mixed-size accesses, `raw`
/// module docs); its low half goes to the kernel alone, which compares it and queues waiters by
/// its address. A counter that only ever grows by one changes its low half at every step.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Futex<'a> {
    /// A `u32` word.
    Word(&'a AtomicU32),
    /// The low half of a `u64` counter.
    LowHalf(&'a AtomicU64),
}

impl<'a> From<&'a AtomicU32> for Futex<'a> {
    fn from(word: &'a AtomicU32) -> Self {
        Self::Word(word)
    }
}

impl<'a> Futex<'a> {
    /// The word's value (for a counter, its low 32 bits: what the kernel compares).
    #[inline]
    pub(crate) fn load(self, order: Ordering) -> u32 {
        match self {
            Self::Word(word) => word.load(order),
            Self::LowHalf(counter) => low_bits(counter.load(order)),
        }
    }

    /// The address the kernel queues waiters by (and waiter counts are bucketed by).
    fn address(self) -> usize {
        std::ptr::from_ref(self.kernel()) as usize
    }

    /// The word as the `futex` system call takes it: for the kernel only.
    fn kernel(self) -> &'a AtomicU32 {
        match self {
            Self::Word(word) => word,
            Self::LowHalf(counter) => crate::raw::low_half_for_kernel(counter),
        }
    }
}

/// The low 32 bits of `value`.
#[inline]
#[allow(clippy::cast_possible_truncation)] // Truncation is the point.
pub(crate) const fn low_bits(value: u64) -> u32 {
    value as u32
}

/// Back-off state of one waiting operation.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Backoff {
    step: u32,
}

impl Backoff {
    /// A fresh back-off.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Waits a little longer than last time, never past `deadline`. Returns `false` (without
    /// waiting) once the deadline has passed.
    pub(crate) fn snooze(&mut self, deadline: Instant) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        if self.step < SPINS {
            std::hint::spin_loop();
        } else if self.step < SPINS + YIELDS {
            std::thread::yield_now();
        } else {
            let exp = (self.step - SPINS - YIELDS).min(10);
            let sleep = Duration::from_micros(1 << exp)
                .min(MAX_SLEEP)
                .min(deadline - now);
            std::thread::sleep(sleep);
        }
        self.step = self.step.saturating_add(1);
        true
    }
}

/// `now + timeout`, saturating far in the future.
pub(crate) fn deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or(now + Duration::from_secs(60 * 60 * 24 * 365))
}

/// A segment's waiter counts (in its runtime entry), or none.
#[derive(Debug)]
pub(crate) struct Bell {
    waiters: Option<Anchored<Words<'static>>>,
    /// This process's record in the runtime entry, kept while the handle lives.
    attachment: Option<Arc<Attachment>>,
    /// The longest sleep of a waiter before it looks again.
    poll: Duration,
    /// When (nanoseconds after [`epoch`], plus one; 0 for never) a waiter of this handle last
    /// found its word changed at the end of a slice nobody woke it in: a peer that never wakes
    /// (another implementation) writes here, so for [`FOREIGN_MEMORY`] after that waiters look
    /// again every [`FOREIGN_POLL`].
    unwoken_change: AtomicU64,
}

impl Bell {
    /// The waiter counts `waiters`; waiters look again at least every `poll`.
    pub(crate) fn new(
        waiters: Option<Anchored<Words<'static>>>,
        attachment: Option<Arc<Attachment>>,
        poll: Duration,
    ) -> Self {
        Self {
            waiters,
            attachment,
            poll: poll.max(MIN_SLICE),
            unwoken_change: AtomicU64::new(0),
        }
    }

    /// This process's record in the segment, if it has one.
    pub(crate) fn attachment(&self) -> Option<&Arc<Attachment>> {
        self.attachment.as_ref()
    }

    /// The longest sleep before looking again: short without waiter counts (nothing can wake
    /// the waiter then) or soon after a change nobody woke for.
    fn poll(&self) -> Duration {
        // Relaxed: a hint that only changes how often a waiter looks.
        let last = self.unwoken_change.load(Ordering::Relaxed);
        let recent = last != 0 && since_epoch().saturating_sub(last) < FOREIGN_MEMORY;
        if self.waiters.is_none() || recent {
            self.poll.min(FOREIGN_POLL)
        } else {
            self.poll
        }
    }

    /// Notes a change nobody woke a waiter for.
    fn note_unwoken_change(&self) {
        // Relaxed: as in `poll`.
        self.unwoken_change
            .store(since_epoch().max(1), Ordering::Relaxed);
    }

    /// The waiter count of `word`'s bucket.
    fn count(&self, word: Futex<'_>) -> Option<&AtomicU32> {
        let address = word.address();
        self.waiters.as_ref()?.get().get(runtime::bucket(address))
    }

    /// The waiter count of `word`, resolved once for a handle's hot path.
    pub(crate) fn chime<'w>(&self, segment: &Segment, word: impl Into<Futex<'w>>) -> Chime {
        let address = word.into().address();
        let count = self.waiters.as_ref().and_then(|w| {
            let count = w.get().word(runtime::bucket(address))?;
            Anchored::word(segment.mapping(), count)
        });
        Chime { count }
    }
}

/// The waiter count of one word a handle releases, resolved when the handle is made, so that a
/// release costs one load of it (and no system call without waiters).
#[derive(Debug)]
pub(crate) struct Chime {
    count: Option<Anchored<Word<'static>>>,
}

impl Chime {
    /// Wakes up to `n` waiters sleeping on `word` (the word this chime was made for), if any
    /// are counted. Call it after the `SeqCst` read-modify-write that changed `word` (see the
    /// module docs).
    #[inline]
    pub(crate) fn ring<'w>(&self, word: impl Into<Futex<'w>>, n: u32) {
        if let Some(count) = &self.count {
            // SeqCst: the releaser's half of the pairing described in the module docs.
            if count.get().atomic().load(Ordering::SeqCst) != 0 {
                wake(word, n);
            }
        }
    }
}

#[cold]
#[inline(never)]
pub(crate) fn wake<'w>(word: impl Into<Futex<'w>>, n: u32) {
    let word = word.into().kernel();
    #[cfg(target_os = "linux")]
    {
        use rustix::thread::futex;
        // The kernel reads the count as an `int`: anything larger means every waiter. A failed
        // wake (impossible for a valid word) only costs the waiter a slice.
        let n = n.min(i32::MAX as u32);
        let _ = futex::wake(word, futex::Flags::empty(), n);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (word, n);
}

/// What a blocking call waits on.
pub(crate) struct Watch<'a> {
    /// The segment's waiter counts.
    pub(crate) bell: &'a Bell,
    /// The word whose change may let the call proceed (a queue counter, a stack's `top`).
    pub(crate) word: Futex<'a>,
    /// Whether, with `word` at the value given, the structure is at rest: no peer is between
    /// two steps of an operation whose second step would let the call proceed without
    /// changing `word`. At rest the call sleeps until woken (or a slice passes); otherwise it
    /// polls in short slices.
    pub(crate) at_rest: &'a dyn Fn(u32) -> bool,
    /// What to try when the call makes no progress while a peer is between two steps.
    pub(crate) rescue: Option<Rescue<'a>>,
}

/// Recovery from a dead peer's claim, for a blocking call that stays stuck behind it.
pub(crate) struct Rescue<'a> {
    /// A value that stays the same while the call is stuck at one position (the queue counter
    /// of the side the call is on).
    pub(crate) key: &'a dyn Fn() -> u32,
    /// How long the key must stay the same, with a peer between two steps, before `run`;
    /// `run` is tried again after each further `after`. (How long a claim has been stuck is
    /// kept in the segment, so that every process agrees on it: `journal::stuck_for`.)
    pub(crate) after: Duration,
    /// Undoes the claims of dead peers on the structure; whether anything changed.
    pub(crate) run: &'a dyn Fn() -> bool,
}

/// The wait state of one blocking call.
#[derive(Debug)]
pub(crate) struct Waiter {
    deadline: Instant,
    step: u32,
    slice: Duration,
    /// The rescue key last read while not at rest, and since when (or the last rescue).
    stuck: Option<(u32, Instant)>,
}

impl Waiter {
    /// A wait that ends `timeout` from now.
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            deadline: deadline(timeout),
            step: 0,
            slice: MIN_SLICE,
            stuck: None,
        }
    }

    /// Waits once after a failed attempt, which saw `observed` in `watch.word` before it
    /// started: a spin or a yield at first, then a sleep until the word changes, a release of
    /// ours wakes it, or a slice passes. Returns `false` (without waiting) once the deadline
    /// has passed.
    pub(crate) fn pause(&mut self, watch: &Watch<'_>, observed: u32) -> bool {
        let now = Instant::now();
        let Some(left) = self
            .deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
        else {
            return false;
        };
        self.step = self.step.saturating_add(1);
        if self.step <= SPINS {
            std::hint::spin_loop();
            return true;
        }
        if self.step <= SPINS.saturating_add(YIELDS) {
            std::thread::yield_now();
            return true;
        }
        if !(watch.at_rest)(observed) {
            if let Some(rescue) = &watch.rescue {
                let key = (rescue.key)();
                match self.stuck {
                    Some((seen, since)) if seen == key => {
                        if now.saturating_duration_since(since) >= rescue.after {
                            self.stuck = Some((key, now));
                            if (rescue.run)() {
                                self.stuck = None;
                                self.slice = MIN_SLICE;
                                return true;
                            }
                        }
                    }
                    _ => self.stuck = Some((key, now)),
                }
            }
            // A peer is between two steps; the second changes no watched word and wakes
            // nobody, so look again soon (in-flight steps take nanoseconds unless the peer was
            // descheduled or died).
            let _ = sleep_on(watch.word, observed, self.slice.min(FOREIGN_POLL).min(left));
            self.slice = self.slice.saturating_mul(2);
            return true;
        }
        let count = watch.bell.count(watch.word);
        if let Some(count) = count {
            // SeqCst, with the SeqCst reload of the word below: the waiter's half of the
            // pairing described in the module docs.
            count.fetch_add(1, Ordering::SeqCst);
        }
        let poll = watch.bell.poll();
        if watch.word.load(Ordering::SeqCst) == observed
            && sleep_on(watch.word, observed, self.slice.min(poll).min(left))
            && watch.word.load(Ordering::Relaxed) != observed
        {
            // Changed during a slice that no wake cut short. (A release of ours racing with
            // the end of the slice looks the same; it only makes this handle look more often.)
            watch.bell.note_unwoken_change();
        }
        if let Some(count) = count {
            // Release: nothing after depends on it; a stale count only costs a wake call.
            count.fetch_sub(1, Ordering::Release);
        }
        self.slice = self.slice.saturating_mul(2).min(poll);
        true
    }
}

/// Sleeps at most `slice` while `word` holds `observed`; whether the whole slice passed
/// without a wake.
fn sleep_on(word: Futex<'_>, observed: u32, slice: Duration) -> bool {
    let word = word.kernel();
    #[cfg(target_os = "linux")]
    {
        use rustix::thread::futex;
        let timeout = futex::Timespec {
            tv_sec: i64::try_from(slice.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: slice.subsec_nanos().into(),
        };
        // Woken, timed out, interrupted, or the word had already changed: the caller looks
        // again in every case.
        let slept = futex::wait(word, futex::Flags::empty(), observed, Some(&timeout));
        slept == Err(rustix::io::Errno::TIMEDOUT)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (word, observed);
        std::thread::sleep(slice);
        true
    }
}

/// Retries `push` with `value` until it stops reporting full or `timeout` passes, then hands the
/// value back with the error `timed_out` makes. Every other outcome returns at once.
pub(crate) fn push_until<T>(
    timeout: Duration,
    value: T,
    watch: &Watch<'_>,
    mut push: impl FnMut(T) -> std::result::Result<(), PushError<T>>,
    timed_out: impl FnOnce() -> Error,
) -> std::result::Result<(), PushError<T>> {
    let mut waiter = Waiter::new(timeout);
    let mut value = value;
    loop {
        // SeqCst: the value the waiter compares with after registering (module docs).
        let observed = watch.word.load(Ordering::SeqCst);
        match push(value) {
            Err(PushError::Full(back)) => value = back,
            done => return done,
        }
        if !waiter.pause(watch, observed) {
            return Err(PushError::Failed(value, timed_out()));
        }
    }
}

/// Retries `pop` until it yields an item or `timeout` passes (then the error `timed_out`
/// makes). Errors return at once.
pub(crate) fn pop_until<T>(
    timeout: Duration,
    watch: &Watch<'_>,
    mut pop: impl FnMut() -> Result<Option<T>>,
    timed_out: impl FnOnce() -> Error,
) -> Result<T> {
    let mut waiter = Waiter::new(timeout);
    loop {
        // SeqCst: as in `push_until`.
        let observed = watch.word.load(Ordering::SeqCst);
        if let Some(item) = pop()? {
            return Ok(item);
        }
        if !waiter.pause(watch, observed) {
            return Err(timed_out());
        }
    }
}

/// The error of a `*_timeout` call on entry `name` of `segment` that waited `waited`.
pub(crate) fn timeout_error(
    segment: &str,
    name: &str,
    op: &'static str,
    condition: &'static str,
    waited: Duration,
) -> Error {
    Error::Timeout {
        segment: segment.to_owned(),
        name: name.to_owned(),
        op,
        condition,
        waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snooze_respects_the_deadline() {
        let mut b = Backoff::new();
        let deadline = Instant::now() + Duration::from_millis(30);
        let mut rounds = 0;
        while b.snooze(deadline) {
            rounds += 1;
        }
        assert!(Instant::now() >= deadline);
        assert!(Instant::now() < deadline + Duration::from_millis(20));
        assert!(
            rounds > SPINS + YIELDS,
            "it slept in the end: {rounds} rounds"
        );
        assert!(!b.snooze(Instant::now()));
    }
}
