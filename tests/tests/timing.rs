//! Time-bounded behaviour (TESTPLAN D1, E3): timeouts are kept and stalled peers make
//! operations fail within their bound. A test binary of its own, so that no soak test shares the
//! CPUs while these measure time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use zeroipc::{Error, PushError, Queue, Segment, Stack};
use zeroipc_tests::{guarded, poke};

#[test]
fn queue_timeouts_are_kept() {
    let (name, _g) = guarded("qto");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 2).unwrap();
    let t = Instant::now();
    let e = q.pop_timeout(Duration::from_millis(30)).unwrap_err();
    assert!(
        matches!(&e, Error::Timeout { op: "pop_timeout", name, .. } if name == "q"),
        "{e}"
    );
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(30) && waited < Duration::from_millis(40),
        "{waited:?}"
    );
    q.push(1).unwrap();
    q.push(2).unwrap();
    let t = Instant::now();
    match q.push_timeout(3, Duration::from_millis(30)) {
        Err(PushError::Failed(
            3,
            Error::Timeout {
                op: "push_timeout", ..
            },
        )) => {}
        other => panic!("expected a timeout handing back 3, got {other:?}"),
    }
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(30) && waited < Duration::from_millis(40),
        "{waited:?}"
    );
    // A waiting consumer is served as soon as an item arrives.
    std::thread::scope(|s| {
        let (name, q2) = (&name, &q);
        let h = s.spawn(move || {
            let seg = Segment::open(name).unwrap();
            let q = Queue::<u64>::open(&seg, "q").unwrap();
            let _ = q2;
            (0..3)
                .map(|_| q.pop_timeout(Duration::from_secs(5)).unwrap())
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(10));
        q.push_timeout(3, Duration::from_secs(5)).unwrap();
        assert_eq!(h.join().unwrap(), [1, 2, 3]);
    });
}

#[test]
fn d1_a_ghost_queue_slot_never_hangs() {
    let (name, _g) = guarded("d1q");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u32>::create(&seg, "q", 4).unwrap();
    q.push(1).unwrap();
    // A producer claimed position 1 (tail = 2) and died before publishing seq.
    let entry = seg.entry("q").unwrap().unwrap();
    poke(&name, entry.offset + 4, &2u32.to_le_bytes());
    assert_eq!(q.pop().unwrap(), Some(1));
    let t = Instant::now();
    assert_eq!(
        q.pop().unwrap(),
        None,
        "the unpublished slot reads as empty"
    );
    assert!(matches!(
        q.pop_timeout(Duration::from_millis(20)),
        Err(Error::Timeout { .. })
    ));
    assert!(t.elapsed() < Duration::from_millis(50));
    assert_eq!(q.len(), 1, "len shows the stuck position");
    // Producers fill the other slots, then see the queue as full; nothing spins.
    let mut pushed = 0;
    while q.push(7).is_ok() {
        pushed += 1;
    }
    assert_eq!(pushed, 3);
    // Repair: the "dead" producer's slot gets published; everything flows again.
    poke(&name, entry.offset + 16 + 16 + 4, &2u32.to_le_bytes());
    assert_eq!(q.pop().unwrap(), Some(0), "the ghost slot's (zeroed) bytes");
    assert_eq!(
        (
            q.pop().unwrap(),
            q.pop().unwrap(),
            q.pop().unwrap(),
            q.pop().unwrap()
        ),
        (Some(7), Some(7), Some(7), None)
    );
}

#[test]
fn d1_a_stuck_stack_slot_fails_within_50_ms() {
    let (name, _g) = guarded("d1s");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let mut s = Stack::<u32>::create(&seg, "s", 4).unwrap();
    s.set_stall_timeout(Duration::from_millis(20));
    s.push(10).unwrap();
    s.push(20).unwrap();
    let entry = seg.entry("s").unwrap().unwrap();
    let states = entry.offset + 16 + 16;
    // A reader left slot 1 in READING (a peer's `top` operation on it died midway).
    poke(&name, states + 4, &3u32.to_le_bytes());
    let t = Instant::now();
    let e = s.pop().unwrap_err();
    let waited = t.elapsed();
    assert!(
        matches!(
            e,
            Error::PeerStalled {
                slot: 1,
                state: 3,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(waited < Duration::from_millis(50), "{waited:?}");
    assert!(e.to_string().contains("stalled or died"));
    assert_eq!(s.len(), 2, "the failed pop undid its claim");
    // A pusher reaching a slot stuck in WRITING fails the same way and gets its value back.
    poke(&name, states + 4, &2u32.to_le_bytes());
    assert_eq!(s.pop().unwrap(), Some(20), "repaired (READY again)");
    poke(&name, states + 4, &1u32.to_le_bytes());
    let t = Instant::now();
    match s.push(30) {
        Err(PushError::Failed(
            30,
            Error::PeerStalled {
                slot: 1, state: 1, ..
            },
        )) => {}
        other => panic!("expected a stalled push, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_millis(50));
    assert_eq!(s.len(), 1);
    assert_eq!(s.pop().unwrap(), Some(10), "other slots still work");
}

#[test]
fn stack_timeouts_have_the_queue_shape() {
    let (name, _g) = guarded("sto");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let s = Stack::<u64>::create(&seg, "s", 1).unwrap();
    let t = Instant::now();
    let e = s.pop_timeout(Duration::from_millis(20)).unwrap_err();
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert!(
        matches!(&e, Error::Timeout { op: "pop_timeout", name, .. } if name == "s"),
        "{e}"
    );
    s.push(1).unwrap();
    match s.push_timeout(2, Duration::from_millis(20)) {
        Err(PushError::Failed(
            2,
            Error::Timeout {
                op: "push_timeout", ..
            },
        )) => {}
        other => panic!("expected a timeout handing back 2, got {other:?}"),
    }
    std::thread::scope(|scope| {
        let h = scope.spawn(|| s.pop_timeout(Duration::from_secs(5)).unwrap());
        assert_eq!(h.join().unwrap(), 1);
        let h = scope.spawn(|| s.pop_timeout(Duration::from_secs(5)).unwrap());
        std::thread::sleep(Duration::from_millis(10));
        s.push_timeout(3, Duration::from_secs(5)).unwrap();
        assert_eq!(h.join().unwrap(), 3);
    });
}
