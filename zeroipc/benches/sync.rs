//! Synchronisation benchmarks, all in one run, interleaved over several rounds (default 7,
//! `ZEROIPC_BENCH_ROUNDS`), printing the median and min–max of each figure and of each
//! per-round ratio.
//!
//! ```text
//! cargo bench -p zeroipc --bench sync
//! ```
//!
//! Three workloads, each beside three baselines on the same machine:
//!
//! - uncontended lock/unlock of a [`Mutex`] in one thread, beside a `pthread` process-shared
//!   mutex and a spin lock (CAS and store) in the same shared page;
//! - a cross-process ping-pong through a pair of [`Semaphore`]s (one process releases the first
//!   and acquires the second, the other the reverse), beside a pair of process-shared POSIX
//!   semaphores (`sem_t`, futex-based), the same algorithm on the same bytes spinning on
//!   `try_acquire`, and the same polling with the other implementations' back-off (FORMAT.md §3,
//!   B1: sleep 1 µs, doubling to 1024 µs);
//! - a 2-process [`Barrier`] episode, beside a process-shared `pthread_barrier_t`, the reference
//!   algorithm on the same bytes spinning, and the same with B1 back-off.
//!
//! Cross-process workloads re-run this binary as the peer (`--role ...`) and pin the two sides
//! to CPUs 0 and 1; the peer is always prompt (it waits for its turn, then acts at once).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{Workload, pin};

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use zeroipc::{Array, Barrier, Mutex, Segment, SegmentOptions, Semaphore};

const LOCAL_OPS: u64 = 5_000_000;
const PING_PONGS: u64 = 100_000;
/// Round trips of the pollers, which sleep at every step: fewer, or a round takes minutes.
const POLLED_PING_PONGS: u64 = 2_000;
const EPISODES: u64 = 100_000;
const POLLED_EPISODES: u64 = 2_000;

fn spawn(role: &str, args: &[&str]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .arg("--role")
        .arg(role)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_ok(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "peer failed");
}

/// The segment shared with a peer: control words (`ready`, `go`), the structures, and a raw
/// area for the `pthread` objects and spinning baselines.
struct Shared {
    name: String,
    seg: Segment,
}

impl Shared {
    fn new(tag: &str) -> Self {
        let name = format!("/zipc-sbench-{}-{tag}", std::process::id());
        let seg = SegmentOptions::new()
            .unlink_on_drop(true)
            .create(&name, 1 << 20)
            .unwrap();
        Array::<u64>::create(&seg, "ctl", 4).unwrap();
        // 64-byte aligned room for the pthread objects (each at most 64 bytes).
        Array::<u64>::create(&seg, "raw", 64).unwrap();
        Self { name, seg }
    }

    /// Waits until the peer reports ready, then starts the clock and releases it.
    fn start(&self) -> Instant {
        let ctl = Array::<u64>::open(&self.seg, "ctl").unwrap();
        while ctl.load(0, Ordering::Acquire).unwrap() == 0 {
            std::hint::spin_loop();
        }
        let t = Instant::now();
        ctl.store(1, 1, Ordering::Release).unwrap();
        t
    }
}

/// The peer side of `Shared::start`.
fn peer_ready(seg: &Segment) {
    let ctl = Array::<u64>::open(seg, "ctl").unwrap();
    ctl.store(0, 1, Ordering::Release).unwrap();
    while ctl.load(1, Ordering::Acquire).unwrap() == 0 {
        std::hint::spin_loop();
    }
}

/// A mapping of a segment of this benchmark's own, for the baselines that work on raw bytes
/// (the `pthread` objects, and the reference algorithms on our entries' bytes).
struct Raw {
    map: memmap2::MmapRaw,
}

impl Raw {
    fn open(seg: &str) -> Self {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/dev/shm{seg}"))
            .unwrap();
        Self {
            map: memmap2::MmapOptions::new().map_raw(&file).unwrap(),
        }
    }

    /// The address of byte `offset` of entry `name` (checked to leave `len` bytes).
    fn at(&self, seg: &Segment, name: &str, offset: u64, len: u64) -> *mut u8 {
        let entry = seg.entry(name).unwrap().unwrap();
        assert!(offset + len <= entry.size);
        let at = (entry.offset + offset) as usize;
        assert!(at + len as usize <= self.map.len());
        self.map.as_mut_ptr().wrapping_add(at)
    }

