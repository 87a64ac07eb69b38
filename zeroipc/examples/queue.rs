//! A work queue shared by two processes: this process creates the queue and produces jobs,
//! a second process (this program again, started with `--consumer`) takes them and reports
//! back through a results queue, which a thread of this process (owning that queue's handle)
//! drains. Every wait sleeps in the kernel until the other side's push or pop wakes it.
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

/// The segment and its two queues, kept together: handles own a share of the mapping, so
/// they can live beside their segment and move into threads.
struct Queues {
    seg: Segment,
    jobs: Queue<Job>,
    done: Queue<Done>,
}

fn create_queues(name: &str) -> zeroipc::Result<Queues> {
    let seg = SegmentOptions::new()
        .unlink_on_drop(true)
        .create(name, 1 << 20)?;
    let jobs = Queue::create(&seg, "jobs", 64)?;
    let done = Queue::create(&seg, "done", 64)?;
    Ok(Queues { seg, jobs, done })
}

fn producer() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("/zeroipc-queue-demo-{}", std::process::id());
    let Queues { seg, jobs, done } = create_queues(&name)?;
    println!(
        "producer: {} with queues `jobs` and `done` ({} slots each)",
        seg.name(),
        jobs.capacity()
    );
    let mut consumer = Command::new(std::env::current_exe()?)
        .args(["--consumer", &name])
        .spawn()?;
    // The answers are collected by a thread that owns the `done` queue; it sleeps in
    // `pop_timeout` until the consumer's push wakes it.
    let collector = std::thread::spawn(move || -> zeroipc::Result<f64> {
        let mut checksum = 0.0;
        for _ in 0..JOBS {
            checksum += done.pop_timeout(Duration::from_secs(5))?.output;
        }
        Ok(checksum)
    });
    // Jobs go out as fast as the consumer takes them: the queue is bounded, so `push_timeout`
    // sleeps while it is full.
    for id in 0..=JOBS {
        // The last job, an id past the others, tells the consumer to stop.
        let job = Job {
            id: if id == JOBS { u32::MAX } else { id },
            kind: id % 2,
            input: f64::from(id) * 0.5,
        };
        jobs.push_timeout(job, Duration::from_secs(5))
            .map_err(|_| "the consumer stopped taking jobs")?;
    }
    let checksum = collector.join().map_err(|_| "the collector panicked")??;
    let status = consumer.wait()?;
    println!("producer: {JOBS} answers, checksum {checksum}; consumer exited with {status}");
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
