//! The one abstraction every structure kind implements, and everything written once over it:
//! creating (all entries of a composite at once, or none), opening (every part checked),
//! opening-or-creating with the parameter check, checking a stored structure's shared state,
//! and the fuzz body.
//!
//! A kind says four things ([`Kind`]): the parameters it is created with and the entry sizes
//! they need, how fresh bytes are initialised, how a stored header is validated into an
//! immutable geometry (checked arithmetic, bounded by the entry), and how the state of a stored
//! structure is audited. A typed handle ([`Handle`]) adds only how it is built from a validated
//! geometry. The kinds are listed once, in [`kinds!`].

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::fmt;
use std::mem::size_of;

use crate::dynamic::DynLayout;
use crate::error::{Error, Result};
use crate::layout::{Layout, ShmLayout};
use crate::raw::{Access, Anchored, Region, Slots, Word, Words};
use crate::segment::Segment;

/// What [`Segment::check_structure`] found in one stored structure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StructureReport {
    /// The entry name.
    pub name: String,
    /// The kind it was checked as.
    pub kind: StructureKind,
    /// Its validated geometry in words, e.g. ``capacity `1024`, `8`-byte elements``.
    pub geometry: String,
    /// Its current length or depth, where the kind has one.
    pub len: Option<u64>,
    /// Every inconsistency of its shared words. Empty for a sound structure.
    pub defects: Vec<StructureDefect>,
    /// The values of its shared words by their FORMAT.md names, where the kind has a few
    /// (`count`, `waiting`, `generation`, `state`, ...), as read now.
    pub state: Vec<(&'static str, i64)>,
    /// The processes recorded as holding it (a locked mutex's holder, a running once's
    /// runner), with their liveness. Empty for kinds nobody holds.
    pub holders: Vec<crate::Peer>,
}

impl StructureReport {
    /// Whether no defect was found.
    pub fn is_sound(&self) -> bool {
        self.defects.is_empty()
    }
}

/// One inconsistency in the shared words of a stored structure.
///
/// A check reads a live structure without stopping its users, so it is a snapshot: a slot that
/// a live peer is writing at that moment is reported too, as `in_flight`. Checked again, a
/// transient one is gone; one that stays belongs to a peer that stopped (or died) mid-operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StructureDefect {
    /// The slot or element concerned, when there is one.
    pub slot: Option<u64>,
    /// Whether this is the state a peer leaves while inside an operation (claimed and not yet
    /// published, held mid-copy), rather than one no peer following the algorithm can produce.
    pub in_flight: bool,
    /// What is wrong, in words.
    pub problem: String,
    /// For a slot in flight: the recorded process whose claim covers it, with its liveness
    /// (a dead one's claim is what [`Queue::recover`](crate::Queue::recover) and
    /// [`Stack::recover`](crate::Stack::recover) undo). `None` when no process of this crate
    /// claims it: a peer of another implementation, or an unrecorded one.
    pub holder: Option<crate::Peer>,
}

impl fmt::Display for StructureDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(slot) = self.slot {
            write!(f, "slot {slot}: ")?;
        }
        f.write_str(&self.problem)?;
        match self.holder {
            Some(p) if p.liveness == crate::Liveness::Dead => {
                write!(f, "; claimed by pid {}, which is dead", p.pid)
            }
            Some(p) if p.liveness == crate::Liveness::Alive => {
                write!(f, "; claimed by pid {}, which runs", p.pid)
            }
            Some(p) => write!(f, "; claimed by pid {}", p.pid),
            None => Ok(()),
        }
    }
}

/// What [`Queue::recover`](crate::Queue::recover) or [`Stack::recover`](crate::Stack::recover)
/// undid: claims of processes that died in the middle of an operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Positions or slots given back to the structure (skipped or freed).
    pub undone: u64,
    /// Items lost with them: the items the dead processes were pushing or popping.
    pub lost: u64,
    /// Claims of dead processes that could not be undone yet (a queue position behind items
    /// still to be popped, a stack slot below others): undone by a later recovery, once the
    /// structure's users have reached them.
    pub pending: u64,
}

/// The most defects a report lists one by one (a hostile structure can have billions); an
/// audit stops looking after one more.
pub(crate) const MAX_DEFECTS: usize = 256;

/// Why a stored structure could not be validated as a kind.
#[derive(Debug)]
pub(crate) enum Invalid {
    /// The header or geometry is inconsistent.
    Corrupt(String),
    /// The structure is sound but holds elements of another size than the caller's type.
    ElemSize {
        /// What the stored geometry says instead.
        found: String,
    },
}

/// How a requested structure differs from the one stored under its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// Another capacity.
    Capacity { requested: u64, found: u64 },
    /// Another value of the parameter `what`.
    Parameter {
        what: &'static str,
        requested: i64,
        found: i64,
    },
}