    /// The `i32` word at `offset` of entry `name`.
    fn word(&self, seg: &Segment, name: &str, offset: u64) -> &AtomicI32 {
        let ptr = self.at(seg, name, offset, 4).cast::<AtomicI32>();
        assert!(ptr.is_aligned());
        // SAFETY: in bounds and aligned (checked above), in a mapping that lives as long as
        // `self`; every process accesses these words atomically.
        unsafe { &*ptr }
    }

    /// The `pthread` area (after the `raw` array's 8-byte header, 8-aligned).
    fn pthread<T>(&self, seg: &Segment) -> *mut T {
        assert!(size_of::<T>() <= 256);
        let ptr = self.at(seg, "raw", 8, size_of::<T>() as u64).cast::<T>();
        assert!(ptr.is_aligned());
        ptr
    }
}

/// How a baseline waits between two failed attempts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    Spin,
    /// The others' schedule B1 (FORMAT.md §3).
    B1,
}

/// Retries `attempt` until it succeeds, waiting as `wait` says.
fn poll(wait: Wait, mut attempt: impl FnMut() -> bool) {
    let mut sleep = Duration::from_micros(1);
    while !attempt() {
        match wait {
            Wait::Spin => std::hint::spin_loop(),
            Wait::B1 => {
                std::thread::sleep(sleep);
                if sleep < Duration::from_micros(1000) {
                    sleep *= 2;
                }
            }
        }
    }
}

/// The reference semaphore's `try_acquire` on raw words (FORMAT.md §5.1).
fn try_acquire(count: &AtomicI32) -> bool {
    let mut c = count.load(Ordering::Acquire);
    while c > 0 {
        match count.compare_exchange_weak(c, c - 1, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => return true,
            Err(now) => c = now,
        }
    }
    false
}

/// The reference semaphore's `release` of an unbounded semaphore on raw words.
fn release(count: &AtomicI32) {
    count.fetch_add(1, Ordering::Release);
}

/// The reference barrier's `wait` on raw words (FORMAT.md §5.3).
fn barrier_wait(arrived: &AtomicI32, generation: &AtomicI32, n: i32, wait: Wait) {
    let g = generation.load(Ordering::Acquire);
    if arrived.fetch_add(1, Ordering::AcqRel) + 1 == n {
        arrived.store(0, Ordering::Relaxed);
        generation.fetch_add(1, Ordering::Release);
        return;
    }
    poll(wait, || generation.load(Ordering::Acquire) != g);
}

// ---- uncontended lock/unlock ----

fn lock_ours() -> f64 {
    let sh = Shared::new("lock");
    let m = Mutex::create(&sh.seg, "m").unwrap();
    pin(0);
    let t = Instant::now();
    for _ in 0..LOCAL_OPS {
        let guard = m.try_lock().unwrap().unwrap();
        drop(std::hint::black_box(guard));
    }
    t.elapsed().as_nanos() as f64 / LOCAL_OPS as f64
}

/// As `lock_ours`, on a segment without the runtime entry: nothing records the holder.
fn lock_ours_unrecorded() -> f64 {
    let name = format!("/zipc-sbench-{}-lockn", std::process::id());
    let seg = SegmentOptions::new()
        .unlink_on_drop(true)
        .runtime_entry(false)
        .create(&name, 1 << 16)
        .unwrap();
    let m = Mutex::create(&seg, "m").unwrap();
    pin(0);
    let t = Instant::now();
    for _ in 0..LOCAL_OPS {
        let guard = m.try_lock().unwrap().unwrap();
        drop(std::hint::black_box(guard));
    }
    t.elapsed().as_nanos() as f64 / LOCAL_OPS as f64
}

fn lock_ours_blocking() -> f64 {
    let sh = Shared::new("lockb");
    let m = Mutex::create(&sh.seg, "m").unwrap();
    pin(0);
    let t = Instant::now();
    for _ in 0..LOCAL_OPS {
        let guard = m.lock().unwrap();
        drop(std::hint::black_box(guard));
    }
    t.elapsed().as_nanos() as f64 / LOCAL_OPS as f64
}

