//! Stored descriptions and run-time typed access: structures made by typed handles open and
//! decode without their Rust type, run-time typed handles interoperate with typed ones, and
//! every mismatch of kind or layout is a typed error (TESTPLAN F6).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::thread;

use zeroipc::{
    Array, DynArray, DynLayout, DynQueue, DynStack, Error, Mutex, Queue, Segment, SegmentOptions,
    Stack, Value,
};
use zeroipc_tests::guarded;
use zeroipc_tests::types::{SensorReading, TaggedReading};

fn reading_value(r: &SensorReading) -> Value {
    Value::parse(&format!(
        r#"{{"temperature": {:?}, "humidity": {:?}, "timestamp": {}}}"#,
        r.temperature, r.humidity, r.timestamp
    ))
    .unwrap()
}

fn bytes_of(r: &SensorReading) -> Vec<u8> {
    let mut out = r.temperature.to_le_bytes().to_vec();
    out.extend(r.humidity.to_le_bytes());
    out.extend(r.timestamp.to_le_bytes());
    out
}

#[test]
fn typed_structures_open_from_their_description_alone() {
    let (name, _g) = guarded("dyn-described");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let a = Array::<TaggedReading>::create(&seg, "tagged", 3).unwrap();
    a.set(
        2,
        TaggedReading {
            reading: SensorReading::nth(2),
            sensor: 9,
            _pad: [0; 4],
        },
    )
    .unwrap();
    let q = Queue::<SensorReading>::create(&seg, "q", 8).unwrap();
    let s = Stack::<i16>::create(&seg, "s", 4).unwrap();
    for i in 0..5 {
        q.push(SensorReading::nth(i)).unwrap();
    }
    for v in [-1i16, 2, -3] {
        s.push(v).unwrap();
    }

    let da = DynArray::open(&seg, "tagged").unwrap();
    assert_eq!(da.layout(), &DynLayout::of::<TaggedReading>());
    let e = da.get(2).unwrap();
    assert_eq!(e.field("sensor").and_then(Value::as_f64), Some(9.0));
    let inner = e.field("reading").unwrap();
    assert_eq!(
        inner.field("timestamp").and_then(Value::as_f64),
        Some(SensorReading::nth(2).timestamp as f64)
    );

    let dq = DynQueue::open(&seg, "q").unwrap();
    assert_eq!((dq.len(), dq.capacity()), (5, 8));
    // A snapshot in order, without popping.
    let seen: Vec<Vec<u8>> = dq.peek(1, 3);
    let expected: Vec<Vec<u8>> = (1..4).map(|i| bytes_of(&SensorReading::nth(i))).collect();
    assert_eq!(seen, expected);
    assert_eq!(q.len(), 5);
    // Decoded pops, then a decoded push the typed handle pops.
    assert_eq!(
        dq.pop().unwrap().unwrap(),
        reading_value(&SensorReading::nth(0))
    );
    assert!(dq.push(&reading_value(&SensorReading::nth(40))).unwrap());
    let rest: Vec<_> = std::iter::from_fn(|| q.pop().unwrap()).collect();
    let want: Vec<_> = [1, 2, 3, 4, 40].map(SensorReading::nth).to_vec();
    assert_eq!(rest, want);

    let ds = DynStack::open(&seg, "s").unwrap();
    let bottom_up: Vec<String> = ds
        .peek(0, usize::MAX)
        .iter()
        .map(|b| ds.layout().read(b).unwrap().to_string())
        .collect();
    assert_eq!(bottom_up, ["-1", "2", "-3"]);
    assert_eq!(ds.pop().unwrap().unwrap().to_string(), "-3");
    assert!(ds.push_bytes(&7i16.to_le_bytes()).unwrap());
    assert_eq!(s.pop().unwrap(), Some(7));
    assert_eq!(s.len(), 2);
}

