//! Maps arbitrary bytes as a segment and runs open, list, check and typed opens on it
//! (TESTPLAN A5). The body is shared with the proptest suite in `tests/tests/fuzz.rs`.
//!
//! ```text
//! cargo install cargo-fuzz
//! RUSTC_BOOTSTRAP=1 cargo fuzz run open -- -max_total_time=600 -timeout=1
//! ```
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    zeroipc_tests::fuzz_memory(data);
});