fn lock_pthread() -> f64 {
    let sh = Shared::new("lockp");
    let raw = Raw::open(&sh.name);
    let m = raw.pthread::<libc::pthread_mutex_t>(&sh.seg);
    let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: `attr` is writable storage for the attributes it initialises.
    let r = unsafe { libc::pthread_mutexattr_init(attr.as_mut_ptr()) };
    assert_eq!(r, 0);
    // SAFETY: `attr` was initialised above.
    let shared = unsafe {
        libc::pthread_mutexattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED)
    };
    assert_eq!(shared, 0);
    // SAFETY: `m` points at zeroed, aligned, writable shared bytes large enough for a
    // `pthread_mutex_t` (`Raw::pthread`), used by nobody yet; `attr` is initialised.
    assert_eq!(unsafe { libc::pthread_mutex_init(m, attr.as_ptr()) }, 0);
    // SAFETY: initialised above, and no longer needed once the mutex is made.
    unsafe { libc::pthread_mutexattr_destroy(attr.as_mut_ptr()) };
    pin(0);
    let t = Instant::now();
    for _ in 0..LOCAL_OPS {
        // SAFETY: `m` is an initialised mutex (above), locked and unlocked by this thread only.
        unsafe { libc::pthread_mutex_lock(m) };
        // SAFETY: as above; this thread holds it.
        unsafe { libc::pthread_mutex_unlock(std::hint::black_box(m)) };
    }
    let ns = t.elapsed().as_nanos() as f64 / LOCAL_OPS as f64;
    // SAFETY: unlocked, and not used after.
    unsafe { libc::pthread_mutex_destroy(m) };
    ns
}

fn lock_spin() -> f64 {
    let sh = Shared::new("locks");
    let m = Mutex::create(&sh.seg, "m").unwrap();
    drop(m);
    let raw = Raw::open(&sh.name);
    let count = raw.word(&sh.seg, "m", 0);
    pin(0);
    let t = Instant::now();
    for _ in 0..LOCAL_OPS {
        poll(Wait::Spin, || try_acquire(count));
        release(std::hint::black_box(count));
    }
    t.elapsed().as_nanos() as f64 / LOCAL_OPS as f64
}

// ---- semaphore ping-pong ----

/// Our semaphores, `ping` released by this side and `pong` by the peer.
fn pingpong_ours() -> f64 {
    let sh = Shared::new("pp");
    let ping = Semaphore::create(&sh.seg, "ping", 0, 0).unwrap();
    let pong = Semaphore::create(&sh.seg, "pong", 0, 0).unwrap();
    let peer = spawn("pong-ours", &[&sh.name, &PING_PONGS.to_string()]);
    pin(0);
    let t = sh.start();
    for _ in 0..PING_PONGS {
        ping.release().unwrap();
        pong.acquire().unwrap();
    }
    let ns = t.elapsed().as_nanos() as f64 / PING_PONGS as f64;
    wait_ok(peer);
    ns
}

/// The reference algorithm on the same bytes, waiting as `wait` says.
fn pingpong_raw(wait: Wait) -> f64 {
    let sh = Shared::new("ppraw");
    Semaphore::create(&sh.seg, "ping", 0, 0).unwrap();
    Semaphore::create(&sh.seg, "pong", 0, 0).unwrap();
    let n = if wait == Wait::Spin {
        PING_PONGS
    } else {
        POLLED_PING_PONGS
    };
    let role = if wait == Wait::Spin {
        "pong-spin"
    } else {
        "pong-b1"
    };
    let peer = spawn(role, &[&sh.name, &n.to_string()]);
    let raw = Raw::open(&sh.name);
    let (ping, pong) = (raw.word(&sh.seg, "ping", 0), raw.word(&sh.seg, "pong", 0));
    pin(0);
    let t = sh.start();
    for _ in 0..n {
        release(ping);
        poll(wait, || try_acquire(pong));
    }
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    wait_ok(peer);
    ns
}

/// Two process-shared POSIX semaphores.
fn pingpong_posix() -> f64 {
    let sh = Shared::new("ppposix");
    let raw = Raw::open(&sh.name);
    let sems = raw
        .pthread::<[libc::sem_t; 2]>(&sh.seg)
        .cast::<libc::sem_t>();
    let second = sems.wrapping_add(1);
    // SAFETY: two zeroed, aligned `sem_t`s in shared writable bytes (`Raw::pthread` checked
    // the room for both), initialised process-shared before the peer starts.
    assert_eq!(unsafe { libc::sem_init(sems, 1, 0) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::sem_init(second, 1, 0) }, 0);
    let peer = spawn("pong-posix", &[&sh.name, &PING_PONGS.to_string()]);
    pin(0);
    let t = sh.start();
    for _ in 0..PING_PONGS {
        // SAFETY: initialised above; `sem_post`/`sem_wait` are safe on shared semaphores.
        unsafe { libc::sem_post(sems) };
        // SAFETY: as above.
        while unsafe { libc::sem_wait(second) } != 0 {}
    }
    let ns = t.elapsed().as_nanos() as f64 / PING_PONGS as f64;
    wait_ok(peer);
    ns
}

