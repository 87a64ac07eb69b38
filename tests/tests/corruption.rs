//! TESTPLAN A1–A3: corrupt headers, entries and array headers give specific errors, never a
//! panic or an access outside the mapping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zeroipc::{Array, Defect, EntryDefect, Error, HeaderDefect, Segment, SegmentOptions};
use zeroipc_tests::{ShmGuard, guarded, read_raw, unique_name, write_raw};

/// A sound segment of 4096 bytes, 4 entries: `a` (u32 x 4 at 224) and `b` (u64 x 2 at 248),
/// undescribed (descriptions have their own corruption test).
fn valid_bytes() -> Vec<u8> {
    let (name, _g) = guarded("src");
    let seg = SegmentOptions::new()
        .max_entries(4)
        .descriptions(false)
        .create(&name, 4096)
        .unwrap();
    Array::<u32>::create(&seg, "a", 4)
        .unwrap()
        .copy_from_slice(0, &[1, 2, 3, 4])
        .unwrap();
    Array::<u64>::create(&seg, "b", 2)
        .unwrap()
        .copy_from_slice(0, &[5, 6])
        .unwrap();
    read_raw(&name)
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Plants the valid segment with `mutate` applied.
fn plant(mutate: impl FnOnce(&mut Vec<u8>)) -> (String, ShmGuard) {
    let mut bytes = valid_bytes();
    mutate(&mut bytes);
    let name = unique_name("bad");
    let guard = write_raw(&name, &bytes);
    (name, guard)
}

fn header_defect(mutate: impl FnOnce(&mut Vec<u8>)) -> HeaderDefect {
    let (name, _g) = plant(mutate);
    match Segment::open(&name) {
        Err(Error::CorruptHeader { defect, .. }) => {
            let report = Segment::inspect(&name).unwrap();
            assert!(
                report.defects.contains(&Defect::Header(defect)),
                "{report:?}"
            );
            defect
        }
        other => panic!("expected a corrupt header, got {other:?}"),
    }
}

#[test]
fn a1_header_corruption() {
    assert_eq!(
        header_defect(|b| put_u32(b, 0, 0xDEAD_BEEF)),
        HeaderDefect::BadMagic { found: 0xDEAD_BEEF }
    );
    assert_eq!(
        header_defect(|b| put_u32(b, 4, 1)),
        HeaderDefect::BadVersion { found: 1 }
    );
    assert_eq!(
        header_defect(|b| put_u32(b, 4, 3)),
        HeaderDefect::BadVersion { found: 3 }
    );
    assert_eq!(
        header_defect(|b| put_u32(b, 12, 0)),
        HeaderDefect::ZeroMaxEntries
    );
    assert_eq!(
        header_defect(|b| put_u32(b, 12, (4096 - 32) / 48 + 1)),
        HeaderDefect::TableTooLarge {
            max_entries: 85,
            file_size: 4096
        }
    );
    assert_eq!(
        header_defect(|b| put_u32(b, 12, u32::MAX)),
        HeaderDefect::MaxEntriesTooLarge {
            max_entries: u32::MAX,
            limit: 1 << 20
        }
    );
    assert_eq!(
        header_defect(|b| put_u32(b, 8, 5)),
        HeaderDefect::EntryCountTooLarge {
            entry_count: 5,
            max_entries: 4
        }
    );
    assert_eq!(
        header_defect(|b| put_u64(b, 16, 8192)),
        HeaderDefect::MemorySizeMismatch {
            memory_size: 8192,
            file_size: 4096
        }
    );
    assert_eq!(
        header_defect(|b| put_u64(b, 16, 100)),
        HeaderDefect::MemorySizeMismatch {
            memory_size: 100,
            file_size: 4096
        }
    );
    assert!(matches!(
        header_defect(|b| put_u64(b, 24, 100)),
        HeaderDefect::NextOffsetOutOfRange {
            next_offset: 100,
            ..
        }
    ));
    assert!(matches!(
        header_defect(|b| put_u64(b, 24, 4097)),
        HeaderDefect::NextOffsetOutOfRange { .. }
    ));
    assert!(matches!(
        header_defect(|b| put_u64(b, 24, u64::MAX)),
        HeaderDefect::NextOffsetOutOfRange { .. }
    ));
    // Truncated files.
    assert_eq!(
        header_defect(|b| b.truncate(31)),
        HeaderDefect::TooShort { len: 31 }
    );
    assert_eq!(
        header_defect(|b| b.truncate(1)),
        HeaderDefect::TooShort { len: 1 }
    );
    // The table no longer fits once the file is cut inside it.
    assert!(matches!(
        header_defect(|b| b.truncate(100)),
        HeaderDefect::TableTooLarge { .. }
    ));
}

#[test]
fn a1_uninitialised_objects_are_not_ready() {
    let (empty, _g1) = plant(Vec::clear);
    assert!(matches!(Segment::open(&empty), Err(Error::NotReady { .. })));
    let (zero_magic, _g2) = plant(|b| put_u32(b, 0, 0));
    let e = Segment::open(&zero_magic).unwrap_err();
    assert!(matches!(e, Error::NotReady { .. }), "{e:?}");
    assert!(e.to_string().contains("not initialised"));
    let report = Segment::inspect(&empty).unwrap();
    assert_eq!(
        report.defects,
        [Defect::Header(HeaderDefect::TooShort { len: 0 })]
    );
}

/// Entry 1 (`b`) lives at table offset 32 + 48.
const E1: usize = 32 + 48;

fn entry_defects(mutate: impl FnOnce(&mut Vec<u8>), open_as: Option<&str>) -> Vec<EntryDefect> {
    let (name, _g) = plant(mutate);
    let seg = Segment::open(&name).expect("the header is still valid");
    let entries = seg.entries().unwrap();
    let defects = entries[1].defects.clone();
    assert!(!defects.is_empty(), "entry 1 should be marked: {entries:?}");
    if let Some(open_as) = open_as {
        match Array::<u64>::open(&seg, open_as) {
            Err(Error::CorruptEntry { index, defect, .. }) => {
                let marked = &entries[index as usize].defects;
                assert!(marked.contains(&defect), "{defect:?} not in {marked:?}");
            }
            other => panic!("typed open of a corrupt entry gave {other:?}"),
        }
    }
    let report = seg.check();
    assert!(!report.is_sound());
    for d in &defects {
        assert!(
            report
                .defects
                .iter()
                .any(|r| matches!(r, Defect::Entry { index: 1, defect, .. } if defect == d)),
            "{d:?} missing from {report:?}"
        );
    }
    defects
}

#[test]
fn a2_entry_corruption() {
    let d = entry_defects(|b| put_u64(b, E1 + 32, 64), Some("b"));
    assert!(
        d.contains(&EntryDefect::OffsetInsideTable {
            offset: 64,
            table_end: 224
        }),
        "{d:?}"
    );
    let d = entry_defects(|b| put_u64(b, E1 + 40, u64::MAX - 100), Some("b"));
    assert!(
        d.iter()
            .any(|d| matches!(d, EntryDefect::OutOfBounds { .. })),
        "{d:?}"
    );
    let d = entry_defects(|b| put_u64(b, E1 + 40, 4096), Some("b"));
    assert!(
        d.iter().any(|d| matches!(
            d,
            EntryDefect::OutOfBounds {
                memory_size: 4096,
                ..
            }
        )),
        "{d:?}"
    );
    let d = entry_defects(|b| put_u64(b, E1 + 32, 252), Some("b"));
    assert!(
        d.contains(&EntryDefect::Misaligned { offset: 252 }),
        "{d:?}"
    );
    let d = entry_defects(|b| put_u64(b, E1 + 32, 224), Some("b"));
    assert!(d.contains(&EntryDefect::Overlap { other: 0 }), "{d:?}");
    let d = entry_defects(|b| b[E1] = b'a', Some("a"));
    assert!(
        d.contains(&EntryDefect::DuplicateName { other: 0 }),
        "{d:?}"
    );
    let d = entry_defects(|b| b[E1..E1 + 32].fill(b'x'), None);
    assert!(d.contains(&EntryDefect::NameNotTerminated), "{d:?}");
    let d = entry_defects(|b| put_u64(b, 24, 250), Some("b"));
    assert!(
        d.iter()
            .any(|d| matches!(d, EntryDefect::BeyondNextOffset { .. })),
        "{d:?}"
    );
    // Names that cannot be looked up are still marked in the listing.
    for (mutate, want) in [
        (
            Box::new(|b: &mut Vec<u8>| b[E1] = 0) as Box<dyn FnOnce(&mut Vec<u8>)>,
            EntryDefect::NameEmpty,
        ),
        (
            Box::new(|b: &mut Vec<u8>| b[E1] = 0xFF),
            EntryDefect::NameNotUtf8,
        ),
    ] {
        let (name, _g) = plant(mutate);
        let seg = Segment::open(&name).unwrap();
        assert!(seg.entries().unwrap()[1].defects.contains(&want));
        assert!(
            Segment::inspect(&name)
                .unwrap()
                .defects
                .iter()
                .any(|d| matches!(d, Defect::Entry { defect, .. } if *defect == want))
        );
    }
}

#[test]
fn a2_sound_neighbours_still_open() {
    let (name, _g) = plant(|b| put_u64(b, E1 + 40, u64::MAX));
    let seg = Segment::open(&name).unwrap();
    assert_eq!(
        Array::<u32>::open(&seg, "a").unwrap().to_vec(),
        [1, 2, 3, 4]
    );
    // Creating more would put a structure where the corrupt entry claims to be: refused, and
    // nothing changes.
    let before = read_raw(&name);
    assert!(Array::<u8>::create(&seg, "c", 1).is_err());
    assert_eq!(read_raw(&name), before);
}

#[test]
fn a3_array_header_corruption() {
    let structure = |name: &str| {
        let seg = Segment::open(name).unwrap();
        match Array::<u32>::open(&seg, "a") {
            Err(e @ (Error::CorruptStructure { .. } | Error::TypeMismatch { .. })) => e,
            other => panic!("expected a structure error, got {other:?}"),
        }
    };
    let (zero, _g1) = plant(|b| put_u64(b, 224, 0));
    assert!(matches!(
        structure(&zero),
        Error::CorruptStructure { kind: "array", .. }
    ));
    let (overflow, _g2) = plant(|b| put_u64(b, 224, u64::MAX / 2));
    assert!(matches!(
        structure(&overflow),
        Error::CorruptStructure { .. }
    ));
    let (bigger, _g3) = plant(|b| put_u64(b, 224, 5));
    assert!(matches!(structure(&bigger), Error::CorruptStructure { .. }));
    let (smaller, _g4) = plant(|b| put_u64(b, 224, 2));
    let e = structure(&smaller);
    assert!(
        matches!(&e, Error::TypeMismatch { found, .. } if found.contains("`8`-byte")),
        "{e:?}"
    );
    // An entry shorter than the array header.
    let (short, _g5) = plant(|b| put_u64(b, 32 + 40, 4));
    assert!(matches!(structure(&short), Error::CorruptStructure { .. }));
}
