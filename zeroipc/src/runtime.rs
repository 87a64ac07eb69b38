//! This implementation's own entry in a segment, [`NAME`]: the waiter counts that let our
//! releases skip the wake-up system call when nobody sleeps (see `wait`), the records of the
//! processes using the segment (`peers`) and their claims in flight (`journal`).
//!
//! The other ZeroIPC implementations look entries up by name and never open this one; to them
//! it is an entry like any other (it takes one table slot and [`SIZE`] bytes). It is made on
//! first need, by the first handle of a kind that can block (queue, stack) opened or created on
//! a writable segment, after that handle's own entries, and never when
//! [`SegmentOptions::runtime_entry`](crate::SegmentOptions::runtime_entry) is off. When it cannot
//! be made (the table is full, no space is left, the segment is read-only) blocking calls still
//! work: they look every 1 ms and notice changes without being woken.
//!
//! ```text
//! +0    u32 magic    "ZIRT" (5A 49 52 54)
//! +4    u32 version  2
//! +8    u32 buckets  64
//! +12   u32 records  64
//! +16   atomic u32 waiters[64]   sleepers on the words that hash to each bucket
//! +272  records[64]              the processes using the segment, 32 bytes each (`peers`)
//! +2320 u32 lanes    8           lanes per record
//! +2324 u32 reserved 0
//! +2328 atomic u64 recovered     claims of dead processes undone so far
//! +2336 atomic u64 lost          items lost with them
//! +2344 lanes[64 * 8]            from the first offset here whose segment offset is a
//!                                multiple of 64; 64 bytes each, record i's lane j at
//!                                8i + j (`journal`); the entry has 64 bytes of room for this
//! ```
//!
//! A word's bucket is `(address / 4) % 64`. The address of a word inside a page is the same in
//! every process that maps the segment (mappings start on page boundaries), so every process
//! computes the same bucket without knowing where its peers mapped the segment.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use crate::error::Error;
use std::sync::atomic::Ordering;

use crate::journal::{self, Claim, Op};
use crate::peers;
use crate::peers::Liveness;
use crate::raw::{Access, Anchored, Region, Words};
use crate::segment::Segment;
use crate::wait::Bell;

/// The entry name.
pub(crate) const NAME: &str = "zeroipc.runtime";
/// `"ZIRT"` as a little-endian `u32`.
const MAGIC: u32 = u32::from_le_bytes(*b"ZIRT");
const VERSION: u32 = 2;
/// Number of waiter buckets; a power of two.
pub(crate) const BUCKETS: usize = BUCKETS_U32 as usize;
/// [`BUCKETS`] as stored.
const BUCKETS_U32: u32 = 64;
const OFF_WAITERS: usize = 16;
/// Number of process records.
pub(crate) const RECORDS: usize = RECORDS_U32 as usize;
/// [`RECORDS`] as stored.
const RECORDS_U32: u32 = 64;
const OFF_RECORDS: usize = OFF_WAITERS + 4 * BUCKETS;
const OFF_LANES_PER_RECORD: usize = OFF_RECORDS + peers::RECORD * RECORDS;
use journal::LANES_U32;
const OFF_RECOVERED: usize = OFF_LANES_PER_RECORD + 8;
const OFF_LOST: usize = OFF_RECOVERED + 8;
/// Where the lanes may start: they start at the first offset from here whose segment offset is
/// a multiple of [`journal::LANE`] (a cache line), so that no two lanes share a line.
const OFF_LANES_MIN: usize = OFF_LOST + 8;
/// Bytes of lanes per record.
const RECORD_LANES: usize = journal::LANES * journal::LANE;
/// The entry size: the lanes and room to align them.
pub(crate) const SIZE: u64 = (OFF_LANES_MIN + journal::LANE + RECORD_LANES * RECORDS) as u64;

/// The waiter counts of `segment`, making the runtime entry if it is missing and allowed and
/// recording this process in it (`peers`); a bell without them (waiters poll, releases never
/// wake) when there are none to be had.
pub(crate) fn bell(segment: &Segment) -> Bell {
    let Some(region) = entry(segment) else {
        return Bell::new(None, None, segment.poll_interval());
    };
    let attachment = areas(segment, &region)
        .and_then(|(records, lanes)| peers::attach(segment, records, lanes, RECORDS));
    Bell::new(
        waiters_in(segment, region),
        attachment,
        segment.poll_interval(),
    )
}

