//! Leak check: after a normal run, a run that ends in `Error::Deadlock`, a
//! run with a panicking task, a run where many gets were cancelled and two
//! runs with handlers, every task, waiter node and epoch-deferred node is
//! freed.
//!
//! # How it counts
//!
//! A counting global allocator keeps the number of live allocations and
//! live bytes of the whole process. Global counts are only meaningful if
//! nothing else allocates meanwhile, so this binary has a single `#[test]`
//! that runs every check in sequence (the harness's main thread only waits
//! for it), prints nothing inside a measured window, and silences the panic
//! hook (a printed panic would grow the harness's capture buffer). Keep it
//! that way: a second `#[test]` runs on another harness thread, and the
//! harness's bookkeeping when it ends (freeing that thread, storing its
//! result) lands inside a measurement now and then; CI once saw one
//! allocation fewer and 514 bytes more that way.
//!
//! Each check runs on a *fresh* pool that is dropped before the comparison:
//! dropping a pool joins its workers, so their thread locals are gone and
//! their crossbeam-epoch handles have pushed their deferred-free bags to the
//! global queue. The test thread then pins and flushes repeatedly
//! ([`settle`]) until the global epoch has advanced far enough for every
//! bag (and the workers' unlinked epoch records) to be freed. Everything
//! created lazily once per process (the epoch collector, the test thread's
//! epoch record, panic machinery) is created by a warm-up round of every
//! check before the first baseline.
//!
//! # What is retained, by design
//!
//! Within a run, a cancelled get (its future dropped before it resolved)
//! leaves its waiter node linked in the variable's list until the next put
//! that *changes* the state scans the list (a put that changes nothing
//! returns before the scan), or until the variable is dropped. Only the
//! handle's half of the node's two references goes with the future.
//! [`cancelled_nodes_linger_until_a_changing_put`] pins this down exactly:
//! N cancelled gets keep exactly N allocations alive, a no-op put keeps
//! them, a changing put frees them (after the epoch), and so does dropping
//! the variable. At the end of a session every variable is dropped, so
//! nothing is retained after any run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::{poll_fn, Future};
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicIsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use lvars::data::RawIVar;
use lvars::lattice::{Max, SetUnion};
use lvars::lvar::RawLVar;
use lvars::{Error, HandlerPool, ISet, IVar, LVar, MaxCounter, ThreadPool, ThreadPoolBuilder};

// ---------------------------------------------------------------------------
// The counting allocator

struct CountingAlloc;

static LIVE_ALLOCS: AtomicIsize = AtomicIsize::new(0);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

fn note_alloc(size: usize) {
    LIVE_ALLOCS.fetch_add(1, SeqCst);
    LIVE_BYTES.fetch_add(size as isize, SeqCst);
}

fn note_dealloc(size: usize) {
    LIVE_ALLOCS.fetch_sub(1, SeqCst);
    LIVE_BYTES.fetch_sub(size as isize, SeqCst);
}

// SAFETY: every call is forwarded unchanged to `System`; the wrapper only
// updates two atomic counters (which never allocates).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_dealloc(layout.size());
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Live allocations and bytes of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Live {
    allocs: isize,
    bytes: isize,
}

fn live() -> Live {
    Live {
        allocs: LIVE_ALLOCS.load(SeqCst),
        bytes: LIVE_BYTES.load(SeqCst),
    }
}

/// Pins and flushes crossbeam-epoch until the live counts drop to `target`
/// (or 2,000 rounds pass: a bag is freed two epoch advances after it was
/// pushed and each flush collects a few bags, so a few dozen rounds do).
fn settle(target: Live) -> Live {
    for _ in 0..2_000 {
        let now = live();
        if now.allocs <= target.allocs && now.bytes <= target.bytes {
            return now;
        }
        crossbeam_epoch::pin().flush();
    }
    live()
}

/// The state to compare against: the low point of the counts once the
/// epoch has been flushed until they repeat.
///
/// They never become constant: popping a bag from crossbeam-epoch's global
/// queue retires the queue's old head node through the epoch itself, so the
/// next flush finds the thread's bag non-empty and pushes it in a new
/// (2 KiB) queue node. Flushing therefore alternates between two states
/// that differ by one node; that node is epoch garbage of the collector,
/// not ours, and every comparison is made at the low point.
fn baseline() -> Live {
    for _ in 0..256 {
        crossbeam_epoch::pin().flush();
    }
    low_point()
}

