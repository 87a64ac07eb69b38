//! A once flag shared by processes (FORMAT.md §5.5): one atomic `u32` state, PENDING (0) →
//! EXECUTING (1) → DONE (2), byte-compatible with the C++, Python and Go implementations.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::algo::sync::once::{self, Begin, DONE, EXECUTING, PENDING};
use crate::error::Result;
use crate::journal::{Hold, Holding};
use crate::kind::{
    self, Exercise, Handle, Invalid, Kind, Mismatch, Opened, StructureDefect, StructureKind,
};
use crate::raw::{Access, Region};
use crate::segment::Segment;
use crate::sync::{Shared, Vigil, block, exact_size, field};
use crate::wait::Chime;

/// Size of the entry.
const SIZE: usize = 4;
const STATE: usize = 0;

/// A flag that lets exactly one caller, of all processes sharing it, run an initialisation.
///
/// ```no_run
/// use zeroipc::{Once, Segment};
///
/// let seg = Segment::open_or_create("/service", 1 << 16)?;
/// let setup = Once::open_or_create(&seg, "setup")?;
/// let ran = setup.call_once(|| {
///     // fill the tables every process reads ...
/// })?;
/// # let _ = ran;
/// # Ok::<(), zeroipc::Error>(())
/// ```
///
/// Callers that find it being run wait (sleeping in the kernel, woken when it is done) and
/// return once it is. As the reference does when the function throws, a function that panics
/// still marks the flag done: it is never run a second time.
///
/// # Crashes
///
/// The runner of this crate records itself in the runtime entry. When it dies while running,
/// a waiting caller notices within twice [`OWNER_CHECK_INTERVAL`](crate::OWNER_CHECK_INTERVAL),
/// and exactly one of the waiters takes over and runs its own function (its call returns
/// `Ok(true)`; the dead runner's work may be half done, which the function must tolerate).
/// A runner of another implementation, or one that died before recording itself, leaves the
/// state EXECUTING for good: the other implementations then hang; here `call_once` blocks and
/// `call_once_timeout` returns [`Error::Timeout`](crate::Error::Timeout).
pub struct Once {
    shared: Shared,
    state_chime: Chime,
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("segment", &self.shared.segment.name())
            .field("name", &self.shared.name)
            .field("done", &self.is_done())
            .finish()
    }
}

/// The once kind.
#[derive(Debug)]
pub(crate) enum OnceKind {}

