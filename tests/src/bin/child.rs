//! The other process in multi-process tests. Each role is a subcommand; output is one line of
//! `key=value` pairs on stdout, failures exit non-zero with a message on stderr.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use zeroipc::{
    Array, Barrier, Error, Event, Latch, Monitor, Mutex, Once, Queue, RwLock, Segment, Semaphore,
    Signal, Stack,
};
use zeroipc_tests::types::SensorReading;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["create-arrays", seg, prefix, count] => create_arrays(seg, prefix, count),
        ["array-rw", seg, name] => array_rw(seg, name),
        ["fetch-add", seg, name, count] => fetch_add(seg, name, count),
        ["readings-rw", seg, name] => readings_rw(seg, name),
        ["queue-produce", seg, name, id, count] => queue_produce(seg, name, id, count),
        ["queue-consume", seg, name, total, out] => queue_consume(seg, name, total, out),
        ["idle-wait", seg, kind, name, ms] => idle_wait(seg, kind, name, ms),
        ["attach-hold", seg, name] => attach_hold(seg, name),
        ["ops", seg, kind, name, op, start, count] => ops(seg, kind, name, op, start, count),
        ["create-array", seg, name] => create_array(seg, name),
        ["torture-produce", seg, name, id] => torture_produce(seg, name, id),
        ["torture-consume", seg, name, id] => torture_consume(seg, name, id),
        ["barrier-rounds", seg, name, rounds] => barrier_rounds(seg, name, rounds),
        ["latch-down", seg, name, n] => latch_down(seg, name, n),
        ["once-race", seg, name, counter] => once_race(seg, name, counter),
        ["sem-load", seg, name, inside, iters] => sem_load(seg, name, inside, iters),
        ["mutex-count", seg, name, counter, iters] => mutex_count(seg, name, counter, iters),
        ["mutex-hold", seg, name] => mutex_hold(seg, name),
        ["mutex-forget", seg, name] => mutex_forget(seg, name),
        ["event-wait", seg, name, ms] => event_wait(seg, name, ms),
        ["monitor-produce", seg, n] => monitor_produce(seg, n),
        ["monitor-consume", seg, total] => monitor_consume(seg, total),
        ["once-hang", seg, name] => once_hang(seg, name),
        ["rwlock-stress", seg, name, pair, role, iters] => {
            rwlock_stress(seg, name, pair, role, iters)
        }
        ["rwlock-hold", seg, name, mode] => rwlock_hold(seg, name, mode),
        ["signal-stress", seg, name, role, iters] => signal_stress(seg, name, role, iters),
        ["signal-watch", seg, name, until] => signal_watch(seg, name, until),
        ["signal-hold", seg, name] => signal_hold(seg, name),
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

/// Pushes `(id << 32) | seq` for `seq in 0..count`, retrying while the queue is full.
fn queue_produce(seg: &str, name: &str, id: &str, count: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let q = Queue::<u64>::open(&seg, name).map_err(|e| e.to_string())?;
    let id = parse(id)? as u64;
    let mut full = 0u64;
    for seq in 0..parse(count)? as u64 {
        let mut item = (id << 32) | seq;
        while let Err(back) = q.push(item) {
            if let Some(e) = back.error() {
                return Err(e.to_string());
            }
            item = back.into_inner();
            full += 1;
            std::hint::spin_loop();
            if full % 64 == 0 {
                std::thread::yield_now();
            }
        }
    }
    Ok(format!("full_retries={full}"))
}

/// Pops until the shared counter `consumed` reaches `total`; checks that each producer's items
/// arrive in increasing order; writes every item (u64 little-endian) to `out`.
fn queue_consume(seg: &str, name: &str, total: &str, out: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let q = Queue::<u64>::open(&seg, name).map_err(|e| e.to_string())?;
    let consumed = Array::<u64>::open(&seg, "consumed").map_err(|e| e.to_string())?;
    let total = parse(total)? as u64;
    let mut items: Vec<u64> = Vec::new();
    let mut last: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    let mut empty = 0u64;
    loop {
        match q.pop().map_err(|e| e.to_string())? {
            Some(item) => {
                let (producer, seq) = (item >> 32, item & 0xFFFF_FFFF);
                if let Some(&prev) = last.get(&producer) {
                    if seq <= prev {
                        return Err(format!(
                            "order violation: producer {producer} seq {seq} after {prev}"
                        ));
                    }
                }
                last.insert(producer, seq);
                items.push(item);
                consumed
                    .fetch_add(0, 1, Ordering::AcqRel)
                    .map_err(|e| e.to_string())?;
            }
            None => {
                if consumed
                    .load(0, Ordering::Acquire)
                    .map_err(|e| e.to_string())?
                    >= total
                {
                    break;
                }
                empty += 1;
                std::hint::spin_loop();
                if empty % 64 == 0 {
                    std::thread::yield_now();
                }
            }
        }
    }
    let bytes: Vec<u8> = items.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(out, bytes).map_err(|e| e.to_string())?;
    Ok(format!("popped={} empty_polls={empty}", items.len()))
}

