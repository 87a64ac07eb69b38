//! A value shared by processes, with a version that counts its changes (FORMAT.md §5.9),
//! byte-compatible with the C++ and Python implementations: three entries, made together.
//!
//! ```text
//! NAME_state  align8(8 + size_of T) bytes  +0 atomic u64 version, +8 T value
//!             (Python writes exactly 8 + size_of T; both are read)
//! NAME_mtx    16 bytes                     Mutex: held while the value is read or written
//! NAME        1 byte                       marker (0)
//! ```

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]
// A locked call's error carries the call's result and names the segment and entry, as every
// error does; it is the rare path, so its size costs nothing on the common one.
#![allow(clippy::result_large_err)]

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, LockError, LockResult, Result};
use crate::kind::{
    self, Exercise, Handle, Invalid, Kind, Mismatch, Opened, StructureDefect, StructureKind,
};
use crate::layout::ShmLayout;
use crate::peers::Peer;
use crate::raw::{Access, Anchored, Region};
use crate::segment::Segment;
use crate::sync::mutex::{self, Mutex};
use crate::sync::rwlock::marker;
use crate::sync::semaphore::{Permits, SIZE as MUTEX_SIZE};
use crate::sync::{Shared, block, field};
use crate::wait::{Chime, Futex};

/// Where the version is in the state entry.
const VERSION: usize = 0;
/// Where the value is in the state entry.
pub(crate) const VALUE: usize = 8;

/// A value of type `T` in a [`Segment`] that processes set and watch: every change bumps a
/// version, and [`wait_for_change`](Self::wait_for_change) blocks until it moves.
///
/// ```no_run
/// use zeroipc::{Segment, Signal};
///
/// let seg = Segment::open_or_create("/control", 1 << 16)?;
/// let setpoint = Signal::<f64>::open_or_create(&seg, "setpoint", 20.0)?;
/// let seen = setpoint.version();
/// setpoint.set(21.5)?;
/// assert!(setpoint.wait_for_change(seen)? > seen); // returns at once: it has changed
/// assert_eq!(setpoint.get()?, 21.5);
/// # Ok::<(), zeroipc::Error>(())
/// ```
///
/// The algorithm is the reference's (C++): [`set`](Self::set) and [`update`](Self::update)
/// write the value and increment the version under the signal's mutex, and [`get`](Self::get)
/// copies the value under it, so that a value of any size is never read half written, whatever
/// process writes it (Python's own `get` reads without the mutex; its `set` takes it). A change
/// made by this crate wakes the processes of this crate blocked in `wait_for_change` (they sleep
/// on the version in the kernel); a change by another implementation, which wakes nobody, is
/// seen within the segment's [poll interval](crate::SegmentOptions::poll_interval), or a
/// millisecond once such a writer has shown itself.
///
/// The C++ state entry is `8 + size_of::<T>()` rounded up to a multiple of 8 bytes, which is
/// what this crate writes; Python writes exactly `8 + size_of::<T>()`, and this crate opens both
/// (Python's opener refuses the rounded form of a type whose size is not a multiple of 8).
///
/// # Crashes
///
/// A process of this crate that dies inside `get`, `set` or `update` leaves the mutex locked,
/// recorded as its holder: the next call takes it over (as [`Mutex`] does) and completes, and
/// returns [`LockError::OwnerDied`] with its result, because the value it saw may be half
/// written by the dead writer (a `set` writes it whole again). A writer that died before it
/// incremented the version changed nothing a watcher can see: `wait_for_change` goes on
/// waiting. Watchers hold nothing, so a watcher's death affects nobody. A holder of another
/// implementation records nothing: calls behind one that died block until their timeout.
pub struct Signal<T: ShmLayout> {
    state: Shared,
    /// The state entry: version and value.
    region: Anchored<Region<'static>>,
    mutex: Mutex,
    version_chime: Chime,
    _type: PhantomData<fn() -> T>,
}