/// One kind of structure: everything creating, opening and checking need to know about it.
pub(crate) trait Kind {
    /// Which kind.
    const KIND: StructureKind;
    /// The entry-name suffixes of its parts, in creation order (FORMAT.md §7); `[""]` for a
    /// structure of one entry.
    const PARTS: &'static [&'static str];
    /// What it is created with, normalised (a capacity rounded as the kind requires, ...).
    type Params: Copy + fmt::Debug;
    /// What validation of the stored bytes yields: the numbers a handle is built from.
    type Geometry: Copy + fmt::Debug;

    /// Checks and normalises `params`; `Err((what, reason))` is an invalid argument.
    fn plan(params: Self::Params) -> Result<Self::Params, (&'static str, String)>;
    /// The size of each part for `params` (as normalised by `plan`), in [`Self::PARTS`] order.
    fn sizes(params: &Self::Params) -> Option<Vec<u64>>;
    /// Writes the fresh bytes of every part, before any of them is visible.
    fn init(params: &Self::Params, parts: &[Region<'_>]) -> Result<(), Access>;
    /// Validates the stored parts. `elem` is the element size the caller's type needs, or
    /// `None` to accept the stored one. Only reads: it must work on read-only segments.
    fn validate(parts: &[Region<'_>], elem: Option<u32>) -> Result<Self::Geometry, Invalid>;
    /// How the stored structure differs from `requested`, if it does.
    fn mismatch(requested: &Self::Params, found: &Self::Geometry) -> Option<Mismatch>;
    /// The geometry in words, for reports and the inspector.
    fn describe(geometry: &Self::Geometry) -> String;
    /// The current length or depth, read from the stored words.
    fn len(parts: &[Region<'_>], geometry: &Self::Geometry) -> Option<u64>;
    /// Every inconsistency of the stored shared words (a snapshot).
    fn audit(parts: &[Region<'_>], geometry: &Self::Geometry) -> Vec<StructureDefect>;
    /// The values of the stored shared words by name, for reports (none by default).
    fn state(_parts: &[Region<'_>], _geometry: &Self::Geometry) -> Vec<(&'static str, i64)> {
        Vec::new()
    }
    /// Undoes the claims of dead processes on the stored structure `parts` (at segment offset
    /// `offset`), waiting `stall` for claims not known to be held; nothing for kinds whose
    /// operations claim nothing.
    fn recover(
        _segment: &Segment,
        _parts: &[Region<'_>],
        _geometry: &Self::Geometry,
        _offset: u64,
        _stall: std::time::Duration,
    ) -> Recovery {
        Recovery::default()
    }
    /// The mask that maps a claimed position (`journal`) to a slot as `audit` numbers them:
    /// positions are slots unless the kind says otherwise.
    fn claim_mask(_geometry: &Self::Geometry) -> u32 {
        u32::MAX
    }
}

/// A typed handle on a kind: how it is built once the stored parts are validated.
pub(crate) trait Handle: Sized {
    /// Its kind.
    type Kind: Kind;
    /// The element size its type needs (checked against the stored one at open).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a type no structure can hold (zero-sized, over 4 GiB).
    fn elem() -> Result<u32>;
    /// The layout of its element type, for kinds that hold elements: stored with the
    /// structure at creation and compared with the stored one at open (`describe`).
    fn layout() -> Option<&'static Layout> {
        None
    }
    /// Builds the handle from validated parts.
    fn from_parts(opened: Opened<'_, Self::Kind>) -> Result<Self>;
}

/// The element type a structure is created or opened with, as far as descriptions go.
#[derive(Clone, Copy)]
pub(crate) enum Want<'l> {
    /// A kind without elements.
    Nothing,
    /// A Rust type.
    Static(&'static Layout),
    /// A layout known at run time.
    Dyn(&'l DynLayout),
}

impl Want<'_> {
    fn of<H: Handle>() -> Self {
        H::layout().map_or(Self::Nothing, Self::Static)
    }

    fn fingerprint(&self) -> u64 {
        match self {
            Self::Nothing => 0,
            Self::Static(l) => l.fingerprint(),
            Self::Dyn(l) => l.fingerprint(),
        }
    }

    fn owned(&self) -> Option<DynLayout> {
        match self {
            Self::Nothing => None,
            Self::Static(l) => Some(DynLayout::from_static(l)),
            Self::Dyn(l) => Some((*l).clone()),
        }
    }
}

/// The record describing a structure of kind `K` named `name` with elements `want`.
fn pending<K: Kind>(name: &str, want: Want<'_>) -> Option<crate::describe::Pending> {
    let part = K::PARTS.iter().position(|p| p.is_empty())?;
    Some(crate::describe::Pending {
        name: name.to_owned(),
        kind: K::KIND,
        layout: want.owned().map(|l| l.encode()).unwrap_or_default(),
        part,
    })
}

/// Whether a structure stored as `stored` opens as `requested`: the same kind, or a mutex and
/// a semaphore (a mutex is a semaphore of one permit; the geometry check decides).
fn kind_opens_as(stored: StructureKind, requested: StructureKind) -> bool {
    use StructureKind::{Mutex, Semaphore};
    stored == requested || matches!((stored, requested), (Mutex, Semaphore) | (Semaphore, Mutex))
}

/// What the segment's description of the structure `name` (parts `regions`, of kind `K`)
/// says, checked against `want`: `Ok(Some(layout))` for a described structure with elements,
/// `Ok(None)` for one without a description (or with one that cannot be read, which opening
/// ignores and `check` reports) or without elements.
///
/// # Errors
///
/// [`Error::KindMismatch`] for a structure described as another kind, and
/// [`Error::LayoutMismatch`] for one whose element layout differs from `want`.
fn described<K: Kind>(
    segment: &Segment,
    name: &str,
    regions: &[Region<'_>],
    want: Want<'_>,
) -> Result<Option<DynLayout>> {
    if !segment.descriptions() {
        return Ok(None);
    }
    let Some(entry) = K::PARTS
        .iter()
        .position(|p| p.is_empty())
        .and_then(|i| regions.get(i))
        .and_then(|r| segment.mapping().offset_of(r))
    else {
        return Ok(None);
    };
    let Some(found) = crate::describe::lookup(segment, name, entry) else {
        return Ok(None);
    };
    match found.structure_kind() {
        Some(stored) if kind_opens_as(stored, K::KIND) => {}
        _ => {
            return Err(Error::KindMismatch {
                segment: segment.name().to_owned(),
                name: name.to_owned(),
                requested: K::KIND.name(),
                found: found.kind,
            });
        }
    }
    let Some(stored) = found.layout else {
        return Ok(None);
    };
    if matches!(want, Want::Nothing) || want.fingerprint() == found.fingerprint {
        return Ok(Some(stored));
    }
    let expected = want.owned().unwrap_or_else(|| stored.clone());
    // A run-time layout from a dtype has no type names (its records are `record`): the same
    // fields at the same offsets are the same bytes.
    if matches!(want, Want::Dyn(_)) && expected.first_difference(&stored, false).is_none() {
        return Ok(Some(stored));
    }
    let (field, difference) = expected.first_difference(&stored, true).unwrap_or_else(|| {
        (
            "the element".to_owned(),
            "the fingerprints differ".to_owned(),
        )
    });
    Err(Error::LayoutMismatch {
        segment: segment.name().to_owned(),
        name: name.to_owned(),
        difference: Box::new(crate::error::LayoutDifference {
            expected_type: expected.type_name(),
            found_type: stored.type_name(),
            field,
            what: difference,
        }),
    })
}

/// A validated structure, for [`Handle::from_parts`]: where it is, what it is, and views of its
/// parts anchored to the segment's mapping.
pub(crate) struct Opened<'a, K: Kind> {
    pub(crate) segment: &'a Segment,
    pub(crate) name: &'a str,
    pub(crate) geometry: K::Geometry,
    parts: Vec<Region<'a>>,
}

impl<K: Kind> Opened<'_, K> {
    /// The length of part `part`.
    pub(crate) fn part_len(&self, part: usize) -> Result<u64> {
        Ok(self.part(part)?.len() as u64)
    }

    fn part(&self, part: usize) -> Result<&Region<'_>> {
        self.parts
            .get(part)
            .ok_or_else(|| self.internal("outside the parts"))
    }

    /// The segment offset of part `part`.
    pub(crate) fn offset(&self, part: usize) -> Result<u64> {
        let part = self.part(part)?;
        self.segment
            .mapping()
            .offset_of(part)
            .ok_or_else(|| self.internal("outside the mapping"))
    }

    /// The atomic word at `offset` of part `part`.
    pub(crate) fn word(&self, part: usize, offset: usize) -> Result<Anchored<Word<'static>>> {
        let word = self.part(part)?.word(offset).map_err(|a| self.access(a))?;
        Anchored::word(self.segment.mapping(), word).ok_or_else(|| self.internal("outside"))
    }

    /// `count` atomic words at `offset` of part `part`.
    pub(crate) fn words(
        &self,
        part: usize,
        offset: usize,
        count: usize,
    ) -> Result<Anchored<Words<'static>>> {
        let words = self.part(part)?.words(offset, count);
        let words = words.map_err(|a| self.access(a))?;
        Anchored::words(self.segment.mapping(), words).ok_or_else(|| self.internal("outside"))
    }

    /// `count` slots of `T` at `offset` of part `part`.
    pub(crate) fn slots<T: ShmLayout>(
        &self,
        part: usize,
        offset: usize,
        count: usize,
    ) -> Result<Anchored<Slots<'static, T>>> {
        let slots = self.part(part)?.slots::<T>(offset, count);
        let slots = slots.map_err(|a| self.access(a))?;
        Anchored::slots(self.segment.mapping(), slots).ok_or_else(|| self.internal("outside"))
    }

    /// The bytes `[offset, offset + len)` of part `part`.
    pub(crate) fn region(
        &self,
        part: usize,
        offset: u64,
        len: u64,
    ) -> Result<Anchored<Region<'static>>> {
        let region = self.part(part)?.sub(offset, len);
        let region = region.ok_or_else(|| self.access(Access::OutOfBounds))?;
        Anchored::region(self.segment.mapping(), region).ok_or_else(|| self.internal("outside"))
    }

    fn access(&self, access: Access) -> Error {
        access_error(self.segment, self.name, K::KIND, access)
    }

    fn internal(&self, problem: &'static str) -> Error {
        Error::Internal {
            segment: self.segment.name().to_owned(),
            what: "anchor a view of an entry to its mapping",
            problem,
        }
    }
}

/// `size_of::<T>()` as the format's `u32` element size, refusing zero-sized and oversized types.
pub(crate) fn elem_size<T: ShmLayout>() -> Result<u32> {
    let size = size_of::<T>();
    u32::try_from(size)
        .ok()
        .filter(|&e| e > 0)
        .ok_or_else(|| Error::InvalidArgument {
            what: "T",
            reason: format!("elements of `{size}` bytes cannot be stored"),
        })
}

/// The entry names of the structure `name` of kind `K`, in creation order.
fn part_names<K: Kind>(name: &str) -> Vec<String> {
    K::PARTS
        .iter()
        .map(|suffix| format!("{name}{suffix}"))
        .collect()
}

/// Creates the structure `name` of kind `H::Kind` with `params`: every part under one hold of
/// the table lock, or none; a creation that fails changes nothing in the segment. (Building the
/// handle afterwards validates the fresh bytes again, which cannot fail unless `init` and
/// `validate` disagree; the structure then stays, as any other process may already use it.)
pub(crate) fn create<H: Handle>(
    segment: &Segment,
    name: &str,
    params: <H::Kind as Kind>::Params,
) -> Result<H> {
    let params = plan::<H::Kind>(params)?;
    let regions = create_parts::<H::Kind>(segment, name, params, Want::of::<H>())?;
    from_regions::<H>(segment, name, regions)
}

/// Makes the parts of the structure `name` of kind `K` (with `params` as normalised by
/// `plan`) and its description.
fn create_parts<'s, K: Kind>(
    segment: &'s Segment,
    name: &str,
    params: K::Params,
    want: Want<'_>,
) -> Result<Vec<Region<'s>>> {
    let sizes = K::sizes(&params).ok_or_else(|| Error::InvalidArgument {
        what: "capacity",
        reason: format!("`{params:?}` overflows the size of a structure"),
    })?;
    let names = part_names::<K>(name);
    let parts: Vec<(&str, u64)> = names.iter().map(String::as_str).zip(sizes).collect();
    let record = pending::<K>(name, want);
    segment.create_described(&parts, |r| K::init(&params, r), record.as_ref())
}

/// Opens the structure `name` as kind `H::Kind`, checking every part.
pub(crate) fn open<H: Handle>(segment: &Segment, name: &str) -> Result<H> {
    let regions = open_parts::<H::Kind>(segment, name)?;
    from_regions::<H>(segment, name, regions)
}

/// Creates the structure `name` of kind `K` with `params`, holding elements of the run-time
/// layout `layout`, and returns it validated.
pub(crate) fn create_dyn<'s, K: Kind>(
    segment: &'s Segment,
    name: &'s str,
    params: K::Params,
    layout: &DynLayout,
) -> Result<Opened<'s, K>> {
    let params = plan::<K>(params)?;
    let elem = dyn_elem(layout)?;
    let regions = create_parts::<K>(segment, name, params, Want::Dyn(layout))?;
    let geometry = validate::<K>(segment, name, &regions, Some(elem))?;
    Ok(Opened {
        segment,
        name,
        geometry,
        parts: regions,
    })
}