// ---- barrier episodes ----

fn barrier_ours() -> f64 {
    let sh = Shared::new("bar");
    let b = Barrier::create(&sh.seg, "b", 2).unwrap();
    let peer = spawn("barrier-ours", &[&sh.name, &EPISODES.to_string()]);
    pin(0);
    let t = sh.start();
    let mut leaders = 0u64;
    for _ in 0..EPISODES {
        leaders += u64::from(b.wait().unwrap());
    }
    let ns = t.elapsed().as_nanos() as f64 / EPISODES as f64;
    wait_ok(peer);
    assert!(leaders <= EPISODES);
    assert_eq!(b.generation() as u64, EPISODES);
    ns
}

fn barrier_raw(wait: Wait) -> f64 {
    let sh = Shared::new("barraw");
    Barrier::create(&sh.seg, "b", 2).unwrap();
    let n = if wait == Wait::Spin {
        EPISODES
    } else {
        POLLED_EPISODES
    };
    let role = if wait == Wait::Spin {
        "barrier-spin"
    } else {
        "barrier-b1"
    };
    let peer = spawn(role, &[&sh.name, &n.to_string()]);
    let raw = Raw::open(&sh.name);
    let (arrived, generation) = (raw.word(&sh.seg, "b", 0), raw.word(&sh.seg, "b", 4));
    pin(0);
    let t = sh.start();
    for _ in 0..n {
        barrier_wait(arrived, generation, 2, wait);
    }
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    wait_ok(peer);
    assert_eq!(generation.load(Ordering::Acquire) as u64, n);
    ns
}

fn barrier_pthread() -> f64 {
    let sh = Shared::new("barp");
    let raw = Raw::open(&sh.name);
    let b = raw.pthread::<libc::pthread_barrier_t>(&sh.seg);
    let mut attr = std::mem::MaybeUninit::<libc::pthread_barrierattr_t>::uninit();
    // SAFETY: `attr` is writable storage for the attributes it initialises.
    let r = unsafe { libc::pthread_barrierattr_init(attr.as_mut_ptr()) };
    assert_eq!(r, 0);
    // SAFETY: `attr` was initialised above.
    let shared = unsafe {
        libc::pthread_barrierattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED)
    };
    assert_eq!(shared, 0);
    // SAFETY: zeroed, aligned, writable shared bytes for a `pthread_barrier_t`, initialised
    // process-shared before the peer starts; `attr` is initialised.
    let r = unsafe { libc::pthread_barrier_init(b, attr.as_ptr(), 2) };
    assert_eq!(r, 0);
    // SAFETY: initialised above, and no longer needed once the barrier is made.
    unsafe { libc::pthread_barrierattr_destroy(attr.as_mut_ptr()) };
    let peer = spawn("barrier-pthread", &[&sh.name, &EPISODES.to_string()]);
    pin(0);
    let t = sh.start();
    for _ in 0..EPISODES {
        // SAFETY: initialised above, shared by exactly the 2 participants it was made for.
        unsafe { libc::pthread_barrier_wait(b) };
    }
    let ns = t.elapsed().as_nanos() as f64 / EPISODES as f64;
    wait_ok(peer);
    ns
}

// ---- the peer ----

