//! The metadata table at offset 0 of every segment (FORMAT.md §2).
//!
//! ```text
//! 0x00 u32 magic 0x5A49504D   0x04 u32 version 2   0x08 u32 entry_count   0x0C u32 max_entries
//! 0x10 u64 memory_size        0x18 u64 next_offset
//! 0x20 entries: { name [u8; 32] NUL-terminated, offset u64, size u64 } x max_entries
//! ```
//!
//! Everything read from the table is untrusted. `inspect_header` lists every header defect,
//! `Table::entries` every entry defect, and `Table::find` refuses to hand out an entry with
//! any defect, so that a structure is only ever opened over bytes that lie inside the mapping,
//! outside the table and outside every other structure.
//!
//! # Mutation protocol
//!
//! The format has no lock word, and the other implementations do not serialise table changes
//! at all (FORMAT.md §2.6). Ours serialise through the segment module's table lock: a
//! process-local mutex plus an exclusive `flock(2)` on a fresh open file description of the
//! segment (so that threads and forked children, which share descriptors, exclude each other
//! too), waited for at most the segment's lock timeout. The kernel drops an `flock` when its
//! holder dies, so a crash can never leave the table locked, and the lock needs no byte in the
//! segment. Under the lock `Table::allocate_all`, for one entry or for all the parts of a
//! composite kind at once,
//! 1. re-reads `entry_count` and `next_offset` and validates them,
//! 2. checks every name against every entry and each other, the table capacity and the free
//!    space for all the parts, and changes nothing if any check fails,
//! 3. initialises the new structures' bytes,
//! 4. writes each entry's name, offset and size, then `next_offset`,
//! 5. publishes them all by one store of `entry_count + n` with `Release`.
//!
//! Readers load `entry_count` with `Acquire` and read only entries below it, so they see either
//! the table without the new entry or the entry with its structure fully initialised. A process
//! that dies inside the critical section leaves at worst a hole of unreachable bytes (when it
//! died after step 4), never a half-visible entry.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::sync::atomic::Ordering;

use crate::error::{EntryDefect, HeaderDefect};
use crate::raw::{Access, Region};

/// The magic word, `"MPIZ"` in memory.
pub(crate) const MAGIC: u32 = 0x5A49_504D;
/// The only supported format version.
pub(crate) const VERSION: u32 = 2;
/// Size of the table header in bytes.
pub(crate) const HEADER_SIZE: u64 = 32;
/// Size of one table entry in bytes.
pub(crate) const ENTRY_SIZE: u64 = 48;
/// The largest `max_entries` this crate creates or accepts. The format allows up to `u32::MAX`,
/// but every lookup scans the table, so a hostile segment claiming billions of (sparse, free to
/// fake) slots would cost gigabytes of reads; real tables hold at most a few thousand entries.
pub(crate) const MAX_ENTRIES_LIMIT: u32 = 1 << 20;
/// Bytes reserved for an entry's name, including the terminating NUL.
pub(crate) const NAME_FIELD: usize = 32;

const OFF_MAGIC: usize = 0x00;
const OFF_VERSION: usize = 0x04;
const OFF_ENTRY_COUNT: usize = 0x08;
const OFF_MAX_ENTRIES: usize = 0x0C;
const OFF_MEMORY_SIZE: usize = 0x10;
const OFF_NEXT_OFFSET: usize = 0x18;
const ENTRY_OFF_OFFSET: usize = 32;
const ENTRY_OFF_SIZE: usize = 40;

/// The end of a table with `max_entries` slots: `32 + 48 * max_entries`.
pub(crate) fn table_end(max_entries: u32) -> u64 {
    // Cannot overflow: 48 * u32::MAX + 32 < 2^38.
    HEADER_SIZE.saturating_add(ENTRY_SIZE.saturating_mul(u64::from(max_entries)))
}

/// `n` rounded up to a multiple of 8, or `None` on overflow.
pub(crate) fn align8(n: u64) -> Option<u64> {
    Some(n.checked_add(7)? & !7)
}

/// The raw values of a table header, as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderInfo {
    /// Magic word (`0x5A49504D` when valid).
    pub magic: u32,
    /// Format version (2 when valid).
    pub version: u32,
    /// Number of entries in use.
    pub entry_count: u32,
    /// Number of entry slots.
    pub max_entries: u32,
    /// Segment size recorded at creation.
    pub memory_size: u64,
    /// First free byte after the last structure (not rounded).
    pub next_offset: u64,
}

