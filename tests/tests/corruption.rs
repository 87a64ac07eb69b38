//! TESTPLAN A1–A3: corrupt headers, entries and array headers give specific errors, never a
//! panic or an access outside the mapping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zeroipc::{Array, Defect, DynArray, EntryDefect, Error, HeaderDefect, Segment, SegmentOptions};
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

/// FNV-1a 64, as FORMAT.md appendix D computes a layout's fingerprint.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Description records are untrusted input too (FORMAT.md appendix D): truncated, oversized,
/// lying about their offset, carrying a fingerprint that does not match their bytes, or a
/// layout that cannot describe a struct, each leaves the structure undescribed (it opens by
/// size, as another implementation's) and is reported by `check`; a consistent record that
/// lies about the type is caught by the size check. Never a panic.
#[test]
fn a2_description_records_that_lie_are_refused() {
    let (src, _gs) = guarded("desc-src");
    let (area, record) = {
        let seg = SegmentOptions::new()
            .max_entries(4)
            .create(&src, 8192)
            .unwrap();
        Array::<u32>::create(&seg, "a", 4)
            .unwrap()
            .copy_from_slice(0, &[1, 2, 3, 4])
            .unwrap();
        let area = seg.entry("zeroipc.layouts").unwrap().unwrap().offset as usize;
        (area, area + 16)
    };
    let base = read_raw(&src);
    let layout_len = u32::from_le_bytes(base[record + 4..record + 8].try_into().unwrap()) as usize;
    let layout_at = record + 28 + 1 + "array".len();
    // The record as written: `a`, an array of `u32`, at the entry's offset.
    assert_eq!(&base[record + 28..layout_at], b"aarray");
    assert_eq!(
        u64::from_le_bytes(base[record + 16..record + 24].try_into().unwrap()),
        fnv1a(&base[layout_at..layout_at + layout_len])
    );
    type Mutate = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Mutate, Option<&str>)> = vec![
        (
            "a record longer than the bytes used",
            Box::new(move |b| put_u32(b, record, 4096)),
            Some("reaches past"),
        ),
        (
            "a record size that is not a multiple of 8",
            Box::new(move |b| put_u32(b, record, 41)),
            Some("not a multiple of 8"),
        ),
        (
            "`used` beyond the area",
            Box::new(move |b| put_u32(b, area + 8, 1 << 30)),
            Some("`used` is"),
        ),
        (
            "another magic",
            Box::new(move |b| put_u32(b, area, 0xdead_beef)),
            Some("magic"),
        ),
        (
            "a name longer than the record",
            Box::new(move |b| b[record + 24] = 200),
            Some("is not 1..=31"),
        ),
        (
            "a layout longer than the record",
            Box::new(move |b| put_u32(b, record + 4, 1 << 20)),
            Some("reach past its size"),
        ),
        (
            "a fingerprint that does not match the layout",
            Box::new(move |b| b[record + 16] ^= 1),
            Some("fingerprint"),
        ),
        (
            "a layout that does not decode, its fingerprint made to match",
            Box::new(move |b| {
                b[layout_at] = b'Q';
                let fp = fnv1a(&b[layout_at..layout_at + layout_len]);
                put_u64(b, record + 16, fp);
            }),
            Some("the layout of `a`"),
        ),
        (
            "a record naming another offset (a structure since removed)",
            Box::new(move |b| put_u64(b, record + 8, 8)),
            None,
        ),
    ];
    for (what, mutate, defect) in cases {
        let mut bytes = base.clone();
        mutate(&mut bytes);
        let name = unique_name("desc");
        let _g = write_raw(&name, &bytes);
        let seg = Segment::open(&name).unwrap_or_else(|e| panic!("{what}: {e}"));
        // Undescribed: the size decides, as for another implementation's array.
        assert_eq!(
            Array::<u32>::open(&seg, "a").unwrap().to_vec(),
            [1, 2, 3, 4],
            "{what}"
        );
        assert_eq!(
            Array::<[u8; 4]>::open(&seg, "a").unwrap().len(),
            4,
            "{what}"
        );
        assert!(
            matches!(
                Array::<u64>::open(&seg, "a"),
                Err(Error::TypeMismatch { .. })
            ),
            "{what}"
        );
        assert!(
            matches!(DynArray::open(&seg, "a"), Err(Error::NotDescribed { .. })),
            "{what}"
        );
        assert_eq!(seg.description("a").unwrap(), None, "{what}");
        let report = seg.check();
        assert!(report.descriptions.is_empty(), "{what}");
        match defect {
            Some(text) => assert!(
                report.defects.iter().any(
                    |d| matches!(d, Defect::Description { problem } if problem.contains(text))
                ),
                "{what}: {:?}",
                report.defects
            ),
            None => assert!(report.is_sound(), "{what}: {:?}", report.defects),
        }
        // Creating more structures never writes into a broken area, and still works.
        let more = Array::<u8>::create(&seg, "more", 1);
        assert!(more.is_ok(), "{what}: {more:?}");
    }
    // A consistent record that lies about the type (says `u64` for 4-byte elements): the
    // layout check accepts the lie, the size check does not.
    let mut bytes = base.clone();
    let u64_layout: Vec<u8> = [b"S".as_slice(), &3u64.to_le_bytes(), b"<u8"].concat();
    assert_eq!(u64_layout.len(), layout_len);
    bytes[layout_at..layout_at + layout_len].copy_from_slice(&u64_layout);
    put_u64(&mut bytes, record + 16, fnv1a(&u64_layout));
    let name = unique_name("desc-lie");
    let _g = write_raw(&name, &bytes);
    let seg = Segment::open(&name).unwrap();
    assert!(matches!(
        Array::<u32>::open(&seg, "a"),
        Err(Error::LayoutMismatch { .. })
    ));
    let e = Array::<u64>::open(&seg, "a").unwrap_err();
    assert!(
        matches!(e, Error::TypeMismatch { expected: 8, .. }),
        "{e:?}"
    );
    assert!(matches!(
        DynArray::open(&seg, "a"),
        Err(Error::TypeMismatch { .. })
    ));
}
