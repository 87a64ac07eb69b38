//! The synchronisation algorithms of FORMAT.md §5 on their shared words: the semaphore (and
//! the mutex, a semaphore of one permit), the latch, the once flag and the barrier. Each is the
//! reference implementation's algorithm, with the same words changed in the same order, so that
//! a C++, Python or Go process sharing the structure follows it with us. Where the reference is
//! racy (a barrier waiter that gives up) this one is not; it changes no word the reference
//! would not change. Blocking is the caller's: these functions only try.
//!
//! Counters are `i32` stored as their bits. Every CAS loop is bounded by [`MAX_RETRIES`]: a
//! process rewriting the words in a loop cannot keep a caller spinning for ever.

use std::sync::atomic::Ordering;

use super::{MAX_RETRIES, Word};

/// A state that peers following the algorithm cannot produce, or a word others keep changing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Broken {
    /// The count is negative.
    Negative(i32),
    /// A state word holds a value outside the algorithm's states.
    State(u32),
    /// More participants arrived than the barrier has.
    Overrun(i32),
    /// [`MAX_RETRIES`] attempts in a row lost their CAS.
    Livelock,
}

/// Semaphore (§5.1): `count` of free permits, at most `max` (0 = unbounded).
pub(crate) mod semaphore {
    use super::{Broken, MAX_RETRIES, Ordering, Word};

    /// Takes a permit if one is free: whether it did.
    #[inline]
    pub(crate) fn try_acquire<W: Word>(count: &W) -> Result<bool, Broken> {
        // Acquire, load and CAS: a permit taken sees what its releaser did before releasing.
        let mut c = count.load(Ordering::Acquire) as i32;
        for _ in 0..MAX_RETRIES {
            if c < 0 {
                return Err(Broken::Negative(c));
            }
            if c == 0 {
                return Ok(false);
            }
            match count.cas_weak(
                c as u32,
                (c - 1) as u32,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(true),
                Err(now) => c = now as i32,
            }
        }
        Err(Broken::Livelock)
    }

    /// Why a permit was not given back.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Refused {
        /// `count` is already `max`.
        Full(i32),
        /// The words are broken.
        Broken(Broken),
    }

    /// Gives a permit back, unless `max > 0` and `count >= max`.
    #[inline]
    pub(crate) fn release<W: Word>(count: &W, max: i32) -> Result<(), Refused> {
        release_n(count, max, 1)
    }

    /// Gives `n` (> 0) permits back at once: all of them, or none when they would pass `max`
    /// (or `i32::MAX`).
    #[inline]
    pub(crate) fn release_n<W: Word>(count: &W, max: i32, n: i32) -> Result<(), Refused> {
        // Relaxed load: the CAS below orders what matters.
        let mut c = count.load(Ordering::Relaxed) as i32;
        for _ in 0..MAX_RETRIES {
            if c < 0 {
                return Err(Refused::Broken(Broken::Negative(c)));
            }
            let Some(next) = c.checked_add(n).filter(|&next| max <= 0 || next <= max) else {
                return Err(Refused::Full(c));
            };
            // SeqCst: a release (what the holder did is seen by the next taker) and the
            // releaser's half of the wake pairing (`wait` module docs).
            match count.cas_weak(c as u32, next as u32, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(now) => c = now as i32,
            }
        }
        Err(Refused::Broken(Broken::Livelock))
    }
}

/// Latch (§5.4): `count` down to 0, where it stays.
pub(crate) mod latch {
    use super::{Broken, MAX_RETRIES, Ordering, Word};

    /// Counts down by `n` (> 0), saturating at 0: whether this call reached 0.
    #[inline]
    pub(crate) fn count_down<W: Word>(count: &W, n: i32) -> Result<bool, Broken> {
        // Acquire, as the reference; the CAS is SeqCst: a release (the waiters that see 0 see
        // what every counter did before) and the releaser's half of the wake pairing.
        let mut c = count.load(Ordering::Acquire) as i32;
        for _ in 0..MAX_RETRIES {
            if c <= 0 {
                return Ok(false);
            }
            let next = c.saturating_sub(n).max(0);
            match count.cas_weak(c as u32, next as u32, Ordering::SeqCst, Ordering::Acquire) {
                Ok(_) => return Ok(next == 0),
                Err(now) => c = now as i32,
            }
        }
        Err(Broken::Livelock)
    }

    /// Whether the latch is open (`count <= 0`, as the reference's `wait` tests it).
    #[inline]
    pub(crate) fn open<W: Word>(count: &W) -> bool {
        // Acquire: pairs with the count-down that reached 0.
        count.load(Ordering::Acquire) as i32 <= 0
    }
}

/// Once (§5.5): one state word, PENDING → EXECUTING → DONE.
pub(crate) mod once {
    use super::{Broken, Ordering, Word};

    /// Not run yet.
    pub(crate) const PENDING: u32 = 0;
    /// Being run by the caller that moved it here.
    pub(crate) const EXECUTING: u32 = 1;
    /// Run.
    pub(crate) const DONE: u32 = 2;

