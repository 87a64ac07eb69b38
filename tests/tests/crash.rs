//! Deterministic crash points (TESTPLAN D2, issue 10): a child process is killed (`SIGKILL`,
//! from the `failpoints` feature) at each named step of push, pop, their batch forms, and
//! table allocation. For each point the test shows what `check_structure` reports (the slot in
//! flight and the dead process that holds it), that recovery restores service, and that at
//! most the one item in flight is lost while every other is delivered exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::{Duration, Instant};

use zeroipc::{Array, Liveness, Queue, Segment, Stack, StructureKind};
use zeroipc_tests::guarded;

const CHILD: &str = env!("CARGO_BIN_EXE_zeroipc-test-child");

/// Runs the child role `args` with the failpoint `point` armed, and checks that it died there.
fn crash_at(point: &str, args: &[&str]) -> u32 {
    let child = Command::new(CHILD)
        .args(args)
        .env("ZEROIPC_FAILPOINT", point)
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "{point}: the child was to die there: {out:?}"
    );
    pid
}

/// The in-flight defects of `name` and their holders.
fn in_flight(seg: &Segment, name: &str, kind: StructureKind) -> Vec<(Option<u64>, Option<u32>)> {
    let report = seg.check_structure(name, kind).unwrap();
    assert!(
        report.defects.iter().all(|d| d.in_flight),
        "only states a crash leaves: {report:?}"
    );
    report
        .defects
        .iter()
        .map(|d| {
            (
                d.slot,
                d.holder
                    .filter(|p| p.liveness == Liveness::Dead)
                    .map(|p| p.pid),
            )
        })
        .collect()
}

fn drain_queue(q: &Queue<u64>) -> Vec<u64> {
    let mut out = Vec::new();
    while let Some(v) = q.pop().unwrap() {
        out.push(v);
    }
    out
}

#[test]
fn a_producer_killed_after_claiming_costs_its_one_item() {
    for point in ["queue.push.claimed:2", "queue.push.written:2"] {
        let (name, _g) = guarded("crash-push");
        let seg = Segment::create(&name, 1 << 16).unwrap();
        let q = Queue::<u64>::create(&seg, "q", 8).unwrap();
        // The child pushes 10, then dies inside the push of 12 (position 1).
        let pid = crash_at(point, &["ops", &name, "queue", "q", "push", "10", "5"]);
        assert_eq!(
            in_flight(&seg, "q", StructureKind::Queue),
            [(Some(1), Some(pid))],
            "{point}"
        );
        // Consumers get 10, then the dead position stops them.
        assert_eq!(q.pop().unwrap(), Some(10));
        assert_eq!(
            q.pop().unwrap(),
            None,
            "{point}: stuck behind the dead claim"
        );
        // Later items are not lost: the recovery skips the dead position.
        q.push(20).unwrap();
        q.push(21).unwrap();
        let r = q.recover().unwrap();
        assert_eq!((r.undone, r.lost, r.pending), (1, 1, 0), "{point}: {r:?}");
        assert_eq!(drain_queue(&q), [20, 21], "{point}");
        assert!(
            seg.check_structure("q", StructureKind::Queue)
                .unwrap()
                .is_sound()
        );
        // Full service: every slot cycles again.
        for v in 0..32 {
            q.push(v).unwrap();
            assert_eq!(q.pop().unwrap(), Some(v));
        }
        assert!(
            seg.peers().iter().all(|p| p.liveness != Liveness::Dead),
            "{point}: the dead record goes with its last claim: {:?}",
            seg.peers()
        );
    }
}

#[test]
fn a_blocked_consumer_skips_a_dead_producers_claim_by_itself() {
    let (name, _g) = guarded("crash-auto-pop");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 8).unwrap();
    crash_at(
        "queue.push.claimed",
        &["ops", &name, "queue", "q", "push", "10", "1"],
    );
    q.push(11).unwrap();
    let started = Instant::now();
    assert_eq!(q.pop_timeout(Duration::from_secs(5)).unwrap(), 11);
    let waited = started.elapsed();
    assert!(
        waited >= zeroipc::DEFAULT_STALL_TIMEOUT && waited < Duration::from_secs(2),
        "skipped after the stall timeout: {waited:?}"
    );
    assert!(
        seg.check_structure("q", StructureKind::Queue)
            .unwrap()
            .is_sound()
    );
}

#[test]
fn a_producer_killed_before_its_claim_costs_nothing() {
    let (name, _g) = guarded("crash-intent");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 8).unwrap();
    crash_at(
        "queue.push.intent:2",
        &["ops", &name, "queue", "q", "push", "10", "5"],
    );
    assert!(in_flight(&seg, "q", StructureKind::Queue).is_empty());
    let r = q.recover().unwrap();
    assert_eq!((r.undone, r.lost, r.pending), (0, 0, 0), "{r:?}");
    assert_eq!(drain_queue(&q), [10]);
    assert!(
        seg.peers().iter().all(|p| p.liveness != Liveness::Dead),
        "recovery frees the dead record: {:?}",
        seg.peers()
    );
}

