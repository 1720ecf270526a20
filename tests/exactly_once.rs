//! Exactly-once resumption: every blocked get resumes once and only once,
//! however many puts race with it and however often it is re-polled
//! (LVish issue 98: a blocked get's continuation could run twice).

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lvars::data::{RawIVar, RawMaxCounter};
use lvars::lattice::{Max, SetUnion};
use lvars::lvar::{RawLVar, ThresholdSet};
use lvars::{IVar, LVar, MaxCounter, ThreadPoolBuilder};

mod common;
use common::{poll_with, CountingWaker};

/// Per-task counters, shared with the session (session futures must not
/// borrow from the test's stack).
struct Counters {
    /// Incremented by the task's code after its get returned.
    resumed: Vec<AtomicUsize>,
    /// Incremented each time the task's future returned `Ready`.
    ready: Vec<AtomicUsize>,
    /// Incremented if the task's future was polled after `Ready`.
    polled_after_ready: AtomicUsize,
}

impl Counters {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            resumed: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            ready: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            polled_after_ready: AtomicUsize::new(0),
        })
    }
}

/// Wraps a task's future to count completions and polls after completion.
struct Tracked<F> {
    inner: Pin<Box<F>>,
    counters: Arc<Counters>,
    index: usize,
    done: bool,
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if this.done {
            this.counters.polled_after_ready.fetch_add(1, SeqCst);
            return Poll::Pending;
        }
        let r = this.inner.as_mut().poll(cx);
        if r.is_ready() {
            this.done = true;
            this.counters.ready[this.index].fetch_add(1, SeqCst);
        }
        r
    }
}

fn tracked<F: Future>(counters: &Arc<Counters>, index: usize, f: F) -> Tracked<F> {
    Tracked {
        inner: Box::pin(f),
        counters: Arc::clone(counters),
        index,
        done: false,
    }
}

const WAITERS: usize = 1000;
const PUTTERS: u64 = 100;

/// One session: `WAITERS` tasks block on a MaxCounter, a set LVar or an
/// IVar (a third each, at thresholds spread over the whole range), while
/// `PUTTERS` tasks interleaved with them raise the counter, grow the set
/// and put equal values into the IVar. Some waiters are forked by putters.
fn run_once(pool: &lvars::ThreadPool, counters: &Arc<Counters>) {
    let counters = Arc::clone(counters);
    let r = pool.run_par(move |p| {
        Box::pin(async move {
            let counter = MaxCounter::new(p);
            let set: LVar<SetUnion<u64>> = LVar::new(p);
            let iv: IVar<u64> = IVar::new(p);
            let spawn_waiter = {
                let (counter, set, iv, counters) = (counter.clone(), set.clone(), iv.clone(), Arc::clone(&counters));
                move |i: usize| {
                    let (counter, set, iv, c) = (counter.clone(), set.clone(), iv.clone(), Arc::clone(&counters));
                    let k = (i as u64 * 7) % PUTTERS + 1; // 1..=PUTTERS
                    p.fork(tracked(&counters, i, async move {
                        match i % 3 {
                            0 => counter.wait_at_least(k).await,
                            1 => {
                                let got = set.get_at_least(SetUnion::singleton(k)).unwrap().await;
                                assert_eq!(got, SetUnion::singleton(k), "a get returns its threshold");
                            }
                            _ => assert_eq!(*iv.get().await, 7),
                        }
                        c.resumed[i].fetch_add(1, SeqCst);
                    }));
                }
            };
            let per_putter = WAITERS / PUTTERS as usize;
            for j in 0..PUTTERS {
                // Half of each putter's waiters are forked before it, half by it.
                let first = j as usize * per_putter;
                for i in first..first + per_putter / 2 {
                    spawn_waiter(i);
                }
                let (counter, set, iv, spawn_waiter) = (counter.clone(), set.clone(), iv.clone(), spawn_waiter.clone());
                p.fork(async move {
                    for i in first + per_putter / 2..first + per_putter {
                        spawn_waiter(i);
                    }
                    lvars::yield_now().await;
                    counter.put(j + 1).unwrap();
                    set.put(SetUnion::singleton(j + 1)).unwrap();
                    iv.put(7).unwrap();
                    // Puts that change nothing must not resume anyone again.
                    counter.put(j / 2).unwrap();
                    set.put(SetUnion::singleton(j / 2 + 1)).unwrap();
                    iv.put(7).unwrap();
                });
            }
        })
    });
    assert_eq!(r, Ok(()));
}

