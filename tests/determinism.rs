//! Determinism: the same program, run many times on pools of 1, 2 and 8
//! workers, gives exactly one result (or exactly one error).

use std::collections::BTreeSet;
use std::fmt::Debug;

use lvars::lattice::{Flat, MapUnion, Max, SetUnion};
use lvars::lvar::ThresholdSet;
use lvars::{Error, Freeze, IVar, JoinHandle, LVar, MaxCounter, Par, ParFuture, ThreadPool, ThreadPoolBuilder};

const RUNS: usize = 200;
const WORKERS: [usize; 3] = [1, 2, 8];

/// Runs `program` `RUNS` times on each pool size (one pool per size, reused)
/// and asserts that every run on every pool gave `expected`.
fn assert_deterministic<T: PartialEq + Debug>(expected: T, program: impl Fn(&ThreadPool) -> T) {
    for n in WORKERS {
        let pool = ThreadPoolBuilder::new().num_threads(n).build().unwrap();
        // `Error` is not `Ord`, so distinct results are kept in a Vec.
        let mut distinct: Vec<(T, usize)> = Vec::new();
        for _ in 0..RUNS {
            let r = program(&pool);
            match distinct.iter_mut().find(|(d, _)| *d == r) {
                Some((_, count)) => *count += 1,
                None => distinct.push((r, 1)),
            }
        }
        assert_eq!(
            distinct.len(),
            1,
            "{n} worker(s): {} distinct (result, count) over {RUNS} runs: {distinct:?}",
            distinct.len()
        );
        assert_eq!(distinct[0].0, expected, "{n} worker(s)");
    }
}

/// (a) A set built by many forked (and nested-forked) tasks, frozen after
/// the barrier. Several tasks insert the same elements.
#[test]
fn set_built_by_forked_tasks_frozen_after_join() {
    let expected: Vec<u32> = {
        let mut s: BTreeSet<u32> = BTreeSet::new();
        for i in 0..64u32 {
            s.insert(i * i % 97);
            for j in 0..4 {
                s.insert(1000 + (i * 7 + j) % 50);
            }
        }
        s.into_iter().collect()
    };
    assert_deterministic(Ok(expected), |pool| {
        pool.run_par_then_freeze(|p| {
            Box::pin(async move {
                let set: LVar<SetUnion<u32>> = LVar::new(p);
                for i in 0..64u32 {
                    let set = set.clone();
                    p.fork(async move {
                        set.put(SetUnion::singleton(i * i % 97)).unwrap();
                        for j in 0..4 {
                            let set = set.clone();
                            // Nested forks, most never awaited.
                            p.fork(async move { set.put(SetUnion::singleton(1000 + (i * 7 + j) % 50)).unwrap() });
                        }
                    });
                }
                set.then_freeze()
            })
        })
        .map(|s| s.into_iter().collect::<Vec<u32>>())
    });
}

/// (b) A pipeline of IVars: task `i` waits for IVar `i` and puts into IVar
/// `i + 1`. Tasks are forked last-stage first so that most of them park.
#[test]
fn ivar_pipeline() {
    const STAGES: usize = 50;
    let step = |v: u64, i: usize| v.wrapping_mul(31).wrapping_add(i as u64) % 1_000_003;
    let expected: Vec<Option<u64>> = {
        let mut v = 1u64;
        let mut out = vec![Some(v)];
        for i in 0..STAGES {
            v = step(v, i);
            out.push(Some(v));
        }
        out
    };
    let last_expected = expected[STAGES].unwrap();
    assert_deterministic(Ok(expected), |pool| {
        pool.run_par_then_freeze(|p| {
            Box::pin(async move {
                let ivars: Vec<IVar<u64>> = (0..=STAGES).map(|_| IVar::new(p)).collect();
                for i in (0..STAGES).rev() {
                    let (from, to) = (ivars[i].clone(), ivars[i + 1].clone());
                    p.fork(async move {
                        let v = *from.get().await;
                        to.put(step(v, i)).unwrap();
                    });
                }
                ivars[0].put(1).unwrap();
                // The root also waits for the end of the pipeline.
                assert_eq!(*ivars[STAGES].get().await, last_expected);
                ivars.then_freeze()
            })
        })
    });
}

/// (c) A MaxCounter relay: task `k` waits until the counter is at least
/// `k` and raises it to `k + 1`; more tasks wait on thresholds and record
/// what they saw in a set. Result: the frozen counter and set.
#[test]
fn max_counter_relay() {
    const N: u64 = 60;
    let expected = (N, (0..=N).step_by(5).collect::<Vec<u64>>());
    assert_deterministic(Ok(expected), |pool| {
        pool.run_par_then_freeze(|p| {
            Box::pin(async move {
                let counter = MaxCounter::new(p);
                let seen: LVar<SetUnion<u64>> = LVar::new(p);
                for k in (0..=N).step_by(5) {
                    let (counter, seen) = (counter.clone(), seen.clone());
                    p.fork(async move {
                        counter.wait_at_least(k).await;
                        seen.put(SetUnion::singleton(k)).unwrap();
                    });
                }
                for k in (0..N).rev() {
                    let counter = counter.clone();
                    p.fork(async move {
                        counter.wait_at_least(k).await;
                        counter.put(k + 1).unwrap();
                    });
                }
                (counter, seen).then_freeze()
            })
        })
        .map(|(c, s)| (c, s.into_iter().collect::<Vec<u64>>()))
    });
}