fn role(args: &[String]) {
    pin(1);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let [role, seg_name, n] = args.as_slice() else {
        panic!("unknown role {args:?}");
    };
    let n: u64 = n.parse().unwrap();
    let seg = Segment::open(seg_name).unwrap();
    let raw = Raw::open(seg_name);
    match *role {
        "pong-ours" => {
            let ping = Semaphore::open(&seg, "ping").unwrap();
            let pong = Semaphore::open(&seg, "pong").unwrap();
            peer_ready(&seg);
            for _ in 0..n {
                ping.acquire().unwrap();
                pong.release().unwrap();
            }
        }
        "pong-spin" | "pong-b1" => {
            let wait = if *role == "pong-spin" {
                Wait::Spin
            } else {
                Wait::B1
            };
            let (ping, pong) = (raw.word(&seg, "ping", 0), raw.word(&seg, "pong", 0));
            peer_ready(&seg);
            for _ in 0..n {
                poll(wait, || try_acquire(ping));
                release(pong);
            }
        }
        "pong-posix" => {
            let sems = raw.pthread::<[libc::sem_t; 2]>(&seg).cast::<libc::sem_t>();
            let second = sems.wrapping_add(1);
            peer_ready(&seg);
            for _ in 0..n {
                // SAFETY: initialised by the parent before this process started.
                while unsafe { libc::sem_wait(sems) } != 0 {}
                // SAFETY: as above.
                unsafe { libc::sem_post(second) };
            }
        }
        "barrier-ours" => {
            let b = Barrier::open(&seg, "b").unwrap();
            peer_ready(&seg);
            for _ in 0..n {
                b.wait().unwrap();
            }
        }
        "barrier-spin" | "barrier-b1" => {
            let wait = if *role == "barrier-spin" {
                Wait::Spin
            } else {
                Wait::B1
            };
            let (arrived, generation) = (raw.word(&seg, "b", 0), raw.word(&seg, "b", 4));
            peer_ready(&seg);
            for _ in 0..n {
                barrier_wait(arrived, generation, 2, wait);
            }
        }
        "barrier-pthread" => {
            let b = raw.pthread::<libc::pthread_barrier_t>(&seg);
            peer_ready(&seg);
            for _ in 0..n {
                // SAFETY: initialised by the parent before this process started.
                unsafe { libc::pthread_barrier_wait(b) };
            }
        }
        other => panic!("unknown role {other:?}"),
    }
}

// ---- driver ----

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--role") {
        role(&args[i + 1..]);
        return;
    }
    let workloads: [Workload; 13] = [
        ("Mutex try_lock/unlock, 1 thread (ns/pair)", lock_ours),
        ("Mutex lock/unlock, 1 thread (ns/pair)", lock_ours_blocking),
        (
            "pthread process-shared mutex lock/unlock (ns/pair)",
            lock_pthread,
        ),
        ("spin lock on the same bytes (ns/pair)", lock_spin),
        (
            "Semaphore ping-pong, 2 processes (ns/round trip)",
            pingpong_ours,
        ),
        (
            "POSIX sem_t ping-pong, 2 processes (ns/round trip)",
            pingpong_posix,
        ),
        ("spinning semaphore ping-pong (ns/round trip)", || {
            pingpong_raw(Wait::Spin)
        }),
        ("B1-polling semaphore ping-pong (ns/round trip)", || {
            pingpong_raw(Wait::B1)
        }),
        ("Barrier, 2 processes (ns/episode)", barrier_ours),
        (
            "pthread process-shared barrier (ns/episode)",
            barrier_pthread,
        ),
        ("spinning barrier (ns/episode)", || barrier_raw(Wait::Spin)),
        ("B1-polling barrier (ns/episode)", || barrier_raw(Wait::B1)),
        (
            "Mutex try_lock/unlock, holder not recorded (ns/pair)",
            lock_ours_unrecorded,
        ),
    ];
    let Some(results) = common::run(&workloads) else {
        return;
    };
    let ratio = |a, b| common::ratio(&results, a, b);
    let targets: [(&str, Vec<f64>, &str); 10] = [
        (
            "Mutex try_lock / pthread mutex (time)",
            ratio(0, 2),
            "≤ 1.5",
        ),
        (
            "Mutex try_lock, holder not recorded / pthread mutex (time)",
            ratio(12, 2),
            "—",
        ),
        ("Mutex lock / pthread mutex (time)", ratio(1, 2), "≤ 1.5"),
        ("Mutex try_lock / spin lock (time)", ratio(0, 3), "—"),
        ("Semaphore ping-pong / spinning (time)", ratio(4, 6), "≤ 5"),
        (
            "B1 poller / Semaphore ping-pong (time)",
            ratio(7, 4),
            "≥ 100",
        ),
        ("sem_t / Semaphore ping-pong (time)", ratio(5, 4), "—"),
        ("Barrier / spinning (time)", ratio(8, 10), "≤ 5"),
        ("B1 poller / Barrier (time)", ratio(11, 8), "≥ 100"),
        ("pthread barrier / Barrier (time)", ratio(9, 8), "—"),
    ];
    common::print_ratios(&targets);
}
