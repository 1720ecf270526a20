//! Bump counters (`Counter`, `PNCounter`): the frozen count is the sum of
//! the bumps in every schedule, threshold waits resume exactly when reached
//! and exactly once, freeze and overflow errors are typed and fail the
//! session, and the same program always gives the same answer.

use std::collections::HashSet;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};

use lvars::data::{FrozenPN, RawCounter, RawPNCounter, COUNTER_LIMIT};
use lvars::{Counter, Error, Freeze, PNCounter, ThreadPool};

mod common;
use common::{poll_with, pool, CountingWaker};

const POOLS: [usize; 3] = [1, 2, 8];

// ---------------------------------------------------------------------------
// The frozen count is the sum of the bumps.

const BUMPERS: u64 = 48;

/// What task `t` bumps by, and how often.
fn bumps_of(t: u64) -> impl Iterator<Item = u64> {
    (0..t % 5 + 1).map(move |k| (t * 7 + k * 3) % 11)
}

fn expected_sum() -> u64 {
    (0..BUMPERS).flat_map(bumps_of).sum()
}

/// Many tasks (some forked by other tasks) bump one counter, with yields
/// in between; the body returns the counter to be frozen after the barrier.
fn sum_of_bumps(pool: &ThreadPool) -> u64 {
    pool.run_par_then_freeze(|p| {
        Box::pin(async move {
            let c = Counter::new(p);
            for t in 0..BUMPERS / 2 {
                let c = c.clone();
                p.fork(async move {
                    // Each of the first half forks one task of the second half.
                    let c2 = c.clone();
                    p.fork(async move {
                        for n in bumps_of(t + BUMPERS / 2) {
                            c2.bump(n).unwrap();
                            lvars::yield_now().await;
                        }
                    });
                    for n in bumps_of(t) {
                        c.bump(n).unwrap();
                        lvars::yield_now().await;
                    }
                });
            }
            c.then_freeze()
        })
    })
    .unwrap()
}

#[test]
fn the_frozen_count_is_the_sum_of_the_bumps_in_every_run() {
    let expected = expected_sum();
    assert!(expected > 100, "the program bumps by something");
    for n in POOLS {
        let pool = pool(n);
        for run in 0..60 {
            assert_eq!(sum_of_bumps(&pool), expected, "{n} worker(s), run {run}");
        }
    }
}

/// Bumps are not idempotent: the same amount twice counts twice.
#[test]
fn equal_bumps_both_count() {
    let c = RawCounter::new();
    c.bump(5).unwrap();
    c.bump(5).unwrap();
    assert_eq!(c.freeze(), 10);
}

/// OS threads bump while the main thread freezes in the middle: the frozen
/// count is exactly the sum of the bumps that returned `Ok`, every other
/// bump is `PutAfterFreeze`, and once a thread saw the freeze it never
/// succeeds again. Each thread bumps once more after it has seen the
/// freeze finish, so some bumps fail in every round whatever the timing;
/// the others race the freeze.
#[test]
fn a_freeze_racing_bumps_keeps_exactly_the_ok_bumps() {
    const THREADS: u64 = 4;
    let mut raced = 0;
    // Forty rounds, and more (up to 400) until one has raced: a loaded
    // machine may let every thread finish before the freeze for a while.
    for round in 0..400u64 {
        if round >= 40 && raced > 0 {
            break;
        }
        let c = Arc::new(RawCounter::new());
        let started = Arc::new(AtomicUsize::new(0));
        let bumpers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (c, started) = (Arc::clone(&c), Arc::clone(&started));
                std::thread::spawn(move || {
                    started.fetch_add(1, SeqCst);
                    let (mut ok, mut failed) = (0u64, 0usize);
                    for k in 0..2_000u64 {
                        let n = (t + k + round) % 4 + 1;
                        match c.bump(n) {
                            Ok(()) => {
                                assert_eq!(failed, 0, "a bump succeeded after one saw the freeze");
                                ok += n;
                            }
                            Err(e) => {
                                assert_eq!(e, Error::PutAfterFreeze { lvar: "Counter" });
                                failed += 1;
                            }
                        }
                    }
                    while !c.is_frozen() {
                        std::hint::spin_loop();
                    }
                    assert_eq!(c.bump(1), Err(Error::PutAfterFreeze { lvar: "Counter" }));
                    (ok, failed)
                })
            })
            .collect();
        while started.load(SeqCst) < THREADS as usize {
            std::hint::spin_loop();
        }
        let frozen = c.freeze();
        let results: Vec<_> = bumpers.into_iter().map(|b| b.join().unwrap()).collect();
        let ok: u64 = results.iter().map(|r| r.0).sum();
        assert_eq!(frozen, ok, "round {round}: the frozen count is the sum of the Ok bumps");
        raced += usize::from(results.iter().any(|r| r.1 > 0));
    }
    assert!(
        raced > 0,
        "no bump ever lost the race with the freeze: nothing was tested"
    );
}

