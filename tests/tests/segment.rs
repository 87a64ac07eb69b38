//! Segment lifecycle, names, permissions and the table: TESTPLAN B1–B6 and the table's
//! failure and concurrency rules (FORMAT.md §2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use zeroipc::{Array, Error, Segment, SegmentOptions};
use zeroipc_tests::{ShmGuard, guarded, read_raw, shm_path, unique_name, write_raw};

const CHILD: &str = env!("CARGO_BIN_EXE_zeroipc-test-child");

/// Serialises the tests that change the process umask.
static UMASK: Mutex<()> = Mutex::new(());

#[test]
fn b1_bad_segment_names_are_rejected_before_any_syscall() {
    let before: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    let long = format!("/{}", "x".repeat(256));
    let bad = [
        "",
        "/",
        "/a/b",
        "/..",
        "/.",
        "/../../tmp/zipc-b1-x",
        "/a\0b",
        "/a\nb",
        "/\x07",
        &long,
    ];
    for name in bad {
        for result in [
            Segment::create(name, 4096).map(drop),
            Segment::open(name).map(drop),
            Segment::open_or_create(name, 4096).map(drop),
            Segment::unlink(name),
            Segment::inspect(name).map(drop),
        ] {
            assert!(
                matches!(result, Err(Error::InvalidSegmentName { .. })),
                "{name:?} gave {result:?}"
            );
        }
    }
    assert!(!std::path::Path::new("/tmp/zipc-b1-x").exists());
    let after: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert!(
        after
            .iter()
            .all(|p| before.contains(p) || !p.to_string_lossy().contains("zipc-b1"))
    );
}

#[test]
fn b1_bad_entry_names_are_rejected_and_change_nothing() {
    let (name, _g) = guarded("b1e");
    let seg = Segment::create(&name, 4096).unwrap();
    let before = read_raw(&name);
    for bad in ["", &"n".repeat(32), "a\0b", &"é".repeat(16)] {
        let result = Array::<u8>::create(&seg, bad, 4);
        assert!(
            matches!(result, Err(Error::InvalidEntryName { .. })),
            "{bad:?}: {result:?}"
        );
        assert!(matches!(
            Array::<u8>::open(&seg, bad),
            Err(Error::InvalidEntryName { .. })
        ));
    }
    assert_eq!(read_raw(&name), before);
    // 31 bytes is the limit and works.
    Array::<u8>::create(&seg, &"n".repeat(31), 4).unwrap();
}

fn mode_of(name: &str) -> u32 {
    std::fs::metadata(shm_path(name)).unwrap().mode() & 0o777
}

#[test]
fn b2_default_mode_is_0600_whatever_the_umask() {
    let _lock = UMASK.lock().unwrap();
    for umask in [0o000, 0o077, 0o022] {
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(umask));
        let (name, _g) = guarded("b2");
        let created = Segment::create(&name, 4096);
        let (n660, _g2) = guarded("b2m");
        let with_mode = SegmentOptions::new().mode(0o660).create(&n660, 4096);
        rustix::process::umask(old);
        created.unwrap();
        with_mode.unwrap();
        assert_eq!(mode_of(&name), 0o600, "umask {umask:o}");
        assert_eq!(mode_of(&n660), 0o660, "umask {umask:o}");
    }
    let (n666, _g) = guarded("b2w");
    SegmentOptions::new()
        .mode(0o666)
        .create(&n666, 4096)
        .unwrap();
    assert_eq!(mode_of(&n666), 0o666);
    let (nbad, _g) = guarded("b2bad");
    assert!(matches!(
        SegmentOptions::new().mode(0o4777).create(&nbad, 4096),
        Err(Error::InvalidArgument { what: "mode", .. })
    ));
    assert!(!shm_path(&nbad).exists());
}

