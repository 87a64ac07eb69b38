//! A mutex shared by processes (FORMAT.md §5.2): the reference's semaphore of one permit under
//! the mutex's own name (`count` 1 = unlocked, 0 = locked), with the holder recorded where the
//! other implementations do not look (the runtime entry's hold slots), so that a waiter can
//! tell that it died.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::algo::sync::semaphore::{self, Refused};
use crate::error::{Error, LockError, LockResult, Result};
use crate::journal::{Hold, Holding};
use crate::kind::{
    self, Exercise, Handle, Invalid, Kind, Mismatch, Opened, StructureDefect, StructureKind,
};
use crate::peers::Peer;
use crate::raw::{Access, Region};
use crate::segment::Segment;
use crate::sync::semaphore::{COUNT, Permits, SIZE, Waiting};
use crate::sync::{Shared, Vigil, block, field};
use crate::wait::Chime;

/// A mutual-exclusion lock in a [`Segment`], shared with the C++, Python and Go
/// implementations (theirs is a semaphore of one permit; so is this, byte for byte).
///
/// ```no_run
/// use zeroipc::{Array, Mutex, Segment};
///
/// let seg = Segment::open_or_create("/ledger", 1 << 16)?;
/// let lock = Mutex::open_or_create(&seg, "ledger_lock")?;
/// let balance = Array::<i64>::open_or_create(&seg, "balance", 1)?;
/// {
///     let _guard = lock.lock()?;
///     balance.set(0, balance.get(0)? + 100)?;
/// } // unlocked here
/// # Ok::<(), zeroipc::Error>(())
/// ```
///
/// [`lock`](Self::lock) returns a guard that unlocks when dropped. A blocked lock sleeps in the
/// kernel until an unlock of this crate wakes it, or notices an unlock by another
/// implementation within the segment's [poll interval](crate::SegmentOptions::poll_interval).
///
/// # Crashes
///
/// A holder of this crate records itself in its process's record of the runtime entry
/// (FORMAT.md appendix R, "holds"). A process blocked in `lock` looks for the holder every
/// [`OWNER_CHECK_INTERVAL`](crate::OWNER_CHECK_INTERVAL); when it is a process that provably
/// died (its pid gone, or taken by a process started later), one waiter takes the lock over and
/// gets [`LockError::OwnerDied`] with the guard: it holds the lock, and what the lock protects
/// may be half updated by the dead holder. `?` turns that into [`Error::OwnerDied`] (and drops
/// the guard, unlocking). A live holder is never taken for a dead one.
///
/// Not detected, so that waiters block until their timeout: a holder of another implementation
/// (they record nothing), a holder that died in the instant between taking the lock and
/// recording itself, a thread beyond the eight per process that have lanes, more than five
/// locks held at once by one thread, and a holder in another pid namespace.
pub struct Mutex {
    shared: Shared,
    count_chime: Chime,
}

impl fmt::Debug for Mutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("segment", &self.shared.segment.name())
            .field("name", &self.shared.name)
            .field("locked", &self.is_locked())
            .finish()
    }
}

/// The mutex kind: a semaphore whose `max_count` is 1.
#[derive(Debug)]
pub(crate) enum MutexKind {}

/// Checks a stored mutex.
pub(crate) fn validate(part: &Region<'_>) -> Result<(), Invalid> {
    let max = crate::sync::semaphore::validate(part)?;
    if max != 1 {
        return Err(Invalid::Corrupt(format!(
            "max_count is `{max}`, not 1: a semaphore, not a mutex"
        )));
    }
    Ok(())
}

