//! Sessions: results, every error, panics, and the pool afterwards.

use lvars::lattice::{Max, SetUnion};
use lvars::lvar::ThresholdSet;
use lvars::{run_par, run_par_quasi_det, run_par_then_freeze, Error, Freeze, IVar, LVar, MaxCounter};

mod common;
use common::pool;

#[test]
fn ivar_get_waits_for_a_forked_put() {
    for n in [1, 2, 8] {
        let r = pool(n).run_par(|p| {
            Box::pin(async move {
                let iv = IVar::new(p);
                let w = iv.clone();
                p.fork(async move { w.put(7u32).unwrap() });
                *iv.get().await
            })
        });
        assert_eq!(r, Ok(7), "threads = {n}");
    }
}

#[test]
fn pair_lattice_threshold_reached_only_by_the_join_wakes_the_waiter() {
    // LVish's defect: the wake-up check looked at the put's argument.
    // put (a, bot) then put (bot, b): only the join reaches (a, b). On one
    // worker the waiter always parks before the puts (on two it raced them
    // and got past the threshold without parking in about half the runs).
    for workers in [1, 2] {
        let r = pool(workers).run_par(|p| {
            Box::pin(async move {
                let lv: LVar<(Max<u32>, Max<u32>)> = LVar::new(p);
                let waiter = {
                    let lv = lv.clone();
                    p.fork(async move { lv.get_at_least((Max::new(3), Max::new(5))).unwrap().await })
                };
                lvars::yield_now().await; // let the waiter park first
                lv.put((Max::new(3), Max::default())).unwrap();
                lv.put((Max::default(), Max::new(5))).unwrap();
                waiter.await
            })
        });
        assert_eq!(r, Ok((Max::new(3), Max::new(5))), "{workers} worker(s)");
    }
}

#[test]
fn get_returns_the_threshold_element_not_the_exact_state() {
    let r = pool(2).run_par(|p| {
        Box::pin(async move {
            let lv: LVar<Max<u64>> = LVar::new(p);
            lv.put(Max::new(100)).unwrap();
            lv.get_at_least(Max::new(10)).unwrap().await
        })
    });
    assert_eq!(r, Ok(Max::new(10)));
}

#[test]
fn conflicting_puts_fail_the_session() {
    let r = pool(2).run_par(|p| {
        Box::pin(async move {
            let iv = IVar::new(p);
            let (a, b) = (iv.clone(), iv.clone());
            let h1 = p.fork(async move { a.put(1u8) });
            let h2 = p.fork(async move { b.put(2u8) });
            // Whichever put loses, the session reports the conflict.
            let _ = (h1.await, h2.await);
        })
    });
    assert_eq!(r, Err(Error::ConflictingPut { lvar: "IVar" }));
}

#[test]
fn equal_second_put_is_fine() {
    let r = pool(2).run_par(|p| {
        Box::pin(async move {
            let iv = IVar::new(p);
            iv.put(5u8).unwrap();
            iv.put(5u8).unwrap();
            *iv.get().await
        })
    });
    assert_eq!(r, Ok(5));
}

#[test]
fn put_after_freeze_is_an_error_only_if_it_changes_the_state() {
    let r = pool(2).run_par_quasi_det(|p| {
        Box::pin(async move {
            let c = MaxCounter::new(p);
            c.put(10).unwrap();
            assert_eq!(c.freeze(&p), 10);
            assert_eq!(c.put(3), Ok(()), "a put that changes nothing succeeds");
            c.put(11)
        })
    });
    assert_eq!(r, Err(Error::PutAfterFreeze { lvar: "MaxCounter" }));
}

#[test]
fn invalid_threshold_sets_are_rejected() {
    let e = ThresholdSet::new(vec![Max::new(1u8), Max::new(2)]).unwrap_err();
    assert!(matches!(e, Error::InvalidThreshold { .. }));
    assert!(e.to_string().contains("invalid threshold set"));
    assert!(ThresholdSet::<Max<u8>>::new(vec![]).is_err());
}

#[test]
fn deadlock_is_reported_with_the_parked_count_and_the_pool_survives() {
    for n in [1, 2, 4] {
        let pool = pool(n);
        let r: Result<(), Error> = pool.run_par(|p| {
            Box::pin(async move {
                let iv: IVar<u8> = IVar::new(p);
                let hs: Vec<_> = (0..3)
                    .map(|_| {
                        let iv = iv.clone();
                        p.fork(async move {
                            iv.get().await;
                        })
                    })
                    .collect();
                for h in hs {
                    h.await;
                }
            })
        });
        // Three forked getters and the root awaiting them.
        assert_eq!(r, Err(Error::Deadlock { parked: 4 }), "threads = {n}");
        assert_eq!(pool.run_par(|_| Box::pin(async { 1 })), Ok(1));
    }
}

#[test]
fn a_panicking_task_is_propagated_and_the_pool_survives() {
    let pool = pool(2);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.run_par(|p| {
            Box::pin(async move {
                let iv: IVar<u8> = IVar::new(p);
                let w = iv.clone();
                p.fork(async move {
                    let _keep = w;
                    panic!("task failed");
                });
                *iv.get().await // never satisfied: cancelled after the panic
            })
        })
    }));
    let payload = r.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"task failed"));
    assert_eq!(pool.run_par(|_| Box::pin(async { 2 })), Ok(2));
}

#[test]
fn run_par_then_freeze_waits_for_unawaited_tasks() {
    for n in [1, 2, 8] {
        let frozen = pool(n)
            .run_par_then_freeze(|p| {
                Box::pin(async move {
                    let set: LVar<SetUnion<u32>> = LVar::new(p);
                    for i in 0..100 {
                        let s = set.clone();
                        p.fork(async move { s.put(SetUnion::singleton(i)).unwrap() });
                    }
                    set.then_freeze()
                })
            })
            .unwrap();
        assert_eq!(frozen.len(), 100, "threads = {n}");
        assert!(frozen.iter().copied().eq(0..100), "frozen sets iterate in order");
    }
}

#[test]
fn sessions_run_on_the_global_pool_and_nest() {
    let r = run_par(|p| {
        Box::pin(async move {
            let c = MaxCounter::new(p);
            let c2 = c.clone();
            p.fork(async move {
                let inner = run_par(|q| {
                    Box::pin(async move {
                        let iv = IVar::new(q);
                        iv.put(41u64).unwrap();
                        *iv.get().await + 1
                    })
                })
                .unwrap();
                c2.put(inner).unwrap();
            });
            c.wait_at_least(42).await;
            "done"
        })
    });
    assert_eq!(r, Ok("done"));
    let q = run_par_quasi_det(|p| {
        Box::pin(async move {
            let iv = IVar::new(p);
            iv.put(1u8).unwrap();
            iv.freeze(&p).copied()
        })
    });
    assert_eq!(q, Ok(Some(1)));
    let f = run_par_then_freeze(|p| Box::pin(async move { IVar::<u8>::new(p).then_freeze() }));
    assert_eq!(f, Ok(None));
}
