//! Derived sets (union, intersection, map, filter) and the add/remove set.

use lvars::derived::{filter, intersection, map, union};
use lvars::{AddRemoveSet, Error, Freeze, FrozenAddRemove, HandlerPool, ISet, Par};

mod common;
use common::pool;

const WORKERS: [usize; 3] = [1, 2, 8];
const RUNS: usize = 30;

/// Forks `tasks` writers that insert `range` into `set` (interleaved by
/// stride, yielding now and then so the writers really interleave).
fn fill<'s, E: lvars::EffectLevel>(p: Par<'s, E>, set: &ISet<'s, u32>, range: std::ops::Range<u32>, tasks: u32) {
    for t in 0..tasks {
        let set = *set;
        let range = range.clone();
        p.fork(async move {
            for (i, x) in range.skip(t as usize).step_by(tasks as usize).enumerate() {
                set.insert(x).unwrap();
                if i % 64 == 0 {
                    lvars::yield_now().await;
                }
            }
        });
    }
}

/// Elements inserted before the derived set exists, inserted concurrently
/// with its creation, and inserted after it all reach the union, exactly.
#[test]
fn union_follows_sources_filled_before_during_and_after_creation() {
    let expected: Vec<u32> = (0..1500).chain(2000..2500).collect();
    for workers in WORKERS {
        let pool = pool(workers);
        for run in 0..RUNS {
            let got = pool
                .run_par_then_freeze(|p| {
                    Box::pin(async move {
                        let (a, b): (ISet<u32>, ISet<u32>) = (ISet::new(p), ISet::new(p));
                        // Before: 0..200 into a, synchronously.
                        (0..200).for_each(|x| a.insert(x).unwrap());
                        // During: writers already running when the handlers are installed.
                        fill(p, &a, 200..1000, 3);
                        fill(p, &b, 500..1500, 3);
                        let handlers = HandlerPool::new(p);
                        let u = union(p, &handlers, &a, &b).unwrap();
                        // After.
                        fill(p, &b, 2000..2500, 2);
                        u.then_freeze()
                    })
                })
                .unwrap();
            assert_eq!(got, expected, "workers {workers} run {run}");
        }
    }
}

/// Intersection of overlapping sets filled concurrently, with each side
/// reaching some common elements first; also a set with itself.
#[test]
fn intersection_follows_concurrent_sources() {
    let expected: Vec<u32> = (600..1000).chain(1500..1600).collect();
    for workers in WORKERS {
        let pool = pool(workers);
        for run in 0..RUNS {
            let (both, same) = pool
                .run_par_then_freeze(|p| {
                    Box::pin(async move {
                        let (a, b): (ISet<u32>, ISet<u32>) = (ISet::new(p), ISet::new(p));
                        (1500..1600).for_each(|x| b.insert(x).unwrap()); // b side first
                        fill(p, &a, 0..1000, 3);
                        let handlers = HandlerPool::new(p);
                        let both = intersection(p, &handlers, &a, &b).unwrap();
                        let same = intersection(p, &handlers, &a, &a).unwrap();
                        fill(p, &b, 600..1200, 3);
                        fill(p, &a, 1500..1600, 2); // a side last
                        (both, same).then_freeze()
                    })
                })
                .unwrap();
            assert_eq!(both, expected, "workers {workers} run {run}");
            let all_a: Vec<u32> = (0..1000).chain(1500..1600).collect();
            assert_eq!(same, all_a, "workers {workers} run {run}: a ∩ a");
        }
    }
}

/// Elements that are never in the other side leave no parked task: the
/// session ends normally with an empty intersection.
#[test]
fn intersection_of_disjoint_sets_is_empty_without_a_deadlock_report() {
    for workers in WORKERS {
        let pool = pool(workers);
        for run in 0..RUNS {
            let r = pool.run_par_then_freeze(|p| {
                Box::pin(async move {
                    let (a, b): (ISet<u32>, ISet<u32>) = (ISet::new(p), ISet::new(p));
                    let handlers = HandlerPool::new(p);
                    let both = intersection(p, &handlers, &a, &b).unwrap();
                    fill(p, &a, 0..300, 2);
                    fill(p, &b, 300..600, 2);
                    both.then_freeze()
                })
            });
            assert_eq!(r, Ok(vec![]), "workers {workers} run {run}");
        }
    }
}

