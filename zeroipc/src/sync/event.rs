//! An event shared by processes (FORMAT.md §5.6), byte-compatible with the C++ and Python
//! implementations: two entries, made together.
//!
//! ```text
//! NAME      12 bytes  +0 atomic u32 signaled, +4 u32 mode (0 auto, 1 manual), +8 atomic u32 waiting
//! NAME_sem  16 bytes  Semaphore(initial 0, max 0): the permits auto-reset waiters take
//! ```

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::Result;
use crate::kind::{
    self, Exercise, Handle, Invalid, Kind, Mismatch, Opened, StructureDefect, StructureKind,
};
use crate::raw::{Access, Region};
use crate::segment::Segment;
use crate::sync::semaphore::{self, Permits, Semaphore};
use crate::sync::{Shared, block, exact_size, field};
use crate::wait::Chime;

const STATE_SIZE: usize = 12;
const SIGNALED: usize = 0;
const WAITING: usize = 2;
const OFF_MODE: usize = 4;

/// How long [`Event::pulse`] waits for the manual-reset waiters it woke to leave before it
/// resets the event (a waiter that died inside `wait` never leaves).
pub const PULSE_WAIT: Duration = Duration::from_millis(100);

/// How an [`Event`] resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventMode {
    /// Each signal lets one waiter through (a signal without waiters is kept for the next).
    AutoReset,
    /// A signal lets every waiter through until [`Event::reset`].
    ManualReset,
}

impl EventMode {
    fn stored(self) -> u32 {
        match self {
            Self::AutoReset => 0,
            Self::ManualReset => 1,
        }
    }
}

/// An event in a [`Segment`]: waiters block until it is signalled.
///
/// ```no_run
/// use zeroipc::{Event, EventMode, Segment};
///
/// let seg = Segment::open_or_create("/pipeline", 1 << 16)?;
/// let ready = Event::open_or_create(&seg, "ready", EventMode::ManualReset)?;
/// ready.signal()?;
/// ready.wait()?; // returns at once while it stays signalled
/// # Ok::<(), zeroipc::Error>(())
/// ```
///
/// The algorithm is the reference's (C++): a manual-reset waiter counts itself in `waiting`
/// and waits for `signaled`; an auto-reset waiter takes a permit of the event's semaphore and
/// clears `signaled`. Waiting sleeps in the kernel; our signals wake (the others poll).
///
/// # Crashes
///
/// Nobody holds an event. A waiter that dies leaves `waiting` one too high, so that a later
/// [`pulse`](Self::pulse) waits its [`PULSE_WAIT`] for it; an auto-reset waiter that dies
/// after taking its permit consumes that signal.
pub struct Event {
    state: Shared,
    sem: Semaphore,
    mode: EventMode,
    signaled_chime: Chime,
    waiting_chime: Chime,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("segment", &self.state.segment.name())
            .field("name", &self.state.name)
            .field("mode", &self.mode)
            .field("signaled", &self.is_signaled())
            .finish()
    }
}

/// The event kind.
#[derive(Debug)]
pub(crate) enum EventKind {}

fn check_state(part: &Region<'_>) -> std::result::Result<EventMode, Invalid> {
    exact_size(part, STATE_SIZE)?;
    let mode = match field(part, OFF_MODE)? {
        0 => EventMode::AutoReset,
        1 => EventMode::ManualReset,
        other => {
            return Err(Invalid::Corrupt(format!("mode `{other}` is not 0 or 1")));
        }
    };
    let signaled = field(part, 0)?;
    if !(0..=1).contains(&signaled) {
        return Err(Invalid::Corrupt(format!(
            "signaled `{signaled}` is not 0 or 1"
        )));
    }
    Ok(mode)
}