/// The lowest counts seen over a few flushes (see [`baseline`]).
fn low_point() -> Live {
    let mut low = live();
    for _ in 0..64 {
        crossbeam_epoch::pin().flush();
        let now = live();
        if (now.allocs, now.bytes) < (low.allocs, low.bytes) {
            low = now;
        }
    }
    low
}

// ---------------------------------------------------------------------------
// Helpers

fn pool(n: usize) -> ThreadPool {
    ThreadPoolBuilder::new().num_threads(n).build().unwrap()
}

/// Polls `f` once and drops it: for a get that is not ready, this registers
/// a waiter node and then cancels it (the select-with-timeout pattern).
async fn poll_once<F: Future>(f: F) -> bool {
    let mut f = pin!(f);
    poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx).is_ready())).await
}

/// A waker that does nothing. Made once: a node keeps a clone of its waker,
/// and a clone of this one allocates nothing.
fn noop_waker() -> Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    Waker::from(Arc::new(Noop))
}

/// Polls `f` once on the calling thread with `waker`, then drops it.
fn poll_once_here<F: Future>(f: F, waker: &Waker) -> bool {
    let mut f = pin!(f);
    f.as_mut().poll(&mut Context::from_waker(waker)).is_ready()
}

// ---------------------------------------------------------------------------
// The runs

const WORKERS: usize = 2;

/// One of the runs checked, on the pool it is given.
type Run = fn(&ThreadPool);

/// (a) A normal run: readers park on an LVar, an IVar and a counter before
/// the writers put; some tasks are awaited, others never.
fn normal_run(pool: &ThreadPool) {
    let r = pool.run_par(|p| {
        Box::pin(async move {
            let set: LVar<SetUnion<u32>> = LVar::new(p);
            let iv: IVar<u64> = IVar::new(p);
            let counter = MaxCounter::new(p);
            let mut readers = Vec::new();
            for i in 0..200u32 {
                let (set, iv, counter) = (set.clone(), iv.clone(), counter.clone());
                readers.push(p.fork(async move {
                    let reached = set.get_at_least(SetUnion::singleton(i % 50)).unwrap().await;
                    counter.wait_at_least(u64::from(i % 50)).await;
                    reached.len() as u64 + *iv.get().await
                }));
            }
            for i in 0..50u32 {
                let (set, counter) = (set.clone(), counter.clone());
                // Never awaited: the handle is dropped at once.
                drop(p.fork(async move {
                    set.put(SetUnion::singleton(i)).unwrap();
                    counter.put(u64::from(i)).unwrap();
                }));
            }
            let iv2 = iv.clone();
            p.fork(async move { iv2.put(1).unwrap() }).await;
            let mut sum = 0;
            for r in readers {
                sum += r.await;
            }
            sum
        })
    });
    // Each reader gets its singleton threshold back (length 1) plus 1.
    assert_eq!(r, Ok(400));
}

/// (b) A run that ends in `Error::Deadlock`: gets no put will satisfy, on an
/// IVar that is never put and on an LVar whose puts stay below the
/// threshold (they change the state, so they scan the waiter list).
fn deadlocked_run(pool: &ThreadPool) {
    let r = pool.run_par(|p| {
        Box::pin(async move {
            let iv: IVar<u32> = IVar::new(p);
            let lv: LVar<Max<u64>> = LVar::new(p);
            for i in 0..100u64 {
                let (iv, lv) = (iv.clone(), lv.clone());
                p.fork(async move { *iv.get().await });
                p.fork(async move {
                    lv.put(Max::new(i)).unwrap();
                    let _ = lv.get_at_least(Max::new(1_000)).unwrap().await;
                    0
                });
            }
            *iv.get().await
        })
    });
    // 100 + 100 forked tasks and the body's own task.
    assert_eq!(r, Err(Error::Deadlock { parked: 201 }));
}

