//! The synchronisation kinds (FORMAT.md §5): [`Semaphore`](crate::Semaphore),
//! [`Mutex`](crate::Mutex), [`Barrier`](crate::Barrier), [`Latch`](crate::Latch) and
//! [`Once`](crate::Once), one file each, and what they share: the words of one entry, the
//! blocking loop over the `wait` module, and the search for a dead holder.
//!
//! The bytes and the algorithms are the reference implementation's (`algo::sync`), so C++,
//! Python and Go processes share each primitive with ours. What is ours alone: waiting sleeps
//! in the kernel and our releases wake (the others poll with sleeps, FORMAT.md §3), every
//! blocking call has a `_timeout` form, and holders are recorded in the runtime entry
//! (`journal::Holds`), so that a waiter can tell a holder that died from one that is slow.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

pub(crate) mod barrier;
pub(crate) mod event;
pub(crate) mod latch;
pub(crate) mod monitor;
pub(crate) mod mutex;
pub(crate) mod once;
pub(crate) mod rwlock;
pub(crate) mod semaphore;
pub(crate) mod signal;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::algo::sync::Broken;
use crate::error::{Error, Result};
use crate::journal::{Holder, Holding, Holds};
use crate::kind::{Invalid, Opened, StructureKind, corrupt};
pub(crate) use crate::peers::Vigil;
use crate::raw::{Anchored, Region, Words};
use crate::runtime;
use crate::segment::Segment;
use crate::wait::{Bell, Chime, Futex, Waiter, Watch};

/// How often a blocked call that can be stuck behind a dead holder (a mutex lock, a once
/// waiting for its runner) looks for one: a holder that died is noticed within twice this.
pub const OWNER_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// What every synchronisation handle keeps: where it is, its words, how to wake and wait, and
/// this process's hold slots.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) segment: Segment,
    pub(crate) name: String,
    /// The entry's words (all of them atomic in the format).
    words: Anchored<Words<'static>>,
    pub(crate) bell: Bell,
    /// This process's hold slots; `None` without a runtime entry.
    pub(crate) holds: Option<Holds>,
    /// Every process's hold slots, to look for a dead holder; `None` without a runtime entry.
    view: Option<runtime::HoldView>,
    /// The segment offset of the entry (its identity in holds).
    pub(crate) offset: u64,
    pub(crate) kind: StructureKind,
}

impl Shared {
    /// The words `0..count` of part `part` of `opened`; adds this process's record to the
    /// runtime entry (last, once nothing else can fail).
    pub(crate) fn new<K: crate::kind::Kind>(
        opened: &Opened<'_, K>,
        part: usize,
        count: usize,
    ) -> Result<Self> {
        let words = opened.words(part, 0, count)?;
        let offset = opened.offset(part)?;
        let bell = runtime::bell(opened.segment);
        let holds = bell.attachment().and_then(Holds::new);
        let view = runtime::hold_view(opened.segment);
        Ok(Self {
            view,
            segment: opened.segment.clone(),
            name: opened.name.to_owned(),
            words,
            bell,
            holds,
            offset,
            kind: K::KIND,
        })
    }

    /// Word `index` of the entry (an index the kind's validation proved present).
    #[inline]
    pub(crate) fn word(&self, index: usize) -> &AtomicU32 {
        // The kinds validate their entry sizes, so every index they use exists; a missing one
        // would be an internal error, answered with a word of no consequence rather than a
        // panic.
        static SPARE: AtomicU32 = AtomicU32::new(0);
        self.words.get().get(index).unwrap_or(&SPARE)
    }

    /// The chime of word `index`: how a release of ours wakes its waiters.
    pub(crate) fn chime(&self, index: usize) -> Chime {
        self.bell.chime(&self.segment, self.word(index))
    }