#[test]
fn run_time_layouts_create_structures_typed_handles_open() {
    let (name, _g) = guarded("dyn-create");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let layout = DynLayout::from_dtype(
        "[('temperature', '<f4'), ('humidity', '<f4'), ('timestamp', '<u8')]",
    )
    .unwrap();
    let a = DynArray::create(&seg, "readings", &layout, 4).unwrap();
    a.set(1, &reading_value(&SensorReading::nth(1))).unwrap();
    // A partial value keeps the other fields.
    a.set(1, &Value::parse(r#"{"humidity": 99.5}"#).unwrap())
        .unwrap();
    // The record from the dtype has no type name, so the typed open that names one is
    // refused; the fields and offsets agree, which the message says.
    let e = Array::<SensorReading>::open(&seg, "readings").unwrap_err();
    assert!(matches!(e, Error::LayoutMismatch { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("type `SensorReading` here, `record` stored"),
        "{e}"
    );
    // Made with the Rust type's own layout, the typed handle opens it.
    let typed = DynLayout::of::<SensorReading>();
    let q = DynQueue::create(&seg, "q", &typed, 4).unwrap();
    assert!(q.push(&reading_value(&SensorReading::nth(5))).unwrap());
    let tq = Queue::<SensorReading>::open(&seg, "q").unwrap();
    assert_eq!(tq.pop().unwrap(), Some(SensorReading::nth(5)));
    let v = a.get(1).unwrap();
    assert_eq!(v.field("humidity").and_then(Value::as_f64), Some(99.5));
    assert_eq!(
        v.field("timestamp").and_then(Value::as_f64),
        Some(SensorReading::nth(1).timestamp as f64)
    );
    // Values that do not fit are refused and nothing changes.
    let before = a.get_bytes(1).unwrap();
    for bad in [
        r#"{"nope": 1}"#,
        r#"{"timestamp": -1}"#,
        r#"{"temperature": [1.5]}"#,
    ] {
        let e = a.set(1, &Value::parse(bad).unwrap()).unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument { what: "value", .. }),
            "{bad}: {e:?}"
        );
    }
    assert_eq!(a.get_bytes(1).unwrap(), before);
    assert!(matches!(
        a.set_bytes(0, &[0; 15]),
        Err(Error::InvalidArgument { what: "bytes", .. })
    ));
    assert!(matches!(
        a.get(4),
        Err(Error::IndexOutOfBounds {
            index: 4,
            len: 4,
            ..
        })
    ));
    // A packed record of odd size is copied byte by byte.
    let packed = DynLayout::from_dtype("[('tag', 'u1'), ('n', '<u4')]").unwrap();
    let p = DynArray::create(&seg, "packed", &packed, 3).unwrap();
    p.set(
        2,
        &Value::parse(r#"{"tag": 255, "n": 4000000000}"#).unwrap(),
    )
    .unwrap();
    assert_eq!(p.get_bytes(2).unwrap(), [255, 0, 0x28, 0x6b, 0xee]);
    assert_eq!(
        DynArray::open(&seg, "packed")
            .unwrap()
            .get(2)
            .unwrap()
            .to_string(),
        r#"{"tag":255,"n":4000000000}"#
    );
}

#[test]
fn mismatches_of_kind_and_layout_are_named() {
    let (name, _g) = guarded("dyn-mismatch");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    Array::<SensorReading>::create(&seg, "readings", 2).unwrap();
    Mutex::create(&seg, "lock").unwrap();
    let e = DynQueue::open(&seg, "readings").unwrap_err();
    assert!(
        matches!(&e, Error::KindMismatch { requested: "queue", found, .. } if found == "array"),
        "{e:?}"
    );
    assert!(matches!(
        DynArray::open(&seg, "lock"),
        Err(Error::KindMismatch { .. })
    ));
    assert!(matches!(
        Queue::<u8>::open(&seg, "lock"),
        Err(Error::KindMismatch { .. })
    ));
    // A reordered field: the first field that differs is named, with both offsets.
    let reordered = DynLayout::structure(
        "SensorReading",
        16,
        8,
        vec![
            field("humidity", 0, zeroipc::Scalar::F32),
            field("temperature", 4, zeroipc::Scalar::F32),
            field("timestamp", 8, zeroipc::Scalar::U64),
        ],
    )
    .unwrap();
    match DynArray::open_as(&seg, "readings", &reordered).unwrap_err() {
        Error::LayoutMismatch {
            name, difference, ..
        } => {
            assert_eq!(name, "readings");
            assert_eq!(difference.field, "humidity");
            assert!(
                difference
                    .what
                    .contains("`humidity` is stored at offset 4 (here 0)"),
                "{}",
                difference.what
            );
        }
        other => panic!("{other:?}"),
    }
    // Undescribed: the layout must be given, and only its size is checked.
    let (bare, _g2) = guarded("dyn-bare");
    let bare_seg = SegmentOptions::new()
        .descriptions(false)
        .create(&bare, 1 << 16)
        .unwrap();
    Array::<u32>::create(&bare_seg, "n", 3).unwrap();
    assert!(matches!(
        DynArray::open(&bare_seg, "n"),
        Err(Error::NotDescribed { .. })
    ));
    let as_f32 = DynLayout::from_dtype("<f4").unwrap();
    assert_eq!(DynArray::open_as(&bare_seg, "n", &as_f32).unwrap().len(), 3);
    let e = DynArray::open_as(&bare_seg, "n", &DynLayout::from_dtype("<u2").unwrap()).unwrap_err();
    assert!(
        matches!(e, Error::TypeMismatch { expected: 2, .. }),
        "{e:?}"
    );
}

fn field(name: &str, offset: usize, s: zeroipc::Scalar) -> zeroipc::DynField {
    zeroipc::DynField {
        name: name.into(),
        offset,
        layout: DynLayout::scalar(s),
    }
}

#[test]
fn read_only_segments_decode_and_refuse_writes() {
    let (name, _g) = guarded("dyn-ro");
    {
        let seg = Segment::create(&name, 1 << 16).unwrap();
        Array::<[f64; 2]>::create(&seg, "pairs", 2)
            .unwrap()
            .set(1, [0.5, -2.0])
            .unwrap();
    }
    let seg = Segment::open_read_only(&name).unwrap();
    let a = DynArray::open(&seg, "pairs").unwrap();
    assert_eq!(a.layout().type_name(), "[f64; 2]");
    assert_eq!(a.get(1).unwrap().to_string(), "[0.5,-2.0]");
    assert!(matches!(
        a.set_bytes(0, &[0; 16]),
        Err(Error::ReadOnly { .. })
    ));
}

/// Producers on run-time typed handles and consumers on typed ones (and the reverse) lose and
/// duplicate nothing.
#[test]
fn dynamic_and_typed_handles_share_a_queue_and_a_stack_under_contention() {
    const PER: u64 = 5_000;
    let (name, _g) = guarded("dyn-contend");
    let seg = Segment::create(&name, 1 << 20).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 64).unwrap();
    let s = Stack::<u64>::create(&seg, "s", 64).unwrap();
    let (dq, ds) = (
        DynQueue::open(&seg, "q").unwrap(),
        DynStack::open(&seg, "s").unwrap(),
    );
    let (queued, stacked) = thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..PER {
                while !dq.push_bytes(&i.to_le_bytes()).unwrap() {
                    thread::yield_now();
                }
            }
        });
        scope.spawn(|| {
            for i in 0..PER {
                while !ds.push_bytes(&i.to_le_bytes()).unwrap() {
                    thread::yield_now();
                }
            }
        });
        let q_take = scope.spawn(|| {
            let mut got = Vec::new();
            while got.len() < PER as usize {
                match q.pop().unwrap() {
                    Some(v) => got.push(v),
                    None => thread::yield_now(),
                }
            }
            got
        });
        let s_take = scope.spawn(|| {
            let mut got = Vec::new();
            while got.len() < PER as usize {
                match s.pop().unwrap() {
                    Some(v) => got.push(v),
                    None => thread::yield_now(),
                }
            }
            got
        });
        (q_take.join().unwrap(), s_take.join().unwrap())
    });
    assert_eq!(queued, (0..PER).collect::<Vec<_>>(), "FIFO, nothing lost");
    let mut stacked = stacked;
    stacked.sort_unstable();
    assert_eq!(
        stacked,
        (0..PER).collect::<Vec<_>>(),
        "nothing lost or doubled"
    );
    assert!(dq.pop_bytes().unwrap().is_none() && ds.pop_bytes().unwrap().is_none());
}

