//! A readers-writer lock shared by processes (FORMAT.md §5.7), byte-compatible with the C++ and
//! Python implementations: four entries, made together.
//!
//! ```text
//! NAME_state  8 bytes   +0 atomic i32 readers, +4 atomic i32 writer_active
//! NAME_rmtx   16 bytes  Mutex: reader registration
//! NAME_wmtx   16 bytes  Mutex: held by the writer
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
use crate::journal::{Hold, Holding};
use crate::kind::{
    self, Exercise, Handle, Invalid, Kind, Mismatch, Opened, StructureDefect, StructureKind,
};
use crate::raw::{Access, Region};
use crate::segment::Segment;
use crate::sync::mutex::{self, Mutex, MutexGuard};
use crate::sync::semaphore::{Permits, SIZE as MUTEX_SIZE};
use crate::sync::{Shared, Vigil, block, exact_size, field};
use crate::wait::Chime;

const STATE_SIZE: usize = 8;
const READERS: usize = 0;
const WRITER: usize = 1;

/// A readers-writer lock in a [`Segment`]: any number of readers, or one writer.
///
/// ```no_run
/// use zeroipc::{Array, RwLock, Segment};
///
/// let seg = Segment::open_or_create("/config", 1 << 16)?;
/// let lock = RwLock::open_or_create(&seg, "config_lock")?;
/// let pair = Array::<u64>::open_or_create(&seg, "pair", 2)?;
/// {
///     let _w = lock.write()?;
///     pair.set(0, 7)?;
///     pair.set(1, 7)?;
/// }
/// let _r = lock.read()?; // both halves agree while it is held
/// assert_eq!(pair.get(0)?, pair.get(1)?);
/// # Ok::<(), zeroipc::Error>(())
/// ```
///
/// The algorithm is the reference's: a reader registers under the reader mutex while no writer
/// is active; a writer takes the writer mutex, announces itself under the reader mutex, then
/// waits for the readers to leave. Waiting sleeps in the kernel, woken by our unlocks (the
/// others poll). A reader unlocks without the reader mutex, as C++ does. A steady stream of
/// readers cannot starve a writer that has announced itself, since new readers then wait.
///
/// # Crashes
///
/// Readers and the writer of this crate are recorded in the runtime entry. A writer waiting for
/// readers that died holding a read lock takes their registrations back (one per dead reader
/// recorded). Readers waiting behind a writer that died holding the lock take the writer mutex
/// over, clear `writer_active`, and get [`LockError::OwnerDied`] with their guard; a writer
/// behind it gets the same from the writer mutex. A holder of another implementation, or one
/// that died between changing the words and recording itself, is not detected: waiters time
/// out.
///
/// Guards that a child process inherited through `fork` do not unlock: the locks stay the
/// parent's.
pub struct RwLock {
    state: Shared,
    rmtx: Mutex,
    wmtx: Mutex,
    readers_chime: Chime,
    writer_chime: Chime,
}

impl fmt::Debug for RwLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLock")
            .field("segment", &self.state.segment.name())
            .field("name", &self.state.name)
            .field("readers", &self.readers())
            .field("writer_active", &self.writer_active())
            .finish()
    }
}

/// The RWLock kind.
#[derive(Debug)]
pub(crate) enum RwLockKind {}

/// A marker part (FORMAT.md §7): only its presence counts.
pub(crate) fn marker(part: &Region<'_>) -> std::result::Result<(), Invalid> {
    if part.len() == 0 {
        return Err(Invalid::Corrupt("the marker entry is empty".into()));
    }
    Ok(())
}

/// The state words of a stored RWLock, checked.
fn state_words(part: &Region<'_>) -> std::result::Result<(i32, i32), Invalid> {
    exact_size(part, STATE_SIZE)?;
    let readers = field(part, 0)?;
    let writer = field(part, 4)?;
    if readers < 0 {
        return Err(Invalid::Corrupt(format!("readers `{readers}` is negative")));
    }
    if !(0..=1).contains(&writer) {
        return Err(Invalid::Corrupt(format!(
            "writer_active `{writer}` is not 0 or 1"
        )));
    }
    Ok((readers, writer))
}

