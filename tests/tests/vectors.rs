//! Golden vectors: real segments written by the C++, Python, C and Go ZeroIPC implementations
//! (`$ZEROIPC_VECTORS`, default `../shared/vectors`, described by its `MANIFEST.json`).
//!
//! For every file: (a) the file is copied into a fresh segment and opened; the table must equal
//! the manifest, and every structure of a kind this crate implements must decode to its
//! `expected` contents; (b) the file's `steps` are replayed with our API on a fresh segment of
//! the same size and `max_entries` and the bytes compared with the file, except the manifest's
//! nondeterministic ranges. Where the file was written by an implementation that FORMAT.md §8
//! says deviates from the reference (C's 16-byte array header, Python's Signal sizes, ...), our
//! replay must instead equal the reference (C++) file of the same case, and every byte in which it
//! differs from this file must lie inside the ranges the manifest lists for that pair.
//!
//! Containers are read and replayed through the run-time typed handles (`DynArray`,
//! `DynQueue`, `DynStack`) with the layout `DynLayout::from_dtype` parses from the manifest's
//! dtype: there is no table of element types here, so every fixed-width scalar and every record
//! the manifest may describe is decoded the same way.
//!
//! One line is printed per file and kind: `PASS`, `FAIL` with the reason (the first differing
//! offset for byte comparisons), or `SKIP kind not implemented`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use zeroipc::{
    Barrier, DynArray, DynLayout, DynQueue, DynStack, Event, EventMode, Latch, Monitor, Mutex,
    Once, RwLock, Scalar, Segment, SegmentOptions, Semaphore, Shape, Signal, StructureKind,
};
use zeroipc_tests::{guarded, read_raw, unique_name, vectors_dir, write_raw};

