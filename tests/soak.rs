//! Soak test: a million tasks parked on gets of one variable, released by
//! one put; every task completes. Measures the memory of a parked get, split
//! into the task allocation and the waiter node, and prints it.
//!
//! # How it measures
//!
//! A counting global allocator keeps, besides live allocations and bytes,
//! the number of live allocations of each size (in 8-byte classes). The
//! parked phase runs on a one-worker pool, so the body's task, which takes
//! the measurement, only runs when no other task is being polled: when it
//! sees every getter parked, every getter's poll (and its registration in
//! the session's parked registry) has finished. The body forks the getters
//! in batches of 1,000 and yields between batches, so the scheduler's
//! queues stay small and the delta is what the parked gets themselves hold.
//!
//! The size of one waiter node is measured on its own first (one get of the
//! session-less core, polled on this thread, allocates exactly its node);
//! the task allocation is the other size class with exactly one live
//! allocation per parked get. Whatever remains is shared overhead (the
//! session's registry of parked tasks, a `Vec` of one pointer per task).
//!
//! Everything runs in one `#[test]`, so no other test of this binary
//! allocates during a measurement.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use lvars::data::RawIVar;
use lvars::lattice::Max;
use lvars::lvar::RawLVar;
use lvars::{yield_now, IVar, LVar, Par, ThreadPool, ThreadPoolBuilder};

// ---------------------------------------------------------------------------
// The counting allocator

struct CountingAlloc;

/// Size classes of 8 bytes up to `CLASSES * 8`; larger allocations share
/// the last class.
const CLASSES: usize = 129;

static LIVE_ALLOCS: AtomicIsize = AtomicIsize::new(0);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static BY_SIZE: [AtomicIsize; CLASSES] = [const { AtomicIsize::new(0) }; CLASSES];

fn class(size: usize) -> usize {
    size.div_ceil(8).min(CLASSES - 1)
}

fn note(size: usize, delta: isize) {
    LIVE_ALLOCS.fetch_add(delta, SeqCst);
    LIVE_BYTES.fetch_add(delta * size as isize, SeqCst);
    BY_SIZE[class(size)].fetch_add(delta, SeqCst);
}

// SAFETY: every call is forwarded unchanged to `System`; the wrapper only
// updates atomic counters (which never allocates).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size(), 1);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size(), 1);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(layout.size(), -1);
            note(new_size, 1);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(layout.size(), -1);
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// A copy of the counters.
#[derive(Clone, Copy)]
struct Snapshot {
    allocs: isize,
    bytes: isize,
    by_size: [isize; CLASSES],
}

fn snapshot() -> Snapshot {
    let mut by_size = [0; CLASSES];
    for (s, c) in by_size.iter_mut().zip(&BY_SIZE) {
        *s = c.load(SeqCst);
    }
    Snapshot {
        allocs: LIVE_ALLOCS.load(SeqCst),
        bytes: LIVE_BYTES.load(SeqCst),
        by_size,
    }
}

/// Live allocations, bytes and per-size counts that appeared between two
/// snapshots.
struct Delta {
    bytes: isize,
    by_size: [isize; CLASSES],
}

impl Snapshot {
    fn since(&self, before: &Snapshot) -> Delta {
        let mut by_size = [0; CLASSES];
        for (i, d) in by_size.iter_mut().enumerate() {
            *d = self.by_size[i] - before.by_size[i];
        }
        Delta {
            bytes: self.bytes - before.bytes,
            by_size,
        }
    }
}

