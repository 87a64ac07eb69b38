//! Which processes use a segment: the crate's one liveness model.
//!
//! A process that opens a queue or stack handle (and, as they arrive, any kind that blocks or
//! holds) records itself in a slot of the runtime entry (`runtime`, FORMAT.md appendix R): its
//! pid, its start time (clock ticks after boot, `/proc/PID/stat` field 22), which tells a
//! process from a later one that reuses its pid (with two more checks for a reuse within one
//! clock tick: the pid must be a process, not a thread, and it must map the segment), and its
//! pid namespace, since a pid means nothing in another one. One record per process and segment, however many handles; it is
//! released when the last handle goes. A process that dies leaves its record, and the next
//! process to attach clears every record whose process is provably dead. The other
//! implementations record nothing: their processes are never listed.
//!
//! ```text
//! record (32 bytes)  +0  atomic u64 owner    pid | nonce << 32; 0 = free
//!                    +8  atomic u64 start    start time in clock ticks
//!                    +16 atomic u64 pidns    inodes of the pid and time namespaces
//!                    +24 atomic u64 sealed   equal to `owner` once `start` and `pidns` are
//!                                            written; 0 before, and from the owner's release on
//! ```
//!
//! Only a sealed record (owner and seal read equal before and after its fields) is ever judged;
//! any other is [`Liveness::Unknown`], so a record in the middle of a claim or a release can
//! never make a live process look dead. A process that dies mid-claim leaves an unsealed record
//! that nobody clears: one of the 64 slots is lost, never a live peer.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::raw::{Anchored, Region};
use crate::segment::Segment;

/// Size of one record.
pub(crate) const RECORD: usize = 32;
use crate::journal::LANES;
/// Bytes of lanes per record.
const RECORD_LANES: usize = LANES * crate::journal::LANE;
const OFF_OWNER: usize = 0;
const OFF_START: usize = 8;
const OFF_PIDNS: usize = 16;
const OFF_SEALED: usize = 24;

/// The pid in an `owner` word (its low 32 bits).
pub(crate) fn pid_of(owner: u64) -> u32 {
    u32::try_from(owner & u64::from(u32::MAX)).unwrap_or(0)
}

/// A process recorded in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Peer {
    /// Its process id, in the namespace it recorded.
    pub pid: u32,
    /// Whether it still runs.
    pub liveness: Liveness,
}

/// Whether a recorded process still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Liveness {
    /// The process runs (same pid, same start time).
    Alive,
    /// The process is gone: no such pid, a zombie, or another process under its pid.
    Dead,
    /// It cannot be told from here: it recorded another pid namespace, its `/proc` entry is
    /// not readable, or its record is being claimed or released (not sealed).
    Unknown,
}

/// This process as a record describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Me {
    pid: u32,
    start: u64,
    pidns: u64,
}

fn me() -> Option<Me> {
    fn describe(pid: u32) -> Option<Me> {
        // `/proc` must be this process's own pid namespace's: `/proc/self` then names `pid`.
        let Stat::Running {
            pid: own, start, ..
        } = stat("self")
        else {
            return None;
        };
        (own == pid).then_some(Me {
            pid,
            start,
            pidns: pid_namespace()?,
        })
    }
    static ME: OnceLock<Option<Me>> = OnceLock::new();
    let pid = current_pid();
    match *ME.get_or_init(|| describe(pid)) {
        Some(me) if me.pid == pid => Some(me),
        // A child forked after the first call: describe it afresh.
        _ => describe(pid),
    }
}

/// What `/proc/PROC/stat` says of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stat {
    /// No such process in this `/proc`.
    Missing,
    /// It exited and is not reaped yet (state `Z` with no thread left: a leader that exited
    /// while other threads run shows `Z` too, and is alive).
    Exited,
    /// It runs: its pid (field 1) and start time (field 22).
    Running { pid: u32, start: u64 },
    /// Unreadable or unparsable.
    Unreadable,
}