#[test]
fn a_consumer_killed_after_claiming_costs_its_one_item() {
    for point in ["queue.pop.claimed:2", "queue.pop.read:2"] {
        let (name, _g) = guarded("crash-pop");
        let seg = Segment::create(&name, 1 << 16).unwrap();
        let q = Queue::<u64>::create(&seg, "q", 8).unwrap();
        for v in 1..=4 {
            q.push(v).unwrap();
        }
        // The child pops 1, then dies inside the pop of 2 (position 1).
        let pid = crash_at(point, &["ops", &name, "queue", "q", "pop", "0", "3"]);
        assert_eq!(
            in_flight(&seg, "q", StructureKind::Queue),
            [(Some(1), Some(pid))],
            "{point}"
        );
        assert_eq!(drain_queue(&q), [3, 4], "{point}: consumers go on");
        let r = q.recover().unwrap();
        assert_eq!((r.undone, r.lost, r.pending), (1, 1, 0), "{point}: {r:?}");
        // Producers use every slot again, the freed one included.
        let items: Vec<u64> = (100..108).collect();
        assert_eq!(q.push_slice(&items).unwrap(), 8, "{point}");
        assert_eq!(drain_queue(&q), items, "{point}");
        assert!(
            seg.check_structure("q", StructureKind::Queue)
                .unwrap()
                .is_sound()
        );
    }
}

#[test]
fn a_blocked_producer_frees_a_dead_consumers_slot_by_itself() {
    let (name, _g) = guarded("crash-auto-push");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 4).unwrap();
    for v in 1..=4 {
        q.push(v).unwrap();
    }
    crash_at(
        "queue.pop.claimed",
        &["ops", &name, "queue", "q", "pop", "0", "1"],
    );
    // Full but for the dead consumer's slot: the push waits, frees it and goes in.
    q.push_timeout(5, Duration::from_secs(5)).unwrap();
    assert_eq!(
        drain_queue(&q),
        [2, 3, 4, 5],
        "1 was lost with its consumer"
    );
}

#[test]
fn batch_claims_of_a_dead_process_are_undone_position_by_position() {
    let (name, _g) = guarded("crash-batch");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 8).unwrap();
    // Pushes 10, 11, then dies holding positions 2 and 3 for 12, 13.
    let pid = crash_at(
        "queue.push_batch.claimed:2",
        &["ops", &name, "queue", "q", "push-batch", "10", "3"],
    );
    assert_eq!(
        in_flight(&seg, "q", StructureKind::Queue),
        [(Some(2), Some(pid)), (Some(3), Some(pid))]
    );
    q.push(30).unwrap();
    assert_eq!(drain_queue(&q), [10, 11]);
    let r = q.recover().unwrap();
    assert_eq!((r.undone, r.lost, r.pending), (2, 2, 0), "{r:?}");
    assert_eq!(drain_queue(&q), [30]);

    // A consumer batch: takes 40, 41, dies holding 42, 43.
    q.push_slice(&[40, 41, 42, 43, 44]).unwrap();
    crash_at(
        "queue.pop_batch.claimed:2",
        &["ops", &name, "queue", "q", "pop-batch", "0", "3"],
    );
    assert_eq!(drain_queue(&q), [44]);
    let r = q.recover().unwrap();
    assert_eq!((r.undone, r.lost, r.pending), (2, 2, 0), "{r:?}");
    let items: Vec<u64> = (0..8).collect();
    assert_eq!(q.push_slice(&items).unwrap(), 8);
    assert_eq!(drain_queue(&q), items);
}

#[test]
fn a_pusher_killed_inside_a_stack_push_costs_its_one_item() {
    for point in ["stack.push.claimed:3", "stack.push.writing:3"] {
        let (name, _g) = guarded("crash-spush");
        let seg = Segment::create(&name, 1 << 16).unwrap();
        let s = Stack::<u64>::create(&seg, "s", 8).unwrap();
        // Pushes 10, 11, dies holding slot 2 for 12.
        let pid = crash_at(point, &["ops", &name, "stack", "s", "push", "10", "4"]);
        assert_eq!(
            in_flight(&seg, "s", StructureKind::Stack),
            [(Some(2), Some(pid))],
            "{point}"
        );
        // A pop reaches the dead slot, waits the stall timeout, gives it up and takes the
        // items below it.
        assert_eq!(s.pop().unwrap(), Some(11), "{point}");
        assert_eq!(s.pop().unwrap(), Some(10), "{point}");
        assert_eq!(s.pop().unwrap(), None, "{point}");
        assert!(
            seg.check_structure("s", StructureKind::Stack)
                .unwrap()
                .is_sound()
        );
        for v in 0..8 {
            s.push(v).unwrap();
        }
        for v in (0..8).rev() {
            assert_eq!(s.pop().unwrap(), Some(v), "{point}");
        }
    }
}

