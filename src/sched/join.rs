//! Synchronous fork-join on closures.
//!
//! `join(a, b)` makes `b` a [`StackJob`] in the caller's frame and pushes
//! it on the worker's private stack (published to the shared deque only if
//! another worker is hungry, see `registry.rs`), runs `a`, then pops `b`
//! back and runs it inline if it is still there: an unpublished join
//! allocates nothing and issues no atomic read-modify-write or fence. If `b`
//! was published, the caller pops it from the shared deque or, if it was
//! stolen, runs other jobs until the thief sets `b`'s latch.

use std::panic::{self, AssertUnwindSafe};

use super::job::StackJob;
use super::latch::{Latch, WorkerLatch};
use super::pool::global_registry;
use super::registry::WorkerThread;

/// Runs `a` and `b`, potentially in parallel, and returns both results.
///
/// Called outside a pool, it runs inside the global pool and blocks until
/// both are done. If either closure panics, the panic is propagated to
/// the caller once both have finished (the other closure still runs to
/// completion, as in rayon). If both panic, `b`'s panic is the one
/// propagated.
///
/// ```
/// fn fib(n: u64) -> u64 {
///     if n < 2 { return n; }
///     let (a, b) = lvars::join(|| fib(n - 1), || fib(n - 2));
///     a + b
/// }
/// assert_eq!(fib(20), 6765);
/// ```
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    match WorkerThread::current() {
        Some(w) => join_on_worker(w, a, b).0,
        None => global_registry().in_worker(|w| join_on_worker(w, a, b).0),
    }
}

/// `join` on a worker; also reports whether `b` ran on another thread
/// (used by `par_for` to split more where work is being stolen).
#[inline]
pub(crate) fn join_on_worker<A, B, RA, RB>(worker: &WorkerThread, a: A, b: B) -> ((RA, RB), bool)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let job_b = StackJob::new(b, WorkerLatch::new(worker.registry(), worker.index()));
    // SAFETY: `job_b` stays in this frame until it has run inline or its
    // latch is set (every path below waits for one of the two).
    let job_b_ref = unsafe { job_b.as_job_ref() };
    worker.push_private(job_b_ref);

    // Run `a`; if it panics we must still wait for `b`, which borrows this
    // frame, before unwinding.
    let result_a = panic::catch_unwind(AssertUnwindSafe(a));

    if worker.pop_private_if(job_b_ref.id()) {
        let result_b = job_b.run_inline();
        // Nothing left to drop: `func` was taken, `result` was never
        // written and the latch owns nothing. Skipping the drop glue keeps
        // the hot path short.
        std::mem::forget(job_b);
        return ((unwrap_or_resume(result_a), result_b), false);
    }
    // Published: pop it back from the shared deque, or wait for the thief.
    while !job_b.latch.probe() {
        match worker.pop_local() {
            Some(job) if job.id() == job_b_ref.id() => {
                let result_b = job_b.run_inline();
                return ((unwrap_or_resume(result_a), result_b), false);
            }
            // Work pushed above `b` (e.g. tasks woken by `a`): run it.
            // SAFETY: every queued JobRef is executed exactly once.
            Some(job) => unsafe { job.execute() },
            None => {
                // `b` was stolen: help until it is done. Our task (if we
                // poll one) is running, not parked: if the thief runs a
                // nested session in `b` that deadlocks, only that one is
                // reported (found by review: the outer session failed too,
                // so its result depended on whether `b` was stolen).
                let _blocked = worker.block_current_group();
                worker.wait_until(|| job_b.latch.probe());
                break;
            }
        }
    }
    let result_b = job_b.into_result();
    ((unwrap_or_resume(result_a), result_b), true)
}

fn unwrap_or_resume<R>(r: std::thread::Result<R>) -> R {
    match r {
        Ok(v) => v,
        Err(p) => panic::resume_unwind(p),
    }
}
