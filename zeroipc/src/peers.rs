//! Which processes use a segment: the crate's one liveness model.
//!
//! A process that opens a queue or stack handle (and, as they arrive, any kind that blocks or
//! holds) records itself in a slot of the runtime entry (`runtime`, FORMAT.md appendix R): its
//! pid, its start time (clock ticks after boot, `/proc/PID/stat` field 22), which tells a
//! process from a later one that reuses its pid, and its pid namespace, since a pid means
//! nothing in another one. One record per process and segment, however many handles; it is
//! released when the last handle goes. A process that dies leaves its record, and the next
//! process to attach clears every record whose process is provably dead. The other
//! implementations record nothing: their processes are never listed.
//!
//! ```text
//! record (32 bytes)  +0  atomic u64 owner   pid | nonce << 32; 0 = free
//!                    +8  atomic u64 start   start time in clock ticks; 0 while being claimed
//!                    +16 atomic u64 pidns   inode of the pid namespace; 0 while being claimed
//!                    +24 u64 reserved 0
//! ```

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::raw::{Anchored, Region};
use crate::segment::Segment;

/// Size of one record.
pub(crate) const RECORD: usize = 32;
const OFF_OWNER: usize = 0;
const OFF_START: usize = 8;
const OFF_PIDNS: usize = 16;

/// The pid in an `owner` word (its low 32 bits).
fn pid_of(owner: u64) -> u32 {
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
    /// It cannot be told from here: it recorded another pid namespace, or its `/proc` entry
    /// is not readable.
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
        Some(Me {
            pid,
            start: start_time(pid).ok()??,
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

/// The start time of `pid` (`Ok(None)` for a zombie), or the error of reading it.
fn start_time(pid: u32) -> std::io::Result<Option<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // `comm` (field 2) is in parentheses and may contain anything: fields resume after the
    // last `)`. There, field 3 is the state and field 22 the start time.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut fields = rest.split_whitespace();
    if fields.next() == Some("Z") {
        return Ok(None);
    }
    Ok(fields.nth(18).and_then(|f| f.parse().ok()))
}

/// The inode of this process's pid namespace.
fn pid_namespace() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino())
}

/// Whether the process of a record (`pid`, `start`, `pidns`, the latter two 0 while its
/// owner is claiming it) still runs.
fn liveness(pid: u32, start: u64, pidns: u64) -> Liveness {
    let Some(me) = me() else {
        return Liveness::Unknown;
    };
    if pidns != 0 && pidns != me.pidns {
        return Liveness::Unknown;
    }
    match start_time(pid) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Liveness::Dead,
        Err(_) => Liveness::Unknown,
        Ok(None) => Liveness::Dead,
        // Still claiming (or died claiming): its pid runs, so count it alive.
        Ok(Some(_)) if start == 0 => Liveness::Alive,
        Ok(Some(now)) if now == start => Liveness::Alive,
        Ok(Some(_)) => Liveness::Dead,
    }
}

/// This process's record in one segment; released when the last handle holding it goes.
#[derive(Debug)]
pub(crate) struct Attachment {
    record: Anchored<Region<'static>>,
    owner: u64,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // A child forked with our handles drops copies of them: the record is the parent's.
        if current_pid() != pid_of(self.owner) {
            return;
        }
        let record = self.record.get();
        if let (Ok(owner), Ok(start), Ok(pidns)) = (
            record.atomic_u64(OFF_OWNER),
            record.atomic_u64(OFF_START),
            record.atomic_u64(OFF_PIDNS),
        ) {
            // Relaxed: the record is ours until the owner word says otherwise.
            start.store(0, Ordering::Relaxed);
            pidns.store(0, Ordering::Relaxed);
            // Release: a later claimer sees the cleared fields. Only if still ours: a peer
            // may have judged us dead (it cannot, while we run) or the segment been rewritten.
            let _ = owner.compare_exchange(self.owner, 0, Ordering::Release, Ordering::Relaxed);
        }
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

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Records this process in the records of `segment` (the region `records` of the runtime
/// entry, `count` records), clearing the records of dead processes first; the existing
/// attachment when this process already has one. `None` when every record belongs to a live
/// or undecidable process, or this process cannot describe itself.
pub(crate) fn attach(
    segment: &Segment,
    records: Region<'_>,
    count: usize,
) -> Option<Arc<Attachment>> {
    let me = me()?;
    let (dev, ino) = segment.file_identity();
    let key = (me.pid, dev, ino);
    let mut registry = registry()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(existing) = registry.get(&key).and_then(Weak::upgrade) {
        return Some(existing);
    }
    clear_dead(records, count);
    static NONCE: AtomicU32 = AtomicU32::new(0);
    let nonce = NONCE.fetch_add(1, Ordering::Relaxed) ^ pid_of(me.start);
    let owner = u64::from(me.pid) | (u64::from(nonce.max(1)) << 32);
    for i in 0..count {
        let Some(record) = i
            .checked_mul(RECORD)
            .and_then(|at| records.sub(at as u64, RECORD as u64))
        else {
            break;
        };
        let Ok(word) = record.atomic_u64(OFF_OWNER) else {
            break;
        };
        // Acquire on success: the previous owner's clearing is visible before we write.
        if word
            .compare_exchange(0, owner, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        let (Ok(start), Ok(pidns)) = (record.atomic_u64(OFF_START), record.atomic_u64(OFF_PIDNS))
        else {
            break;
        };
        // Release: a reader that sees the start time sees the owner word it belongs to.
        pidns.store(me.pidns, Ordering::Release);
        start.store(me.start, Ordering::Release);
        let attachment = Arc::new(Attachment {
            record: Anchored::region(segment.mapping(), record)?,
            owner,
        });
        registry.retain(|_, w| w.strong_count() > 0);
        registry.insert(key, Arc::downgrade(&attachment));
        return Some(attachment);
    }
    None
}

/// Frees every record whose process is provably dead.
fn clear_dead(records: Region<'_>, count: usize) {
    for (i, owner, peer) in scan(records, count) {
        if peer.liveness != Liveness::Dead {
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

/// The processes recorded among the `count` records of `records`. Works on read-only
/// mappings.
pub(crate) fn read(records: Region<'_>, count: usize) -> Vec<Peer> {
    scan(records, count)
        .into_iter()
        .map(|(_, _, p)| p)
        .collect()
}

/// The occupied records: index, owner word, and the process.
fn scan(records: Region<'_>, count: usize) -> Vec<(usize, u64, Peer)> {
    let mut peers = Vec::new();
    for i in 0..count {
        let Some(at) = i.checked_mul(RECORD) else {
            break;
        };
        let field = |off: usize| {
            at.checked_add(off)
                .and_then(|o| records.load_u64(o, Ordering::Acquire).ok())
        };
        // Acquire: the fields written before the owner's release are visible.
        let (Some(owner), Some(start), Some(pidns)) =
            (field(OFF_OWNER), field(OFF_START), field(OFF_PIDNS))
        else {
            break;
        };
        if owner == 0 {
            continue;
        }
        let pid = pid_of(owner);
        peers.push((
            i,
            owner,
            Peer {
                pid,
                liveness: liveness(pid, start, pidns),
            },
        ));
    }
    peers
}
