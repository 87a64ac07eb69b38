//! Queue and Stack (FORMAT.md §4.2, §4.3): API, geometry checks (TESTPLAN A3), thread and
//! process soaks with no item lost or duplicated and per-producer order kept (C2, C3), the
//! 32-bit counter wrap (C4), and stalled peers (D1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zeroipc::{Array, Error, PushError, Queue, Segment, SegmentOptions, Stack};
use zeroipc_tests::types::SensorReading;
use zeroipc_tests::{guarded, poke, read_raw, unique_name, write_raw};

const CHILD: &str = env!("CARGO_BIN_EXE_zeroipc-test-child");

/// Items per producer in the soaks; `ZEROIPC_SOAK_ITEMS` raises it for long runs (TESTPLAN [S]).
fn soak_items() -> u64 {
    std::env::var("ZEROIPC_SOAK_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

#[test]
fn queue_basics() {
    let (name, _g) = guarded("q");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<i32>::create(&seg, "q", 5).unwrap();
    assert_eq!(q.capacity(), 8, "rounded up to a power of two");
    assert!(q.is_empty() && !q.is_full());
    assert_eq!(q.pop().unwrap(), None);
    for i in 0..8 {
        q.push(i).unwrap();
    }
    assert!(q.is_full());
    assert!(
        matches!(q.push(99), Err(PushError::Full(99))),
        "the value comes back when full"
    );
    assert_eq!(q.len(), 8);
    for i in 0..8 {
        assert_eq!(q.pop().unwrap(), Some(i));
    }
    assert_eq!(q.pop().unwrap(), None);
    assert_eq!(
        Queue::<u8>::create(&seg, "one", 1).unwrap().capacity(),
        2,
        "capacity 1 is unsafe"
    );
    assert!(matches!(
        Queue::<u8>::create(&seg, "zero", 0),
        Err(Error::InvalidArgument { .. })
    ));
    // Records, and a second handle on the same queue.
    let r = Queue::<SensorReading>::create(&seg, "readings", 4).unwrap();
    r.push(SensorReading::nth(3)).unwrap();
    let r2 = Queue::<SensorReading>::open(&seg, "readings").unwrap();
    assert_eq!(r2.pop().unwrap(), Some(SensorReading::nth(3)));
    // Opening with another element type, or as another kind, fails.
    let e = Queue::<u64>::open(&seg, "q").unwrap_err();
    assert!(
        matches!(&e, Error::LayoutMismatch { difference: d, .. }
            if d.expected_type == "u64" && d.found_type == "i32"),
        "{e:?}"
    );
    let e = Stack::<i32>::open(&seg, "q").unwrap_err();
    assert!(
        matches!(&e, Error::KindMismatch { requested: "stack", found, .. } if found == "queue"),
        "{e:?}"
    );
    assert!(e.to_string().contains("is a `queue`, not a `stack`"), "{e}");
    assert!(
        Queue::<i32>::open_or_create(&seg, "q", 7).is_ok(),
        "7 rounds to the stored 8"
    );
    assert!(matches!(
        Queue::<i32>::open_or_create(&seg, "q", 9),
        Err(Error::CapacityMismatch {
            requested: 16,
            found: 8,
            ..
        })
    ));
}

#[test]
fn batches_interleave_with_single_operations() {
    let (name, _g) = guarded("batch");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u32>::create(&seg, "q", 8).unwrap();
    assert_eq!(q.push_slice(&[]).unwrap(), 0);
    assert_eq!(q.push_slice(&[1, 2, 3]).unwrap(), 3);
    q.push(4).unwrap();
    assert_eq!(
        q.push_slice(&[5, 6, 7, 8, 9, 10]).unwrap(),
        4,
        "only the prefix that fits"
    );
    assert_eq!(q.push_slice(&[11]).unwrap(), 0, "full");
    let mut out = [0u32; 3];
    assert_eq!(q.pop_into(&mut out).unwrap(), 3);
    assert_eq!(out, [1, 2, 3]);
    assert_eq!(q.pop().unwrap(), Some(4));
    assert_eq!(
        q.push_slice(&[11, 12, 13, 14, 15]).unwrap(),
        4,
        "across the end of the ring"
    );
    let mut rest = [0u32; 16];
    assert_eq!(q.pop_into(&mut rest).unwrap(), 8);
    assert_eq!(rest[..8], [5, 6, 7, 8, 11, 12, 13, 14]);
    assert_eq!(q.pop_into(&mut rest).unwrap(), 0, "empty");
    // The bytes are those of single operations: a fresh queue fed one by one looks the same.
    let single = Queue::<u32>::create(&seg, "single", 8).unwrap();
    for v in [1, 2, 3, 4, 5, 6, 7, 8] {
        single.push(v).unwrap();
    }
    for _ in 0..4 {
        single.pop().unwrap();
    }
    for v in [11, 12, 13, 14] {
        single.push(v).unwrap();
    }
    for _ in 0..8 {
        single.pop().unwrap();
    }
    let a = seg.entry("q").unwrap().unwrap();
    let b = seg.entry("single").unwrap().unwrap();
    let bytes = read_raw(&name);
    let (a, b) = (a.offset as usize, b.offset as usize);
    assert_eq!(bytes[a..a + 16 + 32 + 32], bytes[b..b + 16 + 32 + 32]);
}

#[test]
fn c3_batched_processes_lose_and_duplicate_nothing() {
    // Batches on one side, single operations on the other, across processes.
    let per = soak_items() / 2;
    let (name, _g) = guarded("c3b");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 64).unwrap();
    Array::<u64>::create(&seg, "consumed", 1).unwrap();
    let producer = Command::new(CHILD)
        .args(["queue-produce", &name, "q", "0", &per.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u64; 48];
    let mut next = 0u64;
    while next < per {
        let n = q.pop_into(&mut buf).unwrap();
        for &v in &buf[..n] {
            assert_eq!(v, next, "lost, duplicated or reordered");
            next += 1;
        }
        if n == 0 {
            std::thread::yield_now();
        }
    }
    assert!(producer.wait_with_output().unwrap().status.success());
    assert_eq!(q.pop().unwrap(), None);
}

#[test]
fn a3_corrupt_queue_and_stack_headers_are_refused() {
    let (src, _g) = guarded("a3src");
    {
        // No runtime entry, so that the offsets below are the structures' own.
        let seg = SegmentOptions::new()
            .max_entries(4)
            .runtime_entry(false)
            .descriptions(false)
            .create(&src, 4096)
            .unwrap();
        Queue::<u32>::create(&seg, "q", 4).unwrap(); // 16 + 16 + 16 = 48 bytes at 224
        Stack::<u32>::create(&seg, "s", 3).unwrap(); // 16 + 16 + 12 = 44 bytes at 272
    }
    let base = read_raw(&src);
    let case = |offset: usize, value: u32| {
        let mut bytes = base.clone();
        bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        let name = unique_name("a3");
        let guard = write_raw(&name, &bytes);
        (name, guard)
    };
    let queue_err = |offset, value| {
        let (name, _g) = case(offset, value);
        let seg = Segment::open(&name).unwrap();
        Queue::<u32>::open(&seg, "q").unwrap_err()
    };
    let stack_err = |offset, value| {
        let (name, _g) = case(offset, value);
        let seg = Segment::open(&name).unwrap();
        Stack::<u32>::open(&seg, "s").unwrap_err()
    };
    for (value, what) in [
        (0, "zero"),
        (3, "not a power of two"),
        (1, "one"),
        (1 << 31, "huge"),
        (8, "too big"),
    ] {
        let e = queue_err(224 + 8, value);
        assert!(
            matches!(e, Error::CorruptStructure { kind: "queue", .. }),
            "capacity {what}: {e:?}"
        );
    }
    assert!(matches!(queue_err(224 + 12, 8), Error::TypeMismatch { .. }));
    assert!(matches!(
        queue_err(224 + 12, u32::MAX),
        Error::TypeMismatch { .. }
    ));
    assert!(matches!(
        stack_err(272 + 4, 0),
        Error::CorruptStructure { kind: "stack", .. }
    ));
    assert!(matches!(
        stack_err(272 + 4, u32::MAX),
        Error::CorruptStructure { .. }
    ));
    assert!(
        matches!(stack_err(272, 3), Error::CorruptStructure { .. }),
        "top past the end"
    );
    assert!(matches!(
        stack_err(272, (-2i32) as u32),
        Error::CorruptStructure { .. }
    ));
    {
        // A slot state that is not a state: the operation that meets it fails at once.
        let (name, _g) = case(272 + 16 + 16 + 4, 7);
        let seg = Segment::open(&name).unwrap();
        let s = Stack::<u32>::open(&seg, "s").unwrap();
        s.push(1).unwrap();
        let t = Instant::now();
        match s.push(2) {
            Err(PushError::Failed(2, Error::CorruptStructure { kind: "stack", .. })) => {}
            other => panic!("expected a corrupt-state failure, got {other:?}"),
        }
        assert!(t.elapsed() < Duration::from_millis(10));
        assert_eq!(s.len(), 1, "the failed push undid its claim");
    }
    assert!(matches!(stack_err(272 + 8, 2), Error::TypeMismatch { .. }));
}

#[test]
fn a4_counters_rewritten_after_open_stay_in_bounds() {
    // A peer rewrites head, tail and every sequence word while we operate: operations return
    // (possibly garbage) without touching anything outside the queue.
    let (name, _g) = guarded("a4");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 8).unwrap();
    let entry = seg.entry("q").unwrap().unwrap();
    // Besides the queue, operations write only this process's claims, in the lanes of the
    // runtime entry (FORMAT.md appendix R): those are left out of the comparison.
    let runtime = seg.entry("zeroipc.runtime").unwrap().unwrap();
    let lanes = (runtime.offset + 2344) as usize..(runtime.offset + runtime.size) as usize;
    let outside = |bytes: Vec<u8>| -> Vec<u8> {
        let mut bytes = bytes[(entry.offset + entry.size) as usize..].to_vec();
        let base = (entry.offset + entry.size) as usize;
        bytes[lanes.start - base..lanes.end - base].fill(0);
        bytes
    };
    let before_rest = outside(read_raw(&name));
    let mut x = 0x1234_5678_9abc_def0u64;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = entry.offset + (x % 16) / 4 * 4;
        poke(&name, at, &(x as u32).to_le_bytes());
        let at = entry.offset + 16 + 64 + (x >> 8) % 8 * 4;
        poke(&name, at, &((x >> 20) as u32).to_le_bytes());
        let _ = q.push(x);
        let _ = q.pop();
        let _ = q.len();
    }
    let after_rest = outside(read_raw(&name));
    let changed = before_rest
        .iter()
        .zip(&after_rest)
        .position(|(a, b)| a != b);
    assert_eq!(changed, None, "a byte past the queue changed");
}

