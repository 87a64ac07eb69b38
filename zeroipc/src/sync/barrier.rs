//! A reusable barrier shared by processes (FORMAT.md §5.3), byte-compatible with every ZeroIPC
//! implementation.
//!
//! ```text
//! +0  atomic i32 arrived
//! +4  atomic i32 generation     bumped by the last arrival of each generation
//! +8  i32 num_participants      > 0
//! +12 i32 padding               0
//! ```

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::algo::sync::barrier::{self, Arrival, Withdrawal};
use crate::error::Result;
use crate::kind::{
    self, Exercise, Handle, Invalid, Kind, Mismatch, Opened, StructureDefect, StructureKind,
};
use crate::raw::{Access, Region};
use crate::segment::Segment;
use crate::sync::{Shared, block, exact_size, field};
use crate::wait::Chime;

/// How long a timed-out [`Barrier::wait_timeout`] that finds its generation complete but not
/// yet released waits for the last arriver's second step.
const COMPLETING_WAIT: Duration = Duration::from_millis(10);

const SIZE: usize = 16;
const ARRIVED: usize = 0;
const GENERATION: usize = 1;
const OFF_PARTICIPANTS: usize = 8;

/// A barrier for a fixed number of participants, reusable generation after generation:
/// [`wait`](Self::wait) returns once every participant (of any processes) has called it.
///
/// ```no_run
/// use zeroipc::{Barrier, Segment};
///
/// let seg = Segment::open_or_create("/simulation", 1 << 16)?;
/// let step = Barrier::open_or_create(&seg, "step", 4)?;
/// for _ in 0..100 {
///     // ... compute this process's part of the step ...
///     let leader = step.wait()?; // true in exactly one participant per generation
///     # let _ = leader;
/// }
/// # Ok::<(), zeroipc::Error>(())
/// ```
///
/// The algorithm is the reference's; giving up is not. A `wait_timeout` that times out takes
/// its arrival back only while its generation is still incomplete (the reference decrements
/// blindly, which can lose an arrival of the next generation or make `arrived` negative); if
/// its generation completed meanwhile it returns as released.
///
/// # Crashes
///
/// A participant that dies before arriving leaves its generation incomplete for good (the
/// format does not say who the participants are): the others' `wait` blocks, and
/// `wait_timeout` returns [`Error::Timeout`](crate::Error::Timeout) at its deadline and takes
/// its arrival back, so the barrier is left as it was before that generation's arrivals gave
/// up. One that dies after arriving has arrived: its generation completes without it. The last
/// arriver releases the others in two steps (reset `arrived`, then bump `generation`); one that
/// dies between them leaves every other participant of that generation blocked, and a
/// `wait_timeout` that finds it so waits 10 ms more for the second step before it
/// returns [`Error::Timeout`](crate::Error::Timeout) (its arrival then counts in that
/// generation).
pub struct Barrier {
    shared: Shared,
    participants: i32,
    generation_chime: Chime,
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("segment", &self.shared.segment.name())
            .field("name", &self.shared.name)
            .field("participants", &self.participants)
            .field("arrived", &self.arrived())
            .field("generation", &self.generation())
            .finish()
    }
}

/// The barrier kind.
#[derive(Debug)]
pub(crate) enum BarrierKind {}

