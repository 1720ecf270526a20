//! Every error a session can report, one test each, plus: the pool is
//! healthy after every kind of failure, deadlock reports are exact (no
//! hang, no false report, also with nested waiting), and messages are clear.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use lvars::data::MAX_COUNTER_LIMIT;
use lvars::lattice::{Flat, MapUnion, Max, SetUnion};
use lvars::lvar::ThresholdSet;
use lvars::{Error, ISet, IVar, JoinHandle, LVar, MaxCounter, Par, ParFuture, ThreadPool};

mod common;
use common::{pool, within};

/// A failing program: runs one session on the pool and returns its result.
type Program = fn(&ThreadPool) -> Result<u64, Error>;

/// A normal session (forks, puts, threshold gets, a nested join) must give
/// the right answer on `pool`.
fn assert_healthy(pool: &ThreadPool, after: &str) {
    let r = pool.run_par(|p| {
        Box::pin(async move {
            let set: LVar<SetUnion<u64>> = LVar::new(p);
            let total = MaxCounter::new(p);
            for i in 1..=20u64 {
                let (set, total) = (set.clone(), total.clone());
                p.fork(async move {
                    set.put(SetUnion::singleton(i)).unwrap();
                    let (a, b) = lvars::join(|| i, || i * 2);
                    total.put(a + b).unwrap();
                });
            }
            set.get_at_least((1..=20).collect()).unwrap().await;
            total.wait_at_least(60).await;
            (1..=20).sum::<u64>()
        })
    });
    assert_eq!(r, Ok(210), "the pool is broken after {after}");
}

/// Runs a failing program on pools of 1, 2 and 4 workers, checks the
/// error, then checks that the same pool still runs a normal session.
fn expect_error(what: &str, program: Program, expected: Error) {
    for n in [1, 2, 4] {
        let pool = pool(n);
        for _ in 0..3 {
            assert_eq!(program(&pool), Err(expected.clone()), "{what}, {n} worker(s)");
            assert_healthy(&pool, what);
        }
    }
}

// ---------------------------------------------------------------------------
// The failing programs.

fn ivar_conflict(pool: &ThreadPool) -> Result<u64, Error> {
    pool.run_par(|p| {
        Box::pin(async move {
            let iv: IVar<u64> = IVar::new(p);
            for v in [1, 2, 1] {
                let iv = iv.clone();
                p.fork(async move {
                    let _ = iv.put(v); // the loser's error fails the session
                });
            }
            *iv.get().await
        })
    })
}

fn flat_lvar_conflict(pool: &ThreadPool) -> Result<u64, Error> {
    pool.run_par(|p| {
        Box::pin(async move {
            let lv: LVar<Flat<u64>> = LVar::new(p);
            lv.put(Flat::Value(3)).unwrap();
            lv.put(Flat::Value(3)).unwrap(); // equal: fine
            let e = lv.put(Flat::Value(4)).unwrap_err();
            assert_eq!(
                e,
                Error::ConflictingPut { lvar: "LVar" },
                "the put itself reports it too"
            );
            0
        })
    })
}

fn map_entry_conflict(pool: &ThreadPool) -> Result<u64, Error> {
    pool.run_par(|p| {
        Box::pin(async move {
            let map: LVar<MapUnion<&'static str, Flat<u64>>> = LVar::new(p);
            let m2 = map.clone();
            p.fork(async move {
                let _ = m2.put(MapUnion::singleton("Book", Flat::Value(1)));
            });
            let _ = map.put(MapUnion::singleton("Shoes", Flat::Value(1)));
            let _ = map.put(MapUnion::singleton("Book", Flat::Value(2)));
            let _ = map.put(MapUnion::singleton("Book", Flat::Value(1)));
            7
        })
    })
}

fn lvar_put_after_freeze(pool: &ThreadPool) -> Result<u64, Error> {
    pool.run_par_quasi_det(|p| {
        Box::pin(async move {
            let lv: LVar<Max<u64>> = LVar::new(p);
            lv.put(Max::new(5)).unwrap();
            assert_eq!(lv.freeze(&p), Max::new(5));
            lv.put(Max::new(5)).unwrap(); // changes nothing: fine
            lv.put(Max::new(2)).unwrap(); // below the state: fine
            let e = lv.put(Max::new(6)).unwrap_err();
            assert_eq!(e, Error::PutAfterFreeze { lvar: "LVar" });
            1
        })
    })
}

