//! A mutex guard copied into a forked child (the child inherits its parent's stack) must not
//! unlock the parent's lock when the child drops it. Its own test binary with a single test, so
//! that no other test thread is running when it forks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use zeroipc::{Mutex, Segment};
use zeroipc_tests::guarded;

#[test]
fn a_guard_inherited_through_fork_leaves_the_parents_lock_locked() {
    let (name, _g) = guarded("forkguard");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let m = Mutex::create(&seg, "m").unwrap();
    let guard = m.lock().unwrap();
    assert!(guard.is_recorded());
    // SAFETY:
    // - this test binary runs this single test; the child only uses the segment API and
    //   `_exit`s without unwinding into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // The child's copy of the guard, dropped: the lock must stay the parent's.
        drop(guard);
        let code = if !m.is_locked() {
            1
        } else if m.try_lock().unwrap().is_some() {
            2
        } else {
            0
        };
        // SAFETY: `_exit` is always safe to call; it skips the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out pointer.
    let waited = unsafe { libc::waitpid(pid, &raw mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status), "child died: {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "1: the child's drop unlocked the parent's lock; 2: the child could lock it"
    );
    assert!(m.is_locked());
    assert_eq!(m.holder().map(|p| p.pid), Some(std::process::id()));
    guard.unlock().unwrap();
    assert!(!m.is_locked());
    drop(m.lock_timeout(Duration::from_secs(1)).unwrap());
}