#[test]
fn c2_threads_lose_and_duplicate_nothing() {
    const PRODUCERS: u64 = 2;
    const CONSUMERS: usize = 2;
    let per = soak_items() / 4;
    let (name, _g) = guarded("c2");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 16).unwrap();
    let done = std::sync::atomic::AtomicU64::new(0);
    let results: Vec<Vec<u64>> = std::thread::scope(|s| {
        for p in 0..PRODUCERS {
            let q = &q;
            s.spawn(move || {
                for i in 0..per {
                    let mut v = (p << 32) | i;
                    while let Err(back) = q.push(v) {
                        v = back.into_inner();
                        std::thread::yield_now();
                    }
                }
            });
        }
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let (q, done) = (&q, &done);
                s.spawn(move || {
                    let mut got = Vec::new();
                    let mut last = [None::<u64>; PRODUCERS as usize];
                    while done.load(std::sync::atomic::Ordering::Relaxed) < PRODUCERS * per {
                        if let Some(v) = q.pop().unwrap() {
                            let p = (v >> 32) as usize;
                            assert!(last[p].is_none_or(|l| l < (v & 0xFFFF_FFFF)), "order");
                            last[p] = Some(v & 0xFFFF_FFFF);
                            got.push(v);
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        } else {
                            std::thread::yield_now();
                        }
                    }
                    got
                })
            })
            .collect();
        consumers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<u64> = results.concat();
    assert_eq!(all.len() as u64, PRODUCERS * per);
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "duplicates");
    for p in 0..PRODUCERS {
        for i in 0..per {
            assert!(unique.contains(&((p << 32) | i)), "lost {p}/{i}");
        }
    }
    assert!(q.is_empty());
}