impl Kind for MutexKind {
    const KIND: StructureKind = StructureKind::Mutex;
    const PARTS: &'static [&'static str] = &[""];
    type Params = ();
    type Geometry = ();

    fn plan((): ()) -> Result<(), (&'static str, String)> {
        Ok(())
    }
    fn sizes((): &()) -> Option<Vec<u64>> {
        Some(vec![SIZE as u64])
    }
    fn init((): &(), parts: &[Region<'_>]) -> Result<(), Access> {
        let part = kind::only(parts).map_err(|_| Access::OutOfBounds)?;
        crate::sync::semaphore::init(part, Permits { initial: 1, max: 1 })
    }
    fn validate(parts: &[Region<'_>], _: Option<u32>) -> Result<(), Invalid> {
        validate(kind::only(parts)?)
    }
    fn mismatch((): &(), (): &()) -> Option<Mismatch> {
        None
    }
    fn describe((): &()) -> String {
        "a semaphore of one permit".into()
    }
    fn len(_: &[Region<'_>], (): &()) -> Option<u64> {
        None
    }
    fn audit(parts: &[Region<'_>], (): &()) -> Vec<StructureDefect> {
        kind::only(parts).map_or_else(|_| Vec::new(), |p| crate::sync::semaphore::audit(p, 1))
    }
    fn state(parts: &[Region<'_>], (): &()) -> Vec<(&'static str, i64)> {
        let Ok(part) = kind::only(parts) else {
            return Vec::new();
        };
        let mut state = crate::sync::semaphore::state(part);
        if let Ok(count) = field(part, 0) {
            state.push(("locked", i64::from(count == 0)));
        }
        state
    }
}

impl Handle for Mutex {
    type Kind = MutexKind;
    fn elem() -> Result<u32> {
        Ok(0)
    }
    fn from_parts(opened: Opened<'_, MutexKind>) -> Result<Self> {
        Self::from_part(&opened, 0)
    }
}

impl Mutex {
    /// The mutex in part `part` of a validated structure (a composite's auxiliary mutex).
    pub(crate) fn from_part<K: Kind>(opened: &Opened<'_, K>, part: usize) -> Result<Self> {
        let shared = Shared::new(opened, part, SIZE / 4)?;
        // So that a guard can tell that it was inherited by a forked child.
        crate::raw::watch_forks();
        Ok(Self {
            count_chime: shared.chime(COUNT),
            shared,
        })
    }
}

impl Exercise for Mutex {
    fn exercise(&mut self) {
        let _ = self.is_locked();
        if let Ok(Some(guard)) = self.try_lock() {
            let _ = guard.unlock();
        }
        if let Ok(guard) = self.lock_timeout(Duration::from_micros(100)) {
            drop(guard);
        }
    }
}

impl Mutex {
    /// Creates the unlocked mutex `name`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEntryName`], [`Error::DuplicateEntry`], [`Error::TableFull`],
    /// [`Error::OutOfSpace`], [`Error::ReadOnly`]: the segment is unchanged.
    pub fn create(segment: &Segment, name: &str) -> Result<Self> {
        kind::create(segment, name, ())
    }

    /// Opens the existing mutex `name`.
    ///
    /// # Errors
    ///
    /// [`Error::EntryNotFound`]; [`Error::CorruptStructure`] for an entry that is not a
    /// 16-byte semaphore with `max_count` 1 and `count` 0 or 1; [`Error::ReadOnly`].
    pub fn open(segment: &Segment, name: &str) -> Result<Self> {
        kind::open(segment, name)
    }

    /// Opens `name` if it exists, otherwise creates it unlocked (what the C++ constructor
    /// does).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`create`](Self::create).
    pub fn open_or_create(segment: &Segment, name: &str) -> Result<Self> {
        kind::open_or_create(segment, name, ())
    }

    /// The entry name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Whether the mutex is locked now, by anybody (a snapshot).
    pub fn is_locked(&self) -> bool {
        // Relaxed: a snapshot.
        self.shared.word(COUNT).load(Ordering::Relaxed) == 0
    }

    /// The process recorded as holding the lock, with its liveness: `None` when it is not
    /// locked, or is locked by a holder that records nothing (see the type's docs on crashes).
    pub fn holder(&self) -> Option<Peer> {
        if !self.is_locked() {
            return None;
        }
        let holders = crate::runtime::holders(&self.shared.segment, self.shared.offset);
        holders
            .into_iter()
            .find(|h| h.holding == Holding::Lock)
            .map(|h| Peer {
                pid: h.pid,
                liveness: h.liveness,
            })
    }

    /// Locks the mutex if it is free, without waiting.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptStructure`] when the count is negative or keeps changing.
    #[inline(always)]
    pub fn try_lock(&self) -> Result<Option<MutexGuard<'_>>> {
        match semaphore::try_acquire(self.shared.word(COUNT)) {
            Ok(true) => Ok(Some(self.guard())),
            Ok(false) => Ok(None),
            Err(b) => Err(self.broken(b)),
        }
    }

    #[cold]
    #[inline(never)]
    fn broken(&self, broken: crate::algo::sync::Broken) -> Error {
        self.shared.broken(broken)
    }

    /// Locks the mutex, blocking until it is free, for ever if need be (see the type's docs
    /// for a holder that died).
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] with the guard when the holder died holding it;
    /// [`LockError::Failed`] with [`Error::CorruptStructure`] as for
    /// [`try_lock`](Self::try_lock).
    // The error carries the guard and names the segment and entry, as every error does; it
    // is the rare path, so its size costs nothing on the common one.
    #[allow(clippy::result_large_err)]
    #[inline]
    pub fn lock(&self) -> LockResult<MutexGuard<'_>> {
        // The uncontended path, inlined; the rest (and any error) is `lock_for`'s.
        if semaphore::try_acquire(self.shared.word(COUNT)) == Ok(true) {
            return Ok(self.guard());
        }
        match self.lock_for(None)? {
            Some(guard) => Ok(guard),
            None => Err(LockError::Failed(Error::Internal {
                segment: self.shared.segment.name().to_owned(),
                what: "lock a mutex",
                problem: "a wait without a deadline ended",
            })),
        }
    }

    /// Locks the mutex, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`LockError::Failed`] with [`Error::Timeout`] when it stayed locked until the deadline;
    /// otherwise as [`lock`](Self::lock).
    // The error carries the guard and names the segment and entry, as every error does; it
    // is the rare path, so its size costs nothing on the common one.
    #[allow(clippy::result_large_err)]
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<MutexGuard<'_>> {
        match self.lock_for(Some(timeout))? {
            Some(guard) => Ok(guard),
            None => Err(LockError::Failed(self.shared.timeout(
                "lock_timeout",
                "the mutex stayed locked",
                timeout,
            ))),
        }
    }

    /// The lock, or `Ok(None)` at the deadline.
    // The error carries the guard and names the segment and entry, as every error does; it
    // is the rare path, so its size costs nothing on the common one.
    #[allow(clippy::result_large_err)]
    pub(crate) fn lock_for(
        &self,
        timeout: Option<Duration>,
    ) -> std::result::Result<Option<MutexGuard<'_>>, LockError<MutexGuard<'_>>> {
        if let Some(guard) = self.try_lock()? {
            return Ok(Some(guard));
        }
        let _waiting = Waiting::enter(&self.shared);
        let mut vigil = Vigil::default();
        let got = block(
            &self.shared.bell,
            self.shared.word(COUNT),
            timeout,
            || Ok(self.try_lock()?.map(Got::Free)),
            || Ok(self.take_over(&mut vigil).map(|(g, pid)| Got::Died(g, pid))),
        )?;
        match got {
            None => Ok(None),
            Some(Got::Free(guard)) => Ok(Some(guard)),
            Some(Got::Died(guard, pid)) => Err(LockError::OwnerDied(
                guard,
                Error::OwnerDied {
                    segment: self.shared.segment.name().to_owned(),
                    name: self.shared.name.clone(),
                    pid,
                },
            )),
        }
    }

    /// Takes the lock over from a holder that died holding it: the guard and the dead pid.
    pub(crate) fn take_over(&self, vigil: &mut Vigil) -> Option<(MutexGuard<'_>, u32)> {
        let holders = self.shared.holders(Holding::Lock, vigil);
        // A holder not known to be dead holds now: a dead one's hold is then stale (the lock
        // was unlocked without clearing it, by another implementation), not the lock's.
        if holders.iter().any(|h| h.liveness != crate::Liveness::Dead) {
            return None;
        }
        for dead in holders {
            if self.shared.take_hold(&dead) {
                // Acquire: after the takeover, as a lock's acquisition would be.
                if self.shared.word(COUNT).load(Ordering::Acquire) == 0 {
                    return Some((self.guard(), dead.pid));
                }
                // Unlocked meanwhile by a process that did not hold it (another
                // implementation may): the hold was stale; lock it the usual way.
            }
        }
        None
    }

    /// The guard of a lock just taken, recording this thread as its holder.
    #[inline(always)]
    fn guard(&self) -> MutexGuard<'_> {
        MutexGuard {
            mutex: self,
            hold: self
                .shared
                .holds
                .as_ref()
                .and_then(|h| h.hold(self.shared.offset, Holding::Lock)),
            forks: crate::raw::fork_generation(),
        }
    }

    #[inline]
    fn unlock(&self, hold: Option<&Hold<'_>>) -> Result<()> {
        if let Some(hold) = hold {
            hold.release();
        }
        let count = self.shared.word(COUNT);
        match semaphore::release(count, 1) {
            Ok(()) => {
                self.count_chime.ring(count, 1);
                Ok(())
            }
            Err(refused) => Err(self.refused(refused)),
        }
    }

    #[cold]
    #[inline(never)]
    fn refused(&self, refused: Refused) -> Error {
        match refused {
            Refused::Full(_) => Error::NotLocked {
                segment: self.shared.segment.name().to_owned(),
                name: self.shared.name.clone(),
            },
            Refused::Broken(b) => self.shared.broken(b),
        }
    }
}

