//! A monitor (a mutex with a condition) shared by processes (FORMAT.md §5.8), byte-compatible
//! with the C++ and Python implementations: four entries, made together.
//!
//! ```text
//! NAME_mtx    16 bytes  Mutex
//! NAME_cond   16 bytes  Semaphore(initial 0, max 0): one permit per notified waiter
//! NAME_count  4 bytes   atomic u32: waiters inside `wait`
//! NAME        1 byte    marker (0)
//! ```

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]
// A lock's error carries the guard of a lock taken over and names the segment and entry, as
// every error does; it is the rare path, so its size costs nothing on the common one.
#![allow(clippy::result_large_err)]

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::{Error, LockError, LockResult, Result};
use crate::kind::{
    self, Exercise, Handle, Invalid, Kind, Mismatch, Opened, StructureDefect, StructureKind,
};
use crate::raw::{Access, Region};
use crate::segment::Segment;
use crate::sync::mutex::{self, Mutex, MutexGuard};
use crate::sync::rwlock::marker;
use crate::sync::semaphore::{self, Permits, Semaphore};
use crate::sync::{Shared, exact_size, field};

/// A monitor in a [`Segment`]: a mutex, and a condition its holders wait on and notify.
///
/// ```no_run
/// use zeroipc::{Array, Monitor, Segment};
///
/// let seg = Segment::open_or_create("/work", 1 << 16)?;
/// let monitor = Monitor::open_or_create(&seg, "jobs_monitor")?;
/// let pending = Array::<u64>::open_or_create(&seg, "pending", 1)?;
/// // consumer
/// let guard = monitor.lock()?;
/// let guard = guard.wait_while(|| pending.get(0).map_or(false, |n| n == 0))?;
/// pending.set(0, pending.get(0)? - 1)?;
/// drop(guard);
/// // producer (elsewhere): lock, add, then
/// monitor.notify_one()?;
/// # Ok::<(), zeroipc::Error>(())
/// ```
///
/// The algorithm is the reference's: a waiter counts itself, unlocks, takes a permit of the
/// condition semaphore, locks again and counts itself out; `notify_one` releases a permit if
/// anybody waits, `notify_all` one per waiter. As with any condition variable a waiter may
/// wake without the condition holding (a permit left by a waiter that timed out), so wait with
/// a predicate ([`MonitorGuard::wait_while`]).
///
/// # Crashes
///
/// The mutex is a [`Mutex`]: a holder that dies is taken over with
/// [`LockError::OwnerDied`]. A waiter that dies inside `wait` leaves `count` one too high (a
/// later notification then releases a permit nobody takes, which wakes a later waiter early:
/// harmless with a predicate).
pub struct Monitor {
    mtx: Mutex,
    cond: Semaphore,
    count: Shared,
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("segment", &self.count.segment.name())
            .field("name", &self.count.name)
            .field("locked", &self.mtx.is_locked())
            .field("waiting", &self.waiting())
            .finish()
    }
}

/// The monitor kind.
#[derive(Debug)]
pub(crate) enum MonitorKind {}

