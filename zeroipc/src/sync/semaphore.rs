//! A counting semaphore shared by processes (FORMAT.md §5.1), byte-compatible with the C++,
//! Python and Go implementations.
//!
//! ```text
//! +0  atomic i32 count      free permits
//! +4  atomic i32 waiting    callers inside a blocking acquire
//! +8  i32 max_count         0 = unbounded
//! +12 i32 padding           0
//! ```

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::algo::sync::semaphore::{self, Refused};
use crate::error::{Error, Result};
use crate::kind::{
    self, Exercise, Handle, Invalid, Kind, Mismatch, Opened, StructureDefect, StructureKind,
};
use crate::raw::{Access, Region};
use crate::segment::Segment;
use crate::sync::{Shared, block, exact_size, field};
use crate::wait::Chime;

/// Size of the entry.
pub(crate) const SIZE: usize = 16;
pub(crate) const COUNT: usize = 0;
pub(crate) const WAITING: usize = 1;
const OFF_MAX: usize = 8;

/// A counting semaphore in a [`Segment`], shared with the other implementations.
///
/// ```no_run
/// use zeroipc::{Segment, Semaphore};
///
/// let seg = Segment::create("/workers", 1 << 16)?;
/// let slots = Semaphore::create(&seg, "slots", 2, 2)?; // two permits, at most two
/// slots.acquire()?;
/// // ... use one of the two resources ...
/// slots.release()?;
/// # Ok::<(), zeroipc::Error>(())
/// ```
///
/// Permits belong to nobody: any process may release one, which is what makes a semaphore a
/// signal between processes. A blocked [`acquire`](Self::acquire) sleeps in the kernel until
/// a release of this crate wakes it, or notices a release by another implementation (which
/// never wakes anybody) within the segment's
/// [poll interval](crate::SegmentOptions::poll_interval).
///
/// # Crashes
///
/// A process that dies holding permits loses them: nothing in the format says who took one,
/// and a permit may be released by another process, so none is given back. One that dies
/// inside a blocking acquire leaves `waiting` one too high (the count itself stays right).
/// Waiters are never stuck behind a dead process any longer than behind a live one that keeps
/// its permits: a `_timeout` call returns [`Error::Timeout`] at its deadline. Use a
/// [`Mutex`](crate::Mutex) for exclusion with owner-death detection.
pub struct Semaphore {
    pub(crate) shared: Shared,
    max: i32,
    count_chime: Chime,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("segment", &self.shared.segment.name())
            .field("name", &self.shared.name)
            .field("count", &self.count())
            .field("max", &self.max)
            .finish()
    }
}

/// What a semaphore is created with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Permits {
    pub(crate) initial: i32,
    pub(crate) max: i32,
}

/// The semaphore kind.
#[derive(Debug)]
pub(crate) enum SemaphoreKind {}

/// Writes a fresh semaphore.
pub(crate) fn init(part: &Region<'_>, permits: Permits) -> Result<(), Access> {
    part.write::<i32>(0, permits.initial)?;
    part.write::<i32>(4, 0)?;
    part.write::<i32>(OFF_MAX, permits.max)?;
    part.write::<i32>(12, 0)
}

/// Checks a stored semaphore; its `max_count`.
pub(crate) fn validate(part: &Region<'_>) -> Result<i32, Invalid> {
    exact_size(part, SIZE)?;
    let max = field(part, OFF_MAX)?;
    let count = field(part, 0)?;
    if max < 0 {
        return Err(Invalid::Corrupt(format!("max_count `{max}` is negative")));
    }
    if count < 0 || (max > 0 && count > max) {
        return Err(Invalid::Corrupt(format!(
            "count `{count}` is outside `0..={}`",
            if max > 0 {
                max.to_string()
            } else {
                "i32::MAX".into()
            }
        )));
    }
    Ok(max)
}

/// The defects of a stored semaphore's shared words.
pub(crate) fn audit(part: &Region<'_>, max: i32) -> Vec<StructureDefect> {
    let mut defects = Vec::new();
    let mut problem = |problem: String| {
        defects.push(StructureDefect {
            slot: None,
            in_flight: false,
            problem,
            holder: None,
        });
    };
    if let Ok(count) = field(part, 0)
        && (count < 0 || (max > 0 && count > max))
    {
        problem(format!("count `{count}` is outside `0..={max}`"));
    }
    if let Ok(waiting) = field(part, 4)
        && waiting < 0
    {
        problem(format!("waiting `{waiting}` is negative"));
    }
    defects
}