impl Kind for OnceKind {
    const KIND: StructureKind = StructureKind::Once;
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
        kind::only(parts)
            .map_err(|_| Access::OutOfBounds)?
            .write::<u32>(0, PENDING)
    }
    fn validate(parts: &[Region<'_>], _: Option<u32>) -> Result<(), Invalid> {
        let part = kind::only(parts)?;
        exact_size(part, SIZE)?;
        let state = field(part, 0)?;
        if !(0..=2).contains(&state) {
            return Err(Invalid::Corrupt(format!(
                "state `{state}` is not 0 (pending), 1 (executing) or 2 (done)"
            )));
        }
        Ok(())
    }
    fn mismatch((): &(), (): &()) -> Option<Mismatch> {
        None
    }
    fn describe((): &()) -> String {
        "a once flag".into()
    }
    fn len(_: &[Region<'_>], (): &()) -> Option<u64> {
        None
    }
    fn audit(_: &[Region<'_>], (): &()) -> Vec<StructureDefect> {
        // Validation rejects every state that is not one of the three.
        Vec::new()
    }
    fn state(parts: &[Region<'_>], (): &()) -> Vec<(&'static str, i64)> {
        kind::only(parts)
            .ok()
            .and_then(|p| field(p, 0).ok())
            .map_or_else(Vec::new, |s| vec![("state", i64::from(s))])
    }
}

impl Handle for Once {
    type Kind = OnceKind;
    fn elem() -> Result<u32> {
        Ok(0)
    }
    fn from_parts(opened: Opened<'_, OnceKind>) -> Result<Self> {
        let shared = Shared::new(&opened, 0, 1)?;
        Ok(Self {
            state_chime: shared.chime(STATE),
            shared,
        })
    }
}

impl Exercise for Once {
    fn exercise(&mut self) {
        let _ = self.is_done();
        let _ = self.call_once_timeout(Duration::from_micros(100), || ());
    }
}

impl Once {
    /// Creates the pending once flag `name`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEntryName`](crate::Error::InvalidEntryName), [`Error::DuplicateEntry`](crate::Error::DuplicateEntry), [`Error::TableFull`](crate::Error::TableFull),
    /// [`Error::OutOfSpace`](crate::Error::OutOfSpace), [`Error::ReadOnly`](crate::Error::ReadOnly): the segment is unchanged.
    pub fn create(segment: &Segment, name: &str) -> Result<Self> {
        kind::create(segment, name, ())
    }

    /// Opens the existing once flag `name`.
    ///
    /// # Errors
    ///
    /// [`Error::EntryNotFound`](crate::Error::EntryNotFound); [`Error::CorruptStructure`](crate::Error::CorruptStructure) for an entry that is not 4 bytes
    /// or a state other than 0, 1 and 2; [`Error::ReadOnly`](crate::Error::ReadOnly).
    pub fn open(segment: &Segment, name: &str) -> Result<Self> {
        kind::open(segment, name)
    }

    /// Opens `name` if it exists, otherwise creates it pending (what the C++ constructor does).
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

    /// Whether the function has been run (by any process).
    pub fn is_done(&self) -> bool {
        // Acquire: a caller that sees DONE sees what the function did.
        self.shared.word(STATE).load(Ordering::Acquire) == DONE
    }

    /// Runs `f` if nobody has run it yet, or waits (for ever if need be) until the caller that
    /// runs it is done. Whether this call ran it.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptStructure`](crate::Error::CorruptStructure) when the state is not one of the three.
    pub fn call_once(&self, f: impl FnOnce()) -> Result<bool> {
        self.call_by(None, f).map(|ran| ran.unwrap_or(false))
    }

    /// As [`call_once`](Self::call_once), waiting at most `timeout` for another caller that
    /// runs it (`f` itself, when this call runs it, is not bounded).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::Error::Timeout) when it was still being run at the deadline (`f` was not called);
    /// otherwise as [`call_once`](Self::call_once).
    pub fn call_once_timeout(&self, timeout: Duration, f: impl FnOnce()) -> Result<bool> {
        self.call_by(Some(timeout), f)?.ok_or_else(|| {
            self.shared.timeout(
                "call_once_timeout",
                "another caller was still running it",
                timeout,
            )
        })
    }

    fn call_by(&self, timeout: Option<Duration>, f: impl FnOnce()) -> Result<Option<bool>> {
        let f = Cell::new(Some(f));
        let state = self.shared.word(STATE);
        let attempt = || -> Result<Option<bool>> {
            match once::begin(state).map_err(|b| self.shared.broken(b))? {
                Begin::Done => Ok(Some(false)),
                Begin::Running => Ok(None),
                Begin::Run => Ok(Some(self.run(&f))),
            }
        };
        if let Some(done) = attempt()? {
            return Ok(Some(done));
        }
        let mut vigil = Vigil::default();
        let take_over = || -> Result<Option<bool>> {
            for dead in self.shared.dead_holders(Holding::Run, &mut vigil) {
                // Acquire: after the takeover, as a won CAS would be.
                if self.shared.take_hold(&dead) && state.load(Ordering::Acquire) == EXECUTING {
                    return Ok(Some(self.run(&f)));
                }
            }
            Ok(None)
        };
        block(&self.shared.bell, state, timeout, attempt, take_over)
    }

    /// Runs the function as the one runner (the state is EXECUTING, ours), then marks it done,
    /// also when it panics; whether it ran (always, unless it was taken already).
    fn run<F: FnOnce()>(&self, f: &Cell<Option<F>>) -> bool {
        let hold = self
            .shared
            .holds
            .as_ref()
            .and_then(|h| h.hold(self.shared.offset, Holding::Run));
        let _finish = Finish {
            once: self,
            hold: hold.as_ref(),
        };
        match f.take() {
            Some(f) => {
                f();
                true
            }
            None => false,
        }
    }
}

/// Marks the once done when the runner's function returns or unwinds.
struct Finish<'a> {
    once: &'a Once,
    hold: Option<&'a Hold<'a>>,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        if let Some(hold) = self.hold {
            hold.release();
        }
        let state = self.once.shared.word(STATE);
        once::finish(state);
        self.once.state_chime.ring(state, u32::MAX);
    }
}