impl Kind for MonitorKind {
    const KIND: StructureKind = StructureKind::Monitor;
    const PARTS: &'static [&'static str] = &["_mtx", "_cond", "_count", ""];
    type Params = ();
    type Geometry = ();

    fn plan((): ()) -> Result<(), (&'static str, String)> {
        Ok(())
    }
    fn sizes((): &()) -> Option<Vec<u64>> {
        Some(vec![semaphore::SIZE as u64, semaphore::SIZE as u64, 4, 1])
    }
    fn init((): &(), parts: &[Region<'_>]) -> Result<(), Access> {
        let [mtx, cond, count, last] = parts else {
            return Err(Access::OutOfBounds);
        };
        semaphore::init(mtx, Permits { initial: 1, max: 1 })?;
        semaphore::init(cond, Permits { initial: 0, max: 0 })?;
        count.zero(0, 4)?;
        last.zero(0, last.len())
    }
    fn validate(parts: &[Region<'_>], _: Option<u32>) -> Result<(), Invalid> {
        let [mtx, cond, count, last] = parts else {
            return Err(Invalid::Corrupt(
                "the structure does not have 4 parts".into(),
            ));
        };
        mutex::validate(mtx)?;
        let max = semaphore::validate(cond)?;
        if max != 0 {
            return Err(Invalid::Corrupt(format!(
                "the condition's max_count is `{max}`, not 0"
            )));
        }
        exact_size(count, 4)?;
        marker(last)
    }
    fn mismatch((): &(), (): &()) -> Option<Mismatch> {
        None
    }
    fn describe((): &()) -> String {
        "a monitor".into()
    }
    fn len(_: &[Region<'_>], (): &()) -> Option<u64> {
        None
    }
    fn audit(parts: &[Region<'_>], (): &()) -> Vec<StructureDefect> {
        let mut defects = Vec::new();
        if let [mtx, cond, _, _] = parts {
            defects.extend(semaphore::audit(mtx, 1));
            defects.extend(semaphore::audit(cond, 0));
        }
        defects
    }
    fn state(parts: &[Region<'_>], (): &()) -> Vec<(&'static str, i64)> {
        let [mtx, cond, count, _] = parts else {
            return Vec::new();
        };
        [
            ("mutex_count", field(mtx, 0)),
            ("cond_count", field(cond, 0)),
            ("waiting_count", field(count, 0)),
        ]
        .into_iter()
        .filter_map(|(name, v)| Some((name, i64::from(v.ok()?))))
        .collect()
    }
}

impl Handle for Monitor {
    type Kind = MonitorKind;
    fn elem() -> Result<u32> {
        Ok(0)
    }
    fn from_parts(opened: Opened<'_, MonitorKind>) -> Result<Self> {
        Ok(Self {
            mtx: Mutex::from_part(&opened, 0)?,
            cond: Semaphore::from_part(&opened, 1, 0)?,
            count: Shared::new(&opened, 2, 1)?,
        })
    }
}

impl Exercise for Monitor {
    fn exercise(&mut self) {
        if let Ok(guard) = self.lock_timeout(Duration::from_micros(100)) {
            let _ = guard.wait_timeout(Duration::from_micros(100));
        }
        let _ = self.notify_one();
        let _ = self.notify_all();
    }
}

impl Monitor {
    /// Creates the monitor `name`: its four entries (FORMAT.md §7), all or none.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEntryName`], [`Error::DuplicateEntry`], [`Error::TableFull`],
    /// [`Error::OutOfSpace`], [`Error::ReadOnly`]: the segment is unchanged.
    pub fn create(segment: &Segment, name: &str) -> Result<Self> {
        kind::create(segment, name, ())
    }

    /// Opens the existing monitor `name`, checking all four entries.
    ///
    /// # Errors
    ///
    /// [`Error::EntryNotFound`] naming the first missing entry; [`Error::CorruptStructure`];
    /// [`Error::ReadOnly`].
    pub fn open(segment: &Segment, name: &str) -> Result<Self> {
        kind::open(segment, name)
    }

    /// Opens `name` if it exists, otherwise creates it (what the C++ constructor does).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`create`](Self::create).
    pub fn open_or_create(segment: &Segment, name: &str) -> Result<Self> {
        kind::open_or_create(segment, name, ())
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.count.name
    }

    /// The waiters inside [`MonitorGuard::wait`] now (a snapshot).
    pub fn waiting(&self) -> u32 {
        // Relaxed: a snapshot.
        self.count.word(0).load(Ordering::Relaxed)
    }

    /// Locks the monitor's mutex, blocking for ever if need be (see [`Mutex::lock`]).
    ///
    /// # Errors
    ///
    /// As [`Mutex::lock`].
    pub fn lock(&self) -> LockResult<MonitorGuard<'_>> {
        self.wrap(self.mtx.lock())
    }

    /// Locks the monitor's mutex, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Mutex::lock_timeout`].
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<MonitorGuard<'_>> {
        self.wrap(self.mtx.lock_timeout(timeout))
    }

    /// Locks the monitor's mutex if it is free.
    ///
    /// # Errors
    ///
    /// As [`Mutex::try_lock`].
    pub fn try_lock(&self) -> Result<Option<MonitorGuard<'_>>> {
        Ok(self.mtx.try_lock()?.map(|g| self.guard(g)))
    }

    /// Wakes one waiter, if any waits (the C++ condition: counted waiters, or waiters inside
    /// the condition's acquire).
    ///
    /// # Errors
    ///
    /// As [`Semaphore::release`].
    pub fn notify_one(&self) -> Result<()> {
        // Not when every one of them has a permit waiting already (a waiter that died inside
        // `wait` stays counted: its permits would pile up, one per notification).
        let takers = self.counted().max(self.cond.waiting());
        if takers > 0 && self.cond.count() < takers {
            self.cond.release()?;
        }
        Ok(())
    }

    /// Wakes every waiter counted now: gives the condition as many permits as there are
    /// waiters, in one step (the permits already there count; the reference releases one per
    /// waiter).
    ///
    /// # Errors
    ///
    /// As [`Semaphore::release`].
    pub fn notify_all(&self) -> Result<()> {
        let missing = self.counted().saturating_sub(self.cond.count().max(0));
        if missing > 0 {
            self.cond.release_n(missing)?;
        }
        Ok(())
    }

    /// The waiter count, read as the `i32` it can be at most: a count past that (one a peer
    /// decremented below zero) counts no waiter.
    fn counted(&self) -> i32 {
        i32::try_from(self.waiting()).unwrap_or(0)
    }

    fn guard<'a>(&'a self, inner: MutexGuard<'a>) -> MonitorGuard<'a> {
        MonitorGuard {
            monitor: self,
            inner: Some(inner),
        }
    }

    fn wrap<'a>(&'a self, r: LockResult<MutexGuard<'a>>) -> LockResult<MonitorGuard<'a>> {
        match r {
            Ok(g) => Ok(self.guard(g)),
            Err(LockError::OwnerDied(g, e)) => Err(LockError::OwnerDied(self.guard(g), e)),
            Err(LockError::Failed(e)) => Err(LockError::Failed(e)),
        }
    }
}

/// How long past its deadline a timed [`MonitorGuard::wait_timeout`] may take to lock the
/// monitor's mutex again.
pub const RELOCK_GRACE: Duration = Duration::from_millis(100);

/// What a timed wait gives: the guard and whether it timed out, or the lock error (whose
/// `OwnerDied` carries the guard).
pub type Waited<'a> = std::result::Result<(MonitorGuard<'a>, bool), LockError<MonitorGuard<'a>>>;