    /// The error for broken shared words.
    pub(crate) fn broken(&self, broken: Broken) -> Error {
        let reason = match broken {
            Broken::Negative(c) => format!("the count `{c}` is negative"),
            Broken::State(s) => format!("the state `{s}` is not one of the algorithm's"),
            Broken::Overrun(a) => {
                format!("`{a}` arrivals are more than the barrier's participants")
            }
            Broken::Livelock => {
                "its words kept changing under every attempt (a process rewriting them)".into()
            }
        };
        corrupt(&self.segment, &self.name, self.kind, reason)
    }

    /// The error of a `*_timeout` call that waited `waited`.
    pub(crate) fn timeout(
        &self,
        op: &'static str,
        condition: &'static str,
        waited: Duration,
    ) -> Error {
        crate::wait::timeout_error(self.segment.name(), &self.name, op, condition, waited)
    }

    /// The holds on this structure, of `holding`, judged through `vigil`.
    pub(crate) fn holders(&self, holding: Holding, vigil: &mut Vigil) -> Vec<Holder> {
        let Some(view) = &self.view else {
            return Vec::new();
        };
        view.holders(self.offset, vigil)
            .into_iter()
            .filter(|h| h.holding == holding)
            .collect()
    }

    /// The holds of dead processes on this structure, of `holding`, judged through `vigil`.
    pub(crate) fn dead_holders(&self, holding: Holding, vigil: &mut Vigil) -> Vec<Holder> {
        let mut holders = self.holders(holding, vigil);
        holders.retain(|h| h.liveness == crate::Liveness::Dead);
        holders
    }

    /// Takes a dead process's hold away (one caller of several succeeds).
    pub(crate) fn take_hold(&self, holder: &Holder) -> bool {
        self.view.as_ref().is_some_and(|v| v.take(holder))
    }
}

/// Blocks until `attempt` yields, waiting on `word` (which the attempt's success depends on):
/// every [`OWNER_CHECK_INTERVAL`] it also runs `check` (a search for a dead holder), which may
/// yield too. `Ok(None)` once `timeout` has passed (`None`: never).
pub(crate) fn block<'w, R>(
    bell: &Bell,
    word: impl Into<Futex<'w>>,
    timeout: Option<Duration>,
    mut attempt: impl FnMut() -> Result<Option<R>>,
    mut check: impl FnMut() -> Result<Option<R>>,
) -> Result<Option<R>> {
    let word = word.into();
    let watch = Watch {
        bell,
        word,
        at_rest: &|_| true,
        rescue: None,
    };
    let forever = Duration::from_secs(60 * 60 * 24 * 365);
    let mut waiter = Waiter::new(timeout.unwrap_or(forever));
    let mut next_check = Instant::now().checked_add(OWNER_CHECK_INTERVAL);
    loop {
        // SeqCst: the value the waiter compares with after registering (`wait` module docs).
        let observed = word.load(Ordering::SeqCst);
        if let Some(done) = attempt()? {
            return Ok(Some(done));
        }
        let now = Instant::now();
        if next_check.is_none_or(|at| now >= at) {
            if let Some(done) = check()? {
                return Ok(Some(done));
            }
            next_check = now.checked_add(OWNER_CHECK_INTERVAL);
        }
        if !waiter.pause(&watch, observed) {
            if timeout.is_some() {
                return Ok(None);
            }
            waiter = Waiter::new(forever);
        }
    }
}

/// The entry size a kind's single part must have.
pub(crate) fn exact_size(part: &Region<'_>, size: usize) -> std::result::Result<(), Invalid> {
    if part.len() == size {
        Ok(())
    } else {
        Err(Invalid::Corrupt(format!(
            "the entry has `{}` bytes, not `{size}`",
            part.len()
        )))
    }
}

/// Field `offset` of a part as an `i32` (a part whose size was checked).
pub(crate) fn field(part: &Region<'_>, offset: usize) -> std::result::Result<i32, Invalid> {
    // Acquire: a snapshot of a word other processes change; later reads are at least as new.
    part.load_u32(offset, Ordering::Acquire)
        .map(|w| w as i32)
        .map_err(|_| Invalid::Corrupt(format!("the entry has no word at `{offset}`")))
}