impl Kind for BarrierKind {
    const KIND: StructureKind = StructureKind::Barrier;
    const PARTS: &'static [&'static str] = &[""];
    type Params = i32;
    type Geometry = i32;

    fn plan(participants: i32) -> Result<i32, (&'static str, String)> {
        if participants <= 0 {
            return Err(("participants", format!("`{participants}` is not positive")));
        }
        Ok(participants)
    }
    fn sizes(_: &i32) -> Option<Vec<u64>> {
        Some(vec![SIZE as u64])
    }
    fn init(participants: &i32, parts: &[Region<'_>]) -> Result<(), Access> {
        let part = kind::only(parts).map_err(|_| Access::OutOfBounds)?;
        part.zero(0, 8)?;
        part.write::<i32>(OFF_PARTICIPANTS, *participants)?;
        part.write::<i32>(12, 0)
    }
    fn validate(parts: &[Region<'_>], _: Option<u32>) -> Result<i32, Invalid> {
        let part = kind::only(parts)?;
        exact_size(part, SIZE)?;
        let participants = field(part, OFF_PARTICIPANTS)?;
        if participants <= 0 {
            return Err(Invalid::Corrupt(format!(
                "num_participants `{participants}` is not positive"
            )));
        }
        let arrived = field(part, 0)?;
        // `participants` itself for the instant between the last arrival and its reset.
        if !(0..=participants).contains(&arrived) {
            return Err(Invalid::Corrupt(format!(
                "arrived `{arrived}` is outside `0..={participants}`"
            )));
        }
        Ok(participants)
    }
    fn mismatch(requested: &i32, found: &i32) -> Option<Mismatch> {
        (requested != found).then_some(Mismatch::Parameter {
            what: "participants",
            requested: i64::from(*requested),
            found: i64::from(*found),
        })
    }
    fn describe(participants: &i32) -> String {
        format!("`{participants}` participants")
    }
    fn len(_: &[Region<'_>], _: &i32) -> Option<u64> {
        None
    }
    fn audit(parts: &[Region<'_>], participants: &i32) -> Vec<StructureDefect> {
        let arrived = kind::only(parts).ok().and_then(|p| field(p, 0).ok());
        match arrived {
            Some(a) if !(0..=*participants).contains(&a) => vec![StructureDefect {
                slot: None,
                in_flight: false,
                problem: format!("arrived `{a}` is outside `0..={participants}`"),
                holder: None,
            }],
            _ => Vec::new(),
        }
    }
    fn state(parts: &[Region<'_>], _: &i32) -> Vec<(&'static str, i64)> {
        let Ok(part) = kind::only(parts) else {
            return Vec::new();
        };
        ["arrived", "generation", "num_participants"]
            .into_iter()
            .zip([0, 4, OFF_PARTICIPANTS])
            .filter_map(|(name, off)| Some((name, i64::from(field(part, off).ok()?))))
            .collect()
    }
}

impl Handle for Barrier {
    type Kind = BarrierKind;
    fn elem() -> Result<u32> {
        Ok(0)
    }
    fn from_parts(opened: Opened<'_, BarrierKind>) -> Result<Self> {
        let shared = Shared::new(&opened, 0, SIZE / 4)?;
        Ok(Self {
            generation_chime: shared.chime(GENERATION),
            participants: opened.geometry,
            shared,
        })
    }
}

impl Exercise for Barrier {
    fn exercise(&mut self) {
        let _ = (self.arrived(), self.generation());
        let _ = self.wait_timeout(Duration::from_micros(100));
    }
}

impl Barrier {
    /// Creates the barrier `name` for `participants` participants.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for `participants <= 0`;
    /// [`Error::InvalidEntryName`](crate::Error::InvalidEntryName),
    /// [`Error::DuplicateEntry`](crate::Error::DuplicateEntry),
    /// [`Error::TableFull`](crate::Error::TableFull),
    /// [`Error::OutOfSpace`](crate::Error::OutOfSpace),
    /// [`Error::ReadOnly`](crate::Error::ReadOnly): the segment is unchanged.
    pub fn create(segment: &Segment, name: &str, participants: i32) -> Result<Self> {
        kind::create(segment, name, participants)
    }

    /// Opens the existing barrier `name`.
    ///
    /// # Errors
    ///
    /// [`Error::EntryNotFound`](crate::Error::EntryNotFound);
    /// [`Error::CorruptStructure`](crate::Error::CorruptStructure) for an entry that is not 16
    /// bytes, participants not above 0, or `arrived` outside `0..=participants`;
    /// [`Error::ReadOnly`](crate::Error::ReadOnly).
    pub fn open(segment: &Segment, name: &str) -> Result<Self> {
        kind::open(segment, name)
    }

    /// Opens `name` if it exists (for the same number of participants), otherwise creates it.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`create`](Self::create), and
    /// [`Error::ParameterMismatch`](crate::Error::ParameterMismatch).
    pub fn open_or_create(segment: &Segment, name: &str, participants: i32) -> Result<Self> {
        kind::open_or_create(segment, name, participants)
    }

    /// The entry name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The number of participants, as stored at open.
    pub fn participants(&self) -> i32 {
        self.participants
    }

    /// The participants that have arrived in the current generation (a snapshot).
    pub fn arrived(&self) -> i32 {
        // Relaxed: a snapshot.
        self.shared.word(ARRIVED).load(Ordering::Relaxed) as i32
    }

    /// The generation: how many times the barrier has released its participants (wrapping).
    pub fn generation(&self) -> u32 {
        // Relaxed: a snapshot.
        self.shared.word(GENERATION).load(Ordering::Relaxed)
    }

    /// Arrives and waits, for ever if need be, until every participant has arrived. Whether
    /// this caller was the last to arrive (the one that released the others): exactly one
    /// participant per generation gets `true`.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptStructure`](crate::Error::CorruptStructure) when more participants
    /// arrive than the barrier has (the arrival is taken back).
    pub fn wait(&self) -> Result<bool> {
        self.wait_by(None).map(|released| released.unwrap_or(false))
    }

    /// Arrives and waits up to `timeout` for the others.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::Error::Timeout) when the generation was still incomplete at
    /// the deadline (the arrival is taken back); otherwise as [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_by(Some(timeout))?.ok_or_else(|| {
            self.shared
                .timeout("wait_timeout", "not every participant arrived", timeout)
        })
    }

    fn wait_by(&self, timeout: Option<Duration>) -> Result<Option<bool>> {
        let arrived = self.shared.word(ARRIVED);
        let generation = self.shared.word(GENERATION);
        let broken = |b| self.shared.broken(b);
        let g = match barrier::arrive(arrived, generation, self.participants).map_err(broken)? {
            Arrival::Last => {
                self.generation_chime.ring(generation, u32::MAX);
                return Ok(Some(true));
            }
            Arrival::Wait(g) => g,
        };
        let passed = block(
            &self.shared.bell,
            generation,
            timeout,
            || Ok(barrier::passed(generation, g).then_some(())),
            || Ok(None),
        )?;
        if passed.is_some() {
            return Ok(Some(false));
        }
        match barrier::withdraw(arrived, generation, g, self.participants).map_err(broken)? {
            Withdrawal::Left => Ok(None),
            Withdrawal::Released => {
                // Our arrival may have completed the next generation (see `withdraw`).
                self.generation_chime.ring(generation, u32::MAX);
                Ok(Some(false))
            }
            Withdrawal::Completing => {
                // The last arriver is between two adjacent steps: wait for its second, briefly
                // (it takes nanoseconds unless it was descheduled or died).
                let passed = block(
                    &self.shared.bell,
                    generation,
                    Some(COMPLETING_WAIT),
                    || Ok(barrier::passed(generation, g).then_some(())),
                    || Ok(None),
                )?;
                match passed {
                    Some(()) => Ok(Some(false)),
                    None => Err(self.shared.timeout(
                        "wait_timeout",
                        "the last participant stopped between counting every arrival and \
                         releasing them (this arrival counts in that generation)",
                        timeout.unwrap_or_default().saturating_add(COMPLETING_WAIT),
                    )),
                }
            }
        }
    }
}
