//! Containers whose element type is known only at run time: [`DynArray`], [`DynQueue`] and
//! [`DynStack`].
//!
//! They open the same stored structures as [`Array`](crate::Array), [`Queue`](crate::Queue)
//! and [`Stack`](crate::Stack), with a [`DynLayout`] in place of a Rust type: the one the
//! segment describes the structure with, or one given (from a schema file or a NumPy dtype
//! string). Every check of the typed open applies (the stored geometry against the layout's
//! size, the description's kind and fingerprint), and the queue and stack run the same
//! algorithms, recording their claims for crash recovery and waking the typed handles' waiters.
//! Elements move as bytes (copied in the units the typed API uses for the same layout) or as
//! decoded [`Value`]s.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::Duration;

use crate::algo::{stack as stack_algo, vyukov};
use crate::container::Capacity;
use crate::container::array::{ArrayFormat, ArrayKind};
use crate::container::queue::{self, Claiming, OFF_HEAD, OFF_TAIL, QueueKind};
use crate::container::slotted::{HEADER, Slotted};
use crate::container::stack::{self, Claimed, OFF_TOP, Op, StackCells, StackKind};
use crate::dynamic::{DynLayout, Value};
use crate::error::{Error, Result};
use crate::journal::{Journal, Target};
use crate::kind::{self, Opened, StructureKind};
use crate::raw::{Access, Anchored, Region, Word, Words};
use crate::runtime;
use crate::segment::Segment;
use crate::sync::signal::SignalKind;
use crate::wait::{Bell, Chime};

/// What the three handles share: where they are, the layout and the slot bytes.
struct Cells {
    segment: Segment,
    name: String,
    layout: DynLayout,
    /// `layout.size()`, as a `usize`.
    elem: usize,
    /// The copy unit of the layout.
    unit: usize,
    /// The elements, back to back.
    data: Anchored<Region<'static>>,
    /// The number of element slots.
    slots: usize,
}

impl Cells {
    fn new<K: kind::Kind>(
        opened: &Opened<'_, K>,
        layout: DynLayout,
        header: u64,
        slots: u64,
    ) -> Result<Self> {
        let elem = layout.size();
        let bytes = slots.saturating_mul(elem as u64);
        let data = opened.region(0, header, bytes)?;
        let slots = usize::try_from(slots).map_err(|_| {
            kind::corrupt(
                opened.segment,
                opened.name,
                K::KIND,
                format!("capacity `{slots}` does not fit this address space"),
            )
        })?;
        Ok(Self {
            segment: opened.segment.clone(),
            name: opened.name.to_owned(),
            unit: layout.copy_unit(),
            layout,
            elem,
            data,
            slots,
        })
    }

    fn offset(&self, slot: usize) -> Option<usize> {
        (slot < self.slots).then(|| slot.checked_mul(self.elem))?
    }

    /// Slot `slot` (which must exist) copied out; zeros if the copy was refused, which the
    /// validated geometry rules out.
    fn read(&self, slot: usize) -> Vec<u8> {
        let mut out = vec![0; self.elem];
        if let Some(at) = self.offset(slot) {
            let _ = self.data.get().read_bytes(at, &mut out, self.unit);
        }
        out
    }

    fn write(&self, slot: usize, bytes: &[u8]) -> std::result::Result<(), Access> {
        let at = self.offset(slot).ok_or(Access::OutOfBounds)?;
        self.data.get().write_bytes(at, bytes, self.unit)
    }

