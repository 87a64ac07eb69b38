//! Named crash points, for the crash tests (feature `failpoints`, never in a release build).
//!
//! A process whose environment names a point, `ZEROIPC_FAILPOINT=NAME` or `NAME:N` (the N-th
//! time it is reached, from 1), sends itself `SIGKILL` there: exactly the death of a process
//! killed at that step, with nothing unwound or flushed. [`arm`] does the same from code (a
//! forked child, whose environment was read before the fork). Without the feature every point
//! compiles to nothing.

#[cfg(feature = "failpoints")]
mod armed {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, OnceLock, PoisonError};

    /// The armed point, the hit that kills, and the hits so far.
    type Armed = Option<(String, u64, u64)>;

    /// Whether a point may be armed: the fast path of every point is one load of it.
    static ANY: AtomicBool = AtomicBool::new(true);

    fn state() -> &'static Mutex<Armed> {
        static STATE: OnceLock<Mutex<Armed>> = OnceLock::new();
        STATE.get_or_init(|| {
            let armed = std::env::var("ZEROIPC_FAILPOINT")
                .ok()
                .map(|spec| parse(&spec));
            // Relaxed: a hint for this process's own points.
            ANY.store(armed.is_some(), Ordering::Relaxed);
            Mutex::new(armed)
        })
    }

    fn parse(spec: &str) -> (String, u64, u64) {
        match spec.split_once(':') {
            Some((point, n)) => (point.to_owned(), n.parse().unwrap_or(1), 0),
            None => (spec.to_owned(), 1, 0),
        }
    }

    pub(crate) fn hit(name: &'static str) {
        // Relaxed: see `ANY`.
        if !ANY.load(Ordering::Relaxed) {
            return;
        }
        let mut armed = state().lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((point, n, hits)) = armed.as_mut()
            && point == name
        {
            *hits = hits.saturating_add(1);
            if *hits >= *n {
                let _ = rustix::process::kill_process(
                    rustix::process::getpid(),
                    rustix::process::Signal::KILL,
                );
            }
        }
    }

    pub(crate) fn arm(spec: &str) {
        let mut armed = state().lock().unwrap_or_else(PoisonError::into_inner);
        *armed = Some(parse(spec));
        ANY.store(true, Ordering::Relaxed);
    }
}

/// Dies here if this point is armed (see the module docs).
#[cfg(feature = "failpoints")]
pub(crate) fn hit(name: &'static str) {
    armed::hit(name);
}

/// Arms the point `spec` (`NAME` or `NAME:N`) in this process.
#[cfg(feature = "failpoints")]
pub(crate) fn arm(spec: &str) {
    armed::arm(spec);
}

/// Without the feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn hit(_name: &'static str) {}
