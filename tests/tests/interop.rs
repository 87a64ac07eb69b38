//! Cross-language tests (TESTPLAN F3, F4): Rust creates segments; real python3 + NumPy and
//! gcc-built C processes, using only the bindings zeroipc-codegen generates, read every value
//! and write back; Rust then sees exactly what they wrote.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use zeroipc::{Array, Segment};
use zeroipc_codegen::Builder;
use zeroipc_tests::types::{Padded64, SensorReading, Telemetry};
use zeroipc_tests::{describe, guarded, run, run_ok, workspace_root};

/// A scratch directory with freshly generated bindings, removed on drop.
struct Bindings(PathBuf);

impl Bindings {
    fn generate(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("zipc-interop-{}-{tag}", std::process::id()));
        let generated = Builder::new()
            .add::<Telemetry>()
            .add::<Padded64>()
            .add::<SensorReading>()
            .generate()
            .unwrap();
        generated.write_to(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Bindings {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn interop_file(name: &str) -> PathBuf {
    workspace_root().join("tests/interop").join(name)
}

/// A segment with 5 `Telemetry` records, 6 doubles and 4 ints, as the scripts expect them.
fn telemetry_segment(name: &str) -> Segment {
    let seg = Segment::create(name, 1 << 16).unwrap();
    let recs = Array::<Telemetry>::create(&seg, "telemetry", 5).unwrap();
    for i in 0..5 {
        recs.set(i, Telemetry::nth(i as u32)).unwrap();
    }
    let doubles = Array::<f64>::create(&seg, "doubles", 6).unwrap();
    doubles
        .copy_from_slice(0, &[-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
        .unwrap();
    let ints = Array::<i32>::create(&seg, "ints", 4).unwrap();
    ints.copy_from_slice(0, &[-3, 4, 11, 18]).unwrap();
    seg
}

/// Builds `tests/interop/<source>` into `exe` with gcc, strictly, against `bindings`.
fn build_c(bindings: &Bindings, source: &str, exe: &Path) {
    let mut gcc = Command::new("gcc");
    gcc.args([
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-Wpadded",
        "-pedantic",
        "-O1",
        "-I",
    ])
    .arg(&bindings.0)
    .arg("-o")
    .arg(exe)
    .arg(interop_file(source));
    run_ok(&mut gcc);
}

fn python(script: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(script)
        .args(args);
    cmd
}

#[test]
fn rust_writes_python_reads_and_writes_back() {
    let bindings = Bindings::generate("py");
    let (name, _g) = guarded("interop-py");
    let seg = telemetry_segment(&name);
    let out = run_ok(&mut python(
        &interop_file("check_telemetry.py"),
        &[&name, bindings.0.to_str().unwrap()],
    ));
    assert!(String::from_utf8_lossy(&out.stdout).contains("checked 5 records"));
    let recs = Array::<Telemetry>::open(&seg, "telemetry").unwrap();
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r, Telemetry::updated(i as u32, "py"), "record {i}");
    }
    assert_eq!(
        Array::<f64>::open(&seg, "doubles").unwrap().to_vec(),
        [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    );
    assert_eq!(
        Array::<i32>::open(&seg, "ints").unwrap().to_vec(),
        [-2, 5, 12, 19]
    );
}

#[test]
fn rust_writes_c_reads_and_writes_back() {
    let bindings = Bindings::generate("c");
    let (name, _g) = guarded("interop-c");
    let seg = telemetry_segment(&name);
    let exe = bindings.0.join("check_telemetry");
    build_c(&bindings, "check_telemetry.c", &exe);
    let out = run_ok(Command::new(&exe).arg(&name));
    assert!(String::from_utf8_lossy(&out.stdout).contains("checked 5 records"));
    let recs = Array::<Telemetry>::open(&seg, "telemetry").unwrap();
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r, Telemetry::updated(i as u32, "c"), "record {i}");
    }
    assert_eq!(
        Array::<f64>::open(&seg, "doubles").unwrap().to_vec(),
        [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    );
    assert_eq!(
        Array::<i32>::open(&seg, "ints").unwrap().to_vec(),
        [-6, 8, 22, 36]
    );
}

#[test]
fn the_header_compiles_as_cpp() {
    let bindings = Bindings::generate("cpp");
    let src = bindings.0.join("use.cpp");
    std::fs::write(
        &src,
        "#include \"shared_types.h\"\n\
         static_assert(sizeof(Telemetry) == 80, \"size\");\n\
         int main() { Telemetry t{}; t.position.x = 1.0f; return t.position.x == 1.0f ? 0 : 1; }\n",
    )
    .unwrap();
    let exe = bindings.0.join("use_cpp");
    let mut gxx = Command::new("g++");
    gxx.args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(&bindings.0)
        .arg("-o")
        .arg(&exe)
        .arg(&src);
    run_ok(&mut gxx);
    run_ok(&mut Command::new(&exe));
}

#[test]
fn f4_check_layout_rejects_a_dtype_without_padding() {
    let bindings = Bindings::generate("f4");
    let out = run_ok(&mut python(
        &interop_file("check_layout.py"),
        &[bindings.0.to_str().unwrap()],
    ));
    assert!(String::from_utf8_lossy(&out.stdout).contains("rejected 3 wrong dtypes"));
}

#[test]
fn python_refuses_a_wrong_element_type() {
    let bindings = Bindings::generate("wrong");
    let (name, _g) = guarded("interop-wrong");
    let _seg = telemetry_segment(&name);
    let script = "import sys; sys.path.insert(0, sys.argv[2]); import shared_types as st\n\
                  try:\n    st.open_array(sys.argv[1], 'telemetry', st.SensorReading)\n\
                  except ValueError as e:\n    print('refused:', e)\nelse:\n    sys.exit('accepted')";
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONDONTWRITEBYTECODE", "1")
        .args(["-c", script, &name])
        .arg(&bindings.0);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", describe(&cmd, &out));
    // The segment describes the array: the wrong type is named.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("holds Telemetry, not SensorReading"),
        "{}",
        describe(&cmd, &out)
    );
}

/// `SensorReading` as an older version of the bindings saw it: the same size, its first two
/// fields in the other order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, zeroipc::ShmLayout)]
#[shm(rename = "SensorReading")]
struct OldSensorReading {
    humidity: f32,
    temperature: f32,
    timestamp: u64,
}

/// A described segment holding `readings` (3 `SensorReading`s) and a queue `jobs`.
fn described_segment(name: &str) -> Segment {
    let seg = Segment::create(name, 1 << 16).unwrap();
    let a = Array::<SensorReading>::create(&seg, "readings", 3).unwrap();
    for i in 0..3 {
        a.set(i, SensorReading::nth(i)).unwrap();
    }
    zeroipc::Queue::<u32>::create(&seg, "jobs", 4).unwrap();
    // A kind without elements: its record has no layout.
    zeroipc::Mutex::create(&seg, "lock").unwrap();
    seg
}

fn generate_into(tag: &str, stale: bool) -> Bindings {
    let dir = std::env::temp_dir().join(format!("zipc-interop-{}-{tag}", std::process::id()));
    let builder = Builder::new();
    let builder = if stale {
        builder.add::<OldSensorReading>()
    } else {
        builder.add::<SensorReading>()
    };
    builder.generate().unwrap().write_to(&dir).unwrap();
    Bindings(dir)
}

#[test]
fn python_refuses_stale_bindings_after_a_field_reorder_and_opens_described_arrays() {
    let (stale, fresh) = (
        generate_into("stale-py", true),
        generate_into("fresh-py", false),
    );
    let (name, _g) = guarded("interop-stale-py");
    let seg = described_segment(&name);
    // Rust itself refuses the old type the same way (TESTPLAN F6).
    let e = Array::<OldSensorReading>::open(&seg, "readings").unwrap_err();
    println!("rust: {e}");
    assert!(
        e.to_string().ends_with(
            "holds `SensorReading`, not `SensorReading`: humidity: field 0 is `humidity` here, \
             `temperature` stored; `humidity` is stored at offset 4 (here 0)"
        ),
        "{e}"
    );
    let mut cmd = python(
        &interop_file("check_stale.py"),
        &[&name, stale.0.to_str().unwrap(), fresh.0.to_str().unwrap()],
    );
    let out = run_ok(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    for expected in [
        "holds SensorReading, not SensorReading: the bindings are stale (regenerate them): field \
         'humidity': field 0 is humidity here (offset 0), temperature stored; humidity is \
         stored at offset 4",
        "hand-written refused:",
        "is a queue, not an array",
        "entry 'lock' is a mutex, not an array",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected}: {}",
            describe(&cmd, &out)
        );
    }
}

#[test]
fn c_refuses_stale_bindings_after_a_field_reorder_and_says_why() {
    let stale = generate_into("stale-c", true);
    let (name, _g) = guarded("interop-stale-c");
    let _seg = described_segment(&name);
    let exe = stale.0.join("check_stale");
    build_c(&stale, "check_stale.c", &exe);
    let mut cmd = Command::new(&exe);
    cmd.arg(&name);
    let out = run_ok(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    for expected in [
        "readings: refused (status 6: the segment describes the array with another layout \
         (stale bindings?)): array `readings` holds `SensorReading`, not `SensorReading`: field \
         `humidity`: field 0 is `humidity` at offset 0 (4 bytes) here, `temperature` at offset \
         0 (4 bytes) stored",
        "jobs: refused (status 5",
        "entry `jobs` is a queue, not an array",
        "lock: refused (status 5",
        "entry `lock` is a mutex, not an array",
        "nope: status 2",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected}: {}",
            describe(&cmd, &out)
        );
    }
}