/// Opens the structure `name` as kind `K` with elements of `layout`, or, when `layout` is
/// `None`, of the layout the segment describes it with; returns it validated, with the layout.
///
/// # Errors
///
/// Those of opening, and [`Error::NotDescribed`] when `layout` is `None` and the segment does
/// not describe the structure.
pub(crate) fn open_dyn<'s, K: Kind>(
    segment: &'s Segment,
    name: &'s str,
    layout: Option<&DynLayout>,
) -> Result<(Opened<'s, K>, DynLayout)> {
    let regions = open_parts::<K>(segment, name)?;
    let want = layout.map_or(Want::Nothing, Want::Dyn);
    let stored = described::<K>(segment, name, &regions, want)?;
    let layout = match (layout, stored) {
        (Some(layout), _) => layout.clone(),
        (None, Some(stored)) => stored,
        (None, None) => {
            return Err(Error::NotDescribed {
                segment: segment.name().to_owned(),
                name: name.to_owned(),
            });
        }
    };
    let geometry = validate::<K>(segment, name, &regions, Some(dyn_elem(&layout)?))?;
    let opened = Opened {
        segment,
        name,
        geometry,
        parts: regions,
    };
    Ok((opened, layout))
}

/// The format's element size for `layout`.
pub(crate) fn dyn_elem(layout: &DynLayout) -> Result<u32> {
    u32::try_from(layout.size())
        .ok()
        .filter(|&e| e > 0)
        .ok_or_else(|| Error::InvalidArgument {
            what: "layout",
            reason: format!("elements of `{}` bytes cannot be stored", layout.size()),
        })
}

