//! Golden outputs (TESTPLAN F3, F5): every case under `tests/golden/<case>/` holds a
//! `schema.json` and the expected `shared_types.py` and `shared_types.h`. The test regenerates
//! them and compares byte for byte; `ZEROIPC_BLESS=1` rewrites the expectations instead (review
//! the diff). Cases named after Rust types also check that `schema.json` is still what those
//! types describe. Every expected header is compiled by gcc (C11) and g++ (C++17) with
//! `-Werror`, and every expected module is imported by python3 with NumPy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use zeroipc_codegen::{Builder, Generated, Schema};
use zeroipc_tests::types::{Padded64, SensorReading, TaggedReading, Telemetry};
use zeroipc_tests::{describe, run};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn bless() -> bool {
    std::env::var("ZEROIPC_BLESS").is_ok_and(|v| v == "1")
}

/// The schema a case's Rust types describe, for cases that have them.
fn rust_schema(case: &str) -> Option<Schema> {
    let builder = match case {
        "sensor" => Builder::new().add::<SensorReading>().add::<TaggedReading>(),
        "telemetry" => Builder::new().add::<Telemetry>().add::<Padded64>(),
        "demo" => Builder::new().add::<zeroipc_demo_types::Reading>(),
        _ => return None,
    };
    Some(builder.generate().unwrap().schema)
}

fn check_file(path: &Path, expected: &str, failures: &mut Vec<String>) {
    if bless() {
        zeroipc_codegen::write_if_changed(path, expected).unwrap();
        return;
    }
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current != expected {
        failures.push(zeroipc_codegen::unified_diff(path, &current, expected));
    }
}

fn cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    cases
}

#[test]
fn golden_outputs_are_current() {
    let mut failures = Vec::new();
    for case in cases() {
        let dir = golden_dir().join(&case);
        if let Some(schema) = rust_schema(&case) {
            check_file(&dir.join("schema.json"), &schema.to_json(), &mut failures);
        }
        let schema = Schema::from_file(&dir.join("schema.json")).unwrap();
        let generated =
            Generated::from_schema(schema, "shared_types.py".into(), "shared_types.h".into())
                .unwrap();
        check_file(
            &dir.join("shared_types.py"),
            &generated.python,
            &mut failures,
        );
        check_file(
            &dir.join("shared_types.h"),
            &generated.c_header,
            &mut failures,
        );
    }
    assert!(
        failures.is_empty(),
        "golden files are stale; review and run `ZEROIPC_BLESS=1 cargo test -p zeroipc-codegen --test golden`:\n{}",
        failures.join("\n")
    );
}

