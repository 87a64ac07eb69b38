//! Stored descriptions: the kind and element layout of each structure this crate creates, kept
//! in one entry of the segment, [`NAME`] (FORMAT.md appendix D).
//!
//! The other ZeroIPC implementations look entries up by name and never open this one; to them
//! it is one entry like any other. It is made by the first creation of a structure on a
//! segment whose options allow descriptions
//! ([`SegmentOptions::descriptions`](crate::SegmentOptions::descriptions)), as one more part
//! published with that structure, and each later creation appends a record to it before the
//! table publishes the structure (`Segment::create_described`). So a segment has at most one
//! description entry however many structures it holds, and a structure's record is in place
//! before any other process can see the structure.
//!
//! ```text
//! area:   +0  u32 magic    "ZILD" (5A 49 4C 44)
//!         +4  u32 version  1
//!         +8  atomic u32 used    bytes of records after the header (Release after each)
//!         +12 u32 reserved 0
//!         +16 records, back to back
//! record: +0  u32 size          of the record, a multiple of 8
//!         +4  u32 layout_len    0 for a kind without elements
//!         +8  u64 entry         segment offset of the structure's entry under its bare name
//!         +16 u64 fingerprint   FNV-1a 64 of the layout bytes; 0 without a layout
//!         +24 u8  name_len      1..=31
//!         +25 u8  kind_len      1..=31
//!         +26 u16 reserved      0
//!         +28 name, kind, layout (the fingerprint encoding, `DynLayout::encode`), zeros
//! ```
//!
//! A structure's description is the last record with its name whose `entry` is the offset of
//! its entry now: a structure removed (by another implementation) and made again elsewhere is
//! not described by its predecessor's record. Records are untrusted bytes like everything else
//! in a segment: every length is checked against the record and the area, the layout must
//! decode and match its fingerprint, and a record that fails describes nothing: opening treats
//! the structure as undescribed, and `check` reports the record.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::sync::atomic::Ordering;

use crate::dynamic::{DynLayout, fnv1a};
use crate::kind::StructureKind;
use crate::name::MAX_ENTRY_NAME_LEN;
use crate::raw::{Access, Region};
use crate::segment::Segment;

/// The entry name.
pub(crate) const NAME: &str = "zeroipc.layouts";
/// `"ZILD"` as a little-endian `u32`.
const MAGIC: u32 = u32::from_le_bytes(*b"ZILD");
const VERSION: u32 = 1;
const OFF_USED: usize = 8;
/// Bytes before the first record.
pub(crate) const HEADER: usize = 16;
/// Bytes of a record before its name.
const RECORD_HEAD: usize = 28;
/// The smallest area made; larger segments get one of `memory_size / 64`, up to
/// [`AREA_MAX`].
const AREA_MIN: u64 = 1024;
/// The largest area made by default.
const AREA_MAX: u64 = 64 * 1024;
/// The most record bytes an area may hold; a reader refuses an area claiming more (so that
/// reading one is bounded whatever the segment says).
pub(crate) const MAX_USED: usize = 4 << 20;

/// What a segment records about one of its structures (FORMAT.md appendix D): its kind and
/// the layout of its elements.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Description {
    /// The structure's (bare) entry name.
    pub name: String,
    /// The kind's name as stored (`queue`, ...; a kind of a later release may be unknown to
    /// this one).
    pub kind: String,
    /// The element layout, for kinds with elements (containers, signals).
    pub layout: Option<DynLayout>,
    /// Its fingerprint ([`Layout::fingerprint`](crate::Layout::fingerprint)); 0 without a
    /// layout.
    pub fingerprint: u64,
}

impl Description {
    /// The stored kind, if this release knows it.
    pub fn structure_kind(&self) -> Option<StructureKind> {
        StructureKind::from_name(&self.kind)
    }
}