fn stat(process: &str) -> Stat {
    let text = match std::fs::read_to_string(format!("/proc/{process}/stat")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Stat::Missing,
        Err(_) => return Stat::Unreadable,
    };
    // `comm` (field 2) is in parentheses and may contain anything: fields resume after the
    // last `)`. There, index 0 is field 3 (state), 17 field 20 (threads), 19 field 22 (start).
    let Some((head, rest)) = text.rsplit_once(')') else {
        return Stat::Unreadable;
    };
    let pid = head.split_whitespace().next().and_then(|f| f.parse().ok());
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (pid, fields.first(), number(17), number(19)) {
        (Some(_), Some(&"Z"), Some(threads), _) if threads <= 1 => Stat::Exited,
        (Some(pid), Some(_), Some(_), Some(start)) => Stat::Running { pid, start },
        _ => Stat::Unreadable,
    }
}

/// This process's namespaces as a record names them: the inode of its pid namespace, XORed
/// with the inode of its time namespace rotated by 32 bits (0 on kernels without time
/// namespaces). Start times in `/proc` are shifted by the reading process's time namespace, so
/// a record is judged only by processes that share both.
fn pid_namespace() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let pid = std::fs::metadata("/proc/self/ns/pid").ok()?.ino();
    let time = std::fs::metadata("/proc/self/ns/time").map_or(0, |m| m.ino());
    Some(pid ^ time.rotate_left(32))
}

/// The segment file a live owner has mapped: device and inode, as `fstat` gives them.
pub(crate) type FileId = (u64, u64);

/// Whether the process of a sealed record (`pid`, `start`, `pidns`) still runs. Dead only on
/// proof: no such process (confirmed by `kill(pid, 0)`, since `/proc` may hide other users'
/// processes), an exited one, or another process under its pid.
///
/// The start time counts clock ticks, so a pid reused within one tick (kernels that hand out
/// the lowest free pid do) passes it, and so does a thread whose number is the pid. Two more
/// proofs close that: a thread that is not a group leader is no process, and a live owner
/// maps the segment `file` (its record is released before its mapping goes), so a process
/// that provably does not map it is another one. `file` is `None` where that cannot be told
/// (this process's own maps do not show the file).
///
/// `thorough` false skips those two proofs (two more `/proc` reads, one of a whole memory map):
/// they only ever turn a live-looking process into a dead one, so without them a reused pid
/// may be taken for alive, never a live process for dead.
fn liveness(pid: u32, start: u64, pidns: u64, file: Option<FileId>, thorough: bool) -> Liveness {
    let Some(me) = me() else {
        return Liveness::Unknown;
    };
    if pidns != me.pidns {
        return Liveness::Unknown;
    }
    let process = pid.to_string();
    match stat(&process) {
        Stat::Running { start: now, .. } if now == start && !thorough => Liveness::Alive,
        Stat::Running { start: now, .. } if now == start => {
            let leader = thread_group(&process).map(|tgid| tgid == pid);
            let maps = file.and_then(|file| maps_file(&process, file));
            if leader == Some(false) || maps == Some(false) {
                Liveness::Dead
            } else {
                Liveness::Alive
            }
        }
        Stat::Running { .. } | Stat::Exited => Liveness::Dead,
        Stat::Missing => {
            let gone = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
                .map(rustix::process::test_kill_process);
            match gone {
                Some(Err(rustix::io::Errno::SRCH)) => Liveness::Dead,
                _ => Liveness::Unknown,
            }
        }
        Stat::Unreadable => Liveness::Unknown,
    }
}

/// The thread group (process) of the thread `/proc/PROC` names; `None` when unreadable.
fn thread_group(process: &str) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Tgid:"))
        .and_then(|tgid| tgid.trim().parse().ok())
}

