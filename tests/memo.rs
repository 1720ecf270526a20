//! Parallel memo tables: each key computed exactly once under concurrent
//! getters, every getter gets the one value (after it exists), cycles among
//! keys are `Error::Cycle` in every run (never a hang), panics propagate,
//! and the pool is healthy afterwards.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use lvars::{Error, Memo, ThreadPool};

mod common;
use common::{pool, within};

const RUNS: usize = 30;
const POOLS: [usize; 3] = [1, 2, 8];

/// C(n, k) by the closed form, to check the memoised recurrence against.
fn binomial(n: u64, k: u64) -> u64 {
    (0..k).fold(1, |acc, i| acc * (n - i) / (i + 1))
}

/// Memoised Fibonacci, counting computations per key.
fn fib_session(pool: &ThreadPool, n: u64, getters: u64) -> (Result<Vec<u64>, Error>, Vec<usize>) {
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..=n).map(|_| AtomicUsize::new(0)).collect());
    let c = Arc::clone(&counts);
    let r = pool.run_par(move |p| {
        Box::pin(async move {
            let fib = Memo::new(p, move |fib, k: u64| {
                c[k as usize].fetch_add(1, SeqCst);
                async move {
                    if k < 2 {
                        k
                    } else {
                        let (a, b) = (fib.get(k - 1), fib.get(k - 2));
                        a.await + b.await
                    }
                }
            });
            // Many tasks asking for overlapping keys, from the top and from
            // the middle, at once.
            let handles: Vec<_> = (0..getters)
                .map(|i| {
                    let fib = fib.clone();
                    p.fork(async move { fib.get(n - (i * 7) % (n / 2)).await })
                })
                .collect();
            let mut out = Vec::new();
            for h in handles {
                out.push(h.await);
            }
            out.push(fib.get(n).await);
            out
        })
    });
    let counts = counts.iter().map(|c| c.load(SeqCst)).collect();
    (r, counts)
}

#[test]
fn fib_each_key_computed_exactly_once() {
    let n = 80u64;
    let mut fibs = vec![0u64, 1];
    for i in 2..=n as usize {
        fibs.push(fibs[i - 1] + fibs[i - 2]);
    }
    for threads in POOLS {
        let pool = pool(threads);
        for run in 0..RUNS {
            let (r, counts) = fib_session(&pool, n, 16);
            let values = r.unwrap_or_else(|e| panic!("threads {threads}, run {run}: {e}"));
            let expected: Vec<u64> = (0..16)
                .map(|i| fibs[(n - (i * 7) % (n / 2)) as usize])
                .chain([fibs[n as usize]])
                .collect();
            assert_eq!(values, expected, "threads {threads}, run {run}");
            assert_eq!(counts, vec![1; n as usize + 1], "threads {threads}, run {run}");
        }
    }
}

/// Lattice paths on a grid: paths(i, j) = paths(i - 1, j) + paths(i, j - 1),
/// a DAG where most keys are needed by two others. The computation forks
/// one of its gets into a subtask (a get through the computation's handle
/// from another task), and many tasks get overlapping corners.
#[test]
fn lattice_paths_dag_each_key_once_with_forked_gets() {
    const N: u32 = 14;
    for threads in POOLS {
        let pool = pool(threads);
        for run in 0..RUNS {
            let counts: Arc<Mutex<HashMap<(u32, u32), usize>>> = Arc::default();
            let c = Arc::clone(&counts);
            let r = pool.run_par(move |p| {
                Box::pin(async move {
                    let paths = Memo::new(p, move |paths, (i, j): (u32, u32)| {
                        *c.lock().unwrap().entry((i, j)).or_default() += 1;
                        async move {
                            if i == 0 || j == 0 {
                                1u64
                            } else {
                                let up = {
                                    let paths = paths.clone();
                                    p.fork(async move { paths.get((i - 1, j)).await })
                                };
                                let left = paths.get((i, j - 1)).await;
                                up.await + left
                            }
                        }
                    });
                    let handles: Vec<_> = (0..=N)
                        .flat_map(|i| [(i, N), (N, i), (i, i)])
                        .map(|key| {
                            let paths = paths.clone();
                            p.fork(async move { (key, paths.get(key).await) })
                        })
                        .collect();
                    let mut out = Vec::new();
                    for h in handles {
                        out.push(h.await);
                    }
                    out
                })
            });
            let values = r.unwrap_or_else(|e| panic!("threads {threads}, run {run}: {e}"));
            for ((i, j), v) in values {
                let expected = binomial(u64::from(i + j), u64::from(i));
                assert_eq!(v, expected, "paths({i}, {j}), threads {threads}, run {run}");
            }
            let counts = counts.lock().unwrap();
            assert_eq!(counts.len(), ((N + 1) * (N + 1)) as usize, "every key is needed");
            for (key, &n) in counts.iter() {
                assert_eq!(n, 1, "key {key:?} computed {n} times, threads {threads}, run {run}");
            }
        }
    }
}