    /// Where a call stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Begin {
        /// Already run.
        Done,
        /// This caller moved PENDING to EXECUTING: it runs the function, then [`finish`].
        Run,
        /// Another caller runs it.
        Running,
    }

    /// Tries to become the one that runs the function.
    #[inline]
    pub(crate) fn begin<W: Word>(state: &W) -> Result<Begin, Broken> {
        // Acquire: a caller that finds DONE sees what the function did.
        match state.load(Ordering::Acquire) {
            DONE => return Ok(Begin::Done),
            EXECUTING => return Ok(Begin::Running),
            PENDING => {}
            other => return Err(Broken::State(other)),
        }
        // AcqRel / Acquire, as the reference.
        match state.cas(PENDING, EXECUTING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(Begin::Run),
            Err(DONE) => Ok(Begin::Done),
            Err(EXECUTING) => Ok(Begin::Running),
            Err(other) => Err(Broken::State(other)),
        }
    }

    /// Marks the function run (also when it panicked, as the reference does when it throws).
    #[inline]
    pub(crate) fn finish<W: Word>(state: &W) {
        // SeqCst swap: a release (callers that find DONE see what the function did) and the
        // releaser's half of the wake pairing.
        state.swap(DONE, Ordering::SeqCst);
    }
}

/// Barrier (§5.3): `arrived` of `participants`, and a `generation` bumped by the last one.
pub(crate) mod barrier {
    use super::{Broken, MAX_RETRIES, Ordering, Word};

    /// What an arrival was.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Arrival {
        /// The last of its generation: it has released the others.
        Last,
        /// Not the last: wait until `generation` is no longer the value given.
        Wait(u32),
    }

    /// Arrives at the barrier.
    #[inline]
    pub(crate) fn arrive<W: Word>(
        arrived: &W,
        generation: &W,
        participants: i32,
    ) -> Result<Arrival, Broken> {
        // Acquire, as the reference: read before arriving, so that the generation this arrival
        // belongs to cannot be missed.
        let g = generation.load(Ordering::Acquire);
        // AcqRel: the last arriver sees what every participant did before arriving.
        let a = (arrived.fetch_add(1, Ordering::AcqRel) as i32).wrapping_add(1);
        if a == participants {
            release(arrived, generation);
            return Ok(Arrival::Last);
        }
        if a > participants || a <= 0 {
            // More arrivals than participants (or a count that wrapped): take ours back, as
            // if it never happened, and report; never below 0 (a reset may have landed since).
            let mut now = arrived.load(Ordering::Acquire);
            for _ in 0..MAX_RETRIES {
                if now as i32 <= 0 {
                    break;
                }
                match arrived.cas_weak(
                    now,
                    now.wrapping_sub(1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break,
                    Err(seen) => now = seen,
                }
            }
            return Err(Broken::Overrun(a));
        }
        Ok(Arrival::Wait(g))
    }

    /// The last arriver's step: reset `arrived`, then bump `generation`.
    fn release<W: Word>(arrived: &W, generation: &W) {
        // Release (the reference: Relaxed, ordered before the generation's release below):
        // also a withdrawal that reads the reset sees what this generation's arrivals did.
        arrived.store(0, Ordering::Release);
        // SeqCst: a release (waiters that see the new generation see the reset and what every
        // participant did) and the releaser's half of the wake pairing.
        generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether the generation that an arrival waited for (`g`) is over.
    #[inline]
    pub(crate) fn passed<W: Word>(generation: &W, g: u32) -> bool {
        // Acquire: pairs with the last arriver's bump.
        generation.load(Ordering::Acquire) != g
    }

    /// How a withdrawal ended.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Withdrawal {
        /// The arrival was taken back: the generation goes on without it.
        Left,
        /// Too late: the generation completed with it (the caller was released).
        Released,
        /// Too late, and the last arriver is between its two steps (it has counted every
        /// arrival but not yet bumped `generation`): the caller is released once
        /// [`passed`]`(generation, g)`, and must not arrive again before (it would count
        /// itself into the next generation while waiting for this one to end).
        Completing,
    }

    /// Takes back an arrival made in generation `g` that gave up waiting.
    ///
    /// The reference decrements `arrived` blindly, which races with the last arrival (it may
    /// take back an arrival of the next generation, or make `arrived` negative after the
    /// reset). Here the arrival is taken back only while `arrived > 0` and the generation is
    /// still `g`; if a CAS of ours lands in the next generation after all (the generation
    /// changed between its check and the CAS, and the next generation's arrivals restored the
    /// value), it is made good by arriving again, which releases that generation if it
    /// completes it.
    pub(crate) fn withdraw<W: Word>(
        arrived: &W,
        generation: &W,
        g: u32,
        participants: i32,
    ) -> Result<Withdrawal, Broken> {
        for _ in 0..MAX_RETRIES {
            if passed(generation, g) {
                return Ok(Withdrawal::Released);
            }
            // Acquire: as in `arrive`.
            let a = arrived.load(Ordering::Acquire) as i32;
            if a <= 0 || a >= participants {
                // Every participant has arrived (the last one is about to reset `arrived`) or
                // has reset it: the generation completed with this arrival, but is released
                // only once the generation moves.
                return Ok(if passed(generation, g) {
                    Withdrawal::Released
                } else {
                    Withdrawal::Completing
                });
            }
            if arrived
                .cas(
                    a as u32,
                    (a - 1) as u32,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
            {
                continue;
            }
            if !passed(generation, g) {
                return Ok(Withdrawal::Left);
            }
            // Our CAS took an arrival of the next generation: give it back.
            let b = (arrived.fetch_add(1, Ordering::AcqRel) as i32).wrapping_add(1);
            if b == participants {
                release(arrived, generation);
            }
            return Ok(Withdrawal::Released);
        }
        Err(Broken::Livelock)
    }
}
