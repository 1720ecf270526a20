//! Fork-join overhead: fib with a fork at every call.
//!
//! Variants, all measured in the same run at 1 and 2 threads: sequential,
//! `rayon::join`, chili's `Scope::join`, our `join`, our `fork` + await,
//! and tokio `spawn` + await. Every iteration checks the fib value.
//! After criterion finishes, a table of ratios to sequential (medians from
//! criterion's own estimates) is printed.
//!
//! `cargo bench --bench fork_join`; `LVARS_FIB_N=32` picks another size.

use std::time::Duration;

use common::{env_or, median_ns};
use criterion::{BenchmarkId, Criterion};

mod common;

#[path = "workloads/fib.rs"]
mod fib;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const THREADS: [usize; 2] = [1, 2];

fn fib_n() -> u64 {
    env_or("LVARS_FIB_N", 30)
}

fn bench(c: &mut Criterion) {
    let n = fib_n();
    let mut g = c.benchmark_group(format!("fib{n}"));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let mut run = fib::setup(fib::SEQUENTIAL, 1, n);
    g.bench_function(fib::SEQUENTIAL, |b| b.iter(&mut run));
    drop(run);

    for t in THREADS {
        // Each variant's pool lives only while that variant is measured.
        for v in fib::PARALLEL {
            let mut run = fib::setup(v, t, n);
            g.bench_with_input(BenchmarkId::new(v, t), &t, |b, _| b.iter(&mut run));
        }
    }
    g.finish();
}

fn summary() {
    let n = fib_n();
    let group = format!("fib{n}");
    let Some(seq) = median_ns(&group, "sequential") else {
        return;
    };
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!("\nfib({n}), median of criterion samples, {cores} core(s); ratio = variant / sequential");
    println!("{:<14} {:>8} {:>12} {:>10}", "variant", "threads", "median", "ratio");
    println!("{:<14} {:>8} {:>10.3}ms {:>9.2}x", "sequential", 1, seq / 1e6, 1.0);
    for t in THREADS {
        for v in fib::PARALLEL {
            if let Some(m) = median_ns(&group, &format!("{v}/{t}")) {
                println!("{:<14} {:>8} {:>10.3}ms {:>9.2}x", v, t, m / 1e6, m / seq);
            }
        }
    }
}

common::bench_main!(bench, summary);
