//! Table creation from a parent and a forked child that share one `Segment` handle (and so one
//! open file description): the table lock must still exclude them. This is its own test binary
//! with a single test, so that no other test thread is running when it forks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zeroipc::{Array, Error, SegmentOptions};
use zeroipc_tests::guarded;

const NAMES: usize = 300;

/// Creates `NAMES` entries `n0..`, tolerating the ones the other process made first; returns how
/// many this process created.
fn create_all(seg: &zeroipc::Segment) -> usize {
    let mut created = 0;
    for i in 0..NAMES {
        match Array::<u32>::create(seg, &format!("n{i}"), 1 + i % 3) {
            Ok(a) => {
                a.fill(i as u32).unwrap();
                created += 1;
            }
            Err(Error::DuplicateEntry { .. }) => {}
            Err(e) => panic!("create n{i}: {e}"),
        }
    }
    created
}

#[test]
fn forked_creators_sharing_a_handle_keep_the_table_sound() {
    for round in 0..10 {
        let (name, _g) = guarded("fork");
        let seg = SegmentOptions::new()
            .max_entries(1000)
            .create(&name, 1 << 20)
            .unwrap();
        // SAFETY:
        // - this test binary runs this single test; the child only uses the segment API and
        //   `_exit`s without unwinding into the harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let created = create_all(&seg);
            // SAFETY: `_exit` is always safe to call; it skips the parent's atexit handlers.
            unsafe { libc::_exit(i32::try_from(created).unwrap_or(255).min(255)) };
        }
        let mine = create_all(&seg);
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out pointer.
        let waited = unsafe { libc::waitpid(pid, &raw mut status, 0) };
        assert_eq!(waited, pid);
        assert!(libc::WIFEXITED(status), "child died: {status}");
        let theirs = usize::try_from(libc::WEXITSTATUS(status)).unwrap();
        // The child's count is capped at 255 by the exit status; check totals through the table.
        let entries = seg.entries().unwrap();
        let structures = entries.iter().filter(|e| e.name.starts_with('n'));
        assert_eq!(
            structures.count(),
            NAMES,
            "round {round}: mine {mine}, theirs {theirs}"
        );
        assert!(
            seg.check().is_sound(),
            "round {round}: {:?}",
            seg.check().defects
        );
        if theirs < 255 {
            assert_eq!(
                mine + theirs,
                NAMES,
                "round {round}: a name was created twice"
            );
        }
        for i in 0..NAMES {
            let a = Array::<u32>::open(&seg, &format!("n{i}")).unwrap();
            assert!(
                a.iter().all(|v| v == i as u32),
                "round {round}: n{i} was overwritten"
            );
        }
    }
}