/// The contrast that gives the previous test its teeth: the naive
/// intersection (a handler on `a` awaiting `b.wait_contains(x)`) parks a
/// task per element missing from `b`, and the session reports a deadlock.
#[test]
fn the_naive_waiting_intersection_would_be_reported_as_a_deadlock() {
    for workers in WORKERS {
        let pool = pool(workers);
        let r = pool.run_par_then_freeze(|p| {
            Box::pin(async move {
                let (a, b): (ISet<u32>, ISet<u32>) = (ISet::new(p), ISet::new(p));
                let out: ISet<u32> = ISet::new(p);
                let handlers = HandlerPool::new(p);
                let (b2, o) = (b, out);
                handlers
                    .add_handler(&a, move |x| {
                        let (b2, o) = (b2, o);
                        async move {
                            b2.wait_contains(x).await;
                            o.insert(x).unwrap();
                        }
                    })
                    .unwrap();
                a.insert(1).unwrap();
                b.insert(2).unwrap();
                out.then_freeze()
            })
        });
        assert!(matches!(r, Err(Error::Deadlock { .. })), "workers {workers}: {r:?}");
    }
}

/// Map and filter of a set filled concurrently, before and after creation.
#[test]
fn map_and_filter_follow_concurrent_sources() {
    let mut squares_mod: Vec<u32> = (0..1000u32).map(|x| x * x % 997).collect();
    squares_mod.sort_unstable();
    squares_mod.dedup();
    let multiples_of_3: Vec<u32> = (0..1000).filter(|x| x % 3 == 0).collect();
    for workers in WORKERS {
        let pool = pool(workers);
        for run in 0..RUNS {
            let (m, f) = pool
                .run_par_then_freeze(|p| {
                    Box::pin(async move {
                        let a: ISet<u32> = ISet::new(p);
                        fill(p, &a, 0..400, 2);
                        let handlers = HandlerPool::new(p);
                        // Non-injective on purpose: collisions must collapse.
                        let m = map(p, &handlers, &a, |x| x * x % 997).unwrap();
                        let f = filter(p, &handlers, &a, |x| x % 3 == 0).unwrap();
                        fill(p, &a, 400..1000, 3);
                        (m, f).then_freeze()
                    })
                })
                .unwrap();
            assert_eq!(m, squares_mod, "workers {workers} run {run}: map");
            assert_eq!(f, multiples_of_3, "workers {workers} run {run}: filter");
        }
    }
}

/// Derivations compose: a map of a union and a filter of an intersection,
/// with a change of element type along the way.
#[test]
fn chained_derivations_compose() {
    let expected_map: Vec<u64> = (0..800u64).map(|x| 10 * x).collect();
    let expected_chain: Vec<u32> = (300..500).filter(|x| x % 2 == 1).collect();
    for workers in WORKERS {
        let pool = pool(workers);
        for run in 0..RUNS {
            let (m, c) = pool
                .run_par_then_freeze(|p| {
                    Box::pin(async move {
                        let (a, b): (ISet<u32>, ISet<u32>) = (ISet::new(p), ISet::new(p));
                        let handlers = HandlerPool::new(p);
                        let u = union(p, &handlers, &a, &b).unwrap();
                        let m = map(p, &handlers, &u, |x| 10 * u64::from(x)).unwrap();
                        let i = intersection(p, &handlers, &a, &b).unwrap();
                        let c = filter(p, &handlers, &i, |x| x % 2 == 1).unwrap();
                        fill(p, &a, 0..500, 3);
                        fill(p, &b, 300..800, 3);
                        (m, c).then_freeze()
                    })
                })
                .unwrap();
            assert_eq!(m, expected_map, "workers {workers} run {run}: map of union");
            assert_eq!(c, expected_chain, "workers {workers} run {run}: filter of intersection");
        }
    }
}

