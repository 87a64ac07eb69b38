//! Support for zeroipc's workspace-level tests: unique segment names, a guard that removes only
//! what a test created, raw segment files for corruption tests, process runners that show their
//! output on failure, the golden-vector location, and the fuzz body shared by the proptest and
//! `cargo fuzz` targets.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use zeroipc::{Array, Segment, StructureKind};

pub mod types;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A segment name unique to this process and call: `/zipc-test-<pid>-<n>-<tag>`.
pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("/zipc-test-{}-{n}-{tag}", std::process::id())
}

/// The `/dev/shm` path of a segment name.
pub fn shm_path(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/{}", name.trim_start_matches('/')))
}

/// Removes a `/dev/shm` object on drop, also when the test fails. Create one only for names the
/// test itself created: it never touches anything else.
#[derive(Debug)]
pub struct ShmGuard {
    name: String,
}

impl ShmGuard {
    /// Guards `name`, which the caller has created or is about to create.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
        }
    }

    /// The guarded name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ShmGuard {
    fn drop(&mut self) {
        let path = shm_path(&self.name);
        // symlink_metadata: a planted symlink is removed itself, never its target.
        if std::fs::symlink_metadata(&path).is_ok() {
            if path.is_dir() && !path.is_symlink() {
                let _ = std::fs::remove_dir(&path);
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// A fresh unique name with its guard.
pub fn guarded(tag: &str) -> (String, ShmGuard) {
    let name = unique_name(tag);
    let guard = ShmGuard::new(&name);
    (name, guard)
}

/// Writes `bytes` as a new `/dev/shm` object (mode 0600), bypassing the library: how tests
/// plant corrupt or foreign segments.
///
/// # Panics
///
/// When the object exists already or cannot be written.
pub fn write_raw(name: &str, bytes: &[u8]) -> ShmGuard {
    use std::os::unix::fs::OpenOptionsExt;
    let guard = ShmGuard::new(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(shm_path(name))
        .unwrap_or_else(|e| panic!("cannot create raw segment {name}: {e}"));
    file.write_all(bytes)
        .unwrap_or_else(|e| panic!("cannot write raw segment {name}: {e}"));
    guard
}

/// Overwrites bytes of a `/dev/shm` object in place, as a peer or an attacker could.
///
/// # Panics
///
/// When the object cannot be written.
pub fn poke(name: &str, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(name))
        .unwrap_or_else(|e| panic!("cannot open segment {name}: {e}"));
    file.write_all_at(bytes, offset)
        .unwrap_or_else(|e| panic!("cannot write segment {name}: {e}"));
}

/// Reads a `/dev/shm` object's bytes.
///
/// # Panics
///
/// When it cannot be read.
pub fn read_raw(name: &str) -> Vec<u8> {
    std::fs::read(shm_path(name)).unwrap_or_else(|e| panic!("cannot read segment {name}: {e}"))
}

/// Runs a command and returns its output, panicking with everything it printed when it fails.
///
/// # Panics
///
/// When the command cannot start or exits unsuccessfully.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(out.status.success(), "{}", describe(cmd, &out));
    out
}

/// Runs a command to completion and returns its output.
///
/// # Panics
///
/// When the command cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// A command and everything it printed, for assertion messages.
pub fn describe(cmd: &Command, out: &Output) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "command {cmd:?} exited with {}", out.status);
    let _ = writeln!(
        s,
        "--- stdout ---\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let _ = writeln!(
        s,
        "--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

/// Where the golden vectors live: `$ZEROIPC_VECTORS`, else `../shared/vectors` beside the
/// workspace root. `None` when the directory (with its `MANIFEST.json`) is missing.
pub fn vectors_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("ZEROIPC_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("../shared/vectors"),
    };
    dir.join("MANIFEST.json").is_file().then_some(dir)
}

/// The workspace root (the parent of this package's directory).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
}

/// What one fuzz run saw, for the fuzz test's statistics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FuzzOutcome {
    /// The segment opened with a valid header.
    pub opened: bool,
    /// Entries listed.
    pub entries: usize,
    /// Typed array opens that succeeded (an entry counts once per element type that fits).
    pub arrays_opened: usize,
    /// Typed opens of the other kinds (queue, stack, ...) that succeeded.
    pub containers_opened: usize,
}

/// The fuzz body: maps `bytes` as a segment under `name` (which must not exist), then opens,
/// lists, checks and typed-opens every entry as arrays of several element types, reading every
/// element. Any panic, crash or hang inside the library is a bug; every outcome must be `Ok` or
/// `Err`. The object is removed before returning.
///
/// # Panics
///
/// Only when the raw file cannot be written (a test environment problem).
pub fn fuzz_open(name: &str, bytes: &[u8]) -> FuzzOutcome {
    let _guard = write_raw(name, bytes);
    fuzz_body(
        || Segment::inspect(name),
        |read_only| Segment::options().read_only(read_only).open(name),
    )
}

