//! TESTPLAN F1: the derive's compile-fail cases (`tests/ui/<category>/<case>.rs` beside their
//! `.stderr`, one problem each plus one case with several) and its pass cases (`tests/pass/`).
//! Regenerate the expected output with `TRYBUILD=overwrite` and read it before committing.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*/*.rs");
    t.pass("pass/*.rs");
}
