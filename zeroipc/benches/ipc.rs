//! Queue and Stack benchmarks against the hardware limit and in-process and kernel baselines,
//! all in one run, interleaved over several rounds (default 7, `ZEROIPC_BENCH_ROUNDS`), printing
//! the median and min–max of each figure and of each per-round ratio.
//!
//! ```text
//! cargo bench -p zeroipc --bench ipc
//! ```
//!
//! Cross-process workloads re-run this binary as the peer process (`--role ...`) and pin the two
//! sides to CPUs 0 and 1. Baselines: a cache-line ping-pong on a `/dev/shm` page (two processes
//! alternately incrementing one word: the hardware limit of a round trip),
//! `crossbeam_queue::ArrayQueue` in-process, a pipe and a Unix socket carrying 8-byte messages,
//! and [`Plain`]: a straightforward Vyukov queue on the same wire layout, as the other ZeroIPC
//! implementations write it (every operation loads the shared counter; no local hints, no
//! batches, no wake-ups).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{Workload, pin};

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use zeroipc::{Array, Queue, Segment, SegmentOptions, Stack};

const SPSC_ITEMS: u64 = 10_000_000;
/// The sum of the items `0..SPSC_ITEMS` a producer sends.
const CHECKSUM: u64 = SPSC_ITEMS * (SPSC_ITEMS - 1) / 2;

/// Takes `SPSC_ITEMS` items from `pop`, spinning while it has none; their wrapping sum.
fn drain(mut pop: impl FnMut() -> Option<u64>) -> u64 {
    let mut sum = 0u64;
    for _ in 0..SPSC_ITEMS {
        let v = loop {
            if let Some(v) = pop() {
                break v;
            }
            std::hint::spin_loop();
        };
        sum = sum.wrapping_add(v);
    }
    sum
}

/// The baseline: Vyukov's queue as the reference implementations write it, over the bytes of a
/// `Queue<u64>` entry (FORMAT.md §4.2), mapped by this benchmark on its own.
struct Plain {
    map: memmap2::MmapRaw,
    /// Offset of the queue's header in the mapping.
    base: usize,
    mask: u32,
    /// Offset of the sequence words from `base`.
    seqs: usize,
}

impl Plain {
    fn open(seg: &str, name: &str) -> Self {
        let s = Segment::open(seg).unwrap();
        let entry = s.entry(name).unwrap().unwrap();
        let q = Queue::<u64>::open(&s, name).unwrap();
        let cap = q.capacity();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/dev/shm{seg}"))
            .unwrap();
        let map = memmap2::MmapOptions::new().map_raw(&file).unwrap();
        assert!(entry.offset as usize + 16 + cap * 12 <= map.len());
        Self {
            map,
            base: entry.offset as usize,
            mask: cap as u32 - 1,
            seqs: 16 + cap * 8,
        }
    }

    fn word(&self, offset: usize) -> &AtomicU32 {
        let at = self.base + offset;
        assert!(at % 4 == 0 && at + 4 <= self.map.len());
        let ptr = self.map.as_ptr().wrapping_add(at).cast::<AtomicU32>();
        // SAFETY: in bounds and 4-aligned (checked above); the mapping lives as long as `self`,
        // and every process accesses these words atomically.
        unsafe { &*ptr }
    }

    fn slot(&self, slot: u32) -> &AtomicU64 {
        let at = self.base + 16 + slot as usize * 8;
        assert!(at % 8 == 0 && at + 8 <= self.map.len());
        let ptr = self.map.as_ptr().wrapping_add(at).cast::<AtomicU64>();
        // SAFETY: as in `word`, for the 8-aligned slot.
        unsafe { &*ptr }
    }