/// The locked mutex of a [`Monitor`]; unlocks when dropped.
#[must_use = "the monitor unlocks as soon as the guard is dropped"]
pub struct MonitorGuard<'a> {
    monitor: &'a Monitor,
    inner: Option<MutexGuard<'a>>,
}

impl fmt::Debug for MonitorGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitorGuard")
            .field("monitor", &self.monitor.count.name)
            .finish()
    }
}

impl<'a> MonitorGuard<'a> {
    /// Unlocks, waits to be notified (for ever if need be), and locks again.
    ///
    /// # Errors
    ///
    /// As [`Monitor::lock`] for locking again; [`Error::CorruptStructure`] for broken words.
    pub fn wait(self) -> LockResult<MonitorGuard<'a>> {
        self.wait_by(None).map(|(g, _)| g)
    }

    /// Unlocks, waits up to `timeout` to be notified, and locks again: the guard, and whether
    /// the wait timed out. Locking again may take up to [`RELOCK_GRACE`] past the deadline
    /// (a notifier holds the mutex while it notifies); no more.
    ///
    /// # Errors
    ///
    /// [`LockError::Failed`] with [`Error::Timeout`] when the mutex stayed locked past that (the
    /// caller then holds nothing); otherwise as [`wait`](Self::wait).
    pub fn wait_timeout(self, timeout: Duration) -> Waited<'a> {
        self.wait_by(Some(timeout))
    }

    /// Waits (as [`wait`](Self::wait)) for as long as `condition` holds, checking it under
    /// the lock.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    pub fn wait_while(self, mut condition: impl FnMut() -> bool) -> LockResult<MonitorGuard<'a>> {
        let mut guard = self;
        while condition() {
            guard = guard.wait()?;
        }
        Ok(guard)
    }

    /// As [`wait_while`](Self::wait_while), giving up at `timeout`: the guard, and whether
    /// the condition still held at the deadline.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    pub fn wait_while_timeout(
        self,
        timeout: Duration,
        mut condition: impl FnMut() -> bool,
    ) -> Waited<'a> {
        let deadline = crate::wait::deadline(timeout);
        let mut guard = self;
        while condition() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok((guard, true));
            }
            guard = guard.wait_by(Some(left))?.0;
        }
        Ok((guard, false))
    }

    fn wait_by(mut self, timeout: Option<Duration>) -> Waited<'a> {
        let monitor = self.monitor;
        let deadline = timeout.map(crate::wait::deadline);
        let count = monitor.count.word(0);
        // SeqCst: counted before the unlock, so a notifier that locked after it sees it.
        count.fetch_add(1, Ordering::SeqCst);
        drop(self.inner.take());
        let woken = monitor.cond.acquire_by(timeout);
        // A timed wait locks again by its deadline, plus a grace for a holder's short
        // critical section (a notifier holds the mutex while it notifies).
        let relock = deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .saturating_add(RELOCK_GRACE)
        });
        let relocked = monitor.mtx.lock_for(relock);
        // SeqCst: as the count-in. Never below 0 (a peer may have reset the count).
        let _ = count.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(1));
        let guard = match relocked {
            Ok(Some(g)) => monitor.guard(g),
            Ok(None) => {
                let late: Error = crate::wait::timeout_error(
                    monitor.count.segment.name(),
                    &monitor.count.name,
                    "wait_timeout",
                    "the monitor's mutex stayed locked after the wait (the guard is gone)",
                    timeout.unwrap_or_default().saturating_add(RELOCK_GRACE),
                );
                return Err(LockError::Failed(late));
            }
            Err(LockError::OwnerDied(g, e)) => {
                return Err(LockError::OwnerDied(monitor.guard(g), e));
            }
            Err(LockError::Failed(e)) => return Err(LockError::Failed(e)),
        };
        match woken {
            Ok(got) => Ok((guard, got.is_none())),
            Err(e) => Err(LockError::Failed(e)),
        }
    }
}