/// The runtime entry of a writable `segment`, made if missing and allowed; `None` when there
/// is none, or one this release does not understand.
fn entry(segment: &Segment) -> Option<Region<'_>> {
    if segment.is_read_only() {
        return None;
    }
    let region = match segment.open_entry(NAME) {
        Ok(region) => region,
        Err(Error::EntryNotFound { .. }) if segment.runtime_entry() => {
            match segment.create_entries(&[(NAME, SIZE)], init) {
                Ok(regions) => regions.into_iter().next()?,
                // Another process made it first.
                Err(Error::DuplicateEntry { .. }) => segment.open_entry(NAME).ok()?,
                Err(_) => return None,
            }
        }
        Err(_) => return None,
    };
    understood(&region).then_some(region)
}

/// The processes recorded in `segment`'s runtime entry (none without one). Works on read-only
/// segments.
pub(crate) fn peers(segment: &Segment) -> Vec<peers::Peer> {
    segment.open_entry(NAME).map_or_else(
        |_| Vec::new(),
        |region| peers_in(region, Some(segment.file_identity())),
    )
}

/// The processes recorded in the runtime entry `region` (none if it is not one this release
/// understands) of the segment file `file`, if known. Only reads.
pub(crate) fn peers_in(region: Region<'_>, file: Option<peers::FileId>) -> Vec<peers::Peer> {
    if !understood(&region) {
        return Vec::new();
    }
    records_of(&region).map_or_else(Vec::new, |records| peers::read(records, RECORDS, file))
}

/// The records of the runtime entry `region`.
fn records_of<'a>(region: &Region<'a>) -> Option<Region<'a>> {
    region.sub(OFF_RECORDS as u64, (peers::RECORD * RECORDS) as u64)
}

/// The records and the lanes of the runtime entry `region` of `segment`.
fn areas<'a>(segment: &Segment, region: &Region<'a>) -> Option<(Region<'a>, Region<'a>)> {
    let records = records_of(region)?;
    let entry = segment.mapping().offset_of(region)?;
    let aligned = entry
        .checked_add(OFF_LANES_MIN as u64)?
        .checked_next_multiple_of(journal::LANE as u64)?;
    let lanes = region.sub(aligned.checked_sub(entry)?, (RECORD_LANES * RECORDS) as u64)?;
    Some((records, lanes))
}

/// What recovery needs of a segment's runtime entry: the claims of its processes, and the
/// counters of what was undone.
pub(crate) struct Ledger<'a> {
    records: Region<'a>,
    lanes: Region<'a>,
    counters: Region<'a>,
    file: peers::FileId,
}

