use std::sync::atomic::{AtomicUsize, Ordering};

use lvars::{join, par_for, ThreadPoolBuilder};

fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = join(|| fib(n - 1), || fib(n - 2));
    a + b
}

#[test]
fn join_computes_fib_on_every_pool_size() {
    for threads in [1, 2, 4, 8] {
        let pool = ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        assert_eq!(pool.install(|| fib(25)), 75025, "threads = {threads}");
    }
}

#[test]
fn join_from_outside_uses_global_pool() {
    assert_eq!(fib(20), 6765);
}

#[test]
fn par_for_visits_every_index_once() {
    let pool = ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    let hits: Vec<AtomicUsize> = (0..10_000).map(|_| AtomicUsize::new(0)).collect();
    pool.install(|| {
        par_for(0..10_000, |i| {
            hits[i].fetch_add(1, Ordering::Relaxed);
        })
    });
    assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
}

#[test]
fn panic_in_join_propagates_after_both_sides_finish() {
    let pool = ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let done = AtomicUsize::new(0);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.install(|| {
            join(
                || panic!("left side fails"),
                || {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    done.fetch_add(1, Ordering::SeqCst);
                },
            )
        })
    }));
    assert!(r.is_err());
    assert_eq!(
        done.load(Ordering::SeqCst),
        1,
        "right side must finish before the panic propagates"
    );
    // The pool is still usable.
    assert_eq!(pool.install(|| fib(15)), 610);
}

/// With one worker nobody can steal `b`: it is still on the worker's
/// private stack when `a` panics, and must still run before the panic
/// leaves `join`. If `b` panics too, `b`'s panic is the one propagated (as
/// documented; the same when `b` was stolen).
#[test]
fn a_panic_in_join_runs_the_unstolen_right_side_first() {
    let pool = ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    for right_panics in [false, true] {
        let done = AtomicUsize::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.install(|| {
                join(
                    || -> u32 { panic!("left side fails") },
                    || {
                        done.fetch_add(1, Ordering::SeqCst);
                        if right_panics {
                            panic!("right side fails too");
                        }
                        fib(10)
                    },
                )
            })
        }));
        let want = if right_panics {
            "right side fails too"
        } else {
            "left side fails"
        };
        assert_eq!(r.unwrap_err().downcast_ref::<&str>(), Some(&want));
        assert_eq!(done.load(Ordering::SeqCst), 1, "right side panics: {right_panics}");
        assert_eq!(pool.install(|| fib(15)), 610);
    }
}
