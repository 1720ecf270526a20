//! Handler callbacks do not keep the callbacks that spawned them alive,
//! and elements waiting for their callbacks are small.
//!
//! A handler callback that inserts an element spawns the next callback
//! (detached: nobody awaits it). Before detached tasks were counted by the
//! session (`src/sched/detached.rs`), each task stayed allocated until
//! every task it spawned had finished, so a chain of callbacks (0 inserts
//! 1, which inserts 2, ...) held every one of its tasks until the end. This
//! test runs such a chain and checks, with a counting allocator, that the
//! session's peak memory does not grow with the chain's length.
//!
//! Everything runs in one `#[test]`, so no other test of this binary
//! allocates during the measurement.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::SeqCst};

use lvars::{Freeze, HandlerPool, ISet, ThreadPoolBuilder};

struct PeakAlloc;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn note(delta: isize) {
    let now = LIVE.fetch_add(delta, SeqCst) + delta;
    PEAK.fetch_max(now, SeqCst);
}

// SAFETY: every call is forwarded unchanged to `System`; the wrapper only
// updates atomic counters (which never allocates).
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: PeakAlloc = PeakAlloc;

/// The peak memory of `run(pool, n)` above what was live before it, on a
/// pool of `threads` workers warmed up by `run(pool, 64)` (its queues and
/// task caches).
fn peak_of(threads: usize, n: u32, run: fn(&lvars::ThreadPool, u32)) -> isize {
    let pool = ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    run(&pool, 64);
    let before = LIVE.load(SeqCst);
    PEAK.store(before, SeqCst);
    run(&pool, n);
    PEAK.load(SeqCst) - before
}

/// A chain of `n` callbacks, each inserting the next element.
fn run_chain(pool: &lvars::ThreadPool, n: u32) {
    run_handler(pool, n, false);
}

/// The session's body inserts `n` elements at once, all queued for their
/// callbacks before the first runs (on one worker).
fn run_wide(pool: &lvars::ThreadPool, n: u32) {
    run_handler(pool, n, true);
}

/// Elements `0..n` through a handler: inserted by the body (`wide`), or
/// each by the callback of the one before.
fn run_handler(pool: &lvars::ThreadPool, n: u32, wide: bool) {
    let reached = pool
        .run_par_then_freeze(move |p| {
            Box::pin(async move {
                let set: ISet<u32> = ISet::dense(p, n as usize);
                let handlers = HandlerPool::new(p);
                let s = set;
                handlers
                    .add_handler(&set, move |v| async move {
                        if !wide && v + 1 < n {
                            s.insert(v + 1).unwrap();
                        }
                    })
                    .unwrap();
                for v in 0..if wide { n } else { 1 } {
                    set.insert(v).unwrap();
                }
                set.then_freeze()
            })
        })
        .unwrap();
    assert_eq!(reached.len(), n as usize);
}

#[test]
fn a_chain_of_callbacks_runs_in_constant_memory_and_queued_elements_are_small() {
    const N: u32 = 20_000;
    for threads in [1, 2] {
        let peak = peak_of(threads, N, run_chain);
        println!("{threads} worker(s): peak {peak} bytes for a chain of {N} callbacks");
        // Freezing takes 12 bytes an element (the dense set's indices, then
        // the result); one task block kept per callback would add 100 bytes
        // or more an element (about 176 before the fix).
        assert!(
            peak < N as isize * 24,
            "{threads} worker(s): the session's peak grew by {peak} bytes for {N} callbacks"
        );
    }
    // A wide frontier: every element waits for its callback at once. Queued
    // as a 32-byte job, with a 16-byte slot in the worker's private stack
    // and then in its deque (both grow by doubling), it costs about 105
    // bytes (freezing included); a task made at delivery instead took about
    // 200 (a 128-byte block for this small callback, 256 for a traversal's).
    let peak = peak_of(1, N, run_wide);
    println!("1 worker: peak {peak} bytes for {N} elements queued at once");
    assert!(
        peak < N as isize * 150,
        "the session's peak grew by {peak} bytes for {N} queued elements"
    );
}
