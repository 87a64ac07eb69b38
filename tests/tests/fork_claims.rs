//! A process forked from one with queue handles inherits the handles, not the parent's
//! process record: its claims must not land in the parent's lanes, where they would be judged
//! by the parent's liveness (and undone under the child once the parent exits). Its own test
//! binary with a single test, so that no other test thread is running when it forks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zeroipc::{Liveness, Queue, Segment, StructureKind};
use zeroipc_tests::guarded;

#[test]
fn a_forked_child_writes_no_claim_into_its_parents_record() {
    let (name, _g) = guarded("fork-claims");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 8).unwrap();
    q.push(1).unwrap();
    // SAFETY:
    // - this test binary runs this single test; the child only uses the queue and `_exit`s
    //   (or is killed) without unwinding into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // Dies holding position 1, through the handle it inherited.
        zeroipc::__failpoints::arm("queue.push.claimed");
        let _ = q.push(2);
        // SAFETY: `_exit` is always safe to call; it skips the parent's atexit handlers.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out pointer.
    let waited = unsafe { libc::waitpid(pid, &raw mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
        "the child was to die at the crash point: {status}"
    );
    // The stuck position is nobody's recorded claim: not the parent's, which runs.
    let report = seg.check_structure("q", StructureKind::Queue).unwrap();
    assert_eq!(report.defects.len(), 1, "{report:?}");
    assert_eq!(report.defects[0].slot, Some(1));
    assert_eq!(report.defects[0].holder, None, "{report:?}");
    let me = std::process::id();
    assert!(
        seg.peers()
            .iter()
            .all(|p| p.pid == me && p.liveness == Liveness::Alive),
        "{:?}",
        seg.peers()
    );
    // So recovery leaves it alone, as a position held by a peer that records nothing.
    assert_eq!(q.pop().unwrap(), Some(1));
    let r = q.recover().unwrap();
    assert_eq!((r.undone, r.lost, r.pending), (0, 0, 0), "{r:?}");
    assert_eq!(q.pop().unwrap(), None, "still stuck");
}
