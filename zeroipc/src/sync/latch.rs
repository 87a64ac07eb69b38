//! A single-use countdown latch shared by processes (FORMAT.md §5.4), byte-compatible with every
//! ZeroIPC implementation.
//!
//! ```text
//! +0  atomic i32 count          down to 0, where it stays
//! +4  i32 initial_count
//! +8  2 x i32 padding           0
//! ```

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::algo::sync::latch;
use crate::error::{Error, Result};
use crate::kind::{
    self, Exercise, Handle, Invalid, Kind, Mismatch, Opened, StructureDefect, StructureKind,
};
use crate::raw::{Access, Region};
use crate::segment::Segment;
use crate::sync::{Shared, block, exact_size, field};
use crate::wait::Chime;

const SIZE: usize = 16;
const COUNT: usize = 0;
const OFF_INITIAL: usize = 4;

/// A countdown latch: [`wait`](Self::wait) returns once [`count_down`](Self::count_down) calls
/// (of any processes) have brought the count to 0, and from then on at once.
///
/// ```no_run
/// use zeroipc::{Latch, Segment};
///
/// let seg = Segment::open_or_create("/startup", 1 << 16)?;
/// let ready = Latch::open_or_create(&seg, "workers_ready", 4)?;
/// // in each of four workers:
/// ready.count_down(1)?;
/// // in the coordinator:
/// ready.wait()?;
/// # Ok::<(), zeroipc::Error>(())
/// ```
///
/// # Crashes
///
/// A process that dies before counting down leaves the count above 0 for good (nothing in the
/// format says who is still to count): `wait` then blocks, and `wait_timeout` returns
/// [`Error::Timeout`] at its deadline, never later. Counts already made stay made.
pub struct Latch {
    shared: Shared,
    initial: i32,
    count_chime: Chime,
}

impl fmt::Debug for Latch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latch")
            .field("segment", &self.shared.segment.name())
            .field("name", &self.shared.name)
            .field("count", &self.count())
            .field("initial", &self.initial)
            .finish()
    }
}

/// The latch kind.
#[derive(Debug)]
pub(crate) enum LatchKind {}