/// Validated table geometry, copied into every handle at open so that a peer rewriting the
/// header later cannot steer an access out of bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) max_entries: u32,
    pub(crate) memory_size: u64,
    pub(crate) table_end: u64,
}

/// Reads the header of a mapping of `file_size` bytes and lists every defect, in the order of
/// FORMAT.md §9. The returned info is `None` only when the file is shorter than the header.
pub(crate) fn inspect_header(
    region: Region<'_>,
    file_size: u64,
) -> (Option<HeaderInfo>, Vec<HeaderDefect>) {
    let mut defects = Vec::new();
    let Some(info) = read_header(region) else {
        defects.push(HeaderDefect::TooShort { len: file_size });
        return (None, defects);
    };
    if info.magic != MAGIC {
        defects.push(HeaderDefect::BadMagic { found: info.magic });
    }
    if info.version != VERSION {
        defects.push(HeaderDefect::BadVersion {
            found: info.version,
        });
    }
    let table_end = table_end(info.max_entries);
    if info.max_entries == 0 {
        defects.push(HeaderDefect::ZeroMaxEntries);
    } else if info.max_entries > MAX_ENTRIES_LIMIT {
        defects.push(HeaderDefect::MaxEntriesTooLarge {
            max_entries: info.max_entries,
            limit: MAX_ENTRIES_LIMIT,
        });
    } else if table_end > file_size {
        defects.push(HeaderDefect::TableTooLarge {
            max_entries: info.max_entries,
            file_size,
        });
    }
    if info.entry_count > info.max_entries {
        defects.push(HeaderDefect::EntryCountTooLarge {
            entry_count: info.entry_count,
            max_entries: info.max_entries,
        });
    }
    if info.memory_size != file_size {
        defects.push(HeaderDefect::MemorySizeMismatch {
            memory_size: info.memory_size,
            file_size,
        });
    }
    if info.next_offset < table_end || info.next_offset > info.memory_size.min(file_size) {
        defects.push(HeaderDefect::NextOffsetOutOfRange {
            next_offset: info.next_offset,
            table_end,
            memory_size: info.memory_size,
        });
    }
    (Some(info), defects)
}

/// Reads the header fields, or `None` when the region is shorter than the header.
fn read_header(region: Region<'_>) -> Option<HeaderInfo> {
    // SYNC POINT (magic): this Acquire load pairs with the creator's Release store of the magic
    // (`init_header`), which it makes last: seeing the magic means seeing the whole header.
    let magic = region.load_u32(OFF_MAGIC, Ordering::Acquire).ok()?;
    Some(HeaderInfo {
        magic,
        version: region.load_u32(OFF_VERSION, Ordering::Relaxed).ok()?,
        // SYNC POINT (entry_count): Acquire pairs with the Release store in `allocate_all`.
        entry_count: region.load_u32(OFF_ENTRY_COUNT, Ordering::Acquire).ok()?,
        max_entries: region.load_u32(OFF_MAX_ENTRIES, Ordering::Relaxed).ok()?,
        memory_size: region.load_u64(OFF_MEMORY_SIZE, Ordering::Relaxed).ok()?,
        next_offset: region.load_u64(OFF_NEXT_OFFSET, Ordering::Relaxed).ok()?,
    })
}

/// Validates the header, returning the geometry or the first defect.
pub(crate) fn validate_header(
    region: Region<'_>,
    file_size: u64,
) -> Result<(HeaderInfo, Geometry), HeaderDefect> {
    let (info, defects) = inspect_header(region, file_size);
    if let Some(first) = defects.first() {
        return Err(*first);
    }
    let info = info.ok_or(HeaderDefect::TooShort { len: file_size })?;
    let geometry = Geometry {
        max_entries: info.max_entries,
        memory_size: info.memory_size,
        table_end: table_end(info.max_entries),
    };
    Ok((info, geometry))
}

