//! The grow-only map: `lvars::data::RawIMap` (one cell per key under
//! racing `get_or_init`, threshold reads, freeze, no leaks) and the session
//! handles `IMap` (lattice values) and `IMapOfSets`.
//! (Listener delivery is tested inside the crate: the hook is private.)

use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use lvars::data::{RawIMap, RawISet};
use lvars::lattice::{Flat, Max, SetUnion};
use lvars::lvar::RawLVar;
use lvars::{Error, Freeze, IMap, IMapOfSets, ThreadPool, ThreadPoolBuilder};

const RUNS: usize = 50;

fn pools() -> Vec<ThreadPool> {
    [1, 2, 8]
        .into_iter()
        .map(|n| ThreadPoolBuilder::new().num_threads(n).build().unwrap())
        .collect()
}

/// Counts wake-ups (for polling by hand).
struct CountWake(AtomicUsize);
impl Wake for CountWake {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn counting_waker() -> (Arc<CountWake>, Waker) {
    let c = Arc::new(CountWake(AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

fn poll_once<F: Future>(f: std::pin::Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(waker))
}

#[test]
fn shopping_cart_gives_one_result_on_every_pool() {
    for pool in pools() {
        for _ in 0..RUNS {
            let cart = pool
                .run_par_then_freeze(|p| {
                    Box::pin(async move {
                        let cart: IMap<&str, Max<u32>> = IMap::new(p);
                        let (c1, c2) = (cart.clone(), cart.clone());
                        p.fork(async move { c1.insert("Book", Max::new(1)).unwrap() });
                        p.fork(async move { c2.insert("Shoes", Max::new(1)).unwrap() });
                        cart.then_freeze()
                    })
                })
                .unwrap();
            assert_eq!(cart, BTreeMap::from([("Book", Max::new(1)), ("Shoes", Max::new(1))]));
        }
    }
}

#[test]
fn concurrent_max_inserts_to_same_and_different_keys_join() {
    let expected: BTreeMap<u32, Max<u32>> = (0..8).map(|k| (k, Max::new(k * 100 + 99))).collect();
    for pool in pools() {
        for _ in 0..RUNS {
            let m = pool
                .run_par_then_freeze(|p| {
                    Box::pin(async move {
                        let m: IMap<u32, Max<u32>> = IMap::new(p);
                        for t in 0..4u32 {
                            let m = m.clone();
                            p.fork(async move {
                                // Every task writes every key; task order varies.
                                for k in 0..8 {
                                    for v in (t * 25)..(t * 25 + 25) {
                                        m.insert(k, Max::new(k * 100 + v)).unwrap();
                                    }
                                }
                            });
                        }
                        m.then_freeze()
                    })
                })
                .unwrap();
            assert_eq!(m, expected);
        }
    }
}

#[test]
fn conflicting_flat_values_fail_every_run() {
    for pool in pools() {
        for _ in 0..RUNS {
            let r = pool.run_par_then_freeze(|p| {
                Box::pin(async move {
                    let m: IMap<u32, Flat<u32>> = IMap::new(p);
                    let (a, b, c) = (m.clone(), m.clone(), m.clone());
                    p.fork(async move {
                        let _ = a.insert(7, Flat::Value(1));
                    });
                    p.fork(async move {
                        let _ = b.insert(7, Flat::Value(2));
                    });
                    p.fork(async move {
                        let _ = c.insert(8, Flat::Value(3));
                    });
                    m.then_freeze()
                })
            });
            assert!(matches!(r, Err(Error::ConflictingPut { .. })), "got {r:?}");
        }
    }
}

#[test]
fn equal_flat_values_are_fine() {
    for pool in pools() {
        let r = pool.run_par_then_freeze(|p| {
            Box::pin(async move {
                let m: IMap<u32, Flat<u32>> = IMap::new(p);
                for _ in 0..4 {
                    let m = m.clone();
                    p.fork(async move { m.insert(7, Flat::Value(1)).unwrap() });
                }
                m.then_freeze()
            })
        });
        assert_eq!(r, Ok(BTreeMap::from([(7, Flat::Value(1))])));
    }
}

#[test]
fn wait_key_parks_until_its_key_and_only_its_key_arrives() {
    let m: RawIMap<u32, RawLVar<Max<u32>>> = RawIMap::new();
    let (count, waker) = counting_waker();
    let mut f = pin!(m.wait_key(5));
    assert!(poll_once(f.as_mut(), &waker).is_pending());
    for k in [1, 2, 3, 4, 6, 21, 37] {
        m.insert(k, Max::new(k)).unwrap();
    }
    assert!(poll_once(f.as_mut(), &waker).is_pending(), "resolved for another key");
    m.insert(5, Max::new(50)).unwrap();
    assert!(count.0.load(SeqCst) >= 1, "not woken by its key");
    let cell = match poll_once(f.as_mut(), &waker) {
        Poll::Ready(c) => c,
        Poll::Pending => panic!("woken but not ready"),
    };
    assert!(std::ptr::eq(cell, m.get(&5).unwrap()), "resolved to another cell");
    // A key present from the start resolves on the first poll.
    assert!(poll_once(pin!(m.wait_key(3)), &waker).is_ready());
}

#[test]
fn wait_key_at_least_needs_the_join_of_two_puts() {
    let m: RawIMap<u32, RawLVar<SetUnion<u32>>> = RawIMap::new();
    let (count, waker) = counting_waker();
    let want: SetUnion<u32> = [1, 2].into_iter().collect();
    let mut f = pin!(m.wait_key_at_least(9, want.clone()).unwrap());
    assert!(poll_once(f.as_mut(), &waker).is_pending());
    m.insert(9, SetUnion::singleton(1)).unwrap();
    assert!(
        poll_once(f.as_mut(), &waker).is_pending(),
        "resolved below its threshold"
    );
    let before = count.0.load(SeqCst);
    m.insert(9, SetUnion::singleton(2)).unwrap();
    assert!(count.0.load(SeqCst) > before, "the joining put did not wake the waiter");
    assert_eq!(poll_once(f.as_mut(), &waker), Poll::Ready(want));
}

#[test]
fn wait_key_at_least_in_sessions_resolves_to_the_threshold() {
    for pool in pools() {
        for _ in 0..RUNS {
            let r = pool.run_par(|p| {
                Box::pin(async move {
                    let m: IMap<u32, Max<u32>> = IMap::new(p);
                    for v in [3, 8, 5] {
                        let m = m.clone();
                        p.fork(async move { m.insert(1, Max::new(v)).unwrap() });
                    }
                    m.wait_key_at_least(1, Max::new(7)).unwrap().await
                })
            });
            assert_eq!(r, Ok(Max::new(7)));
        }
    }
}

#[test]
fn wait_size_parks_until_enough_keys() {
    let m: RawIMap<u32, RawISet<u32>> = RawIMap::new();
    let (count, waker) = counting_waker();
    let mut f = pin!(m.wait_size(3));
    assert!(poll_once(f.as_mut(), &waker).is_pending());
    m.get_or_init(1).unwrap().insert(1).unwrap();
    m.get_or_init(1).unwrap().insert(2).unwrap();
    m.get_or_init(2).unwrap();
    assert!(poll_once(f.as_mut(), &waker).is_pending(), "counted values, not keys");
    m.get_or_init(3).unwrap();
    assert!(count.0.load(SeqCst) >= 1);
    assert!(poll_once(f.as_mut(), &waker).is_ready());
}

#[test]
fn map_of_sets_built_concurrently() {
    let expected: BTreeMap<u32, Vec<u32>> = (1..10).map(|k| (k, (0..k * 3).collect())).collect();
    for pool in pools() {
        for _ in 0..RUNS {
            let r = pool
                .run_par_then_freeze(|p| {
                    Box::pin(async move {
                        let g: IMapOfSets<u32, u32> = IMapOfSets::new(p);
                        for t in 0..3u32 {
                            let g = g.clone();
                            p.fork(async move {
                                for k in 0..10 {
                                    for x in (0..k * 3).rev().filter(|x| x % 3 == t) {
                                        g.insert(k, x).unwrap();
                                    }
                                }
                            });
                        }
                        // A threshold read inside the session.
                        g.wait_contains(9, 26).await;
                        g.wait_size(9).await;
                        g.then_freeze()
                    })
                })
                .unwrap();
            assert_eq!(r, expected);
        }
    }
}

#[test]
fn new_keys_after_freeze_fail_existing_keys_are_fine() {
    for pool in pools() {
        let r = pool.run_par_quasi_det(|p| {
            Box::pin(async move {
                let m: IMap<u32, Max<u32>> = IMap::new(p);
                m.insert(1, Max::new(5)).unwrap();
                let frozen = m.freeze(&p);
                // Existing key, no change: fine.
                m.insert(1, Max::new(3)).unwrap();
                m.insert(1, Max::new(5)).unwrap();
                let changed = m.insert(1, Max::new(9));
                let new_key = m.insert(2, Max::new(1));
                (frozen, changed, new_key)
            })
        });
        // The failing inserts fail the session too.
        assert!(matches!(r, Err(Error::PutAfterFreeze { .. })), "got {r:?}");
    }
    // The same, on the raw map (to see each error).
    let m: RawIMap<u32, RawLVar<Max<u32>>> = RawIMap::new();
    m.insert(1, Max::new(5)).unwrap();
    assert_eq!(m.freeze_sorted_with(RawLVar::freeze), vec![(1, Max::new(5))]);
    assert!(m.is_frozen());
    assert_eq!(m.insert(1, Max::new(4)), Ok(()));
    assert_eq!(m.insert(1, Max::new(9)), Err(Error::PutAfterFreeze { lvar: "LVar" }));
    assert_eq!(m.insert(2, Max::new(1)), Err(Error::PutAfterFreeze { lvar: "IMap" }));
    assert!(m.get_or_init(1).is_ok());
    assert_eq!(m.len(), 1);
}

#[test]
fn quasi_det_freeze_of_map_of_sets() {
    let r = lvars::run_par_quasi_det(|p| {
        Box::pin(async move {
            let g: IMapOfSets<u32, u32> = IMapOfSets::new(p);
            g.insert(2, 1).unwrap();
            g.insert(1, 3).unwrap();
            g.insert(1, 2).unwrap();
            let frozen = g.freeze(&p);
            g.insert(1, 2).unwrap(); // present: fine
            frozen
        })
    });
    assert_eq!(r, Ok(vec![(1, vec![2, 3]), (2, vec![1])]));
}

#[test]
fn get_or_init_races_resolve_to_one_cell() {
    const THREADS: usize = 8;
    for round in 0..20 {
        let m: RawIMap<u32, RawISet<u32>> = RawIMap::new();
        let barrier = Barrier::new(THREADS);
        let addrs: Vec<Vec<usize>> = thread::scope(|s| {
            let hs: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (m, barrier) = (&m, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        (0..64u32)
                            .map(|k| {
                                let cell = m.get_or_init(k).unwrap();
                                cell.insert(t as u32).unwrap();
                                cell as *const RawISet<u32> as usize
                            })
                            .collect()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for k in 0..64 {
            assert!(
                addrs.iter().all(|a| a[k] == addrs[0][k]),
                "round {round}: two cells for key {k}"
            );
            assert_eq!(m.get(&(k as u32)).map(|c| c as *const _ as usize), Some(addrs[0][k]));
        }
        assert_eq!(m.len(), 64);
        let all: Vec<u32> = (0..THREADS as u32).collect();
        assert!(m
            .freeze_sorted_with(RawISet::freeze_sorted)
            .into_iter()
            .all(|(_, s)| s == all));
    }
}

/// Sends every key to one of `buckets` hashes: equal full hashes (chains at
/// the last trie level) and long shared paths.
#[derive(Clone, Copy)]
struct FewHashes {
    buckets: u64,
}
struct FewHasher(u64, u64);
impl Hasher for FewHasher {
    fn finish(&self) -> u64 {
        (self.0 % self.1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.wrapping_mul(31).wrapping_add(u64::from(b));
        }
    }
}
impl BuildHasher for FewHashes {
    type Hasher = FewHasher;
    fn build_hasher(&self) -> FewHasher {
        FewHasher(0, self.buckets)
    }
}

#[test]
fn colliding_hashes_keep_every_key_once() {
    for buckets in [1, 3, 1000] {
        let m: RawIMap<u64, AtomicUsize, FewHashes> = RawIMap::with_hasher(FewHashes { buckets });
        thread::scope(|s| {
            for t in 0..4u64 {
                let m = &m;
                s.spawn(move || {
                    for i in 0..300u64 {
                        let k = (i * 7 + t * 11) % 300;
                        m.get_or_init(k).unwrap().fetch_add(1, SeqCst);
                    }
                });
            }
        });
        assert_eq!(m.len(), 300);
        let frozen = m.freeze_sorted_with(|c| c.load(SeqCst));
        assert_eq!(frozen.len(), 300);
        assert!(frozen.iter().enumerate().all(|(i, &(k, _))| k == i as u64));
        assert_eq!(
            frozen.iter().map(|&(_, n)| n).sum::<usize>(),
            1200,
            "an increment went to a lost cell"
        );
        assert!(m.get_or_init(300).is_err());
    }
}

/// Counts live values.
struct Counted(Arc<AtomicUsize>);
impl Counted {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, SeqCst);
        Counted(live.clone())
    }
}
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[test]
fn drop_frees_every_value_including_race_losers() {
    let live = Arc::new(AtomicUsize::new(0));
    {
        let m: RawIMap<u64, Counted, FewHashes> = RawIMap::with_hasher(FewHashes { buckets: 7 });
        thread::scope(|s| {
            for _ in 0..4 {
                let (m, live) = (&m, &live);
                s.spawn(move || {
                    for k in 0..200 {
                        m.get_or_init_with(k, || Counted::new(live)).unwrap();
                    }
                });
            }
        });
        assert_eq!(live.load(SeqCst), 200, "race losers must drop their cells");
        m.freeze();
    }
    assert_eq!(live.load(SeqCst), 0);
}
