//! IStructure: a wavefront dynamic program gives the right answer on any
//! number of workers, errors are typed, slots park independently, freeze.

use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::Poll;

use lvars::data::RawIStructure;
use lvars::{Error, Freeze, IStructure, ThreadPool};

mod common;
use common::{poll_with, pool, CountingWaker};

const POOLS: [usize; 3] = [1, 2, 8];

// ---------------------------------------------------------------------------
// Wavefront: longest common subsequence.

/// The sequential LCS table, row-major, `(a.len() + 1) x (b.len() + 1)`.
fn lcs_table(a: &[u8], b: &[u8]) -> Vec<u32> {
    let w = b.len() + 1;
    let mut t = vec![0u32; (a.len() + 1) * w];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            t[i * w + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    t
}

/// The same table as an IStructure: one task per cell, forked in reverse
/// order (so most tasks park on their neighbours before they are filled),
/// each waiting for the cells above, left and diagonally above-left.
fn lcs_parallel(pool: &ThreadPool, a: &'static [u8], b: &'static [u8]) -> Vec<Option<u32>> {
    pool.run_par_then_freeze(move |p| {
        Box::pin(async move {
            let w = b.len() + 1;
            let t: IStructure<u32> = IStructure::new(p, (a.len() + 1) * w);
            assert_eq!(t.len(), (a.len() + 1) * w);
            for i in (0..=a.len()).rev() {
                for j in (0..=b.len()).rev() {
                    let t = t.clone();
                    p.fork(async move {
                        let v = if i == 0 || j == 0 {
                            0
                        } else if a[i - 1] == b[j - 1] {
                            *t.get((i - 1) * w + j - 1).unwrap().await + 1
                        } else {
                            let up = *t.get((i - 1) * w + j).unwrap().await;
                            let left = *t.get(i * w + j - 1).unwrap().await;
                            up.max(left)
                        };
                        t.put(i * w + j, v).unwrap();
                    });
                }
            }
            t.then_freeze()
        })
    })
    .unwrap()
}

#[test]
fn lcs_wavefront_gives_the_sequential_table_on_1_2_and_8_workers() {
    let cases: [(&'static [u8], &'static [u8], u32); 4] = [
        (b"AGGTAB", b"GXTXAYB", 4),
        (b"ABCBDAB", b"BDCABA", 4),
        (b"the quick brown fox", b"jumps over the lazy dog", 6),
        (b"", b"abc", 0),
    ];
    for n in POOLS {
        let pool = pool(n);
        for (a, b, len) in cases {
            let expected: Vec<Option<u32>> = lcs_table(a, b).into_iter().map(Some).collect();
            assert_eq!(*expected.last().unwrap(), Some(len), "the sequential oracle");
            for run in 0..5 {
                assert_eq!(
                    lcs_parallel(&pool, a, b),
                    expected,
                    "{n} worker(s), {:?} vs {:?}, run {run}",
                    std::str::from_utf8(a),
                    std::str::from_utf8(b)
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Errors.

#[test]
fn raw_puts_and_gets_give_typed_errors() {
    let a: RawIStructure<String> = RawIStructure::new(4);
    assert_eq!(a.len(), 4);
    assert!(!a.is_empty());
    a.put(2, "x".into()).unwrap();
    assert_eq!(a.put(2, "x".into()), Ok(()), "an equal second put is a no-op");
    assert_eq!(a.put(2, "y".into()), Err(Error::ConflictingPut { lvar: "IStructure" }));
    assert_eq!(a.put(4, "z".into()), Err(Error::OutOfRange { lvar: "IStructure" }));
    assert_eq!(
        a.put(usize::MAX, "z".into()),
        Err(Error::OutOfRange { lvar: "IStructure" })
    );
    assert!(matches!(a.get(4), Err(Error::OutOfRange { lvar: "IStructure" })));
    assert_eq!(a.try_get(4), Err(Error::OutOfRange { lvar: "IStructure" }));
    assert_eq!(a.try_get(2), Ok(Some(&"x".to_string())));
    assert_eq!(a.try_get(1), Ok(None));
    let empty: RawIStructure<u8> = RawIStructure::new(0);
    assert!(empty.is_empty());
    assert!(empty.get(0).is_err());
    assert_eq!(empty.freeze(), Vec::<Option<&u8>>::new());
    assert!(empty.is_frozen());
}

#[test]
fn a_conflicting_put_fails_the_session() {
    for n in POOLS {
        let pool = pool(n);
        for run in 0..5 {
            let r = pool.run_par(|p| {
                Box::pin(async move {
                    let a: IStructure<u8> = IStructure::new(p, 3);
                    for v in [1, 2, 1] {
                        let a = a.clone();
                        p.fork(async move {
                            let _ = a.put(1, v); // the loser's error fails the session
                        });
                    }
                })
            });
            assert_eq!(
                r,
                Err(Error::ConflictingPut { lvar: "IStructure" }),
                "{n} worker(s), run {run}"
            );
        }
    }
}

#[test]
fn an_out_of_range_put_fails_the_session_and_an_out_of_range_get_returns_at_once() {
    let pool = pool(2);
    let r = pool.run_par(|p| {
        Box::pin(async move {
            let a: IStructure<u8> = IStructure::new(p, 3);
            let _ = a.put(3, 1);
        })
    });
    assert_eq!(r, Err(Error::OutOfRange { lvar: "IStructure" }));
    // A get out of range does not hang and does not fail the session.
    let r = pool.run_par(|p| {
        Box::pin(async move {
            let a: IStructure<u8> = IStructure::new(p, 3);
            a.put(2, 9).unwrap();
            let out = a.get(3).err();
            (out, *a.get(2).unwrap().await)
        })
    });
    assert_eq!(r, Ok((Some(Error::OutOfRange { lvar: "IStructure" }), 9)));
}

/// A get of a slot nobody fills is reported as a deadlock, not a hang.
#[test]
fn a_get_of_a_slot_never_filled_is_a_deadlock() {
    let r = pool(2).run_par(|p| {
        Box::pin(async move {
            let a: IStructure<u8> = IStructure::new(p, 3);
            a.put(0, 1).unwrap();
            a.put(2, 1).unwrap();
            *a.get(1).unwrap().await
        })
    });
    assert!(matches!(r, Err(Error::Deadlock { .. })), "{r:?}");
}

// ---------------------------------------------------------------------------
// Independent slots.

/// Gets of different slots park on different lists: a put to slot 2 (or
/// to any other slot) never wakes a get of slot 3.
#[test]
fn gets_of_different_slots_park_independently() {
    let a: RawIStructure<u32> = RawIStructure::new(6);
    let (w2, w3, w3b) = (
        Arc::new(CountingWaker::default()),
        Arc::new(CountingWaker::default()),
        Arc::new(CountingWaker::default()),
    );
    let mut g2 = pin!(a.get(2).unwrap());
    let mut g3 = pin!(a.get(3).unwrap());
    let mut g3b = pin!(a.get(3).unwrap());
    assert!(poll_with(g2.as_mut(), &w2).is_pending());
    assert!(poll_with(g3.as_mut(), &w3).is_pending());
    assert!(poll_with(g3b.as_mut(), &w3b).is_pending());
    a.put(2, 20).unwrap();
    assert_eq!(w2.count(), 1, "the put to slot 2 wakes its get");
    assert_eq!(w3.count(), 0, "the put to slot 2 does not wake a get of slot 3");
    for i in [0, 1, 4, 5] {
        a.put(i, i as u32).unwrap();
    }
    a.put(2, 20).unwrap();
    assert_eq!(
        (w2.count(), w3.count(), w3b.count()),
        (1, 0, 0),
        "other slots wake nobody"
    );
    assert!(poll_with(g3.as_mut(), &w3).is_pending());
    assert_eq!(poll_with(g2.as_mut(), &w2), Poll::Ready(&20));
    a.put(3, 30).unwrap();
    assert_eq!((w3.count(), w3b.count()), (1, 1), "both gets of slot 3, once each");
    assert_eq!(poll_with(g3.as_mut(), &w3), Poll::Ready(&30));
    assert_eq!(poll_with(g3b.as_mut(), &w3b), Poll::Ready(&30));
    assert_eq!(w2.count(), 1, "nobody is woken twice");
}

// ---------------------------------------------------------------------------
// Freeze.

#[test]
fn raw_freeze_returns_the_slots_and_later_puts_behave_like_ivar_puts() {
    let a: RawIStructure<u32> = RawIStructure::new(4);
    a.put(0, 5).unwrap();
    a.put(3, 7).unwrap();
    assert!(!a.is_frozen());
    assert_eq!(a.freeze(), vec![Some(&5), None, None, Some(&7)]);
    assert!(a.is_frozen());
    assert_eq!(a.put(1, 1), Err(Error::PutAfterFreeze { lvar: "IStructure" }));
    assert_eq!(a.put(0, 5), Ok(()), "an equal put changes nothing");
    assert_eq!(a.put(0, 6), Err(Error::ConflictingPut { lvar: "IStructure" }));
    assert_eq!(a.put(4, 6), Err(Error::OutOfRange { lvar: "IStructure" }));
    assert_eq!(a.freeze(), vec![Some(&5), None, None, Some(&7)], "freezing twice");
}

#[test]
fn session_freeze_and_put_after_freeze() {
    let pool = pool(2);
    let r = pool.run_par_quasi_det(|p| {
        Box::pin(async move {
            let a: IStructure<u32> = IStructure::new(p, 3);
            a.put(1, 4).unwrap();
            let frozen: Vec<Option<u32>> = a.freeze(&p).into_iter().map(|v| v.copied()).collect();
            a.put(1, 4).unwrap();
            frozen
        })
    });
    assert_eq!(r, Ok(vec![None, Some(4), None]));
    let r = pool.run_par_quasi_det(|p| {
        Box::pin(async move {
            let a: IStructure<u32> = IStructure::new(p, 3);
            let _ = a.freeze(&p);
            let _ = a.put(0, 4);
        })
    });
    assert_eq!(r, Err(Error::PutAfterFreeze { lvar: "IStructure" }));
}

/// OS threads fill slots while the main thread freezes: every put that
/// returned `Ok` is in the frozen vector, every other one failed with
/// `PutAfterFreeze`. Each thread keeps its last slot until it has seen the
/// freeze finish, so some puts fail in every round whatever the timing;
/// the others race the freeze.
#[test]
fn a_freeze_racing_puts_keeps_exactly_the_ok_puts() {
    const LEN: usize = 1024;
    const THREADS: usize = 4;
    let mut raced = 0;
    // Forty rounds, and more (up to 400) until one has raced: a loaded
    // machine may let every thread finish before the freeze for a while.
    for round in 0..400 {
        if round >= 40 && raced > 0 {
            break;
        }
        let a: Arc<RawIStructure<usize>> = Arc::new(RawIStructure::new(LEN));
        let started = Arc::new(AtomicUsize::new(0));
        let putters: Vec<_> = (0..THREADS)
            .map(|t| {
                let (a, started) = (Arc::clone(&a), Arc::clone(&started));
                std::thread::spawn(move || {
                    started.fetch_add(1, SeqCst);
                    let mine: Vec<usize> = (t..LEN).step_by(THREADS).collect();
                    let (last, racing) = mine.split_last().unwrap();
                    let mut results: Vec<(usize, Result<(), Error>)> =
                        racing.iter().map(|&i| (i, a.put(i, i * 10))).collect();
                    while !a.is_frozen() {
                        std::hint::spin_loop();
                    }
                    let after = a.put(*last, *last * 10);
                    assert_eq!(after, Err(Error::PutAfterFreeze { lvar: "IStructure" }));
                    results.push((*last, after));
                    results
                })
            })
            .collect();
        while started.load(SeqCst) < THREADS {
            std::hint::spin_loop();
        }
        let frozen: Vec<Option<usize>> = a.freeze().into_iter().map(|v| v.copied()).collect();
        let mut failures = 0;
        for p in putters {
            for (i, r) in p.join().unwrap() {
                if let Err(e) = &r {
                    assert_eq!(*e, Error::PutAfterFreeze { lvar: "IStructure" });
                }
                assert_eq!(frozen[i], r.is_ok().then_some(i * 10), "round {round}, slot {i}");
                failures += usize::from(r.is_err());
            }
        }
        raced += usize::from(failures > THREADS);
    }
    assert!(
        raced > 0,
        "no put ever lost the race with the freeze: nothing was tested"
    );
}