impl Kind for RwLockKind {
    const KIND: StructureKind = StructureKind::RwLock;
    const PARTS: &'static [&'static str] = &["_state", "_rmtx", "_wmtx", ""];
    type Params = ();
    type Geometry = ();

    fn plan((): ()) -> Result<(), (&'static str, String)> {
        Ok(())
    }
    fn sizes((): &()) -> Option<Vec<u64>> {
        Some(vec![
            STATE_SIZE as u64,
            MUTEX_SIZE as u64,
            MUTEX_SIZE as u64,
            1,
        ])
    }
    fn init((): &(), parts: &[Region<'_>]) -> Result<(), Access> {
        let [state, rmtx, wmtx, marker] = parts else {
            return Err(Access::OutOfBounds);
        };
        state.zero(0, STATE_SIZE)?;
        let free = Permits { initial: 1, max: 1 };
        crate::sync::semaphore::init(rmtx, free)?;
        crate::sync::semaphore::init(wmtx, free)?;
        marker.zero(0, marker.len())
    }
    fn validate(parts: &[Region<'_>], _: Option<u32>) -> Result<(), Invalid> {
        let [state, rmtx, wmtx, last] = parts else {
            return Err(Invalid::Corrupt(
                "the structure does not have 4 parts".into(),
            ));
        };
        state_words(state)?;
        mutex::validate(rmtx)?;
        mutex::validate(wmtx)?;
        marker(last)
    }
    fn mismatch((): &(), (): &()) -> Option<Mismatch> {
        None
    }
    fn describe((): &()) -> String {
        "a readers-writer lock".into()
    }
    fn len(_: &[Region<'_>], (): &()) -> Option<u64> {
        None
    }
    fn audit(parts: &[Region<'_>], (): &()) -> Vec<StructureDefect> {
        let mut defects = Vec::new();
        if let [state, rmtx, wmtx, _] = parts {
            if let Err(Invalid::Corrupt(problem)) = state_words(state) {
                defects.push(StructureDefect {
                    slot: None,
                    in_flight: false,
                    problem,
                    holder: None,
                });
            }
            defects.extend(crate::sync::semaphore::audit(rmtx, 1));
            defects.extend(crate::sync::semaphore::audit(wmtx, 1));
        }
        defects
    }
    fn state(parts: &[Region<'_>], (): &()) -> Vec<(&'static str, i64)> {
        let [state, rmtx, wmtx, _] = parts else {
            return Vec::new();
        };
        [
            ("readers", field(state, 0)),
            ("writer_active", field(state, 4)),
            ("reader_mutex_count", field(rmtx, 0)),
            ("writer_mutex_count", field(wmtx, 0)),
        ]
        .into_iter()
        .filter_map(|(name, v)| Some((name, i64::from(v.ok()?))))
        .collect()
    }
}

impl Handle for RwLock {
    type Kind = RwLockKind;
    fn elem() -> Result<u32> {
        Ok(0)
    }
    fn from_parts(opened: Opened<'_, RwLockKind>) -> Result<Self> {
        let rmtx = Mutex::from_part(&opened, 1)?;
        let wmtx = Mutex::from_part(&opened, 2)?;
        let state = Shared::new(&opened, 0, STATE_SIZE / 4)?;
        Ok(Self {
            readers_chime: state.chime(READERS),
            writer_chime: state.chime(WRITER),
            state,
            rmtx,
            wmtx,
        })
    }
}

impl Exercise for RwLock {
    fn exercise(&mut self) {
        let short = Duration::from_micros(100);
        drop(self.read_timeout(short));
        drop(self.write_timeout(short));
        drop(self.try_read());
        drop(self.try_write());
    }
}

impl RwLock {
    /// Creates the unlocked RWLock `name`: its four entries (FORMAT.md §7), all or none.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEntryName`] (also when `name_state` and the others are too long),
    /// [`Error::DuplicateEntry`], [`Error::TableFull`], [`Error::OutOfSpace`],
    /// [`Error::ReadOnly`]: the segment is unchanged.
    pub fn create(segment: &Segment, name: &str) -> Result<Self> {
        kind::create(segment, name, ())
    }

    /// Opens the existing RWLock `name`, checking all four entries.
    ///
    /// # Errors
    ///
    /// [`Error::EntryNotFound`] naming the first missing entry; [`Error::CorruptStructure`]
    /// for a state entry that is not 8 bytes, negative readers, `writer_active` not 0 or 1,
    /// or mutexes that are not mutexes; [`Error::ReadOnly`].
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
        &self.state.name
    }

    /// The readers holding it now (a snapshot).
    pub fn readers(&self) -> i32 {
        // Relaxed: a snapshot.
        self.state.word(READERS).load(Ordering::Relaxed) as i32
    }

    /// Whether a writer holds it or waits for the readers to leave (a snapshot).
    pub fn writer_active(&self) -> bool {
        // Relaxed: a snapshot.
        self.state.word(WRITER).load(Ordering::Relaxed) != 0
    }

    /// Takes a read lock, blocking for ever if need be.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] with the guard when a writer died holding the lock (the data
    /// may be half written); [`LockError::Failed`] with [`Error::CorruptStructure`].
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_>> {
        self.read_by(None)?
            .ok_or_else(|| self.endless("take a read lock"))
    }

    /// Takes a read lock, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`LockError::Failed`] with [`Error::Timeout`] when a writer still held it at the
    /// deadline; otherwise as [`read`](Self::read).
    pub fn read_timeout(&self, timeout: Duration) -> LockResult<RwLockReadGuard<'_>> {
        self.read_by(Some(crate::wait::deadline(timeout)))?
            .ok_or_else(|| {
                LockError::Failed(
                    self.state
                        .timeout("read_timeout", "a writer held it", timeout),
                )
            })
    }

    /// Takes a read lock if no writer holds or waits for it and the reader mutex is free.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptStructure`] for broken words.
    pub fn try_read(&self) -> Result<Option<RwLockReadGuard<'_>>> {
        let Some(registration) = self.rmtx.try_lock()? else {
            return Ok(None);
        };
        Ok(self.register(registration))
    }

    /// Takes the write lock, blocking for ever if need be.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] with the guard when the previous writer died holding it;
    /// [`LockError::Failed`] with [`Error::CorruptStructure`].
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_>> {
        self.write_by(None)?
            .ok_or_else(|| self.endless("take the write lock"))
    }

    /// Takes the write lock, waiting up to `timeout` (for the writer mutex, then for the
    /// readers to leave; it gives up its announcement if they do not).
    ///
    /// # Errors
    ///
    /// [`LockError::Failed`] with [`Error::Timeout`]; otherwise as [`write`](Self::write).
    pub fn write_timeout(&self, timeout: Duration) -> LockResult<RwLockWriteGuard<'_>> {
        self.write_by(Some(crate::wait::deadline(timeout)))?
            .ok_or_else(|| {
                LockError::Failed(self.state.timeout(
                    "write_timeout",
                    "readers or a writer held it",
                    timeout,
                ))
            })
    }

    /// Takes the write lock if nobody holds the lock and both mutexes are free.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptStructure`] for broken words.
    pub fn try_write(&self) -> Result<Option<RwLockWriteGuard<'_>>> {
        let Some(writer) = self.wmtx.try_lock()? else {
            return Ok(None);
        };
        let Some(registration) = self.rmtx.try_lock()? else {
            return Ok(None);
        };
        self.announce();
        drop(registration);
        if self.readers_now()? != 0 {
            self.withdraw();
            return Ok(None);
        }
        Ok(Some(RwLockWriteGuard {
            lock: self,
            writer: Some(writer),
        }))
    }

    /// The error of a wait without a deadline that ended anyway (it cannot).
    fn endless<G>(&self, what: &'static str) -> LockError<G> {
        LockError::Failed(Error::Internal {
            segment: self.state.segment.name().to_owned(),
            what,
            problem: "a wait without a deadline ended",
        })
    }

    /// `readers`, checked.
    fn readers_now(&self) -> Result<i32> {
        // Acquire: a writer that sees 0 sees what the readers did before leaving.
        let readers = self.state.word(READERS).load(Ordering::Acquire) as i32;
        if readers < 0 {
            return Err(self
                .state
                .broken(crate::algo::sync::Broken::Negative(readers)));
        }
        Ok(readers)
    }

    /// The time left until `deadline`, or `None` for none.
    fn left(deadline: Option<Instant>) -> Option<Duration> {
        deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// A read lock, `Ok(None)` at the deadline.
    fn read_by(&self, deadline: Option<Instant>) -> Locked<RwLockReadGuard<'_>> {
        let mut died = None;
        loop {
            let Some(registration) = lock_inner(&self.rmtx, Self::left(deadline))? else {
                return Ok(None);
            };
            if let Some(guard) = self.register(registration) {
                return finish(guard, died, &self.state).map(Some);
            }
            // A writer is active: wait for it to finish, or take over from a dead one.
            let writer = self.state.word(WRITER);
            let mut vigil = Vigil::default();
            let over = block(
                &self.state.bell,
                writer,
                Self::left(deadline),
                // Acquire: pairs with the writer's release of the flag.
                || Ok((writer.load(Ordering::Acquire) == 0).then_some(None)),
                || Ok(self.take_over_writer(&mut vigil).map(Some)),
            )?;
            match over {
                None => return Ok(None),
                Some(Some(pid)) => died = Some(pid),
                Some(None) => {}
            }
        }
    }

    /// Registers a reader under the reader mutex (held by `registration`) unless a writer is
    /// active; the read guard.
    fn register<'a>(&'a self, registration: MutexGuard<'a>) -> Option<RwLockReadGuard<'a>> {
        // Acquire: pairs with the writer's release of the flag.
        if self.state.word(WRITER).load(Ordering::Acquire) != 0 {
            return None;
        }
        // SeqCst, as every change of a word others sleep on; a release, as the reference.
        self.state.word(READERS).fetch_add(1, Ordering::SeqCst);
        let hold = self
            .state
            .holds
            .as_ref()
            .and_then(|h| h.hold(self.state.offset, Holding::Read));
        drop(registration);
        Some(RwLockReadGuard {
            lock: self,
            hold,
            forks: crate::raw::fork_generation(),
        })
    }

    /// Takes the writer mutex over from a writer that died holding it, clears
    /// `writer_active` and lets the mutex go: the dead writer's pid.
    fn take_over_writer(&self, vigil: &mut Vigil) -> Option<u32> {
        let (guard, pid) = self.wmtx.take_over(vigil)?;
        self.withdraw();
        drop(guard);
        Some(pid)
    }

    /// The write lock, `Ok(None)` at the deadline.
    fn write_by(&self, deadline: Option<Instant>) -> Locked<RwLockWriteGuard<'_>> {
        let (writer, died) = match self.wmtx.lock_for(Self::left(deadline)) {
            Ok(Some(guard)) => (guard, None),
            Ok(None) => return Ok(None),
            Err(LockError::OwnerDied(guard, Error::OwnerDied { pid, .. })) => (guard, Some(pid)),
            Err(LockError::OwnerDied(_, e) | LockError::Failed(e)) => {
                return Err(LockError::Failed(e));
            }
        };
        let Some(registration) = lock_inner(&self.rmtx, Self::left(deadline))? else {
            return Ok(None);
        };
        self.announce();
        drop(registration);
        let readers = self.state.word(READERS);
        let mut vigil = Vigil::default();
        let empty = block(
            &self.state.bell,
            readers,
            Self::left(deadline),
            || Ok((self.readers_now()? == 0).then_some(())),
            || {
                self.take_dead_readers(&mut vigil);
                Ok(None)
            },
        );
        match empty {
            Ok(Some(())) => finish(
                RwLockWriteGuard {
                    lock: self,
                    writer: Some(writer),
                },
                died,
                &self.state,
            )
            .map(Some),
            Ok(None) => {
                self.withdraw();
                Ok(None)
            }
            Err(e) => {
                self.withdraw();
                Err(LockError::Failed(e))
            }
        }
    }

    /// Takes back the registrations of readers that died holding a read lock.
    fn take_dead_readers(&self, vigil: &mut Vigil) {
        for dead in self.state.dead_holders(Holding::Read, vigil) {
            if self.state.take_hold(&dead) {
                // SeqCst: as a reader's unlock.
                self.state.word(READERS).fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Announces a writer (under the reader mutex).
    fn announce(&self) {
        // SeqCst swap: a release, as the reference's store, and the releaser's half of the
        // wake pairing for nobody (readers sleep only while it is 1).
        self.state.word(WRITER).swap(1, Ordering::SeqCst);
    }

    /// Clears `writer_active`, waking the readers that wait for it.
    fn withdraw(&self) {
        let writer = self.state.word(WRITER);
        // SeqCst swap: a release (readers that see 0 see what the writer did) and the wake
        // pairing.
        writer.swap(0, Ordering::SeqCst);
        self.writer_chime.ring(writer, u32::MAX);
    }
}

/// A lock, `Ok(None)` at the deadline.
type Locked<G> = std::result::Result<Option<G>, LockError<G>>;

/// Locks the reader mutex within `left` (`None`: no bound); `None` at the deadline. A lock
/// taken over from a dead holder is a lock: the reader mutex only orders registrations.
fn lock_inner(mutex: &Mutex, left: Option<Duration>) -> Result<Option<MutexGuard<'_>>> {
    match mutex.lock_for(left) {
        Ok(guard) => Ok(guard),
        Err(LockError::OwnerDied(guard, _)) => Ok(Some(guard)),
        Err(LockError::Failed(e)) => Err(e),
    }
}

/// `guard`, as an `OwnerDied` when the lock was taken over from `died`.
fn finish<G>(guard: G, died: Option<u32>, state: &Shared) -> LockResult<G> {
    match died {
        None => Ok(guard),
        Some(pid) => Err(LockError::OwnerDied(
            guard,
            Error::OwnerDied {
                segment: state.segment.name().to_owned(),
                name: state.name.clone(),
                pid,
            },
        )),
    }
}

/// A read lock on an [`RwLock`]; released when dropped.
#[must_use = "the read lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a> {
    lock: &'a RwLock,
    hold: Option<Hold<'a>>,
    /// The fork generation the lock was taken in: a forked child's copy does not unlock.
    forks: u32,
}