/// A deterministic session can block on a derived set (threshold reads
/// work on it like on any set) and get woken by the derivation.
#[test]
fn threshold_reads_on_derived_sets_resume() {
    for workers in WORKERS {
        let pool = pool(workers);
        for run in 0..RUNS {
            let r = pool.run_par(|p| {
                Box::pin(async move {
                    let (a, b): (ISet<u32>, ISet<u32>) = (ISet::new(p), ISet::new(p));
                    let handlers = HandlerPool::new(p);
                    let i = intersection(p, &handlers, &a, &b).unwrap();
                    let m = map(p, &handlers, &i, |x| x + 1).unwrap();
                    let waiter = {
                        p.fork(async move {
                            m.wait_contains(43).await;
                            m.wait_size(2).await;
                            "woken"
                        })
                    };
                    lvars::yield_now().await; // let the waiter park first
                    fill(p, &a, 0..100, 2);
                    fill(p, &b, 42..43, 1);
                    fill(p, &b, 7..8, 1);
                    waiter.await
                })
            });
            assert_eq!(r, Ok("woken"), "workers {workers} run {run}");
        }
    }
}

/// Quasi-deterministic use: join the writers, quiesce the derivations'
/// pool, freeze the derived sets: exact contents every run.
#[test]
fn quiesce_then_freeze_in_a_quasi_deterministic_session() {
    let expected_u: Vec<u32> = (0..900).collect();
    let expected_m: Vec<u32> = (300..600)
        .map(|x| x / 2)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for workers in WORKERS {
        let pool = pool(workers);
        for run in 0..RUNS {
            let r = pool.run_par_quasi_det(|p| {
                Box::pin(async move {
                    let (a, b): (ISet<u32>, ISet<u32>) = (ISet::new(p), ISet::new(p));
                    let handlers = HandlerPool::new(p);
                    let u = union(p, &handlers, &a, &b).unwrap();
                    let i = intersection(p, &handlers, &a, &b).unwrap();
                    let m = map(p, &handlers, &i, |x| x / 2).unwrap();
                    let writers = [
                        { p.fork(async move { (0..600).for_each(|x| a.insert(x).unwrap()) }) },
                        { p.fork(async move { (300..900).for_each(|x| b.insert(x).unwrap()) }) },
                    ];
                    for w in writers {
                        w.await;
                    }
                    handlers.quiesce().await;
                    (u.freeze(&p), m.freeze(&p))
                })
            });
            let (u, m) = r.unwrap_or_else(|e| panic!("workers {workers} run {run}: {e:?}"));
            assert_eq!(u, expected_u, "workers {workers} run {run}: union");
            assert_eq!(m, expected_m, "workers {workers} run {run}: map of intersection");
        }
    }
}

/// A derived set frozen too early: a later source element that would change
/// it fails the session with `PutAfterFreeze`, while an element it already
/// holds does not.
#[test]
fn a_frozen_derived_set_rejects_new_elements_from_its_sources() {
    let pool = pool(2);
    let ok = pool.run_par_quasi_det(|p| {
        Box::pin(async move {
            let a: ISet<u32> = ISet::new(p);
            let handlers = HandlerPool::new(p);
            let f = filter(p, &handlers, &a, |x| x % 2 == 0).unwrap();
            a.insert(2).unwrap();
            handlers.quiesce().await;
            let frozen = f.freeze(&p);
            a.insert(3).unwrap(); // filtered out: the frozen set is unaffected
            handlers.quiesce().await;
            frozen
        })
    });
    assert_eq!(ok, Ok(vec![2]));
    let err = pool.run_par_quasi_det(|p| {
        Box::pin(async move {
            let a: ISet<u32> = ISet::new(p);
            let handlers = HandlerPool::new(p);
            let f = filter(p, &handlers, &a, |x| x % 2 == 0).unwrap();
            a.insert(2).unwrap();
            handlers.quiesce().await;
            let _ = f.freeze(&p);
            a.insert(4).unwrap();
            handlers.quiesce().await;
        })
    });
    assert!(matches!(err, Err(Error::PutAfterFreeze { .. })), "{err:?}");
}