fn ivar_put_after_freeze(pool: &ThreadPool) -> Result<u64, Error> {
    pool.run_par_quasi_det(|p| {
        Box::pin(async move {
            let iv: IVar<u64> = IVar::new(p);
            assert_eq!(iv.freeze(&p), None);
            let w = iv.clone();
            p.fork(async move {
                let _ = w.put(9);
            })
            .await;
            2
        })
    })
}

fn counter_put_after_freeze(pool: &ThreadPool) -> Result<u64, Error> {
    pool.run_par_quasi_det(|p| {
        Box::pin(async move {
            let c = MaxCounter::new(p);
            c.put(3).unwrap();
            assert_eq!(c.freeze(&p), 3);
            c.put(3).unwrap();
            c.put(1).unwrap();
            let _ = c.put(4);
            3
        })
    })
}

fn counter_out_of_range(pool: &ThreadPool) -> Result<u64, Error> {
    pool.run_par(|p| {
        Box::pin(async move {
            let c = MaxCounter::new(p);
            c.put(MAX_COUNTER_LIMIT).unwrap(); // the largest value is fine
            let e = c.put(MAX_COUNTER_LIMIT + 1).unwrap_err();
            assert_eq!(e, Error::OutOfRange { lvar: "MaxCounter" });
            4
        })
    })
}

fn dense_set_out_of_range(pool: &ThreadPool) -> Result<u64, Error> {
    pool.run_par(|p| {
        Box::pin(async move {
            let set: ISet<u32> = ISet::dense(p, 100);
            set.insert(99).unwrap(); // the largest element is fine
            p.fork(async move {
                let _ = set.insert(100); // beyond the bound: fails the session
            });
            set.wait_size(2).await; // never reached
            5
        })
    })
}

fn root_blocked_on_empty_ivar(pool: &ThreadPool) -> Result<u64, Error> {
    pool.run_par(|p| {
        Box::pin(async move {
            let iv: IVar<u64> = IVar::new(p);
            // Some tasks finish normally before the session gets stuck.
            for _ in 0..5 {
                p.fork(async {});
            }
            *iv.get().await
        })
    })
}

/// `depth` tasks, each awaiting the JoinHandle of the next; the last one
/// waits on an IVar nobody fills. The root awaits the first. Finished
/// siblings along the way do not count as parked.
fn nested_wait_chain<'s>(p: Par<'s>, iv: IVar<'s, u64>, depth: usize) -> JoinHandle<u64> {
    // Boxed: an async recursion.
    let fut: ParFuture<'s, u64> = if depth == 1 {
        Box::pin(async move { *iv.get().await })
    } else {
        Box::pin(async move {
            let sibling = p.fork(async { 1u64 });
            let next = nested_wait_chain(p, iv, depth - 1);
            sibling.await + next.await
        })
    };
    p.fork(fut)
}

const CHAIN: usize = 5;

fn nested_deadlock(pool: &ThreadPool) -> Result<u64, Error> {
    pool.run_par(|p| {
        Box::pin(async move {
            let iv: IVar<u64> = IVar::new(p);
            nested_wait_chain(p, iv, CHAIN).await
        })
    })
}

// ---------------------------------------------------------------------------
// One test per error.

#[test]
fn conflicting_put_into_an_ivar() {
    expect_error(
        "conflicting IVar puts",
        ivar_conflict,
        Error::ConflictingPut { lvar: "IVar" },
    );
}

#[test]
fn conflicting_put_into_a_flat_lvar() {
    expect_error(
        "conflicting Flat puts",
        flat_lvar_conflict,
        Error::ConflictingPut { lvar: "LVar" },
    );
}

#[test]
fn conflicting_values_for_one_map_key() {
    expect_error(
        "conflicting map entry",
        map_entry_conflict,
        Error::ConflictingPut { lvar: "LVar" },
    );
}

#[test]
fn put_after_freeze_into_an_lvar() {
    expect_error(
        "LVar put after freeze",
        lvar_put_after_freeze,
        Error::PutAfterFreeze { lvar: "LVar" },
    );
}

#[test]
fn put_after_freeze_into_an_empty_ivar() {
    expect_error(
        "IVar put after freeze",
        ivar_put_after_freeze,
        Error::PutAfterFreeze { lvar: "IVar" },
    );
}