/// Writes a fresh header and zeroes the entry slots; the magic is stored last, with `Release`.
pub(crate) fn init_header(region: Region<'_>, max_entries: u32, size: u64) -> Result<(), Access> {
    let table_end = table_end(max_entries);
    let slots =
        usize::try_from(table_end.saturating_sub(HEADER_SIZE)).map_err(|_| Access::OutOfBounds)?;
    region.zero(
        usize::try_from(HEADER_SIZE).map_err(|_| Access::OutOfBounds)?,
        slots,
    )?;
    region
        .atomic_u32(OFF_VERSION)?
        .store(VERSION, Ordering::Relaxed);
    region
        .atomic_u32(OFF_ENTRY_COUNT)?
        .store(0, Ordering::Relaxed);
    region
        .atomic_u32(OFF_MAX_ENTRIES)?
        .store(max_entries, Ordering::Relaxed);
    region
        .atomic_u64(OFF_MEMORY_SIZE)?
        .store(size, Ordering::Relaxed);
    region
        .atomic_u64(OFF_NEXT_OFFSET)?
        .store(table_end, Ordering::Relaxed);
    // SYNC POINT (magic): Release publishes every header store above to an opener whose Acquire
    // load in `read_header` sees the magic.
    region
        .atomic_u32(OFF_MAGIC)?
        .store(MAGIC, Ordering::Release);
    Ok(())
}

/// One entry exactly as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub(crate) name: [u8; NAME_FIELD],
    pub(crate) offset: u64,
    pub(crate) size: u64,
}

impl RawEntry {
    /// The name bytes before the first NUL (all 32 when unterminated).
    pub(crate) fn name_bytes(&self) -> &[u8] {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_FIELD);
        self.name.get(..end).unwrap_or(&self.name)
    }

    /// The name, lossily decoded for messages and listings.
    pub(crate) fn name_lossy(&self) -> String {
        String::from_utf8_lossy(self.name_bytes()).into_owned()
    }

    /// End of the structure, saturating (out-of-range ends are reported separately).
    fn end(&self) -> u64 {
        self.offset.saturating_add(self.size)
    }
}

/// One table entry with every defect found in it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// Position in the table.
    pub index: u32,
    /// The name, lossily decoded.
    pub name: String,
    /// Segment offset of the structure.
    pub offset: u64,
    /// Size of the structure in bytes.
    pub size: u64,
    /// Everything wrong with the entry, up to [`MAX_ENTRY_DEFECTS`] (an entry that overlaps a
    /// thousand others lists the first few); empty when it is sound.
    pub defects: Vec<EntryDefect>,
}

/// How many defects one [`Entry`] lists at most.
pub const MAX_ENTRY_DEFECTS: usize = 8;

impl Entry {
    /// Whether the entry has no defect.
    pub fn is_sound(&self) -> bool {
        self.defects.is_empty()
    }
}

/// The table of a mapped segment, bounded by a validated geometry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Table<'a> {
    region: Region<'a>,
    geometry: Geometry,
}

impl<'a> Table<'a> {
    /// The table of `region` (the whole mapping) with a validated `geometry`.
    pub(crate) fn new(region: Region<'a>, geometry: Geometry) -> Self {
        Self { region, geometry }
    }

    /// The current `entry_count`, checked against `max_entries`.
    pub(crate) fn entry_count(&self) -> Result<u32, HeaderDefect> {
        // SYNC POINT (entry_count): Acquire pairs with the Release store in `allocate_all`: every
        // entry below the count, and the structure it names, is fully written.
        let count = self
            .region
            .load_u32(OFF_ENTRY_COUNT, Ordering::Acquire)
            .map_err(|_| HeaderDefect::TooShort {
                len: self.region.len() as u64,
            })?;
        if count > self.geometry.max_entries {
            return Err(HeaderDefect::EntryCountTooLarge {
                entry_count: count,
                max_entries: self.geometry.max_entries,
            });
        }
        Ok(count)
    }

    /// The current `next_offset` (not validated).
    fn next_offset(&self) -> u64 {
        self.region
            .load_u64(OFF_NEXT_OFFSET, Ordering::Relaxed)
            .unwrap_or(u64::MAX)
    }