/// What a blocked lock got.
enum Got<'a> {
    Free(MutexGuard<'a>),
    Died(MutexGuard<'a>, u32),
}

/// A locked [`Mutex`]; unlocks when dropped.
///
/// A guard that a child process inherited through `fork` (a copy of its parent's) does not
/// unlock, neither when dropped nor through [`unlock`](Self::unlock): the lock stays its
/// parent's, which unlocks it once.
#[must_use = "the mutex unlocks as soon as the guard is dropped"]
pub struct MutexGuard<'a> {
    mutex: &'a Mutex,
    hold: Option<Hold<'a>>,
    /// The fork generation the lock was taken in: a forked child's copy does not unlock.
    forks: u32,
}

impl fmt::Debug for MutexGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexGuard")
            .field("mutex", &self.mutex.shared.name)
            .field("recorded", &self.hold.is_some())
            .finish()
    }
}

impl MutexGuard<'_> {
    /// Unlocks, reporting what dropping the guard cannot.
    ///
    /// # Errors
    ///
    /// [`Error::NotLocked`] when the mutex was found unlocked (a process of another
    /// implementation unlocked it meanwhile: theirs do not check the holder);
    /// [`Error::CorruptStructure`] for broken words.
    #[inline]
    pub fn unlock(self) -> Result<()> {
        // Not dropped: this is the unlock the drop would make.
        let this = std::mem::ManuallyDrop::new(self);
        if this.inherited() {
            return Ok(());
        }
        this.mutex.unlock(this.hold.as_ref())
    }

    /// Whether this guard is a forked child's copy of its parent's.
    #[inline]
    pub(crate) fn inherited(&self) -> bool {
        crate::raw::fork_generation() != self.forks
    }

    /// Whether this holder is recorded in the segment, so that waiters would notice if its
    /// process died (see [`Mutex`] on when it is not).
    pub fn is_recorded(&self) -> bool {
        self.hold.is_some()
    }
}

impl Drop for MutexGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.inherited() {
            // An error here (unlocked by somebody else) has nobody to go to; `unlock` reports
            // it.
            let _ = self.mutex.unlock(self.hold.as_ref());
        }
    }
}