#[test]
fn put_after_freeze_into_a_max_counter() {
    expect_error(
        "MaxCounter put after freeze",
        counter_put_after_freeze,
        Error::PutAfterFreeze { lvar: "MaxCounter" },
    );
}

#[test]
fn out_of_range_max_counter_put() {
    expect_error(
        "MaxCounter overflow",
        counter_out_of_range,
        Error::OutOfRange { lvar: "MaxCounter" },
    );
}

#[test]
fn out_of_range_dense_set_insert() {
    expect_error(
        "dense ISet insert beyond the bound",
        dense_set_out_of_range,
        Error::OutOfRange { lvar: "dense ISet" },
    );
}

#[test]
fn deadlock_of_the_root_task() {
    expect_error(
        "root deadlock",
        root_blocked_on_empty_ivar,
        Error::Deadlock { parked: 1 },
    );
}

#[test]
fn invalid_threshold_sets() {
    // (elements, what is wrong with them)
    let comparable = ThresholdSet::new(vec![Max::new(1u32), Max::new(2)]).unwrap_err();
    let empty = ThresholdSet::<Max<u32>>::new(vec![]).unwrap_err();
    let top = ThresholdSet::new(vec![Flat::Value(1u8), Flat::Top]).unwrap_err();
    let compatible_sets = ThresholdSet::new(vec![SetUnion::singleton(1u8), SetUnion::singleton(2)]).unwrap_err();
    for (e, why) in [
        (&comparable, "compatible"),
        (&empty, "empty"),
        (&top, "top"),
        (&compatible_sets, "compatible"),
    ] {
        assert!(matches!(e, Error::InvalidThreshold { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.starts_with("invalid threshold set: "), "{msg}");
        assert!(msg.contains(why), "{msg:?} should say why ({why})");
    }
    // Pairwise incompatible elements are accepted.
    assert_eq!(
        ThresholdSet::new(vec![Flat::Value(1u8), Flat::Value(2), Flat::Value(3)])
            .unwrap()
            .len(),
        3
    );
    // A get at top is refused up front; it does not fail the session.
    let r = pool(2).run_par(|p| {
        Box::pin(async move {
            let lv: LVar<Flat<u8>> = LVar::new(p);
            let refused = lv.get_at_least(Flat::Top).err();
            lv.put(Flat::Value(1)).unwrap();
            (refused, lv.get_at_least(Flat::Value(1)).unwrap().await)
        })
    });
    let (refused, got) = r.unwrap();
    assert!(matches!(refused, Some(Error::InvalidThreshold { .. })), "{refused:?}");
    assert_eq!(got, Flat::Value(1));
}

#[test]
fn panicking_task_is_re_raised_and_the_pool_survives() {
    for n in [1, 2, 4] {
        let pool = pool(n);
        for round in 0..3 {
            let r = catch_unwind(AssertUnwindSafe(|| {
                pool.run_par(|p| {
                    Box::pin(async move {
                        let iv: IVar<u64> = IVar::new(p);
                        let blocked = {
                            let iv = iv.clone();
                            p.fork(async move { *iv.get().await })
                        };
                        p.fork(async move { panic!("task {round} failed on {n} worker(s)") });
                        blocked.await // never satisfied: cancelled after the panic
                    })
                })
            }));
            let payload = r.expect_err("the panic must reach the caller");
            assert_eq!(
                payload.downcast_ref::<String>().map(String::as_str),
                Some(format!("task {round} failed on {n} worker(s)").as_str())
            );
            assert_healthy(&pool, "a panic");
        }
    }
}

#[test]
fn panic_in_the_session_body_itself_is_re_raised() {
    let pool = pool(2);
    let r = catch_unwind(AssertUnwindSafe(|| {
        pool.run_par(|p| {
            let c = MaxCounter::new(p);
            p.fork(async move { c.put(1).unwrap() });
            if std::hint::black_box(true) {
                panic!("body failed before returning its future");
            }
            Box::pin(async { 0u64 })
        })
    }));
    let payload = r.expect_err("the panic must reach the caller");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"body failed before returning its future")
    );
    assert_healthy(&pool, "a panic in the body");
}

// ---------------------------------------------------------------------------
// Deadlock detection: exact, never hangs, also with nested waiting.