fn check_session_resumption(threads: usize) {
    let pool = ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    for round in 0..10 {
        let counters = Counters::new(WAITERS);
        run_once(&pool, &counters);
        for i in 0..WAITERS {
            assert_eq!(
                counters.resumed[i].load(SeqCst),
                1,
                "threads = {threads}, round {round}: waiter {i} resumed a wrong number of times"
            );
            assert_eq!(
                counters.ready[i].load(SeqCst),
                1,
                "threads = {threads}, round {round}: waiter {i} completed a wrong number of times"
            );
        }
        assert_eq!(
            counters.polled_after_ready.load(SeqCst),
            0,
            "a finished task was polled again"
        );
    }
}

#[test]
fn every_blocked_get_resumes_exactly_once_2_workers() {
    check_session_resumption(2);
}

#[test]
fn every_blocked_get_resumes_exactly_once_8_workers() {
    check_session_resumption(8);
}

/// Polls two futures in one task until both are done (so one task waker
/// sits in two waiter lists and can be woken by both at once).
struct Both<A: Future, B: Future> {
    a: Pin<Box<A>>,
    b: Pin<Box<B>>,
    out_a: Option<A::Output>,
    out_b: Option<B::Output>,
}

impl<A: Future, B: Future> Future for Both<A, B>
where
    A::Output: Unpin,
    B::Output: Unpin,
{
    type Output = (A::Output, B::Output);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.out_a.is_none() {
            if let Poll::Ready(v) = this.a.as_mut().poll(cx) {
                this.out_a = Some(v);
            }
        }
        if this.out_b.is_none() {
            if let Poll::Ready(v) = this.b.as_mut().poll(cx) {
                this.out_b = Some(v);
            }
        }
        match (this.out_a.take(), this.out_b.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                this.out_a = a;
                this.out_b = b;
                Poll::Pending
            }
        }
    }
}

/// Resolves with whichever of two futures is ready first (`a` preferred)
/// and drops the other one, still pending, which must withdraw its waiter.
struct First<A, B>(Pin<Box<A>>, Pin<Box<B>>);

impl<T, A: Future<Output = T>, B: Future<Output = T>> Future for First<A, B> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if let Poll::Ready(v) = self.0.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        self.1.as_mut().poll(cx)
    }
}

