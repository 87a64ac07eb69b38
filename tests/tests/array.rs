//! `Array<T>`: creation, typed opening, element access, atomics, the C layout, and two
//! processes sharing one array (FORMAT.md §4.1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::atomic::Ordering;

use zeroipc::{Array, ArrayFormat, Error, Segment, SegmentOptions};
use zeroipc_tests::{guarded, read_raw, run_ok, unique_name, write_raw};

const CHILD: &str = env!("CARGO_BIN_EXE_zeroipc-test-child");

#[test]
fn elements_round_trip_through_every_accessor() {
    let (name, _g) = guarded("rt");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let a = Array::<f64>::create(&seg, "f", 5).unwrap();
    assert_eq!((a.len(), a.is_empty(), a.name()), (5, false, "f"));
    assert_eq!(a.format(), ArrayFormat::Reference);
    assert_eq!(a.to_vec(), [0.0; 5], "new arrays are zeroed");
    a.set(4, -2.5).unwrap();
    assert_eq!(a.get(4).unwrap(), -2.5);
    assert!(matches!(
        a.get(5),
        Err(Error::IndexOutOfBounds { index: 5, .. })
    ));
    assert!(matches!(
        a.set(5, 1.0),
        Err(Error::IndexOutOfBounds {
            index: 5,
            len: 5,
            ..
        })
    ));
    a.copy_from_slice(1, &[1.0, 2.0, 3.0]).unwrap();
    assert!(matches!(
        a.copy_from_slice(3, &[1.0, 2.0, 3.0]),
        Err(Error::IndexOutOfBounds { .. })
    ));
    assert!(matches!(
        a.copy_from_slice(usize::MAX, &[1.0]),
        Err(Error::IndexOutOfBounds { .. })
    ));
    let mut out = [0.0; 2];
    a.copy_to_slice(2, &mut out).unwrap();
    assert_eq!(out, [2.0, 3.0]);
    assert!(a.copy_to_slice(4, &mut out).is_err());
    assert_eq!(a.iter().collect::<Vec<_>>(), [0.0, 1.0, 2.0, 3.0, -2.5]);
    assert_eq!(a.iter().next_back(), Some(-2.5));
    assert_eq!(a.iter().len(), 5);
    assert_eq!((&a).into_iter().sum::<f64>(), 3.5);
    a.fill(7.0).unwrap();
    assert_eq!(a.to_vec(), [7.0; 5]);
    // Another handle sees the same bytes; one of another type of the same size is refused,
    // since the segment records that the array holds `f64`.
    let b = Array::<f64>::open(&seg, "f").unwrap();
    assert_eq!(b.to_vec(), [7.0; 5]);
    match Array::<u64>::open(&seg, "f") {
        Err(Error::LayoutMismatch { difference: d, .. }) => {
            assert_eq!(
                (d.expected_type.as_str(), d.found_type.as_str()),
                ("u64", "f64")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_bytes_are_the_reference_layout() {
    let (name, _g) = guarded("bytes");
    let seg = SegmentOptions::new()
        .max_entries(16)
        .create(&name, 65536)
        .unwrap();
    Array::<i32>::create(&seg, "arr_i32", 3)
        .unwrap()
        .copy_from_slice(0, &[-5, 4, 76])
        .unwrap();
    let bytes = read_raw(&name);
    assert_eq!(&bytes[32..39], b"arr_i32");
    assert_eq!(u64::from_le_bytes(bytes[64..72].try_into().unwrap()), 800);
    assert_eq!(
        u64::from_le_bytes(bytes[72..80].try_into().unwrap()),
        8 + 12
    );
    assert_eq!(u64::from_le_bytes(bytes[800..808].try_into().unwrap()), 3);
    let vals: Vec<i32> = bytes[808..820]
        .chunks(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(vals, [-5, 4, 76]);
}

#[test]
fn opening_with_the_wrong_type_is_a_type_mismatch() {
    // Undescribed, as another implementation writes it: only the size is known.
    let (name, _g) = guarded("mismatch");
    let seg = SegmentOptions::new()
        .descriptions(false)
        .create(&name, 1 << 16)
        .unwrap();
    Array::<i32>::create(&seg, "i", 10).unwrap();
    let e = Array::<u64>::open(&seg, "i").unwrap_err();
    match &e {
        Error::TypeMismatch {
            segment,
            name,
            expected,
            found,
        } => {
            assert_eq!((name.as_str(), *expected), ("i", 8));
            assert_eq!(segment, seg.name());
            assert!(found.contains("`4`-byte elements"), "{found}");
        }
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
    assert!(
        e.to_string().contains("does not hold `8`-byte elements"),
        "{e}"
    );
    assert!(matches!(
        Array::<[u8; 3]>::open(&seg, "i"),
        Err(Error::CorruptStructure { .. } | Error::TypeMismatch { .. })
    ));
    assert!(
        Array::<[u8; 4]>::open(&seg, "i").is_ok(),
        "same element size is the same bytes"
    );
    // Described, every other type is refused by name, whatever its size.
    let (name, _g) = guarded("mismatch-described");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    Array::<i32>::create(&seg, "i", 10).unwrap();
    for e in [
        Array::<u64>::open(&seg, "i").unwrap_err(),
        Array::<[u8; 4]>::open(&seg, "i").unwrap_err(),
        Array::<u32>::open_or_create(&seg, "i", 10).unwrap_err(),
    ] {
        assert!(matches!(e, Error::LayoutMismatch { .. }), "{e:?}");
        assert!(e.to_string().contains("holds `i32`"), "{e}");
    }
    assert_eq!(Array::<i32>::open(&seg, "i").unwrap().len(), 10);
}

#[test]
fn open_or_create_creates_once_and_checks_capacity() {
    let (name, _g) = guarded("ooc");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let a = Array::<u16>::open_or_create(&seg, "x", 4).unwrap();
    a.set(3, 9).unwrap();
    let b = Array::<u16>::open_or_create(&seg, "x", 4).unwrap();
    assert_eq!(b.get(3).unwrap(), 9);
    assert!(matches!(
        Array::<u16>::open_or_create(&seg, "x", 5),
        Err(Error::CapacityMismatch {
            requested: 5,
            found: 4,
            ..
        })
    ));
    let names: Vec<_> = seg.entries().unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        ["x", "zeroipc.layouts"],
        "one array and its description"
    );
    assert!(matches!(
        Array::<u16>::create(&seg, "zero", 0),
        Err(Error::InvalidArgument {
            what: "capacity",
            ..
        })
    ));
    assert!(matches!(
        Array::<u64>::create(&seg, "huge", usize::MAX / 4),
        Err(Error::InvalidArgument { .. } | Error::OutOfSpace { .. })
    ));
}

#[test]
fn atomics_on_integer_arrays() {
    let (name, _g) = guarded("atomic");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let u = Array::<u32>::create(&seg, "u32", 2).unwrap();
    assert_eq!(u.fetch_add(1, 5, Ordering::AcqRel).unwrap(), 0);
    assert_eq!(u.fetch_sub(1, 1, Ordering::AcqRel).unwrap(), 5);
    assert_eq!(
        u.compare_exchange(1, 4, 10, Ordering::AcqRel, Ordering::Acquire)
            .unwrap(),
        Ok(4)
    );
    assert_eq!(
        u.compare_exchange(1, 4, 11, Ordering::AcqRel, Ordering::Acquire)
            .unwrap(),
        Err(10)
    );
    assert_eq!(u.load(1, Ordering::Acquire).unwrap(), 10);
    assert!(matches!(
        u.load(2, Ordering::Relaxed),
        Err(Error::IndexOutOfBounds { .. })
    ));
    let i = Array::<i32>::create(&seg, "i32", 1).unwrap();
    i.store(0, -3, Ordering::Release).unwrap();
    assert_eq!(i.fetch_sub(0, 1, Ordering::Relaxed).unwrap(), -3);
    assert_eq!(i.get(0).unwrap(), -4);
    let q = Array::<i64>::create(&seg, "i64", 1).unwrap();
    q.store(0, i64::MIN, Ordering::Relaxed).unwrap();
    assert_eq!(
        q.fetch_sub(0, 1, Ordering::Relaxed).unwrap(),
        i64::MIN,
        "wrapping"
    );
    assert_eq!(q.load(0, Ordering::Relaxed).unwrap(), i64::MAX);
    let w = Array::<u64>::create(&seg, "u64", 1).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..10_000 {
                    w.fetch_add(0, 1, Ordering::Relaxed).unwrap();
                }
            });
        }
    });
    assert_eq!(w.load(0, Ordering::Relaxed).unwrap(), 40_000);
}