impl<T: ShmLayout> fmt::Debug for Signal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("segment", &self.state.segment.name())
            .field("name", &self.state.name)
            .field("version", &self.version())
            .finish()
    }
}

/// The signal kind of a value type `T` (uninhabited). What is stored does not depend on `T`
/// beyond its size, so that checks and reports of any signal use `SignalKind<u8>`.
pub(crate) struct SignalKind<T>(std::convert::Infallible, PhantomData<fn() -> T>);

/// The value a signal is created with.
#[derive(Clone, Copy)]
pub(crate) struct Initial<T>(T);

impl<T> fmt::Debug for Initial<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an initial value of {} bytes", size_of::<T>())
    }
}

/// What a stored signal's state entry holds after the version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ValueBytes(usize);

/// The C++ size of the state entry of a `value`-byte type.
fn state_size(value: usize) -> Option<usize> {
    value.checked_add(VALUE + 7).map(|n| n & !7)
}

/// The bytes after the version of a stored state entry; `elem` (the caller's type size) must
/// fit them in the C++ or the Python form.
fn value_bytes(state: &Region<'_>, elem: Option<u32>) -> std::result::Result<usize, Invalid> {
    let len = state.len();
    let value = len.checked_sub(VALUE).filter(|&v| v > 0).ok_or_else(|| {
        Invalid::Corrupt(format!(
            "the state entry has `{len}` bytes: no room for a value after the version"
        ))
    })?;
    // Relaxed: only a probe that the version is in bounds and aligned; its value is not used.
    state
        .load_u64(VERSION, Ordering::Relaxed)
        .map_err(|_| Invalid::Corrupt("the version is misaligned".into()))?;
    if let Some(elem) = elem.map(|e| e as usize) {
        if value != elem && state_size(elem) != Some(len) {
            return Err(Invalid::ElemSize {
                found: format!("a state entry of `{len}` bytes (a value of `{value}` bytes)"),
            });
        }
    }
    Ok(value)
}

