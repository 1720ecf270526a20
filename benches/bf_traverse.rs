//! LVish's `bf_traverse`: a PBBS-style random local graph (40,000 vertices,
//! 320,000 edges), traversed from vertex 0 with 1, 4 or 32 microseconds of
//! calibrated busy work per reached vertex. Variants, all in the same run
//! at 1 and 2 threads: sequential BFS, rayon level-synchronous BFS with an
//! atomic visited bitmap, and the LVar traversal (visited set + handler,
//! frozen after the barrier). Every iteration checks the reached count and
//! checksum. A summary prints each median against the ideal
//! (reached x work / threads, where reached x work is the busy work alone,
//! measured in the same run: `work_only`) and against rayon.
//!
//! `LVARS_BFS_WORK=1,4,32` picks the work sizes (default: 1 and 4).

mod common;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../examples/bf_traverse/graph.rs"]
mod graph;

use std::sync::Arc;
use std::time::Duration;

use common::median_ns;
use criterion::{criterion_group, BenchmarkId, Criterion};
use graph::{bfs_lvars, bfs_rayon, bfs_sequential, work_only, Graph, Work};

const THREADS: [usize; 2] = [1, 2];

fn work_sizes() -> Vec<u64> {
    std::env::var("LVARS_BFS_WORK")
        .ok()
        .map(|s| s.split(',').filter_map(|w| w.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4])
}

fn bench(c: &mut Criterion) {
    let g = Arc::new(Graph::rand_local(40_000, 320_000, 42));
    for micros in work_sizes() {
        let work = Work::calibrate(micros);
        let want = bfs_sequential(&g, 0, work);
        let mut group = c.benchmark_group(format!("bf_traverse_{micros}us"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        group.bench_function("work_only", |b| {
            b.iter(|| std::hint::black_box(work_only(want.vertices, work)))
        });
        group.bench_function("sequential", |b| {
            b.iter(|| assert_eq!(bfs_sequential(&g, 0, work), want))
        });
        for t in THREADS {
            let rp = rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap();
            group.bench_with_input(BenchmarkId::new("rayon", t), &t, |b, _| {
                b.iter(|| assert_eq!(rp.install(|| bfs_rayon(&g, 0, work)), want))
            });
            let pool = lvars::ThreadPoolBuilder::new().num_threads(t).build().unwrap();
            group.bench_with_input(BenchmarkId::new("lvars", t), &t, |b, _| {
                b.iter(|| assert_eq!(bfs_lvars(&pool, &g, 0, work), want))
            });
        }
        group.finish();
        IDEALS.with(|i| i.borrow_mut().push((micros, want.vertices)));
    }
}

thread_local! {
    static IDEALS: std::cell::RefCell<Vec<(u64, usize)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn summary() {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    for (micros, reached) in IDEALS.with(|i| i.borrow().clone()) {
        let group = format!("bf_traverse_{micros}us");
        println!(
            "\nbf_traverse, {reached} vertices reached, {micros} us of work each, {cores} core(s), criterion medians"
        );
        println!(
            "{:<12} {:>8} {:>11} {:>10} {:>10}",
            "variant", "threads", "median", "vs ideal", "vs rayon"
        );
        if let Some(seq) = median_ns(&group, "sequential") {
            println!("{:<12} {:>8} {:>9.2}ms", "sequential", 1, seq / 1e6);
        }
        // The nominal work if `work_only` was not measured.
        let work_ns = median_ns(&group, "work_only").unwrap_or(reached as f64 * micros as f64 * 1e3);
        println!(
            "{:<12} {:>8} {:>9.2}ms   (the ideal at 1 thread; nominal {:.2}ms)",
            "work_only",
            1,
            work_ns / 1e6,
            reached as f64 * micros as f64 / 1e3
        );
        for t in THREADS {
            let ideal = work_ns / t as f64;
            let rayon = median_ns(&group, &format!("rayon/{t}"));
            for v in ["rayon", "lvars"] {
                if let Some(m) = median_ns(&group, &format!("{v}/{t}")) {
                    let vs_rayon = rayon.map_or(String::from("-"), |r| format!("{:.2}x", m / r));
                    println!(
                        "{:<12} {:>8} {:>9.2}ms {:>9.2}x {:>10}",
                        v,
                        t,
                        m / 1e6,
                        m / ideal,
                        vs_rayon
                    );
                }
            }
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