#[test]
fn b3_create_never_clobbers() {
    let (name, _g) = guarded("b3");
    let a = Segment::create(&name, 8192).unwrap();
    Array::<u32>::create(&a, "keep", 4)
        .unwrap()
        .copy_from_slice(0, &[1, 2, 3, 4])
        .unwrap();
    let before = read_raw(&name);
    let b = Segment::create(&name, 4096);
    assert!(matches!(b, Err(Error::AlreadyExists { .. })), "{b:?}");
    assert_eq!(read_raw(&name), before);
    // A foreign, non-ZeroIPC object is not clobbered either.
    let other = unique_name("b3f");
    let _g2 = write_raw(&other, b"not a segment");
    assert!(matches!(
        Segment::create(&other, 4096),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(read_raw(&other), b"not a segment");
    // open_or_create opens instead of replacing.
    let c = Segment::open_or_create(&name, 4096).unwrap();
    assert!(!c.created());
    assert_eq!(
        Array::<u32>::open(&c, "keep").unwrap().to_vec(),
        [1, 2, 3, 4]
    );
    // Only unlink removes it.
    drop((a, c));
    assert!(shm_path(&name).exists());
    Segment::unlink(&name).unwrap();
    assert!(!shm_path(&name).exists());
    assert!(matches!(
        Segment::unlink(&name),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn unlink_on_drop_removes_only_what_the_handle_created() {
    let (name, _g) = guarded("uod");
    let created = SegmentOptions::new()
        .unlink_on_drop(true)
        .create(&name, 4096)
        .unwrap();
    let opened = SegmentOptions::new()
        .unlink_on_drop(true)
        .open(&name)
        .unwrap();
    drop(opened);
    assert!(shm_path(&name).exists(), "an opener must not unlink");
    drop(created);
    assert!(!shm_path(&name).exists(), "the creator unlinks on drop");
}

#[test]
fn b4_planted_objects_are_refused() {
    // A symlink pointing at a regular file elsewhere.
    let (link, _g1) = guarded("b4l");
    let target = std::env::temp_dir().join(format!("zipc-b4-target-{}", std::process::id()));
    std::fs::write(&target, vec![0u8; 4096]).unwrap();
    std::os::unix::fs::symlink(&target, shm_path(&link)).unwrap();
    let r = Segment::open(&link);
    assert!(
        matches!(
            r,
            Err(Error::NotRegularFile {
                kind: "symbolic link",
                ..
            })
        ),
        "{r:?}"
    );
    assert!(matches!(
        Segment::inspect(&link),
        Err(Error::NotRegularFile { .. })
    ));
    assert!(matches!(
        Segment::create(&link, 4096),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(
        std::fs::read(&target).unwrap(),
        vec![0u8; 4096],
        "the target was written"
    );
    std::fs::remove_file(&target).unwrap();

    // A FIFO: must be refused without blocking.
    let (fifo, _g2) = guarded("b4f");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        shm_path(&fifo),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let r = Segment::open(&fifo);
    assert!(
        matches!(r, Err(Error::NotRegularFile { kind: "FIFO", .. })),
        "{r:?}"
    );
    assert!(matches!(
        Segment::open_read_only(&fifo),
        Err(Error::NotRegularFile { .. })
    ));

    // A directory.
    let (dir, _g3) = guarded("b4d");
    std::fs::create_dir(shm_path(&dir)).unwrap();
    let r = Segment::open(&dir);
    assert!(
        matches!(
            r,
            Err(Error::NotRegularFile {
                kind: "directory",
                ..
            })
        ),
        "{r:?}"
    );
}

#[test]
fn b5_openers_never_see_a_half_made_segment() {
    const ROUNDS: usize = 1000;
    const OPENERS: usize = 8;
    let name = unique_name("b5");
    let _g = ShmGuard::new(&name);
    let done = Arc::new(AtomicBool::new(false));
    let seen_valid = Arc::new(AtomicUsize::new(0));
    let openers: Vec<_> = (0..OPENERS)
        .map(|_| {
            let (name, done, seen_valid) = (name.clone(), done.clone(), seen_valid.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    match Segment::open(&name) {
                        Ok(seg) => {
                            let report = seg.check();
                            assert!(report.is_sound(), "valid open but defects: {report:?}");
                            assert_eq!(seg.max_entries(), 16);
                            seen_valid.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::NotFound { .. } | Error::NotReady { .. }) => {}
                        Err(e) => panic!("opener saw {e:?}"),
                    }
                }
            })
        })
        .collect();
    for _ in 0..ROUNDS {
        let seg = SegmentOptions::new()
            .max_entries(16)
            .create(&name, 64 * 1024)
            .unwrap();
        Segment::unlink(&name).unwrap();
        drop(seg);
    }
    done.store(true, Ordering::Relaxed);
    for t in openers {
        t.join().unwrap();
    }
    eprintln!(
        "b5: {} valid opens during {ROUNDS} create/unlink rounds",
        seen_valid.load(Ordering::Relaxed)
    );
}

#[test]
fn b6_read_only_open_and_inspect_change_nothing() {
    let (name, _g) = guarded("b6");
    {
        let seg = Segment::create(&name, 8192).unwrap();
        Array::<f64>::create(&seg, "x", 3)
            .unwrap()
            .copy_from_slice(0, &[1.0, 2.0, 3.0])
            .unwrap();
        Array::<u64>::create(&seg, "n", 2).unwrap();
    }
    std::fs::set_permissions(shm_path(&name), std::fs::Permissions::from_mode(0o400)).unwrap();
    let before = read_raw(&name);
    let seg = Segment::open_read_only(&name).unwrap();
    assert!(seg.is_read_only());
    let x = Array::<f64>::open(&seg, "x").unwrap();
    assert_eq!(x.to_vec(), [1.0, 2.0, 3.0]);
    assert!(matches!(x.set(0, 9.0), Err(Error::ReadOnly { .. })));
    assert!(matches!(
        x.copy_from_slice(0, &[9.0]),
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(
        Array::<u8>::create(&seg, "y", 1),
        Err(Error::ReadOnly { .. })
    ));
    // Descriptions are read on a read-only segment too.
    assert!(matches!(
        Array::<u64>::open(&seg, "x"),
        Err(Error::LayoutMismatch { .. })
    ));
    let counts = Array::<u64>::open(&seg, "n").unwrap();
    assert!(counts.load(0, Ordering::Relaxed).is_ok());
    assert!(matches!(
        counts.fetch_add(0, 1, Ordering::Relaxed),
        Err(Error::ReadOnly { .. })
    ));
    assert!(Segment::inspect(&name).unwrap().is_sound());
    assert_eq!(
        seg.entries().unwrap().len(),
        3,
        "x, n and the description entry"
    );
    assert_eq!(read_raw(&name), before);
    assert!(matches!(
        SegmentOptions::new()
            .read_only(true)
            .create(&unique_name("b6c"), 4096),
        Err(Error::InvalidArgument {
            what: "read_only",
            ..
        })
    ));
}

#[test]
fn create_checks_size_and_max_entries_first() {
    let (name, _g) = guarded("args");
    let r = SegmentOptions::new()
        .max_entries(64)
        .create(&name, 32 + 48 * 64 - 1);
    assert!(
        matches!(r, Err(Error::InvalidArgument { what: "size", .. })),
        "{r:?}"
    );
    let r = SegmentOptions::new().max_entries(0).create(&name, 4096);
    assert!(
        matches!(
            r,
            Err(Error::InvalidArgument {
                what: "max_entries",
                ..
            })
        ),
        "{r:?}"
    );
    assert!(!shm_path(&name).exists());
    // Exactly the table fits.
    let seg = SegmentOptions::new()
        .max_entries(2)
        .create(&name, 128)
        .unwrap();
    assert!(matches!(
        Array::<u8>::create(&seg, "a", 1),
        Err(Error::OutOfSpace { .. })
    ));
}

#[test]
fn b7_oversized_create_fails_cleanly() {
    // Far beyond any tmpfs: fallocate (or ftruncate) must refuse it, and nothing may remain.
    let (name, _g) = guarded("b7");
    let r = Segment::create(&name, 1 << 50);
    assert!(
        matches!(r, Err(Error::NoSpace { .. } | Error::Io { .. })),
        "{r:?}"
    );
    assert!(
        !shm_path(&name).exists(),
        "a failed create left its object behind"
    );
}

#[test]
fn header_and_entries_follow_the_allocation_rule() {
    let (name, _g) = guarded("alloc");
    let seg = SegmentOptions::new()
        .max_entries(16)
        .descriptions(false)
        .create(&name, 65536)
        .unwrap();
    assert_eq!(seg.max_entries(), 16);
    let h = seg.header().unwrap();
    assert_eq!((h.magic, h.version, h.entry_count), (0x5A49_504D, 2, 0));
    assert_eq!((h.memory_size, h.next_offset), (65536, 32 + 48 * 16));
    Array::<u8>::create(&seg, "a", 13).unwrap(); // 21 bytes at 800
    Array::<i64>::create(&seg, "b", 5).unwrap(); // 48 bytes at 824
    let e = seg.entries().unwrap();
    assert_eq!((e[0].offset, e[0].size), (800, 21));
    assert_eq!((e[1].offset, e[1].size), (824, 48));
    assert_eq!(seg.header().unwrap().next_offset, 872);
    assert!(e.iter().all(|e| e.is_sound()));
    assert_eq!(seg.entry("b").unwrap().unwrap().index, 1);
    assert!(seg.entry("c").unwrap().is_none());
}

#[test]
fn failed_creations_change_no_byte() {
    let (name, _g) = guarded("nochange");
    let seg = SegmentOptions::new()
        .max_entries(3)
        .descriptions(false)
        .create(&name, 1024)
        .unwrap();
    Array::<u32>::create(&seg, "a", 4).unwrap();
    Array::<u32>::create(&seg, "b", 4).unwrap();
    let before = read_raw(&name);
    let dup = Array::<u64>::create(&seg, "a", 1);
    assert!(matches!(dup, Err(Error::DuplicateEntry { .. })), "{dup:?}");
    let space = Array::<u64>::create(&seg, "c", 1000);
    assert!(
        matches!(
            space,
            Err(Error::OutOfSpace {
                requested: 8008,
                ..
            })
        ),
        "{space:?}"
    );
    assert_eq!(
        read_raw(&name),
        before,
        "a failed create changed the segment"
    );
    Array::<u32>::create(&seg, "c", 4).unwrap();
    let before = read_raw(&name);
    let full = Array::<u32>::create(&seg, "d", 1);
    assert!(
        matches!(full, Err(Error::TableFull { max_entries: 3, .. })),
        "{full:?}"
    );
    assert_eq!(read_raw(&name), before);
    assert_eq!(
        full.unwrap_err().to_string(),
        format!("segment `{name}` table is full (`3` entries)")
    );
    // Described: a failed creation appends no record either.
    let (name, _g) = guarded("nochange-described");
    let seg = SegmentOptions::new()
        .max_entries(3)
        .create(&name, 4096)
        .unwrap();
    Array::<u32>::create(&seg, "a", 4).unwrap();
    let before = read_raw(&name);
    assert!(Array::<u64>::create(&seg, "a", 1).is_err());
    assert!(Array::<u64>::create(&seg, "c", 1000).is_err());
    assert_eq!(
        read_raw(&name),
        before,
        "a failed create changed the segment"
    );
    // The description takes one slot: a, the description entry, and one more.
    Array::<u8>::create(&seg, "b", 1).unwrap();
    assert!(matches!(
        Array::<u8>::create(&seg, "d", 1),
        Err(Error::TableFull { .. })
    ));
}

#[test]
fn concurrent_creators_in_several_processes_keep_the_table_sound() {
    const CHILDREN: usize = 4;
    const PER_CHILD: usize = 12;
    let (name, _g) = guarded("race");
    let seg = SegmentOptions::new()
        .max_entries(64)
        .create(&name, 1 << 20)
        .unwrap();
    let children: Vec<_> = (0..CHILDREN)
        .map(|c| {
            Command::new(CHILD)
                .args([
                    "create-arrays",
                    &name,
                    &format!("c{c}-"),
                    &PER_CHILD.to_string(),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut winners = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if String::from_utf8_lossy(&out.stdout).contains("won_shared=true") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one process may create `shared`");
    let entries = seg.entries().unwrap();
    // Every structure, `shared`, and the one description entry they all share.
    assert_eq!(entries.len(), CHILDREN * PER_CHILD + 2);
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.name == "zeroipc.layouts")
            .count(),
        1
    );
    let report = seg.check();
    assert!(report.is_sound(), "{:?}", report.defects);
    for c in 0..CHILDREN {
        for i in 0..PER_CHILD {
            let a = Array::<u64>::open(&seg, &format!("c{c}-{i}")).unwrap();
            assert_eq!(a.len(), i % 5 + 1);
            assert!(a.iter().all(|v| v == i as u64));
        }
    }
    // Structures are packed by the allocation rule with no gaps beyond 8-alignment.
    let mut sorted = entries.clone();
    sorted.sort_by_key(|e| e.offset);
    for w in sorted.windows(2) {
        assert_eq!(w[1].offset, (w[0].offset + w[0].size + 7) & !7);
    }
}

#[test]
fn concurrent_creators_in_threads_share_one_handle() {
    let (name, _g) = guarded("threads");
    let seg = SegmentOptions::new()
        .max_entries(128)
        .create(&name, 1 << 20)
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let seg = &seg;
            s.spawn(move || {
                for i in 0..25 {
                    Array::<u32>::create(seg, &format!("t{t}-{i}"), 3)
                        .unwrap()
                        .fill(t * 100 + i)
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(
        seg.entries().unwrap().len(),
        100 + 1,
        "and the description entry"
    );
    assert!(seg.check().is_sound());
    assert_eq!(
        Array::<u32>::open(&seg, "t3-24").unwrap().to_vec(),
        [324; 3]
    );
}

#[test]
fn open_errors_name_what_is_wrong() {
    let name = unique_name("missing");
    let e = Segment::open(&name).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    assert_eq!(e.to_string(), format!("segment `{name}` does not exist"));
    let (name, _g) = guarded("noentry");
    let seg = Segment::create(&name, 4096).unwrap();
    let e = Array::<u8>::open(&seg, "temps").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("segment `{name}` has no entry `temps`")
    );
}

#[test]
fn b4_segments_of_another_user_are_refused_unless_allowed() {
    if !rustix::process::geteuid().is_root() {
        println!(
            "b4 owner check needs root to chown a planted segment; not run as uid {}",
            rustix::process::geteuid().as_raw()
        );
        return;
    }
    let (name, _g) = guarded("b4o");
    drop(Segment::create(&name, 4096).unwrap());
    std::os::unix::fs::chown(shm_path(&name), Some(65534), Some(65534)).unwrap();
    let e = Segment::open(&name).unwrap_err();
    assert!(
        matches!(e, Error::ForeignOwner { owner: 65534, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("allow_foreign_owner"), "{e}");
    assert!(
        SegmentOptions::new()
            .allow_foreign_owner(true)
            .open(&name)
            .is_ok()
    );
    assert!(
        Segment::inspect(&name).unwrap().is_sound(),
        "inspection reads foreign segments"
    );
}

#[test]
fn a_stalled_lock_holder_makes_creation_time_out() {
    let (name, _g) = guarded("lockto");
    let seg = SegmentOptions::new()
        .lock_timeout(std::time::Duration::from_millis(50))
        .create(&name, 8192)
        .unwrap();
    // Another "process" (an independent open file description) holds the table lock.
    let holder = std::fs::File::open(shm_path(&name)).unwrap();
    rustix::fs::flock(&holder, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let before = read_raw(&name);
    let started = std::time::Instant::now();
    let e = Array::<u8>::create(&seg, "a", 1).unwrap_err();
    assert!(matches!(e, Error::LockTimeout { .. }), "{e:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(read_raw(&name), before);
    drop(holder);
    Array::<u8>::create(&seg, "a", 1).unwrap();
}

#[test]
fn unlink_on_drop_spares_a_replacement_under_the_same_name() {
    let (name, _g) = guarded("replaced");
    let first = SegmentOptions::new()
        .unlink_on_drop(true)
        .create(&name, 4096)
        .unwrap();
    // A peer (C++ and Go do this on EEXIST) unlinks the name and creates its own segment.
    Segment::unlink(&name).unwrap();
    let second = Segment::create(&name, 8192).unwrap();
    drop(first);
    assert!(
        shm_path(&name).exists(),
        "dropping the first handle removed the peer's segment"
    );
    assert_eq!(Segment::open(&name).unwrap().size(), 8192);
    drop(second);
}

#[test]
fn sizes_beyond_any_file_are_invalid_arguments() {
    for size in [u64::MAX, 1 << 63, (1 << 63) + 4096] {
        let (name, _g) = guarded("huge");
        let e = Segment::create(&name, size).unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument { what: "size", .. }),
            "{size}: {e}"
        );
        assert!(!shm_path(&name).exists(), "{size}: nothing was created");
    }
}

#[test]
fn a_read_only_view_sees_writes_and_refuses_its_own() {
    let (name, _g) = guarded("roview");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let hits = Array::<u64>::create(&seg, "hits", 4).unwrap();
    let view = seg.read_only_view().unwrap();
    assert!(view.is_read_only() && !seg.is_read_only());
    let seen = Array::<u64>::open(&view, "hits").unwrap();
    hits.fetch_add(2, 5, Ordering::AcqRel).unwrap();
    assert_eq!(seen.load(2, Ordering::Acquire).unwrap(), 5);
    assert_eq!(seen.get(2).unwrap(), 5);
    assert!(matches!(seen.set(0, 1), Err(Error::ReadOnly { .. })));
    assert!(matches!(
        Array::<u8>::create(&view, "more", 1),
        Err(Error::ReadOnly { .. })
    ));
    // Entries created through the writable handle appear in the view's table.
    Array::<u8>::create(&seg, "later", 1).unwrap();
    let names: Vec<_> = view
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["hits", "zeroipc.layouts", "later"]);
}

/// Plants `name` as the other implementations create segments: `ftruncate` to `size` and the
/// first `bytes` written, so everything after them is a hole with no memory behind it. The
/// header's `memory_size` says `size`.
fn plant_sparse(name: &str, bytes: &[u8], size: u64) -> ShmGuard {
    use std::io::Write;
    let guard = ShmGuard::new(name);
    let mut header = bytes.to_vec();
    header[16..24].copy_from_slice(&size.to_le_bytes());
    let mut f = std::fs::File::create_new(shm_path(name)).unwrap();
    f.write_all(&header).unwrap();
    f.set_len(size).unwrap();
    guard
}

fn allocated(name: &str) -> u64 {
    std::fs::metadata(shm_path(name)).unwrap().blocks() * 512
}

#[test]
fn d7_sparse_segments_are_reserved_at_open_and_a_full_file_system_is_an_error() {
    // A real segment's first 8 KiB: header, table and a 4-element array.
    let (src, _g) = guarded("sparse-src");
    let seg = Segment::create(&src, 1 << 20).unwrap();
    Array::<u64>::create(&seg, "a", 4)
        .unwrap()
        .copy_from_slice(0, &[1, 2, 3, 4])
        .unwrap();
    let bytes = read_raw(&src)[..8192].to_vec();
    drop(seg);

    // Opened writable or read-only, the holes get memory behind them, and nothing changes.
    for read_only in [false, true] {
        let name = unique_name("sparse");
        let _g = plant_sparse(&name, &bytes, 1 << 20);
        assert!(allocated(&name) < 1 << 20, "planted with holes");
        let seg = SegmentOptions::new()
            .read_only(read_only)
            .open(&name)
            .unwrap();
        assert!(
            allocated(&name) >= 1 << 20,
            "read_only {read_only}: reserved"
        );
        assert_eq!(
            Array::<u64>::open(&seg, "a").unwrap().to_vec(),
            [1, 2, 3, 4]
        );
        assert_eq!(&read_raw(&name)[..8192], &plant_header(&bytes, 1 << 20)[..]);
    }

    // A sparse segment larger than the whole file system: an error, not a SIGBUS later.
    let fs = rustix::fs::statvfs("/dev/shm").unwrap();
    assert!(
        fs.f_blocks > 0,
        "/dev/shm has no size limit here, so it cannot be full"
    );
    let huge = (fs.f_blocks + 1024) * fs.f_frsize;
    let name = unique_name("sparse-huge");
    let _g = plant_sparse(&name, &bytes, huge);
    for read_only in [false, true] {
        match SegmentOptions::new().read_only(read_only).open(&name) {
            Err(Error::Unbacked {
                unbacked,
                ref reason,
                ..
            }) => {
                assert!(unbacked > huge - 8192 - 4096, "{unbacked}");
                assert!(reason.contains("bytes free"), "{reason}");
            }
            other => panic!("read_only {read_only}: {:?}", other.map(|s| s.size())),
        }
    }
    // Inspecting reserves nothing, and says why it will not read the segment.
    match Segment::inspect(&name) {
        Err(Error::Unbacked { reason, .. }) => {
            assert!(reason.contains("bytes free"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(allocated(&name) < 1 << 20, "a failed open reserves nothing");
}

/// `bytes` with the header's `memory_size` set to `size`, as `plant_sparse` writes them.
fn plant_header(bytes: &[u8], size: u64) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[16..24].copy_from_slice(&size.to_le_bytes());
    b
}