    fn push(&self, v: u64) -> bool {
        let (tail, mask) = (self.word(4), self.mask);
        loop {
            let t = tail.load(Ordering::Relaxed);
            let seq = self.word(self.seqs + (t & mask) as usize * 4);
            let d = seq.load(Ordering::Acquire).wrapping_sub(t) as i32;
            if d == 0 {
                if tail
                    .compare_exchange_weak(
                        t,
                        t.wrapping_add(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    self.slot(t & mask).store(v, Ordering::Relaxed);
                    seq.store(t.wrapping_add(1), Ordering::Release);
                    return true;
                }
            } else if d < 0 {
                return false;
            }
        }
    }

    fn pop(&self) -> Option<u64> {
        let (head, mask) = (self.word(0), self.mask);
        loop {
            let h = head.load(Ordering::Relaxed);
            let seq = self.word(self.seqs + (h & mask) as usize * 4);
            let d = seq.load(Ordering::Acquire).wrapping_sub(h.wrapping_add(1)) as i32;
            if d == 0 {
                if head
                    .compare_exchange_weak(
                        h,
                        h.wrapping_add(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    let v = self.slot(h & mask).load(Ordering::Relaxed);
                    seq.store(h.wrapping_add(mask).wrapping_add(1), Ordering::Release);
                    return Some(v);
                }
            } else if d < 0 {
                return None;
            }
        }
    }
}

fn spsc_plain(capacity: usize) -> f64 {
    let sh = Shared::new("plain");
    Queue::<u64>::create(&sh.seg, "q", capacity).unwrap();
    let q = Plain::open(&sh.name, "q");
    let peer = spawn("produce-plain", &[&sh.name, &SPSC_ITEMS.to_string()]);
    pin(0);
    let t = sh.start();
    let sum = drain(|| q.pop());
    let ns = t.elapsed().as_nanos() as f64 / SPSC_ITEMS as f64;
    wait_ok(peer);
    assert_eq!(sum, CHECKSUM, "checksum");
    ns
}

fn roundtrip_plain() -> f64 {
    let sh = Shared::new("rtplain");
    Queue::<u64>::create(&sh.seg, "ping", 64).unwrap();
    Queue::<u64>::create(&sh.seg, "pong", 64).unwrap();
    let (ping, pong) = (Plain::open(&sh.name, "ping"), Plain::open(&sh.name, "pong"));
    let peer = spawn("echo-plain", &[&sh.name]);
    pin(0);
    let t = sh.start();
    for i in 0..ROUND_TRIPS {
        assert!(ping.push(i));
        loop {
            if let Some(v) = pong.pop() {
                assert_eq!(v, i);
                break;
            }
            std::hint::spin_loop();
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / ROUND_TRIPS as f64;
    assert!(ping.push(u64::MAX));
    wait_ok(peer);
    ns
}
const ROUND_TRIPS: u64 = 200_000;
const KERNEL_ROUND_TRIPS: u64 = 20_000;
const LOCAL_OPS: u64 = 10_000_000;
const STACK_ITEMS: u64 = 2_000_000;

fn spawn(role: &str, args: &[&str]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .arg("--role")
        .arg(role)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_ok(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "peer failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The segment shared with a peer: control words (`ready`, `go`) plus the structures.
struct Shared {
    name: String,
    seg: Segment,
}

impl Shared {
    fn new(tag: &str) -> Self {
        let name = format!("/zipc-bench-{}-{tag}", std::process::id());
        let seg = SegmentOptions::new()
            .unlink_on_drop(true)
            .create(&name, 16 << 20)
            .unwrap();
        Array::<u64>::create(&seg, "ctl", 4).unwrap();
        Self { name, seg }
    }

    fn ctl(&self) -> Array<u64> {
        Array::<u64>::open(&self.seg, "ctl").unwrap()
    }

    /// Waits until the peer reports ready, then starts the clock and releases it.
    fn start(&self) -> Instant {
        let ctl = self.ctl();
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

// ---- workloads: each returns nanoseconds per operation (or per round trip) ----

fn pingpong() -> f64 {
    let sh = Shared::new("pp");
    let word = Array::<u64>::create(&sh.seg, "word", 8).unwrap();
    let peer = spawn("pingpong", &[&sh.name]);
    pin(0);
    let t = sh.start();
    for i in 0..ROUND_TRIPS {
        word.store(0, 2 * i + 1, Ordering::Release).unwrap();
        while word.load(0, Ordering::Acquire).unwrap() != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / ROUND_TRIPS as f64;
    wait_ok(peer);
    ns
}

fn spsc_queue(capacity: usize) -> f64 {
    let sh = Shared::new("spsc");
    Queue::<u64>::create(&sh.seg, "q", capacity).unwrap();
    let q = Queue::<u64>::open(&sh.seg, "q").unwrap();
    let peer = spawn("produce", &[&sh.name, &SPSC_ITEMS.to_string()]);
    pin(0);
    let t = sh.start();
    let sum = drain(|| q.pop().unwrap());
    let ns = t.elapsed().as_nanos() as f64 / SPSC_ITEMS as f64;
    wait_ok(peer);
    assert_eq!(sum, CHECKSUM, "checksum");
    ns
}

const BATCH: usize = 64;

fn spsc_queue_batched(capacity: usize) -> f64 {
    let sh = Shared::new("spscb");
    Queue::<u64>::create(&sh.seg, "q", capacity).unwrap();
    let q = Queue::<u64>::open(&sh.seg, "q").unwrap();
    let peer = spawn("produce-batched", &[&sh.name, &SPSC_ITEMS.to_string()]);
    pin(0);
    let t = sh.start();
    let mut sum = 0u64;
    let mut got = 0u64;
    let mut buf = [0u64; BATCH];
    while got < SPSC_ITEMS {
        let n = q.pop_into(&mut buf).unwrap();
        if n == 0 {
            std::hint::spin_loop();
            continue;
        }
        for &v in &buf[..n] {
            sum = sum.wrapping_add(v);
        }
        got += n as u64;
    }
    let ns = t.elapsed().as_nanos() as f64 / SPSC_ITEMS as f64;
    wait_ok(peer);
    assert_eq!(sum, CHECKSUM, "checksum");
    ns
}

fn spsc_arrayqueue() -> f64 {
    let q = crossbeam_queue::ArrayQueue::<u64>::new(1024);
    std::thread::scope(|s| {
        let q = &q;
        s.spawn(move || {
            pin(1);
            for i in 0..SPSC_ITEMS {
                let mut v = i;
                while let Err(back) = q.push(v) {
                    v = back;
                    std::hint::spin_loop();
                }
            }
        });
        pin(0);
        let t = Instant::now();
        let sum = drain(|| q.pop());
        assert_eq!(sum, CHECKSUM, "checksum");
        t.elapsed().as_nanos() as f64 / SPSC_ITEMS as f64
    })
}

/// Sends `ROUND_TRIPS` values through `ping`, waiting for each to come back on `pong`, then the
/// stop value; nanoseconds per round trip since `t`.
fn drive_round_trips(ping: &Queue<u64>, pong: &Queue<u64>, t: Instant) -> f64 {
    for i in 0..ROUND_TRIPS {
        ping.push(i).unwrap();
        loop {
            if let Some(v) = pong.pop().unwrap() {
                assert_eq!(v, i);
                break;
            }
            std::hint::spin_loop();
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / ROUND_TRIPS as f64;
    ping.push(u64::MAX).unwrap();
    ns
}

fn roundtrip_queues() -> f64 {
    let sh = Shared::new("rt");
    let ping = Queue::<u64>::create(&sh.seg, "ping", 64).unwrap();
    let pong = Queue::<u64>::create(&sh.seg, "pong", 64).unwrap();
    let peer = spawn("echo-queue", &[&sh.name]);
    pin(0);
    let t = sh.start();
    let ns = drive_round_trips(&ping, &pong, t);
    wait_ok(peer);
    ns
}

/// SPSC between two threads of one process, through one handle they share or a handle each.
fn threads_spsc(shared: bool) -> f64 {
    let sh = Shared::new(if shared { "tspsc1" } else { "tspsc2" });
    let consumer = Queue::<u64>::create(&sh.seg, "q", 1024).unwrap();
    let own = Queue::<u64>::open(&sh.seg, "q").unwrap();
    let producer = if shared { &consumer } else { &own };
    std::thread::scope(|s| {
        s.spawn(move || {
            pin(1);
            for i in 0..SPSC_ITEMS {
                let mut v = i;
                while let Err(back) = producer.push(v) {
                    v = back.into_inner();
                    std::hint::spin_loop();
                }
            }
        });
        pin(0);
        let t = Instant::now();
        let sum = drain(|| consumer.pop().unwrap());
        assert_eq!(sum, CHECKSUM, "checksum");
        t.elapsed().as_nanos() as f64 / SPSC_ITEMS as f64
    })
}

/// Round trips between two threads through a ping and a pong queue, one handle of each shared
/// by both threads or a handle each.
fn threads_roundtrip(shared: bool) -> f64 {
    let sh = Shared::new(if shared { "trt1" } else { "trt2" });
    let ping = Queue::<u64>::create(&sh.seg, "ping", 64).unwrap();
    let pong = Queue::<u64>::create(&sh.seg, "pong", 64).unwrap();
    let (ping2, pong2) = (
        Queue::<u64>::open(&sh.seg, "ping").unwrap(),
        Queue::<u64>::open(&sh.seg, "pong").unwrap(),
    );
    let (echo_ping, echo_pong) = if shared {
        (&ping, &pong)
    } else {
        (&ping2, &pong2)
    };
    std::thread::scope(|s| {
        s.spawn(move || {
            pin(1);
            loop {
                if let Some(v) = echo_ping.pop().unwrap() {
                    if v == u64::MAX {
                        break;
                    }
                    echo_pong.push(v).unwrap();
                }
                std::hint::spin_loop();
            }
        });
        pin(0);
        let t = Instant::now();
        drive_round_trips(&ping, &pong, t)
    })
}

fn local_queue() -> f64 {
    let name = format!("/zipc-bench-{}-local", std::process::id());
    let seg = SegmentOptions::new()
        .unlink_on_drop(true)
        .create(&name, 1 << 20)
        .unwrap();
    let q = Queue::<u64>::create(&seg, "q", 1024).unwrap();
    pin(0);
    let t = Instant::now();
    for i in 0..LOCAL_OPS {
        q.push(i).unwrap();
        std::hint::black_box(q.pop().unwrap());
    }
    t.elapsed().as_nanos() as f64 / LOCAL_OPS as f64
}

fn local_arrayqueue() -> f64 {
    let q = crossbeam_queue::ArrayQueue::<u64>::new(1024);
    pin(0);
    let t = Instant::now();
    for i in 0..LOCAL_OPS {
        q.push(i).unwrap();
        std::hint::black_box(q.pop().unwrap());
    }
    t.elapsed().as_nanos() as f64 / LOCAL_OPS as f64
}

fn shared_alternating() -> f64 {
    let sh = Shared::new("alt");
    let q = Queue::<u64>::create(&sh.seg, "q", 1024).unwrap();
    let peer = spawn("alternate", &[&sh.name, &(SPSC_ITEMS / 4).to_string()]);
    pin(0);
    let t = sh.start();
    alternate(&q, SPSC_ITEMS / 4);
    let mine = t.elapsed();
    let theirs: f64 = wait_ok(peer).parse().unwrap();
    (mine.as_nanos() as f64).max(theirs) / (SPSC_ITEMS / 4) as f64
}

fn alternate(q: &Queue<u64>, n: u64) {
    for i in 0..n {
        let mut v = i;
        while let Err(back) = q.push(v) {
            v = back.into_inner();
            std::hint::spin_loop();
        }
        while q.pop().unwrap().is_none() {
            std::hint::spin_loop();
        }
    }
}

fn spsc_stack() -> f64 {
    let sh = Shared::new("stack");
    Stack::<u64>::create(&sh.seg, "s", 1024).unwrap();
    let s = Stack::<u64>::open(&sh.seg, "s").unwrap();
    let peer = spawn("push-stack", &[&sh.name, &STACK_ITEMS.to_string()]);
    pin(0);
    let t = sh.start();
    let mut sum = 0u64;
    let mut got = 0;
    while got < STACK_ITEMS {
        if let Some(v) = s.pop().unwrap() {
            sum = sum.wrapping_add(v);
            got += 1;
        } else {
            std::hint::spin_loop();
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / STACK_ITEMS as f64;
    wait_ok(peer);
    assert_eq!(sum, STACK_ITEMS * (STACK_ITEMS - 1) / 2, "checksum");
    ns
}

fn roundtrip_pipe() -> f64 {
    let mut peer = spawn("echo-stream", &[]);
    let mut to = peer.stdin.take().unwrap();
    let mut from = peer.stdout.take().unwrap();
    pin(0);
    let t = Instant::now();
    let mut buf = [0u8; 8];
    for i in 0..KERNEL_ROUND_TRIPS {
        to.write_all(&i.to_le_bytes()).unwrap();
        from.read_exact(&mut buf).unwrap();
        assert_eq!(u64::from_le_bytes(buf), i);
    }
    let ns = t.elapsed().as_nanos() as f64 / KERNEL_ROUND_TRIPS as f64;
    drop(to);
    assert!(peer.wait().unwrap().success());
    ns
}

fn roundtrip_socket() -> f64 {
    let path = std::env::temp_dir().join(format!("zipc-bench-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let peer = spawn("echo-socket", &[path.to_str().unwrap()]);
    let (mut sock, _) = listener.accept().unwrap();
    pin(0);
    let t = Instant::now();
    let mut buf = [0u8; 8];
    for i in 0..KERNEL_ROUND_TRIPS {
        sock.write_all(&i.to_le_bytes()).unwrap();
        sock.read_exact(&mut buf).unwrap();
        assert_eq!(u64::from_le_bytes(buf), i);
    }
    let ns = t.elapsed().as_nanos() as f64 / KERNEL_ROUND_TRIPS as f64;
    drop(sock);
    wait_ok(peer);
    let _ = std::fs::remove_file(&path);
    ns
}

// ---- peer roles ----

fn role(args: &[String]) {
    pin(1);
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["pingpong", seg] => {
            let seg = Segment::open(seg).unwrap();
            let word = Array::<u64>::open(&seg, "word").unwrap();
            peer_ready(&seg);
            for i in 0..ROUND_TRIPS {
                while word.load(0, Ordering::Acquire).unwrap() != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                word.store(0, 2 * i + 2, Ordering::Release).unwrap();
            }
        }
        ["produce", seg, n] => {
            let seg = Segment::open(seg).unwrap();
            let q = Queue::<u64>::open(&seg, "q").unwrap();
            peer_ready(&seg);
            for i in 0..n.parse::<u64>().unwrap() {
                let mut v = i;
                while let Err(back) = q.push(v) {
                    v = back.into_inner();
                    std::hint::spin_loop();
                }
            }
        }
        ["produce-plain", seg, n] => {
            let q = Plain::open(seg, "q");
            peer_ready(&Segment::open(seg).unwrap());
            for i in 0..n.parse::<u64>().unwrap() {
                while !q.push(i) {
                    std::hint::spin_loop();
                }
            }
        }
        ["echo-plain", seg] => {
            let (ping, pong) = (Plain::open(seg, "ping"), Plain::open(seg, "pong"));
            peer_ready(&Segment::open(seg).unwrap());
            loop {
                if let Some(v) = ping.pop() {
                    if v == u64::MAX {
                        break;
                    }
                    assert!(pong.push(v));
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        ["produce-batched", seg, n] => {
            let seg = Segment::open(seg).unwrap();
            let q = Queue::<u64>::open(&seg, "q").unwrap();
            peer_ready(&seg);
            let n: u64 = n.parse().unwrap();
            let mut next = 0u64;
            let mut buf = [0u64; BATCH];
            while next < n {
                let len = (n - next).min(BATCH as u64) as usize;
                for (i, b) in buf[..len].iter_mut().enumerate() {
                    *b = next + i as u64;
                }
                let pushed = q.push_slice(&buf[..len]).unwrap();
                if pushed == 0 {
                    std::hint::spin_loop();
                }
                next += pushed as u64;
            }
        }
        ["echo-queue", seg] => {
            let seg = Segment::open(seg).unwrap();
            let ping = Queue::<u64>::open(&seg, "ping").unwrap();
            let pong = Queue::<u64>::open(&seg, "pong").unwrap();
            peer_ready(&seg);
            loop {
                if let Some(v) = ping.pop().unwrap() {
                    if v == u64::MAX {
                        break;
                    }
                    pong.push(v).unwrap();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        ["alternate", seg, n] => {
            let seg = Segment::open(seg).unwrap();
            let q = Queue::<u64>::open(&seg, "q").unwrap();
            peer_ready(&seg);
            let t = Instant::now();
            alternate(&q, n.parse().unwrap());
            println!("{}", t.elapsed().as_nanos());
        }
        ["push-stack", seg, n] => {
            let seg = Segment::open(seg).unwrap();
            let s = Stack::<u64>::open(&seg, "s").unwrap();
            peer_ready(&seg);
            for i in 0..n.parse::<u64>().unwrap() {
                let mut v = i;
                while let Err(e) = s.push(v) {
                    v = e.into_inner();
                    std::hint::spin_loop();
                }
            }
        }
        ["echo-stream"] => {
            let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
            let mut buf = [0u8; 8];
            while input.read_exact(&mut buf).is_ok() {
                output.write_all(&buf).unwrap();
                output.flush().unwrap();
            }
        }
        ["echo-socket", path] => {
            let mut sock = UnixStream::connect(path).unwrap();
            let mut buf = [0u8; 8];
            while sock.read_exact(&mut buf).is_ok() {
                sock.write_all(&buf).unwrap();
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
    let workloads: [Workload; 20] = [
        ("cache-line ping-pong round trip (ns)", pingpong),
        ("Queue round trip, 2 processes (ns)", roundtrip_queues),
        ("pipe round trip, 8 B (ns)", roundtrip_pipe),
        ("unix socket round trip, 8 B (ns)", roundtrip_socket),
        ("Queue SPSC cap 1024, 2 processes (ns/item)", || {
            spsc_queue(1024)
        }),
        ("Queue SPSC cap 65536, 2 processes (ns/item)", || {
            spsc_queue(65536)
        }),
        (
            "ArrayQueue SPSC cap 1024, 2 threads (ns/item)",
            spsc_arrayqueue,
        ),
        ("Queue push+pop, 1 thread (ns/pair)", local_queue),
        ("ArrayQueue push+pop, 1 thread (ns/pair)", local_arrayqueue),
        (
            "Queue alternating push/pop, 2 processes (ns/pair)",
            shared_alternating,
        ),
        ("Stack SPSC cap 1024, 2 processes (ns/item)", spsc_stack),
        (
            "Queue SPSC cap 1024, batches of 64, 2 processes (ns/item)",
            || spsc_queue_batched(1024),
        ),
        (
            "Queue SPSC cap 65536, batches of 64, 2 processes (ns/item)",
            || spsc_queue_batched(65536),
        ),
        (
            "Queue SPSC cap 1024, 2 threads, one shared handle (ns/item)",
            || threads_spsc(true),
        ),
        (
            "Queue SPSC cap 1024, 2 threads, a handle each (ns/item)",
            || threads_spsc(false),
        ),
        ("Queue round trip, 2 threads, shared handles (ns)", || {
            threads_roundtrip(true)
        }),
        ("Queue round trip, 2 threads, a handle each (ns)", || {
            threads_roundtrip(false)
        }),
        ("plain Vyukov SPSC cap 1024, 2 processes (ns/item)", || {
            spsc_plain(1024)
        }),
        ("plain Vyukov SPSC cap 65536, 2 processes (ns/item)", || {
            spsc_plain(65536)
        }),
        ("plain Vyukov round trip, 2 processes (ns)", roundtrip_plain),
    ];
    let Some(results) = common::run(&workloads) else {
        return;
    };
    let ratio = |a, b| common::ratio(&results, a, b);
    let targets: [(&str, Vec<f64>, &str); 15] = [
        ("Queue round trip / ping-pong", ratio(1, 0), "≤ 2.6"),
        ("pipe round trip / Queue round trip", ratio(2, 1), "≥ 100"),
        ("socket round trip / Queue round trip", ratio(3, 1), "≥ 100"),
        (
            "Queue SPSC 1024 throughput / ArrayQueue SPSC throughput",
            ratio(6, 4),
            "≥ 0.75",
        ),
        (
            "Queue SPSC 65536 throughput / ArrayQueue SPSC throughput",
            ratio(6, 5),
            "≥ 0.75",
        ),
        (
            "Queue push+pop / ArrayQueue push+pop (time)",
            ratio(7, 8),
            "≤ 1.1",
        ),
        (
            "Queue SPSC 1024 batched throughput / ArrayQueue SPSC throughput",
            ratio(6, 11),
            "≥ 0.75",
        ),
        (
            "Queue SPSC 65536 batched throughput / ArrayQueue SPSC throughput",
            ratio(6, 12),
            "≥ 0.75",
        ),
        (
            "SPSC throughput, shared handle / a handle each",
            ratio(14, 13),
            "≈ 1",
        ),
        (
            "round trip, shared handles / a handle each (time)",
            ratio(15, 16),
            "≈ 1",
        ),
        (
            "Queue SPSC 1024 throughput / plain Vyukov 1024",
            ratio(17, 4),
            "≥ 1",
        ),
        (
            "Queue SPSC 65536 throughput / plain Vyukov 65536",
            ratio(18, 5),
            "≥ 1",
        ),
        (
            "Queue SPSC 1024 batched throughput / plain Vyukov 1024",
            ratio(17, 11),
            "≥ 1",
        ),
        (
            "Queue SPSC 65536 batched throughput / plain Vyukov 65536",
            ratio(18, 12),
            "≥ 1",
        ),
        (
            "Queue round trip / plain Vyukov round trip (time)",
            ratio(1, 19),
            "≤ 1",
        ),
    ];
    common::print_ratios(&targets);
}