/// This process's CPU time (user and system, every thread) in microseconds: what `getrusage`
/// reports, from the process CPU clock at nanosecond resolution.
fn cpu_us() -> u128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    (t.tv_sec as u128) * 1_000_000 + (t.tv_nsec as u128) / 1_000
}

/// Blocks `ms` milliseconds in `pop_timeout` of the empty queue or stack `name` (TESTPLAN E1),
/// and reports the CPU time the wait used and how long it took.
fn idle_wait(seg: &str, kind: &str, name: &str, ms: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let timeout = std::time::Duration::from_millis(parse(ms)? as u64);
    let start = (cpu_us(), std::time::Instant::now());
    let outcome = match kind {
        "queue" => {
            let q = Queue::<u64>::open(&seg, name).map_err(|e| e.to_string())?;
            q.pop_timeout(timeout).map(|_| ())
        }
        "stack" => {
            let s = Stack::<u64>::open(&seg, name).map_err(|e| e.to_string())?;
            s.pop_timeout(timeout).map(|_| ())
        }
        "semaphore" => {
            let s = Semaphore::open(&seg, name).map_err(|e| e.to_string())?;
            s.acquire_timeout(timeout)
        }
        "mutex" => {
            let m = Mutex::open(&seg, name).map_err(|e| e.to_string())?;
            m.lock_timeout(timeout)
                .map(drop)
                .map_err(zeroipc::LockError::into_error)
        }
        "barrier" => {
            let b = Barrier::open(&seg, name).map_err(|e| e.to_string())?;
            b.wait_timeout(timeout).map(drop)
        }
        "latch" => {
            let l = Latch::open(&seg, name).map_err(|e| e.to_string())?;
            l.wait_timeout(timeout)
        }
        "once" => {
            let o = Once::open(&seg, name).map_err(|e| e.to_string())?;
            o.call_once_timeout(timeout, || ()).map(drop)
        }
        "signal" => {
            let sig = Signal::<u64>::open(&seg, name).map_err(|e| e.to_string())?;
            sig.wait_for_change_timeout(sig.version(), timeout)
                .map(drop)
        }
        other => return Err(format!("unknown kind {other}")),
    };
    let (cpu, wall) = (cpu_us() - start.0, start.1.elapsed());
    match outcome {
        Err(Error::Timeout { .. }) => Ok(format!("cpu_us={cpu} wall_us={}", wall.as_micros())),
        other => Err(format!("expected a timeout, got {other:?}")),
    }
}

/// Opens the queue `name` (which records this process in the segment), says so, pushes and
/// pops once, and holds the handle until stdin closes (or the process is killed).
fn attach_hold(seg: &str, name: &str) -> Result<String, String> {
    use std::io::{BufRead, Write};
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let q = Queue::<u64>::open(&seg, name).map_err(|e| e.to_string())?;
    q.push(1).map_err(|e| e.to_string())?;
    q.pop().map_err(|e| e.to_string())?;
    println!("attached pid={}", std::process::id());
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    Ok("released".into())
}

