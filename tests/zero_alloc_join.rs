//! An unstolen `join` allocates nothing: both closures live in the caller's
//! stack frame. With one worker nothing can be stolen, so thousands of
//! nested joins must not allocate at all.
//!
//! Allocations are counted per thread, only while the thread is "armed",
//! so the test harness and other tests' threads cannot interfere.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use lvars::{join, par_for, ThreadPool, ThreadPoolBuilder};

struct CountingAlloc;

thread_local! {
    // Const-initialised and without destructors: accessing them never
    // allocates, so they are safe to use inside the allocator.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc() {
    // `try_with`: the allocator may run while thread locals are torn down.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: forwards every call to `System` unchanged; it only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations made by the current thread while running `f`.
fn allocations_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCS.with(Cell::get);
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (r, ALLOCS.with(Cell::get) - before)
}

/// fib by nested joins, counting the joins.
fn fib(n: u64, joins: &AtomicUsize) -> u64 {
    if n < 2 {
        return n;
    }
    joins.fetch_add(1, Relaxed);
    let (a, b) = join(|| fib(n - 1, joins), || fib(n - 2, joins));
    a + b
}

fn one_worker_pool() -> ThreadPool {
    let pool = ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    // Warm-up: first use of the worker's deque, thread locals, etc.
    let joins = AtomicUsize::new(0);
    assert_eq!(pool.install(|| fib(15, &joins)), 610);
    pool
}

#[test]
fn the_counter_sees_allocations_on_the_worker() {
    // Sanity check of the instrument itself: an allocation on the worker
    // while armed is counted, one made while disarmed is not.
    let pool = one_worker_pool();
    let (armed, disarmed) = pool.install(|| {
        let (b, armed) = allocations_during(|| std::hint::black_box(Box::new(7u64)));
        drop(b);
        let before = ALLOCS.with(Cell::get);
        drop(std::hint::black_box(vec![1u8; 16]));
        (armed, ALLOCS.with(Cell::get) - before)
    });
    assert_eq!(armed, 1);
    assert_eq!(disarmed, 0);
}

#[test]
fn ten_thousand_unstolen_joins_allocate_nothing() {
    let pool = one_worker_pool();
    let joins = AtomicUsize::new(0);
    let ((result, worker), allocs) = pool.install(|| {
        allocations_during(|| {
            let worker = std::thread::current().id();
            (fib(20, &joins), worker)
        })
    });
    assert_eq!(result, 6765);
    assert_ne!(
        worker,
        std::thread::current().id(),
        "the joins ran on the pool's worker"
    );
    let joins = joins.into_inner();
    assert!(joins >= 10_000, "only {joins} joins");
    assert_eq!(allocs, 0, "{allocs} allocation(s) during {joins} unstolen joins");
}

#[test]
fn repeated_installs_of_join_allocate_nothing_on_the_worker() {
    // Each install's joins start from an empty deque; none of them may
    // allocate either (the install itself is measured outside).
    let pool = one_worker_pool();
    for round in 0..20 {
        let joins = AtomicUsize::new(0);
        let (r, allocs) = pool.install(|| allocations_during(|| fib(12, &joins)));
        assert_eq!(r, 144);
        assert_eq!(allocs, 0, "round {round}");
    }
}

#[test]
fn par_for_on_one_worker_allocates_nothing() {
    let pool = one_worker_pool();
    let hits: Vec<AtomicUsize> = (0..10_000).map(|_| AtomicUsize::new(0)).collect();
    pool.install(|| par_for(0..16, |_| {})); // warm-up
    let ((), allocs) = pool.install(|| {
        allocations_during(|| {
            par_for(0..10_000, |i| {
                hits[i].fetch_add(1, Relaxed);
            })
        })
    });
    assert!(hits.iter().all(|h| h.load(Relaxed) == 1));
    assert_eq!(allocs, 0);
}
