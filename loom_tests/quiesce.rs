//! Handler-pool quiescence (`src/par/handlers.rs`): a quiesce waiter is
//! always woken when the last callback finishes, and never resolves while
//! a callback started by another callback is still running. Callbacks
//! start and finish on different stripes (as on different workers), so
//! the totals are sums over stripes.

use loom::future::block_on;
use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

use lvars::sched::loom_exports::{flush_deferred, PoolState};

#[test]
fn the_last_finish_wakes_a_quiesce_waiter() {
    loom::model(|| {
        let pool = Arc::new(PoolState::new());
        pool.start_on(0);
        let callback = {
            let pool = pool.clone();
            thread::spawn(move || pool.finish_on(1))
        };
        block_on(pool.quiesce());
        callback.join().unwrap();
        flush_deferred();
    });
}

#[test]
fn quiesce_waits_for_callbacks_started_by_callbacks() {
    loom::model(|| {
        let pool = Arc::new(PoolState::new());
        let child_done = Arc::new(AtomicBool::new(false));
        pool.start_on(0); // the first callback is running
        let first = {
            let (pool, child_done) = (pool.clone(), child_done.clone());
            thread::spawn(move || {
                // It inserts an element: the child callback is counted
                // before the first one finishes.
                pool.start_on(1);
                let child = {
                    let (pool, child_done) = (pool.clone(), child_done.clone());
                    thread::spawn(move || {
                        child_done.store(true, SeqCst);
                        pool.finish_on(0);
                    })
                };
                pool.finish_on(1);
                child.join().unwrap();
            })
        };
        block_on(pool.quiesce());
        assert!(child_done.load(SeqCst), "quiesce resolved while a callback was running");
        first.join().unwrap();
        flush_deferred();
    });
}

#[test]
fn two_last_finishes_on_different_stripes_wake_the_waiter() {
    loom::model(|| {
        let pool = Arc::new(PoolState::new());
        pool.start_on(0);
        pool.start_on(1);
        // Two callbacks finish at once, each on its own stripe: whichever
        // is last in the SeqCst order sees both increments.
        let finishers: Vec<_> = [0, 1]
            .into_iter()
            .map(|s| {
                let pool = pool.clone();
                thread::spawn(move || pool.finish_on(s))
            })
            .collect();
        block_on(pool.quiesce());
        for f in finishers {
            f.join().unwrap();
        }
        flush_deferred();
    });
}