// ---------------------------------------------------------------------------
// Threshold waits.

/// A get registered before any bump is woken by the bump that reaches its
/// threshold (also when only the sum of several bumps reaches it), not
/// before, and only once.
#[test]
fn a_raw_waiter_is_woken_exactly_when_the_sum_reaches_its_threshold() {
    let c = RawCounter::new();
    let (w10, w16) = (Arc::new(CountingWaker::default()), Arc::new(CountingWaker::default()));
    let mut at10 = pin!(c.wait_at_least(10));
    let mut at16 = pin!(c.wait_at_least(16));
    assert!(poll_with(at10.as_mut(), &w10).is_pending());
    assert!(poll_with(at16.as_mut(), &w16).is_pending());
    for n in [3, 6, 0] {
        c.bump(n).unwrap();
        assert_eq!(w10.count(), 0, "woken below the threshold (after bumping {n})");
        assert!(poll_with(at10.as_mut(), &w10).is_pending());
    }
    c.bump(1).unwrap(); // 10: only the sum reaches it
    assert_eq!(w10.count(), 1, "the bump reaching 10 wakes the waiter");
    assert_eq!(w16.count(), 0);
    c.bump(5).unwrap(); // 15
    assert_eq!(w10.count(), 1, "woken once, however many bumps follow");
    assert_eq!(w16.count(), 0, "15 < 16");
    assert!(poll_with(at16.as_mut(), &w16).is_pending());
    c.bump(1).unwrap(); // 16
    assert_eq!(w16.count(), 1);
    assert_eq!(poll_with(at10.as_mut(), &w10), Poll::Ready(()));
    assert_eq!(poll_with(at16.as_mut(), &w16), Poll::Ready(()));
    // A threshold already reached completes at once without parking.
    let w = Arc::new(CountingWaker::default());
    assert!(poll_with(pin!(c.wait_at_least(16)), &w).is_ready());
    assert!(poll_with(pin!(c.wait_at_least(0)), &w).is_ready());
    assert!(poll_with(pin!(c.wait_at_least(17)), &w).is_pending());
    assert_eq!(w.count(), 0);
}

const WAITERS: usize = 300;
const UNIT_BUMPS: u64 = 100;

/// Polls `inner`; the first time it is pending (its waiter is registered),
/// bumps `parked`.
struct OnParked<'s, F> {
    inner: Pin<Box<F>>,
    parked: Option<Counter<'s>>,
}

impl<F: Future> Future for OnParked<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let r = self.inner.as_mut().poll(cx);
        if r.is_pending() {
            if let Some(parked) = self.parked.take() {
                parked.bump(1).unwrap();
            }
        }
        r
    }
}

