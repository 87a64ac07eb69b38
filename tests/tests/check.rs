//! `Segment::check_structure`: the state a crash or a corruption leaves in a queue or a stack
//! is reported with its slot, and a sound structure reports nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zeroipc::{
    Array, Defect, Error, MAX_ENTRY_DEFECTS, MAX_LISTED_DEFECTS, Queue, Segment, SegmentOptions,
    Stack, StructureKind,
};
use zeroipc_tests::{guarded, poke};

/// The entry offset of `name` in `seg`.
fn offset(seg: &Segment, name: &str) -> u64 {
    seg.entry(name).unwrap().unwrap().offset
}

#[test]
fn sound_structures_report_their_geometry_and_length_and_no_defect() {
    let (name, _g) = guarded("chk-sound");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 8).unwrap();
    let s = Stack::<u32>::create(&seg, "s", 5).unwrap();
    Array::<f32>::create(&seg, "a", 3).unwrap();
    // Wrap the queue's counters past the first lap so that the audit sees reused slots.
    for i in 0..11 {
        q.push(i).unwrap();
        assert_eq!(q.pop().unwrap(), Some(i));
    }
    q.push(1).unwrap();
    q.push(2).unwrap();
    s.push(7).unwrap();
    let ro = Segment::open_read_only(&name).unwrap();
    let report = ro.check_structure("q", StructureKind::Queue).unwrap();
    assert_eq!(report.kind, StructureKind::Queue);
    assert_eq!(report.geometry, "capacity `8`, `8`-byte elements");
    assert_eq!(report.len, Some(2));
    assert!(report.is_sound(), "{report:?}");
    let report = ro.check_structure("s", StructureKind::Stack).unwrap();
    assert_eq!(
        (report.len, report.is_sound()),
        (Some(1), true),
        "{report:?}"
    );
    let report = ro.check_structure("a", StructureKind::Array).unwrap();
    assert_eq!(
        report.geometry,
        "capacity `3`, `4`-byte elements, reference layout"
    );
    assert_eq!((report.len, report.is_sound()), (Some(3), true));
}

#[test]
fn a_queue_position_claimed_and_never_published_is_reported_in_flight() {
    let (name, _g) = guarded("chk-claim");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "q", 4).unwrap();
    q.push(10).unwrap();
    let at = offset(&seg, "q");
    // A producer that died after moving `tail` from 1 to 2, before publishing slot 1.
    poke(&name, at + 4, &2u32.to_le_bytes());
    let report = seg.check_structure("q", StructureKind::Queue).unwrap();
    assert_eq!(report.len, Some(2));
    assert_eq!(report.defects.len(), 1, "{report:?}");
    let d = &report.defects[0];
    assert_eq!((d.slot, d.in_flight), (Some(1), true));
    assert!(d.problem.contains("claimed by a producer"), "{d}");
    // The published item before it is still delivered.
    assert_eq!(q.pop().unwrap(), Some(10));
}

#[test]
fn queue_counters_and_sequence_words_that_contradict_each_other_are_defects() {
    let (name, _g) = guarded("chk-qbad");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    Queue::<u32>::create(&seg, "q", 4).unwrap();
    let at = offset(&seg, "q");
    // `tail - head` above the capacity.
    poke(&name, at + 4, &9u32.to_le_bytes());
    let report = seg.check_structure("q", StructureKind::Queue).unwrap();
    assert_eq!(report.defects.len(), 1, "{report:?}");
    assert!(!report.defects[0].in_flight);
    assert!(report.defects[0].problem.contains("more than the capacity"));
    // Back to empty, then a free slot's sequence word that no peer could have written
    // (slots at +16, four 4-byte slots, sequence words at +32).
    poke(&name, at + 4, &0u32.to_le_bytes());
    poke(&name, at + 32 + 3 * 4, &77u32.to_le_bytes());
    let report = seg.check_structure("q", StructureKind::Queue).unwrap();
    assert_eq!(report.defects.len(), 1, "{report:?}");
    let d = &report.defects[0];
    assert_eq!((d.slot, d.in_flight), (Some(3), false));
    assert!(d.problem.contains("reads `77`"), "{d}");
}

#[test]
fn stack_slots_left_mid_operation_or_out_of_place_are_reported() {
    let (name, _g) = guarded("chk-stack");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let s = Stack::<u64>::create(&seg, "s", 4).unwrap();
    s.push(1).unwrap();
    s.push(2).unwrap();
    let at = offset(&seg, "s");
    // States at +16 + 4 * 8: slot 1 left READING (a popper that stopped), slot 2 holding a
    // value that is no state, slot 3 READY above top (a pop between moving `top` and claiming
    // the slot, or one that stopped there).
    let states = at + 16 + 32;
    poke(&name, states + 4, &3u32.to_le_bytes());
    poke(&name, states + 8, &7u32.to_le_bytes());
    poke(&name, states + 12, &2u32.to_le_bytes());
    let report = seg.check_structure("s", StructureKind::Stack).unwrap();
    let found: Vec<_> = report
        .defects
        .iter()
        .map(|d| (d.slot, d.in_flight))
        .collect();
    assert_eq!(
        found,
        [(Some(1), true), (Some(2), false), (Some(3), true)],
        "{report:?}"
    );
    assert!(report.defects[0].problem.contains("READING"));
    assert!(report.defects[1].problem.contains("state `7`, not 0 ..= 3"));
    assert!(report.defects[2].problem.contains("READY, above top `1`"));
}