impl Ledger<'_> {
    /// The claims on the structure at segment offset `offset`, with their processes' liveness.
    pub(crate) fn claims(&self, offset: u64) -> Vec<Claim> {
        let records = peers::records(self.records, RECORDS, Some(self.file));
        journal::claims(self.lanes, &records, Some(offset))
    }

    /// Whether a process that may be alive claims position `pos` of the structure at `offset`
    /// for `op`, read now: every lane but those of records still held by a process in `dead`
    /// (claims judged dead, whose records keep the owner judged). Call it after reading the
    /// counter and the slot that show the position stuck, so that the lane of a live process
    /// that claimed it since is seen (its claim CAS published it).
    pub(crate) fn contested(&self, offset: u64, op: Op, pos: u32, dead: &[Claim]) -> bool {
        let owners: Vec<(usize, u64, u32, Liveness)> = (0..RECORDS)
            .map(|i| {
                // Acquire: pairs with the Release of a record's claim or release (`peers`), so
                // that a new owner's lanes read below are at least as new as its claim.
                let owner = i
                    .checked_mul(peers::RECORD)
                    .and_then(|at| self.records.load_u64(at, Ordering::Acquire).ok())
                    .unwrap_or(0);
                (i, owner, 0, Liveness::Unknown)
            })
            .filter(|&(_, owner, _, _)| owner != 0)
            .collect();
        journal::claims(self.lanes, &owners, Some(offset))
            .iter()
            .filter(|c| c.op == op && c.covers(pos))
            .any(|c| {
                !dead
                    .iter()
                    .any(|d| d.record == c.record && d.owner == c.owner)
            })
    }

    /// How long the dead process's `claim` has been found stuck by any recoverer.
    pub(crate) fn stuck_for(&self, claim: &Claim) -> std::time::Duration {
        journal::stuck_for(self.lanes, claim)
    }

    /// Clears a dead process's claim once recovery is done with it, if its record still
    /// belongs to that process.
    pub(crate) fn clear(&self, claim: &Claim) {
        // Acquire: as in `contested`; a record freed and claimed again since the judgement
        // shows its new owner, and its lane is left alone.
        let owner = claim
            .record
            .checked_mul(peers::RECORD)
            .and_then(|at| self.records.load_u64(at, Ordering::Acquire).ok());
        if owner == Some(claim.owner) {
            journal::clear(self.lanes, claim);
        }
    }

    /// Frees the records of dead processes that hold no claim any more.
    pub(crate) fn sweep(&self) {
        peers::clear_dead(self.records, self.lanes, RECORDS, Some(self.file));
    }

    /// Counts one claim undone and the `lost` items that went with it.
    pub(crate) fn count(&self, lost: u64) {
        // Relaxed: statistics.
        if let Ok(recovered) = self.counters.atomic_u64(0) {
            recovered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if let Ok(total) = self.counters.atomic_u64(8) {
            total.fetch_add(lost, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The claims recorded on the structure at segment offset `offset` of `segment` (none without
/// a runtime entry). Only reads: works on read-only segments.
pub(crate) fn claims(segment: &Segment, offset: u64) -> Vec<Claim> {
    let Some((records, lanes)) = read_areas(segment) else {
        return Vec::new();
    };
    let records = peers::records(records, RECORDS, Some(segment.file_identity()));
    journal::claims(lanes, &records, Some(offset))
}

/// The holds recorded on the structure at segment offset `offset` of `segment` (none without
/// a runtime entry). Only reads: works on read-only segments.
pub(crate) fn holders(segment: &Segment, offset: u64) -> Vec<journal::Holder> {
    read_areas(segment).map_or_else(Vec::new, |(records, lanes)| {
        holders_in(records, lanes, offset)
    })
}

/// The records and lanes of `segment`'s runtime entry, if it has one this release
/// understands; works on read-only segments.
fn read_areas(segment: &Segment) -> Option<(Region<'_>, Region<'_>)> {
    let region = segment.open_entry(NAME).ok()?;
    if !understood(&region) {
        return None;
    }
    areas(segment, &region)
}

/// The occupied records of `records`, unjudged.
fn owners_in(records: Region<'_>) -> Vec<journal::RecordOf> {
    (0..RECORDS)
        .filter_map(|i| {
            // Acquire: as in `Ledger::contested`.
            let owner = i
                .checked_mul(peers::RECORD)
                .and_then(|at| records.load_u64(at, Ordering::Acquire).ok())?;
            (owner != 0).then_some((i, owner, 0, Liveness::Unknown))
        })
        .collect()
}

/// Takes the hold of a process judged dead away, if its record (in `records`, with its
/// `lanes`) still belongs to that process.
fn take_in(records: Region<'_>, lanes: Region<'_>, holder: &journal::Holder) -> bool {
    // Acquire: as in `Ledger::clear`.
    let owned = || {
        holder
            .record
            .checked_mul(peers::RECORD)
            .and_then(|at| records.load_u64(at, Ordering::Acquire).ok())
            == Some(holder.owner)
    };
    holder.liveness == Liveness::Dead && owned() && journal::take_hold(lanes, holder, owned)
}

/// The records and lanes of a writable segment's runtime entry, kept by a handle that looks
/// for dead holders while it waits (so that a look costs no table lookup).
#[derive(Debug)]
pub(crate) struct HoldView {
    records: Anchored<Region<'static>>,
    lanes: Anchored<Region<'static>>,
}

impl HoldView {
    /// The holds on the structure at segment offset `offset`, their processes judged through
    /// `vigil` (which keeps a pidfd of each holder it has seen alive).
    pub(crate) fn holders(&self, offset: u64, vigil: &mut peers::Vigil) -> Vec<journal::Holder> {
        let records = self.records.get();
        let mut holders = journal::holders(self.lanes.get(), &owners_in(records), offset);
        for h in &mut holders {
            h.pid = peers::pid_of(h.owner);
            h.liveness = vigil.judge(records, h.record, h.owner);
        }
        holders
    }

    /// Takes a dead process's hold away: whether this call did (one caller of several does).
    pub(crate) fn take(&self, holder: &journal::Holder) -> bool {
        take_in(self.records.get(), self.lanes.get(), holder)
    }
}

/// The hold view of a writable `segment`; `None` without a runtime entry.
pub(crate) fn hold_view(segment: &Segment) -> Option<HoldView> {
    let region = writable_entry(segment)?;
    let (records, lanes) = areas(segment, &region)?;
    Some(HoldView {
        records: Anchored::region(segment.mapping(), records)?,
        lanes: Anchored::region(segment.mapping(), lanes)?,
    })
}

/// The runtime entry of a writable `segment`, if it has one this release understands (never
/// made here).
fn writable_entry(segment: &Segment) -> Option<Region<'_>> {
    if segment.is_read_only() {
        return None;
    }
    let region = segment.open_entry(NAME).ok()?;
    understood(&region).then_some(region)
}

/// The holds on the structure at `offset` in `records` and their `lanes`: the slots are read
/// first, and only the processes found holding are judged.
fn holders_in(records: Region<'_>, lanes: Region<'_>, offset: u64) -> Vec<journal::Holder> {
    let mut holders = journal::holders(lanes, &owners_in(records), offset);
    for h in &mut holders {
        match peers::judge(records, h.record) {
            // Judged as the same owner the hold was read under: its verdict holds for it.
            Some((owner, peer)) if owner == h.owner => {
                h.pid = peer.pid;
                h.liveness = peer.liveness;
            }
            _ => {
                h.pid = peers::pid_of(h.owner);
                h.liveness = Liveness::Unknown;
            }
        }
    }
    holders
}

/// The runtime entry of a writable `segment` as recovery reads it; `None` without one.
pub(crate) fn ledger(segment: &Segment) -> Option<Ledger<'_>> {
    let region = writable_entry(segment)?;
    let (records, lanes) = areas(segment, &region)?;
    Some(Ledger {
        records,
        lanes,
        counters: region.sub(OFF_RECOVERED as u64, 16)?,
        file: segment.file_identity(),
    })
}

/// Whether `region` is a runtime entry of this layout. One written by another program under
/// this name is ignored, never trusted.
fn understood(region: &Region<'_>) -> bool {
    let header = |off| region.read::<u32>(off).ok();
    region.len() as u64 == SIZE
        && header(0) == Some(MAGIC)
        && header(4) == Some(VERSION)
        && header(8) == Some(BUCKETS_U32)
        && header(12) == Some(RECORDS_U32)
        && header(OFF_LANES_PER_RECORD) == Some(LANES_U32)
}

fn init(regions: &[Region<'_>]) -> Result<(), Access> {
    let [r] = regions else {
        return Err(Access::OutOfBounds);
    };
    r.write::<u32>(0, MAGIC)?;
    r.write::<u32>(4, VERSION)?;
    r.write::<u32>(8, BUCKETS_U32)?;
    r.write::<u32>(12, RECORDS_U32)?;
    r.zero(OFF_WAITERS, r.len().saturating_sub(OFF_WAITERS))?;
    r.write::<u32>(OFF_LANES_PER_RECORD, LANES_U32)
}

/// The waiter counts in the runtime entry `region`.
fn waiters_in(segment: &Segment, region: Region<'_>) -> Option<Anchored<Words<'static>>> {
    let waiters = region.words(OFF_WAITERS, BUCKETS).ok()?;
    Anchored::words(segment.mapping(), waiters)
}

/// The bucket of the word at `address`.
#[inline]
pub(crate) fn bucket(address: usize) -> usize {
    (address >> 2) & (BUCKETS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_depend_only_on_the_offset_inside_a_page() {
        assert_eq!(bucket(0x1000), bucket(0x7f00_0000_2000));
        assert_eq!(bucket(0x1004), 1);
        assert_eq!(bucket(0x10fc), 63);
        assert_eq!(bucket(0x1100), 0);
    }
}