/// Waiters at thresholds 1..=UNIT_BUMPS park before any bump (the bumpers
/// wait until all of them are registered); the bumpers add 1 each. Every
/// waiter resumes exactly once, and only after at least `k` bumps started.
fn waiters_session(pool: &ThreadPool, resumed: &Arc<Vec<AtomicUsize>>) {
    let resumed = Arc::clone(resumed);
    let r = pool.run_par(move |p| {
        Box::pin(async move {
            let c = Counter::new(p);
            let parked = Counter::new(p);
            let started = Arc::new(AtomicU64::new(0));
            for i in 0..WAITERS {
                let (c, parked, started, resumed) =
                    (c.clone(), parked.clone(), Arc::clone(&started), Arc::clone(&resumed));
                let k = (i as u64 * 37) % UNIT_BUMPS + 1;
                p.fork(async move {
                    OnParked {
                        inner: Box::pin(c.wait_at_least(k)),
                        parked: Some(parked),
                    }
                    .await;
                    assert!(
                        started.load(SeqCst) >= k,
                        "resumed at threshold {k} before {k} bumps started"
                    );
                    resumed[i].fetch_add(1, SeqCst);
                });
            }
            for _ in 0..UNIT_BUMPS {
                let (c, parked, started) = (c.clone(), parked.clone(), Arc::clone(&started));
                p.fork(async move {
                    parked.wait_at_least(WAITERS as u64).await;
                    started.fetch_add(1, SeqCst);
                    c.bump(1).unwrap();
                    // Changes nothing, must wake nobody.
                    c.bump(0).unwrap();
                });
            }
        })
    });
    assert_eq!(r, Ok(()));
}