#[test]
fn a_popper_killed_inside_a_stack_pop_costs_its_one_item() {
    for point in ["stack.pop.claimed:2", "stack.pop.reading:2"] {
        let (name, _g) = guarded("crash-spop");
        let seg = Segment::create(&name, 1 << 16).unwrap();
        let s = Stack::<u64>::create(&seg, "s", 8).unwrap();
        for v in 1..=3 {
            s.push(v).unwrap();
        }
        // Pops 3, dies holding slot 1 (item 2).
        let pid = crash_at(point, &["ops", &name, "stack", "s", "pop", "0", "2"]);
        assert_eq!(
            in_flight(&seg, "s", StructureKind::Stack),
            [(Some(1), Some(pid))],
            "{point}"
        );
        assert_eq!(s.pop().unwrap(), Some(1), "{point}");
        // A push reaches the dead slot, waits the stall timeout and frees it.
        s.push(5).unwrap();
        s.push(6).unwrap();
        assert_eq!(s.pop().unwrap(), Some(6), "{point}");
        assert_eq!(s.pop().unwrap(), Some(5), "{point}");
        assert!(
            seg.check_structure("s", StructureKind::Stack)
                .unwrap()
                .is_sound()
        );
    }
}

#[test]
fn stack_recover_frees_a_dead_poppers_slot_without_waiting() {
    let (name, _g) = guarded("crash-srecover");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let s = Stack::<u64>::create(&seg, "s", 8).unwrap();
    for v in 1..=3 {
        s.push(v).unwrap();
    }
    crash_at(
        "stack.pop.reading",
        &["ops", &name, "stack", "s", "pop", "0", "1"],
    );
    let r = s.recover().unwrap();
    assert_eq!((r.undone, r.lost, r.pending), (1, 1, 0), "{r:?}");
    let started = Instant::now();
    s.push(7).unwrap();
    assert!(
        started.elapsed() < zeroipc::DEFAULT_STALL_TIMEOUT,
        "no wait"
    );
    assert_eq!(s.pop().unwrap(), Some(7));
    assert_eq!(s.pop().unwrap(), Some(2));
}

#[test]
fn a_process_killed_inside_a_table_update_leaves_the_table_as_it_was() {
    for point in [
        "table.add.initialised",
        "table.add.entries",
        "table.add.next_offset",
    ] {
        let (name, _g) = guarded("crash-table");
        let seg = Segment::create(&name, 1 << 16).unwrap();
        let before = seg.entries().unwrap();
        crash_at(point, &["create-array", &name, "a"]);
        assert_eq!(seg.entries().unwrap(), before, "{point}");
        assert!(seg.entry("a").unwrap().is_none(), "{point}");
        // The table lock died with the process; the next creation goes ahead.
        let a = Array::<u64>::create(&seg, "a", 4).unwrap();
        a.set(0, 7).unwrap();
        let report = seg.check();
        assert!(report.is_sound(), "{point}: {report:?}");
    }
}

#[test]
fn a_stale_claim_of_a_dead_popper_never_frees_a_live_item() {
    // A popper that died between its intent and its claim (or just after it released the
    // slot) leaves a claim on a slot that now holds a live item at or below `top`.
    let (name, _g) = guarded("crash-stale");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let s = Stack::<u64>::create(&seg, "s", 8).unwrap();
    s.push(1).unwrap();
    s.push(2).unwrap();
    let offset = seg.entry("s").unwrap().unwrap().offset;
    for (held, slot) in [(true, 1), (false, 0)] {
        zeroipc_tests::plant_dead_record(&name, &seg, 7);
        let claim = zeroipc_tests::PlantedClaim {
            offset,
            stack: true,
            pop: true,
            held,
            pos: slot,
            count: 1,
        };
        zeroipc_tests::plant_claim(&name, &seg, 7, 0, claim);
        let r = s.recover().unwrap();
        assert_eq!((r.undone, r.lost), (0, 0), "slot {slot}: {r:?}");
    }
    assert_eq!(s.pop().unwrap(), Some(2));
    assert_eq!(s.pop().unwrap(), Some(1));
    // With the items gone the claim is stale on an empty slot: the next recovery clears it and
    // frees the dead record.
    let r = s.recover().unwrap();
    assert_eq!((r.undone, r.pending), (0, 0), "{r:?}");
    assert!(
        seg.peers().iter().all(|p| p.liveness != Liveness::Dead),
        "{:?}",
        seg.peers()
    );
}