/// Concurrent adds and removes, removes of elements added later, removes of
/// elements never added: the same frozen value every run.
#[test]
fn add_remove_set_concurrent_adds_and_removes_freeze_the_same() {
    let added: Vec<u32> = (0..600).collect();
    let removed: Vec<u32> = (0..600).filter(|x| x % 3 == 0).chain(1000..1050).collect();
    let members: Vec<u32> = (0..600).filter(|x| x % 3 != 0).collect();
    for workers in WORKERS {
        let pool = pool(workers);
        for run in 0..RUNS {
            let got = pool
                .run_par_then_freeze(|p| {
                    Box::pin(async move {
                        let s: AddRemoveSet<u32> = AddRemoveSet::new(p);
                        // Removers start first: many removes precede their adds.
                        for t in 0..3u32 {
                            let s = s.clone();
                            p.fork(async move {
                                for x in (t * 3..600).step_by(9) {
                                    s.remove(x).unwrap();
                                }
                                for x in 1000 + t..1050 {
                                    s.remove(x).unwrap(); // never added; overlapping
                                }
                            });
                        }
                        for t in 0..3u32 {
                            let s = s.clone();
                            p.fork(async move {
                                for (i, x) in (t..600).step_by(3).enumerate() {
                                    s.add(x).unwrap();
                                    if i % 32 == 0 {
                                        lvars::yield_now().await;
                                    }
                                }
                            });
                        }
                        s.then_freeze()
                    })
                })
                .unwrap();
            assert_eq!(got.added, added, "workers {workers} run {run}: added");
            assert_eq!(got.removed, removed, "workers {workers} run {run}: removed");
            assert_eq!(got.members(), members, "workers {workers} run {run}: members");
        }
    }
}

/// A remove that comes strictly before the add (the add waits for it)
/// still removes; re-adding a removed element does not bring it back.
#[test]
fn add_remove_set_remove_before_add_still_removes() {
    for workers in WORKERS {
        let pool = pool(workers);
        for run in 0..RUNS {
            let got = pool
                .run_par_then_freeze(|p| {
                    Box::pin(async move {
                        let s: AddRemoveSet<&str> = AddRemoveSet::new(p);
                        let w = s.clone();
                        p.fork(async move {
                            w.wait_removed("ghost").await;
                            w.add("ghost").unwrap();
                            w.add("kept").unwrap();
                        });
                        s.remove("ghost").unwrap();
                        s.add("twice").unwrap();
                        s.remove("twice").unwrap();
                        s.add("twice").unwrap();
                        s.then_freeze()
                    })
                })
                .unwrap();
            assert_eq!(
                got,
                FrozenAddRemove {
                    added: vec!["ghost", "kept", "twice"],
                    removed: vec!["ghost", "twice"],
                },
                "workers {workers} run {run}"
            );
            assert_eq!(got.members(), vec!["kept"]);
            assert!(got.is_member(&"kept") && !got.is_member(&"ghost") && !got.is_member(&"absent"));
        }
    }
}

/// Threshold waits on both sides resume, in a ping-pong where each step is
/// only taken after the previous one was observed.
#[test]
fn add_remove_set_threshold_waits_resume() {
    for workers in WORKERS {
        let pool = pool(workers);
        for run in 0..RUNS {
            let r = pool.run_par_quasi_det(|p| {
                Box::pin(async move {
                    let s: AddRemoveSet<u32> = AddRemoveSet::new(p);
                    let mut steps = Vec::new();
                    for x in 0..20u32 {
                        let s = s.clone();
                        steps.push(p.fork(async move {
                            s.wait_added(x).await;
                            s.remove(x).unwrap();
                            s.add(x + 1).unwrap();
                        }));
                    }
                    let waiter = {
                        let s = s.clone();
                        p.fork(async move {
                            s.wait_removed(19).await;
                            s.wait_added(20).await;
                        })
                    };
                    lvars::yield_now().await;
                    s.add(0).unwrap();
                    waiter.await;
                    for step in steps {
                        step.await;
                    }
                    s.freeze(&p)
                })
            });
            let f = r.unwrap_or_else(|e| panic!("workers {workers} run {run}: {e:?}"));
            assert_eq!(f.added, (0..=20).collect::<Vec<_>>());
            assert_eq!(f.removed, (0..20).collect::<Vec<_>>());
            assert_eq!(f.members(), vec![20]);
        }
    }
}
