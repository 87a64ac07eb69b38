//! Lock guards copied into a forked child (the child inherits its parent's stack) must not
//! unlock the parent's locks when the child drops them. Its own test binary with a single test, so
//! that no other test thread is running when it forks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use zeroipc::{Mutex, RwLock, Segment};
use zeroipc_tests::guarded;

#[test]
fn guards_inherited_through_fork_leave_the_parents_locks_held() {
    let (name, _g) = guarded("forkguard");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let m = Mutex::create(&seg, "m").unwrap();
    let guard = m.lock().unwrap();
    assert!(guard.is_recorded());
    let (r, w) = (
        RwLock::create(&seg, "r").unwrap(),
        RwLock::create(&seg, "w").unwrap(),
    );
    let (read, write) = (r.read().unwrap(), w.write().unwrap());
    // SAFETY:
    // - this test binary runs this single test; the child only uses the segment API and
    //   `_exit`s without unwinding into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // The child's copy of the guard, dropped: the lock must stay the parent's.
        drop(guard);
        drop(read);
        drop(write);
        let code = if !m.is_locked() {
            1
        } else if m.try_lock().unwrap().is_some() {
            2
        } else if r.readers() != 1 || !w.writer_active() {
            3
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
        "1: the child's drop unlocked the parent's mutex; 2: the child could lock it; 3: it \
         released the parent's read or write lock"
    );
    assert!(m.is_locked());
    assert_eq!(m.holder().map(|p| p.pid), Some(std::process::id()));
    guard.unlock().unwrap();
    assert!(!m.is_locked());
    assert_eq!((r.readers(), w.writer_active()), (1, true));
    drop((read, write));
    assert_eq!((r.readers(), w.writer_active()), (0, false));
    drop(m.lock_timeout(Duration::from_secs(1)).unwrap());
}
