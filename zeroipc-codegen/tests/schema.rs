//! Schema validation: every rule of a hand-written schema gives an error naming the type and
//! field, and the builder's own errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zeroipc_codegen::{Builder, Error, Schema};

fn one_type(fields: &str, size: u64, align: u64) -> String {
    format!(
        r#"{{"format": "zeroipc-schema/1", "types": [{{"name": "T", "size": {size}, "align": {align}, "fields": [{fields}]}}]}}"#
    )
}

fn error_of(text: &str) -> String {
    match Schema::from_json(text, None) {
        Err(e @ Error::Schema(_)) => e.to_string(),
        other => panic!("expected a schema error, got {other:?}"),
    }
}

#[test]
fn valid_schemas_load() {
    let s = Schema::from_json(
        &one_type(r#"{"name": "a", "offset": 0, "type": "u32"}"#, 4, 4),
        None,
    )
    .unwrap();
    assert_eq!(s.types[0].fields[0].name, "a");
}

#[test]
fn each_rule_is_enforced_with_a_precise_message() {
    let cases = [
        (
            one_type(
                r#"{"name": "a", "offset": 0, "type": "u32"}, {"name": "b", "offset": 2, "type": "u16"}"#,
                8,
                4,
            ),
            "overlaps the previous field",
        ),
        (
            one_type(
                r#"{"name": "a", "offset": 0, "type": "u8"}, {"name": "b", "offset": 4, "type": "u32"}"#,
                8,
                4,
            ),
            "3 byte(s) of undeclared padding",
        ),
        (
            one_type(r#"{"name": "a", "offset": 0, "type": "u32"}"#, 8, 4),
            "undeclared padding at the end",
        ),
        (
            one_type(r#"{"name": "a", "offset": 0, "type": "u64"}"#, 4, 4),
            "past the size `4`",
        ),
        (
            one_type(r#"{"name": "a", "offset": 0, "type": "u16"}"#, 6, 4),
            "not a positive multiple",
        ),
        (
            one_type(r#"{"name": "a", "offset": 0, "type": "u64"}"#, 8, 4),
            "differs from the largest field alignment",
        ),
        (
            one_type(r#"{"name": "a", "offset": 0, "type": "u128"}"#, 16, 8),
            "unknown type `u128`",
        ),
        (
            one_type(r#"{"name": "a", "offset": 0, "type": "Later"}"#, 4, 4),
            "unknown type `Later`",
        ),
        (
            one_type(
                r#"{"name": "a", "offset": 0, "type": {"array": "u8", "len": 0}}"#,
                1,
                1,
            ),
            "at least one element",
        ),
        (
            one_type(r#"{"name": "class", "offset": 0, "type": "u32"}"#, 4, 4),
            "`class` is a keyword",
        ),
        (
            one_type(r#"{"name": "a b", "offset": 0, "type": "u32"}"#, 4, 4),
            "not a valid identifier",
        ),
        (
            one_type(
                r#"{"name": "a", "offset": 0, "type": "u32"}, {"name": "a", "offset": 4, "type": "u32"}"#,
                8,
                4,
            ),
            "two fields have this name",
        ),
        (
            one_type(
                r#"{"name": "a", "offset": 0, "type": "u32", "colour": 1}"#,
                4,
                4,
            ),
            "unknown field `colour`",
        ),
        (one_type("", 4, 4), "at least one field"),
        (
            one_type(r#"{"name": "a", "offset": 0, "type": "u32"}"#, 4, 3),
            "not 1, 2, 4 or 8",
        ),
        (
            r#"{"format": "zeroipc-schema/9", "types": []}"#.to_owned(),
            "unsupported format",
        ),
    ];
    for (text, want) in cases {
        let msg = error_of(&text);
        assert!(msg.contains(want), "expected `{want}` in `{msg}`");
    }
    let msg = error_of(&one_type(
        r#"{"name": "a", "offset": 0, "type": "u8"}, {"name": "b", "offset": 4, "type": "u32"}"#,
        8,
        4,
    ));
    assert!(msg.contains("type `T`, field `b`"), "{msg}");
}

/// The schema check uses the rule of `zeroipc-names`, the one the derive uses (its ui cases under
/// `tests/ui/attr/` show the same texts at compile time), for type and field names alike.
#[test]
fn names_follow_the_names_crate() {
    for bad in [
        "xor",
        "lambda",
        "NULL",
        "uint32_t",
        "INT8_MAX",
        "_Pragma",
        "a__b",
        "zeroipc_x",
        "size_t",
        "3d",
    ] {
        let problem = zeroipc_names::binding_name_problem(bad).expect(bad);
        let field = one_type(
            &format!(r#"{{"name": "{bad}", "offset": 0, "type": "u32"}}"#),
            4,
            4,
        );
        let e = error_of(&field);
        assert!(e.contains(&problem), "field {bad}: {e}");
        let ty = field
            .replace(r#""name": "T""#, &format!(r#""name": "{bad}""#))
            .replace(
                &format!(r#""name": "{bad}", "offset""#),
                r#""name": "a", "offset""#,
            );
        let e = error_of(&ty);
        assert!(e.contains(&problem), "type {bad}: {e}");
    }
    for good in ["_pad", "x", "Sample3", "int_value", "UINT"] {
        assert_eq!(zeroipc_names::binding_name_problem(good), None, "{good}");
        let field = one_type(
            &format!(r#"{{"name": "{good}", "offset": 0, "type": "u32"}}"#),
            4,
            4,
        );
        assert!(Schema::from_json(&field, None).is_ok(), "{good} refused");
    }
}

#[test]
fn builder_errors() {
    assert!(matches!(Builder::new().generate(), Err(Error::Empty)));
    let missing = Builder::new()
        .schema_file("/nonexistent/zeroipc.json")
        .generate();
    assert!(matches!(missing, Err(Error::Io { .. })), "{missing:?}");
    // SAFETY-free check of the OUT_DIR error: run where OUT_DIR is not set.
    if std::env::var_os("OUT_DIR").is_none() {
        let g = Builder::new()
            .add::<zeroipc_tests::types::SensorReading>()
            .generate()
            .unwrap();
        let e = g.write_to_out_dir().unwrap_err();
        assert!(matches!(e, Error::OutDirUnset));
        assert!(e.to_string().contains("`OUT_DIR`"));
    }
}

#[test]
fn write_to_touches_only_changed_files() {
    let dir = std::env::temp_dir().join(format!("zipc-codegen-write-{}", std::process::id()));
    let g = Builder::new()
        .add::<zeroipc_tests::types::SensorReading>()
        .generate()
        .unwrap();
    assert!(g.write_to(&dir).unwrap(), "the first write writes");
    let modified = std::fs::metadata(dir.join("shared_types.h"))
        .unwrap()
        .modified()
        .unwrap();
    assert!(
        !g.write_to(&dir).unwrap(),
        "an identical write changes nothing"
    );
    assert_eq!(
        std::fs::metadata(dir.join("shared_types.h"))
            .unwrap()
            .modified()
            .unwrap(),
        modified
    );
    let renamed = Builder::new()
        .add::<zeroipc_tests::types::SensorReading>()
        .python_module("sensors.py")
        .c_header("sensors.h")
        .generate()
        .unwrap();
    assert!(renamed.write_to(&dir).unwrap());
    assert!(renamed.c_header.contains("#ifndef ZEROIPC_SENSORS_H"));
    std::fs::remove_dir_all(&dir).unwrap();
}