/// The same body as [`fuzz_open`] over a private in-memory copy of `bytes` (a memfd): no file in
/// `/dev/shm`, so it is much cheaper per input and leaves nothing behind even if a run dies.
pub fn fuzz_memory(bytes: &[u8]) -> FuzzOutcome {
    // The read-only pass must see what the read-write pass left, as it does with a file.
    let mut writable: Option<Segment> = None;
    fuzz_body(
        || Segment::inspect_bytes(bytes),
        |read_only| match (read_only, &writable) {
            (true, Some(seg)) => seg.read_only_view(),
            _ => {
                let seg = Segment::options().read_only(read_only).open_bytes(bytes);
                if let (false, Ok(seg)) = (read_only, &seg) {
                    writable = Some(seg.clone());
                }
                seg
            }
        },
    )
}

fn fuzz_body(
    inspect: impl Fn() -> zeroipc::Result<zeroipc::Report>,
    mut open: impl FnMut(bool) -> zeroipc::Result<Segment>,
) -> FuzzOutcome {
    let mut outcome = FuzzOutcome::default();
    let report = inspect();
    if let Ok(report) = &report {
        let _ = report.defects.iter().map(ToString::to_string).count();
    }
    for read_only in [false, true] {
        let seg = match open(read_only) {
            Ok(seg) => seg,
            Err(e) => {
                let _ = e.to_string();
                continue;
            }
        };
        outcome.opened = true;
        let _ = seg.check();
        let _ = seg.header();
        let Ok(entries) = seg.entries() else { continue };
        outcome.entries = entries.len();
        for entry in &entries {
            for kind in zeroipc::__fuzz::exercise_entry(&seg, &entry.name) {
                if kind == StructureKind::Array {
                    outcome.arrays_opened += 1;
                } else {
                    outcome.containers_opened += 1;
                }
            }
        }
        // Creating must also be safe on arbitrary tables.
        if let Ok(a) = Array::<u32>::create(&seg, "fuzz-new", 3) {
            let _ = a.set(2, 7);
        }
    }
    outcome
}

/// This process's `pidns` word as a runtime-entry record stores it (FORMAT.md appendix R): the
/// pid namespace's inode XOR the time namespace's inode rotated left by 32 bits.
pub fn namespaces() -> u64 {
    use std::os::unix::fs::MetadataExt;
    let pid = std::fs::metadata("/proc/self/ns/pid")
        .unwrap_or_else(|e| panic!("no pid namespace: {e}"))
        .ino();
    let time = std::fs::metadata("/proc/self/ns/time").map_or(0, |m| m.ino());
    pid ^ time.rotate_left(32)
}

/// Plants, in record `i` of `seg`'s runtime entry (FORMAT.md appendix R), a sealed record of a
/// process that no longer exists; returns its pid.
pub fn plant_dead_record(name: &str, seg: &zeroipc::Segment, i: u64) -> u32 {
    let mut gone = Command::new("true")
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `true`: {e}"));
    let pid = gone.id();
    let _ = gone.wait();
    let pidns = namespaces();
    let at = runtime_offset(seg) + 272 + 32 * i;
    let owner = u64::from(pid) | 3 << 32;
    let mut record = owner.to_le_bytes().to_vec();
    record.extend_from_slice(&1u64.to_le_bytes());
    record.extend_from_slice(&pidns.to_le_bytes());
    record.extend_from_slice(&owner.to_le_bytes()); // sealed
    poke(name, at, &record);
    pid
}

/// A claim as a lane holds it (FORMAT.md appendix R): on the structure entry at `offset`,
/// `stack` or queue, `pop` or push, `held` or only intended, of `count` positions from `pos`.
#[derive(Debug, Clone, Copy)]
pub struct PlantedClaim {
    /// Segment offset of the structure's entry.
    pub offset: u64,
    /// A stack (else a queue).
    pub stack: bool,
    /// A pop (else a push).
    pub pop: bool,
    /// Whether the claim succeeded (else only intended).
    pub held: bool,
    /// First position or slot.
    pub pos: u32,
    /// Number of positions.
    pub count: u32,
}

/// Plants `claim` in lane `lane` of record `record` of `seg`'s runtime entry.
pub fn plant_claim(
    name: &str,
    seg: &zeroipc::Segment,
    record: u64,
    lane: u64,
    claim: PlantedClaim,
) {
    let runtime_at = runtime_offset(seg);
    // Lanes start at the first multiple of 64 from entry offset + 2344, 64 bytes each.
    let at = (runtime_at + 2344).next_multiple_of(64) + 64 * (record * 8 + lane);
    let what = claim.offset << 8
        | u64::from(claim.held) << 4
        | (1 + u64::from(claim.stack)) << 2
        | (1 + u64::from(claim.pop));
    let span = u64::from(claim.pos) | u64::from(claim.count) << 32;
    let mut bytes = what.to_le_bytes().to_vec();
    bytes.extend_from_slice(&span.to_le_bytes());
    poke(name, at, &bytes);
}

/// The segment offset of `seg`'s runtime entry.
fn runtime_offset(seg: &zeroipc::Segment) -> u64 {
    match seg.entry("zeroipc.runtime") {
        Ok(Some(entry)) => entry.offset,
        other => panic!("no runtime entry: {other:?}"),
    }
}

/// The first line `child` prints on its piped stdout, without the newline.
pub fn first_line(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    let Some(out) = child.stdout.as_mut() else {
        panic!("the child's stdout is not piped");
    };
    std::io::BufReader::new(out)
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("cannot read the child's output: {e}"));
    line.trim_end().to_owned()
}