impl<T: ShmLayout> Kind for SignalKind<T> {
    const KIND: StructureKind = StructureKind::Signal;
    const PARTS: &'static [&'static str] = &["_state", "_mtx", ""];
    type Params = Initial<T>;
    type Geometry = ValueBytes;

    fn plan(params: Initial<T>) -> Result<Initial<T>, (&'static str, String)> {
        let size = size_of::<T>();
        // The state entry (8 more bytes, rounded up) must have a `u32`-sized value too.
        let fits = u32::try_from(size)
            .ok()
            .filter(|&s| s > 0)
            .and_then(|s| s.checked_add(16));
        if fits.is_none() {
            return Err(("T", format!("values of `{size}` bytes cannot be stored")));
        }
        Ok(params)
    }
    fn sizes(_: &Initial<T>) -> Option<Vec<u64>> {
        let state = u64::try_from(state_size(size_of::<T>())?).ok()?;
        Some(vec![state, MUTEX_SIZE as u64, 1])
    }
    fn init(params: &Initial<T>, parts: &[Region<'_>]) -> Result<(), Access> {
        let [state, mtx, last] = parts else {
            return Err(Access::OutOfBounds);
        };
        state.zero(0, state.len())?;
        state.write(VALUE, params.0)?;
        crate::sync::semaphore::init(mtx, Permits { initial: 1, max: 1 })?;
        last.zero(0, last.len())
    }
    fn validate(parts: &[Region<'_>], elem: Option<u32>) -> Result<ValueBytes, Invalid> {
        let [state, mtx, last] = parts else {
            return Err(Invalid::Corrupt(
                "the structure does not have 3 parts".into(),
            ));
        };
        let value = value_bytes(state, elem)?;
        mutex::validate(mtx)?;
        marker(last)?;
        Ok(ValueBytes(value))
    }
    fn mismatch(_: &Initial<T>, _: &ValueBytes) -> Option<Mismatch> {
        // The value's size was checked by `validate`; the initial value is only the first.
        None
    }
    fn describe(geometry: &ValueBytes) -> String {
        format!(
            "a signal with `{}` bytes of value after its version",
            geometry.0
        )
    }
    fn len(_: &[Region<'_>], _: &ValueBytes) -> Option<u64> {
        None
    }
    fn audit(parts: &[Region<'_>], _: &ValueBytes) -> Vec<StructureDefect> {
        match parts {
            [_, mtx, _] => crate::sync::semaphore::audit(mtx, 1),
            _ => Vec::new(),
        }
    }
    fn state(parts: &[Region<'_>], geometry: &ValueBytes) -> Vec<(&'static str, i64)> {
        let [state, mtx, _] = parts else {
            return Vec::new();
        };
        let mut words = Vec::new();
        // Acquire: a snapshot of a word other processes change.
        if let Ok(version) = state.load_u64(VERSION, Ordering::Acquire) {
            words.push(("version", i64::try_from(version).unwrap_or(i64::MAX)));
        }
        words.push(("value_bytes", i64::try_from(geometry.0).unwrap_or(i64::MAX)));
        if let Ok(count) = field(mtx, 0) {
            words.push(("mutex_count", i64::from(count)));
            words.push(("locked", i64::from(count == 0)));
        }
        words
    }
}

impl<T: ShmLayout> Handle for Signal<T> {
    type Kind = SignalKind<T>;
    fn elem() -> Result<u32> {
        kind::elem_size::<T>()
    }
    fn layout() -> Option<&'static crate::layout::Layout> {
        Some(T::LAYOUT)
    }
    fn from_parts(opened: Opened<'_, SignalKind<T>>) -> Result<Self> {
        let mutex = Mutex::from_part(&opened, 1)?;
        let state_len = opened.geometry.0.saturating_add(VALUE);
        let region = opened.region(0, 0, state_len as u64)?;
        let state = Shared::new(&opened, 0, 0)?;
        let counter = region.get().atomic_u64(VERSION).map_err(|a| match a {
            Access::ReadOnly => Error::ReadOnly {
                segment: opened.segment.name().to_owned(),
            },
            _ => kind::corrupt(
                opened.segment,
                opened.name,
                StructureKind::Signal,
                "the version is misaligned".into(),
            ),
        })?;
        let version_chime = state.bell.chime(opened.segment, Futex::LowHalf(counter));
        Ok(Self {
            state,
            region,
            mutex,
            version_chime,
            _type: PhantomData,
        })
    }
}

impl<T: ShmLayout> Exercise for Signal<T> {
    fn exercise(&mut self) {
        let short = Duration::from_micros(100);
        let seen = self.version();
        let _ = self.has_changed(seen);
        if let Ok(value) = self.get_timeout(short) {
            let _ = self.set_timeout(value, short);
        }
        let _ = self.update_timeout(|v| v, short);
        let _ = self.wait_for_change_timeout(seen, short);
        let _ = self.holder();
    }
}

impl<T: ShmLayout> Signal<T> {
    /// Creates the signal `name` holding `initial`, version 0: its three entries (FORMAT.md
    /// §7), all or none.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEntryName`] (also when `name_state` or `name_mtx` is too long),
    /// [`Error::DuplicateEntry`], [`Error::TableFull`], [`Error::OutOfSpace`],
    /// [`Error::ReadOnly`], [`Error::InvalidArgument`] for a zero-sized `T`: the segment is
    /// unchanged.
    pub fn create(segment: &Segment, name: &str, initial: T) -> Result<Self> {
        kind::create(segment, name, Initial(initial))
    }

    /// Opens the existing signal `name`, written by any implementation.
    ///
    /// # Errors
    ///
    /// [`Error::EntryNotFound`] when one of its entries is missing; [`Error::TypeMismatch`]
    /// when its state entry has room for neither `8 + size_of::<T>()` bytes nor the C++
    /// rounding of it; [`Error::CorruptStructure`] for a mutex that is not one;
    /// [`Error::ReadOnly`].
    pub fn open(segment: &Segment, name: &str) -> Result<Self> {
        kind::open(segment, name)
    }

    /// Opens `name` if it exists (keeping its value), otherwise creates it holding `initial`
    /// (what the C++ constructor does).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`create`](Self::create).
    pub fn open_or_create(segment: &Segment, name: &str, initial: T) -> Result<Self> {
        kind::open_or_create(segment, name, Initial(initial))
    }

    /// The signal's name (that of its marker entry).
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// The version: how many times the value was set since the signal was created.
    pub fn version(&self) -> u64 {
        // Acquire: a caller that sees a version then reads the value (under the mutex, which
        // orders it anyway) or compares it again.
        self.counter().load(Ordering::Acquire)
    }

    /// Whether the version is no longer `seen`.
    pub fn has_changed(&self, seen: u64) -> bool {
        self.version() != seen
    }

    /// The process recorded as holding the signal's mutex (inside a `get`, `set` or `update`
    /// now), with its liveness; `None` when nobody holds it or its holder records nothing.
    pub fn holder(&self) -> Option<Peer> {
        self.mutex.holder()
    }

    /// The value, copied under the mutex (never half written), blocking while another call
    /// holds it, for ever if need be.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] with the value when the mutex was taken over from a holder
    /// that died (the value may be half written); [`LockError::Failed`] with
    /// [`Error::CorruptStructure`] for a broken mutex.
    pub fn get(&self) -> LockResult<T> {
        self.locked(None, |s| s.read())
    }

    /// [`get`](Self::get), waiting for the mutex at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`LockError::Failed`] with [`Error::Timeout`] when the mutex stayed locked; otherwise as
    /// [`get`](Self::get).
    pub fn get_timeout(&self, timeout: Duration) -> LockResult<T> {
        self.locked(Some(("get_timeout", timeout)), |s| s.read())
    }

    /// Sets the value and increments the version under the mutex, then wakes every process of
    /// this crate waiting for a change; returns the new version. Blocks while another call
    /// holds the mutex, for ever if need be.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] with the new version when the mutex was taken over from a
    /// holder that died (the value is whole again now); [`LockError::Failed`] as for
    /// [`get`](Self::get).
    pub fn set(&self, value: T) -> LockResult<u64> {
        self.changed(self.locked(None, |s| s.store(value)))
    }

    /// [`set`](Self::set), waiting for the mutex at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`get_timeout`](Self::get_timeout) (the value is then not set).
    pub fn set_timeout(&self, value: T, timeout: Duration) -> LockResult<u64> {
        self.changed(self.locked(Some(("set_timeout", timeout)), |s| s.store(value)))
    }

    /// Replaces the value by `f(value)` under the mutex (a read-modify-write no other writer
    /// can interleave with) and increments the version; returns the new value. Blocks while
    /// another call holds the mutex, for ever if need be. `f` runs while the mutex is held:
    /// keep it short, and do not call this signal from it (that would wait for itself).
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] with the new value when the mutex was taken over from a holder
    /// that died (`f` was given what it left, possibly half written); otherwise as
    /// [`set`](Self::set).
    pub fn update(&self, f: impl FnOnce(T) -> T) -> LockResult<T> {
        self.changed(self.locked(None, |s| s.modify(f)))
    }

    /// [`update`](Self::update), waiting for the mutex at most `timeout` (`f` does not run
    /// then).
    ///
    /// # Errors
    ///
    /// As [`get_timeout`](Self::get_timeout).
    pub fn update_timeout(&self, f: impl FnOnce(T) -> T, timeout: Duration) -> LockResult<T> {
        self.changed(self.locked(Some(("update_timeout", timeout)), |s| s.modify(f)))
    }

    /// Blocks until the version is not `seen`, for ever if need be; returns the version then.
    /// Returns at once when it already differs.
    ///
    /// # Errors
    ///
    /// None in practice: the error type is that of the timed form.
    pub fn wait_for_change(&self, seen: u64) -> Result<u64> {
        self.changed_from(seen, None)?
            .ok_or_else(|| Error::Internal {
                segment: self.state.segment.name().to_owned(),
                what: "wait for a signal to change",
                problem: "a wait without a deadline ended",
            })
    }

    /// [`wait_for_change`](Self::wait_for_change), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the version was still `seen` at the deadline.
    pub fn wait_for_change_timeout(&self, seen: u64, timeout: Duration) -> Result<u64> {
        self.changed_from(seen, Some(timeout))?.ok_or_else(|| {
            self.state.timeout(
                "wait_for_change_timeout",
                "the version did not change",
                timeout,
            )
        })
    }

    /// The version counter.
    fn counter(&self) -> &AtomicU64 {
        // Validated when the handle was made (in bounds, aligned, writable); a failure would be
        // an internal error, answered with a counter of no consequence rather than a panic.
        static SPARE: AtomicU64 = AtomicU64::new(0);
        self.region.get().atomic_u64(VERSION).unwrap_or(&SPARE)
    }

    /// Runs `f` under the mutex (waiting for it as `timeout` says: the caller's name and its
    /// limit); reports a takeover from a dead holder with `f`'s result.
    fn locked<R>(
        &self,
        timeout: Option<(&'static str, Duration)>,
        f: impl FnOnce(&Self) -> Result<R>,
    ) -> LockResult<R> {
        let (guard, died) = match self.mutex.lock_for(timeout.map(|(_, t)| t)) {
            Ok(Some(guard)) => (guard, None),
            Ok(None) => {
                let (op, t) = timeout.unwrap_or(("lock", Duration::ZERO));
                return Err(LockError::Failed(self.state.timeout(
                    op,
                    "the signal's mutex stayed locked",
                    t,
                )));
            }
            Err(LockError::OwnerDied(guard, e)) => (guard, Some(e)),
            Err(LockError::Failed(e)) => return Err(LockError::Failed(e)),
        };
        let result = f(self);
        let unlocked = guard.unlock();
        let result = result?;
        unlocked?;
        match died {
            None => Ok(result),
            Some(e) => Err(LockError::OwnerDied(result, e)),
        }
    }

    /// After a `set` or `update` (the mutex is unlocked by now): wakes the watchers. Also
    /// after one that failed, which may have changed the value before its unlock failed; a
    /// needless wake only makes watchers look again.
    fn changed<R>(&self, result: LockResult<R>) -> LockResult<R> {
        self.version_chime
            .ring(Futex::LowHalf(self.counter()), u32::MAX);
        result
    }

    /// The value (the mutex held).
    fn read(&self) -> Result<T> {
        self.region.get().read(VALUE).map_err(|a| self.access(a))
    }

    /// Writes `value` and increments the version (the mutex held); the new version.
    fn store(&self, value: T) -> Result<u64> {
        self.region
            .get()
            .write(VALUE, value)
            .map_err(|a| self.access(a))?;
        // SeqCst: the releaser's half of the wake pairing (`wait` module docs), and a release
        // of the value to watchers that load the version with Acquire.
        let before = self.counter().fetch_add(1, Ordering::SeqCst);
        Ok(before.wrapping_add(1))
    }

    /// Replaces the value by `f(value)` (the mutex held); the new value.
    fn modify(&self, f: impl FnOnce(T) -> T) -> Result<T> {
        let value = f(self.read()?);
        self.store(value)?;
        Ok(value)
    }

    /// The version once it is not `seen`, or `None` at the deadline.
    fn changed_from(&self, seen: u64, timeout: Option<Duration>) -> Result<Option<u64>> {
        let counter = self.counter();
        let now = || {
            let version = counter.load(Ordering::Acquire);
            Ok((version != seen).then_some(version))
        };
        // Nobody holds anything a watcher waits for: there is no dead holder to look for.
        block(
            &self.state.bell,
            Futex::LowHalf(counter),
            timeout,
            now,
            || Ok(None),
        )
    }

    fn access(&self, a: Access) -> Error {
        kind::corrupt(
            &self.state.segment,
            &self.state.name,
            StructureKind::Signal,
            format!("the value cannot be copied: {a:?}"),
        )
    }
}