/// (d) Programs that fail with a conflicting put: the error is the same in
/// every run, whichever put loses the race, and it does not leak which one.
#[test]
fn conflicting_put_is_the_same_error_every_run() {
    // Many tasks put one of two values into an IVar.
    assert_deterministic(Err::<(), _>(Error::ConflictingPut { lvar: "IVar" }), |pool| {
        pool.run_par(|p| {
            Box::pin(async move {
                let iv: IVar<u32> = IVar::new(p);
                for i in 0..32u32 {
                    let iv = iv.clone();
                    // Not unwrapped: the losing put's error fails the session.
                    p.fork(async move {
                        let _ = iv.put(i % 2);
                    });
                }
            })
        })
    });
}

#[test]
fn conflicting_map_entries_are_the_same_error_every_run() {
    // Conflicting values for one key of a map of flat values, discovered by
    // tasks deep in a pipeline while other tasks wait on the map.
    assert_deterministic(Err(Error::ConflictingPut { lvar: "LVar" }), |pool| {
        pool.run_par(|p| {
            Box::pin(async move {
                let map: LVar<MapUnion<u32, Flat<u32>>> = LVar::new(p);
                let waiter = {
                    let map = map.clone();
                    // Never satisfied: key 99 is never written.
                    p.fork(async move { map.get_at_least(MapUnion::singleton(99, Flat::Value(0))).unwrap().await })
                };
                for i in 0..16u32 {
                    let map = map.clone();
                    p.fork(async move {
                        lvars::yield_now().await;
                        let _ = map.put(MapUnion::singleton(i % 4, Flat::Value(i)));
                    });
                }
                waiter.await.len()
            })
        })
    });
}

/// One node of a task tree: puts its id, forks two children, awaits the
/// first (which usually runs inline, on the parent's stack), forks more
/// work afterwards and never awaits the rest. Every put must be in the
/// frozen set: the barrier waits for every task, however it was forked.
fn task_tree<'s>(p: Par<'s>, set: LVar<'s, SetUnion<u32>>, id: u32, depth: u32) -> JoinHandle<u32> {
    let fut: ParFuture<'s, u32> = Box::pin(async move {
        set.put(SetUnion::singleton(id)).unwrap();
        if depth == 0 {
            return 1;
        }
        let first = task_tree(p, set.clone(), id * 3 + 1, depth - 1);
        let _second = task_tree(p, set.clone(), id * 3 + 2, depth - 1);
        let below = first.await;
        let s = set.clone();
        p.fork(async move {
            lvars::yield_now().await;
            s.put(SetUnion::singleton(1_000_000 + id)).unwrap();
        });
        let _third = task_tree(p, set.clone(), id * 3 + 3, depth - 1);
        below + 1
    });
    p.fork(fut)
}

/// (e) Forks before and after awaiting children, most handles dropped.
#[test]
fn task_tree_with_forks_after_awaits() {
    const DEPTH: u32 = 4;
    // Node ids: 1 + 3 + ... + 3^DEPTH nodes; inner nodes also put 1_000_000 + id.
    let mut expected = BTreeSet::new();
    let mut level = vec![0u32];
    for d in 0..=DEPTH {
        let mut next = Vec::new();
        for &id in &level {
            expected.insert(id);
            if d < DEPTH {
                expected.insert(1_000_000 + id);
                next.extend([id * 3 + 1, id * 3 + 2, id * 3 + 3]);
            }
        }
        level = next;
    }
    assert_eq!(expected.len(), 121 + 40);
    let expected: Vec<u32> = expected.into_iter().collect();
    assert_deterministic(Ok(expected), |pool| {
        pool.run_par_then_freeze(|p| {
            Box::pin(async move {
                let set: LVar<SetUnion<u32>> = LVar::new(p);
                task_tree(p, set.clone(), 0, DEPTH);
                set.then_freeze()
            })
        })
        .map(|s| s.into_iter().collect::<Vec<u32>>())
    });
}

/// (f) A get with a threshold set of several incompatible elements returns
/// the same element in every run, and a get never returns the exact state,
/// which keeps changing (late extra information, racing puts).
#[test]
fn threshold_set_get_returns_the_same_element() {
    type Vote = (Flat<&'static str>, Max<u32>);
    let expected: (Vote, Vote) = ((Flat::Value("two"), Max::default()), (Flat::Bottom, Max::new(15)));
    assert_deterministic(Ok(expected), |pool| {
        pool.run_par(|p| {
            Box::pin(async move {
                // (which of "one" / "two" / "three" was chosen, the best score so far)
                let lv: LVar<Vote> = LVar::new(p);
                let choice = {
                    let lv = lv.clone();
                    let names = ["one", "two", "three"].map(|n| (Flat::Value(n), Max::default()));
                    p.fork(async move { lv.get(ThresholdSet::new(names.into()).unwrap()).await })
                };
                let score = {
                    let lv = lv.clone();
                    p.fork(async move { lv.get_at_least((Flat::Bottom, Max::new(15))).unwrap().await })
                };
                for s in 0..20u32 {
                    let lv = lv.clone();
                    p.fork(async move {
                        lv.put((Flat::Bottom, Max::new(s))).unwrap();
                        if s == 7 {
                            lv.put((Flat::Value("two"), Max::new(0))).unwrap();
                        }
                    });
                }
                (choice.await, score.await)
            })
        })
    });
}