/// Opens `name` if it exists (it must have been made with `params`), otherwise creates it;
/// if another process creates it between the two, opens that one.
pub(crate) fn open_or_create<H: Handle>(
    segment: &Segment,
    name: &str,
    params: <H::Kind as Kind>::Params,
) -> Result<H> {
    let params = plan::<H::Kind>(params)?;
    let regions = match open_parts::<H::Kind>(segment, name) {
        Err(Error::EntryNotFound { .. }) => match create::<H>(segment, name, params) {
            Err(Error::DuplicateEntry { .. }) => open_parts::<H::Kind>(segment, name)?,
            created => return created,
        },
        opened => opened?,
    };
    described::<H::Kind>(segment, name, &regions, Want::of::<H>())?;
    let geometry = validate::<H::Kind>(segment, name, &regions, Some(H::elem()?))?;
    match H::Kind::mismatch(&params, &geometry) {
        None => {}
        Some(Mismatch::Capacity { requested, found }) => {
            return Err(Error::CapacityMismatch {
                segment: segment.name().to_owned(),
                name: name.to_owned(),
                requested,
                found,
            });
        }
        Some(Mismatch::Parameter {
            what,
            requested,
            found,
        }) => {
            return Err(Error::ParameterMismatch {
                segment: segment.name().to_owned(),
                name: name.to_owned(),
                what,
                requested,
                found,
            });
        }
    }
    H::from_parts(Opened {
        segment,
        name,
        geometry,
        parts: regions,
    })
}