/// Whether process `PROC` maps the file `file`, from `/proc/PROC/maps`; `None` when that
/// cannot be read (another user's process, say).
fn maps_file(process: &str, (dev, ino): FileId) -> Option<bool> {
    use std::io::BufRead;
    let maps = std::fs::File::open(format!("/proc/{process}/maps")).ok()?;
    // Each line: range, permissions, offset, device (hex major:minor), inode, path.
    let device = format!(
        "{:02x}:{:02x}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev)
    );
    let inode = ino.to_string();
    for line in std::io::BufReader::new(maps).lines() {
        let line = line.ok()?;
        let mut fields = line.split_whitespace().skip(3);
        if fields.next() == Some(device.as_str()) && fields.next() == Some(inode.as_str()) {
            return Some(true);
        }
    }
    Some(false)
}

/// This process's record in one segment; released when the last handle holding it goes.
#[derive(Debug)]
pub(crate) struct Attachment {
    record: Anchored<Region<'static>>,
    /// The record's lanes (`journal`).
    lanes: Option<Anchored<Region<'static>>>,
    owner: u64,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // A child forked with our handles drops copies of them: the record is the parent's.
        if current_pid() != pid_of(self.owner) {
            return;
        }
        let record = self.record.get();
        let field = |off| record.atomic_u64(off).ok();
        let (Some(owner), Some(sealed)) = (field(OFF_OWNER), field(OFF_SEALED)) else {
            return;
        };
        // Only a record still ours: touching one taken over would damage its new owner's.
        // Acquire: pairs with a cleaner's release of it.
        if owner.load(Ordering::Acquire) != self.owner {
            return;
        }
        // A hold still recorded (a guard forgotten with `mem::forget`, so that its lock stays
        // locked): keep the record, so that once this process is gone a waiter finds the hold
        // and takes the lock over, and no later owner of the record inherits it.
        if let Some(lanes) = &self.lanes {
            if (0..crate::journal::LANES).any(|j| !crate::journal::idle(lanes.get(), j)) {
                return;
            }
        }
        // Unseal first (Release): from here on readers do not judge the record.
        sealed.store(0, Ordering::Release);
        // Release: a later claimer sees the unsealed record before the owner word frees it.
        let _ = owner.compare_exchange(self.owner, 0, Ordering::Release, Ordering::Relaxed);
    }
}

/// Attachments of this process, by process id (a forked child inherits its parent's map) and
/// segment file (device, inode).
type Registry = Mutex<HashMap<(u32, u64, u64), Weak<Attachment>>>;

fn current_pid() -> u32 {
    rustix::process::getpid()
        .as_raw_nonzero()
        .get()
        .unsigned_abs()
}

/// The registry, and whether this process made it (`false` in a child forked since, where a
/// thread of the parent may have held its lock at the fork and will never release it).
fn registry() -> (&'static Registry, bool) {
    static REGISTRY: OnceLock<(u32, Registry)> = OnceLock::new();
    let (maker, registry) = REGISTRY.get_or_init(|| (current_pid(), Mutex::new(HashMap::new())));
    (registry, *maker == current_pid())
}

/// Records this process in the records of `segment` (the region `records` of the runtime
/// entry, `count` records, whose lanes are `lanes`), clearing the records of dead processes
/// whose lanes are idle first; the existing
/// attachment when this process already has one. `None` when every record belongs to a live
/// or undecidable process, or this process cannot describe itself.
pub(crate) fn attach(
    segment: &Segment,
    records: Region<'_>,
    lanes: Region<'_>,
    count: usize,
) -> Option<Arc<Attachment>> {
    let me = me()?;
    let (dev, ino) = segment.file_identity();
    let key = (me.pid, dev, ino);
    // In the process that made the registry, wait for the lock (threads attaching at once
    // must all be recorded); in a forked child only try it: a parent's thread that held it
    // at the fork never lets go, and the child then goes unrecorded rather than hang.
    let (registry, own) = registry();
    let mut registry = if own {
        registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    } else {
        match registry.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        }
    };
    if let Some(existing) = registry.get(&key).and_then(Weak::upgrade)
        && existing.is_held()
    {
        return Some(existing);
    }
    clear_dead(records, lanes, count, Some(segment.file_identity()));
    let owner = u64::from(me.pid) | (u64::from(nonce()) << 32);
    for i in 0..count {
        let Some(record) = i
            .checked_mul(RECORD)
            .and_then(|at| records.sub(at as u64, RECORD as u64))
        else {
            break;
        };
        let anchored = Anchored::region(segment.mapping(), record)?;
        let field = |off| record.atomic_u64(off).ok();
        let (Some(word), Some(start), Some(pidns), Some(sealed)) = (
            field(OFF_OWNER),
            field(OFF_START),
            field(OFF_PIDNS),
            field(OFF_SEALED),
        ) else {
            break;
        };
        // Acquire on success: the previous owner's release is visible before we write.
        if word
            .compare_exchange(0, owner, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        // Relaxed: nobody judges the record before the seal below publishes these.
        pidns.store(me.pidns, Ordering::Relaxed);
        start.store(me.start, Ordering::Relaxed);
        // Release: a reader that sees the seal sees the fields it covers.
        sealed.store(owner, Ordering::Release);
        let own_lanes = i
            .checked_mul(RECORD_LANES)
            .and_then(|at| lanes.sub(at as u64, RECORD_LANES as u64))
            .and_then(|l| Anchored::region(segment.mapping(), l));
        let attachment = Arc::new(Attachment {
            record: anchored,
            lanes: own_lanes,
            owner,
        });
        registry.retain(|_, w| w.strong_count() > 0);
        registry.insert(key, Arc::downgrade(&attachment));
        return Some(attachment);
    }
    None
}