#[test]
fn nested_join_handle_deadlock_is_reported_on_every_pool_size() {
    for n in [1, 2, 4, 8] {
        let r = within(30, &format!("nested deadlock, {n} worker(s)"), move || {
            let pool = pool(n);
            let mut results = Vec::new();
            for _ in 0..10 {
                results.push(nested_deadlock(&pool));
                assert_healthy(&pool, "a nested deadlock");
            }
            results
        });
        for got in r {
            // The root plus every task of the chain is parked.
            assert_eq!(got, Err(Error::Deadlock { parked: CHAIN + 1 }), "{n} worker(s)");
        }
    }
}

#[test]
fn deadlock_of_a_nested_session_is_reported_to_the_task_that_ran_it() {
    for n in [1, 2, 4, 8] {
        let r = within(30, &format!("inner deadlock, {n} worker(s)"), move || {
            pool(n).run_par(|p| {
                Box::pin(async move {
                    let done = MaxCounter::new(p);
                    let d = done.clone();
                    let inner = p.fork(async move {
                        let inner = lvars::run_par(|q| {
                            Box::pin(async move {
                                let iv: IVar<u8> = IVar::new(q);
                                *iv.get().await
                            })
                        });
                        d.put(1).unwrap();
                        inner
                    });
                    done.wait_at_least(1).await;
                    inner.await
                })
            })
        });
        assert_eq!(r, Ok(Err(Error::Deadlock { parked: 1 })), "{n} worker(s)");
    }
}

/// Found by review: the same nested deadlock, from the second closure of a
/// `join` inside a task. When another worker stole that closure, the outer
/// session was reported deadlocked too (the thief polls no task, so nothing
/// kept the outer session "running"), and its result depended on the
/// steal. Now the task waiting for its stolen closure keeps its session
/// out of deadlock reports: the outer result is the same either way.
#[test]
fn deadlock_of_a_nested_session_in_a_stolen_join_closure_is_reported_to_that_closure() {
    for n in [1, 2] {
        for round in 0..10 {
            let r = within(30, &format!("nested in join, {n} worker(s)"), move || {
                pool(n).run_par(|p| {
                    Box::pin(async move {
                        p.fork(async move {
                            // Let the other worker go hungry, so that `join`
                            // publishes its second closure and it is stolen.
                            std::thread::sleep(Duration::from_millis(10));
                            let ((), inner) = lvars::join(
                                || std::thread::sleep(Duration::from_millis(50)),
                                || {
                                    lvars::run_par(|q| {
                                        Box::pin(async move {
                                            let iv: IVar<u8> = IVar::new(q);
                                            *iv.get().await
                                        })
                                    })
                                },
                            );
                            inner
                        })
                        .await
                    })
                })
            });
            assert_eq!(
                r,
                Ok(Err(Error::Deadlock { parked: 1 })),
                "{n} worker(s), round {round}"
            );
        }
    }
}

#[test]
fn no_false_deadlock_while_a_task_is_busy_or_in_a_nested_session() {
    for n in [1, 2, 4] {
        let r = within(30, &format!("busy tasks, {n} worker(s)"), move || {
            pool(n).run_par(|p| {
                Box::pin(async move {
                    let iv: IVar<u64> = IVar::new(p);
                    // Several tasks park on the IVar...
                    let getters: Vec<_> = (0..4)
                        .map(|_| {
                            let iv = iv.clone();
                            p.fork(async move { *iv.get().await })
                        })
                        .collect();
                    // ...while the only task that can fill it is busy: first
                    // sleeping, then inside a nested session that is itself
                    // slow.
                    let w = iv.clone();
                    p.fork(async move {
                        std::thread::sleep(Duration::from_millis(30));
                        let v = lvars::run_par(|q| {
                            Box::pin(async move {
                                let inner: IVar<u64> = IVar::new(q);
                                let i2 = inner.clone();
                                q.fork(async move {
                                    std::thread::sleep(Duration::from_millis(30));
                                    i2.put(21).unwrap();
                                });
                                *inner.get().await * 2
                            })
                        })
                        .unwrap();
                        w.put(v).unwrap();
                    });
                    let mut sum = 0;
                    for g in getters {
                        sum += g.await;
                    }
                    sum
                })
            })
        });
        assert_eq!(r, Ok(168), "{n} worker(s)");
    }
}

// ---------------------------------------------------------------------------
// Messages.