/// Checks the stored structure `name` as kind `K`, on any segment (read-only too).
pub(crate) fn check<K: Kind>(segment: &Segment, name: &str) -> Result<StructureReport> {
    let regions = open_parts::<K>(segment, name)?;
    // A structure described as another kind is named as what it is.
    described::<K>(segment, name, &regions, Want::Nothing)?;
    report::<K>(segment, name, &regions)
}

/// [`Kind::recover`] of `name`, whose parts are checked as for opening it.
pub(crate) fn recover<K: Kind>(
    segment: &Segment,
    name: &str,
    stall: std::time::Duration,
) -> Result<Recovery> {
    if segment.is_read_only() {
        return Err(Error::ReadOnly {
            segment: segment.name().to_owned(),
        });
    }
    let regions = open_parts::<K>(segment, name)?;
    described::<K>(segment, name, &regions, Want::Nothing)?;
    let geometry = validate::<K>(segment, name, &regions, None)?;
    let offset = regions
        .first()
        .and_then(|r| segment.mapping().offset_of(r))
        .ok_or_else(|| Error::Internal {
            segment: segment.name().to_owned(),
            what: "recover a structure",
            problem: "outside the mapping",
        })?;
    Ok(K::recover(segment, &regions, &geometry, offset, stall))
}

/// The report on the stored parts `regions` of `name` as kind `K`.
fn report<K: Kind>(
    segment: &Segment,
    name: &str,
    regions: &[Region<'_>],
) -> Result<StructureReport> {
    let geometry = validate::<K>(segment, name, regions, None)?;
    let mut defects = K::audit(regions, &geometry);
    let offset = regions.first().and_then(|r| segment.mapping().offset_of(r));
    // Who holds each slot in flight, from the claims recorded for this structure.
    let claims = offset.map_or_else(Vec::new, |offset| crate::runtime::claims(segment, offset));
    // Who holds the structure itself: the holds on any of its parts.
    let holders = regions
        .iter()
        .filter_map(|r| segment.mapping().offset_of(r))
        .flat_map(|offset| crate::runtime::holders(segment, offset))
        .map(|h| crate::Peer {
            pid: h.pid,
            liveness: h.liveness,
        })
        .collect();
    for d in defects.iter_mut().filter(|d| d.in_flight) {
        let Some(slot) = d.slot.and_then(|s| u32::try_from(s).ok()) else {
            continue;
        };
        let mask = K::claim_mask(&geometry);
        d.holder = claims
            .iter()
            .filter(|c| c.covers_slot(slot, mask))
            .min_by_key(|c| c.liveness != crate::Liveness::Dead)
            .map(|c| crate::Peer {
                pid: c.pid,
                liveness: c.liveness,
            });
    }
    if defects.len() > MAX_DEFECTS {
        defects.truncate(MAX_DEFECTS);
        defects.push(StructureDefect {
            slot: None,
            in_flight: false,
            problem: format!("more defects follow; only the first `{MAX_DEFECTS}` are listed"),
            holder: None,
        });
    }
    Ok(StructureReport {
        name: name.to_owned(),
        kind: K::KIND,
        geometry: K::describe(&geometry),
        len: K::len(regions, &geometry),
        defects,
        state: K::state(regions, &geometry),
        holders,
    })
}

fn plan<K: Kind>(params: K::Params) -> Result<K::Params> {
    K::plan(params).map_err(|(what, reason)| Error::InvalidArgument { what, reason })
}

fn open_parts<'s, K: Kind>(segment: &'s Segment, name: &str) -> Result<Vec<Region<'s>>> {
    part_names::<K>(name)
        .iter()
        .map(|part| segment.open_entry(part))
        .collect()
}

