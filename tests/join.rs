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
