//! Fork-join overhead: fib with a fork at every call.
//!
//! Variants, all measured in the same run at 1 and 2 threads: sequential,
//! `rayon::join`, chili's `Scope::join`, our `join`, our `fork` + await,
//! and tokio `spawn` + await. Every iteration checks the fib value.
//! After criterion finishes, a table of ratios to sequential (medians from
//! criterion's own estimates) is printed.
//!
//! `cargo bench --bench fork_join`; `LVARS_FIB_N=32` picks another size.

use std::future::Future;
use std::hint::black_box;
use std::num::NonZero;
use std::pin::Pin;
use std::time::Duration;

use common::median_ns;
use criterion::{criterion_group, BenchmarkId, Criterion};
use lvars::{JoinHandle, Par, ParFuture, ThreadPoolBuilder};

mod common;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const THREADS: [usize; 2] = [1, 2];

fn fib_n() -> u64 {
    std::env::var("LVARS_FIB_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

fn fib_expected(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

fn fib_seq(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    fib_seq(n - 1) + fib_seq(n - 2)
}

fn fib_rayon(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = rayon::join(|| fib_rayon(n - 1), || fib_rayon(n - 2));
    a + b
}

fn fib_chili(s: &mut chili::Scope<'_>, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = s.join(|s| fib_chili(s, n - 1), |s| fib_chili(s, n - 2));
    a + b
}

fn fib_join(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = lvars::join(|| fib_join(n - 1), || fib_join(n - 2));
    a + b
}

// The forked child is stored unboxed in its task: a plain function that
// forks (`spawn_fib`) gives the compiler a concrete type to check `Send` on,
// so only the inline call of the recursion needs a box. Both async variants
// are written the same way.
fn spawn_fib(p: Par<'_>, n: u64) -> JoinHandle<u64> {
    p.fork(fib_fork(p, n))
}

fn boxed_fib<'s>(p: Par<'s>, n: u64) -> ParFuture<'s, u64> {
    Box::pin(fib_fork(p, n))
}

async fn fib_fork(p: Par<'_>, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let a = spawn_fib(p, n - 1);
    let b = boxed_fib(p, n - 2).await;
    a.await + b
}

fn spawn_fib_tokio(n: u64) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(fib_tokio(n))
}

fn boxed_fib_tokio(n: u64) -> Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(fib_tokio(n))
}

async fn fib_tokio(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let a = spawn_fib_tokio(n - 1);
    let b = boxed_fib_tokio(n - 2).await;
    a.await.unwrap() + b
}

fn bench(c: &mut Criterion) {
    let n = fib_n();
    let want = fib_expected(n);
    let mut g = c.benchmark_group(format!("fib{n}"));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    g.bench_function("sequential", |b| b.iter(|| assert_eq!(fib_seq(black_box(n)), want)));

    for t in THREADS {
        let rayon_pool = rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap();
        g.bench_with_input(BenchmarkId::new("rayon_join", t), &t, |b, _| {
            b.iter(|| assert_eq!(rayon_pool.install(|| fib_rayon(black_box(n))), want))
        });
        drop(rayon_pool);

        let chili_pool = chili::ThreadPool::with_config(chili::Config {
            thread_count: NonZero::new(t),
            ..Default::default()
        });
        g.bench_with_input(BenchmarkId::new("chili_join", t), &t, |b, _| {
            b.iter(|| assert_eq!(fib_chili(&mut chili_pool.scope(), black_box(n)), want))
        });
        drop(chili_pool);

        let pool = ThreadPoolBuilder::new().num_threads(t).build().unwrap();
        g.bench_with_input(BenchmarkId::new("lvars_join", t), &t, |b, _| {
            b.iter(|| assert_eq!(pool.install(|| fib_join(black_box(n))), want))
        });
        g.bench_with_input(BenchmarkId::new("lvars_fork", t), &t, |b, _| {
            b.iter(|| assert_eq!(pool.run_par(|p| boxed_fib(p, black_box(n))), Ok(want)))
        });
        drop(pool);

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(t)
            .build()
            .unwrap();
        g.bench_with_input(BenchmarkId::new("tokio_spawn", t), &t, |b, _| {
            b.iter(|| {
                assert_eq!(
                    rt.block_on(async { tokio::spawn(fib_tokio(black_box(n))).await.unwrap() }),
                    want
                )
            })
        });
        drop(rt);
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
        for v in ["rayon_join", "chili_join", "lvars_join", "lvars_fork", "tokio_spawn"] {
            if let Some(m) = median_ns(&group, &format!("{v}/{t}")) {
                println!("{:<14} {:>8} {:>10.3}ms {:>9.2}x", v, t, m / 1e6, m / seq);
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
