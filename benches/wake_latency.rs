//! Put-to-wake latency: a ping-pong between two tasks, each message a put
//! that wakes a task parked on a get, against tokio oneshot channels and a
//! crossbeam-channel hand-off between two threads (see
//! `workloads/latency.rs` for the variants). All in the same run, at 1 and
//! 2 threads; every iteration checks the sum of the answers. A summary
//! prints the median time per round trip and the ratio to crossbeam's.
//!
//! `cargo bench --bench wake_latency`; `LVARS_ROUND_TRIPS=N` (default
//! 10,000 per iteration).

use std::time::Duration;

use common::{env_or, median_ns};
use criterion::{BenchmarkId, Criterion};

mod common;

#[path = "workloads/latency.rs"]
mod latency;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GROUP: &str = "wake_latency";

fn round_trips() -> usize {
    env_or("LVARS_ROUND_TRIPS", 10_000)
}

fn bench(c: &mut Criterion) {
    let n = round_trips();
    let mut g = c.benchmark_group(GROUP);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for t in [1, 2] {
        for v in latency::VARIANTS {
            if latency::thread_counts(v).contains(&t) {
                let mut run = latency::setup(v, t, n);
                g.bench_with_input(BenchmarkId::new(v, t), &t, |b, _| b.iter(&mut run));
            }
        }
    }
    g.finish();
}

fn summary() {
    let n = round_trips() as f64;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let Some(cb) = median_ns(GROUP, "crossbeam_channel/2") else {
        return;
    };
    println!(
        "\n{n} round trips per iteration, median of criterion samples, {cores} core(s); ratio = variant / crossbeam_channel"
    );
    println!(
        "{:<18} {:>8} {:>14} {:>8}",
        "variant", "threads", "per round trip", "ratio"
    );
    for t in [1, 2] {
        for v in latency::VARIANTS {
            if let Some(m) = median_ns(GROUP, &format!("{v}/{t}")) {
                println!("{:<18} {:>8} {:>11.0} ns {:>7.2}x", v, t, m / n, m / cb);
            }
        }
    }
}

common::bench_main!(bench, summary);