/// A random non-zero nonce, so that an owner word is never repeated by a later process.
fn nonce() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    pid_of(bits).max(1)
}

impl Attachment {
    /// The record's lanes.
    pub(crate) fn lanes(&self) -> Option<&Anchored<Region<'static>>> {
        self.lanes.as_ref()
    }

    /// Whether the record still names this attachment (nobody cleared it meanwhile).
    fn is_held(&self) -> bool {
        let record = self.record.get();
        // Acquire: as in `drop`.
        record
            .atomic_u64(OFF_OWNER)
            .is_ok_and(|w| w.load(Ordering::Acquire) == self.owner)
    }
}

/// Frees every record whose process is provably dead and whose lanes hold no claim: a claim
/// stays, with its record, until recovery of its structure has dealt with it.
pub(crate) fn clear_dead(
    records: Region<'_>,
    lanes: Region<'_>,
    count: usize,
    file: Option<FileId>,
) {
    for (i, owner, peer) in scan(records, count, file) {
        if peer.liveness != Liveness::Dead {
            continue;
        }
        let busy = (0..LANES).any(|j| {
            i.checked_mul(LANES)
                .and_then(|l| l.checked_add(j))
                .is_none_or(|lane| !crate::journal::idle(lanes, lane))
        });
        if busy {
            continue;
        }
        let Some(word) = i
            .checked_mul(RECORD)
            .and_then(|at| records.atomic_u64(at.checked_add(OFF_OWNER)?).ok())
        else {
            continue;
        };
        // Only the owner value judged dead (pid and nonce): a record re-claimed meanwhile
        // stays. AcqRel: the judgement's reads come before, a later claimer's writes after.
        let _ = word.compare_exchange(owner, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// The processes recorded among the `count` records of `records`, in the segment file
/// `file` (which this process maps; `None` when it is not known). Works on read-only
/// mappings.
pub(crate) fn read(records: Region<'_>, count: usize, file: Option<FileId>) -> Vec<Peer> {
    scan(records, count, file)
        .into_iter()
        .map(|(_, _, p)| p)
        .collect()
}

/// The occupied records, as index, pid and liveness.
pub(crate) fn records(
    records: Region<'_>,
    count: usize,
    file: Option<FileId>,
) -> Vec<crate::journal::RecordOf> {
    scan(records, count, file)
        .into_iter()
        .map(|(i, owner, p)| (i, owner, p.pid, p.liveness))
        .collect()
}

/// The occupied records: index, owner word, and the process.
fn scan(records: Region<'_>, count: usize, file: Option<FileId>) -> Vec<(usize, u64, Peer)> {
    // The maps proof only where it works: where this process's own maps show the file (a
    // file system that maps through another inode would make every owner look dead).
    let file = file.filter(|&f| maps_file("self", f) == Some(true));
    let mut peers = Vec::new();
    for i in 0..count {
        match judge_at(records, i, file, true) {
            Judged::Outside => break,
            Judged::Free => {}
            Judged::Held(owner, peer) => peers.push((i, owner, peer)),
        }
    }
    peers
}

/// What one record slot holds.
enum Judged {
    /// There is no record `i`.
    Outside,
    /// The record is free.
    Free,
    /// Its owner word and process.
    Held(u64, Peer),
}

/// Judges record `i` of `records`, with the maps proof for `file` if given.
fn judge_at(records: Region<'_>, i: usize, file: Option<FileId>, thorough: bool) -> Judged {
    let Some(at) = i.checked_mul(RECORD) else {
        return Judged::Outside;
    };
    // Acquire: the fields written before the seal's Release are visible after it.
    let field = |off: usize| {
        at.checked_add(off)
            .and_then(|o| records.load_u64(o, Ordering::Acquire).ok())
    };
    let (Some(owner), Some(sealed), Some(start), Some(pidns), Some(again)) = (
        field(OFF_OWNER),
        field(OFF_SEALED),
        field(OFF_START),
        field(OFF_PIDNS),
        field(OFF_OWNER),
    ) else {
        return Judged::Outside;
    };
    if owner == 0 {
        return Judged::Free;
    }
    let pid = pid_of(owner);
    // Judged only when sealed and unchanged while its fields were read.
    let liveness = if sealed == owner && again == owner {
        liveness(pid, start, pidns, file, thorough)
    } else {
        Liveness::Unknown
    };
    Judged::Held(owner, Peer { pid, liveness })
}

/// The process of record `i`, judged by its start time alone, without the thread-group and
/// maps proofs (too dear for a waiter that asks every 200 ms; see `liveness`).
pub(crate) fn judge(records: Region<'_>, i: usize) -> Option<(u64, Peer)> {
    match judge_at(records, i, None, false) {
        Judged::Held(owner, peer) => Some((owner, peer)),
        Judged::Outside | Judged::Free => None,
    }
}

/// A waiter's watch on the processes it finds holding what it waits for: after the first look
/// at a holder (its start time, as for any record), a pidfd, so that every later look costs one
/// `poll`. A pidfd becomes readable when its process exits (a zombie included) and never
/// refers to a later process under the same pid.
#[derive(Debug, Default)]
pub(crate) struct Vigil {
    /// Owner words of the holders watched, with their pidfds.
    watched: Vec<(u64, rustix::fd::OwnedFd)>,
}

impl Vigil {
    /// Whether the process of record `record` of `records`, whose owner word was `owner` when
    /// its hold was read, still runs.
    pub(crate) fn judge(&mut self, records: Region<'_>, record: usize, owner: u64) -> Liveness {
        if let Some((_, fd)) = self.watched.iter().find(|(o, _)| *o == owner) {
            return if exited(fd) {
                Liveness::Dead
            } else {
                Liveness::Alive
            };
        }
        let judged = |records| match judge(records, record) {
            Some((o, peer)) if o == owner => peer.liveness,
            _ => Liveness::Unknown,
        };
        let liveness = judged(records);
        if liveness == Liveness::Alive
            && let Some(pid) = i32::try_from(pid_of(owner))
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            && let Ok(fd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            // Still the same process after the open: the pidfd is of the recorded one.
            && judged(records) == Liveness::Alive
        {
            // Bounded: a waiter meets few holders; the oldest is forgotten.
            if self.watched.len() >= 8 {
                self.watched.remove(0);
            }
            self.watched.push((owner, fd));
        }
        liveness
    }
}

/// Whether the process of `pidfd` has exited.
fn exited(pidfd: &rustix::fd::OwnedFd) -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // An error leaves the process taken for alive: never a false death.
    poll(&mut fds, Some(&zero)).is_ok_and(|n| n > 0)
        && fds
            .first()
            .is_some_and(|f| f.revents().contains(PollFlags::IN))
}