    /// `bytes`, checked to be one element.
    fn element<'b>(&self, bytes: &'b [u8]) -> Result<&'b [u8]> {
        if bytes.len() == self.elem {
            Ok(bytes)
        } else {
            Err(Error::InvalidArgument {
                what: "bytes",
                reason: format!(
                    "{} bytes given for a `{}` element of {} bytes",
                    bytes.len(),
                    self.layout.type_name(),
                    self.elem
                ),
            })
        }
    }

    /// The bytes of `value` as an element; fields it leaves out are zero.
    fn encode(&self, value: &Value) -> Result<Vec<u8>> {
        let mut out = vec![0; self.elem];
        self.encode_into(value, &mut out)?;
        Ok(out)
    }

    /// Writes `value` over the element bytes `out`; fields it leaves out keep their bytes.
    fn encode_into(&self, value: &Value, out: &mut [u8]) -> Result<()> {
        self.layout
            .write(value, out)
            .map_err(|e| Error::InvalidArgument {
                what: "value",
                reason: e.to_string(),
            })
    }

    /// Whether elements can be decoded into values (not when one would take more than
    /// `MAX_DECODED_BYTES`).
    fn decodable(&self) -> Result<()> {
        self.layout.decodable().map_err(|e| Error::InvalidArgument {
            what: "layout",
            reason: e.to_string(),
        })
    }

    /// The element `bytes` (one element: `read` copies exactly that) decoded; an error only
    /// for a layout too large to decode into values (`MAX_DECODED_BYTES`).
    fn decode(&self, bytes: &[u8]) -> Result<Value> {
        self.layout.read(bytes).map_err(|e| Error::InvalidArgument {
            what: "layout",
            reason: e.to_string(),
        })
    }

    fn access(&self, kind: StructureKind, a: Access) -> Error {
        match a {
            Access::ReadOnly => Error::ReadOnly {
                segment: self.segment.name().to_owned(),
            },
            _ => kind::corrupt(
                &self.segment,
                &self.name,
                kind,
                "an element lies outside the entry".into(),
            ),
        }
    }

    fn fmt(&self, f: &mut fmt::Formatter<'_>, what: &str, len: usize) -> fmt::Result {
        f.debug_struct(what)
            .field("segment", &self.segment.name())
            .field("name", &self.name)
            .field("elem", &self.layout.type_name())
            .field("capacity", &self.slots)
            .field("len", &len)
            .finish()
    }
}

/// A fixed-length array whose element layout is known at run time (see
/// [`Array`](crate::Array) for the concurrency rules, which are the same).
///
/// ```
/// use zeroipc::{DynArray, DynLayout, Segment, Value};
///
/// # let name = format!("/zeroipc-doc-dynarray-{}", std::process::id());
/// let seg = Segment::create(&name, 1 << 16)?;
/// let layout = DynLayout::from_dtype("[('x', '<f4'), ('n', '<u4')]")?;
/// let a = DynArray::create(&seg, "points", &layout, 4)?;
/// a.set(1, &Value::parse(r#"{"x": 1.5, "n": 7}"#)?)?;
///
/// // Another process opens it from the segment's description alone.
/// let b = DynArray::open(&seg, "points")?;
/// assert_eq!(b.get(1)?.to_string(), r#"{"x":1.5,"n":7}"#);
/// assert_eq!(b.get_bytes(1)?, [0, 0, 0xc0, 0x3f, 7, 0, 0, 0]);
/// # Segment::unlink(&name)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DynArray {
    cells: Cells,
    format: ArrayFormat,
}

impl fmt::Debug for DynArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cells.fmt(f, "DynArray", self.cells.slots)
    }
}

impl DynArray {
    /// Creates the array `name` of `capacity` zeroed elements of `layout`, described in the
    /// segment as an array of that layout.
    ///
    /// # Errors
    ///
    /// As [`Array::create`](crate::Array::create).
    pub fn create(
        segment: &Segment,
        name: &str,
        layout: &DynLayout,
        capacity: usize,
    ) -> Result<Self> {
        let params = capacity_of(layout, capacity)?;
        let opened = kind::create_dyn::<ArrayKind>(segment, name, params, layout)?;
        Self::build(&opened, layout.clone())
    }

    /// Opens the array `name` with the layout the segment describes it with.
    ///
    /// # Errors
    ///
    /// [`Error::NotDescribed`] when the segment has no description of it (use
    /// [`open_as`](Self::open_as)); otherwise as [`Array::open`](crate::Array::open), with
    /// [`Error::KindMismatch`] for a structure described as another kind.
    pub fn open(segment: &Segment, name: &str) -> Result<Self> {
        let (opened, layout) = kind::open_dyn::<ArrayKind>(segment, name, None)?;
        Self::build(&opened, layout)
    }

    /// Opens the array `name` as holding elements of `layout`.
    ///
    /// # Errors
    ///
    /// As [`Array::open`](crate::Array::open): [`Error::LayoutMismatch`] when the segment
    /// describes it with another layout, [`Error::TypeMismatch`] when an undescribed array's
    /// element size is not `layout.size()`.
    pub fn open_as(segment: &Segment, name: &str, layout: &DynLayout) -> Result<Self> {
        let (opened, layout) = kind::open_dyn::<ArrayKind>(segment, name, Some(layout))?;
        Self::build(&opened, layout)
    }

    fn build(opened: &Opened<'_, ArrayKind>, layout: DynLayout) -> Result<Self> {
        let g = opened.geometry;
        Ok(Self {
            cells: Cells::new(opened, layout, g.header, g.capacity)?,
            format: g.format,
        })
    }

    /// The entry name.
    pub fn name(&self) -> &str {
        &self.cells.name
    }

