//! Liveness records (issue 10, item 1): every process with a queue or stack handle on a segment
//! is recorded once, dead processes are told apart from live ones (also when their pid is
//! reused) and cleared by the next process that attaches, records of another pid namespace
//! or in the middle of a claim are never judged, and the records are bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

use zeroipc::{Liveness, Peer, Queue, Segment};
use zeroipc_tests::{guarded, poke};

const CHILD: &str = env!("CARGO_BIN_EXE_zeroipc-test-child");

/// Offset of record `i` in the segment: the runtime entry's records start at +272.
fn record_at(seg: &Segment, i: u64) -> u64 {
    seg.entry("zeroipc.runtime").unwrap().unwrap().offset + 272 + 32 * i
}

/// Field 22 (start time) of `/proc/PROC/stat`.
fn start_time(process: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

fn my_start_time() -> u64 {
    start_time("self")
}

fn my_pidns() -> u64 {
    zeroipc_tests::namespaces()
}

/// Writes record `i` as a process would: owner, fields, and the seal (equal to the owner), or
/// no seal, as a claim in progress leaves it.
fn plant_record(name: &str, seg: &Segment, i: u64, pid: u32, start: u64, pidns: u64, sealed: bool) {
    let owner = u64::from(pid) | (7 + i) << 32;
    let mut record = Vec::new();
    record.extend_from_slice(&owner.to_le_bytes());
    record.extend_from_slice(&start.to_le_bytes());
    record.extend_from_slice(&pidns.to_le_bytes());
    record.extend_from_slice(&(if sealed { owner } else { 0 }).to_le_bytes());
    poke(name, record_at(seg, i), &record);
}

fn plant(name: &str, seg: &Segment, i: u64, pid: u32, start: u64, pidns: u64) {
    plant_record(name, seg, i, pid, start, pidns, true);
}

/// Record `i` naming this very process, sealed.
fn plant_me(name: &str, seg: &Segment, i: u64) {
    plant(
        name,
        seg,
        i,
        std::process::id(),
        my_start_time(),
        my_pidns(),
    );
}

fn pids(peers: &[Peer], liveness: Liveness) -> Vec<u32> {
    let mut v: Vec<u32> = peers
        .iter()
        .filter(|p| p.liveness == liveness)
        .map(|p| p.pid)
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn a_process_is_recorded_once_and_released_with_its_last_handle() {
    let (name, _g) = guarded("peers-own");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    assert!(seg.peers().is_empty(), "no runtime entry yet");
    let q = Queue::<u64>::create(&seg, "q", 4).unwrap();
    let q2 = Queue::<u64>::open(&Segment::open(&name).unwrap(), "q").unwrap();
    let me = std::process::id();
    assert_eq!(
        pids(&seg.peers(), Liveness::Alive),
        [me],
        "one record for two handles"
    );
    drop(q);
    assert_eq!(pids(&seg.peers(), Liveness::Alive), [me]);
    drop(q2);
    assert!(seg.peers().is_empty(), "released with the last handle");
    // Read-only segments list the records too.
    let _q = Queue::<u64>::open(&seg, "q").unwrap();
    let ro = Segment::open_read_only(&name).unwrap();
    assert_eq!(pids(&ro.peers(), Liveness::Alive), [me]);
}

#[test]
fn a_killed_peer_is_dead_and_cleared_by_the_next_process_that_attaches() {
    let (name, _g) = guarded("peers-kill");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    Queue::<u64>::create(&seg, "q", 4).unwrap();
    assert!(seg.peers().is_empty(), "the creating handle is gone");
    let mut child = Command::new(CHILD)
        .args(["attach-hold", &name, "q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let line = zeroipc_tests::first_line(&mut child);
    let pid = child.id();
    assert_eq!(line, format!("attached pid={pid}"));
    assert_eq!(pids(&seg.peers(), Liveness::Alive), [pid]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        pids(&seg.peers(), Liveness::Dead),
        [pid],
        "killed, its record stays"
    );
    // The next process to attach (this one) clears it and records itself.
    let _q = Queue::<u64>::open(&seg, "q").unwrap();
    let peers = seg.peers();
    assert_eq!(pids(&peers, Liveness::Alive), [std::process::id()]);
    assert!(pids(&peers, Liveness::Dead).is_empty(), "{peers:?}");
}

#[test]
fn a_reused_pid_is_dead_and_another_namespace_is_unknown_and_kept() {
    let (name, _g) = guarded("peers-reuse");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    drop(Queue::<u64>::create(&seg, "q", 4).unwrap());
    let me = std::process::id();
    // Our pid with another start time: a process that had our pid before us.
    plant(&name, &seg, 5, me, my_start_time() + 1, my_pidns());
    // A pid from another pid namespace: cannot be judged from here.
    plant(&name, &seg, 9, 1, 12345, my_pidns() + 1);
    // A claim in progress (no seal) by a pid that does not exist here: never judged.
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    plant_record(&name, &seg, 11, gone_pid, 0, 0, false);
    let peers = seg.peers();
    assert_eq!(pids(&peers, Liveness::Dead), [me], "{peers:?}");
    let mut unknown = vec![1, gone_pid];
    unknown.sort_unstable();
    assert_eq!(pids(&peers, Liveness::Unknown), unknown, "{peers:?}");
    let _q = Queue::<u64>::open(&seg, "q").unwrap();
    let peers = seg.peers();
    assert!(pids(&peers, Liveness::Dead).is_empty(), "{peers:?}");
    assert_eq!(
        pids(&peers, Liveness::Unknown),
        unknown,
        "never cleared: {peers:?}"
    );
    assert_eq!(pids(&peers, Liveness::Alive), [me]);
}

#[test]
fn a_pid_reused_within_the_same_clock_tick_is_dead() {
    // Start times count clock ticks, so a pid handed out again within one tick (kernels
    // that give the lowest free pid do), or given to a thread, looks like the same process
    // by its start time alone.
    let (name, _g) = guarded("peers-tick");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    drop(Queue::<u64>::create(&seg, "q", 4).unwrap());
    // A live process with the recorded start time that does not map the segment.
    let mut other = Command::new("sleep").arg("30").spawn().unwrap();
    let other_pid = other.id();
    plant(
        &name,
        &seg,
        3,
        other_pid,
        start_time(&other_pid.to_string()),
        my_pidns(),
    );
    // A thread of this process, which maps the segment: a thread is no process.
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let tid: u32 = stat.split_whitespace().next().unwrap().parse().unwrap();
        tid_tx.send((tid, start_time("thread-self"))).unwrap();
        let _ = done_rx.recv();
    });
    let (tid, tid_start) = tid_rx.recv().unwrap();
    assert_ne!(tid, std::process::id());
    plant(&name, &seg, 4, tid, tid_start, my_pidns());
    // This process itself, which maps the segment, is alive.
    plant_me(&name, &seg, 5);
    let mut dead = vec![other_pid, tid];
    dead.sort_unstable();
    let peers = seg.peers();
    assert_eq!(pids(&peers, Liveness::Dead), dead, "{peers:?}");
    assert_eq!(
        pids(&peers, Liveness::Alive),
        [std::process::id()],
        "{peers:?}"
    );
    // The inspector, which maps the segment read-only, judges alike.
    let report = Segment::inspect(&name).unwrap();
    assert_eq!(pids(&report.peers, Liveness::Dead), dead, "{report:?}");
    assert_eq!(pids(&report.peers, Liveness::Alive), [std::process::id()]);
    drop(done_tx);
    thread.join().unwrap();
    other.kill().unwrap();
    other.wait().unwrap();
}

#[test]
fn the_records_are_bounded_and_a_process_without_one_still_works() {
    let (name, _g) = guarded("peers-full");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    drop(Queue::<u64>::create(&seg, "q", 4).unwrap());
    // Every one of the 64 records held by a live process (this one, as far as anyone can tell).
    for i in 0..64 {
        plant_me(&name, &seg, i);
    }
    let out = Command::new(CHILD)
        .args(["attach-hold", &name, "q"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let peers = seg.peers();
    assert_eq!(peers.len(), 64);
    assert_eq!(pids(&peers, Liveness::Alive).len(), 64);
}
