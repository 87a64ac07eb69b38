//! Random kills (TESTPLAN D3, issue 10): producer and consumer processes on one queue are
//! SIGKILLed at random moments (10 µs – 5 ms after they start working) and replaced, and the
//! test proves that nothing is duplicated, that the items lost are at most the kills (each
//! kill costs at most the item in flight), that no survivor waited past its timeout, and that
//! the queue is still usable at the end.
//!
//! CI runs 100 kills; `ZEROIPC_KILLS=1000 cargo test -p zeroipc-tests --test kills -- --nocapture`
//! runs a thousand (`ZEROIPC_SEED` repeats a run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use zeroipc::{Array, Queue, Segment, StructureKind};
use zeroipc_tests::unique_name;

const CHILD: &str = env!("CARGO_BIN_EXE_zeroipc-test-child");
/// Items one consumer can log.
const LOG: usize = 1 << 14;
/// Producer ids (each replacement takes a new one).
const MAX_PRODUCERS: usize = 4096;

/// xorshift64*: reproducible from the seed printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

struct Worker {
    child: Child,
    producer: bool,
}

fn spawn(name: &str, producer: bool, id: usize) -> Worker {
    let role = if producer {
        "torture-produce"
    } else {
        "torture-consume"
    };
    let mut child = Command::new(CHILD)
        .args([role, name, "q", &id.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(
        zeroipc_tests::first_line(&mut child),
        "ready",
        "{role} {id}"
    );
    Worker { child, producer }
}

#[test]
fn random_kills_lose_at_most_the_items_in_flight_and_never_wedge() {
    let kills: usize = std::env::var("ZEROIPC_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(100);
    let seed: u64 = std::env::var("ZEROIPC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("ZEROIPC_SEED={seed} ZEROIPC_KILLS={kills}");
    let mut rng = Rng(seed);
    let name = unique_name("kills");
    // Consumers killed, plus those that retire with a full log (a few per second).
    let consumers_max = kills * 2 + 64;
    let size = (consumers_max * (LOG * 8 + 256) + MAX_PRODUCERS * 8 + (1 << 20)) as u64;
    let seg = Segment::options()
        .max_entries(u32::try_from(consumers_max + 16).unwrap())
        .unlink_on_drop(true)
        .create(&name, size)
        .unwrap();
    let q = Queue::<u64>::create(&seg, "q", 64).unwrap();
    let sent = Array::<u64>::create(&seg, "sent", MAX_PRODUCERS).unwrap();
    // stop[0]: producers stop; stop[1]: consumers stop once the queue stays empty.
    let stop = Array::<u64>::create(&seg, "stop", 2).unwrap();
    let (mut producers, mut consumers) = (0usize, 0usize);
    let mut start = |producer: bool| {
        let id = if producer {
            producers += 1;
            producers - 1
        } else {
            Array::<u64>::create(&seg, &format!("log{consumers}"), LOG).unwrap();
            consumers += 1;
            consumers - 1
        };
        assert!(producers <= MAX_PRODUCERS && consumers <= consumers_max);
        spawn(&name, producer, id)
    };
    let mut workers: Vec<Worker> = vec![start(true), start(true), start(false), start(false)];
    let mut timed_out = 0;
    let begun = Instant::now();
    for _ in 0..kills {
        let delay = 10 + rng.next() % 4_990;
        std::thread::sleep(Duration::from_micros(delay));
        // A consumer whose log is full retires: start another in its place.
        for w in &mut workers {
            if let Some(status) = w.child.try_wait().unwrap() {
                assert!(status.success(), "a worker failed: {status:?}");
                *w = start(w.producer);
            }
        }
        let victim = (rng.next() % workers.len() as u64) as usize;
        let mut w = workers.swap_remove(victim);
        let _ = w.child.kill();
        let status = w.child.wait().unwrap();
        if status.code() == Some(3) {
            timed_out += 1;
        }
        // Killed, or a consumer that retired with a full log.
        assert!(
            status.signal() == Some(9) || status.code() == Some(3) || status.success(),
            "a worker failed: {status:?}"
        );
        workers.push(start(w.producer));
    }
    let killing = begun.elapsed();
    // Stop the producers (they finish their push), then the consumers (they drain until the
    // queue stays empty), replacing consumers that retire meanwhile.
    stop.store(0, 1, Ordering::Release).unwrap();
    let (producing, mut consuming): (Vec<Worker>, Vec<Worker>) =
        workers.into_iter().partition(|w| w.producer);
    for mut w in producing {
        let status = loop {
            if let Some(status) = w.child.try_wait().unwrap() {
                break status;
            }
            for c in &mut consuming {
                if c.child.try_wait().unwrap().is_some() {
                    *c = start(false);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if status.code() == Some(3) {
            timed_out += 1;
        }
        assert!(
            status.success() || status.code() == Some(3),
            "a worker failed: {status:?}"
        );
    }
    stop.store(1, 1, Ordering::Release).unwrap();
    for mut w in consuming {
        let status = w.child.wait().unwrap();
        assert!(status.success(), "a worker failed: {status:?}");
    }
    // What is left: claims of the last dead processes are undone, then everything drains.
    let recovered = q.recover().unwrap();
    let mut delivered: Vec<u64> = Vec::new();
    while let Some(v) = q.pop().unwrap() {
        delivered.push(v);
    }
    for c in 0..consumers {
        let log = Array::<u64>::open(&seg, &format!("log{c}")).unwrap();
        let n = log.load(0, Ordering::Acquire).unwrap() as usize;
        for i in 1..=n {
            delivered.push(log.get(i).unwrap());
        }
    }
    let mut seen = HashSet::new();
    let duplicated = delivered.iter().filter(|&&v| !seen.insert(v)).count();
    let mut surely_sent = 0u64;
    let mut lost = 0u64;
    for p in 0..producers {
        let acked = sent.get(p).unwrap();
        surely_sent += acked;
        for n in 0..acked {
            if !seen.contains(&((p as u64) << 32 | n)) {
                lost += 1;
            }
        }
        // At most the one push in flight beyond the acknowledged ones.
        for v in &seen {
            if v >> 32 == p as u64 {
                assert!(
                    v & 0xffff_ffff <= acked,
                    "producer {p} item {v:#x} never pushed"
                );
            }
        }
    }
    println!(
        "kills {kills} in {killing:?}: {producers} producers and {consumers} consumers, \
         {surely_sent} items surely sent, {} delivered, {lost} lost, {duplicated} duplicated, \
         {timed_out} timed out; the final recovery undid {} claims",
        delivered.len(),
        recovered.undone
    );
    assert_eq!(duplicated, 0, "nothing is delivered twice");
    assert!(lost <= kills as u64, "lost {lost} > {kills} kills");
    assert_eq!(timed_out, 0, "no survivor waited past its timeout");
    assert!(surely_sent > 0);
    // Not wedged: every slot cycles again, and the queue checks sound.
    for v in 0..256u64 {
        q.push_timeout(v, Duration::from_secs(2)).unwrap();
        assert_eq!(q.pop_timeout(Duration::from_secs(2)).unwrap(), v);
    }
    let report = seg.check_structure("q", StructureKind::Queue).unwrap();
    assert!(report.is_sound(), "{report:?}");
}
