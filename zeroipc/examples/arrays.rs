//! The main demo: one process creates a segment with arrays, lists its table, and a second
//! process (this same program, started again as a reader) opens the segment, reads the values
//! and writes back through an atomic counter.
//!
//! ```text
//! cargo run -p zeroipc --example arrays
//! ```

use std::process::Command;
use std::sync::atomic::Ordering;

use zeroipc::{Array, Segment, SegmentOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, name] = args.as_slice() {
        if flag == "--reader" {
            return reader(name);
        }
    }
    writer()
}

fn writer() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("/zeroipc-demo-{}", std::process::id());
    // Removed again when `seg` is dropped, also if the reader fails.
    let seg = SegmentOptions::new()
        .max_entries(16)
        .unlink_on_drop(true)
        .create(&name, 1 << 16)?;

    let temps = Array::<f32>::create(&seg, "temperatures", 8)?;
    temps.copy_from_slice(0, &[20.5, 21.0, 21.5, 22.0, 22.5, 23.0, 23.5, 24.0])?;
    let ids = Array::<i64>::create(&seg, "sensor_ids", 4)?;
    ids.copy_from_slice(0, &[1001, 1002, 1003, -1])?;
    let visits = Array::<u64>::create(&seg, "visits", 1)?;

    println!(
        "writer: created {} ({} bytes, {} table slots)",
        seg.name(),
        seg.size(),
        seg.max_entries()
    );
    println!("{:<14} {:>8} {:>8}", "ENTRY", "OFFSET", "SIZE");
    for e in seg.entries()? {
        println!("{:<14} {:>8} {:>8}", e.name, e.offset, e.size);
    }

    let exe = std::env::current_exe()?;
    let status = Command::new(exe).args(["--reader", &name]).status()?;
    if !status.success() {
        return Err(format!("the reader process failed: {status}").into());
    }
    let seen = visits.load(0, Ordering::Acquire)?;
    let last = ids.get(3)?;
    println!("writer: the reader left visits = {seen}; last sensor id now {last}");
    if seen != 1 || last != 1004 {
        return Err("the reader's writes did not arrive".into());
    }
    println!("writer: done, {} is unlinked on exit", seg.name());
    Ok(())
}

fn reader(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let seg = Segment::open(name)?;
    let temps = Array::<f32>::open(&seg, "temperatures")?;
    let ids = Array::<i64>::open(&seg, "sensor_ids")?;
    let visits = Array::<u64>::open(&seg, "visits")?;
    println!(
        "reader (pid {}): temperatures = {:?}",
        std::process::id(),
        temps.to_vec()
    );
    println!("reader: sensor_ids = {:?}", ids.to_vec());
    // A wrong element type is caught at open.
    if let Err(e) = Array::<f64>::open(&seg, "temperatures") {
        println!("reader: opening temperatures as f64 fails: {e}");
    }
    ids.set(3, 1004)?;
    visits.fetch_add(0, 1, Ordering::AcqRel)?;
    Ok(())
}
