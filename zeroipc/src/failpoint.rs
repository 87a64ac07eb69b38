//! Named crash points, for the crash tests (feature `failpoints`, never in a release build).
//!
//! A process whose environment names a point, `ZEROIPC_FAILPOINT=NAME` or `NAME:N` (the N-th
//! time it is reached, from 1), sends itself `SIGKILL` there: exactly the death of a process
//! killed at that step, with nothing unwound or flushed. Without the feature every point
//! compiles to nothing.

/// Dies here if this point is armed (see the module docs).
#[cfg(feature = "failpoints")]
pub(crate) fn hit(name: &'static str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var("ZEROIPC_FAILPOINT").ok()?;
        Some(match spec.split_once(':') {
            Some((point, n)) => (point.to_owned(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        })
    });
    if let Some((point, n)) = armed
        && point == name
        // Relaxed: a counter of this process's hits.
        && HITS.fetch_add(1, Ordering::Relaxed).saturating_add(1) >= *n
    {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}

/// Without the feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn hit(_name: &'static str) {}