/// (c) A run with a panicking task, while other tasks are parked on gets
/// and the panicking one holds heap memory.
fn panicking_run(pool: &ThreadPool) {
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.run_par(|p| {
            Box::pin(async move {
                let iv: IVar<u32> = IVar::new(p);
                let lv: LVar<SetUnion<u32>> = LVar::new(p);
                for i in 0..100u32 {
                    let (iv, lv) = (iv.clone(), lv.clone());
                    p.fork(async move {
                        lv.put(SetUnion::singleton(i)).unwrap();
                        *iv.get().await
                    });
                }
                let lv2 = lv.clone();
                p.fork(async move {
                    let held = vec![7u8; 1000];
                    let _ = lv2.get_at_least(SetUnion::singleton(99)).unwrap().await;
                    if held.len() == 1000 {
                        panic!("task panicked on purpose, holding {} bytes", held.len());
                    }
                })
                .await;
                *iv.get().await
            })
        })
    }));
    let payload = r.expect_err("the task's panic is re-raised by the runner");
    let msg = payload.downcast_ref::<String>().expect("a formatted panic message");
    assert_eq!(msg, "task panicked on purpose, holding 1000 bytes");
}

/// (d) A normal run in which 10,000 gets are cancelled (polled once, then
/// dropped), on an LVar that later receives changing puts (which unlink
/// the cancelled nodes) and on an IVar that is never put (its cancelled
/// nodes stay linked until the IVar is dropped at the end of the run).
fn cancelling_run(pool: &ThreadPool) {
    let r = pool.run_par(|p| {
        Box::pin(async move {
            let lv: LVar<Max<u64>> = LVar::new(p);
            let never: IVar<u32> = IVar::new(p);
            let mut tasks = Vec::new();
            for t in 0..50u64 {
                let (lv, never) = (lv.clone(), never.clone());
                tasks.push(p.fork(async move {
                    let mut ready = 0;
                    for i in 0..100u64 {
                        ready += poll_once(lv.get_at_least(Max::new(1_000_000)).unwrap()).await as u32;
                        ready += poll_once(never.get()).await as u32;
                        if i % 10 == 0 {
                            lv.put(Max::new(t * 100 + i)).unwrap();
                        }
                    }
                    ready
                }));
            }
            let mut ready = 0;
            for t in tasks {
                ready += t.await;
            }
            // And a get that parks and is then satisfied, after all that.
            let lv2 = lv.clone();
            p.fork(async move { lv2.put(Max::new(1_000_000)).unwrap() });
            lv.get_at_least(Max::new(1_000_000)).unwrap().await;
            ready
        })
    });
    assert_eq!(r, Ok(0), "no cancelled get was ready");
}

/// (e) A run with handlers: a callback on one set inserts into another set
/// (and forks work), so every element of the first reaches the second.
fn handler_run(pool: &ThreadPool) {
    let r = pool.run_par(|p| {
        Box::pin(async move {
            let src: ISet<u32> = ISet::new(p);
            let dst: ISet<u32> = ISet::new(p);
            let handlers = HandlerPool::new(p);
            let d = dst;
            handlers
                .add_handler(&src, move |x| {
                    let d = d;
                    async move { d.insert(x * 2).unwrap() }
                })
                .unwrap();
            for i in 0..500 {
                p.fork(async move { src.insert(i).unwrap() });
            }
            dst.wait_size(500).await;
            handlers.quiesce().await;
        })
    });
    assert_eq!(r, Ok(()));
}

/// (f) A handler whose callback inserts into the set it is installed on (the
/// breadth-first traversal pattern, `examples/bf_traverse`): the set holds
/// its listener, whose closure holds the set. Sets belong to their session,
/// which drops every callback and then every set when it ends, so this is
/// freed like any other run (with reference-counted sets it was a cycle).
fn self_inserting_handler_run(pool: &ThreadPool) {
    let r = pool.run_par(|p| {
        Box::pin(async move {
            let set: ISet<u32> = ISet::new(p);
            let handlers = HandlerPool::new(p);
            let s = set;
            handlers
                .add_handler(&set, move |x| {
                    let s = s;
                    async move {
                        if x < 100 {
                            s.insert(x + 1).unwrap();
                        }
                    }
                })
                .unwrap();
            set.insert(0).unwrap();
            set.wait_size(101).await;
        })
    });
    assert_eq!(r, Ok(()));
}

/// Runs `run` on a fresh pool, drops the pool, settles the epoch and returns
/// the counts before and after.
fn measure(run: Run) -> (Live, Live) {
    let before = baseline();
    {
        let pool = pool(WORKERS);
        run(&pool);
    }
    (before, settle(before))
}