#[test]
fn error_messages_are_clear() {
    let table: [(Error, &[&str]); 7] = [
        (
            Error::ConflictingPut { lvar: "IVar" },
            &["conflicting put", "IVar", "top"],
        ),
        (Error::ConflictingPut { lvar: "LVar" }, &["conflicting put", "LVar"]),
        (
            Error::PutAfterFreeze { lvar: "LVar" },
            &["put after freeze", "LVar", "frozen"],
        ),
        (
            Error::PutAfterFreeze { lvar: "MaxCounter" },
            &["put after freeze", "MaxCounter"],
        ),
        (
            Error::InvalidThreshold { reason: "some reason" },
            &["invalid threshold set", "some reason"],
        ),
        (Error::Deadlock { parked: 3 }, &["deadlock", "3", "blocked"]),
        (
            Error::OutOfRange { lvar: "MaxCounter" },
            &["out of range", "MaxCounter"],
        ),
    ];
    for (e, needles) in table {
        let msg = e.to_string();
        for needle in needles {
            assert!(
                msg.contains(needle),
                "{e:?} displays as {msg:?}, which lacks {needle:?}"
            );
        }
        // Usable as a std error.
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e.clone());
        assert_eq!(boxed.to_string(), msg);
    }
    // The errors a real session produces display the same way.
    let e = ivar_conflict(&pool(1)).unwrap_err();
    assert!(e.to_string().starts_with("conflicting put"), "{e}");
    let e = root_blocked_on_empty_ivar(&pool(1)).unwrap_err();
    assert!(e.to_string().contains("all 1 live task(s)"), "{e}");
}

#[test]
fn an_unawaited_blocked_task_deadlocks_the_session_even_if_the_root_finished() {
    for n in [1, 2, 4] {
        let pool = pool(n);
        let r = pool.run_par(|p| {
            Box::pin(async move {
                let iv: IVar<u8> = IVar::new(p);
                p.fork(async move {
                    iv.get().await;
                });
                "the root is done"
            })
        });
        assert_eq!(r, Err(Error::Deadlock { parked: 1 }), "{n} worker(s)");
        assert_healthy(&pool, "a deadlock of an unawaited task");
    }
}

#[test]
fn deadlocked_sessions_run_inside_install_and_join_are_reported() {
    fn stuck() -> Result<u8, Error> {
        lvars::run_par(|p| {
            Box::pin(async move {
                let iv: IVar<u8> = IVar::new(p);
                *iv.get().await
            })
        })
    }
    for n in [1, 2, 4] {
        let pool = pool(n);
        let r = within(30, "sessions inside install / join", move || {
            let single = pool.install(stuck);
            let pair = pool.install(|| lvars::join(stuck, stuck));
            assert_healthy(&pool, "deadlocks inside install");
            (single, pair)
        });
        let dead = Err(Error::Deadlock { parked: 1 });
        assert_eq!(r, (dead.clone(), (dead.clone(), dead)), "{n} worker(s)");
    }
}

#[test]
fn concurrent_sessions_on_one_pool_each_get_their_own_outcome() {
    // Two sessions deadlock while a third is busy (a sleeping task) on the
    // same pool: the busy one must not be reported, the stuck ones must be,
    // and nothing may hang.
    for n in [1, 2, 4, 8] {
        let pool = std::sync::Arc::new(pool(n));
        for round in 0..3 {
            let run = |f: fn(&ThreadPool) -> Result<u64, Error>| {
                let pool = std::sync::Arc::clone(&pool);
                std::thread::spawn(move || f(&pool))
            };
            let stuck_root = run(root_blocked_on_empty_ivar);
            let busy = run(|pool| {
                pool.run_par(|p| {
                    Box::pin(async move {
                        let iv: IVar<u64> = IVar::new(p);
                        let w = iv.clone();
                        p.fork(async move {
                            std::thread::sleep(Duration::from_millis(40));
                            w.put(3).unwrap();
                        });
                        *iv.get().await
                    })
                })
            });
            let stuck_chain = run(nested_deadlock);
            let outcomes = within(30, "concurrent sessions", move || {
                [stuck_root, busy, stuck_chain].map(|h| h.join().expect("no panic"))
            });
            assert_eq!(
                outcomes,
                [
                    Err(Error::Deadlock { parked: 1 }),
                    Ok(3),
                    Err(Error::Deadlock { parked: CHAIN + 1 })
                ],
                "{n} worker(s), round {round}"
            );
        }
        assert_healthy(&pool, "concurrent sessions");
    }
}