/// The record for a structure about to be created, before its offset is known.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// The bare name.
    pub(crate) name: String,
    /// The kind.
    pub(crate) kind: StructureKind,
    /// The encoded element layout (empty for kinds without elements).
    pub(crate) layout: Vec<u8>,
    /// Which of the parts being created is the entry under the bare name.
    pub(crate) part: usize,
}

impl Pending {
    /// The record bytes for the structure whose bare-name entry is at `entry`.
    fn record(&self, entry: u64) -> Option<Vec<u8>> {
        let name_len = u8::try_from(self.name.len()).ok()?;
        let kind = self.kind.name();
        let kind_len = u8::try_from(kind.len()).ok()?;
        let layout_len = u32::try_from(self.layout.len()).ok()?;
        let fingerprint = if self.layout.is_empty() {
            0
        } else {
            fnv1a(&self.layout)
        };
        let body = RECORD_HEAD
            .checked_add(self.name.len())?
            .checked_add(kind.len())?
            .checked_add(self.layout.len())?;
        let size = body.checked_next_multiple_of(8)?;
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&u32::try_from(size).ok()?.to_le_bytes());
        out.extend_from_slice(&layout_len.to_le_bytes());
        out.extend_from_slice(&entry.to_le_bytes());
        out.extend_from_slice(&fingerprint.to_le_bytes());
        out.extend_from_slice(&[name_len, kind_len, 0, 0]);
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(&self.layout);
        out.resize(size, 0);
        Some(out)
    }
}

/// The area sizes to try for a first record `pending` on a segment of `memory_size` bytes:
/// 1/64 of the segment (1 KiB to 64 KiB), then exactly what the record needs.
pub(crate) fn area_sizes(pending: &Pending, memory_size: u64) -> Vec<u64> {
    let Some(first) = pending.record(0).map(|r| r.len() as u64) else {
        return Vec::new();
    };
    let needed = (HEADER as u64).saturating_add(first);
    let default = (memory_size / 64)
        .clamp(AREA_MIN, AREA_MAX)
        .max(needed)
        .next_multiple_of(8);
    let exact = needed.next_multiple_of(8);
    if exact < default {
        vec![default, exact]
    } else {
        vec![default]
    }
}

/// Appends the record of `pending`, whose parts are `regions` (not yet published), to the
/// description `area` of `segment`. The caller holds the table lock (which orders every writer
/// of the area). Best effort: a record that does not fit (the area is full, or foreign) leaves
/// the structure undescribed, which opens as the other implementations' structures do.
pub(crate) fn append(
    segment: &Segment,
    area: &Region<'_>,
    pending: &Pending,
    regions: &[Region<'_>],
) {
    let Some(entry) = regions
        .get(pending.part)
        .and_then(|r| segment.mapping().offset_of(r))
    else {
        return;
    };
    if let Some(record) = pending.record(entry) {
        let _ = append_record(area, &record);
    }
}

/// Writes fresh area bytes: the header, no records.
pub(crate) fn init_area(area: &Region<'_>) -> Result<(), Access> {
    area.zero(0, area.len())?;
    area.write::<u32>(0, MAGIC)?;
    area.write::<u32>(4, VERSION)
}

/// Appends `record` to `area` if it is an area of this version with room for it.
fn append_record(area: &Region<'_>, record: &[u8]) -> Option<()> {
    // Relaxed: the magic and version are written once, before the area was published.
    if area.load_u32(0, Ordering::Relaxed).ok()? != MAGIC
        || area.load_u32(4, Ordering::Relaxed).ok()? != VERSION
    {
        return None;
    }
    // Writers hold the table lock, so `used` changes only here.
    let used = usize::try_from(area.load_u32(OFF_USED, Ordering::Relaxed).ok()?).ok()?;
    let at = HEADER.checked_add(used)?;
    let end = at.checked_add(record.len())?;
    if end > area.len() || end > MAX_USED || used % 8 != 0 {
        return None;
    }
    area.write_bytes(at, record, 8).ok()?;
    let used = u32::try_from(used.checked_add(record.len())?).ok()?;
    // SYNC POINT (used): Release, so that a reader whose Acquire load sees the new `used`
    // also sees the record bytes written above.
    area.atomic_u32(OFF_USED)
        .ok()?
        .store(used, Ordering::Release);
    Some(())
}

/// One record as stored, its lengths checked against the record.
struct RawRecord<'a> {
    entry: u64,
    fingerprint: u64,
    name: &'a [u8],
    kind: &'a [u8],
    layout: &'a [u8],
}

