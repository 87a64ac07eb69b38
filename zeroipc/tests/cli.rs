//! The `zeroipc` inspector: every command, `--json`, exit codes, read-only use (B6) and corrupt
//! input (A6).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;
use zeroipc::{Array, Queue, Segment, SegmentOptions};
use zeroipc_tests::{
    PlantedClaim, describe, guarded, plant_claim, plant_dead_record, read_raw, run, shm_path,
    unique_name, vectors_dir, write_raw,
};

fn zeroipc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zeroipc"))
}

fn cli(args: &[&str]) -> (Output, String) {
    let mut cmd = zeroipc();
    cmd.args(args);
    let out = run(&mut cmd);
    let text = describe(&cmd, &out);
    (out, text)
}

fn json_of(out: &Output, text: &str) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn sample(name: &str) -> Segment {
    let seg = SegmentOptions::new()
        .max_entries(8)
        .create(name, 8192)
        .unwrap();
    Array::<i32>::create(&seg, "ints", 3)
        .unwrap()
        .copy_from_slice(0, &[-1, 0, 7])
        .unwrap();
    Array::<f64>::create(&seg, "floats", 2)
        .unwrap()
        .copy_from_slice(0, &[0.5, -2.25])
        .unwrap();
    seg
}

#[test]
fn show_lists_header_and_entries() {
    let (name, _g) = guarded("show");
    let _seg = sample(&name);
    let (out, text) = cli(&["show", &name, "--json"]);
    assert!(out.status.success(), "{text}");
    let v = json_of(&out, &text);
    assert_eq!(v["header"]["max_entries"], 8);
    // The two arrays and the one entry that describes them.
    assert_eq!(v["header"]["entry_count"], 3);
    assert_eq!(v["entries"][0]["name"], "ints");
    assert_eq!(v["entries"][0]["offset"], 32 + 48 * 8);
    assert_eq!(v["entries"][1]["name"], "zeroipc.layouts");
    assert_eq!(v["entries"][2]["size"], 8 + 16);
    let ints = &v["entries"][0]["structure"];
    assert_eq!(
        (
            &ints["kind"],
            &ints["type"],
            &ints["elem_size"],
            &ints["len"]
        ),
        (
            &Value::from("array"),
            &Value::from("i32"),
            &Value::from(4),
            &Value::from(3)
        )
    );
    assert!(v["entries"][1].get("structure").is_none());
    let (out, text) = cli(&["show", &name]);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("floats") && stdout.contains("entries      3 of 8"),
        "{text}"
    );
    let floats = stdout.lines().find(|l| l.contains("floats")).unwrap();
    let columns: Vec<&str> = floats.split_whitespace().collect();
    assert_eq!(columns[4..], ["array", "f64", "8", "2", "2"], "{floats}");
}

