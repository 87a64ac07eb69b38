//! Waiting for a peer: spin briefly, then yield, then sleep with exponential back-off.
//!
//! The sleeps follow FORMAT.md §3's schedule B1 (1 µs doubling to 1024 µs) so that a waiter
//! notices a change made by any implementation (none of which wakes waiters) within about a
//! millisecond, while an idle waiter costs almost no CPU. A futex-based wait, which our own
//! releases could wake directly, belongs with the synchronisation primitives and will replace the
//! sleeping phase here.

use std::time::{Duration, Instant};

use crate::error::{Error, PushError, Result};

/// Spins before the first yield.
const SPINS: u32 = 64;
/// Yields before the first sleep.
const YIELDS: u32 = 16;
/// The longest sleep.
const MAX_SLEEP: Duration = Duration::from_micros(1024);

/// Back-off state of one waiting operation.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Backoff {
    step: u32,
}

impl Backoff {
    /// A fresh back-off.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Waits a little longer than last time, never past `deadline`. Returns `false` (without
    /// waiting) once the deadline has passed.
    pub(crate) fn snooze(&mut self, deadline: Instant) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        if self.step < SPINS {
            std::hint::spin_loop();
        } else if self.step < SPINS + YIELDS {
            std::thread::yield_now();
        } else {
            let exp = (self.step - SPINS - YIELDS).min(10);
            let sleep = Duration::from_micros(1 << exp)
                .min(MAX_SLEEP)
                .min(deadline - now);
            std::thread::sleep(sleep);
        }
        self.step = self.step.saturating_add(1);
        true
    }
}

/// `now + timeout`, saturating far in the future.
pub(crate) fn deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or(now + Duration::from_secs(60 * 60 * 24 * 365))
}

/// Retries `push` with `value` until it stops reporting full or `timeout` passes, then hands the
/// value back with the error `timed_out` makes. Every other outcome returns at once.
pub(crate) fn push_until<T>(
    timeout: Duration,
    value: T,
    mut push: impl FnMut(T) -> std::result::Result<(), PushError<T>>,
    timed_out: impl FnOnce() -> Error,
) -> std::result::Result<(), PushError<T>> {
    let deadline = deadline(timeout);
    let mut backoff = Backoff::new();
    let mut value = value;
    loop {
        match push(value) {
            Err(PushError::Full(back)) => value = back,
            done => return done,
        }
        if !backoff.snooze(deadline) {
            return Err(PushError::Failed(value, timed_out()));
        }
    }
}

/// Retries `pop` until it yields an item or `timeout` passes (then the error `timed_out`
/// makes). Errors return at once.
pub(crate) fn pop_until<T>(
    timeout: Duration,
    mut pop: impl FnMut() -> Result<Option<T>>,
    timed_out: impl FnOnce() -> Error,
) -> Result<T> {
    let deadline = deadline(timeout);
    let mut backoff = Backoff::new();
    loop {
        if let Some(item) = pop()? {
            return Ok(item);
        }
        if !backoff.snooze(deadline) {
            return Err(timed_out());
        }
    }
}

/// The error of a `*_timeout` call on entry `name` of `segment` that waited `waited`.
pub(crate) fn timeout_error(
    segment: &str,
    name: &str,
    op: &'static str,
    condition: &'static str,
    waited: Duration,
) -> Error {
    Error::Timeout {
        segment: segment.to_owned(),
        name: name.to_owned(),
        op,
        condition,
        waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snooze_respects_the_deadline() {
        let mut b = Backoff::new();
        let deadline = Instant::now() + Duration::from_millis(30);
        let mut rounds = 0;
        while b.snooze(deadline) {
            rounds += 1;
        }
        assert!(Instant::now() >= deadline);
        assert!(Instant::now() < deadline + Duration::from_millis(20));
        assert!(
            rounds > SPINS + YIELDS,
            "it slept in the end: {rounds} rounds"
        );
        assert!(!b.snooze(Instant::now()));
    }
}