impl Kind for EventKind {
    const KIND: StructureKind = StructureKind::Event;
    const PARTS: &'static [&'static str] = &["", "_sem"];
    type Params = EventMode;
    type Geometry = EventMode;

    fn plan(mode: EventMode) -> Result<EventMode, (&'static str, String)> {
        Ok(mode)
    }
    fn sizes(_: &EventMode) -> Option<Vec<u64>> {
        Some(vec![STATE_SIZE as u64, semaphore::SIZE as u64])
    }
    fn init(mode: &EventMode, parts: &[Region<'_>]) -> Result<(), Access> {
        let [state, sem] = parts else {
            return Err(Access::OutOfBounds);
        };
        state.zero(0, STATE_SIZE)?;
        state.write::<u32>(OFF_MODE, mode.stored())?;
        semaphore::init(sem, Permits { initial: 0, max: 0 })
    }
    fn validate(parts: &[Region<'_>], _: Option<u32>) -> Result<EventMode, Invalid> {
        let [state, sem] = parts else {
            return Err(Invalid::Corrupt(
                "the structure does not have 2 parts".into(),
            ));
        };
        let mode = check_state(state)?;
        let max = semaphore::validate(sem)?;
        if max != 0 {
            return Err(Invalid::Corrupt(format!(
                "the semaphore's max_count is `{max}`, not 0"
            )));
        }
        Ok(mode)
    }
    fn mismatch(requested: &EventMode, found: &EventMode) -> Option<Mismatch> {
        (requested != found).then_some(Mismatch::Parameter {
            what: "mode",
            requested: i64::from(requested.stored()),
            found: i64::from(found.stored()),
        })
    }
    fn describe(mode: &EventMode) -> String {
        match mode {
            EventMode::AutoReset => "auto-reset".into(),
            EventMode::ManualReset => "manual-reset".into(),
        }
    }
    fn len(_: &[Region<'_>], _: &EventMode) -> Option<u64> {
        None
    }
    fn audit(parts: &[Region<'_>], _: &EventMode) -> Vec<StructureDefect> {
        match parts {
            [_, sem] => semaphore::audit(sem, 0),
            _ => Vec::new(),
        }
    }
    fn state(parts: &[Region<'_>], _: &EventMode) -> Vec<(&'static str, i64)> {
        let [state, sem] = parts else {
            return Vec::new();
        };
        [
            ("signaled", field(state, 0)),
            ("mode", field(state, OFF_MODE)),
            ("waiting", field(state, 8)),
            ("sem_count", field(sem, 0)),
            ("sem_waiting", field(sem, 4)),
            ("sem_max_count", field(sem, 8)),
        ]
        .into_iter()
        .filter_map(|(name, v)| Some((name, i64::from(v.ok()?))))
        .collect()
    }
}

impl Handle for Event {
    type Kind = EventKind;
    fn elem() -> Result<u32> {
        Ok(0)
    }
    fn from_parts(opened: Opened<'_, EventKind>) -> Result<Self> {
        let sem = Semaphore::from_part(&opened, 1, 0)?;
        let state = Shared::new(&opened, 0, STATE_SIZE / 4)?;
        Ok(Self {
            signaled_chime: state.chime(SIGNALED),
            waiting_chime: state.chime(WAITING),
            mode: opened.geometry,
            state,
            sem,
        })
    }
}

impl Exercise for Event {
    fn exercise(&mut self) {
        let _ = self.is_signaled();
        let _ = self.signal();
        let _ = self.wait_timeout(Duration::from_micros(100));
        self.reset();
    }
}

impl Event {
    /// Creates the unsignalled event `name` (its two entries, all or none).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEntryName`](crate::Error::InvalidEntryName),
    /// [`Error::DuplicateEntry`](crate::Error::DuplicateEntry),
    /// [`Error::TableFull`](crate::Error::TableFull),
    /// [`Error::OutOfSpace`](crate::Error::OutOfSpace),
    /// [`Error::ReadOnly`](crate::Error::ReadOnly): the segment is unchanged.
    pub fn create(segment: &Segment, name: &str, mode: EventMode) -> Result<Self> {
        kind::create(segment, name, mode)
    }

    /// Opens the existing event `name`, checking both entries.
    ///
    /// # Errors
    ///
    /// [`Error::EntryNotFound`](crate::Error::EntryNotFound);
    /// [`Error::CorruptStructure`](crate::Error::CorruptStructure) for a state entry that is
    /// not 12 bytes, a mode or `signaled` that is not 0 or 1, or a semaphore that is not
    /// unbounded; [`Error::ReadOnly`](crate::Error::ReadOnly).
    pub fn open(segment: &Segment, name: &str) -> Result<Self> {
        kind::open(segment, name)
    }

    /// Opens `name` if it exists (in the same mode), otherwise creates it.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`create`](Self::create), and
    /// [`Error::ParameterMismatch`](crate::Error::ParameterMismatch).
    pub fn open_or_create(segment: &Segment, name: &str, mode: EventMode) -> Result<Self> {
        kind::open_or_create(segment, name, mode)
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// How it resets, as stored at open.
    pub fn mode(&self) -> EventMode {
        self.mode
    }

    /// Whether it is signalled now (a snapshot).
    pub fn is_signaled(&self) -> bool {
        // Acquire: a caller that sees it signalled sees what the signaller did before.
        self.state.word(SIGNALED).load(Ordering::Acquire) == 1
    }

    /// Signals: manual-reset waiters all go through until [`reset`](Self::reset); an
    /// auto-reset event lets one waiter through (now, or the next to come).
    ///
    /// # Errors
    ///
    /// [`Error::SemaphoreFull`](crate::Error::SemaphoreFull) when an auto-reset event has
    /// `i32::MAX` signals kept.
    pub fn signal(&self) -> Result<()> {
        let signaled = self.state.word(SIGNALED);
        // SeqCst swap: a release, as the reference's store, and the wake pairing.
        signaled.swap(1, Ordering::SeqCst);
        self.signaled_chime.ring(signaled, u32::MAX);
        if self.mode == EventMode::AutoReset {
            self.sem.release()?;
        }
        Ok(())
    }

    /// Clears the signal.
    pub fn reset(&self) {
        // SeqCst: as every change of a word others may sleep on.
        self.state.word(SIGNALED).swap(0, Ordering::SeqCst);
    }

    /// Signals, lets the manual-reset waiters of the moment go (waiting at most
    /// [`PULSE_WAIT`] for them to leave), then resets (the reference's C++ `pulse`).
    ///
    /// # Errors
    ///
    /// As [`signal`](Self::signal).
    pub fn pulse(&self) -> Result<()> {
        self.signal()?;
        let waiting = self.state.word(WAITING);
        block(
            &self.state.bell,
            waiting,
            Some(PULSE_WAIT),
            // Acquire: the waiters have seen the signal once they have left.
            || Ok((waiting.load(Ordering::Acquire) == 0).then_some(())),
            || Ok(None),
        )?;
        self.reset();
        Ok(())
    }

    /// Waits until it is signalled, for ever if need be.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptStructure`](crate::Error::CorruptStructure) for an auto-reset event
    /// whose semaphore count is negative.
    pub fn wait(&self) -> Result<()> {
        self.wait_by(None).map(drop)
    }

    /// Waits up to `timeout` for a signal.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::Error::Timeout) when no signal came; otherwise as
    /// [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<()> {
        match self.wait_by(Some(timeout))? {
            Some(()) => Ok(()),
            None => Err(self
                .state
                .timeout("wait_timeout", "the event was not signalled", timeout)),
        }
    }

    fn wait_by(&self, timeout: Option<Duration>) -> Result<Option<()>> {
        if self.mode == EventMode::AutoReset {
            let got = self.sem.acquire_by(timeout)?;
            if got.is_some() {
                self.reset();
            }
            return Ok(got);
        }
        let signaled = self.state.word(SIGNALED);
        let waiting = self.state.word(WAITING);
        // Relaxed, as the reference: a count that `pulse` waits to see drop.
        waiting.fetch_add(1, Ordering::Relaxed);
        let got = block(
            &self.state.bell,
            signaled,
            timeout,
            // Acquire: pairs with the signal.
            || Ok((signaled.load(Ordering::Acquire) != 0).then_some(())),
            || Ok(None),
        );
        // SeqCst: a release (as the reference) and the wake pairing for a pulse waiting for 0.
        waiting.fetch_sub(1, Ordering::SeqCst);
        self.waiting_chime.ring(waiting, u32::MAX);
        got
    }
}
