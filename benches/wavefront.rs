//! An `IStructure` wavefront: the LCS of two pseudo-random strings as a
//! grid of DP blocks, each block a task waiting on its top and left
//! neighbours (see `workloads/wavefront.rs`). Sequential DP, a rayon
//! anti-diagonal wavefront and the lvars version, in the same run at 1 and
//! 2 threads; every iteration checks the LCS length against the
//! sequential one. A summary prints the ratios to sequential and to rayon.
//!
//! `cargo bench --bench wavefront`; `LVARS_WAVEFRONT_N` (string length,
//! default 4096) and `LVARS_WAVEFRONT_BLOCK` (block side, default 128).

use std::sync::Arc;
use std::time::Duration;

use common::{env_or, median_ns};
use criterion::{BenchmarkId, Criterion};
use wavefront::Grid;

mod common;

#[path = "workloads/wavefront.rs"]
mod wavefront;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const THREADS: [usize; 2] = [1, 2];
const GROUP: &str = "wavefront_lcs";

fn sizes() -> (usize, usize) {
    (env_or("LVARS_WAVEFRONT_N", 4096), env_or("LVARS_WAVEFRONT_BLOCK", 128))
}

fn bench(c: &mut Criterion) {
    let (n, block) = sizes();
    let grid = Arc::new(Grid::new(n, block));
    let want = grid.lcs_sequential();
    println!("LCS of two {n}-letter strings in {block}x{block} blocks: {want}");
    let mut g = c.benchmark_group(GROUP);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let mut run = wavefront::setup(wavefront::SEQUENTIAL, 1, &grid, want);
    g.bench_function(wavefront::SEQUENTIAL, |b| b.iter(&mut run));
    drop(run);
    for t in THREADS {
        for v in wavefront::PARALLEL {
            let mut run = wavefront::setup(v, t, &grid, want);
            g.bench_with_input(BenchmarkId::new(v, t), &t, |b, _| b.iter(&mut run));
        }
    }
    g.finish();
}

fn summary() {
    let (n, block) = sizes();
    let Some(seq) = median_ns(GROUP, wavefront::SEQUENTIAL) else {
        return;
    };
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!("\nLCS {n}x{n}, {block}-blocks, median of criterion samples, {cores} core(s); ratios = variant / other");
    println!(
        "{:<12} {:>8} {:>12} {:>10} {:>10}",
        "variant", "threads", "median", "vs seq", "vs rayon"
    );
    println!(
        "{:<12} {:>8} {:>10.3}ms {:>9.2}x",
        wavefront::SEQUENTIAL,
        1,
        seq / 1e6,
        1.0
    );
    for t in THREADS {
        let rayon = median_ns(GROUP, &format!("rayon/{t}"));
        for v in wavefront::PARALLEL {
            if let Some(m) = median_ns(GROUP, &format!("{v}/{t}")) {
                let vs_rayon = rayon.map_or(String::from("-"), |r| format!("{:.2}x", m / r));
                println!(
                    "{:<12} {:>8} {:>10.3}ms {:>9.2}x {:>10}",
                    v,
                    t,
                    m / 1e6,
                    m / seq,
                    vs_rayon
                );
            }
        }
    }
}

common::bench_main!(bench, summary);