/// Tasks wait on two gets at once (both, or the first of two), while many
/// puts race to satisfy them: one task waker is registered in two waiter
/// lists and fired from both, and must still lead to one completion.
fn check_combined_gets(threads: usize) {
    const TASKS: usize = 400;
    let pool = ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    for round in 0..5 {
        let counters = Counters::new(TASKS);
        let c = Arc::clone(&counters);
        let r = pool.run_par(move |p| {
            Box::pin(async move {
                let x = MaxCounter::new(p);
                let y: LVar<Max<u64>> = LVar::new(p);
                for i in 0..TASKS {
                    let (x, y, c) = (x.clone(), y.clone(), Arc::clone(&c));
                    let k = (i % 50) as u64 + 1;
                    p.fork(tracked(&c.clone(), i, async move {
                        if i % 2 == 0 {
                            let both = Both {
                                a: Box::pin(x.wait_at_least(k)),
                                b: Box::pin(y.get_at_least(Max::new(k)).unwrap()),
                                out_a: None,
                                out_b: None,
                            };
                            let ((), got) = both.await;
                            assert_eq!(got, Max::new(k));
                        } else {
                            // Whichever variable reaches `k` first completes the
                            // task; the other get is dropped while pending.
                            First(
                                Box::pin(x.wait_at_least(k)),
                                Box::pin(async {
                                    y.get_at_least(Max::new(k)).unwrap().await;
                                }),
                            )
                            .await;
                        }
                        c.resumed[i].fetch_add(1, SeqCst);
                    }));
                }
                for v in 1..=50u64 {
                    let (x, y) = (x.clone(), y.clone());
                    p.fork(async move {
                        lvars::yield_now().await;
                        // Both variables raised in opposite orders.
                        if v % 2 == 0 {
                            x.put(v).unwrap();
                            y.put(Max::new(v)).unwrap();
                        } else {
                            y.put(Max::new(v)).unwrap();
                            x.put(v).unwrap();
                        }
                    });
                }
            })
        });
        assert_eq!(r, Ok(()), "threads = {threads}, round {round}");
        for i in 0..TASKS {
            assert_eq!(
                counters.resumed[i].load(SeqCst),
                1,
                "threads = {threads}, round {round}, task {i}"
            );
            assert_eq!(
                counters.ready[i].load(SeqCst),
                1,
                "threads = {threads}, round {round}, task {i}"
            );
        }
        assert_eq!(counters.polled_after_ready.load(SeqCst), 0);
    }
}

#[test]
fn gets_awaited_together_resume_once_2_workers() {
    check_combined_gets(2);
}

#[test]
fn gets_awaited_together_resume_once_8_workers() {
    check_combined_gets(8);
}

// ---------------------------------------------------------------------------
// Raw gets polled by hand.

/// After `Ready`, a get must never be `Ready` again: polling it again may
/// panic (it is documented to) but must not complete a second time.
fn assert_no_second_completion<F: Future>(fut: Pin<&mut F>) {
    let w = CountingWaker::new();
    let again = catch_unwind(AssertUnwindSafe(|| poll_with(fut, &w).is_ready()));
    assert!(!matches!(again, Ok(true)), "a completed get completed a second time");
}

/// The sequential script shared by the three raw variables: poll with
/// several wakers (switching back and forth), let puts below the threshold,
/// at it and above it happen in between, and check who was woken.
/// `puts[..below]` do not reach the threshold, the rest do.
fn scripted<F: Future>(fut: Pin<&mut F>, puts: &[&dyn Fn()], below: usize) -> F::Output {
    let mut fut = fut;
    let (a, b, c) = (CountingWaker::new(), CountingWaker::new(), CountingWaker::new());
    assert!(poll_with(fut.as_mut(), &a).is_pending());
    assert!(poll_with(fut.as_mut(), &b).is_pending(), "switch to waker b");
    assert!(poll_with(fut.as_mut(), &b).is_pending(), "same waker again");
    for put in &puts[..below] {
        put();
        assert!(
            poll_with(fut.as_mut(), &b).is_pending(),
            "below the threshold: still pending"
        );
    }
    assert!(poll_with(fut.as_mut(), &a).is_pending(), "switch back to waker a");
    // Waker a is the registered one now; puts that reach the threshold fire it once.
    for put in &puts[below..] {
        put();
    }
    assert_eq!(
        a.count(),
        1,
        "the registered waker is woken exactly once by several puts"
    );
    assert_eq!(b.count(), 0, "a replaced waker is not woken");
    assert_eq!(c.count(), 0);
    let out = match poll_with(fut.as_mut(), &c) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("pending after the threshold was reached"),
    };
    assert_eq!(a.count() + b.count() + c.count(), 1, "one wake-up in total");
    assert_no_second_completion(fut);
    out
}

#[test]
fn raw_max_counter_get_completes_once_with_changing_wakers() {
    let c = RawMaxCounter::new();
    let fut = pin!(c.wait_at_least(10));
    scripted(
        fut,
        &[
            &|| c.put(3).unwrap(),
            &|| c.put(9).unwrap(),
            &|| c.put(10).unwrap(),
            &|| c.put(20).unwrap(),
            &|| c.put(15).unwrap(),
        ],
        2,
    );
}