fn validate<K: Kind>(
    segment: &Segment,
    name: &str,
    regions: &[Region<'_>],
    elem: Option<u32>,
) -> Result<K::Geometry> {
    K::validate(regions, elem).map_err(|invalid| match invalid {
        Invalid::Corrupt(reason) => corrupt(segment, name, K::KIND, reason),
        Invalid::ElemSize { found } => Error::TypeMismatch {
            segment: segment.name().to_owned(),
            name: name.to_owned(),
            expected: elem.map_or(0, |e| e as usize),
            found,
        },
    })
}

fn from_regions<H: Handle>(segment: &Segment, name: &str, regions: Vec<Region<'_>>) -> Result<H> {
    described::<H::Kind>(segment, name, &regions, Want::of::<H>())?;
    let geometry = validate::<H::Kind>(segment, name, &regions, Some(H::elem()?))?;
    H::from_parts(Opened {
        segment,
        name,
        geometry,
        parts: regions,
    })
}

/// A structure whose header or geometry is inconsistent.
pub(crate) fn corrupt(segment: &Segment, name: &str, kind: StructureKind, reason: String) -> Error {
    Error::CorruptStructure {
        segment: segment.name().to_owned(),
        name: name.to_owned(),
        kind: kind.name(),
        reason,
    }
}

/// A refused access while building a handle: read-only segments cannot host structures whose
/// every operation writes; anything else means the layout is inconsistent.
fn access_error(segment: &Segment, name: &str, kind: StructureKind, a: Access) -> Error {
    match a {
        Access::ReadOnly => Error::ReadOnly {
            segment: segment.name().to_owned(),
        },
        Access::Misaligned => corrupt(segment, name, kind, "a word is misaligned".into()),
        Access::OutOfBounds => corrupt(
            segment,
            name,
            kind,
            "a section lies outside the entry".into(),
        ),
    }
}

/// The only part of a one-entry structure.
pub(crate) fn only<'r, 'a>(parts: &'r [Region<'a>]) -> Result<&'r Region<'a>, Invalid> {
    match parts {
        [part] => Ok(part),
        _ => Err(Invalid::Corrupt("the structure has no entry".into())),
    }
}

/// Bounded operations on a handle, for the fuzz body: whatever the stored bytes, each must
/// return (`Ok` or `Err`), never panic, hang or touch memory outside the entry.
pub(crate) trait Exercise {
    /// Runs a few operations of every sort the handle offers.
    fn exercise(&mut self);
}

/// The registration of every kind, the one place a new kind is added: its [`StructureKind`]
/// variant with its docs, the name errors and the inspector print, the type implementing
/// [`Kind`], and the handles the fuzz body opens it as (a generic one with a few element
/// types: one-byte, odd-sized, four-byte, eight-byte and sixteen-byte).
macro_rules! kinds {
    ($($(#[$doc:meta])* $kind:ident = $name:literal => $ty:ty, [$($handle:ty),* $(,)?];)*) => {
        /// A kind of structure a segment can hold (FORMAT.md §4–§6).
        ///
        /// The format stores no kind: an entry is only a name, an offset and a size, and a
        /// stored structure is recognised by checking its header against the kind asked for
        /// ([`Segment::check_structure`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum StructureKind {
            $($(#[$doc])* $kind,)*
        }

        impl StructureKind {
            /// Every kind this release can open, in FORMAT.md order.
            pub const ALL: &'static [StructureKind] = &[$(Self::$kind),*];

            /// The kind's name as errors and the inspector print it: `array`, `queue`, ...
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$kind => $name,)*
                }
            }
        }

        /// Recovers `name` as `kind`, dispatching to the kind's implementation.
        pub(crate) fn recover_as(
            segment: &Segment,
            name: &str,
            kind: StructureKind,
            stall: std::time::Duration,
        ) -> Result<Recovery> {
            match kind {
                $(StructureKind::$kind => recover::<$ty>(segment, name, stall),)*
            }
        }

        /// Checks `name` as `kind`, dispatching to the kind's implementation.
        pub(crate) fn check_as(
            segment: &Segment,
            name: &str,
            kind: StructureKind,
        ) -> Result<StructureReport> {
            match kind {
                $(StructureKind::$kind => check::<$ty>(segment, name),)*
            }
        }

        /// Checks `name` as every kind, opens it with every handle listed for each kind and
        /// exercises what opens; returns the kind of each typed open that succeeded.
        pub(crate) fn fuzz_entry(segment: &Segment, name: &str) -> Vec<StructureKind> {
            let mut opened = Vec::new();
            $(
                // The parts are looked up once per kind, as `open` would, and shared by the
                // report and every typed open (each validates them afresh).
                match open_parts::<$ty>(segment, name) {
                    Err(e) => {
                        let _ = e.to_string();
                    }
                    Ok(parts) => {
                        if let Ok(report) = report::<$ty>(segment, name, &parts) {
                            let _ = report.defects.iter().map(ToString::to_string).count();
                        }
                        for ok in [$(fuzz_handle::<$handle>(segment, name, &parts)),*] {
                            if ok {
                                opened.push(StructureKind::$kind);
                            }
                        }
                    }
                }
            )*
            crate::container::dynamic::exercise(segment, name);
            opened
        }
    };
}