#[test]
fn c3_processes_lose_and_duplicate_nothing_and_keep_order() {
    const PRODUCERS: u64 = 2;
    const CONSUMERS: usize = 2;
    let per = soak_items();
    let (name, _g) = guarded("c3");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 64).unwrap();
    Array::<u64>::create(&seg, "consumed", 1).unwrap();
    let dir = std::env::temp_dir().join(format!("zipc-c3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    let spawn = |args: Vec<String>| {
        Command::new(CHILD)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let total = (PRODUCERS * per).to_string();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|c| {
            let out = dir.join(format!("consumer{c}.bin")).display().to_string();
            spawn(vec![
                "queue-consume".into(),
                name.clone(),
                "q".into(),
                total.clone(),
                out,
            ])
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            spawn(vec![
                "queue-produce".into(),
                name.clone(),
                "q".into(),
                p.to_string(),
                per.to_string(),
            ])
        })
        .collect();
    let mut report = Vec::new();
    for child in producers.into_iter().chain(consumers) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        report.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    let elapsed = started.elapsed();
    let mut seen = vec![vec![false; per as usize]; PRODUCERS as usize];
    let (mut received, mut duplicated) = (0u64, 0u64);
    for c in 0..CONSUMERS {
        let bytes = std::fs::read(dir.join(format!("consumer{c}.bin"))).unwrap();
        for chunk in bytes.chunks_exact(8) {
            let v = u64::from_le_bytes(chunk.try_into().unwrap());
            let (p, i) = ((v >> 32) as usize, (v & 0xFFFF_FFFF) as usize);
            assert!(
                p < PRODUCERS as usize && i < per as usize,
                "foreign item {v:#x}"
            );
            duplicated += u64::from(seen[p][i]);
            seen[p][i] = true;
            received += 1;
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let lost = seen.iter().flatten().filter(|s| !**s).count();
    println!(
        "c3: {PRODUCERS} producer and {CONSUMERS} consumer processes, capacity {}, {per} items per \
         producer, received {received}, lost {lost}, duplicated {duplicated}, order violations 0, \
         {elapsed:?}; {report:?}",
        q.capacity()
    );
    assert_eq!((lost, duplicated, received), (0, 0, PRODUCERS * per));
    assert!(q.is_empty());
}

#[test]
fn c4_counters_wrap_at_2_pow_32() {
    let (name, _g) = guarded("c4");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 8).unwrap();
    let entry = seg.entry("q").unwrap().unwrap();
    // Seed as if 2^32 - 16 items had passed: head = tail = start, seq[p % 8] = p.
    let start = 0xFFFF_FFF0u32;
    poke(&name, entry.offset, &start.to_le_bytes());
    poke(&name, entry.offset + 4, &start.to_le_bytes());
    for i in 0..8u32 {
        let p = start.wrapping_add(i);
        poke(
            &name,
            entry.offset + 16 + 64 + u64::from(p % 8) * 4,
            &p.to_le_bytes(),
        );
    }
    let mut next_in = 0u64;
    let mut next_out = 0u64;
    // Three generations of the 32-bit counters' last 16 positions, crossing the wrap, with the
    // queue alternately filled and drained.
    for round in 0..6 {
        while q.push(next_in).is_ok() {
            next_in += 1;
        }
        assert_eq!(q.len(), 8, "round {round}");
        let drain = if round % 2 == 0 { 8 } else { 5 };
        for _ in 0..drain {
            assert_eq!(q.pop().unwrap(), Some(next_out), "round {round}");
            next_out += 1;
        }
    }
    while let Some(v) = q.pop().unwrap() {
        assert_eq!(v, next_out);
        next_out += 1;
    }
    assert_eq!(next_in, next_out);
    let head = u32::from_le_bytes(
        read_raw(&name)[entry.offset as usize..][..4]
            .try_into()
            .unwrap(),
    );
    assert!(
        head < start && head > 16,
        "the counter wrapped: head {head:#x}"
    );
}

#[test]
fn stack_basics() {
    let (name, _g) = guarded("s");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let s = Stack::<u64>::create(&seg, "s", 3).unwrap();
    assert_eq!(s.pop().unwrap(), None);
    s.push(1).unwrap();
    s.push(2).unwrap();
    s.push(3).unwrap();
    assert!(s.is_full());
    assert!(matches!(s.push(4), Err(PushError::Full(4))));
    assert_eq!(s.len(), 3);
    assert_eq!((s.pop().unwrap(), s.pop().unwrap()), (Some(3), Some(2)));
    let again = Stack::<u64>::open(&seg, "s").unwrap();
    assert_eq!(again.pop().unwrap(), Some(1));
    assert!(again.is_empty());
    assert!(matches!(
        Stack::<u8>::create(&seg, "z", 0),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        Stack::<u32>::open(&seg, "s"),
        Err(Error::LayoutMismatch { .. })
    ));
    assert!(matches!(
        Queue::<u64>::open(&seg, "s"),
        Err(Error::KindMismatch { .. })
    ));
    assert!(matches!(
        Stack::<u64>::open_or_create(&seg, "s", 4),
        Err(Error::CapacityMismatch { .. })
    ));
}

#[test]
fn c2_stack_threads_lose_and_duplicate_nothing() {
    let per = soak_items() / 10;
    let (name, _g) = guarded("c2s");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let mut s = Stack::<u64>::create(&seg, "s", 8).unwrap();
    // Four busy threads on two cores: a peer can be descheduled mid-operation for a while. This
    // test is about losing nothing, so it waits for live peers however long they take.
    s.set_stall_timeout(Duration::from_secs(10));
    let s = s;
    let popped: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let s = &s;
                scope.spawn(move || {
                    let mut got = Vec::new();
                    for i in 0..per {
                        let mut v = (t << 32) | i;
                        loop {
                            match s.push(v) {
                                Ok(()) => break,
                                Err(PushError::Full(back)) => {
                                    v = back;
                                    if let Some(x) = s.pop().unwrap() {
                                        got.push(x);
                                    }
                                }
                                Err(PushError::Failed(_, e)) => panic!("{e}"),
                            }
                        }
                        if i % 2 == 1 {
                            if let Some(x) = s.pop().unwrap() {
                                got.push(x);
                            }
                        }
                    }
                    got
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<u64> = popped.concat();
    while let Some(x) = s.pop().unwrap() {
        all.push(x);
    }
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "duplicates");
    assert_eq!(all.len() as u64, 4 * per, "lost items");
}

#[test]
fn a_corrupt_queue_is_told_apart_from_full_and_empty() {
    let (name, _g) = guarded("qcorrupt");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 8).unwrap();
    let entry = seg.entry("q").unwrap().unwrap();
    // Empty queue, counters at 0; slot 0's sequence word jumps ahead of position 0, a state no
    // live peer can produce while `tail` and `head` still read 0.
    let seq0 = entry.offset + 16 + 8 * 8;
    poke(&name, seq0, &5u32.to_le_bytes());
    match q.push(42) {
        Err(PushError::Failed(
            42,
            Error::CorruptStructure {
                kind: "queue",
                name,
                reason,
                ..
            },
        )) => {
            assert_eq!(name, "q");
            assert!(
                reason.contains("position `0`") && reason.contains("`5`"),
                "{reason}"
            );
        }
        other => panic!("expected a corrupt queue handing back 42, got {other:?}"),
    }
    let e = q.pop().unwrap_err();
    assert!(
        matches!(e, Error::CorruptStructure { kind: "queue", .. }),
        "{e}"
    );
    assert!(matches!(
        q.push_slice(&[1, 2]),
        Err(Error::CorruptStructure { .. })
    ));
    assert!(matches!(
        q.pop_into(&mut [0u64; 2]),
        Err(Error::CorruptStructure { .. })
    ));
    assert!(matches!(
        q.pop_timeout(Duration::from_millis(5)),
        Err(Error::CorruptStructure { .. })
    ));
    // Repaired, the same handle works again and never reported full or empty in between.
    poke(&name, seq0, &0u32.to_le_bytes());
    q.push(42).unwrap();
    assert_eq!(q.pop().unwrap(), Some(42));
}

#[test]
fn a_one_slot_queue_is_refused_with_the_real_reason() {
    let (name, _g) = guarded("qone");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u32>::create(&seg, "q", 2).unwrap();
    drop(q);
    let entry = seg.entry("q").unwrap().unwrap();
    poke(&name, entry.offset + 8, &1u32.to_le_bytes());
    let e = Queue::<u32>::open(&seg, "q").unwrap_err().to_string();
    assert!(e.contains("cannot tell full from empty"), "{e}");
    assert!(!e.contains("power of two"), "{e}");
}

/// An application that keeps its segment and structures together, as owned handles do allow.
struct Telemetry {
    seg: Segment,
    readings: Queue<SensorReading>,
    hits: Array<u64>,
}

fn open_telemetry(name: &str) -> zeroipc::Result<Telemetry> {
    let seg = SegmentOptions::new()
        .unlink_on_drop(true)
        .create(name, 1 << 16)?;
    let readings = Queue::create(&seg, "readings", 16)?;
    let hits = Array::create(&seg, "hits", 1)?;
    Ok(Telemetry {
        seg,
        readings,
        hits,
    })
}

#[test]
fn handles_are_owned_live_beside_their_segment_and_move_into_threads() {
    fn is_static<T: 'static + Send + Sync>(_: &T) {}
    let name = unique_name("owned");
    let _g = zeroipc_tests::ShmGuard::new(&name);
    let app = open_telemetry(&name).unwrap();
    is_static(&app.readings);
    is_static(&app.hits);
    let names: Vec<_> = app
        .seg
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    // The queue's creation added its description, its first handle the runtime entry (waiter
    // counts), both right after it.
    assert_eq!(
        names,
        ["readings", "zeroipc.layouts", "zeroipc.runtime", "hits"]
    );
    let Telemetry {
        seg,
        readings,
        hits,
    } = app;
    // A handle moved into a thread (not a scoped one) keeps working after the segment handle
    // it came from is gone.
    drop(seg);
    let producer = std::thread::spawn(move || {
        for i in 0..100 {
            readings
                .push_timeout(SensorReading::nth(i), Duration::from_secs(5))
                .unwrap();
            hits.fetch_add(0, 1, std::sync::atomic::Ordering::Relaxed)
                .unwrap();
        }
        (readings, hits)
    });
    let consumer_seg = Segment::open(&name).unwrap();
    let consumer = Queue::<SensorReading>::open(&consumer_seg, "readings").unwrap();
    for i in 0..100 {
        assert_eq!(
            consumer.pop_timeout(Duration::from_secs(5)).unwrap(),
            SensorReading::nth(i)
        );
    }
    let (readings, hits) = producer.join().unwrap();
    assert_eq!(
        hits.load(0, std::sync::atomic::Ordering::Relaxed).unwrap(),
        100
    );
    // unlink_on_drop happens when the last handle of the creating process goes.
    drop((consumer, consumer_seg));
    drop(readings);
    assert!(
        zeroipc_tests::shm_path(&name).exists(),
        "`hits` still holds it"
    );
    drop(hits);
    assert!(!zeroipc_tests::shm_path(&name).exists());
}