#[test]
fn dump_prints_array_values() {
    let (name, _g) = guarded("dump");
    let _seg = sample(&name);
    let (out, text) = cli(&["dump", &name, "ints", "--dtype", "<i4", "--json"]);
    assert!(out.status.success(), "{text}");
    let v = json_of(&out, &text);
    assert_eq!(v["values"], serde_json::json!([-1, 0, 7]));
    assert_eq!(
        (&v["kind"], &v["described"]),
        (&Value::from("array"), &Value::from(true))
    );
    let (out, text) = cli(&["dump", &name, "floats", "--dtype", "f8"]);
    assert!(out.status.success(), "{text}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\t0.5\n1\t-2.25\n");
    // Described, no dtype is needed.
    let (out, text) = cli(&["dump", &name, "floats"]);
    assert!(out.status.success(), "{text}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\t0.5\n1\t-2.25\n");
    // Another type than the described one: a clear error and exit 1.
    let (out, text) = cli(&["dump", &name, "ints", "--dtype", "<f4"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds `i32`, not `f32`"),
        "{text}"
    );
    let (out, text) = cli(&["dump", &name, "nope", "--dtype", "<i4"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // An unsupported dtype is a usage error.
    let (out, text) = cli(&["dump", &name, "ints", "--dtype", ">i4"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
}

#[test]
fn dump_decodes_queues_and_stacks_by_field_without_popping() {
    use zeroipc_tests::types::SensorReading;
    let (name, _g) = guarded("dump-kinds");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<SensorReading>::create(&seg, "readings", 8).unwrap();
    for i in 0..4 {
        q.push(SensorReading::nth(i)).unwrap();
    }
    q.pop().unwrap();
    let s = zeroipc::Stack::<u16>::create(&seg, "depths", 4).unwrap();
    for v in [10, 20, 30] {
        s.push(v).unwrap();
    }
    let (out, text) = cli(&["dump", &name, "readings", "--json", "--start", "1"]);
    assert!(out.status.success(), "{text}");
    let v = json_of(&out, &text);
    assert_eq!(
        (&v["kind"], &v["type"]),
        (&Value::from("queue"), &Value::from("SensorReading"))
    );
    assert_eq!(
        (v["len"].as_u64(), v["capacity"].as_u64()),
        (Some(3), Some(8))
    );
    let stamps: Vec<u64> = v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["timestamp"].as_u64().unwrap())
        .collect();
    assert_eq!(
        stamps,
        [
            SensorReading::nth(2).timestamp,
            SensorReading::nth(3).timestamp
        ]
    );
    let (out, text) = cli(&["dump", &name, "depths"]);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0\t10\n1\t20\n2\t30\n"
    );
    assert_eq!((q.len(), s.len()), (3, 3), "nothing was popped");
    // Undescribed: the layout and kind are given, from a dtype or a schema file.
    let (bare, _g2) = guarded("dump-bare");
    let bare_seg = SegmentOptions::new()
        .descriptions(false)
        .create(&bare, 1 << 16)
        .unwrap();
    let bq = Queue::<SensorReading>::create(&bare_seg, "readings", 4).unwrap();
    bq.push(SensorReading::nth(7)).unwrap();
    let (out, text) = cli(&["dump", &bare, "readings"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not described"),
        "{text}"
    );
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/test_types.json");
    let (out, text) = cli(&[
        "dump",
        &bare,
        "readings",
        "--kind",
        "queue",
        "--schema",
        schema,
        "--type",
        "SensorReading",
        "--json",
    ]);
    assert!(out.status.success(), "{text}");
    let v = json_of(&out, &text);
    assert_eq!(v["described"], false);
    assert_eq!(
        v["values"][0]["timestamp"].as_u64(),
        Some(SensorReading::nth(7).timestamp)
    );
    let (out, text) = cli(&[
        "dump",
        &bare,
        "readings",
        "--kind",
        "queue",
        "--dtype",
        "[('t', '<f4'), ('h', '<f4'), ('ts', '<u8')]",
    ]);
    assert!(out.status.success(), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("0\t{\"t\":23.5,"),
        "{text}"
    );
    let (out, text) = cli(&[
        "dump", &bare, "readings", "--kind", "mutex", "--dtype", "u1",
    ]);
    assert_eq!(out.status.code(), Some(2), "{text}");
}

#[test]
fn dump_takes_a_range_and_streams_a_large_array_in_bounded_memory() {
    let (name, _g) = guarded("dump-range");
    let seg = Segment::create(&name, 9 << 20).unwrap();
    const N: usize = 1 << 20;
    let big = Array::<u64>::create(&seg, "big", N).unwrap();
    let values: Vec<u64> = (0..N as u64).map(|i| i * 3).collect();
    big.copy_from_slice(0, &values).unwrap();
    // A range, in both forms; the range is clamped at the end.
    let dump = |extra: &[&str]| {
        let mut args = vec!["dump", name.as_str(), "big", "--dtype", "<u8"];
        args.extend_from_slice(extra);
        cli(&args)
    };
    let (out, text) = dump(&["--start", "5", "--count", "3", "--json"]);
    assert!(out.status.success(), "{text}");
    let v = json_of(&out, &text);
    assert_eq!(v["values"], serde_json::json!([15, 18, 21]));
    assert_eq!(
        (v["start"].as_u64(), v["len"].as_u64()),
        (Some(5), Some(N as u64))
    );
    assert_eq!(v["capacity"].as_u64(), Some(N as u64));
    let last = (N - 1).to_string();
    let (out, text) = dump(&["--start", &last, "--count", "10"]);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{last}\t{}\n", (N as u64 - 1) * 3)
    );
    let (out, text) = dump(&["--start", &(N + 1).to_string()]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let (out, text) = dump(&["--start", &N.to_string(), "--json"]);
    assert!(out.status.success(), "{text}");
    assert_eq!(json_of(&out, &text)["values"], serde_json::json!([]));
    // The whole array as JSON: every value, in a child whose peak memory stays far below what
    // holding the values as a JSON tree would take (about 600 MiB for this array).
    let (status, stdout, peak_kib) =
        run_measured(zeroipc().args(["dump", &name, "big", "--dtype", "<u8", "--json"]));
    assert!(status == 0, "dump exited with wait status {status}");
    let v: Value = serde_json::from_slice(&stdout).unwrap();
    let got = v["values"].as_array().unwrap();
    assert_eq!(got.len(), N);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, x)| x.as_u64() == Some(i as u64 * 3))
    );
    assert!(
        peak_kib < 64 * 1024,
        "the dump peaked at {peak_kib} KiB (the array is 8 MiB)"
    );
}

/// Runs `cmd` with its stdout piped and read whole, and waits for exactly that child with
/// `wait4`: its wait status, its stdout, and its own peak resident set in KiB (not that of any
/// other child the parallel tests started).
// The child is reaped by `wait4`, which std does not know of.
#[allow(clippy::zombie_processes)]
fn run_measured(cmd: &mut Command) -> (i32, Vec<u8>, i64) {
    use std::io::Read;
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `pid` is our child, not waited for yet (std only waits when asked); `status` and
    // `usage` are writable storage for what `wait4` fills in.
    let waited = unsafe { libc::wait4(pid, &raw mut status, 0, usage.as_mut_ptr()) };
    assert_eq!(waited, pid, "wait4 failed");
    // SAFETY: filled in by the successful `wait4` above (and zeroed before).
    let usage = unsafe { usage.assume_init() };
    (status, stdout, usage.ru_maxrss)
}

#[test]
fn check_exits_1_and_lists_every_defect() {
    let (name, _g) = guarded("check");
    drop(sample(&name));
    let (out, text) = cli(&["check", &name, "--json"]);
    assert!(out.status.success(), "{text}");
    assert_eq!(json_of(&out, &text)["sound"], true);

    let mut bytes = read_raw(&name);
    bytes[16..24].copy_from_slice(&1u64.to_le_bytes()); // memory_size
    bytes[32 + 48 + 32..32 + 48 + 40].copy_from_slice(&3u64.to_le_bytes()); // entry 1 offset
    let bad = unique_name("checkbad");
    let _g2 = write_raw(&bad, &bytes);
    let (out, text) = cli(&["check", &bad, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let v = json_of(&out, &text);
    let defects: Vec<String> = v["defects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    assert!(
        defects.iter().any(|d| d.contains("memory_size")),
        "{defects:?}"
    );
    assert!(
        defects.iter().any(|d| d.contains("inside the table")),
        "{defects:?}"
    );
    assert!(
        defects.iter().any(|d| d.contains("not 8-aligned")),
        "{defects:?}"
    );
    let (out, text) = cli(&["check", &bad]);
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn check_structure_reports_a_stuck_slot_and_refuses_unknown_kinds() {
    let (name, _g) = guarded("checkq");
    let seg = Segment::create(&name, 8192).unwrap();
    let q = Queue::<u32>::create(&seg, "jobs", 4).unwrap();
    q.push(5).unwrap();
    let (out, text) = cli(&["check", &name, "--structure", "queue:jobs", "--json"]);
    assert!(out.status.success(), "{text}");
    let v = json_of(&out, &text);
    assert_eq!(v["structures"][0]["len"], 1, "{text}");
    assert_eq!(v["structures"][0]["sound"], true, "{text}");
    // A producer that moved `tail` and died before publishing.
    let at = seg.entry("jobs").unwrap().unwrap().offset;
    zeroipc_tests::poke(&name, at + 4, &2u32.to_le_bytes());
    let (out, text) = cli(&["check", &name, "--structure", "queue:jobs", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let v = json_of(&out, &text);
    assert_eq!(v["sound"], false, "{text}");
    let defect = &v["structures"][0]["defects"][0];
    assert_eq!(
        (&defect["slot"], &defect["in_flight"]),
        (&1.into(), &true.into())
    );
    let (out, text) = cli(&["check", &name, "--structure", "queue:jobs"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("slot 1: position `1` is claimed by a producer"),
        "{text}"
    );
    let (out, text) = cli(&["check", &name, "--structure", "ring:jobs"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("unknown kind `ring`"), "{text}");
    let (out, text) = cli(&["check", &name, "--structure", "stack:missing"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn show_lists_peers_and_check_reports_a_dead_one() {
    let (name, _g) = guarded("peers-cli");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u32>::create(&seg, "jobs", 4).unwrap();
    let (out, text) = cli(&["show", &name, "--json"]);
    assert!(out.status.success(), "{text}");
    let v = json_of(&out, &text);
    assert_eq!(v["peers"][0]["pid"], std::process::id(), "{text}");
    assert_eq!(v["peers"][0]["liveness"], "alive", "{text}");
    drop(q);
    // A process that recorded itself and died: its pid is gone (reaped).
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let pidns = zeroipc_tests::namespaces();
    let at = seg.entry("zeroipc.runtime").unwrap().unwrap().offset + 272;
    let owner = u64::from(pid) | 1 << 32;
    let mut record = owner.to_le_bytes().to_vec();
    record.extend_from_slice(&1u64.to_le_bytes());
    record.extend_from_slice(&pidns.to_le_bytes());
    record.extend_from_slice(&owner.to_le_bytes()); // sealed
    zeroipc_tests::poke(&name, at, &record);
    let (out, text) = cli(&["check", &name, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let v = json_of(&out, &text);
    assert_eq!(
        (v["peers"][0]["pid"].as_u64(), &v["peers"][0]["liveness"]),
        (Some(pid.into()), &"dead".into())
    );
    assert_eq!(v["sound"], false);
    assert_eq!(v["dead_peers"][0].as_u64(), Some(pid.into()), "{text}");
    let (out, text) = cli(&["check", &name]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "process {pid} is recorded as using the segment but is dead"
        )),
        "{text}"
    );
}

#[test]
fn ls_lists_zeroipc_segments_only() {
    let (name, _g) = guarded("ls");
    let _seg = sample(&name);
    let other = unique_name("lsother");
    let _g2 = write_raw(
        &other,
        b"hello, not a segment at all, but long enough to read a header",
    );
    let (out, text) = cli(&["ls", "--json"]);
    assert!(out.status.success(), "{text}");
    let v = json_of(&out, &text);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["segment"].as_str())
        .collect();
    assert!(names.contains(&name.as_str()), "{names:?}");
    assert!(!names.contains(&other.as_str()), "{names:?}");
    let mine = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["segment"] == name.as_str())
        .unwrap();
    assert_eq!(
        (mine["entry_count"].as_u64(), mine["size"].as_u64()),
        (Some(3), Some(8192))
    );
    let (out, text) = cli(&["ls"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(&name),
        "{text}"
    );
}

#[test]
fn rm_removes_segments_but_not_foreign_files() {
    let (name, _g) = guarded("rm");
    drop(sample(&name));
    let other = unique_name("rmother");
    let _g2 = write_raw(&other, &[0u8; 64]);
    let (out, text) = cli(&["rm", &other]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(shm_path(&other).exists());
    let (out, text) = cli(&["rm", &name, "--json"]);
    assert!(out.status.success(), "{text}");
    assert_eq!(json_of(&out, &text)["removed"], name.as_str());
    assert!(!shm_path(&name).exists());
    let (out, text) = cli(&["rm", &name]);
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn rm_without_force_removes_only_what_open_accepts() {
    // The magic, but a version `open` does not support: kept, and the reason is given.
    let v99 = unique_name("rmv99");
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&0x5A49_504Du32.to_le_bytes());
    bytes[4..8].copy_from_slice(&99u32.to_le_bytes());
    let _g = write_raw(&v99, &bytes);
    let (out, text) = cli(&["rm", &v99]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("version") && text.contains("--force"),
        "{text}"
    );
    assert!(shm_path(&v99).exists());
    let (out, text) = cli(&["rm", &v99, "--force"]);
    assert!(out.status.success(), "{text}");
    assert!(!shm_path(&v99).exists());
    // A sound segment owned by someone else: kept without --force.
    if !rustix::process::geteuid().is_root() {
        println!("the foreign-owner half needs root to chown a segment; not run");
        return;
    }
    let (name, _g2) = guarded("rmforeign");
    drop(sample(&name));
    std::os::unix::fs::chown(shm_path(&name), Some(65534), Some(65534)).unwrap();
    let (out, text) = cli(&["rm", &name]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("owned by uid `65534`"), "{text}");
    assert!(shm_path(&name).exists());
}

#[test]
fn usage_errors_exit_2_and_missing_segments_exit_1() {
    let (out, text) = cli(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let (out, text) = cli(&["dump", "/x", "y", "--dtype", "<u4", "--schema", "s.json"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let (out, text) = cli(&["show", &unique_name("absent")]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "{text}"
    );
    // An invalid segment name is a usage error too, for every command.
    for cmd in ["check", "show", "rm"] {
        let (out, text) = cli(&[cmd, "/a/b"]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {text}");
    }
    let (out, text) = cli(&["show", "evil\u{202E}name"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let (out, text) = cli(&["--help"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Exit codes"),
        "{text}"
    );
}

#[test]
fn b6_read_only_commands_work_on_a_0400_segment_and_change_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let (name, _g) = guarded("ro");
    drop(sample(&name));
    std::fs::set_permissions(shm_path(&name), std::fs::Permissions::from_mode(0o400)).unwrap();
    let before = read_raw(&name);
    for args in [
        vec!["show", name.as_str()],
        vec!["check", name.as_str()],
        vec!["dump", name.as_str(), "ints", "--dtype", "<i4"],
        vec!["ls"],
    ] {
        let (out, text) = cli(&args);
        assert!(out.status.success(), "{text}");
    }
    assert_eq!(read_raw(&name), before);
}

#[test]
fn a6_check_on_corrupt_input_exits_0_or_1_with_valid_json() {
    let Some(dir) = vectors_dir() else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "golden vectors not found"
        );
        return;
    };
    let seed = std::fs::read(dir.join("cpp_arrays.bin")).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for case in 0..60 {
        let mut bytes = seed.clone();
        // Mutate header and table bytes; sometimes truncate.
        for _ in 0..1 + case % 6 {
            let at = (next() % 1024) as usize;
            bytes[at] = next() as u8;
        }
        if case % 10 == 9 {
            bytes.truncate((next() % 900) as usize);
        }
        let name = unique_name("a6");
        let _g = write_raw(&name, &bytes);
        for cmd in ["check", "show"] {
            let (out, text) = cli(&[cmd, &name, "--json"]);
            let code = out.status.code();
            assert!(matches!(code, Some(0 | 1)), "case {case}: {text}");
            if cmd == "check" || code == Some(0) {
                json_of(&out, &text);
            }
        }
    }
}

#[test]
fn repair_undoes_a_dead_producers_claim_that_check_attributes_to_it() {
    let (name, _g) = guarded("repair");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let q = Queue::<u64>::create(&seg, "jobs", 4).unwrap();
    q.push(10).unwrap();
    // A producer (record 5) that claimed position 1 and died before publishing it: `tail`
    // moved to 2, seq[1] still reads 1, and its lane holds the claim (FORMAT.md appendix R).
    let pid = plant_dead_record(&name, &seg, 5);
    let queue_at = seg.entry("jobs").unwrap().unwrap().offset;
    zeroipc_tests::poke(&name, queue_at + 4, &2u32.to_le_bytes());
    let claim = PlantedClaim {
        offset: queue_at,
        stack: false,
        pop: false,
        held: true,
        pos: 1,
        count: 1,
    };
    plant_claim(&name, &seg, 5, 0, claim);

    let (out, text) = cli(&["check", &name, "--structure", "queue:jobs", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let v = json_of(&out, &text);
    let defect = &v["structures"][0]["defects"][0];
    assert_eq!(defect["slot"], 1, "{text}");
    assert_eq!(defect["holder"]["pid"], pid, "{text}");
    assert_eq!(defect["holder"]["liveness"], "dead", "{text}");
    let (_, text) = cli(&["check", &name, "--structure", "queue:jobs"]);
    assert!(
        text.contains(&format!("claimed by pid {pid}, which is dead")),
        "{text}"
    );

    // Behind an item still to pop, the claim waits (exit 1: left for later).
    let (out, text) = cli(&["repair", &name, "--structure", "queue:jobs", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(
        json_of(&out, &text)["structures"][0]["pending"],
        1,
        "{text}"
    );
    assert_eq!(q.pop().unwrap(), Some(10));
    let (out, text) = cli(&["repair", &name, "--structure", "queue:jobs", "--json"]);
    assert!(out.status.success(), "{text}");
    let r = &json_of(&out, &text)["structures"][0];
    assert_eq!(
        (&r["undone"], &r["lost"], &r["pending"]),
        (&1.into(), &1.into(), &0.into())
    );
    let (out, text) = cli(&["check", &name, "--structure", "queue:jobs"]);
    assert!(
        out.status.success(),
        "sound again, the dead record gone: {text}"
    );
    for v in 0..8 {
        q.push(v).unwrap();
        assert_eq!(q.pop().unwrap(), Some(v));
    }
    let (out, text) = cli(&["repair", &name, "--structure", "array:jobs"]);
    assert_eq!(out.status.code(), Some(1), "not an array: {text}");
}

#[test]
fn gc_removes_exactly_the_segments_whose_every_recorded_process_is_dead() {
    let prefix = format!("zipc-gc-{}-", std::process::id());
    let name = |tag: &str| format!("/{prefix}{tag}");
    let _guards: Vec<_> = ["stale", "live", "unrecorded", "junk"]
        .iter()
        .map(|t| zeroipc_tests::ShmGuard::new(&name(t)))
        .collect();
    // Stale: its one recorded process is dead.
    let stale = Segment::create(&name("stale"), 1 << 16).unwrap();
    drop(Queue::<u64>::create(&stale, "q", 4).unwrap());
    plant_dead_record(&name("stale"), &stale, 0);
    drop(stale);
    // In use: this process holds a queue on it.
    let live = Segment::create(&name("live"), 1 << 16).unwrap();
    let _q = Queue::<u64>::create(&live, "q", 4).unwrap();
    // Unrecorded: no process ever recorded itself.
    let unrecorded = Segment::create(&name("unrecorded"), 1 << 16).unwrap();
    Array::<u64>::create(&unrecorded, "a", 4).unwrap();
    // Not ZeroIPC at all.
    std::fs::write(shm_path(&name("junk")), b"not a segment").unwrap();

    let listed = |args: &[&str]| {
        let mut all = vec!["gc", "--json", "--prefix", &prefix];
        all.extend_from_slice(args);
        let (out, text) = cli(&all);
        assert!(out.status.success(), "{text}");
        let v = json_of(&out, &text);
        let mut rows: Vec<(String, String, bool)> = v["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let removed = s.get("would_remove").or(s.get("removed")).unwrap();
                (
                    s["segment"].as_str().unwrap().to_owned(),
                    s["staleness"].as_str().unwrap().to_owned(),
                    removed.as_bool().unwrap(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    let row =
        |tag: &str, staleness: &str, removed: bool| (name(tag), staleness.to_owned(), removed);
    assert_eq!(
        listed(&["--dry-run"]),
        [
            row("live", "in-use", false),
            row("stale", "stale", true),
            row("unrecorded", "unrecorded", false),
        ]
    );
    assert_eq!(
        listed(&["--dry-run", "--unrecorded"])[2],
        row("unrecorded", "unrecorded", true)
    );
    // The dry runs changed nothing; the real one removes the stale segment only.
    assert!(shm_path(&name("stale")).exists());
    assert_eq!(
        listed(&[]),
        [
            row("live", "in-use", false),
            row("stale", "stale", true),
            row("unrecorded", "unrecorded", false),
        ]
    );
    assert!(!shm_path(&name("stale")).exists());
    for kept in ["live", "unrecorded", "junk"] {
        assert!(shm_path(&name(kept)).exists(), "{kept}");
    }
}

#[test]
fn check_shows_each_primitives_state_by_name_and_its_holder() {
    let (name, _g) = guarded("cli-sync");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let m = zeroipc::Mutex::create(&seg, "m").unwrap();
    let sem = zeroipc::Semaphore::create(&seg, "s", 2, 5).unwrap();
    let b = zeroipc::Barrier::create(&seg, "b", 3).unwrap();
    zeroipc::Latch::create(&seg, "l", 4)
        .unwrap()
        .count_down(1)
        .unwrap();
    zeroipc::Once::create(&seg, "o")
        .unwrap()
        .call_once(|| ())
        .unwrap();
    let sig = zeroipc::Signal::<f64>::create(&seg, "sig", 1.5).unwrap();
    sig.set(2.5).unwrap();
    assert!(sem.try_acquire().unwrap());
    assert!(b.wait_timeout(std::time::Duration::ZERO).is_err());
    let _guard = m.lock().unwrap();
    let args = [
        "check",
        &name,
        "--json",
        "--structure",
        "mutex:m",
        "--structure",
        "semaphore:s",
        "--structure",
        "barrier:b",
        "--structure",
        "latch:l",
        "--structure",
        "once:o",
        "--structure",
        "signal:sig",
    ];
    let (out, text) = cli(&args);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let v = json_of(&out, &text);
    let state = |i: usize, key: &str| v["structures"][i]["state"][key].as_i64();
    assert_eq!(state(0, "locked"), Some(1), "{text}");
    assert_eq!(state(0, "count"), Some(0));
    assert_eq!(v["structures"][0]["holders"][0]["pid"], std::process::id());
    assert_eq!(v["structures"][0]["holders"][0]["liveness"], "alive");
    assert_eq!(
        (state(1, "count"), state(1, "max_count")),
        (Some(1), Some(5))
    );
    assert_eq!(
        (
            state(2, "arrived"),
            state(2, "generation"),
            state(2, "num_participants")
        ),
        (Some(0), Some(0), Some(3))
    );
    assert_eq!(
        (state(3, "count"), state(3, "initial_count")),
        (Some(3), Some(4))
    );
    assert_eq!(state(4, "state"), Some(2));
    assert_eq!(
        (
            state(5, "version"),
            state(5, "value_bytes"),
            state(5, "locked")
        ),
        (Some(1), Some(8), Some(0))
    );
    assert!(v["structures"][1]["holders"].as_array().unwrap().is_empty());
    // The same in words.
    let words: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
    let (out, text) = cli(&words);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("count 0, waiting 0, max_count 1, locked 1"),
        "{text}"
    );
    assert!(
        stdout.contains(&format!("held by pid {} (alive)", std::process::id())),
        "{text}"
    );
}

/// Validates `json` (the stdout of `zeroipc COMMAND ... --json`) against
/// `zeroipc/cli-schemas/COMMAND.json` with Python's `jsonschema`; the first error, if any.
fn schema_error(command: &str, json: &[u8]) -> Option<String> {
    use std::io::Write;
    let dir = zeroipc_tests::workspace_root().join("zeroipc/cli-schemas");
    let mut child = std::process::Command::new("python3")
        .arg(dir.join("validate.py"))
        .arg(&dir)
        .arg(command)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (CI installs jsonschema from tests/requirements.txt)");
    child.stdin.take().unwrap().write_all(json).unwrap();
    let out = child.wait_with_output().unwrap();
    (!out.status.success()).then(|| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn g1_the_json_of_every_command_matches_its_schema_and_diagnostics_go_to_stderr() {
    let (name, _g) = guarded("g1");
    let seg = Segment::create(&name, 1 << 20).unwrap();
    Array::<f64>::create(&seg, "floats", 3)
        .unwrap()
        .copy_from_slice(0, &[0.5, f64::NAN, -2.0])
        .unwrap();
    let q = Queue::<u64>::create(&seg, "q", 8).unwrap();
    q.push(7).unwrap();
    let m = zeroipc::Mutex::create(&seg, "m").unwrap();
    let _held = m.lock().unwrap();
    zeroipc::Signal::<u32>::create(&seg, "sig", 3).unwrap();
    let (doomed, _g2) = guarded("g1-rm");
    drop(Segment::create(&doomed, 1 << 16).unwrap());
    let prefix = name.trim_start_matches('/').to_owned();
    let commands: Vec<(&str, Vec<&str>)> = vec![
        ("ls", vec!["ls"]),
        ("show", vec!["show", &name]),
        ("dump", vec!["dump", &name, "floats", "--dtype", "<f8"]),
        (
            "check",
            vec![
                "check",
                &name,
                "--structure",
                "queue:q",
                "--structure",
                "mutex:m",
                "--structure",
                "signal:sig",
            ],
        ),
        ("repair", vec!["repair", &name, "--structure", "queue:q"]),
        (
            "gc",
            vec!["gc", "--dry-run", "--unrecorded", "--prefix", &prefix],
        ),
        ("watch", vec!["watch", &name, "--once"]),
        ("rm", vec!["rm", &doomed]),
    ];
    for (command, mut args) in commands {
        args.push("--json");
        let (out, text) = cli(&args);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{command}: exit {:?}: {text}",
            out.status.code()
        );
        if let Some(error) = schema_error(command, &out.stdout) {
            panic!("{command}: the output does not match its schema: {error}\n{text}");
        }
        // Diagnostics only on stderr: stdout is one JSON document.
        json_of(&out, &text);
    }
    // The schemas are not vacuous: a document missing a required field fails.
    assert!(schema_error("show", b"{}").is_some());
    assert!(schema_error("rm", br#"{"removed": 3}"#).is_some());
    // A usage error: exit 2, nothing on stdout, the reason on stderr.
    let (out, text) = cli(&["dump", &name, "floats", "--dtype", ">f8", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(out.stdout.is_empty() && !out.stderr.is_empty(), "{text}");
}

#[test]
fn watch_shows_every_entry_with_lengths_states_and_array_statistics() {
    let (name, _g) = guarded("watch");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    Array::<i16>::create(&seg, "levels", 4)
        .unwrap()
        .copy_from_slice(0, &[-4, 10, 2, 0])
        .unwrap();
    let q = Queue::<u32>::create(&seg, "jobs", 8).unwrap();
    q.push(1).unwrap();
    q.push(2).unwrap();
    zeroipc::Semaphore::create(&seg, "slots", 3, 5).unwrap();
    let sig = zeroipc::Signal::<[i32; 2]>::create(&seg, "target", [4, -5]).unwrap();
    sig.set([6, -7]).unwrap();
    let (out, text) = cli(&["watch", &name, "--once", "--json"]);
    assert!(out.status.success(), "{text}");
    let v = json_of(&out, &text);
    let entry = |n: &str| {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no {n}: {text}"))
    };
    let levels = entry("levels");
    assert_eq!(levels["stats"]["min"], -4.0);
    assert_eq!(levels["stats"]["max"], 10.0);
    assert_eq!(levels["stats"]["mean"], 2.0);
    assert_eq!(
        (&levels["kind"], &levels["len"]),
        (&Value::from("array"), &Value::from(4))
    );
    let jobs = entry("jobs");
    assert_eq!(
        (&jobs["len"], &jobs["capacity"]),
        (&Value::from(2), &Value::from(8))
    );
    assert_eq!(entry("slots")["state"]["count"], 3);
    assert!(entry("zeroipc.layouts")["kind"].is_null());
    let target = entry("target");
    assert_eq!(target["value"], serde_json::json!([6, -7]));
    assert_eq!(target["state"]["version"], 1);
    let (out, text) = cli(&["dump", &name, "target", "--json"]);
    assert!(out.status.success(), "{text}");
    assert_eq!(json_of(&out, &text)["values"], serde_json::json!([[6, -7]]));
    let (out, text) = cli(&["watch", &name, "--once"]);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("levels")).unwrap();
    assert!(line.contains("min -4 mean 2.000000 max 10"), "{line}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("slots") && l.contains("count 3")),
        "{stdout}"
    );
}

#[test]
fn check_audits_every_described_structure_and_reports_one_that_fails() {
    let (src, _gs) = guarded("check-described-src");
    {
        let seg = Segment::create(&src, 1 << 16).unwrap();
        Queue::<u32>::create(&seg, "q", 4).unwrap();
        Array::<u8>::create(&seg, "a", 3).unwrap();
    }
    let (out, text) = cli(&["check", &src]);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("queue `q`") && stdout.contains("array `a`"),
        "{text}"
    );
    // The queue's capacity word (+8) made 3, not a power of two: the table is sound, the
    // structure is not, and `check` says so without failing itself.
    let mut bytes = read_raw(&src);
    let at = {
        let seg = Segment::open(&src).unwrap();
        seg.entry("q").unwrap().unwrap().offset as usize + 8
    };
    bytes[at..at + 4].copy_from_slice(&3u32.to_le_bytes());
    let name = unique_name("check-described");
    let _g = write_raw(&name, &bytes);
    let (out, text) = cli(&["check", &name, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let v = json_of(&out, &text);
    assert_eq!(v["sound"], false);
    assert!(
        v["defects"].as_array().unwrap().iter().any(|d| d
            .as_str()
            .is_some_and(|d| d.starts_with("described queue `q`"))),
        "{text}"
    );
}