/// `count`, `waiting` and `max_count` of a stored semaphore, for reports.
pub(crate) fn state(part: &Region<'_>) -> Vec<(&'static str, i64)> {
    ["count", "waiting", "max_count"]
        .into_iter()
        .zip([0, 4, OFF_MAX])
        .filter_map(|(name, off)| Some((name, i64::from(field(part, off).ok()?))))
        .collect()
}

impl Kind for SemaphoreKind {
    const KIND: StructureKind = StructureKind::Semaphore;
    const PARTS: &'static [&'static str] = &[""];
    type Params = Permits;
    type Geometry = i32;

    fn plan(p: Permits) -> Result<Permits, (&'static str, String)> {
        if p.initial < 0 {
            return Err(("initial", format!("`{}` is negative", p.initial)));
        }
        if p.max < 0 {
            return Err(("max", format!("`{}` is negative", p.max)));
        }
        if p.max > 0 && p.initial > p.max {
            return Err((
                "initial",
                format!("`{}` is above the maximum `{}`", p.initial, p.max),
            ));
        }
        Ok(p)
    }
    fn sizes(_: &Permits) -> Option<Vec<u64>> {
        Some(vec![SIZE as u64])
    }
    fn init(p: &Permits, parts: &[Region<'_>]) -> Result<(), Access> {
        init(kind::only(parts).map_err(|_| Access::OutOfBounds)?, *p)
    }
    fn validate(parts: &[Region<'_>], _: Option<u32>) -> Result<i32, Invalid> {
        validate(kind::only(parts)?)
    }
    fn mismatch(requested: &Permits, found: &i32) -> Option<Mismatch> {
        (requested.max != *found).then_some(Mismatch::Parameter {
            what: "max",
            requested: i64::from(requested.max),
            found: i64::from(*found),
        })
    }
    fn describe(max: &i32) -> String {
        if *max == 0 {
            "unbounded".into()
        } else {
            format!("at most `{max}` permits")
        }
    }
    fn len(_: &[Region<'_>], _: &i32) -> Option<u64> {
        None
    }
    fn audit(parts: &[Region<'_>], max: &i32) -> Vec<StructureDefect> {
        kind::only(parts).map_or_else(|_| Vec::new(), |p| audit(p, *max))
    }
    fn state(parts: &[Region<'_>], _: &i32) -> Vec<(&'static str, i64)> {
        kind::only(parts).map_or_else(|_| Vec::new(), state)
    }
}

impl Handle for Semaphore {
    type Kind = SemaphoreKind;
    fn elem() -> Result<u32> {
        Ok(0)
    }
    fn from_parts(opened: Opened<'_, SemaphoreKind>) -> Result<Self> {
        Self::from_part(&opened, 0, opened.geometry)
    }
}

impl Semaphore {
    /// The semaphore in part `part` of a validated structure (a composite's auxiliary
    /// semaphore), whose `max_count` validation found to be `max`.
    pub(crate) fn from_part<K: Kind>(
        opened: &Opened<'_, K>,
        part: usize,
        max: i32,
    ) -> Result<Self> {
        let shared = Shared::new(opened, part, SIZE / 4)?;
        Ok(Self {
            count_chime: shared.chime(COUNT),
            max,
            shared,
        })
    }
}

impl Exercise for Semaphore {
    fn exercise(&mut self) {
        let _ = self.count();
        let _ = self.try_acquire();
        let _ = self.release();
        let _ = self.acquire_timeout(Duration::from_micros(100));
    }
}

impl Semaphore {
    /// Creates the semaphore `name` with `initial` free permits, at most `max` (0 for no
    /// bound), as the other implementations do.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a negative `initial` or `max`, or `initial > max > 0`;
    /// [`Error::InvalidEntryName`], [`Error::DuplicateEntry`], [`Error::TableFull`],
    /// [`Error::OutOfSpace`], [`Error::ReadOnly`]: the segment is unchanged.
    pub fn create(segment: &Segment, name: &str, initial: i32, max: i32) -> Result<Self> {
        kind::create(segment, name, Permits { initial, max })
    }

    /// Opens the existing semaphore `name`.
    ///
    /// # Errors
    ///
    /// [`Error::EntryNotFound`]; [`Error::CorruptStructure`] for an entry that is not 16
    /// bytes, a negative `max_count`, or a count outside `0..=max_count`; [`Error::ReadOnly`].
    pub fn open(segment: &Segment, name: &str) -> Result<Self> {
        kind::open(segment, name)
    }

    /// Opens `name` if it exists (its `max_count` must be `max`), otherwise creates it.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`create`](Self::create), and
    /// [`Error::ParameterMismatch`].
    pub fn open_or_create(segment: &Segment, name: &str, initial: i32, max: i32) -> Result<Self> {
        kind::open_or_create(segment, name, Permits { initial, max })
    }

    /// The entry name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The most permits (0 = unbounded), as stored at open.
    pub fn max(&self) -> i32 {
        self.max
    }

    /// The free permits now (a snapshot).
    pub fn count(&self) -> i32 {
        // Relaxed: a snapshot for display.
        self.shared.word(COUNT).load(Ordering::Relaxed) as i32
    }

    /// The callers inside a blocking acquire now, of every implementation that counts them
    /// (a snapshot).
    pub fn waiting(&self) -> i32 {
        // Relaxed: as in `count`.
        self.shared.word(WAITING).load(Ordering::Relaxed) as i32
    }

    /// Takes a permit if one is free: whether it did.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptStructure`] when the count is negative or keeps changing under every
    /// attempt.
    pub fn try_acquire(&self) -> Result<bool> {
        semaphore::try_acquire(self.shared.word(COUNT)).map_err(|b| self.shared.broken(b))
    }

    /// Takes a permit, blocking until one is free, for ever if need be.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire).
    pub fn acquire(&self) -> Result<()> {
        self.acquire_by(None).map(drop)
    }

    /// Takes a permit, waiting up to `timeout` for one.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when none was free until the deadline; otherwise as
    /// [`try_acquire`](Self::try_acquire).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<()> {
        match self.acquire_by(Some(timeout))? {
            Some(()) => Ok(()),
            None => Err(self
                .shared
                .timeout("acquire_timeout", "no permit was free", timeout)),
        }
    }

    pub(crate) fn acquire_by(&self, timeout: Option<Duration>) -> Result<Option<()>> {
        if self.try_acquire()? {
            return Ok(Some(()));
        }
        let _waiting = Waiting::enter(&self.shared);
        block(
            &self.shared.bell,
            self.shared.word(COUNT),
            timeout,
            || Ok(self.try_acquire()?.then_some(())),
            || Ok(None),
        )
    }

    /// Gives a permit back (any process may, not only one that acquired), waking one waiter.
    ///
    /// # Errors
    ///
    /// [`Error::SemaphoreFull`] when the semaphore already holds `max` permits (nothing
    /// changes); [`Error::CorruptStructure`] as for [`try_acquire`](Self::try_acquire).
    pub fn release(&self) -> Result<()> {
        self.release_n(1)
    }

    /// Gives `n` (> 0) permits back at once, waking up to `n` waiters: all or none.
    pub(crate) fn release_n(&self, n: i32) -> Result<()> {
        let count = self.shared.word(COUNT);
        match semaphore::release_n(count, self.max, n) {
            Ok(()) => {
                self.count_chime.ring(count, n.unsigned_abs());
                Ok(())
            }
            Err(Refused::Full(count)) => Err(Error::SemaphoreFull {
                segment: self.shared.segment.name().to_owned(),
                name: self.shared.name.clone(),
                count,
            }),
            Err(Refused::Broken(b)) => Err(self.shared.broken(b)),
        }
    }
}

/// `waiting` counted up for the time of a blocking acquire, as the reference does.
pub(crate) struct Waiting<'a>(&'a Shared);

impl<'a> Waiting<'a> {
    pub(crate) fn enter(shared: &'a Shared) -> Self {
        // Relaxed, as the reference: a statistic that no algorithm step depends on.
        shared.word(WAITING).fetch_add(1, Ordering::Relaxed);
        Self(shared)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        // Relaxed: as in `enter`.
        self.0.word(WAITING).fetch_sub(1, Ordering::Relaxed);
    }
}
