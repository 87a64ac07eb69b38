//! The `zeroipc-codegen` binary: generate, check (stale files exit 1 with a diff), schema errors
//! that name the file, line, type and field, and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use zeroipc_tests::{describe, run};

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("zipc-codegen-cli-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn codegen(args: &[&str]) -> (Output, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zeroipc-codegen"));
    cmd.args(args);
    let out = run(&mut cmd);
    let text = describe(&cmd, &out);
    (out, text)
}

fn schema() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/sensor/schema.json")
        .display()
        .to_string()
}

#[test]
fn generate_then_check_then_catch_a_stale_file() {
    let dir = Scratch::new("gen");
    let py = dir.0.join("out/shared_types.py").display().to_string();
    let h = dir.0.join("out/shared_types.h").display().to_string();
    let (out, text) = codegen(&[
        "generate",
        "--schema",
        &schema(),
        "--python",
        &py,
        "--c-header",
        &h,
    ]);
    assert!(out.status.success(), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("wrote"),
        "{text}"
    );
    // Generated from the schema file, the output equals the golden expectation.
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sensor");
    assert_eq!(
        std::fs::read(&py).unwrap(),
        std::fs::read(golden.join("shared_types.py")).unwrap()
    );
    assert_eq!(
        std::fs::read(&h).unwrap(),
        std::fs::read(golden.join("shared_types.h")).unwrap()
    );
    // A second run changes nothing.
    let (out, text) = codegen(&[
        "generate",
        "--schema",
        &schema(),
        "--python",
        &py,
        "--c-header",
        &h,
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .matches("unchanged")
            .count()
            == 2,
        "{text}"
    );
    let (out, text) = codegen(&[
        "check",
        "--schema",
        &schema(),
        "--python",
        &py,
        "--c-header",
        &h,
    ]);
    assert!(out.status.success(), "{text}");
    // Someone edits the header by hand: check exits 1 and shows the diff.
    let edited = std::fs::read_to_string(&h)
        .unwrap()
        .replace("float humidity;", "double humidity;");
    std::fs::write(&h, edited).unwrap();
    let (out, text) = codegen(&[
        "check",
        "--schema",
        &schema(),
        "--python",
        &py,
        "--c-header",
        &h,
    ]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(
        diff.contains("-    double humidity;") && diff.contains("+    float humidity;"),
        "{text}"
    );
    assert!(
        diff.contains("(on disk)") && diff.contains("(generated)"),
        "{text}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 file(s) are stale"),
        "{text}"
    );
    // A missing file is stale too.
    std::fs::remove_file(&py).unwrap();
    let (out, text) = codegen(&["check", "--schema", &schema(), "--python", &py]);
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn schema_errors_name_file_line_type_and_field() {
    let dir = Scratch::new("bad");
    let bad = dir.0.join("bad.json");
    let text = std::fs::read_to_string(schema())
        .unwrap()
        .replace("\"offset\": 4,", "\"offset\": 8,");
    std::fs::write(&bad, &text).unwrap();
    let bad = bad.display().to_string();
    let (out, report) = codegen(&[
        "generate",
        "--schema",
        &bad,
        "--python",
        &dir.0.join("x.py").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .position(|l| l.contains("\"humidity\""))
        .unwrap()
        + 1;
    assert!(stderr.contains(&format!("{bad}:{line}:")), "{report}");
    assert!(
        stderr.contains("type `SensorReading`, field `humidity`"),
        "{report}"
    );
    assert!(
        stderr.contains("4 byte(s) of undeclared padding"),
        "{report}"
    );
    assert!(
        !dir.0.join("x.py").exists(),
        "nothing is written for a bad schema"
    );

    let broken = dir.0.join("broken.json");
    std::fs::write(
        &broken,
        "{\n  \"format\": \"zeroipc-schema/1\",\n  \"types\": [\n    {\"name\": }\n  ]\n}\n",
    )
    .unwrap();
    let (out, report) = codegen(&["generate", "--schema", &broken.display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("{}:4:", broken.display())),
        "{report}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let (out, text) = codegen(&["generate"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let (out, text) = codegen(&["check", "--schema", &schema()]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let (out, text) = codegen(&["--help"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Exit codes"),
        "{text}"
    );
}