/// Builds `H` on the stored `parts` of `name` (as `open` does after looking them up) and
/// exercises it; whether it opened.
fn fuzz_handle<H: Handle + Exercise>(segment: &Segment, name: &str, parts: &[Region<'_>]) -> bool {
    match from_regions::<H>(segment, name, parts.to_vec()) {
        Ok(mut handle) => {
            handle.exercise();
            true
        }
        Err(e) => {
            let _ = e.to_string();
            false
        }
    }
}

use crate::container::array::{Array, ArrayKind};
use crate::container::queue::{Queue, QueueKind};
use crate::container::stack::{Stack, StackKind};
use crate::sync::barrier::{Barrier, BarrierKind};
use crate::sync::event::{Event, EventKind};
use crate::sync::latch::{Latch, LatchKind};
use crate::sync::monitor::{Monitor, MonitorKind};
use crate::sync::mutex::{Mutex, MutexKind};
use crate::sync::once::{Once, OnceKind};
use crate::sync::rwlock::{RwLock, RwLockKind};
use crate::sync::semaphore::{Semaphore, SemaphoreKind};
use crate::sync::signal::{Signal, SignalKind};

kinds! {
    /// [`Array`](crate::Array) (FORMAT.md §4.1).
    Array = "array" => ArrayKind,
        [Array<u8>, Array<[u8; 3]>, Array<i32>, Array<f64>, Array<[u64; 2]>];
    /// [`Queue`](crate::Queue) (FORMAT.md §4.2).
    Queue = "queue" => QueueKind,
        [Queue<u8>, Queue<[u8; 3]>, Queue<i32>, Queue<f64>, Queue<[u64; 2]>];
    /// [`Stack`](crate::Stack) (FORMAT.md §4.3).
    Stack = "stack" => StackKind,
        [Stack<u8>, Stack<[u8; 3]>, Stack<i32>, Stack<f64>, Stack<[u64; 2]>];
    /// [`Semaphore`](crate::Semaphore) (FORMAT.md §5.1).
    Semaphore = "semaphore" => SemaphoreKind, [Semaphore];
    /// [`Mutex`](crate::Mutex) (FORMAT.md §5.2): a semaphore of one permit.
    Mutex = "mutex" => MutexKind, [Mutex];
    /// [`Barrier`](crate::Barrier) (FORMAT.md §5.3).
    Barrier = "barrier" => BarrierKind, [Barrier];
    /// [`Latch`](crate::Latch) (FORMAT.md §5.4).
    Latch = "latch" => LatchKind, [Latch];
    /// [`Once`](crate::Once) (FORMAT.md §5.5).
    Once = "once" => OnceKind, [Once];
    /// [`RwLock`](crate::RwLock) (FORMAT.md §5.7): four entries.
    RwLock = "rwlock" => RwLockKind, [RwLock];
    /// [`Event`](crate::Event) (FORMAT.md §5.6): two entries.
    Event = "event" => EventKind, [Event];
    /// [`Monitor`](crate::Monitor) (FORMAT.md §5.8): four entries.
    Monitor = "monitor" => MonitorKind, [Monitor];
    /// [`Signal`](crate::Signal) (FORMAT.md §5.9): three entries. (Checks and reports do
    /// not depend on the value type beyond its size, so they use one instance.)
    Signal = "signal" => SignalKind<u8>,
        [Signal<u8>, Signal<[u8; 3]>, Signal<i32>, Signal<f64>, Signal<[u64; 2]>];
}

impl StructureKind {
    /// The kind named `name` (as [`name`](Self::name) prints it), if this release knows it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }
}

impl fmt::Display for StructureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::cast_possible_truncation
    )]

    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::SegmentOptions;

    /// A composite kind of four parts in the shape of FORMAT.md §7 (an 8-byte state, two
    /// 16-byte parts, a 1-byte marker under the bare name), each part's first byte a tag.
    enum Quad {}

    #[derive(Debug)]
    struct QuadHandle {
        tags: Vec<u8>,
    }

    const SIZES: [u64; 4] = [8, 16, 16, 1];

    impl Kind for Quad {
        const KIND: StructureKind = StructureKind::Array;
        const PARTS: &'static [&'static str] = &["_state", "_a", "_b", ""];
        type Params = ();
        type Geometry = ();

        fn plan(params: ()) -> Result<(), (&'static str, String)> {
            Ok(params)
        }
        fn sizes(_: &()) -> Option<Vec<u64>> {
            Some(SIZES.to_vec())
        }
        fn init(_: &(), parts: &[Region<'_>]) -> Result<(), Access> {
            for (i, p) in parts.iter().enumerate() {
                p.zero(0, p.len())?;
                p.write::<u8>(0, i as u8 + 1)?;
            }
            Ok(())
        }
        fn validate(parts: &[Region<'_>], _: Option<u32>) -> Result<(), Invalid> {
            for (i, (p, &size)) in parts.iter().zip(&SIZES).enumerate() {
                if p.len() as u64 != size {
                    return Err(Invalid::Corrupt(format!("part {i} has {} bytes", p.len())));
                }
            }
            Ok(())
        }
        fn mismatch(_: &(), _: &()) -> Option<Mismatch> {
            None
        }
        fn describe(_: &()) -> String {
            "quad".into()
        }
        fn len(_: &[Region<'_>], _: &()) -> Option<u64> {
            None
        }
        fn audit(_: &[Region<'_>], _: &()) -> Vec<StructureDefect> {
            Vec::new()
        }
    }

    impl Handle for QuadHandle {
        type Kind = Quad;
        fn elem() -> Result<u32> {
            Ok(1)
        }
        fn from_parts(opened: Opened<'_, Quad>) -> Result<Self> {
            let tags = (0..4)
                .map(|i| opened.part(i).map(|p| p.read::<u8>(0).unwrap_or(0)))
                .collect::<Result<_>>()?;
            Ok(Self { tags })
        }
    }

    fn scratch(max_entries: u32) -> Segment {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("/zipc-kind-{}-{n}", std::process::id());
        SegmentOptions::new()
            .max_entries(max_entries)
            .descriptions(false)
            .unlink_on_drop(true)
            .create(&name, 4096)
            .unwrap()
    }

    fn bytes(seg: &Segment) -> Vec<u8> {
        std::fs::read(crate::name::shm_path(seg.name())).unwrap()
    }

    #[test]
    fn a_composite_is_made_whole_in_the_reference_order_and_opened_part_by_part() {
        let seg = scratch(8);
        let made = create::<QuadHandle>(&seg, "rw", ()).unwrap();
        assert_eq!(made.tags, [1, 2, 3, 4]);
        let names: Vec<_> = seg.entries().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["rw_state", "rw_a", "rw_b", "rw"]);
        assert_eq!(open::<QuadHandle>(&seg, "rw").unwrap().tags, [1, 2, 3, 4]);
        assert!(matches!(
            create::<QuadHandle>(&seg, "rw", ()),
            Err(Error::DuplicateEntry { .. })
        ));
        assert_eq!(
            seg.entries().unwrap().len(),
            4,
            "a failed creation adds nothing"
        );
        assert_eq!(
            open_or_create::<QuadHandle>(&seg, "rw", ()).unwrap().tags,
            [1, 2, 3, 4]
        );
    }

    #[test]
    fn a_composite_whose_third_part_cannot_fit_leaves_the_table_as_it_was() {
        // One entry already there, room for three more: the third of four parts finds the
        // table full.
        let seg = scratch(4);
        seg.create_entries(&[("first", 8)], |r| r[0].zero(0, 8))
            .unwrap();
        let before = bytes(&seg);
        let e = create::<QuadHandle>(&seg, "rw", ()).unwrap_err();
        assert!(matches!(e, Error::TableFull { max_entries: 4, .. }), "{e}");
        assert_eq!(bytes(&seg), before, "not one byte changed");
        assert!(matches!(
            open::<QuadHandle>(&seg, "rw"),
            Err(Error::EntryNotFound { .. })
        ));
    }

    #[test]
    fn opening_a_composite_checks_every_part() {
        let seg = scratch(8);
        // Only the marker and the state exist, as if made by hand: the first missing part is
        // named.
        seg.create_entries(&[("rw_state", 8), ("rw", 1)], |r| {
            r.iter().try_for_each(|p| p.zero(0, p.len()))
        })
        .unwrap();
        match open::<QuadHandle>(&seg, "rw") {
            Err(Error::EntryNotFound { name, .. }) => assert_eq!(name, "rw_a"),
            other => panic!("{:?}", other.map(|h| h.tags)),
        }
        // All parts present, one of the wrong size: corrupt, naming the part.
        let seg = scratch(8);
        let parts = [("q_state", 8), ("q_a", 16), ("q_b", 24), ("q", 1)];
        seg.create_entries(&parts, |r| r.iter().try_for_each(|p| p.zero(0, p.len())))
            .unwrap();
        match open::<QuadHandle>(&seg, "q") {
            Err(Error::CorruptStructure { reason, .. }) => {
                assert_eq!(reason, "part 2 has 24 bytes")
            }
            other => panic!("{:?}", other.map(|h| h.tags)),
        }
    }
}