#[test]
fn a_session_on_another_pool_run_from_a_task_deadlocks_alone() {
    // A task of a session on `pool` runs sessions on `other`: one that
    // deadlocks (reported to the task) and a slow one. Meanwhile the outer
    // root is parked; the outer session must not be reported.
    for n in [1, 2, 4] {
        let pool = pool(n);
        let other = std::sync::Arc::new(self::pool(n));
        let r = pool.run_par(move |p| {
            Box::pin(async move {
                let iv: IVar<u8> = IVar::new(p);
                let w = iv.clone();
                let h = p.fork(async move {
                    let stuck = other.run_par(|q| {
                        Box::pin(async move {
                            let iv: IVar<u8> = IVar::new(q);
                            *iv.get().await
                        })
                    });
                    let slow = other.run_par(|q| {
                        Box::pin(async move {
                            let iv: IVar<u8> = IVar::new(q);
                            let w = iv.clone();
                            q.fork(async move {
                                std::thread::sleep(Duration::from_millis(20));
                                w.put(5).unwrap()
                            });
                            *iv.get().await
                        })
                    });
                    w.put(slow.unwrap()).unwrap();
                    stuck
                });
                (*iv.get().await, h.await)
            })
        });
        assert_eq!(r, Ok((5, Err(Error::Deadlock { parked: 1 }))), "{n} worker(s)");
    }
}

/// The boundary of deadlock detection, as documented on `run_par`: a
/// session is a closed world, its tasks must be woken by the session itself.
/// A task awaiting a future that only the outside world completes (here a
/// raw IVar filled later by an OS thread) looks exactly like a deadlock once
/// the pool is idle, and is reported as one, at once, rather than hanging.
#[test]
fn a_session_waiting_on_the_outside_world_is_reported_as_a_deadlock() {
    use lvars::data::RawIVar;
    let pool = pool(2);
    let raw = std::sync::Arc::new(RawIVar::<u8>::new());
    let putter = {
        let raw = std::sync::Arc::clone(&raw);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            raw.put(1).unwrap();
        })
    };
    let outside = std::sync::Arc::clone(&raw);
    let r = pool.run_par(move |_p| Box::pin(async move { *outside.get().await }));
    assert_eq!(r, Err(Error::Deadlock { parked: 1 }));
    putter.join().unwrap();
    // The cancelled get left nothing behind: the late put still works.
    assert_eq!(raw.try_get(), Some(&1));
    assert_healthy(&pool, "outside world");
}

// ---------------------------------------------------------------------------
// Cancellation releases everything.