/// Runs `count` operations `op` (`push`, `pop`, `push-batch`, `pop-batch` of two items) on the
/// `u64` queue or stack `name`, pushing `start`, `start + 1`, ...; the crash tests arm a
/// failpoint (`ZEROIPC_FAILPOINT`) that kills the process at one step of one of them.
fn ops(
    seg: &str,
    kind: &str,
    name: &str,
    op: &str,
    start: &str,
    count: &str,
) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let start = parse(start)? as u64;
    let count = parse(count)? as u64;
    let mut popped = Vec::new();
    match kind {
        "queue" => {
            let q = Queue::<u64>::open(&seg, name).map_err(|e| e.to_string())?;
            for i in 0..count {
                let v = start + 2 * i;
                match op {
                    "push" => q.push(v).map_err(|e| e.to_string())?,
                    "pop" => popped.extend(q.pop().map_err(|e| e.to_string())?),
                    "push-batch" => {
                        let n = q.push_slice(&[v, v + 1]).map_err(|e| e.to_string())?;
                        if n != 2 {
                            return Err(format!("pushed {n} of 2"));
                        }
                    }
                    "pop-batch" => {
                        let mut out = [0u64; 2];
                        let n = q.pop_into(&mut out).map_err(|e| e.to_string())?;
                        popped.extend_from_slice(&out[..n]);
                    }
                    _ => return Err(format!("unknown op {op}")),
                }
            }
        }
        "stack" => {
            let s = Stack::<u64>::open(&seg, name).map_err(|e| e.to_string())?;
            for i in 0..count {
                match op {
                    "push" => s.push(start + i).map_err(|e| e.to_string())?,
                    "pop" => popped.extend(s.pop().map_err(|e| e.to_string())?),
                    _ => return Err(format!("unknown op {op}")),
                }
            }
        }
        _ => return Err(format!("unknown kind {kind}")),
    }
    Ok(format!("popped={popped:?}"))
}

/// Creates the array `name` of 4 `u64` (the crash tests kill it inside the table update).
fn create_array(seg: &str, name: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    Array::<u64>::create(&seg, name, 4).map_err(|e| e.to_string())?;
    Ok("created".into())
}

/// How long a torture child waits in one blocking call before it reports a wedge.
const TORTURE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A producer of the random-kill test: pushes `id << 32 | n` for n = 0, 1, ... and, after
/// each push returned, stores n + 1 in `sent[id]` (so items below `sent[id]` were surely
/// enqueued) until `stop[0]` is set. Exits 3 if a push times out.
fn torture_produce(seg: &str, name: &str, id: &str) -> Result<String, String> {
    use std::io::Write;
    let id = parse(id)?;
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let q = Queue::<u64>::open(&seg, name).map_err(|e| e.to_string())?;
    let sent = Array::<u64>::open(&seg, "sent").map_err(|e| e.to_string())?;
    let stop = Array::<u64>::open(&seg, "stop").map_err(|e| e.to_string())?;
    println!("ready");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut n = 0u64;
    while stop.load(0, Ordering::Acquire).map_err(|e| e.to_string())? == 0 {
        match q.push_timeout((id as u64) << 32 | n, TORTURE_TIMEOUT) {
            Ok(()) => {}
            Err(zeroipc::PushError::Failed(_, Error::Timeout { .. })) => {
                // Say what it waited behind, for the test's failure message.
                let report = seg.check_structure(name, zeroipc::StructureKind::Queue);
                eprintln!(
                    "child: producer {id} timed out: len {}, {report:?}, peers {:?}",
                    q.len(),
                    seg.peers()
                );
                std::process::exit(3)
            }
            Err(e) => return Err(e.to_string()),
        }
        n += 1;
        sent.store(id, n, Ordering::Release)
            .map_err(|e| e.to_string())?;
    }
    Ok(format!("sent={n}"))
}

