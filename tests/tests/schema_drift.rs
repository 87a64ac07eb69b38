//! The checked-in schemas in `schemas/` must describe the Rust types they were made from.
//! Regenerate them with `ZEROIPC_BLESS=1 cargo test -p zeroipc-tests --test schema_drift`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zeroipc_codegen::{Builder, Schema};
use zeroipc_tests::types::{Padded64, SensorReading, TaggedReading, Telemetry};
use zeroipc_tests::workspace_root;

fn schemas() -> Vec<(&'static str, Schema)> {
    let build = |b: Builder| b.generate().unwrap().schema;
    vec![
        (
            "schemas/demo.json",
            build(Builder::new().add::<zeroipc_demo_types::Reading>()),
        ),
        (
            "schemas/test_types.json",
            build(
                Builder::new()
                    .add::<SensorReading>()
                    .add::<TaggedReading>()
                    .add::<Telemetry>()
                    .add::<Padded64>(),
            ),
        ),
    ]
}

#[test]
fn checked_in_schemas_match_the_rust_types() {
    let bless = std::env::var("ZEROIPC_BLESS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (path, schema) in schemas() {
        let file = workspace_root().join(path);
        let expected = schema.to_json();
        if bless {
            zeroipc_codegen::write_if_changed(&file, &expected).unwrap();
            continue;
        }
        let current = std::fs::read_to_string(&file).unwrap_or_default();
        if current != expected {
            stale.push(zeroipc_codegen::unified_diff(&file, &current, &expected));
        }
        // What is checked in also loads and validates as a schema file.
        Schema::from_file(&file).unwrap();
    }
    assert!(
        stale.is_empty(),
        "checked-in schemas no longer match the Rust types; regenerate them with \
         `ZEROIPC_BLESS=1 cargo test -p zeroipc-tests --test schema_drift`:\n{}",
        stale.join("\n")
    );
}
