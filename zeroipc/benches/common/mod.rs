//! What the bench binaries share: pinning, and the driver that runs every workload once per
//! round, interleaved, and prints the median and min–max of each figure and of each per-round
//! ratio.

use std::time::Duration;

/// A workload: its name (with its unit) and the function that runs it once.
pub(crate) type Workload = (&'static str, fn() -> f64);

/// Pins this thread to CPU `cpu` (of two).
pub(crate) fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu % 2);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// The median, minimum and maximum of `v`.
pub(crate) fn median_min_max(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

/// Runs `workloads` over `ZEROIPC_BENCH_ROUNDS` rounds (default 7) and prints the table of
/// figures; returns each workload's figures, in order. With `ZEROIPC_BENCH_ONLY=text`, only
/// the workloads whose name contains `text` run, and `None` is returned (no ratios then).
pub(crate) fn run(workloads: &[Workload]) -> Option<Vec<Vec<f64>>> {
    let rounds: usize = std::env::var("ZEROIPC_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let only = std::env::var("ZEROIPC_BENCH_ONLY").ok();
    let selected = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let mut results = vec![Vec::new(); workloads.len()];
    for round in 0..rounds {
        for (i, (name, f)) in workloads.iter().enumerate() {
            if !selected(name) {
                continue;
            }
            let v = f();
            results[i].push(v);
            eprintln!("round {round}: {name}: {v:.1}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("\n| workload | median | min–max |\n|---|---:|---:|");
    for (i, (name, _)) in workloads.iter().enumerate() {
        if selected(name) {
            let (m, lo, hi) = median_min_max(&results[i]);
            println!("| {name} | {m:.1} | {lo:.1}–{hi:.1} |");
        }
    }
    only.is_none().then_some(results)
}

/// The per-round ratios of workload `a`'s figures to workload `b`'s.
pub(crate) fn ratio(results: &[Vec<f64>], a: usize, b: usize) -> Vec<f64> {
    results[a]
        .iter()
        .zip(&results[b])
        .map(|(x, y)| x / y)
        .collect()
}

/// Prints the table of ratios: name, per-round ratios, target.
pub(crate) fn print_ratios(targets: &[(&str, Vec<f64>, &str)]) {
    println!("\n| ratio (per round) | median | min–max | target |\n|---|---:|---:|---|");
    for (name, r, target) in targets {
        let (m, lo, hi) = median_min_max(r);
        println!("| {name} | {m:.2} | {lo:.2}–{hi:.2} | {target} |");
    }
}