    /// The element layout.
    pub fn layout(&self) -> &DynLayout {
        &self.cells.layout
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.cells.slots
    }

    /// Always `false`: arrays have at least one element.
    pub fn is_empty(&self) -> bool {
        self.cells.slots == 0
    }

    /// Which header the stored array uses.
    pub fn format(&self) -> ArrayFormat {
        self.format
    }

    fn slot(&self, index: usize) -> Result<usize> {
        if index < self.cells.slots {
            Ok(index)
        } else {
            Err(Error::IndexOutOfBounds {
                segment: self.cells.segment.name().to_owned(),
                name: self.cells.name.clone(),
                index,
                len: self.cells.slots,
            })
        }
    }

    /// The bytes of element `index`.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`].
    pub fn get_bytes(&self, index: usize) -> Result<Vec<u8>> {
        Ok(self.cells.read(self.slot(index)?))
    }

    /// Element `index`, decoded.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`]; [`Error::InvalidArgument`] for a layout whose value would
    /// take more than [`MAX_DECODED_BYTES`](crate::MAX_DECODED_BYTES) (read its bytes instead).
    pub fn get(&self, index: usize) -> Result<Value> {
        self.cells.decode(&self.get_bytes(index)?)
    }

    /// Overwrites element `index` with `bytes` (exactly one element).
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`], [`Error::InvalidArgument`] for another length,
    /// [`Error::ReadOnly`].
    pub fn set_bytes(&self, index: usize, bytes: &[u8]) -> Result<()> {
        let slot = self.slot(index)?;
        let bytes = self.cells.element(bytes)?;
        self.cells
            .write(slot, bytes)
            .map_err(|a| self.cells.access(StructureKind::Array, a))
    }

    /// Overwrites element `index` with `value`; the fields `value` leaves out keep their
    /// stored bytes.
    ///
    /// # Errors
    ///
    /// As [`set_bytes`](Self::set_bytes), and [`Error::InvalidArgument`] for a value that does
    /// not fit the layout (an unknown field, a number out of range, an array of another
    /// length); nothing is written then.
    pub fn set(&self, index: usize, value: &Value) -> Result<()> {
        let mut bytes = self.get_bytes(index)?;
        self.cells.encode_into(value, &mut bytes)?;
        self.set_bytes(index, &bytes)
    }
}

/// The parameters of a structure of `capacity` elements of `layout`.
fn capacity_of(layout: &DynLayout, capacity: usize) -> Result<Capacity> {
    Ok(Capacity {
        capacity: u64::try_from(capacity).unwrap_or(u64::MAX),
        elem: kind::dyn_elem(layout)?,
    })
}

/// A queue whose element layout is known at run time: the lock-free queue of
/// [`Queue`](crate::Queue), with elements as bytes or [`Value`]s. It interoperates with typed
/// handles and other implementations on the same queue; blocking waits are the typed API's.
/// Its operations record their claims as a typed handle's do, so a process killed in the
/// middle of one leaves what [`Queue`](crate::Queue) documents under crashes, undone by
/// [`Segment::recover_structure`] (or `zeroipc repair`).
pub struct DynQueue {
    cells: Cells,
    /// The whole entry, for snapshots.
    entry: Anchored<Region<'static>>,
    words_at: usize,
    head: Anchored<Word<'static>>,
    tail: Anchored<Word<'static>>,
    seqs: Anchored<Words<'static>>,
    capacity: u32,
    head_chime: Chime,
    tail_chime: Chime,
    journal: Option<Journal>,
    /// Kept for the chimes and the journal's attachment.
    _bell: Bell,
}

impl fmt::Debug for DynQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cells.fmt(f, "DynQueue", self.len())
    }
}

impl DynQueue {
    /// Creates the queue `name` with room for `capacity` elements of `layout` (rounded up to a
    /// power of two, at least 2), described in the segment.
    ///
    /// # Errors
    ///
    /// As [`Queue::create`](crate::Queue::create).
    pub fn create(
        segment: &Segment,
        name: &str,
        layout: &DynLayout,
        capacity: usize,
    ) -> Result<Self> {
        let params = capacity_of(layout, capacity)?;
        let opened = kind::create_dyn::<QueueKind>(segment, name, params, layout)?;
        Self::build(&opened, layout.clone())
    }

    /// Opens the queue `name` with the layout the segment describes it with.
    ///
    /// # Errors
    ///
    /// As [`DynArray::open`].
    pub fn open(segment: &Segment, name: &str) -> Result<Self> {
        let (opened, layout) = kind::open_dyn::<QueueKind>(segment, name, None)?;
        Self::build(&opened, layout)
    }

    /// Opens the queue `name` as holding elements of `layout`.
    ///
    /// # Errors
    ///
    /// As [`DynArray::open_as`].
    pub fn open_as(segment: &Segment, name: &str, layout: &DynLayout) -> Result<Self> {
        let (opened, layout) = kind::open_dyn::<QueueKind>(segment, name, Some(layout))?;
        Self::build(&opened, layout)
    }

    fn build(opened: &Opened<'_, QueueKind>, layout: DynLayout) -> Result<Self> {
        let g: Slotted = opened.geometry;
        let head = opened.word(0, OFF_HEAD)?;
        let tail = opened.word(0, OFF_TAIL)?;
        let seqs = opened.words(0, g.words_at, g.capacity as usize)?;
        let cells = Cells::new(opened, layout, HEADER as u64, u64::from(g.capacity))?;
        let bell = runtime::bell(opened.segment);
        let offset = opened.offset(0)?;
        let journal = bell
            .attachment()
            .and_then(|a| Journal::new(a, Target::Queue, offset));
        Ok(Self {
            entry: whole(opened)?,
            words_at: g.words_at,
            head_chime: bell.chime(opened.segment, head.get().atomic()),
            tail_chime: bell.chime(opened.segment, tail.get().atomic()),
            head,
            tail,
            seqs,
            capacity: g.capacity,
            journal,
            cells,
            _bell: bell,
        })
    }

    /// The entry name.
    pub fn name(&self) -> &str {
        &self.cells.name
    }

    /// The element layout.
    pub fn layout(&self) -> &DynLayout {
        &self.cells.layout
    }

    /// Number of slots (a power of two).
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Elements in the queue (approximate, as [`Queue::len`](crate::Queue::len)).
    pub fn len(&self) -> usize {
        vyukov::len(self) as usize
    }

    /// Whether the queue is empty (approximate).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Enqueues `bytes` (exactly one element); `Ok(false)` when the queue is full.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for another length; [`Error::CorruptStructure`] as for
    /// [`Queue::push`](crate::Queue::push). Nothing is stored on an error.
    pub fn push_bytes(&self, bytes: &[u8]) -> Result<bool> {
        let bytes = self.cells.element(bytes)?.to_vec();
        let op = Claiming::new(self, self.journal.as_ref());
        let pushed = vyukov::push(&op, bytes);
        op.settle();
        match pushed {
            Ok(()) => {
                self.tail_chime.ring(self.tail.get().atomic(), 1);
                Ok(true)
            }
            Err((_, None)) => Ok(false),
            Err((_, Some(a))) => Err(queue::anomaly_error(
                &self.cells.segment,
                &self.cells.name,
                a,
            )),
        }
    }

    /// Enqueues `value` (fields it leaves out are zero); `Ok(false)` when the queue is full.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a value that does not fit the layout; otherwise as
    /// [`push_bytes`](Self::push_bytes).
    pub fn push(&self, value: &Value) -> Result<bool> {
        self.push_bytes(&self.cells.encode(value)?)
    }

    /// Dequeues the oldest element as bytes; `Ok(None)` when empty.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptStructure`] as for [`Queue::pop`](crate::Queue::pop).
    pub fn pop_bytes(&self) -> Result<Option<Vec<u8>>> {
        let op = Claiming::new(self, self.journal.as_ref());
        let popped = vyukov::pop(&op);
        op.settle();
        match popped {
            Ok(Some(item)) => {
                self.head_chime.ring(self.head.get().atomic(), 1);
                Ok(Some(item))
            }
            Ok(None) => Ok(None),
            Err(a) => Err(queue::anomaly_error(
                &self.cells.segment,
                &self.cells.name,
                a,
            )),
        }
    }

    /// Dequeues the oldest element, decoded; `Ok(None)` when empty.
    ///
    /// # Errors
    ///
    /// As [`pop_bytes`](Self::pop_bytes), and [`Error::InvalidArgument`], with nothing taken,
    /// for a layout whose value would take more than
    /// [`MAX_DECODED_BYTES`](crate::MAX_DECODED_BYTES) (pop its bytes instead).
    pub fn pop(&self) -> Result<Option<Value>> {
        // Checked first: an element that cannot be decoded is not taken.
        self.cells.decodable()?;
        self.pop_bytes()?.map(|b| self.cells.decode(&b)).transpose()
    }

    /// Up to `count` elements from the `skip`-th oldest on, oldest first, without dequeuing
    /// them: a snapshot of a live queue. An element a consumer takes while it is copied is
    /// left out, and the snapshot ends at the first position not yet published.
    pub fn peek(&self, skip: usize, count: usize) -> Vec<Vec<u8>> {
        peek_queue(
            &self.entry.get(),
            &self.cells,
            self.capacity,
            self.words_at,
            skip,
            count,
        )
    }
}