#[test]
fn checking_as_the_wrong_kind_says_what_does_not_fit() {
    // Described, the stored kind is named.
    let (name, _g) = guarded("chk-kind-described");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    Array::<u8>::create(&seg, "bytes", 24).unwrap();
    assert!(matches!(
        seg.check_structure("bytes", StructureKind::Queue),
        Err(Error::KindMismatch {
            requested: "queue",
            ..
        })
    ));
    // Undescribed (as another implementation writes it), the geometry says what does not fit.
    let (name, _g) = guarded("chk-kind");
    let seg = SegmentOptions::new()
        .descriptions(false)
        .create(&name, 1 << 16)
        .unwrap();
    Array::<u8>::create(&seg, "bytes", 24).unwrap();
    Queue::<u64>::create(&seg, "q", 4).unwrap();
    match seg.check_structure("bytes", StructureKind::Queue) {
        Err(Error::CorruptStructure { kind, reason, .. }) => {
            assert_eq!(kind, "queue");
            assert!(reason.contains("capacity `0`"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A fresh queue's first eight bytes (head and tail, both 0) read as an array capacity of 0.
    let e = seg.check_structure("q", StructureKind::Array).unwrap_err();
    assert!(e.to_string().contains("the stored capacity is `0`"), "{e}");
    // The element size comes from the stored geometry, whatever type wrote it.
    Array::<[u16; 3]>::create(&seg, "seven", 7).unwrap();
    let report = seg.check_structure("seven", StructureKind::Array).unwrap();
    assert_eq!(
        report.geometry,
        "capacity `7`, `6`-byte elements, reference layout"
    );
    assert!(matches!(
        seg.check_structure("missing", StructureKind::Stack),
        Err(Error::EntryNotFound { .. })
    ));
    assert_eq!(
        StructureKind::from_name("stack"),
        Some(StructureKind::Stack)
    );
    assert_eq!(StructureKind::from_name("ring"), None);
    let names: Vec<&str> = StructureKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
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
            "signal"
        ]
    );
}

#[test]
fn a_report_lists_at_most_256_defects_and_says_more_follow() {
    let (name, _g) = guarded("chk-many");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    Stack::<u8>::create(&seg, "s", 1000).unwrap();
    // 1000 one-byte slots from +16, state words from +1016: every state an impossible 7.
    let at = seg.entry("s").unwrap().unwrap().offset;
    poke(&name, at + 1016, &[7, 0, 0, 0].repeat(1000));
    let report = seg.check_structure("s", StructureKind::Stack).unwrap();
    assert_eq!(report.defects.len(), 257);
    assert!(
        report.defects[..256]
            .iter()
            .all(|d| d.problem.contains("`7`"))
    );
    assert!(
        report.defects[256].problem.contains("only the first `256`"),
        "{report:?}"
    );
}

#[test]
fn a_hostile_table_of_identical_overlapping_entries_gives_a_bounded_report_quickly() {
    let (name, _g) = guarded("chk-hostile");
    const N: u32 = 20_000;
    let seg = SegmentOptions::new()
        .max_entries(N)
        .create(&name, 32 + 48 * u64::from(N) + 4096)
        .unwrap();
    drop(seg);
    // Every entry: the same 32-byte name without a NUL, and one huge range that overlaps
    // every other entry's.
    let mut row = vec![0xffu8; 32];
    row.extend_from_slice(&(1u64 << 40).to_le_bytes());
    row.extend_from_slice(&(1u64 << 40).to_le_bytes());
    poke(&name, 32, &row.repeat(N as usize));
    poke(&name, 8, &N.to_le_bytes());
    let t = std::time::Instant::now();
    let report = Segment::inspect(&name).unwrap();
    let took = t.elapsed();
    assert_eq!(report.entries.len(), N as usize);
    assert!(
        report
            .entries
            .iter()
            .all(|e| e.defects.len() <= MAX_ENTRY_DEFECTS)
    );
    assert_eq!(report.defects.len(), MAX_LISTED_DEFECTS + 1);
    match report.defects.last() {
        Some(Defect::Omitted { count }) => assert!(*count > u64::from(N), "{count}"),
        other => panic!("expected the omitted count last, got {other:?}"),
    }
    // Quadratic work on 20 000 entries would take minutes in a debug build.
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
}