/// The element layout of a manifest dtype: a NumPy scalar code (`"<i4"`, `"i4"`, `"|u1"`) or a
/// record descr list, both parsed by [`DynLayout::from_dtype`] (no table of types here); a
/// step's `"rec"` names the record dtype of the file's structure of the same name, or of its
/// only record structure.
fn layout_of(dtype: &Value, file: &Value, name: &str) -> Result<DynLayout, String> {
    let text = match dtype {
        Value::String(s) if s == "rec" => {
            let structures = file["structures"].as_array().cloned().unwrap_or_default();
            let record = structures
                .iter()
                .find(|s| s["name"] == name && s["dtype"].is_array())
                .or_else(|| structures.iter().find(|s| s["dtype"].is_array()))
                .ok_or_else(|| format!("`rec` with no record structure in {}", file["file"]))?;
            record["dtype"].to_string()
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    DynLayout::from_dtype(&text).map_err(|e| format!("dtype {dtype}: {e}"))
}

/// A manifest value as a [`zeroipc::Value`] of `layout`: numbers as they are, lists as arrays
/// or, for a record, as its fields in order.
fn value_of(layout: &DynLayout, v: &Value) -> Result<zeroipc::Value, String> {
    use zeroipc::Value as V;
    let bad = || format!("manifest value {v} does not fit `{}`", layout.type_name());
    Ok(match (layout.shape(), v) {
        (Shape::Struct { fields, .. }, Value::Array(items)) if items.len() == fields.len() => {
            V::Struct(
                fields
                    .iter()
                    .zip(items)
                    .map(|(f, item)| Ok((f.name.clone(), value_of(&f.layout, item)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
        (Shape::Array { elem, .. }, Value::Array(items)) => V::Array(
            items
                .iter()
                .map(|item| value_of(elem, item))
                .collect::<Result<_, _>>()?,
        ),
        (Shape::Scalar(_), Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                V::Unsigned(u)
            } else if let Some(i) = n.as_i64() {
                V::Signed(i)
            } else {
                V::Float(n.as_f64().ok_or_else(bad)?)
            }
        }
        _ => return Err(bad()),
    })
}

/// The bytes of the manifest value `v` as an element of `layout` (floats in the manifest are
/// exact, so bytes compare exactly).
fn bytes_of(layout: &DynLayout, v: &Value) -> Result<Vec<u8>, String> {
    let mut out = vec![0; layout.size()];
    layout
        .write(&value_of(layout, v)?, &mut out)
        .map_err(|e| format!("manifest value {v}: {e}"))?;
    Ok(out)
}

/// Elements as decoded values, for messages.
fn shown(layout: &DynLayout, elements: &[Vec<u8>]) -> String {
    let shown: Vec<String> = elements
        .iter()
        .map(|b| {
            layout
                .read(b)
                .map_or_else(|e| e.to_string(), |v| v.to_string())
        })
        .collect();
    format!("[{}]", shown.join(", "))
}

/// Runs `$body` with `$T` bound to a byte array of `$size` bytes: a signal's value, whose
/// bytes the run-time layout encodes and decodes (signals have no run-time typed handle).
macro_rules! with_value_size {
    ($size:expr, $T:ident => $body:expr) => {{
        match $size {
            1 => {
                type $T = [u8; 1];
                $body
            }
            2 => {
                type $T = [u8; 2];
                $body
            }
            4 => {
                type $T = [u8; 4];
                $body
            }
            8 => {
                type $T = [u8; 8];
                $body
            }
            16 => {
                type $T = [u8; 16];
                $body
            }
            n => Err(format!("no signal of {n}-byte values in this test")),
        }
    }};
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Pass(String),
    Fail(String),
    Skip(String),
}

impl Outcome {
    fn line(&self) -> String {
        match self {
            Self::Pass(note) if note.is_empty() => "PASS".into(),
            Self::Pass(note) => format!("PASS ({note})"),
            Self::Fail(why) => format!("FAIL {why}"),
            Self::Skip(why) => format!("SKIP {why}"),
        }
    }
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("manifest field `{key}` missing in {v}"))
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("manifest field `{key}` missing in {v}"))
}

/// (a) The table of the opened segment against the manifest.
fn check_table(seg: &Segment, table: &Value) -> Outcome {
    let Ok(h) = seg.header() else {
        return Outcome::Fail("header unreadable".into());
    };
    let fields = [
        ("magic", u64::from(h.magic)),
        ("version", u64::from(h.version)),
        ("entry_count", u64::from(h.entry_count)),
        ("max_entries", u64::from(h.max_entries)),
        ("memory_size", h.memory_size),
        ("next_offset", h.next_offset),
    ];
    for (key, got) in fields {
        if got != u64_of(table, key) {
            return Outcome::Fail(format!(
                "header {key} is {got}, manifest says {}",
                table[key]
            ));
        }
    }
    let entries = match seg.entries() {
        Ok(e) => e,
        Err(e) => return Outcome::Fail(format!("entries: {e}")),
    };
    let want = table["entries"].as_array().cloned().unwrap_or_default();
    if entries.len() != want.len() {
        return Outcome::Fail(format!(
            "{} entries, manifest lists {}",
            entries.len(),
            want.len()
        ));
    }
    for (got, want) in entries.iter().zip(&want) {
        let expected = (
            str_of(want, "name"),
            u64_of(want, "offset"),
            u64_of(want, "size"),
        );
        if (got.name.as_str(), got.offset, got.size) != expected {
            return Outcome::Fail(format!(
                "entry {} is {got:?}, manifest says {want}",
                got.index
            ));
        }
    }
    let report = seg.check();
    if !report.is_sound() {
        return Outcome::Fail(format!("validator found {:?}", report.defects));
    }
    Outcome::Pass(String::new())
}

/// A signal: its version and mutex count as `check` reports them, and its value, decoded with
/// the manifest's dtype, and version through a handle.
fn check_signal(seg: &Segment, file: &Value, s: &Value) -> Result<(), String> {
    let name = str_of(s, "name");
    let layout = layout_of(&s["dtype"], file, name)?;
    let expected = &s["expected"];
    let report = seg
        .check_structure(name, StructureKind::Signal)
        .map_err(|e| e.to_string())?;
    if !report.is_sound() {
        return Err(format!("{name}: defects {:?}", report.defects));
    }
    for field in ["version", "mutex_count"] {
        let got = report
            .state
            .iter()
            .find(|(n, _)| *n == field)
            .map(|(_, v)| *v);
        if got != expected[field].as_i64() {
            return Err(format!("{name}: {field} {got:?} != {}", expected[field]));
        }
    }
    let want = bytes_of(&layout, &expected["value"])?;
    // The value read through the run-time layout, without the mutex...
    let peeked = seg
        .peek(name, Some(StructureKind::Signal), Some(&layout), 0, 1)
        .map_err(|e| format!("{name}: {e}"))?;
    if peeked.elements != [want.clone()] {
        return Err(format!(
            "{name}: peeked {}, expected {}",
            shown(&layout, &peeked.elements),
            expected["value"]
        ));
    }
    // ... and through a handle, with it.
    let (got, version) = with_value_size!(layout.size(), T => {
        let sig = Signal::<T>::open(seg, name).map_err(|e| format!("{name}: {e}"))?;
        let got: T = sig.get().map_err(|e| format!("{name}: {e}"))?;
        Ok((got.to_vec(), sig.version()))
    })?;
    if got != want || Some(version) != expected["version"].as_u64() {
        return Err(format!(
            "{name}: the handle reads {} at version {version}, expected {} at {}",
            shown(&layout, &[got]),
            expected["value"],
            expected["version"]
        ));
    }
    Ok(())
}

fn check_array(seg: &Segment, file: &Value, s: &Value) -> Result<(), String> {
    let name = str_of(s, "name");
    let layout = layout_of(&s["dtype"], file, name)?;
    let array = DynArray::open_as(seg, name, &layout).map_err(|e| format!("{name}: {e}"))?;
    let expected = &s["expected"];
    if array.len() as u64 != u64_of(expected, "capacity") {
        return Err(format!(
            "{name}: capacity {} != {}",
            array.len(),
            expected["capacity"]
        ));
    }
    let want = elements_of(&layout, &expected["values"])?;
    let got: Vec<Vec<u8>> = (0..array.len())
        .map(|i| array.get_bytes(i).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    if got != want {
        return Err(format!(
            "{name}: values {} != {}",
            shown(&layout, &got),
            expected["values"]
        ));
    }
    Ok(())
}

/// The manifest list `v` as elements of `layout`.
fn elements_of(layout: &DynLayout, v: &Value) -> Result<Vec<Vec<u8>>, String> {
    v.as_array()
        .ok_or_else(|| format!("no list in {v}"))?
        .iter()
        .map(|x| bytes_of(layout, x))
        .collect()
}

/// The little-endian u32 words at `offset` in the original file.
fn words(bytes: &[u8], offset: u64, count: usize) -> Vec<u64> {
    (0..count)
        .map(|i| {
            let at = offset as usize + 4 * i;
            u64::from(u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()))
        })
        .collect()
}

fn expect_words(what: &str, got: Vec<u64>, want: &Value) -> Result<(), String> {
    let want: Vec<u64> = want
        .as_array()
        .ok_or_else(|| format!("no {what}"))?
        .iter()
        .map(|x| x.as_u64().ok_or_else(|| format!("bad manifest word {x}")))
        .collect::<Result<_, _>>()?;
    if got != want {
        return Err(format!("{what}: {got:?} != {want:?}"));
    }
    Ok(())
}

fn check_queue(seg: &Segment, file: &Value, bytes: &[u8], s: &Value) -> Result<(), String> {
    let name = str_of(s, "name");
    let layout = layout_of(&s["dtype"], file, name)?;
    let q = DynQueue::open_as(seg, name, &layout).map_err(|e| format!("{name}: {e}"))?;
    let expected = &s["expected"];
    let base = seg
        .entry(name)
        .map_err(|e| e.to_string())?
        .ok_or("no entry")?
        .offset;
    if q.capacity() as u64 != u64_of(expected, "capacity") {
        return Err(format!(
            "{name}: capacity {} != {}",
            q.capacity(),
            expected["capacity"]
        ));
    }
    let head_tail = words(bytes, base, 2);
    if head_tail != [u64_of(expected, "head"), u64_of(expected, "tail")] {
        return Err(format!(
            "{name}: head/tail {head_tail:?} != {}/{}",
            expected["head"], expected["tail"]
        ));
    }
    let seq_offset = base + 16 + ((q.capacity() * layout.size()) as u64).next_multiple_of(8);
    expect_words(
        "seq",
        words(bytes, seq_offset, q.capacity()),
        &s["layout_details"]["seq"],
    )?;
    let want = elements_of(&layout, &expected["items_in_dequeue_order"])?;
    if q.len() != want.len() {
        return Err(format!("{name}: len {} != {}", q.len(), want.len()));
    }
    // In order without popping, then popped.
    let peeked = q.peek(0, usize::MAX);
    let popped: Vec<Vec<u8>> = std::iter::from_fn(|| q.pop_bytes().ok().flatten()).collect();
    for (how, got) in [("peeked", peeked), ("dequeued", popped)] {
        if got != want {
            return Err(format!(
                "{name}: {how} {} != {}",
                shown(&layout, &got),
                expected["items_in_dequeue_order"]
            ));
        }
    }
    Ok(())
}

fn check_stack(seg: &Segment, file: &Value, bytes: &[u8], s: &Value) -> Result<(), String> {
    let name = str_of(s, "name");
    let layout = layout_of(&s["dtype"], file, name)?;
    let st = DynStack::open_as(seg, name, &layout).map_err(|e| format!("{name}: {e}"))?;
    let expected = &s["expected"];
    let base = seg
        .entry(name)
        .map_err(|e| e.to_string())?
        .ok_or("no entry")?
        .offset;
    if st.capacity() as u64 != u64_of(expected, "capacity") {
        return Err(format!(
            "{name}: capacity {} != {}",
            st.capacity(),
            expected["capacity"]
        ));
    }
    let top = i64::from(u32::from_le_bytes(bytes[base as usize..][..4].try_into().unwrap()) as i32);
    if Some(top) != expected["top"].as_i64() {
        return Err(format!("{name}: top {top} != {}", expected["top"]));
    }
    let state_offset = base + 16 + ((st.capacity() * layout.size()) as u64).next_multiple_of(8);
    expect_words(
        "states",
        words(bytes, state_offset, st.capacity()),
        &s["layout_details"]["states"],
    )?;
    let want = elements_of(&layout, &expected["items_in_pop_order"])?;
    // Bottom first without popping, then popped (top first).
    let mut peeked = st.peek(0, usize::MAX);
    peeked.reverse();
    let mut popped = Vec::new();
    while let Some(v) = st.pop_bytes().map_err(|e| e.to_string())? {
        popped.push(v);
    }
    for (how, got) in [("peeked", peeked), ("popped", popped)] {
        if got != want {
            return Err(format!(
                "{name}: {how} {} != {}",
                shown(&layout, &got),
                expected["items_in_pop_order"]
            ));
        }
    }
    Ok(())
}

/// A synchronisation primitive: its stored words (as `check_structure` reads them, by their
/// FORMAT.md names) equal the expected ones, and our handle opens it and reads the same.
fn check_sync(seg: &Segment, kind: &str, s: &Value) -> Result<(), String> {
    let name = str_of(s, "name");
    let k = StructureKind::from_name(kind).ok_or("unknown kind")?;
    let report = seg.check_structure(name, k).map_err(|e| e.to_string())?;
    if !report.is_sound() {
        return Err(format!("{name}: defects {:?}", report.defects));
    }
    // Nested objects (an event's `sem`) are the words of a part: `sem_count`, ...
    let mut expected = serde_json::Map::new();
    for (k, v) in s["expected"].as_object().ok_or("no expected")? {
        match v.as_object() {
            Some(inner) => {
                for (k2, v2) in inner {
                    expected.insert(format!("{k}_{k2}"), v2.clone());
                }
            }
            None => {
                expected.insert(k.clone(), v.clone());
            }
        }
    }
    let expected = &expected;
    for (field, want) in expected {
        let got = report
            .state
            .iter()
            .find(|(n, _)| n == field)
            .map(|(_, v)| *v);
        if got != want.as_i64() {
            return Err(format!("{name}: {field} {got:?} != {want}"));
        }
    }
    let e = |e: zeroipc::Error| e.to_string();
    let want = |field: &str| expected.get(field).and_then(Value::as_i64);
    let seen = match kind {
        "semaphore" => {
            let h = Semaphore::open(seg, name).map_err(e)?;
            vec![
                ("count", i64::from(h.count())),
                ("waiting", i64::from(h.waiting())),
                ("max_count", i64::from(h.max())),
            ]
        }
        "mutex" => {
            let h = Mutex::open(seg, name).map_err(e)?;
            vec![("count", i64::from(!h.is_locked()))]
        }
        "barrier" => {
            let h = Barrier::open(seg, name).map_err(e)?;
            vec![
                ("arrived", i64::from(h.arrived())),
                ("generation", i64::from(h.generation())),
                ("num_participants", i64::from(h.participants())),
            ]
        }
        "monitor" => {
            let h = Monitor::open(seg, name).map_err(e)?;
            vec![("waiting_count", i64::from(h.waiting()))]
        }
        "event" => {
            let h = Event::open(seg, name).map_err(e)?;
            let mode = i64::from(h.mode() == EventMode::ManualReset);
            vec![("signaled", i64::from(h.is_signaled())), ("mode", mode)]
        }
        "rwlock" => {
            let h = RwLock::open(seg, name).map_err(e)?;
            vec![
                ("readers", i64::from(h.readers())),
                ("writer_active", i64::from(h.writer_active())),
            ]
        }
        "latch" => {
            let h = Latch::open(seg, name).map_err(e)?;
            vec![
                ("count", i64::from(h.count())),
                ("initial_count", i64::from(h.initial())),
            ]
        }
        _ => {
            // The handle tells done from not done.
            let h = Once::open(seg, name).map_err(e)?;
            let done = want("state") == Some(2);
            if h.is_done() != done {
                return Err(format!("{name}: the handle reads done {}", h.is_done()));
            }
            Vec::new()
        }
    };
    for (field, got) in seen {
        if Some(got) != want(field) {
            return Err(format!(
                "{name}: the handle reads {field} {got}, expected {:?}",
                want(field)
            ));
        }
    }
    Ok(())
}

/// (a) Every structure of one kind against its expected contents.
fn check_kind(
    seg: &Segment,
    file: &Value,
    bytes: &[u8],
    kind: &str,
    structures: &[&Value],
) -> Outcome {
    for s in structures {
        let result = match kind {
            "array" => check_array(seg, file, s),
            "queue" => check_queue(seg, file, bytes, s),
            "stack" => check_stack(seg, file, bytes, s),
            kind @ ("semaphore" | "mutex" | "barrier" | "latch" | "once" | "rwlock" | "event"
            | "monitor") => check_sync(seg, kind, s),
            "signal" => check_signal(seg, file, s),
            _ => return Outcome::Skip("kind not implemented".into()),
        };
        if let Err(why) = result {
            return Outcome::Fail(why);
        }
    }
    Outcome::Pass(format!("{} structure(s)", structures.len()))
}

/// The kind a replay op belongs to, and whether this crate implements it.
fn op_kind(op: &str) -> Option<&str> {
    match op {
        // Bookkeeping steps of the writers' harness, not structure operations.
        "snapshot" | "join_threads" | "wait_until" => None,
        other => match other.split('_').next().unwrap_or(other) {
            "sem" => Some("semaphore"),
            kind => Some(kind),
        },
    }
}

const IMPLEMENTED: &[&str] = &[
    "array",
    "queue",
    "stack",
    "semaphore",
    "mutex",
    "barrier",
    "latch",
    "once",
    "rwlock",
    "event",
    "monitor",
    "signal",
];

/// Threads a replay started (blocking calls that other steps release), joined by
/// `join_threads`.
type Threads = Vec<std::thread::JoinHandle<Result<(), String>>>;

fn replay_step(
    seg: &Segment,
    file: &Value,
    step: &Value,
    layouts: &mut std::collections::HashMap<String, DynLayout>,
    threads: &mut Threads,
) -> Result<(), String> {
    let name = step["name"].as_str().unwrap_or_default().to_owned();
    let e = |e: zeroipc::Error| e.to_string();
    let int =
        |key: &str| i32::try_from(step[key].as_i64().unwrap_or(-1)).map_err(|e| e.to_string());
    let expect = |got: bool| match step["expect"].as_bool() {
        Some(want) if want != got => Err(format!("returned {got}, expected {want}")),
        _ => Ok(()),
    };
    match str_of(step, "op") {
        "sem_create" => Semaphore::create(seg, &name, int("initial")?, int("max")?)
            .map(drop)
            .map_err(e),
        "sem_try_acquire" => expect(
            Semaphore::open(seg, &name)
                .map_err(e)?
                .try_acquire()
                .map_err(e)?,
        ),
        "sem_release" => Semaphore::open(seg, &name).map_err(e)?.release().map_err(e),
        "sem_acquire_thread" => {
            let sem = Semaphore::open(seg, &name).map_err(e)?;
            threads.push(std::thread::spawn(move || {
                sem.acquire_timeout(std::time::Duration::from_secs(30))
                    .map_err(|e| e.to_string())
            }));
            Ok(())
        }
        "mutex_create" => Mutex::create(seg, &name).map(drop).map_err(e),
        "mutex_try_lock" => {
            let m = Mutex::open(seg, &name).map_err(e)?;
            let guard = m.try_lock().map_err(e)?;
            let locked = guard.is_some();
            // Kept locked, as the writer keeps it: the replay's segment goes with the test.
            std::mem::forget(guard);
            std::mem::forget(m);
            expect(locked)
        }
        "once_create" => Once::create(seg, &name).map(drop).map_err(e),
        "once_call" => Once::open(seg, &name)
            .map_err(e)?
            .call_once(|| ())
            .map(drop)
            .map_err(e),
        "barrier_create" => Barrier::create(seg, &name, int("participants")?)
            .map(drop)
            .map_err(e),
        "barrier_wait" => Barrier::open(seg, &name)
            .map_err(e)?
            .wait_timeout(std::time::Duration::from_secs(30))
            .map(drop)
            .map_err(e),
        "barrier_wait_thread" => {
            let b = Barrier::open(seg, &name).map_err(e)?;
            let before = b.arrived();
            threads.push(std::thread::spawn(move || {
                b.wait_timeout(std::time::Duration::from_secs(30))
                    .map(drop)
                    .map_err(|e| e.to_string())
            }));
            // The writers' threads have arrived when the next step runs.
            let b = Barrier::open(seg, &name).map_err(e)?;
            let t = std::time::Instant::now();
            while b.arrived() == before && t.elapsed() < std::time::Duration::from_secs(10) {
                std::thread::yield_now();
            }
            Ok(())
        }
        "monitor_create" => Monitor::create(seg, &name).map(drop).map_err(e),
        "monitor_lock" => {
            // Kept locked, as the writer keeps it.
            let m = Monitor::open(seg, &name).map_err(e)?;
            std::mem::forget(
                m.lock_timeout(std::time::Duration::from_secs(5))
                    .map_err(|e| e.to_string())?,
            );
            std::mem::forget(m);
            Ok(())
        }
        "event_create" => {
            let mode = match step["mode"].as_u64() {
                Some(0) => EventMode::AutoReset,
                _ => EventMode::ManualReset,
            };
            Event::create(seg, &name, mode).map(drop).map_err(e)
        }
        "event_signal" => Event::open(seg, &name).map_err(e)?.signal().map_err(e),
        "rwlock_create" => RwLock::create(seg, &name).map(drop).map_err(e),
        op @ ("rwlock_reader_lock" | "rwlock_writer_lock") => {
            // Kept, as the writer keeps them: the replay's segment goes with the test.
            let lock = RwLock::open(seg, &name).map_err(e)?;
            let timeout = std::time::Duration::from_secs(5);
            if op == "rwlock_reader_lock" {
                std::mem::forget(lock.read_timeout(timeout).map_err(|e| e.to_string())?);
            } else {
                std::mem::forget(lock.write_timeout(timeout).map_err(|e| e.to_string())?);
            }
            std::mem::forget(lock);
            Ok(())
        }
        "latch_create" => Latch::create(seg, &name, int("count")?)
            .map(drop)
            .map_err(e),
        "latch_count_down" => Latch::open(seg, &name)
            .map_err(e)?
            .count_down(int("n")?)
            .map_err(e),
        "join_threads" => {
            for t in threads.drain(..) {
                t.join()
                    .map_err(|_| "a replay thread panicked".to_owned())??;
            }
            Ok(())
        }
        "wait_until" => {
            let value = int("value")?;
            let read = |what: &str| -> Result<i32, String> {
                Ok(match what {
                    "sem_waiting" => Semaphore::open(seg, &name).map_err(e)?.waiting(),
                    "barrier_arrived" => Barrier::open(seg, &name).map_err(e)?.arrived(),
                    other => return Err(format!("wait_until {other} not implemented")),
                })
            };
            let t = std::time::Instant::now();
            while read(str_of(step, "what"))? != value {
                if t.elapsed() > std::time::Duration::from_secs(10) {
                    return Err(format!("{} never reached {value}", str_of(step, "what")));
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Ok(())
        }
        "signal_create" => {
            let layout = layout_of(&step["dtype"], file, &name)?;
            let initial = bytes_of(&layout, &step["initial"])?;
            with_value_size!(layout.size(), T => {
                let initial = T::try_from(initial.as_slice()).map_err(|e| e.to_string())?;
                Signal::<T>::create(seg, &name, initial).map(drop).map_err(e)
            })?;
            layouts.insert(name, layout);
            Ok(())
        }
        "signal_set" => {
            let layout = layouts.get(&name).ok_or("set before create")?;
            let value = bytes_of(layout, &step["value"])?;
            with_value_size!(layout.size(), T => {
                let value = T::try_from(value.as_slice()).map_err(|e| e.to_string())?;
                Signal::<T>::open(seg, &name).map_err(e)?.set(value).map(drop).map_err(|e| e.to_string())
            })
        }
        "array_create" => {
            let layout = layout_of(&step["dtype"], file, &name)?;
            let cap = usize::try_from(u64_of(step, "capacity")).map_err(|e| e.to_string())?;
            DynArray::create(seg, &name, &layout, cap).map_err(e)?;
            layouts.insert(name, layout);
            Ok(())
        }
        "array_write" => {
            let layout = layouts.get(&name).ok_or("write before create")?;
            let start = usize::try_from(u64_of(step, "start")).map_err(|e| e.to_string())?;
            let a = DynArray::open_as(seg, &name, layout).map_err(e)?;
            for (i, v) in step["values"]
                .as_array()
                .ok_or("no values")?
                .iter()
                .enumerate()
            {
                a.set_bytes(start + i, &bytes_of(layout, v)?).map_err(e)?;
            }
            Ok(())
        }
        op @ ("queue_create" | "stack_create") => {
            let layout = layout_of(&step["dtype"], file, &name)?;
            let cap = usize::try_from(u64_of(step, "capacity")).map_err(|e| e.to_string())?;
            if op == "queue_create" {
                DynQueue::create(seg, &name, &layout, cap).map(drop)
            } else {
                DynStack::create(seg, &name, &layout, cap).map(drop)
            }
            .map_err(e)?;
            layouts.insert(name, layout);
            Ok(())
        }
        op @ ("queue_push" | "queue_pop" | "stack_push" | "stack_pop") => {
            let layout = layouts.get(&name).ok_or("operation before create")?;
            replay_container(seg, layout, &name, op, step)
        }
        op => Err(format!("op {op} not implemented")),
    }
}

/// One push or pop on a queue or stack, checked against the step's `expect`.
fn replay_container(
    seg: &Segment,
    layout: &DynLayout,
    name: &str,
    op: &str,
    step: &Value,
) -> Result<(), String> {
    let e = |e: zeroipc::Error| e.to_string();
    let expect = &step["expect"];
    let queue = op.starts_with("queue");
    if op.ends_with("push") {
        let value = bytes_of(layout, &step["value"])?;
        let pushed = if queue {
            DynQueue::open_as(seg, name, layout)
                .map_err(e)?
                .push_bytes(&value)
        } else {
            DynStack::open_as(seg, name, layout)
                .map_err(e)?
                .push_bytes(&value)
        }
        .map_err(e)?;
        if Some(pushed) != expect.as_bool() {
            return Err(format!("push returned {pushed}, expected {expect}"));
        }
    } else {
        let popped = if queue {
            DynQueue::open_as(seg, name, layout).map_err(e)?.pop_bytes()
        } else {
            DynStack::open_as(seg, name, layout).map_err(e)?.pop_bytes()
        }
        .map_err(e)?;
        let want = if expect.is_null() {
            None
        } else {
            Some(bytes_of(layout, expect)?)
        };
        if popped != want {
            return Err(format!(
                "pop returned {:?}, expected {expect}",
                popped.map(|p| shown(layout, &[p]))
            ));
        }
    }
    Ok(())
}

/// Byte ranges `(start, end)` from manifest range objects.
fn ranges(v: &Value) -> Vec<(usize, usize)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let start = u64_of(r, "offset") as usize;
                    (start, start + u64_of(r, "length") as usize)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn first_difference(a: &[u8], b: &[u8], ignore: &[(usize, usize)]) -> Option<usize> {
    if a.len() != b.len() {
        return Some(a.len().min(b.len()));
    }
    (0..a.len()).find(|&i| a[i] != b[i] && !ignore.iter().any(|&(s, e)| (s..e).contains(&i)))
}

/// (b) Replays the file's steps and compares bytes.
fn replay(dir: &Path, file: &Value, files: &[Value], original: &[u8]) -> Outcome {
    let steps = file["steps"].as_array().cloned().unwrap_or_default();
    let missing: BTreeSet<&str> = steps
        .iter()
        .filter_map(|s| op_kind(str_of(s, "op")))
        .filter(|k| !IMPLEMENTED.contains(k))
        .collect();
    if !missing.is_empty() {
        return Outcome::Skip(format!(
            "kind not implemented ({})",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let (name, _g) = guarded("replay");
    let max_entries = u32::try_from(u64_of(file, "max_entries")).unwrap_or(0);
    // Byte-identical to the other implementations: no runtime entry.
    let seg = match SegmentOptions::new()
        .max_entries(max_entries)
        .runtime_entry(false)
        .descriptions(false)
        .create(&name, u64_of(file, "segment_size"))
    {
        Ok(seg) => seg,
        Err(e) => return Outcome::Fail(format!("create: {e}")),
    };
    let mut layouts = std::collections::HashMap::new();
    let mut threads = Threads::new();
    let mut snapshot = None;
    for step in &steps {
        if str_of(step, "op") == "snapshot" {
            snapshot = Some(read_raw(&name));
            continue;
        }
        // After the snapshot, the steps that let the writer's threads finish.
        if let Err(why) = replay_step(&seg, file, step, &mut layouts, &mut threads) {
            return Outcome::Fail(format!("step {step}: {why}"));
        }
    }
    for t in threads {
        if !matches!(t.join(), Ok(Ok(()))) {
            return Outcome::Fail("a thread of the replay failed".into());
        }
    }
    let Some(ours) = snapshot else {
        return Outcome::Fail("no snapshot step".into());
    };
    let ignore = ranges(&file["nondeterministic_ranges"]);

    // A non-reference writer whose bytes FORMAT.md §8 says differ: compare with the reference.
    let case = str_of(file, "case");
    let reference = files
        .iter()
        .find(|f| str_of(f, "case") == case && str_of(f, "writer") == "cpp");
    let deviation = reference.and_then(|r| {
        file["differs_from"]
            .as_array()?
            .iter()
            .find(|d| str_of(d, "file") == str_of(r, "file"))
            .map(|d| (r, d))
    });
    match deviation {
        None => match first_difference(&ours, original, &ignore) {
            None => Outcome::Pass(String::new()),
            Some(at) => Outcome::Fail(format!("first differing offset {at} ({at:#x})")),
        },
        Some((reference, diff)) => {
            let ref_bytes = std::fs::read(dir.join(str_of(reference, "file"))).unwrap_or_default();
            let ref_ignore = ranges(&reference["nondeterministic_ranges"]);
            if let Some(at) = first_difference(&ours, &ref_bytes, &ref_ignore) {
                return Outcome::Fail(format!(
                    "differs from the reference {} at offset {at} ({at:#x})",
                    str_of(reference, "file")
                ));
            }
            let mut allowed = ranges(&diff["differing_ranges"]);
            allowed.extend(ignore);
            if let Some(at) = first_difference(&ours, original, &allowed) {
                return Outcome::Fail(format!(
                    "differs at offset {at} ({at:#x}), outside the documented deviation"
                ));
            }
            Outcome::Pass(format!(
                "equals the reference {}; writer deviation per FORMAT.md §8",
                str_of(reference, "file")
            ))
        }
    }
}

#[test]
fn golden_vectors() {
    let Some(dir) = vectors_dir() else {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !ci,
            "golden vectors not found: set ZEROIPC_VECTORS or provide ../shared/vectors"
        );
        println!("golden vectors not found (set ZEROIPC_VECTORS); nothing to compare");
        return;
    };
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).unwrap()).unwrap();
    let files = manifest["files"].as_array().cloned().unwrap_or_default();
    assert!(!files.is_empty(), "the manifest lists no files");
    // Every dtype the manifest names, each parsed by `DynLayout::from_dtype` alone.
    let mut dtypes = BTreeSet::new();
    for file in &files {
        let structures = file["structures"].as_array().cloned().unwrap_or_default();
        let steps = file["steps"].as_array().cloned().unwrap_or_default();
        for item in structures.iter().chain(&steps) {
            if !item["dtype"].is_null() {
                let layout = layout_of(&item["dtype"], file, str_of(item, "name"))
                    .unwrap_or_else(|e| panic!("{}: {e}", file["file"]));
                dtypes.insert(format!("{} ({})", item["dtype"], layout.type_name()));
            }
        }
    }
    println!(
        "dtypes decoded through DynLayout: {}",
        dtypes.into_iter().collect::<Vec<_>>().join(", ")
    );
    let mut failures = Vec::new();
    let mut passes = BTreeSet::new();
    for file in &files {
        let fname = str_of(file, "file");
        let bytes = std::fs::read(dir.join(fname)).unwrap();
        assert_eq!(
            bytes.len() as u64,
            u64_of(file, "segment_size"),
            "{fname}: wrong length"
        );
        let mut report = |kind: &str, outcome: Outcome| {
            println!("{fname:<28} {kind:<10} {}", outcome.line());
            match outcome {
                Outcome::Fail(_) => failures.push(format!("{fname} {kind}")),
                Outcome::Pass(_) => {
                    passes.insert((fname.to_owned(), kind.to_owned()));
                }
                Outcome::Skip(_) => {}
            }
        };
        let name = unique_name("vec");
        let _g = write_raw(&name, &bytes);
        match Segment::open(&name) {
            Ok(seg) => {
                report("table", check_table(&seg, &file["table"]));
                let structures = file["structures"].as_array().cloned().unwrap_or_default();
                let kinds: BTreeSet<&str> = structures.iter().map(|s| str_of(s, "kind")).collect();
                for kind in kinds {
                    let of_kind: Vec<&Value> = structures
                        .iter()
                        .filter(|s| str_of(s, "kind") == kind)
                        .collect();
                    report(kind, check_kind(&seg, file, &bytes, kind, &of_kind));
                }
            }
            Err(e) => report("table", Outcome::Fail(format!("open: {e}"))),
        }
        report("replay", replay(&dir, file, &files, &bytes));
    }
    assert!(failures.is_empty(), "golden vector failures: {failures:?}");
    // The table of every file, every structure of an implemented kind, and the replay of every
    // file whose steps are all implemented must pass.
    for file in &files {
        let fname = str_of(file, "file").to_owned();
        assert!(
            passes.contains(&(fname.clone(), "table".into())),
            "{fname}: table did not pass"
        );
        for kind in IMPLEMENTED {
            let has = file["structures"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["kind"] == *kind));
            if has {
                assert!(
                    passes.contains(&(fname.clone(), (*kind).to_owned())),
                    "{fname}: {kind} did not pass"
                );
            }
        }
        let replayable = file["steps"].as_array().is_some_and(|steps| {
            steps
                .iter()
                .filter_map(|s| op_kind(str_of(s, "op")))
                .all(|k| IMPLEMENTED.contains(&k))
        });
        if replayable {
            assert!(
                passes.contains(&(fname.clone(), "replay".into())),
                "{fname}: replay did not pass"
            );
        }
    }
}

#[test]
fn first_difference_skips_only_the_given_ranges() {
    let a = [0u8, 1, 2, 3, 4];
    let mut b = a;
    assert_eq!(first_difference(&a, &b, &[]), None);
    b[3] = 9;
    assert_eq!(first_difference(&a, &b, &[]), Some(3));
    assert_eq!(first_difference(&a, &b, &[(3, 4)]), None);
    assert_eq!(first_difference(&a, &b, &[(0, 3), (4, 5)]), Some(3));
    assert_eq!(first_difference(&a, &a[..4], &[]), Some(4));
}

/// Every fixed-width NumPy scalar dtype, in each spelling, and records of any size, nesting and
/// field order, written through the run-time typed array and read back byte for byte (the
/// expected bytes computed independently, with `to_le_bytes`).
#[test]
fn every_fixed_width_dtype_and_record_shape_decodes() {
    let (name, _g) = guarded("dtypes");
    let seg = SegmentOptions::new()
        .descriptions(false)
        .create(&name, 1 << 16)
        .unwrap();
    let extremes: [(&str, Value, Vec<u8>); 10] = [
        ("|i1", (-128).into(), (-128i8).to_le_bytes().to_vec()),
        ("|u1", 255.into(), 255u8.to_le_bytes().to_vec()),
        ("<i2", (-32768).into(), i16::MIN.to_le_bytes().to_vec()),
        ("<u2", 65535.into(), u16::MAX.to_le_bytes().to_vec()),
        ("<i4", i32::MIN.into(), i32::MIN.to_le_bytes().to_vec()),
        ("<u4", u32::MAX.into(), u32::MAX.to_le_bytes().to_vec()),
        ("<i8", i64::MIN.into(), i64::MIN.to_le_bytes().to_vec()),
        ("<u8", u64::MAX.into(), u64::MAX.to_le_bytes().to_vec()),
        ("<f4", (-0.375).into(), (-0.375f32).to_le_bytes().to_vec()),
        ("<f8", 1e300.into(), 1e300f64.to_le_bytes().to_vec()),
    ];
    let file = Value::Null;
    for (i, (code, value, want)) in extremes.iter().enumerate() {
        // `<u2`, `u2`, `=u2` and the NumPy name are the same type.
        let bare = code.trim_start_matches(['<', '|']);
        let scalar = Scalar::from_numpy(code).unwrap();
        for spelling in [code.to_string(), bare.to_owned(), format!("={bare}")] {
            let layout = layout_of(&Value::from(spelling.as_str()), &file, "x").unwrap();
            assert_eq!(layout, DynLayout::scalar(scalar), "{spelling}");
        }
        let layout = layout_of(&Value::from(*code), &file, "x").unwrap();
        let a = DynArray::create(&seg, &format!("a{i}"), &layout, 3).unwrap();
        a.set_bytes(2, &bytes_of(&layout, value).unwrap()).unwrap();
        assert_eq!(&a.get_bytes(2).unwrap(), want, "{code}");
        assert_eq!(a.get_bytes(0).unwrap(), vec![0; want.len()], "{code}");
    }
    // Records: odd sizes (packed, as NumPy's default), nesting, shapes and any field order.
    let cases: [(&str, Value, Vec<u8>); 3] = [
        (
            r#"[["tag", "|u1"], ["n", "<u4"]]"#,
            serde_json::json!([7, 65536]),
            [vec![7], 65536u32.to_le_bytes().to_vec()].concat(),
        ),
        (
            r#"[["ts", "<u8"], ["pos", [["x", "<f4"], ["y", "<f4"]]], ["id", "<i2", [3]]]"#,
            serde_json::json!([9, [1.5, -2.0], [-1, 0, 1]]),
            [
                9u64.to_le_bytes().to_vec(),
                1.5f32.to_le_bytes().to_vec(),
                (-2.0f32).to_le_bytes().to_vec(),
                (-1i16).to_le_bytes().to_vec(),
                0i16.to_le_bytes().to_vec(),
                1i16.to_le_bytes().to_vec(),
            ]
            .concat(),
        ),
        (
            r#"{"names": ["b", "a"], "formats": ["<u2", "|i1"], "offsets": [2, 0], "itemsize": 4}"#,
            serde_json::json!([513, -1]),
            vec![0xff, 0, 1, 2],
        ),
    ];
    for (i, (dtype, value, want)) in cases.iter().enumerate() {
        let layout = DynLayout::from_dtype(dtype).unwrap();
        assert_eq!(layout.size(), want.len(), "{dtype}");
        let a = DynArray::create(&seg, &format!("r{i}"), &layout, 2).unwrap();
        a.set_bytes(1, &bytes_of(&layout, value).unwrap()).unwrap();
        assert_eq!(&a.get_bytes(1).unwrap(), want, "{dtype}");
        let q = DynQueue::create(&seg, &format!("q{i}"), &layout, 2).unwrap();
        assert!(q.push_bytes(want).unwrap());
        assert_eq!(q.peek(0, 1), std::slice::from_ref(want), "{dtype}");
    }
}