impl vyukov::Store for DynQueue {
    type W = AtomicU32;
    type Item = Vec<u8>;

    fn head(&self) -> &AtomicU32 {
        self.head.get().atomic()
    }

    fn tail(&self) -> &AtomicU32 {
        self.tail.get().atomic()
    }

    fn seq(&self, slot: u32) -> Option<&AtomicU32> {
        self.seqs.get().get(slot as usize)
    }

    fn mask(&self) -> u32 {
        self.capacity.wrapping_sub(1)
    }

    fn write(&self, slot: u32, item: Vec<u8>) {
        // `slot <= mask < capacity`, inside the validated slots, so this cannot fail.
        let _ = self.cells.write(slot as usize, &item);
    }

    fn read(&self, slot: u32) -> Vec<u8> {
        self.cells.read(slot as usize)
    }
}

/// A stack whose element layout is known at run time: the stack of [`Stack`](crate::Stack),
/// with elements as bytes or [`Value`]s (busy slots are waited for up to
/// [`DEFAULT_STALL_TIMEOUT`](crate::DEFAULT_STALL_TIMEOUT)). Its operations record their
/// claims as a typed handle's do, so a process killed in the middle of one leaves what
/// [`Stack`](crate::Stack) documents under crashes, undone by
/// [`Segment::recover_structure`] (or `zeroipc repair`) or by the next operation that waits
/// on the slot.
pub struct DynStack {
    cells: Cells,
    /// The whole entry, for snapshots.
    entry: Anchored<Region<'static>>,
    words_at: usize,
    top: Anchored<Word<'static>>,
    states: Anchored<Words<'static>>,
    capacity: u32,
    offset: u64,
    top_chime: Chime,
    journal: Option<Journal>,
    _bell: Bell,
}

