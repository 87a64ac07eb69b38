//! The zeroipc demo, end to end:
//!
//! 1. Rust creates a segment holding an `Array<Reading>` of derived records;
//! 2. the bindings `shared_types.py` and `shared_types.h` were generated from the same Rust type
//!    by this crate's `build.rs`;
//! 3. a Python process (NumPy only) and a C process (built here with gcc) read the records
//!    zero-copy, print them and write back;
//! 4. Rust prints what they wrote.
//!
//! ```text
//! cargo run -p zeroipc-demo             # or, to keep the segment for `zeroipc show`:
//! cargo run -p zeroipc-demo -- --keep
//! ```
//!
//! Needs python3 (NumPy is installed with pip when missing) and gcc. The segment (unless
//! `--keep` is given) and the temporary directory are removed at the end, also on failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use zeroipc::{Array, DynArray, SegmentOptions};
use zeroipc_demo_types::Reading;

const PYTHON_BINDINGS: &str = include_str!(concat!(env!("OUT_DIR"), "/shared_types.py"));
const C_BINDINGS: &str = include_str!(concat!(env!("OUT_DIR"), "/shared_types.h"));
const PYTHON_READER: &str = include_str!("../reader.py");
const C_READER: &str = include_str!("../reader.c");

type DemoResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command, what: &str) -> DemoResult {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    if !status.success() {
        return Err(format!("{what} failed: {status}").into());
    }
    Ok(())
}

fn ensure_numpy() -> DemoResult {
    let has_numpy = |_: ()| {
        Command::new("python3")
            .args(["-c", "import numpy"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_numpy(()) {
        return Ok(());
    }
    println!("rust: NumPy is missing; installing it with pip");
    run(
        Command::new("python3").args(["-m", "pip", "install", "--quiet", "numpy"]),
        "pip install numpy",
    )?;
    if has_numpy(()) {
        Ok(())
    } else {
        Err("NumPy is still not importable".into())
    }
}

fn write_files(dir: &Path) -> DemoResult {
    std::fs::create_dir_all(dir)?;
    for (name, text) in [
        ("shared_types.py", PYTHON_BINDINGS),
        ("shared_types.h", C_BINDINGS),
        ("reader.py", PYTHON_READER),
        ("reader.c", C_READER),
    ] {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

fn main() -> DemoResult {
    ensure_numpy()?;
    let keep = std::env::args().skip(1).any(|a| a == "--keep");
    let pid = std::process::id();
    let name = format!("/zeroipc-demo-{pid}");
    let scratch = Scratch(std::env::temp_dir().join(format!("zeroipc-demo-{pid}")));
    write_files(&scratch.0)?;

    let seg = SegmentOptions::new()
        .max_entries(8)
        .unlink_on_drop(!keep)
        .create(&name, 1 << 16)?;
    let readings = Array::<Reading>::create(&seg, "readings", 4)?;
    for i in 0..readings.len() {
        let f = i as f32;
        readings.set(
            i,
            Reading {
                station: 100 + i as u32,
                temperature: 18.5 + 1.25 * f,
                humidity: 55.4 - 3.3 * f,
                acknowledged: 0,
                timestamp: 1_767_225_600_000 + 60_000 * i as u64,
                wind: [2.0 + f, -1.0, 0.25],
                _pad: [0; 4],
            },
        )?;
    }
    println!(
        "rust: wrote {} readings to {name} (Reading is {} bytes)",
        readings.len(),
        size_of::<Reading>()
    );

    run(
        Command::new("python3")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(&scratch.0)
            .args(["reader.py", &name]),
        "the Python reader",
    )?;

    let exe = scratch.0.join("reader");
    run(
        Command::new("gcc")
            .current_dir(&scratch.0)
            .args([
                "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wpadded", "-O2", "-o",
            ])
            .arg(&exe)
            .arg("reader.c"),
        "gcc",
    )?;
    run(Command::new(&exe).arg(&name), "the C reader")?;

    println!("rust: after Python and C:");
    for r in readings.iter() {
        println!(
            "rust:   station {}: acknowledged {} times, humidity {:.1} %, wind up {:.2}",
            r.station, r.acknowledged, r.humidity, r.wind[2]
        );
    }
    if readings
        .iter()
        .any(|r| r.acknowledged != 2 || r.wind[2] != 0.0 || r.humidity.fract() != 0.0)
    {
        return Err("the Python and C updates did not all arrive".into());
    }
    // The segment describes its array: a reader that knows nothing of `Reading` decodes it.
    let described = DynArray::open(&seg, "readings")?;
    println!(
        "rust: the segment describes `readings` as {} x `{}`; element 0 decoded from that alone:",
        described.len(),
        described.layout().type_name()
    );
    println!("rust:   {}", described.get(0)?);
    if keep {
        println!("rust: every reading was acknowledged by Python and C; {name} is kept");
    } else {
        println!("rust: every reading was acknowledged by Python and C; {name} is removed on exit");
    }
    Ok(())
}
