//! TESTPLAN A5: arbitrary and mutated segments never make the library panic, crash or hang.
//! The body is [`zeroipc_tests::fuzz_memory`] (a private memfd copy of each input), shared with
//! the `cargo fuzz` target in `fuzz/`; [`zeroipc_tests::fuzz_open`] runs the same body on a real
//! `/dev/shm` file, and the two are checked to agree.
//!
//! Case counts: `ZEROIPC_FUZZ_CASES` (default 4 000 arbitrary + 8 000 mutated = 12 000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use zeroipc_tests::{FuzzOutcome, fuzz_memory, fuzz_open, unique_name, vectors_dir};

fn cases(default: u32) -> u32 {
    std::env::var("ZEROIPC_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Seeds: every golden vector plus segments made by this crate (used when the vectors are
/// missing outside CI).
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut seeds = Vec::new();
        if let Some(dir) = vectors_dir() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "bin") {
                    seeds.push(std::fs::read(path).unwrap());
                }
            }
        }
        let (name, _g) = zeroipc_tests::guarded("seed");
        {
            let seg = zeroipc::SegmentOptions::new()
                .max_entries(6)
                .create(&name, 2048)
                .unwrap();
            zeroipc::Array::<u64>::create(&seg, "a", 5).unwrap();
            zeroipc::Array::<u8>::create(&seg, "b", 7).unwrap();
            zeroipc::Array::<[u8; 3]>::create(&seg, "c", 9).unwrap();
        }
        seeds.push(zeroipc_tests::read_raw(&name));
        // Described containers of every kind with elements, for the description records and
        // the run-time typed handles (the table, the area and the first records lie within the
        // mutated prefix).
        let (name, _g) = zeroipc_tests::guarded("seed-described");
        {
            let seg = zeroipc::SegmentOptions::new()
                .max_entries(5)
                .runtime_entry(false)
                .create(&name, 2048)
                .unwrap();
            let q = zeroipc::Queue::<u32>::create(&seg, "q", 2).unwrap();
            q.push(7).unwrap();
            let s = zeroipc::Stack::<[u8; 3]>::create(&seg, "s", 2).unwrap();
            s.push([1, 2, 3]).unwrap();
            zeroipc::Array::<zeroipc_tests::types::SensorReading>::create(&seg, "r", 1).unwrap();
        }
        seeds.push(zeroipc_tests::read_raw(&name));
        seeds
    })
}

/// A mutation of a seed: overwrite bytes, plant interesting words in the header and entries,
/// truncate.
#[derive(Debug, Clone)]
enum Mutation {
    Byte { at: usize, value: u8 },
    Word32 { at: usize, value: u32 },
    Word64 { at: usize, value: u64 },
    Truncate { len: usize },
}

fn interesting_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(7),
        Just(8),
        Just(800),
        Just(65536),
        Just(u64::from(u32::MAX)),
        Just(u64::MAX),
        Just(u64::MAX - 7),
        Just(1 << 63),
        any::<u64>(),
        0u64..70_000,
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Header, entry table and the first structures live in the first ~1.5 KiB of the seeds.
    prop_oneof![
        (0usize..1600, any::<u8>()).prop_map(|(at, value)| Mutation::Byte { at, value }),
        (0usize..400, interesting_u64()).prop_map(|(at, v)| Mutation::Word32 {
            at: at * 4,
            value: v as u32
        }),
        (0usize..200, interesting_u64())
            .prop_map(|(at, value)| Mutation::Word64 { at: at * 8, value }),
        (0usize..2000).prop_map(|len| Mutation::Truncate { len }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::Byte { at, value } => {
            if let Some(b) = bytes.get_mut(at) {
                *b = value;
            }
        }
        Mutation::Word32 { at, value } => {
            if let Some(b) = bytes.get_mut(at..at + 4) {
                b.copy_from_slice(&value.to_le_bytes());
            }
        }
        Mutation::Word64 { at, value } => {
            if let Some(b) = bytes.get_mut(at..at + 8) {
                b.copy_from_slice(&value.to_le_bytes());
            }
        }
        Mutation::Truncate { len } => bytes.truncate(len),
    }
}

/// `seed` with `mutations` applied in order.
fn mutated(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for m in mutations {
        apply(&mut bytes, m);
    }
    bytes
}

#[test]
fn a5_arbitrary_bytes() {
    let mut runner = TestRunner::new(Config {
        cases: cases(4000),
        failure_persistence: None,
        ..Config::default()
    });
    let opened = Cell::new(0u32);
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..2048), |bytes| {
            let out = fuzz_memory(&bytes);
            opened.set(opened.get() + u32::from(out.opened));
            Ok(())
        })
        .unwrap();
    println!(
        "a5 arbitrary: {} cases, {} opened",
        cases(4000),
        opened.get()
    );
}

#[test]
fn a5_mutated_segments() {
    let seeds = seeds();
    let mut runner = TestRunner::new(Config {
        cases: cases(8000),
        failure_persistence: None,
        ..Config::default()
    });
    let totals = Cell::new((0u32, 0usize, 0usize, 0usize));
    runner
        .run(
            &(0..seeds.len(), proptest::collection::vec(mutation(), 1..6)),
            |(seed, mutations)| {
                let bytes = mutated(&seeds[seed], &mutations);
                let out = fuzz_memory(&bytes);
                let (o, e, a, c) = totals.get();
                totals.set((
                    o + u32::from(out.opened),
                    e + out.entries,
                    a + out.arrays_opened,
                    c + out.containers_opened,
                ));
                Ok(())
            },
        )
        .unwrap();
    let totals = totals.get();
    println!(
        "a5 mutated: {} cases over {} seeds, {} opened, {} entries listed, {} array opens, \
         {} queue/stack opens",
        cases(8000),
        seeds.len(),
        totals.0,
        totals.1,
        totals.2,
        totals.3
    );
    // The mutations must leave many segments openable, or the deeper paths go untested.
    assert!(
        totals.0 > cases(8000) / 10,
        "too few mutated segments opened: {totals:?}"
    );
    assert!(totals.2 > 0, "no array was ever opened: {totals:?}");
    assert!(
        totals.3 > 0,
        "no queue or stack was ever opened: {totals:?}"
    );
}

#[test]
fn a5_corpus_replay() {
    // The unmutated seeds are the fuzz corpus: each must open and list every entry.
    for (i, seed) in seeds().iter().enumerate() {
        let out: FuzzOutcome = fuzz_open(&unique_name("corpus"), seed);
        assert!(out.opened, "seed {i} did not open");
        assert!(out.entries > 0, "seed {i} listed no entries");
        // The in-memory body the generated cases use sees exactly what a real segment shows.
        assert_eq!(
            fuzz_memory(seed),
            out,
            "seed {i}: memfd and /dev/shm disagree"
        );
    }
}

#[test]
fn a5_memory_and_file_bodies_agree_on_mutated_seeds() {
    let seeds = seeds();
    let mut runner = TestRunner::new(Config {
        cases: cases(300),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(0..seeds.len(), proptest::collection::vec(mutation(), 1..6)),
            |(seed, mutations)| {
                let bytes = mutated(&seeds[seed], &mutations);
                let file = fuzz_open(&unique_name("fzcmp"), &bytes);
                prop_assert_eq!(fuzz_memory(&bytes), file);
                Ok(())
            },
        )
        .unwrap();
}