#[test]
fn raw_lvar_get_completes_once_with_changing_wakers() {
    let lv: RawLVar<(Max<u32>, Max<u32>)> = RawLVar::new();
    let thresholds = ThresholdSet::single((Max::new(3), Max::new(5))).unwrap();
    let fut = pin!(lv.get(thresholds));
    let out = scripted(
        fut,
        &[
            &|| lv.put(&(Max::new(3), Max::default())).unwrap(),
            &|| lv.put(&(Max::new(4), Max::new(4))).unwrap(),
            // Only the join of the puts reaches the threshold.
            &|| lv.put(&(Max::default(), Max::new(5))).unwrap(),
            &|| lv.put(&(Max::new(9), Max::new(9))).unwrap(),
        ],
        2,
    );
    assert_eq!(out, (Max::new(3), Max::new(5)), "the threshold, not the state");
}

#[test]
fn raw_ivar_get_completes_once_with_changing_wakers() {
    let iv: RawIVar<String> = RawIVar::new();
    let fut = pin!(iv.get());
    let out = scripted(
        fut,
        &[
            &|| iv.put("x".to_string()).unwrap(),
            &|| iv.put("x".to_string()).unwrap(),
            &|| assert!(iv.put("y".to_string()).is_err()),
        ],
        0,
    );
    assert_eq!(out, "x");
}

#[test]
fn a_dropped_pending_get_is_never_woken() {
    let c = RawMaxCounter::new();
    let w = CountingWaker::new();
    {
        let fut = pin!(c.wait_at_least(5));
        assert!(poll_with(fut, &w).is_pending());
    }
    c.put(5).unwrap();
    c.put(6).unwrap();
    assert_eq!(w.count(), 0);
    // A get started after the puts completes at once, without a wake-up.
    let fut = pin!(c.wait_at_least(6));
    assert!(poll_with(fut, &w).is_ready());
    assert_eq!(w.count(), 0);
}

/// Several OS threads raise a counter while this thread polls a get by
/// hand: with a fresh waker on every poll, sometimes re-polling at once,
/// sometimes waiting for the wake-up. The get must complete exactly once,
/// every waker is woken at most once, and a waited-for wake-up always comes.
#[test]
fn raw_get_racing_concurrent_puts_completes_once_and_never_loses_a_wake_up() {
    const PUTTER_THREADS: u64 = 4;
    const TOP: u64 = 400;
    let mut rounds_that_parked = 0;
    for round in 0..200u64 {
        let counter = Arc::new(RawMaxCounter::new());
        let threshold = TOP - round % 50;
        let putters: Vec<_> = (0..PUTTER_THREADS)
            .map(|t| {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    for v in (t..=TOP).step_by(PUTTER_THREADS as usize) {
                        counter.put(v).unwrap();
                    }
                })
            })
            .collect();
        let mut fut = pin!(counter.wait_at_least(threshold));
        let mut wakers = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut polls = 0usize;
        loop {
            let w = CountingWaker::new();
            wakers.push(Arc::clone(&w));
            polls += 1;
            if poll_with(fut.as_mut(), &w).is_ready() {
                break;
            }
            if polls % 2 == 0 {
                // Wait for this waker: a lost wake-up would hang here.
                while w.count() == 0 {
                    assert!(Instant::now() < deadline, "round {round}: lost wake-up");
                    std::thread::yield_now();
                }
            }
        }
        for p in putters {
            p.join().unwrap();
        }
        for (i, w) in wakers.iter().enumerate() {
            assert!(w.count() <= 1, "round {round}: waker {i} woken {} times", w.count());
        }
        rounds_that_parked += usize::from(polls > 1);
    }
    // The putter threads start after the first poll, so it is almost always
    // pending; a run where no round ever parked would test nothing.
    assert!(rounds_that_parked > 0, "no round ever parked");
    eprintln!("{rounds_that_parked} of 200 rounds parked at least once");
}