#[test]
fn golden_headers_compile_with_gcc_and_gxx() {
    let tmp = std::env::temp_dir().join(format!("zipc-golden-c-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for case in cases() {
        let dir = golden_dir().join(&case);
        let c_src = tmp.join(format!("{case}.c"));
        std::fs::write(
            &c_src,
            "#include \"shared_types.h\"\nint main(void) { return 0; }\n",
        )
        .unwrap();
        let cpp_src = tmp.join(format!("{case}.cpp"));
        std::fs::write(
            &cpp_src,
            "#include \"shared_types.h\"\nint main() { return 0; }\n",
        )
        .unwrap();
        for (compiler, std_flag, src) in
            [("gcc", "-std=c11", &c_src), ("g++", "-std=c++17", &cpp_src)]
        {
            let mut cmd = Command::new(compiler);
            cmd.args([
                std_flag,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-Wpadded",
                "-pedantic",
                "-fsyntax-only",
                "-I",
            ])
            .arg(&dir)
            .arg(src);
            let out = run(&mut cmd);
            assert!(out.status.success(), "{case}: {}", describe(&cmd, &out));
        }
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn golden_modules_import_with_numpy() {
    for case in cases() {
        let dir = golden_dir().join(&case);
        let script = "import sys; sys.path.insert(0, sys.argv[1]); import shared_types as m; \
                      assert m.SIZES and m.LAYOUTS and m.FINGERPRINT; print(sorted(m.SIZES.items()))";
        let mut cmd = Command::new("python3");
        cmd.env("PYTHONDONTWRITEBYTECODE", "1")
            .args(["-c", script])
            .arg(&dir);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{case}: {}", describe(&cmd, &out));
    }
}

#[test]
fn generation_is_deterministic() {
    let make = || {
        Builder::new()
            .add::<Telemetry>()
            .add::<SensorReading>()
            .add::<Padded64>()
            .generate()
            .unwrap()
    };
    let first = make();
    let others: Vec<Generated> = std::thread::scope(|s| {
        (0..4)
            .map(|_| s.spawn(make))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect()
    });
    for g in others {
        assert_eq!(g, first);
    }
    // Schema round trip: JSON and back gives the same schema and the same output.
    let again = Schema::from_json(&first.schema.to_json(), None).unwrap();
    assert_eq!(again, first.schema);
    assert_eq!(
        Generated::from_schema(
            again,
            first.python_file.clone(),
            first.c_header_file.clone()
        )
        .unwrap(),
        first
    );
}

#[test]
fn schema_fingerprints_equal_descriptor_fingerprints() {
    use zeroipc::ShmLayout;
    let g = Builder::new()
        .add::<Telemetry>()
        .add::<Padded64>()
        .generate()
        .unwrap();
    assert_eq!(
        g.schema.fingerprint_of("Telemetry"),
        Some(Telemetry::LAYOUT.fingerprint())
    );
    assert_eq!(
        g.schema.fingerprint_of("Vec3"),
        Some(zeroipc_tests::types::Vec3::LAYOUT.fingerprint())
    );
    assert_eq!(
        g.schema.fingerprint_of("Padded64"),
        Some(Padded64::LAYOUT.fingerprint())
    );
    assert!(
        g.python
            .contains(&format!("0x{:016x}", Telemetry::LAYOUT.fingerprint()))
    );
    assert!(g.c_header.contains(&format!("0x{:016x}", g.fingerprint)));
}

#[test]
fn two_headers_in_one_translation_unit() {
    let tmp = std::env::temp_dir().join(format!("zipc-golden-two-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for case in ["sensor", "nested"] {
        let schema = Schema::from_file(&golden_dir().join(case).join("schema.json")).unwrap();
        let header = format!("{case}.h");
        let g = Generated::from_schema(schema, format!("{case}.py"), header.clone()).unwrap();
        std::fs::write(tmp.join(header), &g.c_header).unwrap();
    }
    let src = tmp.join("both.c");
    std::fs::write(&src, "#include \"sensor.h\"\n#include \"nested.h\"\n#include \"sensor.h\"\nint main(void) { return 0; }\n").unwrap();
    for (compiler, std_flag) in [("gcc", "-std=c11"), ("g++", "-std=c++17")] {
        let mut cmd = Command::new(compiler);
        cmd.args([
            "-x",
            if compiler == "gcc" { "c" } else { "c++" },
            std_flag,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
        ])
        .arg(&src);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{}", describe(&cmd, &out));
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn hostile_doc_text_stays_a_comment() {
    let text = r#"{"format": "zeroipc-schema/1", "types": [{"name": "T", "size": 4, "align": 4,
        "doc": "a /* b */ c ??/\rraise SystemExit('injected')\u0000 end \"\"\" x",
        "fields": [{"name": "v", "offset": 0, "type": "u32", "doc": "x\rimport os; os._exit(3)"}]}]}"#;
    let schema = Schema::from_json(text, None).unwrap();
    let g =
        Generated::from_schema(schema, "shared_types.py".into(), "shared_types.h".into()).unwrap();
    let tmp = std::env::temp_dir().join(format!("zipc-golden-hostile-{}", std::process::id()));
    g.write_to(&tmp).unwrap();
    let script = "import sys; sys.path.insert(0, sys.argv[1]); import shared_types as m; print('imported', m.SIZES)";
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONDONTWRITEBYTECODE", "1")
        .args(["-c", script])
        .arg(&tmp);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", describe(&cmd, &out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("imported"),
        "{}",
        describe(&cmd, &out)
    );
    let src = tmp.join("t.c");
    std::fs::write(
        &src,
        "#include \"shared_types.h\"\nint main(void) { return 0; }\n",
    )
    .unwrap();
    for (compiler, std_flag) in [("gcc", "-std=c11"), ("g++", "-std=c++17")] {
        let mut cmd = Command::new(compiler);
        cmd.args([
            "-x",
            if compiler == "gcc" { "c" } else { "c++" },
            std_flag,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wpadded",
            "-pedantic",
            "-Wcomment",
            "-Wtrigraphs",
            "-fsyntax-only",
        ])
        .arg(&src);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{}", describe(&cmd, &out));
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}