/// A structure is never visible undescribed: its record is written before the table publishes
/// it, so a reader that sees the entry finds the description (here, while another thread
/// keeps creating).
#[test]
fn a_new_structure_is_described_as_soon_as_it_is_visible() {
    const N: usize = 150;
    let (name, _g) = guarded("dyn-visible");
    let seg = SegmentOptions::new()
        .max_entries(N as u32 + 2)
        .create(&name, 1 << 20)
        .unwrap();
    thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..N {
                Array::<u32>::create(&seg, &format!("a{i}"), 1 + i % 3).unwrap();
            }
        });
        let mut seen = 0;
        while seen < N {
            let entries = seg.entries().unwrap();
            for e in entries.iter().filter(|e| e.name.starts_with('a')) {
                let a = DynArray::open(&seg, &e.name)
                    .unwrap_or_else(|err| panic!("{} visible undescribed: {err}", e.name));
                assert_eq!(a.layout().type_name(), "u32");
            }
            seen = entries.iter().filter(|e| e.name.starts_with('a')).count();
        }
    });
    // One description entry for all of them.
    let areas = seg
        .entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.name == "zeroipc.layouts")
        .count();
    assert_eq!(areas, 1);
}

/// A layout parsed from a dtype has no type names: the same fields at the same offsets open a
/// described structure of a named type; other fields do not.
#[test]
fn dtype_layouts_open_described_records_by_their_fields() {
    let (name, _g) = guarded("dyn-dtype-open");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let a = Array::<SensorReading>::create(&seg, "r", 2).unwrap();
    a.set(1, SensorReading::nth(3)).unwrap();
    let same = DynLayout::from_dtype(
        "[('temperature', '<f4'), ('humidity', '<f4'), ('timestamp', '<u8')]",
    )
    .unwrap();
    let opened = DynArray::open_as(&seg, "r", &same).unwrap();
    assert_eq!(
        opened.get_bytes(1).unwrap(),
        bytes_of(&SensorReading::nth(3))
    );
    let renamed =
        DynLayout::from_dtype("[('t', '<f4'), ('humidity', '<f4'), ('timestamp', '<u8')]").unwrap();
    let e = DynArray::open_as(&seg, "r", &renamed).unwrap_err();
    assert!(matches!(e, Error::LayoutMismatch { .. }), "{e:?}");
}