impl fmt::Debug for DynStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cells.fmt(f, "DynStack", self.len())
    }
}

impl DynStack {
    /// Creates the stack `name` with room for `capacity` elements of `layout`, described in
    /// the segment.
    ///
    /// # Errors
    ///
    /// As [`Stack::create`](crate::Stack::create).
    pub fn create(
        segment: &Segment,
        name: &str,
        layout: &DynLayout,
        capacity: usize,
    ) -> Result<Self> {
        let params = capacity_of(layout, capacity)?;
        let opened = kind::create_dyn::<StackKind>(segment, name, params, layout)?;
        Self::build(&opened, layout.clone())
    }

    /// Opens the stack `name` with the layout the segment describes it with.
    ///
    /// # Errors
    ///
    /// As [`DynArray::open`].
    pub fn open(segment: &Segment, name: &str) -> Result<Self> {
        let (opened, layout) = kind::open_dyn::<StackKind>(segment, name, None)?;
        Self::build(&opened, layout)
    }

    /// Opens the stack `name` as holding elements of `layout`.
    ///
    /// # Errors
    ///
    /// As [`DynArray::open_as`].
    pub fn open_as(segment: &Segment, name: &str, layout: &DynLayout) -> Result<Self> {
        let (opened, layout) = kind::open_dyn::<StackKind>(segment, name, Some(layout))?;
        Self::build(&opened, layout)
    }

    fn build(opened: &Opened<'_, StackKind>, layout: DynLayout) -> Result<Self> {
        let g: Slotted = opened.geometry;
        let top = opened.word(0, OFF_TOP)?;
        let states = opened.words(0, g.words_at, g.capacity as usize)?;
        let cells = Cells::new(opened, layout, HEADER as u64, u64::from(g.capacity))?;
        let offset = opened.offset(0)?;
        let bell = runtime::bell(opened.segment);
        let journal = bell
            .attachment()
            .and_then(|a| Journal::new(a, Target::Stack, offset));
        Ok(Self {
            entry: whole(opened)?,
            words_at: g.words_at,
            top_chime: bell.chime(opened.segment, top.get().atomic()),
            top,
            states,
            capacity: g.capacity,
            offset,
            journal,
            cells,
            _bell: bell,
        })
    }

    /// The entry name.
    pub fn name(&self) -> &str {
        &self.cells.name
    }