#[test]
fn fetch_add_is_atomic_across_processes() {
    let (name, _g) = guarded("xadd");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let counter = Array::<u64>::create(&seg, "counter", 1).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(CHILD)
                .args(["fetch-add", &name, "counter", "100000"])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(counter.load(0, Ordering::Acquire).unwrap(), 300_000);
}

#[test]
fn a_second_process_reads_and_writes_back() {
    let (name, _g) = guarded("xproc");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let a = Array::<i64>::create(&seg, "vals", 100).unwrap();
    for i in 0..100 {
        a.set(i, 3 * i as i64).unwrap();
    }
    let out = run_ok(Command::new(CHILD).args(["array-rw", &name, "vals"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "checked=100");
    assert!(a.iter().enumerate().all(|(i, v)| v == 7 * i as i64));
}

/// Builds a segment holding one C-layout array (`{u64 capacity, u64 elem_size}` header).
fn c_layout_segment(capacity: u64, elem_size: u64, values: &[u8]) -> Vec<u8> {
    let mut seg = vec![0u8; 4096];
    let size = 16 + values.len() as u64;
    let table_end = 32 + 48 * 4;
    seg[0..4].copy_from_slice(&0x5A49_504Du32.to_le_bytes());
    seg[4..8].copy_from_slice(&2u32.to_le_bytes());
    seg[8..12].copy_from_slice(&1u32.to_le_bytes());
    seg[12..16].copy_from_slice(&4u32.to_le_bytes());
    seg[16..24].copy_from_slice(&4096u64.to_le_bytes());
    seg[24..32].copy_from_slice(&(table_end + size).to_le_bytes());
    seg[32..35].copy_from_slice(b"arr");
    seg[64..72].copy_from_slice(&table_end.to_le_bytes());
    seg[72..80].copy_from_slice(&size.to_le_bytes());
    let base = table_end as usize;
    seg[base..base + 8].copy_from_slice(&capacity.to_le_bytes());
    seg[base + 8..base + 16].copy_from_slice(&elem_size.to_le_bytes());
    seg[base + 16..base + 16 + values.len()].copy_from_slice(values);
    seg
}

#[test]
fn c_layout_arrays_are_read_and_recognised() {
    let name = unique_name("cfmt");
    let values: Vec<u8> = [10i32, -20, 30]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let _g = write_raw(&name, &c_layout_segment(3, 4, &values));
    let seg = Segment::open(&name).unwrap();
    let a = Array::<i32>::open(&seg, "arr").unwrap();
    assert_eq!(a.format(), ArrayFormat::CHeader);
    assert_eq!(a.to_vec(), [10, -20, 30]);
    a.set(1, 5).unwrap();
    assert_eq!(Array::<i32>::open(&seg, "arr").unwrap().get(1).unwrap(), 5);
    let e = Array::<u16>::open(&seg, "arr").unwrap_err();
    assert!(
        matches!(&e, Error::TypeMismatch { found, .. } if found.contains("C layout")),
        "{e:?}"
    );
}

#[test]
fn new_structures_land_after_c_layout_arrays() {
    // Writing into a segment another implementation made keeps its bytes intact.
    let name = unique_name("cmix");
    let values: Vec<u8> = [1u64, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let _g = write_raw(&name, &c_layout_segment(2, 8, &values));
    let seg = Segment::open(&name).unwrap();
    let before = read_raw(&name);
    let b = Array::<u8>::create(&seg, "b", 3).unwrap();
    b.copy_from_slice(0, &[7, 8, 9]).unwrap();
    let after = read_raw(&name);
    assert_eq!(after[224..256], before[224..256], "the C array moved");
    let e = seg.entry("b").unwrap().unwrap();
    assert_eq!(e.offset, 224 + 32);
    assert_eq!(Array::<u64>::open(&seg, "arr").unwrap().to_vec(), [1, 2]);
}
