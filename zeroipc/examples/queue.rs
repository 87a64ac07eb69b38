//! A work queue shared by two processes: this process creates the queue and produces jobs,
//! a second process (this program again, started with `--consumer`) takes them and reports
//! back through a results queue.
//!
//! ```text
//! cargo run -p zeroipc --example queue
//! ```

use std::process::Command;
use std::time::Duration;

use zeroipc::{Queue, Segment, SegmentOptions, ShmLayout};

/// A unit of work.
#[repr(C)]
#[derive(Clone, Copy, Debug, ShmLayout)]
struct Job {
    id: u32,
    /// Which operation: 0 = square, 1 = cube.
    kind: u32,
    input: f64,
}

/// The answer to a job.
#[repr(C)]
#[derive(Clone, Copy, Debug, ShmLayout)]
struct Done {
    id: u32,
    worker: u32,
    output: f64,
}

const JOBS: u32 = 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, name] = args.as_slice() {
        if flag == "--consumer" {
            return consumer(name);
        }
    }
    producer()
}

fn producer() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("/zeroipc-queue-demo-{}", std::process::id());
    let seg = SegmentOptions::new()
        .unlink_on_drop(true)
        .create(&name, 1 << 20)?;
    let jobs = Queue::<Job>::create(&seg, "jobs", 64)?;
    let done = Queue::<Done>::create(&seg, "done", 64)?;
    println!(
        "producer: {name} with queues `jobs` and `done` ({} slots each)",
        jobs.capacity()
    );

    let mut consumer = Command::new(std::env::current_exe()?)
        .args(["--consumer", &name])
        .spawn()?;
    let (mut sent, mut received, mut checksum) = (0u32, 0u32, 0.0f64);
    while received < JOBS {
        // Keep the consumer busy while collecting answers; the queues are bounded, so push
        // hands a job back when `jobs` is full.
        if sent < JOBS {
            let job = Job {
                id: sent,
                kind: sent % 2,
                input: f64::from(sent) * 0.5,
            };
            if jobs.push(job).is_ok() {
                sent += 1;
            }
        }
        // While jobs remain, poll; once all are sent, wait for answers (a timeout just loops).
        let answer = if sent < JOBS {
            done.pop()?
        } else {
            match done.pop_timeout(Duration::from_millis(1)) {
                Ok(d) => Some(d),
                Err(zeroipc::Error::Timeout { .. }) => None,
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(d) = answer {
            received += 1;
            checksum += d.output;
        }
    }
    // Tell the consumer to stop: an id past the last job.
    jobs.push_timeout(
        Job {
            id: u32::MAX,
            kind: 0,
            input: 0.0,
        },
        Duration::from_secs(5),
    )
    .map_err(|_| "the consumer stopped taking jobs")?;
    let status = consumer.wait()?;
    println!("producer: {received} answers, checksum {checksum}; consumer exited with {status}");
    if !status.success() {
        return Err("the consumer failed".into());
    }
    Ok(())
}

fn consumer(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let seg = Segment::open(name)?;
    let jobs = Queue::<Job>::open(&seg, "jobs")?;
    let done = Queue::<Done>::open(&seg, "done")?;
    let me = std::process::id();
    let mut handled = 0u32;
    loop {
        let job = jobs.pop_timeout(Duration::from_secs(5))?;
        if job.id == u32::MAX {
            break;
        }
        let output = if job.kind == 0 {
            job.input * job.input
        } else {
            job.input.powi(3)
        };
        done.push_timeout(
            Done {
                id: job.id,
                worker: me,
                output,
            },
            Duration::from_secs(5),
        )
        .map_err(|_| "the producer stopped collecting answers")?;
        handled += 1;
    }
    println!("consumer (pid {me}): handled {handled} jobs");
    Ok(())
}