/// The exact retention of cancelled gets, on the session-less cores and on
/// the calling thread only, so the counts are exact mid-way too.
fn cancelled_nodes_linger_until_a_changing_put() {
    const N: isize = 1_000;
    let waker = noop_waker();
    // RawLVar: the payload is a threshold set.
    let empty = baseline();
    let lv: RawLVar<Max<u64>> = RawLVar::new();
    lv.put(&Max::new(1)).unwrap();
    let base = baseline();
    for _ in 0..N {
        assert!(!poll_once_here(lv.get_at_least(Max::new(10)).unwrap(), &waker));
    }
    // Each cancelled get left its node linked; a one-element threshold set
    // is stored inside the node (and the waker was dropped at cancel).
    let per_get = 1;
    assert_eq!(
        low_point().allocs - base.allocs,
        per_get * N,
        "RawLVar: one node per cancelled get"
    );
    // A put that changes nothing skips the scan: the nodes stay.
    lv.put(&Max::new(1)).unwrap();
    assert_eq!(
        low_point().allocs - base.allocs,
        per_get * N,
        "a no-op put does not unlink"
    );
    // A changing put unlinks them and the epoch frees them (the state box
    // it replaced goes through the epoch too, so the counts are unchanged).
    lv.put(&Max::new(2)).unwrap();
    assert_eq!(settle(base), base, "RawLVar: a changing put frees every cancelled node");
    // Dropping the variable frees its state and every linked node.
    for _ in 0..N {
        assert!(!poll_once_here(lv.get_at_least(Max::new(10)).unwrap(), &waker));
    }
    assert_eq!(low_point().allocs - base.allocs, per_get * N);
    drop(lv);
    assert_eq!(
        settle(empty),
        empty,
        "dropping a RawLVar frees its state and every linked node"
    );

    // RawIVar: the payload is (), one allocation per node.
    let empty = baseline();
    let iv: RawIVar<u64> = RawIVar::new();
    let base = baseline();
    for _ in 0..N {
        assert!(!poll_once_here(iv.get(), &waker));
    }
    assert_eq!(
        low_point().allocs - base.allocs,
        N,
        "RawIVar: one node per cancelled get"
    );
    iv.put(5).unwrap();
    // Once the epoch has run, the value's slot is the only new allocation.
    let slot = Live {
        allocs: base.allocs + 1,
        bytes: base.bytes + std::mem::size_of::<u64>() as isize,
    };
    assert_eq!(settle(slot), slot, "RawIVar: the put frees every cancelled node");
    drop(iv);
    assert_eq!(settle(empty), empty, "dropping a RawIVar frees its value");
}

#[test]
fn every_run_frees_every_task_waiter_and_deferred_node() {
    // Silence the panic of run (c): printed, it would grow the harness's
    // capture buffer (which stays) in the middle of a measurement. Every
    // other panic (a failed assertion) is printed as usual.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let on_purpose = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.starts_with("task panicked on purpose"));
        if !on_purpose {
            default_hook(info);
        }
    }));
    let runs: [(&str, Run); 6] = [
        ("(a) normal", normal_run),
        ("(b) deadlock", deadlocked_run),
        ("(c) panic", panicking_run),
        ("(d) cancelled gets", cancelling_run),
        ("(e) handlers", handler_run),
        ("(f) a handler inserting into its own set", self_inserting_handler_run),
    ];
    // Warm-up: everything created once per process (epoch collector, this
    // thread's epoch record, panic machinery) exists before any baseline.
    for (_, run) in runs {
        let _ = measure(run);
    }
    cancelled_nodes_linger_until_a_changing_put();

    let mut report = Vec::with_capacity(runs.len());
    for (name, run) in runs {
        let (before, after) = measure(run);
        report.push((name, before, after));
    }
    for (name, before, after) in &report {
        println!(
            "{name}: live allocations {} -> {}, live bytes {} -> {}",
            before.allocs, after.allocs, before.bytes, after.bytes
        );
    }
    for (name, before, after) in report {
        assert_eq!(
            after,
            before,
            "{name}: {} allocation(s), {} byte(s) still live after the run",
            after.allocs - before.allocs,
            after.bytes - before.bytes
        );
    }
}