    /// The element layout.
    pub fn layout(&self) -> &DynLayout {
        &self.cells.layout
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Elements on the stack (approximate).
    pub fn len(&self) -> usize {
        stack_algo::len(&Op::new(self, None, None)) as usize
    }

    /// Whether the stack is empty (approximate).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn failure(&self, failure: stack_algo::Failure, op: &Op<'_, Self>) -> Error {
        stack::failure_error(
            &self.cells.segment,
            &self.cells.name,
            self.capacity,
            failure,
            op.bound(),
        )
    }

    /// Pushes `bytes` (exactly one element); `Ok(false)` when the stack is full.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for another length; otherwise as
    /// [`Stack::push`](crate::Stack::push). Nothing is stored on an error.
    pub fn push_bytes(&self, bytes: &[u8]) -> Result<bool> {
        let bytes = self.cells.element(bytes)?.to_vec();
        let op = Op::new(self, self.journal.as_ref(), None);
        let pushed = stack_algo::push(&op, bytes);
        op.settle();
        match pushed {
            Ok(()) => {
                self.top_chime.ring(self.top.get().atomic(), u32::MAX);
                Ok(true)
            }
            Err((_, stack_algo::Failure::Full)) => Ok(false),
            Err((_, other)) => Err(self.failure(other, &op)),
        }
    }

    /// Pushes `value` (fields it leaves out are zero); `Ok(false)` when the stack is full.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a value that does not fit the layout; otherwise as
    /// [`push_bytes`](Self::push_bytes).
    pub fn push(&self, value: &Value) -> Result<bool> {
        self.push_bytes(&self.cells.encode(value)?)
    }

    /// Pops the top element as bytes; `Ok(None)` when empty.
    ///
    /// # Errors
    ///
    /// As [`Stack::pop`](crate::Stack::pop).
    pub fn pop_bytes(&self) -> Result<Option<Vec<u8>>> {
        let op = Op::new(self, self.journal.as_ref(), None);
        let popped = stack_algo::pop(&op);
        op.settle();
        match popped {
            Ok(Some(item)) => {
                self.top_chime.ring(self.top.get().atomic(), u32::MAX);
                Ok(Some(item))
            }
            Ok(None) => Ok(None),
            Err(f) => Err(self.failure(f, &op)),
        }
    }

    /// Pops the top element, decoded; `Ok(None)` when empty.
    ///
    /// # Errors
    ///
    /// As [`pop_bytes`](Self::pop_bytes), and [`Error::InvalidArgument`], with nothing taken,
    /// for a layout whose value would take more than
    /// [`MAX_DECODED_BYTES`](crate::MAX_DECODED_BYTES) (pop its bytes instead).
    pub fn pop(&self) -> Result<Option<Value>> {
        // Checked first: an element that cannot be decoded is not taken.
        self.cells.decodable()?;
        self.pop_bytes()?.map(|b| self.cells.decode(&b)).transpose()
    }

    /// Up to `count` elements from the `skip`-th from the bottom on, bottom first (the last
    /// is the next to pop), without popping them: a snapshot of a live stack. Slots a peer is
    /// writing or taking at that moment are left out; an element popped and another pushed in
    /// its slot while it is copied can come out torn (the slot's state word carries no
    /// version), so a snapshot of a busy stack is a view, not a proof.
    pub fn peek(&self, skip: usize, count: usize) -> Vec<Vec<u8>> {
        peek_stack(
            &self.entry.get(),
            &self.cells,
            self.capacity,
            self.words_at,
            skip,
            count,
        )
    }
}

impl StackCells for DynStack {
    type Item = Vec<u8>;

    fn top_word(&self) -> &AtomicU32 {
        self.top.get().atomic()
    }

    fn states(&self) -> Words<'_> {
        self.states.get()
    }

    fn capacity(&self) -> u32 {
        self.capacity
    }

    fn stall_timeout(&self) -> Duration {
        stack::DEFAULT_STALL_TIMEOUT
    }

    fn claimed(&self) -> Claimed<'_> {
        Claimed::new(
            &self.cells.segment,
            self.offset,
            self.top.get().atomic(),
            self.states.get(),
        )
    }

    fn write(&self, slot: u32, item: Vec<u8>) {
        // `slot < capacity`, inside the validated slots, so this cannot fail.
        let _ = self.cells.write(slot as usize, &item);
    }

    fn read(&self, slot: u32) -> Vec<u8> {
        self.cells.read(slot as usize)
    }
}