/// A consumer of the random-kill test: pops items and appends each to the array `log<id>`
/// (element 0 counts them, items from element 1) until `stop[1]` is set and the queue stays
/// empty, or its log is full.
fn torture_consume(seg: &str, name: &str, id: &str) -> Result<String, String> {
    use std::io::Write;
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let q = Queue::<u64>::open(&seg, name).map_err(|e| e.to_string())?;
    let log = Array::<u64>::open(&seg, &format!("log{id}")).map_err(|e| e.to_string())?;
    let stop = Array::<u64>::open(&seg, "stop").map_err(|e| e.to_string())?;
    println!("ready");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut n = 0usize;
    loop {
        match q.pop_timeout(std::time::Duration::from_millis(200)) {
            Ok(v) => {
                log.store(n + 1, v, Ordering::Relaxed)
                    .map_err(|e| e.to_string())?;
                n += 1;
                log.store(0, n as u64, Ordering::Release)
                    .map_err(|e| e.to_string())?;
                if n + 1 >= log.len() {
                    // Retire: the test starts another consumer in its place.
                    return Ok(format!("popped={n}"));
                }
            }
            Err(Error::Timeout { .. }) => {
                if stop.load(1, Ordering::Acquire).map_err(|e| e.to_string())? != 0 {
                    return Ok(format!("popped={n}"));
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Waits at the barrier `name` `rounds` times; how many times this process was the leader.
fn barrier_rounds(seg: &str, name: &str, rounds: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let b = Barrier::open(&seg, name).map_err(|e| e.to_string())?;
    let mut leaders = 0;
    for _ in 0..parse(rounds)? {
        let leader = b
            .wait_timeout(std::time::Duration::from_secs(60))
            .map_err(|e| e.to_string())?;
        leaders += usize::from(leader);
    }
    Ok(format!("leaders={leaders}"))
}

/// Counts the latch `name` down by `n`, then waits for it to open.
fn latch_down(seg: &str, name: &str, n: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let l = Latch::open(&seg, name).map_err(|e| e.to_string())?;
    l.count_down(parse(n)? as i32).map_err(|e| e.to_string())?;
    l.wait_timeout(std::time::Duration::from_secs(60))
        .map_err(|e| e.to_string())?;
    Ok(format!("count={}", l.count()))
}

/// Calls the once `name` with a function that adds 1 to the `u64` array `counter` (slot 0);
/// whether this process ran it.
fn once_race(seg: &str, name: &str, counter: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let once = Once::open(&seg, name).map_err(|e| e.to_string())?;
    let counter = Array::<u64>::open(&seg, counter).map_err(|e| e.to_string())?;
    let ran = once
        .call_once_timeout(std::time::Duration::from_secs(60), || {
            // Slow enough that the other processes find it running.
            std::thread::sleep(std::time::Duration::from_millis(20));
            counter.fetch_add(0, 1, Ordering::SeqCst).unwrap();
        })
        .map_err(|e| e.to_string())?;
    Ok(format!("ran={}", u8::from(ran)))
}

/// `iters` times: acquires a permit of the semaphore `name`, counts itself into slot 0 of the
/// `i64` array `inside` (the most inside at once go to slot 1), and leaves again.
fn sem_load(seg: &str, name: &str, inside: &str, iters: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let sem = Semaphore::open(&seg, name).map_err(|e| e.to_string())?;
    let inside = Array::<i64>::open(&seg, inside).map_err(|e| e.to_string())?;
    for i in 0..parse(iters)? {
        sem.acquire_timeout(std::time::Duration::from_secs(60))
            .map_err(|e| e.to_string())?;
        let now = inside.fetch_add(0, 1, Ordering::SeqCst).unwrap() + 1;
        let mut most = inside.load(1, Ordering::SeqCst).unwrap();
        while now > most {
            match inside.compare_exchange(1, most, now, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(Ok(_)) | Err(_) => break,
                Ok(Err(seen)) => most = seen,
            }
        }
        if i % 16 == 0 {
            std::thread::yield_now();
        }
        inside.fetch_sub(0, 1, Ordering::SeqCst).unwrap();
        sem.release().map_err(|e| e.to_string())?;
    }
    Ok("done=1".into())
}

/// `iters` times: locks the mutex `name` and increments slot 0 of the `u64` array `counter`
/// with a plain read and write (no atomic read-modify-write: only the lock keeps it exact).
fn mutex_count(seg: &str, name: &str, counter: &str, iters: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let m = Mutex::open(&seg, name).map_err(|e| e.to_string())?;
    let counter = Array::<u64>::open(&seg, counter).map_err(|e| e.to_string())?;
    let mut died = 0;
    for _ in 0..parse(iters)? {
        let guard = match m.lock_timeout(std::time::Duration::from_secs(60)) {
            Ok(guard) => guard,
            Err(zeroipc::LockError::OwnerDied(guard, _)) => {
                died += 1;
                guard
            }
            Err(e) => return Err(e.to_string()),
        };
        let v = counter.get(0).map_err(|e| e.to_string())?;
        counter.set(0, v + 1).map_err(|e| e.to_string())?;
        drop(guard);
    }
    Ok(format!("owner_died={died}"))
}

/// Locks the mutex `name`, says so, and holds it until killed.
fn mutex_hold(seg: &str, name: &str) -> Result<String, String> {
    use std::io::Write;
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let m = Mutex::open(&seg, name).map_err(|e| e.to_string())?;
    let guard = m.lock().map_err(|e| e.to_string())?;
    println!(
        "locked pid={} recorded={}",
        std::process::id(),
        u8::from(guard.is_recorded())
    );
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// Runs the once `name` with a function that says so and never returns (until killed).
fn once_hang(seg: &str, name: &str) -> Result<String, String> {
    use std::io::Write;
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let once = Once::open(&seg, name).map_err(|e| e.to_string())?;
    once.call_once(|| {
        println!("running pid={}", std::process::id());
        let _ = std::io::stdout().flush();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    })
    .map_err(|e| e.to_string())?;
    Err("the once was already done".into())
}

/// `iters` times, as a `writer`: under the write lock, writes `i` into slot 0 of the `u64`
/// array `pair`, yields, and writes it into slot 1; as a `reader`: under a read lock, reads
/// both and counts the times they differ (a torn pair).
fn rwlock_stress(
    seg: &str,
    name: &str,
    pair: &str,
    role: &str,
    iters: &str,
) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let lock = RwLock::open(&seg, name).map_err(|e| e.to_string())?;
    let pair = Array::<u64>::open(&seg, pair).map_err(|e| e.to_string())?;
    let timeout = std::time::Duration::from_secs(60);
    let (mut torn, mut reads) = (0u64, 0u64);
    for i in 0..parse(iters)? as u64 {
        if role == "writer" {
            let _w = lock.write_timeout(timeout).map_err(|e| e.to_string())?;
            let v = (u64::from(std::process::id()) << 32) | i;
            pair.set(0, v).map_err(|e| e.to_string())?;
            std::thread::yield_now();
            pair.set(1, v).map_err(|e| e.to_string())?;
        } else {
            let _r = lock.read_timeout(timeout).map_err(|e| e.to_string())?;
            let a = pair.get(0).map_err(|e| e.to_string())?;
            std::thread::yield_now();
            let b = pair.get(1).map_err(|e| e.to_string())?;
            torn += u64::from(a != b);
            reads += 1;
        }
    }
    Ok(format!("torn={torn} reads={reads}"))
}

/// Takes the read or write lock of `name`, says so, and holds it until killed.
fn rwlock_hold(seg: &str, name: &str, mode: &str) -> Result<String, String> {
    use std::io::Write;
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let lock = RwLock::open(&seg, name).map_err(|e| e.to_string())?;
    let (_r, _w);
    if mode == "read" {
        _r = lock.read().map_err(|e| e.to_string())?;
    } else {
        _w = lock.write().map_err(|e| e.to_string())?;
    }
    println!("holding pid={}", std::process::id());
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// The value of the stress signal: eight words a writer sets to the same number.
type Words8 = [u64; 8];

/// A writer sets the `[u64; 8]` signal `name` `iters` times, every word to the same new number;
/// a reader gets it `iters` times and counts values whose words differ (torn) and versions that
/// went backwards.
fn signal_stress(seg: &str, name: &str, role: &str, iters: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let sig = Signal::<Words8>::open(&seg, name).map_err(|e| e.to_string())?;
    let timeout = std::time::Duration::from_secs(60);
    let (mut torn, mut backwards, mut last) = (0u64, 0u64, 0u64);
    for i in 0..parse(iters)? as u64 {
        if role == "writer" {
            let v = (u64::from(std::process::id()) << 32) | i;
            sig.set_timeout([v; 8], timeout)
                .map_err(|e| e.to_string())?;
        } else {
            let version = sig.version();
            backwards += u64::from(version < last);
            last = version;
            let value = sig.get_timeout(timeout).map_err(|e| e.to_string())?;
            torn += u64::from(value.iter().any(|&w| w != value[0]));
        }
    }
    Ok(format!("torn={torn} backwards={backwards}"))
}

/// The monotonic clock in nanoseconds (the same clock in every process).
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64) * 1_000_000_000 + t.tv_nsec as u64
}

/// Waits for changes of the `[u64; 2]` signal `name` (value: `[sequence, monotonic ns when
/// set]`) until its sequence reaches `until`; reports how many changes it woke for, whether
/// versions and sequences only grew, and the median delay from a set to the wake-up.
fn signal_watch(seg: &str, name: &str, until: &str) -> Result<String, String> {
    use std::io::Write;
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let sig = Signal::<[u64; 2]>::open(&seg, name).map_err(|e| e.to_string())?;
    let until = parse(until)? as u64;
    let mut seen = sig.version();
    println!("watching version={seen}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let (mut wakes, mut ordered, mut last_seq) = (0u64, true, 0u64);
    let mut delays = Vec::new();
    loop {
        let version = sig
            .wait_for_change_timeout(seen, std::time::Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let woke = monotonic_ns();
        let [seq, set_at] = sig.get().map_err(|e| e.to_string())?;
        ordered &= version > seen && seq >= last_seq;
        delays.push(woke.saturating_sub(set_at));
        (seen, last_seq) = (version, seq);
        wakes += 1;
        if seq >= until {
            break;
        }
    }
    delays.sort_unstable();
    let median = delays.get(delays.len() / 2).copied().unwrap_or(0);
    Ok(format!(
        "wakes={wakes} ordered={} last={last_seq} median_ns={median}",
        u8::from(ordered)
    ))
}

/// Holds the mutex of the `u64` signal `name` inside an `update` whose function never returns
/// (until the process is killed); says so once it holds it.
fn signal_hold(seg: &str, name: &str) -> Result<String, String> {
    use std::io::Write;
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let sig = Signal::<u64>::open(&seg, name).map_err(|e| e.to_string())?;
    sig.update(|v| {
        println!("holding pid={}", std::process::id());
        let _ = std::io::stdout().flush();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            if v == u64::MAX {
                return v;
            }
        }
    })
    .map_err(|e| e.to_string())?;
    Err("the update returned".into())
}

/// Locks the mutex `name`, forgets the guard (so that it never unlocks) and drops every handle
/// of the segment, says so, and lives on until killed.
fn mutex_forget(seg: &str, name: &str) -> Result<String, String> {
    use std::io::Write;
    {
        let seg = Segment::open(seg).map_err(|e| e.to_string())?;
        let m = Mutex::open(&seg, name).map_err(|e| e.to_string())?;
        std::mem::forget(m.lock().map_err(|e| e.to_string())?);
    }
    println!("forgotten pid={}", std::process::id());
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// Says `ready`, then waits up to `ms` for the event `name`; reports whether it went through.
fn event_wait(seg: &str, name: &str, ms: &str) -> Result<String, String> {
    use std::io::Write;
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let event = Event::open(&seg, name).map_err(|e| e.to_string())?;
    println!("ready pid={}", std::process::id());
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    match event.wait_timeout(std::time::Duration::from_millis(parse(ms)? as u64)) {
        Ok(()) => Ok("woke=1".into()),
        Err(Error::Timeout { .. }) => Ok("woke=0".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Produces `n` items for the monitor `mon`: under its lock, `shared[0]` (pending) and
/// `shared[2]` (produced) go up by one, with plain reads and writes; then one waiter is woken.
fn monitor_produce(seg: &str, n: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let monitor = Monitor::open(&seg, "mon").map_err(|e| e.to_string())?;
    let shared = Array::<u64>::open(&seg, "shared").map_err(|e| e.to_string())?;
    let n = parse(n)? as u64;
    let get = |i| shared.get(i).map_err(|e| e.to_string());
    for _ in 0..n {
        let guard = monitor.lock().map_err(|e| e.to_string())?;
        shared.set(0, get(0)? + 1).map_err(|e| e.to_string())?;
        shared.set(2, get(2)? + 1).map_err(|e| e.to_string())?;
        drop(guard);
        monitor.notify_one().map_err(|e| e.to_string())?;
    }
    Ok(format!("produced={n}"))
}

/// Consumes items of the monitor `mon` until `total` have been taken by all consumers: waits
/// while none is pending, then moves one from `shared[0]` (pending) to `shared[1]` (taken).
fn monitor_consume(seg: &str, total: &str) -> Result<String, String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let monitor = Monitor::open(&seg, "mon").map_err(|e| e.to_string())?;
    let shared = Array::<u64>::open(&seg, "shared").map_err(|e| e.to_string())?;
    let total = parse(total)? as u64;
    let get = |i| shared.get(i).map_err(|e| e.to_string());
    let mut taken = 0u64;
    loop {
        let guard = monitor.lock().map_err(|e| e.to_string())?;
        let (guard, timed_out) = guard
            .wait_while_timeout(std::time::Duration::from_secs(20), || {
                shared.get(0).unwrap_or(0) == 0 && shared.get(1).unwrap_or(total) < total
            })
            .map_err(|e| e.to_string())?;
        if timed_out {
            return Err(format!(
                "no item and no notification for 20 s after {taken}"
            ));
        }
        if get(1)? >= total {
            drop(guard);
            monitor.notify_all().map_err(|e| e.to_string())?;
            return Ok(format!("taken={taken}"));
        }
        shared.set(0, get(0)? - 1).map_err(|e| e.to_string())?;
        shared.set(1, get(1)? + 1).map_err(|e| e.to_string())?;
        taken += 1;
        drop(guard);
    }
}