impl Kind for LatchKind {
    const KIND: StructureKind = StructureKind::Latch;
    const PARTS: &'static [&'static str] = &[""];
    type Params = i32;
    type Geometry = i32;

    fn plan(count: i32) -> Result<i32, (&'static str, String)> {
        if count < 0 {
            return Err(("count", format!("`{count}` is negative")));
        }
        Ok(count)
    }
    fn sizes(_: &i32) -> Option<Vec<u64>> {
        Some(vec![SIZE as u64])
    }
    fn init(count: &i32, parts: &[Region<'_>]) -> Result<(), Access> {
        let part = kind::only(parts).map_err(|_| Access::OutOfBounds)?;
        part.write::<i32>(0, *count)?;
        part.write::<i32>(OFF_INITIAL, *count)?;
        part.zero(8, 8)
    }
    fn validate(parts: &[Region<'_>], _: Option<u32>) -> Result<i32, Invalid> {
        let part = kind::only(parts)?;
        exact_size(part, SIZE)?;
        let initial = field(part, OFF_INITIAL)?;
        let count = field(part, 0)?;
        if initial < 0 {
            return Err(Invalid::Corrupt(format!(
                "initial_count `{initial}` is negative"
            )));
        }
        if !(0..=initial).contains(&count) {
            return Err(Invalid::Corrupt(format!(
                "count `{count}` is outside `0..={initial}`"
            )));
        }
        Ok(initial)
    }
    fn mismatch(requested: &i32, found: &i32) -> Option<Mismatch> {
        (requested != found).then_some(Mismatch::Parameter {
            what: "count",
            requested: i64::from(*requested),
            found: i64::from(*found),
        })
    }
    fn describe(initial: &i32) -> String {
        format!("counting down from `{initial}`")
    }
    fn len(_: &[Region<'_>], _: &i32) -> Option<u64> {
        None
    }
    fn audit(parts: &[Region<'_>], initial: &i32) -> Vec<StructureDefect> {
        let count = kind::only(parts).ok().and_then(|p| field(p, 0).ok());
        match count {
            Some(c) if !(0..=*initial).contains(&c) => vec![StructureDefect {
                slot: None,
                in_flight: false,
                problem: format!("count `{c}` is outside `0..={initial}`"),
                holder: None,
            }],
            _ => Vec::new(),
        }
    }
    fn state(parts: &[Region<'_>], _: &i32) -> Vec<(&'static str, i64)> {
        let Ok(part) = kind::only(parts) else {
            return Vec::new();
        };
        ["count", "initial_count"]
            .into_iter()
            .zip([0, OFF_INITIAL])
            .filter_map(|(name, off)| Some((name, i64::from(field(part, off).ok()?))))
            .collect()
    }
}

impl Handle for Latch {
    type Kind = LatchKind;
    fn elem() -> Result<u32> {
        Ok(0)
    }
    fn from_parts(opened: Opened<'_, LatchKind>) -> Result<Self> {
        let shared = Shared::new(&opened, 0, SIZE / 4)?;
        Ok(Self {
            count_chime: shared.chime(COUNT),
            initial: opened.geometry,
            shared,
        })
    }
}

impl Exercise for Latch {
    fn exercise(&mut self) {
        let _ = (self.count(), self.try_wait());
        let _ = self.count_down(1);
        let _ = self.wait_timeout(Duration::from_micros(100));
    }
}

impl Latch {
    /// Creates the latch `name` counting down from `count` (0: open from the start).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a negative count; [`Error::InvalidEntryName`],
    /// [`Error::DuplicateEntry`], [`Error::TableFull`], [`Error::OutOfSpace`],
    /// [`Error::ReadOnly`]: the segment is unchanged.
    pub fn create(segment: &Segment, name: &str, count: i32) -> Result<Self> {
        kind::create(segment, name, count)
    }

    /// Opens the existing latch `name`.
    ///
    /// # Errors
    ///
    /// [`Error::EntryNotFound`]; [`Error::CorruptStructure`] for an entry that is not 16
    /// bytes, a negative `initial_count` or a count outside `0..=initial_count`;
    /// [`Error::ReadOnly`].
    pub fn open(segment: &Segment, name: &str) -> Result<Self> {
        kind::open(segment, name)
    }

    /// Opens `name` if it exists (made with the same `count`), otherwise creates it.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`create`](Self::create), and
    /// [`Error::ParameterMismatch`].
    pub fn open_or_create(segment: &Segment, name: &str, count: i32) -> Result<Self> {
        kind::open_or_create(segment, name, count)
    }

    /// The entry name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The count it was created with.
    pub fn initial(&self) -> i32 {
        self.initial
    }

    /// The count now (a snapshot).
    pub fn count(&self) -> i32 {
        // Relaxed: a snapshot.
        self.shared.word(COUNT).load(Ordering::Relaxed) as i32
    }

    /// Counts down by `n`, saturating at 0; the waiters are woken when the count reaches 0.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for `n <= 0`; [`Error::CorruptStructure`] when the count
    /// keeps changing under every attempt.
    pub fn count_down(&self, n: i32) -> Result<()> {
        if n <= 0 {
            return Err(Error::InvalidArgument {
                what: "n",
                reason: format!("`{n}` is not positive"),
            });
        }
        let count = self.shared.word(COUNT);
        if latch::count_down(count, n).map_err(|b| self.shared.broken(b))? {
            self.count_chime.ring(count, u32::MAX);
        }
        Ok(())
    }

    /// Whether the count is 0 (the reference's `try_wait`).
    pub fn try_wait(&self) -> bool {
        // Acquire: pairs with the count-down that reached 0.
        self.shared.word(COUNT).load(Ordering::Acquire) == 0
    }

    /// Waits until the count is 0, for ever if need be.
    ///
    /// # Errors
    ///
    /// None today: `Result` keeps the shape of every blocking call.
    pub fn wait(&self) -> Result<()> {
        self.wait_by(None).map(drop)
    }

    /// Waits up to `timeout` for the count to reach 0.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when it was still above 0 at the deadline.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<()> {
        match self.wait_by(Some(timeout))? {
            Some(()) => Ok(()),
            None => Err(self
                .shared
                .timeout("wait_timeout", "the count stayed above 0", timeout)),
        }
    }

    fn wait_by(&self, timeout: Option<Duration>) -> Result<Option<()>> {
        let count = self.shared.word(COUNT);
        block(
            &self.shared.bell,
            count,
            timeout,
            || Ok(latch::open(count).then_some(())),
            || Ok(None),
        )
    }
}