impl fmt::Debug for RwLockReadGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLockReadGuard")
            .field("lock", &self.lock.state.name)
            .finish()
    }
}

impl Drop for RwLockReadGuard<'_> {
    fn drop(&mut self) {
        // A forked child's copy of its parent's guard: the read lock stays the parent's.
        if crate::raw::fork_generation() != self.forks {
            return;
        }
        if let Some(hold) = &self.hold {
            hold.release();
        }
        let readers = self.lock.state.word(READERS);
        // SeqCst: a release (a writer that sees 0 sees what this reader did), without the
        // reader mutex, as C++ does; and the wake pairing for a writer waiting for 0.
        if readers.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.lock.readers_chime.ring(readers, u32::MAX);
        }
    }
}

/// The write lock on an [`RwLock`]; released when dropped.
#[must_use = "the write lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a> {
    lock: &'a RwLock,
    writer: Option<MutexGuard<'a>>,
}

impl fmt::Debug for RwLockWriteGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLockWriteGuard")
            .field("lock", &self.lock.state.name)
            .finish()
    }
}

impl Drop for RwLockWriteGuard<'_> {
    fn drop(&mut self) {
        // A forked child's copy of its parent's guard: the write lock stays the parent's.
        if self.writer.as_ref().is_some_and(MutexGuard::inherited) {
            return;
        }
        // As the reference: the flag first, then the writer mutex.
        self.lock.withdraw();
        drop(self.writer.take());
    }
}
