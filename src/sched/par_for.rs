//! A parallel loop over a range with adaptive splitting.
//!
//! The range is split in halves with `join`. Splitting stops after about
//! `log2(threads)` levels, unless a half was stolen: a stolen half starts a
//! fresh budget, so work keeps being split where other workers are idle
//! and hungry, and stays sequential (cheap) where they are not. This is
//! rayon's adaptive strategy for indexed ranges.

use std::ops::Range;

use super::join::join_on_worker;
use super::pool::global_registry;
use super::registry::WorkerThread;

/// Calls `body(i)` for every `i` in `range`, in parallel.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// let sum = AtomicU64::new(0);
/// lvars::par_for(0..1000, |i| { sum.fetch_add(i as u64, Ordering::Relaxed); });
/// assert_eq!(sum.into_inner(), 499_500);
/// ```
pub fn par_for<F>(range: Range<usize>, body: F)
where
    F: Fn(usize) + Sync + Send,
{
    par_for_grain(range, 1, body)
}

/// Like [`par_for`], but never splits below `grain` indices per piece.
pub fn par_for_grain<F>(range: Range<usize>, grain: usize, body: F)
where
    F: Fn(usize) + Sync + Send,
{
    if range.is_empty() {
        return;
    }
    let grain = grain.max(1);
    let run = |w: &WorkerThread| {
        let splits = w.registry().num_threads();
        split(w, range.clone(), grain, splits, &body);
    };
    match WorkerThread::current() {
        Some(w) => run(w),
        None => global_registry().in_worker(run),
    }
}

fn split<F: Fn(usize) + Sync>(w: &WorkerThread, range: Range<usize>, grain: usize, splits: usize, body: &F) {
    let len = range.end - range.start;
    if len <= grain || splits == 0 {
        range.for_each(body);
        return;
    }
    let mid = range.start + len / 2;
    let (left, right) = (range.start..mid, mid..range.end);
    let half = splits / 2;
    let threads = w.registry().num_threads();
    let me = w.index();
    join_on_worker(
        w,
        || split(current(), left, grain, half, body),
        || {
            // Runs on whichever worker executes it: a thief gets a fresh
            // splitting budget.
            let here = current();
            let budget = if here.index() != me { threads.max(half) } else { half };
            split(here, right, grain, budget, body)
        },
    );
}

fn current<'a>() -> &'a WorkerThread {
    WorkerThread::current().expect("par_for job off the pool")
}