/// Many getters of one slow key: one computation, and every getter returns
/// only after the value exists, with that value.
#[test]
fn concurrent_getters_of_one_key_park_until_the_value_exists() {
    for threads in POOLS {
        let pool = pool(threads);
        for run in 0..RUNS {
            let computed = Arc::new(AtomicUsize::new(0));
            let done = Arc::new(AtomicBool::new(false));
            let (c, d) = (Arc::clone(&computed), Arc::clone(&done));
            let r = pool.run_par(move |p| {
                Box::pin(async move {
                    let slow = Memo::new(p, move |_, k: u32| {
                        c.fetch_add(1, SeqCst);
                        let d = Arc::clone(&d);
                        async move {
                            for _ in 0..50 {
                                lvars::yield_now().await;
                            }
                            d.store(true, SeqCst);
                            vec![k; 3]
                        }
                    });
                    let done = Arc::clone(&done);
                    let handles: Vec<_> = (0..32)
                        .map(|_| {
                            let (slow, done) = (slow.clone(), Arc::clone(&done));
                            p.fork(async move {
                                let v = slow.get(7).await;
                                // The value exists only once the computation is done.
                                assert!(done.load(SeqCst), "a getter returned before the value existed");
                                v
                            })
                        })
                        .collect();
                    let mut out = Vec::new();
                    for h in handles {
                        out.push(h.await);
                    }
                    out
                })
            });
            assert_eq!(r, Ok(vec![vec![7, 7, 7]; 32]), "threads {threads}, run {run}");
            assert_eq!(computed.load(SeqCst), 1, "threads {threads}, run {run}");
        }
    }
}

/// A session whose memo table has `cycle` keys 0 -> 1 -> ... -> 0 (each
/// gets the next), reached from an acyclic key 100 -> 0, plus unrelated
/// acyclic keys being computed concurrently.
fn cycle_session(pool: &ThreadPool, cycle: u32) -> Result<u64, Error> {
    pool.run_par(move |p| {
        Box::pin(async move {
            let m = Memo::new(p, move |m, k: u32| async move {
                match k {
                    100 => m.get(0).await + 1,
                    k if k < cycle => m.get((k + 1) % cycle).await + 1,
                    k if k >= 200 => {
                        if k == 200 {
                            0
                        } else {
                            m.get(k - 1).await + 1
                        }
                    }
                    _ => 0,
                }
            });
            let side = {
                let m = m.clone();
                p.fork(async move { m.get(220).await })
            };
            let direct = {
                let m = m.clone();
                p.fork(async move { m.get(cycle - 1).await })
            };
            let via = m.get(100).await;
            via + side.await + direct.await
        })
    })
}

fn healthy(pool: &ThreadPool) -> Result<u64, Error> {
    pool.run_par(|p| {
        Box::pin(async move {
            let tri = Memo::new(p, |tri, n: u64| async move {
                if n == 0 {
                    0
                } else {
                    tri.get(n - 1).await + n
                }
            });
            tri.get(200).await
        })
    })
}

fn expect_cycle(cycle: u32) {
    for threads in POOLS {
        let outcomes = within(30, &format!("{cycle}-cycle, {threads} thread(s)"), move || {
            let pool = pool(threads);
            (0..RUNS)
                .map(|_| (cycle_session(&pool, cycle), healthy(&pool)))
                .collect::<Vec<_>>()
        });
        for (run, (r, after)) in outcomes.into_iter().enumerate() {
            assert_eq!(
                r,
                Err(Error::Cycle { lvar: "Memo" }),
                "{cycle}-cycle, threads {threads}, run {run}"
            );
            assert_eq!(
                after,
                Ok(200 * 201 / 2),
                "pool after a cycle, threads {threads}, run {run}"
            );
        }
    }
}

#[test]
fn two_cycle_is_reported() {
    expect_cycle(2);
}

#[test]
fn three_cycle_is_reported() {
    expect_cycle(3);
}

#[test]
fn self_dependency_is_a_cycle() {
    expect_cycle(1);
}

/// Control for the cycle tests: the same program without a cycle (keys
/// 0..cycle form a chain ending in a constant) succeeds in every run, so
/// the cycle reports are not false positives of the shape of the program.
#[test]
fn same_shape_without_cycle_succeeds() {
    for threads in POOLS {
        let pool = pool(threads);
        for run in 0..RUNS {
            let r = pool.run_par(|p| {
                Box::pin(async move {
                    let m = Memo::new(p, |m, k: u32| async move {
                        match k {
                            100 => m.get(0).await + 1,
                            k if k < 2 => m.get(k + 1).await + 1,
                            _ => 0u64,
                        }
                    });
                    let direct = {
                        let m = m.clone();
                        p.fork(async move { m.get(1).await })
                    };
                    m.get(100).await + direct.await
                })
            });
            assert_eq!(r, Ok(3 + 1), "threads {threads}, run {run}");
        }
    }
}

#[test]
fn cycle_error_message_is_clear() {
    let msg = Error::Cycle { lvar: "Memo" }.to_string();
    assert!(msg.contains("cycle") && msg.contains("Memo"), "{msg}");
}

#[test]
fn panicking_computation_propagates_from_the_runner() {
    for threads in POOLS {
        let pool = pool(threads);
        for run in 0..RUNS {
            let caught = catch_unwind(AssertUnwindSafe(|| {
                pool.run_par(|p| {
                    Box::pin(async move {
                        let m = Memo::new(p, |m, k: u32| async move {
                            if k == 3 {
                                panic!("memo computation of key 3 failed");
                            }
                            if k == 0 {
                                0
                            } else {
                                m.get(k - 1).await + 1
                            }
                        });
                        m.get(10).await
                    })
                })
            }));
            let payload = caught.expect_err("the panic must reach the runner");
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            assert_eq!(msg, "memo computation of key 3 failed", "threads {threads}, run {run}");
            assert_eq!(
                healthy(&pool),
                Ok(200 * 201 / 2),
                "pool after a panic, threads {threads}"
            );
        }
    }
}
