//! TESTPLAN B8: 100 000 open/close cycles leak no descriptor and no mapping. This is its own
//! test binary with one test, so no other test opens files while the counts are taken.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zeroipc::{Array, Segment, SegmentOptions};
use zeroipc_tests::{guarded, shm_path};

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn b8_open_close_cycles_leak_nothing() {
    let (name, _g) = guarded("b8");
    {
        let seg = Segment::create(&name, 1 << 16).unwrap();
        Array::<u32>::create(&seg, "a", 16).unwrap();
    }
    // Warm up allocator and runtime state before taking the baseline.
    for _ in 0..100 {
        drop(Segment::open(&name).unwrap());
    }
    let (fds, maps) = (fd_count(), map_count());
    for i in 0..100_000u32 {
        let seg = if i % 2 == 0 {
            Segment::open(&name)
        } else {
            Segment::open_read_only(&name)
        };
        let seg = seg.unwrap();
        assert_eq!(Array::<u32>::open(&seg, "a").unwrap().len(), 16);
    }
    for _ in 0..1000 {
        let _ = Segment::inspect(&name).unwrap();
    }
    assert_eq!(fd_count(), fds, "descriptors leaked");
    assert_eq!(map_count(), maps, "mappings leaked");
    // Dropping handles never unlinks unless asked to.
    assert!(shm_path(&name).exists());
    let (other, _g2) = guarded("b8d");
    drop(SegmentOptions::new().create(&other, 4096).unwrap());
    assert!(shm_path(&other).exists());
}