#[test]
fn every_session_waiter_resumes_exactly_once() {
    for n in POOLS {
        let pool = pool(n);
        for round in 0..10 {
            let resumed = Arc::new((0..WAITERS).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
            waiters_session(&pool, &resumed);
            for (i, r) in resumed.iter().enumerate() {
                assert_eq!(r.load(SeqCst), 1, "{n} worker(s), round {round}: waiter {i}");
            }
        }
    }
}

/// A threshold one above the final count is never reached: the waiter
/// stays parked and the session reports the deadlock instead of hanging
/// or resuming it.
#[test]
fn a_threshold_above_the_final_count_never_resumes() {
    for n in POOLS {
        let pool = pool(n);
        let resumed = Arc::new(AtomicUsize::new(0));
        let r2 = Arc::clone(&resumed);
        let r = pool.run_par(move |p| {
            Box::pin(async move {
                let c = Counter::new(p);
                for i in 1..=10 {
                    let c = c.clone();
                    p.fork(async move { c.bump(i).unwrap() });
                }
                c.wait_at_least(56).await;
                r2.fetch_add(1, SeqCst);
            })
        });
        assert!(matches!(r, Err(Error::Deadlock { .. })), "{n} worker(s): {r:?}");
        assert_eq!(resumed.load(SeqCst), 0);
    }
}

// ---------------------------------------------------------------------------
// Freeze and overflow errors.

#[test]
fn a_bump_after_freeze_fails_the_quasi_det_session() {
    for n in POOLS {
        let r = pool(n).run_par_quasi_det(|p| {
            Box::pin(async move {
                let c = Counter::new(p);
                c.bump(3).unwrap();
                let frozen = c.freeze(&p);
                assert_eq!(c.bump(0), Ok(()), "a zero bump changes nothing");
                assert_eq!(c.bump(1), Err(Error::PutAfterFreeze { lvar: "Counter" }));
                frozen
            })
        });
        assert_eq!(r, Err(Error::PutAfterFreeze { lvar: "Counter" }), "{n} worker(s)");
    }
}

#[test]
fn a_zero_bump_after_freeze_is_fine() {
    let r = pool(2).run_par_quasi_det(|p| {
        Box::pin(async move {
            let c = Counter::new(p);
            c.bump(3).unwrap();
            let frozen = c.freeze(&p);
            c.bump(0).unwrap();
            // Freezing again returns the same count.
            (frozen, c.freeze(&p))
        })
    });
    assert_eq!(r, Ok((3, 3)));
}

/// The body ignores the failed bump (and returns normally): the runner
/// still reports it.
#[test]
fn an_ignored_failed_bump_still_fails_the_session() {
    for n in POOLS {
        let pool = pool(n);
        let r = pool.run_par_quasi_det(|p| {
            Box::pin(async move {
                let c = Counter::new(p);
                let _ = c.freeze(&p);
                let c2 = c.clone();
                p.fork(async move {
                    let _ = c2.bump(2);
                });
                7
            })
        });
        assert_eq!(r, Err(Error::PutAfterFreeze { lvar: "Counter" }), "{n} worker(s)");
        let r = pool.run_par_quasi_det(|p| {
            Box::pin(async move {
                let c = PNCounter::new(p);
                c.increment(1).unwrap();
                let _ = c.freeze(&p);
                let _ = c.decrement(1);
                7
            })
        });
        assert_eq!(r, Err(Error::PutAfterFreeze { lvar: "PNCounter" }), "{n} worker(s)");
    }
}

#[test]
fn a_raw_bump_past_the_limit_is_out_of_range_and_changes_nothing() {
    let c = RawCounter::new();
    assert_eq!(c.bump(u64::MAX), Err(Error::OutOfRange { lvar: "Counter" }));
    assert_eq!(c.bump(COUNTER_LIMIT + 1), Err(Error::OutOfRange { lvar: "Counter" }));
    c.bump(COUNTER_LIMIT - 1).unwrap();
    assert_eq!(c.bump(2), Err(Error::OutOfRange { lvar: "Counter" }));
    let w = Arc::new(CountingWaker::default());
    let mut at_limit = pin!(c.wait_at_least(COUNTER_LIMIT));
    assert!(poll_with(at_limit.as_mut(), &w).is_pending());
    c.bump(1).unwrap();
    assert_eq!(w.count(), 1);
    assert!(poll_with(at_limit.as_mut(), &w).is_ready());
    assert_eq!(c.bump(1), Err(Error::OutOfRange { lvar: "Counter" }));
    assert!(!c.is_frozen(), "overflow does not touch the frozen flag");
    assert_eq!(c.freeze(), COUNTER_LIMIT);
    // Frozen and full: a bump is out of range or after freeze, never Ok.
    assert!(c.bump(1).is_err());
    let pn = RawPNCounter::new();
    pn.decrement(COUNTER_LIMIT).unwrap();
    assert_eq!(pn.decrement(1), Err(Error::OutOfRange { lvar: "PNCounter" }));
    pn.increment(1).unwrap();
    assert_eq!(pn.freeze().value(), 1 - i128::from(COUNTER_LIMIT));
}

/// Bumps summing past the limit fail the session with `OutOfRange` in
/// every schedule (whichever bump comes last fails).
#[test]
fn overflowing_bumps_fail_the_session_in_every_schedule() {
    for n in POOLS {
        let pool = pool(n);
        for run in 0..10 {
            let r = pool.run_par_then_freeze(|p| {
                Box::pin(async move {
                    let c = Counter::new(p);
                    for _ in 0..3 {
                        let c = c.clone();
                        p.fork(async move {
                            let _ = c.bump(COUNTER_LIMIT / 2);
                        });
                    }
                    c.then_freeze()
                })
            });
            assert_eq!(
                r,
                Err(Error::OutOfRange { lvar: "Counter" }),
                "{n} worker(s), run {run}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// PNCounter.

/// Each side has its own waiters: decrements never wake an increments
/// waiter and vice versa, however large they are.
#[test]
fn pn_counter_sides_are_independent() {
    let c = RawPNCounter::new();
    let (wi, wd) = (Arc::new(CountingWaker::default()), Arc::new(CountingWaker::default()));
    let mut inc3 = pin!(c.wait_increments_at_least(3));
    let mut dec2 = pin!(c.wait_decrements_at_least(2));
    assert!(poll_with(inc3.as_mut(), &wi).is_pending());
    assert!(poll_with(dec2.as_mut(), &wd).is_pending());
    c.decrement(10).unwrap();
    assert_eq!(wi.count(), 0, "decrements do not count towards increments");
    assert_eq!(wd.count(), 1);
    assert!(poll_with(inc3.as_mut(), &wi).is_pending());
    c.increment(2).unwrap();
    assert_eq!(wi.count(), 0);
    c.increment(1).unwrap();
    assert_eq!(wi.count(), 1);
    assert!(poll_with(inc3.as_mut(), &wi).is_ready());
    assert!(poll_with(dec2.as_mut(), &wd).is_ready());
    assert!(poll_with(pin!(c.wait_increments_at_least(4)), &wi).is_pending());
    assert_eq!(
        c.freeze(),
        FrozenPN {
            increments: 3,
            decrements: 10
        }
    );
    assert!(c.is_frozen());
    assert_eq!(c.increment(1), Err(Error::PutAfterFreeze { lvar: "PNCounter" }));
    assert_eq!(c.decrement(0), Ok(()));
}

#[test]
fn frozen_pn_value_is_the_difference() {
    assert_eq!(FrozenPN::default().value(), 0);
    let f = FrozenPN {
        increments: 0,
        decrements: COUNTER_LIMIT,
    };
    assert_eq!(f.value(), -i128::from(COUNTER_LIMIT));
    let f = FrozenPN {
        increments: COUNTER_LIMIT,
        decrements: 1,
    };
    assert_eq!(f.value(), i128::from(COUNTER_LIMIT) - 1);
}

/// Tasks increment and decrement in parallel; a task waiting on one side
/// decrements more once it passes. The frozen pair is right in every run.
#[test]
fn pn_counter_session_freezes_to_the_right_pair() {
    const TASKS: u64 = 40;
    let incs: u64 = (0..TASKS).map(|t| t % 3 + 1).sum();
    let decs: u64 = (0..TASKS).map(|t| t % 4 + 1).sum();
    for n in POOLS {
        let pool = pool(n);
        for run in 0..20 {
            let frozen = pool
                .run_par_then_freeze(|p| {
                    Box::pin(async move {
                        let c = PNCounter::new(p);
                        let waiter = c.clone();
                        p.fork(async move {
                            waiter.wait_increments_at_least(incs).await;
                            waiter.decrement(1000).unwrap();
                        });
                        for t in 0..TASKS {
                            let c = c.clone();
                            p.fork(async move {
                                c.increment(t % 3 + 1).unwrap();
                                lvars::yield_now().await;
                                c.decrement(t % 4 + 1).unwrap();
                            });
                        }
                        c.then_freeze()
                    })
                })
                .unwrap();
            assert_eq!(
                frozen,
                FrozenPN {
                    increments: incs,
                    decrements: decs + 1000
                },
                "{n} worker(s), run {run}"
            );
            assert_eq!(frozen.value(), incs as i128 - (decs + 1000) as i128);
        }
    }
}

// ---------------------------------------------------------------------------
// Determinism.

/// Stages chained by threshold waits: stage `s` waits until the counter
/// reached what stages `0..s` bump, then bumps more (forking helpers) and
/// moves the PN-counter both ways.
fn staged_program(pool: &ThreadPool) -> (u64, FrozenPN) {
    const STAGES: u64 = 8;
    const PER_STAGE: u64 = 6;
    pool.run_par_then_freeze(|p| {
        Box::pin(async move {
            let c = Counter::new(p);
            let pn = PNCounter::new(p);
            for s in (0..STAGES).rev() {
                let (c, pn) = (c.clone(), pn.clone());
                p.fork(async move {
                    // Each stage bumps PER_STAGE * (s + 1) in total.
                    let before: u64 = (0..s).map(|x| PER_STAGE * (x + 1)).sum();
                    c.wait_at_least(before).await;
                    for _ in 0..PER_STAGE {
                        let (c, pn) = (c.clone(), pn.clone());
                        p.fork(async move {
                            c.bump(s + 1).unwrap();
                            pn.increment(s).unwrap();
                            pn.decrement(2).unwrap();
                        });
                    }
                });
            }
            (c, pn).then_freeze()
        })
    })
    .unwrap()
}

#[test]
fn the_same_program_gives_one_result_over_100_runs() {
    let pools: Vec<ThreadPool> = POOLS.iter().map(|&n| pool(n)).collect();
    let results: HashSet<_> = (0..100).map(|run| staged_program(&pools[run % pools.len()])).collect();
    assert_eq!(results.len(), 1, "different results: {results:?}");
    let (count, pn) = results.into_iter().next().unwrap();
    assert_eq!(count, 6 * (1..=8).sum::<u64>());
    assert_eq!(
        pn,
        FrozenPN {
            increments: 6 * (0..8).sum::<u64>(),
            decrements: 6 * 8 * 2
        }
    );
}