/// The whole entry of a one-entry structure.
fn whole<K: kind::Kind>(opened: &Opened<'_, K>) -> Result<Anchored<Region<'static>>> {
    let len = opened.part_len(0)?;
    opened.region(0, 0, len)
}

/// The `u32` at `at` of `entry` (Acquire), or 0 past its end (which validation rules out).
fn load(entry: &Region<'_>, at: usize) -> u32 {
    entry.load_u32(at, Ordering::Acquire).unwrap_or(0)
}

/// [`DynQueue::peek`] on the stored queue `entry` (read-only segments too).
fn peek_queue(
    entry: &Region<'_>,
    cells: &Cells,
    capacity: u32,
    words_at: usize,
    skip: usize,
    count: usize,
) -> Vec<Vec<u8>> {
    // SYNC POINT (head, tail): Acquire, both: the positions read below were published before.
    let head = load(entry, OFF_HEAD);
    let tail = load(entry, OFF_TAIL);
    let len = u32::try_from(tail.wrapping_sub(head) as i32)
        .unwrap_or(0)
        .min(capacity);
    let skip = u32::try_from(skip).unwrap_or(u32::MAX).min(len);
    let take = u32::try_from(count)
        .unwrap_or(u32::MAX)
        .min(len.saturating_sub(skip));
    let mask = capacity.wrapping_sub(1);
    let mut out = Vec::new();
    for i in 0..take {
        let pos = head.wrapping_add(skip).wrapping_add(i);
        let slot = pos & mask;
        let Some(at) = (slot as usize)
            .checked_mul(4)
            .and_then(|o| o.checked_add(words_at))
        else {
            break;
        };
        // SYNC POINT (slot seq): Acquire, as a consumer reads it before the element; the
        // second load (after the copy) tells whether a consumer took the slot meanwhile.
        let seen = load(entry, at);
        if seen == pos {
            // Claimed by a producer and not published yet: consumers stop here too.
            break;
        }
        if seen != pos.wrapping_add(1) {
            // Taken by a consumer since `head` was read.
            continue;
        }
        let bytes = cells.read(slot as usize);
        // SYNC POINT (seqlock): the fence keeps the copy's loads before the check below.
        fence(Ordering::Acquire);
        if load(entry, at) == pos.wrapping_add(1) {
            out.push(bytes);
        }
    }
    out
}

/// [`DynStack::peek`] on the stored stack `entry` (read-only segments too).
fn peek_stack(
    entry: &Region<'_>,
    cells: &Cells,
    capacity: u32,
    words_at: usize,
    skip: usize,
    count: usize,
) -> Vec<Vec<u8>> {
    // SYNC POINT (top): Acquire, as a popper reads it before the slots below.
    let top = load(entry, OFF_TOP) as i32;
    let depth = u32::try_from(top.saturating_add(1))
        .unwrap_or(0)
        .min(capacity);
    let from = u32::try_from(skip).unwrap_or(u32::MAX).min(depth);
    let to = from
        .saturating_add(u32::try_from(count).unwrap_or(u32::MAX))
        .min(depth);
    let mut out = Vec::new();
    for slot in from..to {
        let Some(at) = (slot as usize)
            .checked_mul(4)
            .and_then(|o| o.checked_add(words_at))
        else {
            break;
        };
        // SYNC POINT (slot state): Acquire before the copy, as a popper; checked again after
        // it, so that a slot taken meanwhile is left out.
        if load(entry, at) != stack_algo::READY {
            continue;
        }
        let bytes = cells.read(slot as usize);
        // SYNC POINT (seqlock): the fence keeps the copy's loads before the check below.
        fence(Ordering::Acquire);
        if load(entry, at) == stack_algo::READY {
            out.push(bytes);
        }
    }
    out
}

/// A read-only snapshot of elements of a container: what [`Segment::peek`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Peek {
    /// The container's kind.
    pub kind: StructureKind,
    /// The element layout (described, or as given).
    pub layout: DynLayout,
    /// The number of slots.
    pub capacity: u64,
    /// The current length (an array's is its capacity) or depth, as read before the copy.
    pub len: u64,
    /// The elements read, from the `skip`-th on: an array's by index, a queue's oldest first,
    /// a stack's bottom first, a signal's value (read without its mutex: torn only while a
    /// `set` runs).
    pub elements: Vec<Vec<u8>>,
}