/// Layouts from dtype strings and schema files are bounded whatever the input: deep shapes,
/// deep nesting and schemas whose types double at each step are refused quickly.
#[test]
fn hostile_dtypes_and_schemas_are_refused_without_exhausting_memory() {
    let deep_shape = format!("('<u1', ({}))", "1,".repeat(40));
    let e = DynLayout::from_dtype(&deep_shape).unwrap_err();
    assert!(e.reason.contains("nested deeper than 32"), "{e}");
    let huge_shape = format!("('<u1', ({}))", "1,".repeat(1_000_000));
    assert!(DynLayout::from_dtype(&huge_shape).is_err());
    let mut types = vec![r#"{"name": "T0", "size": 1, "align": 1, "fields": [{"name": "a", "offset": 0, "type": "u8"}]}"#.to_owned()];
    for k in 1..40u64 {
        let half = 1u64 << (k - 1);
        types.push(format!(
            r#"{{"name": "T{k}", "size": {}, "align": 1, "fields": [{{"name": "a", "offset": 0, "type": "T{}"}}, {{"name": "b", "offset": {half}, "type": "T{}"}}]}}"#,
            2 * half,
            k - 1,
            k - 1
        ));
    }
    let schema = format!(
        r#"{{"format": "zeroipc-schema/1", "types": [{}]}}"#,
        types.join(", ")
    );
    let e = DynLayout::from_schema(&schema, "T39").unwrap_err();
    assert!(e.reason.contains("more than"), "{e}");
    // A layout too large to decode into values is still read as bytes.
    let wide = DynLayout::from_dtype("[('x', [('v', '<u1')], (4000000,))]").unwrap();
    assert!(wide.read(&vec![0; wide.size()]).is_err());
    // ... and a decoded pop of one takes nothing.
    let (name, _g) = guarded("dyn-wide");
    let seg = Segment::create(&name, 16 << 20).unwrap();
    let q = DynQueue::create(&seg, "wide", &wide, 2).unwrap();
    assert!(q.push_bytes(&vec![7; wide.size()]).unwrap());
    assert!(matches!(
        q.pop(),
        Err(Error::InvalidArgument { what: "layout", .. })
    ));
    assert_eq!(q.len(), 1);
    assert_eq!(q.pop_bytes().unwrap(), Some(vec![7; wide.size()]));
}

/// With descriptions off, a handle neither writes nor checks them: the way in to a structure
/// whose description is wrong.
#[test]
fn a_handle_with_descriptions_off_opens_by_size() {
    let (name, _g) = guarded("dyn-off");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    Array::<u32>::create(&seg, "n", 2).unwrap();
    assert!(matches!(
        Array::<f32>::open(&seg, "n"),
        Err(Error::LayoutMismatch { .. })
    ));
    let off = SegmentOptions::new()
        .descriptions(false)
        .open(&name)
        .unwrap();
    assert_eq!(Array::<f32>::open(&off, "n").unwrap().len(), 2);
    assert!(matches!(
        DynArray::open(&off, "n"),
        Err(Error::NotDescribed { .. })
    ));
}

/// On a small segment the description entry takes only what its first record needs; when
/// not even that fits, the structure is made undescribed rather than refused.
#[test]
fn small_segments_get_a_small_description_entry_or_none() {
    let (name, _g) = guarded("dyn-small");
    let seg = SegmentOptions::new()
        .max_entries(4)
        .create(&name, 1024)
        .unwrap();
    Array::<u32>::create(&seg, "a", 4).unwrap();
    let area = seg.entry("zeroipc.layouts").unwrap().unwrap();
    assert!(area.size < 128, "{area:?}");
    assert_eq!(DynArray::open(&seg, "a").unwrap().len(), 4);
    let (tiny, _g2) = guarded("dyn-tiny");
    let seg = SegmentOptions::new()
        .max_entries(2)
        .create(&tiny, 300)
        .unwrap();
    // 32 + 2 * 48 = 128 bytes of table, 8 + 4 * 40 = 168 of array: no room for a record.
    Array::<u32>::create(&seg, "b", 40).unwrap();
    assert!(seg.entry("zeroipc.layouts").unwrap().is_none());
    assert!(matches!(
        DynArray::open(&seg, "b"),
        Err(Error::NotDescribed { .. })
    ));
}

/// Checking or repairing a described structure as another kind names the kind it is.
#[test]
fn checks_and_repairs_name_the_described_kind() {
    let (name, _g) = guarded("dyn-check-kind");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    Stack::<u32>::create(&seg, "s", 4).unwrap();
    for e in [
        seg.check_structure("s", zeroipc::StructureKind::Queue)
            .unwrap_err(),
        seg.recover_structure(
            "s",
            zeroipc::StructureKind::Queue,
            std::time::Duration::from_millis(1),
        )
        .unwrap_err(),
    ] {
        assert!(
            matches!(&e, Error::KindMismatch { found, .. } if found == "stack"),
            "{e:?}"
        );
    }
    assert!(
        seg.check_structure("s", zeroipc::StructureKind::Stack)
            .unwrap()
            .is_sound()
    );
}
