//! The other process in multi-process tests. Each role is a subcommand; output is one line of
//! `key=value` pairs on stdout, failures exit non-zero with a message on stderr.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use zeroipc::{Array, Error, Segment};
use zeroipc_tests::types::SensorReading;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["create-arrays", seg, prefix, count] => create_arrays(seg, prefix, count),
        ["array-rw", seg, name] => array_rw(seg, name),
        ["fetch-add", seg, name, count] => fetch_add(seg, name, count),
        ["readings-rw", seg, name] => readings_rw(seg, name),
        _ => Err(format!("unknown role {args:?}")),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("child: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn parse(n: &str) -> Result<usize, String> {
    n.parse().map_err(|e| format!("bad number {n:?}: {e}"))
}

/// Creates `count` arrays `PREFIX<i>` (capacity `i % 5 + 1`, every value `i`), then tries to
/// create the entry `shared`, which several children race for.
fn create_arrays(seg: &str, prefix: &str, count: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    for i in 0..parse(count)? {
        let a = Array::<u64>::create(&seg, &format!("{prefix}{i}"), i % 5 + 1)
            .map_err(|e| e.to_string())?;
        a.fill(i as u64).map_err(|e| e.to_string())?;
    }
    let won = match Array::<u32>::create(&seg, "shared", 1) {
        Ok(_) => true,
        Err(Error::DuplicateEntry { .. }) => false,
        Err(e) => return Err(e.to_string()),
    };
    Ok(format!("won_shared={won}"))
}

/// Checks that element `i` of the `i64` array is `3 * i`, then writes `7 * i`.
fn array_rw(seg: &str, name: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let a = Array::<i64>::open(&seg, name).map_err(|e| e.to_string())?;
    for (i, v) in a.iter().enumerate() {
        if v != 3 * i as i64 {
            return Err(format!("element {i} is {v}, expected {}", 3 * i));
        }
    }
    for i in 0..a.len() {
        a.set(i, 7 * i as i64).map_err(|e| e.to_string())?;
    }
    Ok(format!("checked={}", a.len()))
}

/// Adds 1 to element 0 of the `u64` array `count` times.
fn fetch_add(seg: &str, name: &str, count: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let a = Array::<u64>::open(&seg, name).map_err(|e| e.to_string())?;
    for _ in 0..parse(count)? {
        a.fetch_add(0, 1, Ordering::Relaxed)
            .map_err(|e| e.to_string())?;
    }
    Ok("done=1".into())
}

/// Checks that reading `i` is `SensorReading::nth(i)`, then writes `nth(i + 100)`.
fn readings_rw(seg: &str, name: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let a = Array::<SensorReading>::open(&seg, name).map_err(|e| e.to_string())?;
    for (i, r) in a.iter().enumerate() {
        if r != SensorReading::nth(i) {
            return Err(format!("reading {i} is {r:?}"));
        }
    }
    for i in 0..a.len() {
        a.set(i, SensorReading::nth(i + 100))
            .map_err(|e| e.to_string())?;
    }
    Ok(format!("checked={}", a.len()))
}