/// Counts its drops; equal to every other `Tracked` (so it fits in an IVar).
struct Tracked(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl PartialEq for Tracked {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Runs a session in which 40 tasks each hold a `Tracked` value and put
/// another into a shared IVar (half of them first wait at a gate), and
/// which ends in `ending`: "ok", "deadlock", "conflict" or "panic". When
/// `outputs` is set, every task also returns a `Tracked` value that nobody
/// awaits. Returns the outcome and (made, dropped) counts read right after
/// the runner returned.
fn tracked_session(pool: &ThreadPool, ending: &'static str, outputs: bool) -> (&'static str, usize, usize) {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    let made = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let (m, d) = (Arc::clone(&made), Arc::clone(&dropped));
    let r = catch_unwind(AssertUnwindSafe(|| {
        pool.run_par(move |p| {
            Box::pin(async move {
                let new = move || {
                    m.fetch_add(1, SeqCst);
                    Tracked(Arc::clone(&d))
                };
                let stored: IVar<Tracked> = IVar::new(p);
                let gate: IVar<u8> = IVar::new(p);
                for i in 0..40 {
                    let (held, put) = (new(), new());
                    let output = outputs.then(&new);
                    let (stored, gate) = (stored.clone(), gate.clone());
                    p.fork(async move {
                        let _held = held;
                        if i % 2 == 0 {
                            gate.get().await;
                        }
                        let _ = stored.put(put);
                        output
                    });
                }
                match ending {
                    "ok" => gate.put(1).unwrap(),
                    "deadlock" => {}
                    "conflict" => {
                        gate.put(1).unwrap();
                        let _ = gate.put(2);
                    }
                    _ => {
                        lvars::yield_now().await;
                        panic!("ending with a panic");
                    }
                }
                0u64
            })
        })
    }));
    let (made, dropped) = (made.load(SeqCst), dropped.load(SeqCst));
    let outcome = match r {
        Ok(Ok(_)) => "ok",
        Ok(Err(Error::Deadlock { parked: 20 })) => "deadlock", // the gated half
        Ok(Err(Error::ConflictingPut { lvar: "IVar" })) => "conflict",
        Err(_) => "panic",
        Ok(Err(e)) => panic!("unexpected {e:?}"),
    };
    (outcome, made, dropped)
}

#[test]
fn every_outcome_drops_all_task_state_and_put_values() {
    for n in [1, 2, 4] {
        let pool = pool(n);
        for ending in ["ok", "deadlock", "conflict", "panic"] {
            let (outcome, made, dropped) = tracked_session(&pool, ending, false);
            assert_eq!(outcome, ending, "{n} worker(s)");
            assert_eq!(made, 80, "{n} worker(s), {ending}");
            assert_eq!(
                dropped, 80,
                "{n} worker(s), {ending}: every value a task held or put is dropped before the runner returns"
            );
            assert_healthy(&pool, ending);
        }
    }
}

#[test]
fn unawaited_task_outputs_are_dropped_before_the_runner_returns() {
    for n in [1, 2, 4] {
        let pool = pool(n);
        for ending in ["ok", "deadlock", "conflict", "panic"] {
            for round in 0..20 {
                let (outcome, made, dropped) = tracked_session(&pool, ending, true);
                assert_eq!(outcome, ending, "{n} worker(s)");
                assert_eq!(made, 120, "{n} worker(s), {ending}");
                assert_eq!(
                    dropped, made,
                    "{n} worker(s), {ending}, round {round}: values still alive"
                );
            }
        }
    }
}

/// Found by review: cancelling the parked tasks of a deadlocked session
/// raced with tasks that an outside thread kept waking, which could make a
/// completing task remove another task's entry from the parked registry (a
/// worker panic and a hang, or a double release). The session must end in
/// `Deadlock` every time, and the pool must stay healthy.
#[test]
fn cancelling_parked_tasks_while_they_are_woken_from_outside() {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};

    /// Parks forever, leaving its waker where the outside thread finds it.
    struct Park {
        slot: Arc<Mutex<Option<Waker>>>,
        parked: Arc<AtomicUsize>,
        first: bool,
    }
    impl Future for Park {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            *self.slot.lock().unwrap() = Some(cx.waker().clone());
            if std::mem::take(&mut self.first) {
                self.parked.fetch_add(1, SeqCst);
            }
            Poll::Pending
        }
    }

    within(120, "cancelling woken parked tasks", || {
        const TASKS: usize = 20_000;
        let pool = pool(4);
        for iter in 0..60u64 {
            let slots: Vec<Arc<Mutex<Option<Waker>>>> = (0..TASKS).map(|_| Arc::new(Mutex::new(None))).collect();
            let parked = Arc::new(AtomicUsize::new(0));
            let done = Arc::new(AtomicBool::new(false));
            let waker_thread = {
                let (slots, parked, done) = (slots.clone(), Arc::clone(&parked), Arc::clone(&done));
                std::thread::spawn(move || {
                    while parked.load(SeqCst) < TASKS && !done.load(SeqCst) {
                        std::thread::yield_now();
                    }
                    std::thread::sleep(Duration::from_micros((iter * 37) % 400));
                    // A bounded number of sweeps: while they go on, the
                    // session is not deadlocked (it is found parked only in
                    // a gap between two sweeps), and on a loaded machine
                    // the gaps can all be too short; once they stop, it is.
                    for _ in 0..50 {
                        if done.load(SeqCst) {
                            break;
                        }
                        for s in slots.iter().rev() {
                            if let Some(w) = s.lock().unwrap().as_ref() {
                                w.wake_by_ref();
                            }
                        }
                        std::thread::sleep(Duration::from_micros(50));
                    }
                })
            };
            let (s2, p2) = (slots.clone(), Arc::clone(&parked));
            let r = pool.run_par(move |p| {
                Box::pin(async move {
                    for slot in s2 {
                        p.fork(Park {
                            slot,
                            parked: Arc::clone(&p2),
                            first: true,
                        });
                    }
                })
            });
            done.store(true, SeqCst);
            waker_thread.join().unwrap();
            assert!(matches!(r, Err(Error::Deadlock { .. })), "iteration {iter}: {r:?}");
        }
        assert_healthy(&pool, "cancelling woken parked tasks");
    });
}