    /// The raw bytes of entry `index` (`index < max_entries`, so inside the validated table).
    fn raw_entry(&self, index: u32) -> Option<RawEntry> {
        let base = u64::from(index)
            .checked_mul(ENTRY_SIZE)?
            .checked_add(HEADER_SIZE)?;
        let slot = self.region.sub(base, ENTRY_SIZE)?;
        Some(RawEntry {
            name: slot.read::<[u8; NAME_FIELD]>(0).ok()?,
            offset: slot.read::<u64>(ENTRY_OFF_OFFSET).ok()?,
            size: slot.read::<u64>(ENTRY_OFF_SIZE).ok()?,
        })
    }

    /// Every used entry, raw.
    fn raw_entries(&self, count: u32) -> Vec<RawEntry> {
        // `count <= max_entries`, whose slots lie inside the validated table: every read works.
        (0..count).map_while(|i| self.raw_entry(i)).collect()
    }

    /// The defects of `entries[index]` that concern the entry alone.
    fn own_defects(&self, raw: &RawEntry, next_offset: u64, out: &mut Vec<EntryDefect>) {
        let name = raw.name_bytes();
        if name.len() == NAME_FIELD {
            out.push(EntryDefect::NameNotTerminated);
        } else if name.is_empty() {
            out.push(EntryDefect::NameEmpty);
        } else if std::str::from_utf8(name).is_err() {
            out.push(EntryDefect::NameNotUtf8);
        }
        let Geometry {
            memory_size,
            table_end,
            ..
        } = self.geometry;
        if raw.offset < table_end {
            out.push(EntryDefect::OffsetInsideTable {
                offset: raw.offset,
                table_end,
            });
        }
        if raw.offset % 8 != 0 {
            out.push(EntryDefect::Misaligned { offset: raw.offset });
        }
        match raw.offset.checked_add(raw.size) {
            Some(end) if end <= memory_size => {
                if end > next_offset {
                    out.push(EntryDefect::BeyondNextOffset { end, next_offset });
                }
            }
            _ => out.push(EntryDefect::OutOfBounds {
                offset: raw.offset,
                size: raw.size,
                memory_size,
            }),
        }
    }

    /// Every used entry with all its defects, including overlaps and duplicate names.
    pub(crate) fn entries(&self) -> Result<Vec<Entry>, HeaderDefect> {
        let count = self.entry_count()?;
        Ok(self.entries_up_to(count))
    }

    /// Like [`entries`](Self::entries), but an `entry_count` beyond `max_entries` is clamped
    /// instead of refused (for reports, which list that defect separately).
    pub(crate) fn entries_clamped(&self) -> Vec<Entry> {
        // SYNC POINT (entry_count): Acquire, as in `entry_count`.
        let count = self
            .region
            .load_u32(OFF_ENTRY_COUNT, Ordering::Acquire)
            .unwrap_or(0)
            .min(self.geometry.max_entries);
        self.entries_up_to(count)
    }

    fn entries_up_to(&self, count: u32) -> Vec<Entry> {
        let raws = self.raw_entries(count);
        let next_offset = self.next_offset();
        let mut entries: Vec<Entry> = raws
            .iter()
            .zip(0u32..)
            .map(|(raw, index)| {
                let mut defects = Vec::new();
                self.own_defects(raw, next_offset, &mut defects);
                Entry {
                    index,
                    name: raw.name_lossy(),
                    offset: raw.offset,
                    size: raw.size,
                    defects,
                }
            })
            .collect();

        // Duplicate names: sort indices by name, compare neighbours. O(n log n).
        let mut by_name: Vec<u32> = (0..len_u32(&raws)).collect();
        by_name.sort_by_key(|&i| raws.get(i as usize).map(RawEntry::name_bytes));
        for pair in by_name.windows(2) {
            if let [a, b] = *pair {
                if name_of(&raws, a) == name_of(&raws, b) {
                    push_defect(&mut entries, a, EntryDefect::DuplicateName { other: b });
                    push_defect(&mut entries, b, EntryDefect::DuplicateName { other: a });
                }
            }
        }

        // Overlaps: sweep by offset, remembering the entry that reaches furthest. O(n log n).
        let mut by_offset: Vec<u32> = (0..len_u32(&raws))
            .filter(|&i| size_of_entry(&raws, i) > 0)
            .collect();
        by_offset.sort_by_key(|&i| raws.get(i as usize).map(|r| r.offset));
        let mut furthest: Option<(u32, u64)> = None;
        for &i in &by_offset {
            let Some(raw) = raws.get(i as usize) else {
                continue;
            };
            if let Some((j, end)) = furthest {
                if raw.offset < end {
                    push_defect(&mut entries, i, EntryDefect::Overlap { other: j });
                    push_defect(&mut entries, j, EntryDefect::Overlap { other: i });
                }
            }
            if furthest.is_none_or(|(_, end)| raw.end() > end) {
                furthest = Some((i, raw.end()));
            }
        }
        entries
    }

