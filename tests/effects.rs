//! Effect signatures at run time: restricted handles are views of the same
//! variable, narrowed session handles still fork and create variables, and
//! the I/O runner grants every effect. (What must *not* compile is in the
//! `compile_fail` doctests of `lvars::effects`.)

mod common;

use lvars::effects::{BumpOnly, HasBump, HasGet, HasPut, ReadOnly, WriteOnly};
use lvars::{derived, Counter, Freeze, HandlerPool, ISet, IVar, Par};

/// Only reads `a` and only writes `b`; the signature is the whole proof.
async fn copy_plus_one<'s, R: HasGet, W: HasPut>(a: IVar<'s, u64, R>, b: IVar<'s, u64, W>) {
    let v = *a.get().await;
    b.put(v + 1).unwrap();
}

/// Forks through a narrowed session handle.
fn fork_bumps<'s, E: HasGet>(p: Par<'s, E>, c: Counter<'s, BumpOnly>, n: u64) {
    for _ in 0..n {
        let c = c.clone();
        p.fork(async move { c.bump(1).unwrap() });
    }
}

fn count_to<'s, E: HasBump>(c: &Counter<'s, E>, n: u64) {
    for _ in 0..n {
        c.bump(1).unwrap();
    }
}

#[test]
fn restricted_handles_share_the_variable() {
    let pool = common::pool(2);
    for _ in 0..50 {
        let got = pool
            .run_par(|p| {
                Box::pin(async move {
                    let (a, b, c) = (IVar::new(p), IVar::new(p), IVar::new(p));
                    p.fork(copy_plus_one(a.restrict::<ReadOnly>(), b.restrict::<WriteOnly>()));
                    p.fork(copy_plus_one(b.restrict::<ReadOnly>(), c.restrict::<WriteOnly>()));
                    a.put(40).unwrap();
                    *c.get().await
                })
            })
            .unwrap();
        assert_eq!(got, 42);
    }
}

#[test]
fn a_narrowed_session_handle_forks_and_counts() {
    let pool = common::pool(2);
    let total = pool
        .run_par_then_freeze(|p| {
            Box::pin(async move {
                let c = Counter::new(p);
                fork_bumps(p.restrict::<ReadOnly>(), c.restrict(), 100);
                count_to(&c, 5);
                c.then_freeze()
            })
        })
        .unwrap();
    assert_eq!(total, 105);
}

#[test]
fn derived_sets_accept_read_only_sources() {
    let pool = common::pool(2);
    let evens = pool
        .run_par_then_freeze(|p| {
            Box::pin(async move {
                let a: ISet<u32> = ISet::new(p);
                let handlers = HandlerPool::new(p);
                let even = derived::filter(p, &handlers, &a.restrict::<ReadOnly>(), |x| x % 2 == 0).unwrap();
                for x in 0..10 {
                    let w = a.restrict::<WriteOnly>();
                    p.fork(async move { w.insert(x).unwrap() });
                }
                even.then_freeze()
            })
        })
        .unwrap();
    assert_eq!(evens, vec![0, 2, 4, 6, 8]);
}

#[test]
fn the_io_runner_grants_io_and_freeze() {
    let pool = common::pool(2);
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let r = pool.run_par_io(|p| {
        let log = std::sync::Arc::clone(&log);
        Box::pin(async move {
            let iv = IVar::new(p);
            iv.put(9u8).unwrap();
            p.io(|| log.lock().unwrap().push("wrote 9"));
            iv.freeze(&p).copied()
        })
    });
    assert_eq!(r, Ok(Some(9)));
    assert_eq!(*log.lock().unwrap(), vec!["wrote 9"]);
}

#[test]
fn a_quasi_det_session_freezes_through_its_handle_only() {
    let pool = common::pool(1);
    let r = pool.run_par_quasi_det(|p| {
        Box::pin(async move {
            // Variables made in a quasi-deterministic session are ordinary
            // (`Det`) handles: freezing needs the session handle.
            let s: ISet<u8> = ISet::new(p);
            s.insert(3).unwrap();
            s.insert(1).unwrap();
            s.freeze(&p)
        })
    });
    assert_eq!(r, Ok(vec![1, 3]));
}