/// [`Segment::peek`].
pub(crate) fn peek(
    segment: &Segment,
    name: &str,
    kind: Option<StructureKind>,
    layout: Option<&DynLayout>,
    (skip, count): (usize, usize),
) -> Result<Peek> {
    let kind = match kind {
        Some(kind) => kind,
        None => segment
            .description(name)?
            .and_then(|d| d.structure_kind())
            .ok_or_else(|| Error::NotDescribed {
                segment: segment.name().to_owned(),
                name: name.to_owned(),
            })?,
    };
    match kind {
        StructureKind::Array => {
            let (opened, layout) = kind::open_dyn::<ArrayKind>(segment, name, layout)?;
            let g = opened.geometry;
            let cells = Cells::new(&opened, layout, g.header, g.capacity)?;
            let from = skip.min(cells.slots);
            let to = from.saturating_add(count).min(cells.slots);
            let elements = (from..to).map(|i| cells.read(i)).collect();
            Ok(Peek {
                kind,
                capacity: g.capacity,
                len: g.capacity,
                elements,
                layout: cells.layout,
            })
        }
        StructureKind::Queue => {
            let (opened, layout) = kind::open_dyn::<QueueKind>(segment, name, layout)?;
            peek_slotted(&opened, layout, true, (skip, count))
        }
        StructureKind::Stack => {
            let (opened, layout) = kind::open_dyn::<StackKind>(segment, name, layout)?;
            peek_slotted(&opened, layout, false, (skip, count))
        }
        StructureKind::Signal => {
            // The value, as a reader without the mutex sees it (torn only while a `set` runs).
            let (opened, layout) = kind::open_dyn::<SignalKind<u8>>(segment, name, layout)?;
            let cells = Cells::new(&opened, layout, crate::sync::signal::VALUE as u64, 1)?;
            let elements = if skip == 0 && count > 0 {
                vec![cells.read(0)]
            } else {
                Vec::new()
            };
            Ok(Peek {
                kind,
                capacity: 1,
                len: 1,
                elements,
                layout: cells.layout,
            })
        }
        other => Err(Error::InvalidArgument {
            what: "kind",
            reason: format!("a `{other}` holds no elements to read"),
        }),
    }
}

/// The fuzz body's run-time typed part: the description of `name`, a snapshot of it as each
/// container kind, and the run-time typed handles built from the description, each with a few
/// bounded operations. Whatever the bytes, nothing here may panic or reach outside the mapping.
pub(crate) fn exercise(segment: &Segment, name: &str) {
    let described = segment.description(name).ok().flatten();
    let layout = described.as_ref().and_then(|d| d.layout.clone());
    for kind in [
        None,
        Some(StructureKind::Array),
        Some(StructureKind::Queue),
        Some(StructureKind::Stack),
    ] {
        if let Ok(p) = peek(segment, name, kind, layout.as_ref(), (0, 4)) {
            for e in &p.elements {
                let _ = p.layout.read(e).map(|v| v.to_string());
            }
        }
    }
    if let Ok(a) = DynArray::open(segment, name) {
        let last = a.len().saturating_sub(1);
        if let Ok(v) = a.get(last) {
            let _ = a.set(last, &v);
        }
        let _ = a.get(a.len());
    }
    if let Ok(q) = DynQueue::open(segment, name) {
        let _ = (q.len(), q.peek(0, 4));
        if let Ok(Some(v)) = q.pop_bytes() {
            let _ = q.push_bytes(&v);
        }
    }
    if let Ok(s) = DynStack::open(segment, name) {
        let _ = (s.len(), s.peek(0, 4));
        if let Ok(Some(v)) = s.pop_bytes() {
            let _ = s.push_bytes(&v);
        }
    }
}

/// [`peek`] of a validated queue (`queue`) or stack.
fn peek_slotted<K: kind::Kind<Geometry = Slotted>>(
    opened: &Opened<'_, K>,
    layout: DynLayout,
    queue: bool,
    (skip, count): (usize, usize),
) -> Result<Peek> {
    let g = opened.geometry;
    let cells = Cells::new(opened, layout, HEADER as u64, u64::from(g.capacity))?;
    let entry = whole(opened)?;
    let entry = entry.get();
    let (len, elements) = if queue {
        // `head` first: `tail` read after it is never behind it.
        let head = load(&entry, OFF_HEAD);
        let tail = load(&entry, OFF_TAIL);
        let len = u32::try_from(tail.wrapping_sub(head) as i32).unwrap_or(0);
        let peeked = peek_queue(&entry, &cells, g.capacity, g.words_at, skip, count);
        (u64::from(len.min(g.capacity)), peeked)
    } else {
        let depth = (load(&entry, OFF_TOP) as i32).saturating_add(1);
        let depth = u32::try_from(depth).unwrap_or(0).min(g.capacity);
        let peeked = peek_stack(&entry, &cells, g.capacity, g.words_at, skip, count);
        (u64::from(depth), peeked)
    };
    Ok(Peek {
        kind: K::KIND,
        capacity: u64::from(g.capacity),
        len,
        elements,
        layout: cells.layout,
    })
}