impl Delta {
    /// Size classes (in bytes, rounded up to 8) with `n` new live
    /// allocations, give or take a few made by other threads (the test
    /// harness's main thread may allocate at any time).
    fn classes_near(&self, n: usize) -> Vec<usize> {
        let n = n as isize;
        (1..CLASSES - 1)
            .filter(|&c| (n..n + 64).contains(&self.by_size[c]))
            .map(|c| c * 8)
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Getters

static PARKED: AtomicUsize = AtomicUsize::new(0);
static DONE: AtomicUsize = AtomicUsize::new(0);
/// The size of the future each getter task runs (the task allocation holds
/// it after the task's header).
static FUTURE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// Awaits `get`, counting in `PARKED` when its first poll did not resolve
/// (its node is then linked) and in `DONE` when it resolved.
async fn counted<F: Future>(get: F) -> F::Output {
    let mut get = pin!(get);
    let out = match poll_fn(|cx| Poll::Ready(get.as_mut().poll(cx))).await {
        Poll::Ready(out) => out,
        Poll::Pending => {
            PARKED.fetch_add(1, SeqCst);
            // Polled again with the same waker: stays registered, no new node.
            get.await
        }
    };
    DONE.fetch_add(1, SeqCst);
    out
}

fn one_worker() -> ThreadPool {
    ThreadPoolBuilder::new().num_threads(1).build().unwrap()
}

/// The size of the allocation a get makes when it is polled once on this
/// thread and stays registered (its node): 1,000 such gets, the size class
/// with 1,000 new allocations (robust to a stray allocation of the test
/// harness's main thread).
fn node_size<F: Future>(make_get: impl Fn() -> F) -> usize {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    const GETS: usize = 1_000;
    let waker = Waker::from(Arc::new(Noop));
    let mut gets: Vec<_> = (0..GETS).map(|_| Box::pin(make_get())).collect();
    let before = snapshot();
    for get in &mut gets {
        assert!(get.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
    }
    let d = snapshot().since(&before);
    let sizes = d.classes_near(GETS);
    assert_eq!(
        sizes.len(),
        1,
        "size classes with one allocation per parked get: {sizes:?}"
    );
    sizes[0]
}

/// Per parked get, in bytes.
#[derive(Debug)]
struct PerGet {
    total: f64,
    task: usize,
    /// Of which the task's future.
    future: usize,
    node: usize,
    /// Allocations the payload of the node owns (a threshold set's Vec).
    payload: usize,
    other: f64,
}

/// Forks `n` tasks made by `task` a thousand at a time, yielding in between
/// so that they park, and waits until all of them are parked. Returns the
/// live memory before the forks and with every task parked.
async fn park_all<'s, F: Future<Output = ()> + Send + 's>(
    n: usize,
    mut task: impl FnMut() -> F,
    p: Par<'s>,
) -> (Snapshot, Snapshot) {
    let before = snapshot();
    for _ in 0..n / 1_000 {
        for _ in 0..1_000 {
            let task = task();
            FUTURE_SIZE.store(std::mem::size_of_val(&task), SeqCst);
            p.fork(task);
        }
        yield_now().await;
    }
    while PARKED.load(SeqCst) < n {
        yield_now().await;
    }
    (before, snapshot())
}

/// Measures `n` tasks parked on one IVar, releases them with one put, and
/// checks they all complete.
fn ivar_soak(n: usize, node: usize) -> Soak {
    soak(n, node, 0, |pool| {
        pool.run_par(move |p| {
            Box::pin(async move {
                let iv: IVar<u64> = IVar::new(p);
                let get = || {
                    let iv = iv.clone();
                    async move { assert_eq!(*counted(iv.get()).await, 7) }
                };
                let counts = park_all(n, get, p).await;
                assert_eq!(DONE.load(SeqCst), 0);
                iv.put(7).unwrap();
                counts
            })
        })
        .unwrap()
    })
}

/// The same with a one-threshold `get_at_least` of an `LVar<Max<u64>>`
/// (the threshold is stored in the waiter node).
fn lvar_soak(n: usize, node: usize, payload: usize) -> Soak {
    soak(n, node, payload, |pool| {
        pool.run_par(move |p| {
            Box::pin(async move {
                let lv: LVar<Max<u64>> = LVar::new(p);
                let get = || {
                    let lv = lv.clone();
                    async move {
                        let got = counted(lv.get_at_least(Max::new(7)).unwrap()).await;
                        assert_eq!(got.get(), Some(&7));
                    }
                };
                let counts = park_all(n, get, p).await;
                lv.put(Max::new(9)).unwrap();
                counts
            })
        })
        .unwrap()
    })
}

/// What a soak run measured.
#[derive(Debug)]
struct Soak {
    per_get: PerGet,
    /// Bytes still live after the run (pool dropped) until the epoch was
    /// flushed: the released gets' nodes, waiting for the epoch.
    retained_until_epoch: isize,
    /// Allocations and bytes still live after flushing: must be zero.
    leaked: (isize, isize),
}

/// Runs `run` (which returns the counts before forking and while every get
/// is parked) on a fresh one-worker pool, checks every get completed, and
/// what stays live afterwards.
fn soak(n: usize, node: usize, payload: usize, run: impl FnOnce(&ThreadPool) -> (Snapshot, Snapshot)) -> Soak {
    PARKED.store(0, SeqCst);
    DONE.store(0, SeqCst);
    let start = drain_epoch();
    let pool = one_worker();
    let (before, parked) = run(&pool);
    assert_eq!(DONE.load(SeqCst), n, "every parked get completed after the put");
    drop(pool);
    let ended = snapshot();
    let end = drain_epoch();
    Soak {
        per_get: split(parked.since(&before), n, node, payload),
        retained_until_epoch: ended.bytes - start.bytes,
        leaked: (end.allocs - start.allocs, end.bytes - start.bytes),
    }
}

/// Flushes crossbeam-epoch until its garbage is gone and returns the low
/// point of the counts. (They never settle on one value: popping a bag from
/// the epoch's global queue retires the queue's old node through the epoch,
/// so successive flushes alternate between two states one 2 KiB node
/// apart; `tests/leaks.rs` explains it.)
fn drain_epoch() -> Snapshot {
    let mut low = snapshot();
    let mut since_low = 0;
    // Each flush frees a few bags of 64 deferred frees: a million nodes take
    // a few thousand flushes.
    while since_low < 256 {
        crossbeam_epoch::pin().flush();
        let now = snapshot();
        if (now.allocs, now.bytes) < (low.allocs, low.bytes) {
            low = now;
            since_low = 0;
        } else {
            since_low += 1;
        }
    }
    low
}

/// Splits the growth of live memory over `n` parked gets into the task
/// allocation, the node, the node's payload allocation and the rest.
fn split(d: Delta, n: usize, node: usize, payload: usize) -> PerGet {
    let per_get = d.classes_near(n);
    // One node per parked get (and one payload allocation, if any).
    assert!(
        per_get.contains(&node),
        "no {node}-byte class with {n} live nodes: {per_get:?}"
    );
    if payload != 0 {
        assert!(per_get.contains(&payload), "no {payload}-byte payloads: {per_get:?}");
    }
    // Exactly one other class with one allocation per parked get: the task.
    let tasks: Vec<usize> = per_get.into_iter().filter(|&s| s != node && s != payload).collect();
    assert_eq!(
        tasks.len(),
        1,
        "classes with one allocation per parked get besides the node: {tasks:?}"
    );
    let task = tasks[0];
    let total = d.bytes as f64 / n as f64;
    PerGet {
        total,
        task,
        future: FUTURE_SIZE.load(SeqCst),
        node,
        payload,
        other: total - (task + node + payload) as f64,
    }
}

#[test]
fn a_million_parked_gets_are_released_by_one_put() {
    // A million in release mode (about a second); fewer in debug builds.
    let n = if cfg!(debug_assertions) { 100_000 } else { 1_000_000 };

    let iv: RawIVar<u64> = RawIVar::new();
    let ivar_node = node_size(|| iv.get());
    let lv: RawLVar<Max<u64>> = RawLVar::new();
    let lvar_node = node_size(|| lv.get_at_least(Max::new(7)).unwrap());
    // A one-element threshold set is stored inline in the node: no
    // allocation of its own.
    let lvar_payload = 0;
    drop((iv, lv));
    // Warm-up: lazily-made structures (the pool's, the epoch's) exist
    // before the first count.
    let _ = ivar_soak(1_000, ivar_node);

    let ivar = ivar_soak(n, ivar_node);
    let lvar = lvar_soak(n, lvar_node, lvar_payload);
    for (what, s) in [("IVar<u64>::get", &ivar), ("LVar<Max<u64>>::get_at_least", &lvar)] {
        let m = &s.per_get;
        let payload = if m.payload != 0 {
            format!(" + threshold Vec {}", m.payload)
        } else {
            String::new()
        };
        println!(
            "{n} parked {what}: {:.1} bytes per parked get = task {} (header and stage {}, future {}) \
             + waiter node {}{payload} + other {:.1} (the session's registry of parked tasks); after the put \
             and the run, {:.1} bytes per get stayed live until the epoch was flushed",
            m.total,
            m.task,
            m.task - m.future,
            m.future,
            m.node,
            m.other,
            s.retained_until_epoch as f64 / n as f64,
        );
    }
    for s in [&ivar, &lvar] {
        assert_eq!(s.leaked, (0, 0), "allocations and bytes left after the run: {s:?}");
        // The shared overhead is the parked registry: a pointer per task, in
        // a Vec whose capacity is at most twice its length.
        assert!(s.per_get.other <= 16.5, "{s:?}");
    }
    // The target: at most 64 bytes of waiter node beyond the task,
    // for the IVar and for a one-threshold get of a generic LVar.
    for (what, s) in [("IVar", &ivar), ("LVar", &lvar)] {
        let beyond_task = s.per_get.node + s.per_get.payload;
        assert!(beyond_task <= 64, "{what} waiter node is {beyond_task} bytes");
    }
}
