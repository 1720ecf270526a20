//! Fork-join overhead: fib with a fork at every call. Shared by
//! `benches/fork_join.rs` and `examples/report.rs`.
//!
//! [`setup`] builds one variant at a thread count (its pool included) and
//! returns a closure that runs one checked iteration, so the bench and the
//! report measure exactly the same code.

#![allow(dead_code)]

use std::future::Future;
use std::hint::black_box;
use std::num::NonZero;
use std::pin::Pin;

use lvars::{JoinHandle, Par, ParFuture, ThreadPoolBuilder};

/// The baseline, measured once (it has no thread count).
pub const SEQUENTIAL: &str = "sequential";
/// The variants measured at every thread count, in the order they are run.
pub const PARALLEL: [&str; 5] = ["rayon_join", "chili_join", "lvars_join", "lvars_fork", "tokio_spawn"];

pub fn fib_expected(n: u64) -> u64 {
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

/// `variant` (one of [`SEQUENTIAL`], [`PARALLEL`]) on its own pool of
/// `threads` workers: each call of the returned closure computes fib(`n`)
/// once and checks it. The pool lives as long as the closure.
pub fn setup(variant: &str, threads: usize, n: u64) -> Box<dyn FnMut()> {
    let want = fib_expected(n);
    match variant {
        SEQUENTIAL => Box::new(move || assert_eq!(fib_seq(black_box(n)), want)),
        "rayon_join" => {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            Box::new(move || assert_eq!(pool.install(|| fib_rayon(black_box(n))), want))
        }
        "chili_join" => {
            let pool = chili::ThreadPool::with_config(chili::Config {
                thread_count: NonZero::new(threads),
                ..Default::default()
            });
            Box::new(move || assert_eq!(fib_chili(&mut pool.scope(), black_box(n)), want))
        }
        "lvars_join" => {
            let pool = ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            Box::new(move || assert_eq!(pool.install(|| fib_join(black_box(n))), want))
        }
        "lvars_fork" => {
            let pool = ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            Box::new(move || assert_eq!(pool.run_par(|p| boxed_fib(p, black_box(n))), Ok(want)))
        }
        "tokio_spawn" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .build()
                .unwrap();
            Box::new(move || {
                assert_eq!(
                    rt.block_on(async { tokio::spawn(fib_tokio(black_box(n))).await.unwrap() }),
                    want
                )
            })
        }
        other => panic!("unknown fib variant {other:?}"),
    }
}