/// The records of the description `area` (a copy of its used bytes), or why they cannot be
/// read. Stops at the first malformed record, which is reported with its position.
pub(crate) struct Records {
    bytes: Vec<u8>,
}

impl Records {
    /// Reads the used part of `area`.
    pub(crate) fn read(area: &Region<'_>) -> Result<Self, String> {
        // Relaxed: the magic and version are written once, before the area was published.
        let magic = area
            .load_u32(0, Ordering::Relaxed)
            .map_err(|_| "shorter than its header")?;
        if magic != MAGIC {
            return Err(format!("magic `{magic:#010x}` is not \"ZILD\""));
        }
        let version = area
            .load_u32(4, Ordering::Relaxed)
            .map_err(|_| "shorter than its header")?;
        if version != VERSION {
            return Err(format!("version `{version}` is not 1"));
        }
        // SYNC POINT (used): Acquire, pairing with the Release in `append`: the records it
        // counts are complete.
        let used = area
            .load_u32(OFF_USED, Ordering::Acquire)
            .map_err(|_| "shorter than its header")?;
        let room = area.len().saturating_sub(HEADER);
        let used = usize::try_from(used).unwrap_or(usize::MAX);
        if used > room || used > MAX_USED {
            return Err(format!(
                "`used` is {used} bytes; the area has room for {}",
                room.min(MAX_USED)
            ));
        }
        let mut bytes = vec![0; used];
        area.read_bytes(HEADER, &mut bytes, 1)
            .map_err(|_| "its records lie outside it")?;
        Ok(Self { bytes })
    }

    /// Every record in order, then the error that ended the walk, if any (its position is the
    /// record's offset in the area).
    fn walk(&self) -> (Vec<RawRecord<'_>>, Option<String>) {
        let mut out = Vec::new();
        let mut at = 0usize;
        while at < self.bytes.len() {
            let rest = self.bytes.get(at..).unwrap_or_default();
            match parse_record(rest) {
                Ok((record, size)) => {
                    out.push(record);
                    at = at.saturating_add(size);
                }
                Err(why) => {
                    let pos = at.saturating_add(HEADER);
                    return (
                        out,
                        Some(format!("record at byte {pos} of the area: {why}")),
                    );
                }
            }
        }
        (out, None)
    }

    /// The description of the structure `name` whose bare-name entry is at `entry`: its last
    /// record, if that one can be read.
    pub(crate) fn lookup(&self, name: &str, entry: u64) -> Option<Description> {
        let (records, _) = self.walk();
        let last = records
            .iter()
            .rev()
            .find(|r| r.name == name.as_bytes() && r.entry == entry)?;
        decode(last).ok()
    }

    /// The descriptions of the structures whose bare-name entry `entry_at` finds at the
    /// offset their record names (the last record of each), and every problem of the records
    /// (a record that does not decode, the error that ended the walk), for reports. Linear in
    /// the records, whatever their names.
    pub(crate) fn all(
        &self,
        entry_at: impl Fn(&str) -> Option<u64>,
    ) -> (Vec<Description>, Vec<String>) {
        let (records, broken) = self.walk();
        let mut settled: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
        let mut found = Vec::new();
        let mut problems = Vec::new();
        // From the last record back: as for `lookup`, the last record of a structure counts,
        // readable or not; stale ones (the structure was removed, or moved) describe nothing.
        for r in records.iter().rev() {
            let name = String::from_utf8_lossy(r.name);
            let current = !settled.contains(r.name) && entry_at(&name) == Some(r.entry);
            if current {
                settled.insert(r.name);
            }
            match decode(r) {
                Ok(d) if current => found.push(d),
                Ok(_) => {}
                Err(why) => problems.push(format!("record of `{}`: {why}", name.escape_debug())),
            }
        }
        found.reverse();
        problems.reverse();
        problems.extend(broken);
        (found, problems)
    }
}