    /// The first entry named `name`, with every defect that concerns it.
    pub(crate) fn find(&self, name: &str) -> Result<Option<(Entry, RawEntry)>, HeaderDefect> {
        // Two streaming passes with O(1) memory: a hostile table can be large.
        let count = self.entry_count()?;
        let Some((index, raw)) = (0..count)
            .map_while(|i| Some((i, self.raw_entry(i)?)))
            .find(|(_, r)| r.name_bytes() == name.as_bytes())
        else {
            return Ok(None);
        };
        let mut defects = Vec::new();
        self.own_defects(&raw, self.next_offset(), &mut defects);
        for (j, other) in (0..count).map_while(|j| Some((j, self.raw_entry(j)?))) {
            if j == index {
                continue;
            }
            if other.name_bytes() == raw.name_bytes() {
                defects.push(EntryDefect::DuplicateName { other: j });
            }
            if raw.size > 0
                && other.size > 0
                && raw.offset < other.end()
                && other.offset < raw.end()
            {
                defects.push(EntryDefect::Overlap { other: j });
            }
        }
        let entry = Entry {
            index,
            name: raw.name_lossy(),
            offset: raw.offset,
            size: raw.size,
            defects,
        };
        Ok(Some((entry, raw)))
    }

    /// Appends one entry per `(name, size)` of `parts` (names already validated), in order and
    /// contiguously, after running `init` on all their bytes: the parts of a composite kind
    /// (FORMAT.md §7). The caller must hold the table lock. Either every entry is made, published
    /// by one Release store of `entry_count` (so an opener sees all of them or none), or nothing
    /// in the segment changes.
    pub(crate) fn allocate_all(
        &self,
        parts: &[(&str, u64)],
        init: impl FnOnce(&[Region<'a>]) -> Result<(), Access>,
    ) -> Result<Vec<Region<'a>>, AllocError> {
        let count = self.entry_count().map_err(AllocError::Header)?;
        let next = self.next_offset();
        let Geometry {
            max_entries,
            memory_size,
            table_end,
        } = self.geometry;
        if next < table_end || next > memory_size {
            return Err(AllocError::Header(HeaderDefect::NextOffsetOutOfRange {
                next_offset: next,
                table_end,
                memory_size,
            }));
        }
        // The same `count` as above: a peer that does not take the lock (FORMAT.md §2.6) may
        // change the header meanwhile, and the slot index must match the entries checked.
        let raws = self.raw_entries(count);
        // Every check for every part before the first byte changes.
        let mut placed: Vec<(u64, u64, u32)> = Vec::with_capacity(parts.len());
        let mut cursor = next;
        for (part, &(name, size)) in parts.iter().enumerate() {
            let taken = raws.iter().any(|r| r.name_bytes() == name.as_bytes())
                || parts
                    .get(..part)
                    .is_some_and(|before| before.iter().any(|(n, _)| *n == name));
            if taken {
                return Err(AllocError::Duplicate { part });
            }
            let index = u32::try_from(part)
                .ok()
                .and_then(|p| count.checked_add(p))
                .filter(|&i| i < max_entries)
                .ok_or(AllocError::TableFull)?;
            let offset = align8(cursor).unwrap_or(u64::MAX);
            let end = offset
                .checked_add(size)
                .filter(|&end| end <= memory_size)
                .ok_or(AllocError::OutOfSpace {
                    part,
                    offset,
                    available: memory_size.saturating_sub(offset),
                })?;
            // An existing entry reaching into the new range would mean handing out its bytes
            // twice.
            for (raw, j) in raws.iter().zip(0u32..) {
                if raw.size > 0 && size > 0 && raw.end() > offset && raw.offset < end {
                    return Err(AllocError::Entry {
                        index: j,
                        name: raw.name_lossy(),
                        defect: EntryDefect::BeyondNextOffset {
                            end: raw.end(),
                            next_offset: next,
                        },
                    });
                }
            }
            placed.push((offset, size, index));
            cursor = end;
        }
        // Resolve every region and word we will store to before the first store, so that a
        // refused access cannot leave a half-written entry.
        let mut structures = Vec::with_capacity(parts.len());
        let mut slots = Vec::with_capacity(parts.len());
        for &(offset, size, index) in &placed {
            structures.push(
                self.region
                    .sub(offset, size)
                    .ok_or(AllocError::Access(Access::OutOfBounds))?,
            );
            let slot_offset = u64::from(index)
                .checked_mul(ENTRY_SIZE)
                .and_then(|o| o.checked_add(HEADER_SIZE))
                .ok_or(AllocError::Access(Access::OutOfBounds))?;
            slots.push(
                self.region
                    .sub(slot_offset, ENTRY_SIZE)
                    .ok_or(AllocError::Access(Access::OutOfBounds))?,
            );
        }
        let next_word = self
            .region
            .atomic_u64(OFF_NEXT_OFFSET)
            .map_err(AllocError::Access)?;
        let count_word = self
            .region
            .atomic_u32(OFF_ENTRY_COUNT)
            .map_err(AllocError::Access)?;
        let mut name_fields = Vec::with_capacity(parts.len());
        for &(name, _) in parts {
            let mut field = [0u8; NAME_FIELD];
            field
                .get_mut(..name.len())
                .ok_or(AllocError::Access(Access::OutOfBounds))?
                .copy_from_slice(name.as_bytes());
            name_fields.push(field);
        }
        let added = u32::try_from(parts.len()).map_err(|_| AllocError::TableFull)?;

        // The new bytes and entry slots are beyond `entry_count`, invisible to every reader
        // until the store below; a failure here leaves them unpublished (and `next_offset`
        // unmoved), so the table reads exactly as before.
        init(&structures).map_err(AllocError::Access)?;
        crate::failpoint::hit("table.add.initialised");
        for ((slot, field), &(offset, size, _)) in slots.iter().zip(&name_fields).zip(&placed) {
            slot.write(0, *field).map_err(AllocError::Access)?;
            slot.write::<u64>(ENTRY_OFF_OFFSET, offset)
                .map_err(AllocError::Access)?;
            slot.write::<u64>(ENTRY_OFF_SIZE, size)
                .map_err(AllocError::Access)?;
        }
        crate::failpoint::hit("table.add.entries");
        // Relaxed: ordered before readers by the Release store of entry_count below.
        next_word.store(cursor, Ordering::Relaxed);
        crate::failpoint::hit("table.add.next_offset");
        // SYNC POINT (entry_count): Release publishes the structure bytes written by `init` and
        // the entry fields of every part at once to readers whose Acquire load of entry_count
        // covers these indices.
        count_word.store(count.saturating_add(added), Ordering::Release);
        Ok(structures)
    }
}

/// Why [`Table::allocate_all`] changed nothing; `part` is the index of the part that did not
/// fit.
#[derive(Debug)]
pub(crate) enum AllocError {
    Header(HeaderDefect),
    Entry {
        index: u32,
        name: String,
        defect: EntryDefect,
    },
    Duplicate {
        part: usize,
    },
    TableFull,
    OutOfSpace {
        part: usize,
        offset: u64,
        available: u64,
    },
    Access(Access),
}

fn len_u32<T>(v: &[T]) -> u32 {
    u32::try_from(v.len()).unwrap_or(u32::MAX)
}

fn name_of(raws: &[RawEntry], i: u32) -> Option<&[u8]> {
    raws.get(i as usize).map(RawEntry::name_bytes)
}

fn size_of_entry(raws: &[RawEntry], i: u32) -> u64 {
    raws.get(i as usize).map_or(0, |r| r.size)
}

fn push_defect(entries: &mut [Entry], i: u32, defect: EntryDefect) {
    if let Some(e) = entries.get_mut(i as usize) {
        // Bounded: a hostile table can make one entry overlap every other.
        if e.defects.len() < MAX_ENTRY_DEFECTS && !e.defects.contains(&defect) {
            e.defects.push(defect);
        }
    }
}