fn parse_record(bytes: &[u8]) -> Result<(RawRecord<'_>, usize), String> {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(
            bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
        ))
    };
    let short = || format!("truncated ({} bytes left)", bytes.len());
    let size = usize::try_from(u32_at(0).ok_or_else(short)?).unwrap_or(usize::MAX);
    if size < RECORD_HEAD || size % 8 != 0 {
        return Err(format!(
            "size {size} is not a multiple of 8 of at least {RECORD_HEAD}"
        ));
    }
    if size > bytes.len() {
        return Err(format!(
            "size {size} reaches past the {} bytes used",
            bytes.len()
        ));
    }
    let layout_len = usize::try_from(u32_at(4).ok_or_else(short)?).unwrap_or(usize::MAX);
    let entry = u64_at(8).ok_or_else(short)?;
    let fingerprint = u64_at(16).ok_or_else(short)?;
    let name_len = usize::from(*bytes.get(24).ok_or_else(short)?);
    let kind_len = usize::from(*bytes.get(25).ok_or_else(short)?);
    if name_len == 0 || name_len > MAX_ENTRY_NAME_LEN || kind_len == 0 || kind_len > 31 {
        return Err(format!(
            "name length {name_len} or kind length {kind_len} is not 1..=31"
        ));
    }
    let name_end = RECORD_HEAD.saturating_add(name_len);
    let kind_end = name_end.saturating_add(kind_len);
    let layout_end = kind_end.saturating_add(layout_len);
    if layout_end > size {
        return Err(format!(
            "its name, kind and {layout_len}-byte layout reach past its size {size}"
        ));
    }
    let field = |from: usize, to: usize| bytes.get(from..to).unwrap_or_default();
    Ok((
        RawRecord {
            entry,
            fingerprint,
            name: field(RECORD_HEAD, name_end),
            kind: field(name_end, kind_end),
            layout: field(kind_end, layout_end),
        },
        size,
    ))
}

fn decode(r: &RawRecord<'_>) -> Result<Description, String> {
    let name = String::from_utf8_lossy(r.name);
    let kind = std::str::from_utf8(r.kind)
        .map_err(|_| format!("the kind of `{name}` is not UTF-8"))?
        .to_owned();
    if r.layout.is_empty() {
        if r.fingerprint != 0 {
            return Err(format!("`{name}` has a fingerprint but no layout"));
        }
        return Ok(Description {
            name: name.into_owned(),
            kind,
            layout: None,
            fingerprint: 0,
        });
    }
    let computed = fnv1a(r.layout);
    if computed != r.fingerprint {
        return Err(format!(
            "the layout of `{name}` has fingerprint {computed:#018x}, the record says {:#018x}",
            r.fingerprint
        ));
    }
    let layout = DynLayout::decode(r.layout).map_err(|e| format!("the layout of `{name}`: {e}"))?;
    Ok(Description {
        name: name.into_owned(),
        kind,
        layout: Some(layout),
        fingerprint: computed,
    })
}

/// The description `segment` has of the structure `name` whose bare-name entry is at `entry`:
/// `None` without a description entry, a record, or one that can be read (which `check`
/// reports).
pub(crate) fn lookup(segment: &Segment, name: &str, entry: u64) -> Option<Description> {
    let area = segment.open_entry(NAME).ok()?;
    Records::read(&area).ok()?.lookup(name, entry)
}
