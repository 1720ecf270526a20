//! The grow-only set (`lvars::data::RawISet`): exact membership and size
//! under racing inserts and resizes, threshold reads, freeze, and no leaks.
//! (Listener delivery is tested inside the crate: the hook is private.)

use std::collections::HashSet;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use lvars::data::RawISet;
use lvars::{Error, ThreadPoolBuilder};

mod common;
use common::block_on;

/// Counts wake-ups (for polling by hand).
struct CountWake(AtomicUsize);
impl Wake for CountWake {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A hasher that sends every element to one of `buckets` hashes (all with
/// the same tag bits): long probe sequences and many equality checks.
#[derive(Clone, Copy)]
struct FewHashes {
    buckets: u64,
}
struct FewHasher(u64, u64);
impl Hasher for FewHasher {
    fn finish(&self) -> u64 {
        self.0 % self.1
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.wrapping_mul(31).wrapping_add(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.wrapping_add(n);
    }
}
impl BuildHasher for FewHashes {
    type Hasher = FewHasher;
    fn build_hasher(&self) -> FewHasher {
        FewHasher(0, self.buckets)
    }
}

#[test]
fn sequential_inserts_membership_and_size() {
    let set = RawISet::new();
    assert!(set.is_empty());
    for i in 0..20_000u64 {
        assert_eq!(set.insert(i * 7), Ok(true), "{i} is new");
    }
    for i in 0..20_000u64 {
        assert_eq!(set.insert(i * 7), Ok(false), "{i} is present");
    }
    assert_eq!(set.len(), 20_000);
    assert!((0..20_000u64).all(|i| set.contains(&(i * 7))));
    assert!(!(0..20_000u64).any(|i| set.contains(&(i * 7 + 3))));
    assert_eq!(set.freeze_sorted(), (0..20_000u64).map(|i| i * 7).collect::<Vec<_>>());
}

/// An element type the set stores as entries (it is not a primitive
/// integer, which the set stores in its slots).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key(u64);

impl From<u64> for Key {
    fn from(n: u64) -> Self {
        Key(n)
    }
}

/// The element types of the stress tests: `u64` (inline) and `Key` (entries).
trait Elem: Copy + std::fmt::Debug + Ord + std::hash::Hash + Send + Sync + 'static + From<u64> {}
impl<E: Copy + std::fmt::Debug + Ord + std::hash::Hash + Send + Sync + 'static + From<u64>> Elem for E {}

/// A hashed set that starts with 2 slots (so inserts race resizes).
fn tiny<E: Elem>(_bound: usize) -> RawISet<E> {
    RawISet::with_capacity(0)
}

/// `threads` threads insert overlapping ranges into `make(bound)` (a hashed
/// set that starts with 2 slots, or a dense set); checks exact results.
/// Returns nothing; panics on a mismatch.
fn overlapping_inserts<E: Elem>(threads: usize, per_thread: u64, overlap: u64, make: fn(usize) -> RawISet<E>) {
    let distinct = (threads as u64 - 1) * (per_thread - overlap) + per_thread;
    let set = Arc::new(make(distinct as usize + 1));
    let barrier = Arc::new(Barrier::new(threads));
    let wins: u64 = thread::scope(|s| {
        let hs: Vec<_> = (0..threads as u64)
            .map(|t| {
                let (set, barrier) = (set.clone(), barrier.clone());
                s.spawn(move || {
                    barrier.wait();
                    let start = t * (per_thread - overlap);
                    (start..start + per_thread)
                        .filter(|&x| set.insert(E::from(x)).unwrap())
                        .count() as u64
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, distinct, "exactly one insert of each element returns true");
    assert_eq!(set.len() as u64, distinct);
    assert!((0..distinct).all(|x| set.contains(&E::from(x))));
    assert!(!set.contains(&E::from(distinct)));
    assert_eq!(set.freeze_sorted(), (0..distinct).map(E::from).collect::<Vec<_>>());
}

#[test]
fn racing_inserts_two_threads_many_resizes() {
    for _ in 0..60 {
        overlapping_inserts(2, 4_000, 3_000, tiny::<u64>);
        overlapping_inserts(2, 4_000, 3_000, tiny::<Key>);
    }
}

#[test]
fn racing_inserts_eight_threads_many_resizes() {
    for _ in 0..60 {
        overlapping_inserts(8, 2_000, 1_500, tiny::<u64>);
        overlapping_inserts(8, 2_000, 1_500, tiny::<Key>);
    }
}

#[test]
fn racing_inserts_into_a_dense_set_eight_threads() {
    for _ in 0..60 {
        overlapping_inserts(8, 2_000, 1_500, RawISet::<u64>::dense);
    }
}

#[test]
fn racing_inserts_in_thread_pools() {
    for threads in [2, 8] {
        let pool = ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for _ in 0..50 {
            let set = RawISet::with_capacity(1);
            let wins = AtomicUsize::new(0);
            // Every element is inserted 3 times, by different pieces.
            pool.install(|| {
                lvars::par_for(0..30_000, |i| {
                    if set.insert((i % 10_000) as u32).unwrap() {
                        wins.fetch_add(1, SeqCst);
                    }
                })
            });
            assert_eq!(wins.load(SeqCst), 10_000);
            assert_eq!(set.len(), 10_000);
            assert_eq!(set.freeze_sorted(), (0..10_000u32).collect::<Vec<_>>());
        }
    }
}

#[test]
fn racing_inserts_with_colliding_hashes() {
    for _ in 0..20 {
        let set = Arc::new(RawISet::with_capacity_and_hasher(0, FewHashes { buckets: 7 }));
        let wins: usize = thread::scope(|s| {
            let hs: Vec<_> = (0..4u64)
                .map(|t| {
                    let set = set.clone();
                    s.spawn(move || (0..600u64).filter(|x| set.insert((x + t * 150) % 900).unwrap()).count())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 900);
        assert_eq!(set.len(), 900);
        assert!((0..900u64).all(|x| set.contains(&x)));
        assert!(!set.contains(&900));
    }
}

#[test]
fn strings_are_compared_by_value() {
    let set: RawISet<String> = RawISet::with_capacity(0);
    for i in 0..1000 {
        assert_eq!(set.insert(format!("k{i}")), Ok(true));
    }
    for i in 0..1000 {
        assert_eq!(set.insert(format!("k{i}")), Ok(false));
    }
    assert!(set.contains(&"k999".to_string()));
    assert!(!set.contains(&"k1000".to_string()));
}

#[test]
fn wait_contains_by_hand_pending_until_inserted_then_ready() {
    let set = RawISet::with_capacity(0);
    let wakes = Arc::new(CountWake(AtomicUsize::new(0)));
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(set.wait_contains(1000u64));
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    // Other elements, and several resizes, do not complete it.
    for i in 0..1000 {
        set.insert(i).unwrap();
    }
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    let before = wakes.0.load(SeqCst);
    set.insert(1000).unwrap();
    assert!(wakes.0.load(SeqCst) > before, "the insert woke the waiter");
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(()));
    // Already present: ready at once.
    assert_eq!(pin!(set.wait_contains(5)).poll(&mut cx), Poll::Ready(()));
}

#[test]
fn wait_contains_across_threads_resolves_exactly_when_inserted() {
    for _ in 0..5 {
        let set = Arc::new(RawISet::with_capacity(0));
        let n = 16u64;
        let done: Arc<Vec<AtomicBool>> = Arc::new((0..n).map(|_| AtomicBool::new(false)).collect());
        let waiters: Vec<_> = (0..n)
            .map(|k| {
                let (set, done) = (set.clone(), done.clone());
                thread::spawn(move || {
                    block_on(set.wait_contains(k * 100));
                    done[k as usize].store(true, SeqCst);
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(5));
        for k in 0..n {
            // Fillers between the awaited elements (forcing resizes).
            for f in 1..100 {
                set.insert(k * 100 + f).unwrap();
            }
            for j in k..n {
                assert!(!done[j as usize].load(SeqCst), "waiter {j} resolved before its element");
            }
            set.insert(k * 100).unwrap();
        }
        for w in waiters {
            w.join().unwrap();
        }
        assert!(done.iter().all(|d| d.load(SeqCst)));
    }
}

#[test]
fn wait_size_resolves_exactly_at_the_threshold() {
    let set = Arc::new(RawISet::with_capacity(0));
    let thresholds = [1usize, 2, 10, 100, 1000, 5000];
    let done: Arc<Vec<AtomicBool>> = Arc::new(thresholds.iter().map(|_| AtomicBool::new(false)).collect());
    let waiters: Vec<_> = thresholds
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let (set, done) = (set.clone(), done.clone());
            thread::spawn(move || {
                block_on(set.wait_size(n));
                done[i].store(true, SeqCst);
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(5));
    for x in 0..5000u32 {
        // Duplicates never count.
        set.insert(x).unwrap();
        set.insert(x / 2).unwrap();
        for (i, &n) in thresholds.iter().enumerate() {
            if n > x as usize + 1 {
                assert!(!done[i].load(SeqCst), "wait_size({n}) resolved at size {}", x + 1);
            }
        }
    }
    for w in waiters {
        w.join().unwrap();
    }
    assert_eq!(set.len(), 5000);
    // Met already: ready at once.
    block_on(set.wait_size(5000));
}

#[test]
fn concurrent_waiters_and_inserters_all_resolve() {
    for _ in 0..10 {
        let set = Arc::new(RawISet::with_capacity(0));
        thread::scope(|s| {
            for t in 0..4u64 {
                let set = set.clone();
                s.spawn(move || {
                    for x in 0..500 {
                        block_on(set.wait_contains(x * 4 + (t + 1) % 4));
                    }
                    block_on(set.wait_size(2000));
                });
            }
            for t in 0..4u64 {
                let set = set.clone();
                s.spawn(move || {
                    for x in 0..500 {
                        set.insert(x * 4 + t).unwrap();
                    }
                });
            }
        });
        assert_eq!(set.len(), 2000);
    }
}

/// A dropped pending wait withdraws its waiter: the inserts that would have
/// satisfied it wake nobody, and no waiter keeps a clone of the waker.
#[test]
fn dropped_waits_are_withdrawn() {
    let set = RawISet::with_capacity(0);
    let wakes = Arc::new(CountWake(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&wakes));
    let mut cx = Context::from_waker(&waker);
    for i in 0..100u32 {
        let mut a = Box::pin(set.wait_contains(i));
        let mut b = Box::pin(set.wait_size(i as usize + 10));
        assert!(a.as_mut().poll(&mut cx).is_pending());
        assert!(b.as_mut().poll(&mut cx).is_pending());
    }
    for i in 0..200u32 {
        set.insert(i).unwrap();
    }
    assert_eq!(set.len(), 200);
    assert_eq!(wakes.0.load(SeqCst), 0, "a dropped wait was woken");
    assert_eq!(Arc::strong_count(&wakes), 2, "a withdrawn waiter still holds the waker");
}

#[test]
fn freeze_errors_on_new_elements_only() {
    let set = RawISet::new();
    for x in [5u32, 3, 9, 1] {
        set.insert(x).unwrap();
    }
    assert!(!set.is_frozen());
    assert_eq!(set.freeze_sorted(), vec![1, 3, 5, 9]);
    assert!(set.is_frozen());
    assert_eq!(set.insert(3), Ok(false), "an element already present is fine");
    assert_eq!(set.insert(4), Err(Error::PutAfterFreeze { lvar: "ISet" }));
    assert!(!set.contains(&4));
    assert_eq!(set.freeze(), 4, "freezing again is idempotent");
    assert_eq!(set.freeze_sorted(), vec![1, 3, 5, 9]);
    block_on(set.wait_contains(9));
}

#[test]
fn freeze_of_a_full_table_and_of_an_empty_set() {
    let empty: RawISet<u8> = RawISet::new();
    assert_eq!(empty.freeze_sorted(), Vec::<u8>::new());
    assert_eq!(empty.insert(1), Err(Error::PutAfterFreeze { lvar: "ISet" }));
    // Many colliding elements in a small table.
    let set = RawISet::with_capacity_and_hasher(0, FewHashes { buckets: 1 });
    for x in 0..50u32 {
        set.insert(x).unwrap();
    }
    assert_eq!(set.freeze(), 50);
    assert_eq!(set.insert(50), Err(Error::PutAfterFreeze { lvar: "ISet" }));
    assert_eq!(set.insert(49), Ok(false));
}

#[test]
fn freeze_racing_inserts_loses_nothing() {
    freeze_racing_inserts(tiny::<u64>);
    freeze_racing_inserts(tiny::<Key>);
}

#[test]
fn freeze_racing_inserts_into_a_dense_set_loses_nothing() {
    freeze_racing_inserts(RawISet::<u64>::dense);
}

/// Three threads insert 9,000 distinct elements into `make(9_000)` while
/// the set is frozen after a varying delay: every insert is either in the
/// frozen value or fails with `PutAfterFreeze`.
fn freeze_racing_inserts<E: Elem>(make: fn(usize) -> RawISet<E>) {
    // Rounds in which the freeze landed in the middle of the inserts.
    // Sixty rounds, and more (up to 600) until one has raced: a loaded
    // machine can deschedule the freezing thread for whole rounds.
    const MAX_ROUNDS: u64 = 600;
    let mut raced = 0;
    for round in 0..MAX_ROUNDS {
        if round >= 60 && raced > 0 {
            break;
        }
        let set = Arc::new(make(9_000));
        let start = Arc::new(Barrier::new(4));
        let (frozen, results) = thread::scope(|s| {
            let hs: Vec<_> = (0..3u64)
                .map(|t| {
                    let (set, start) = (set.clone(), start.clone());
                    s.spawn(move || {
                        start.wait();
                        (0..3000u64)
                            .map(|i| (i * 3 + t, set.insert(E::from(i * 3 + t))))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            start.wait();
            // Let the inserts get going (a varying amount), then freeze.
            for _ in 0..(round % 60 * 500) {
                std::hint::spin_loop();
            }
            let frozen: HashSet<E> = set.freeze_sorted().into_iter().collect();
            let results: Vec<_> = hs.into_iter().flat_map(|h| h.join().unwrap()).collect();
            (frozen, results)
        });
        let mut ok = 0;
        for (x, r) in results {
            match r {
                Ok(true) => {
                    ok += 1;
                    assert!(
                        frozen.contains(&E::from(x)),
                        "{x} was inserted but is not in the frozen value"
                    );
                }
                Ok(false) => unreachable!("every element is inserted once"),
                Err(e) => {
                    assert_eq!(e, Error::PutAfterFreeze { lvar: "ISet" });
                    assert!(!frozen.contains(&E::from(x)), "{x} failed but is in the frozen value");
                }
            }
        }
        assert_eq!(ok, frozen.len());
        assert_eq!(set.freeze(), frozen.len());
        raced += usize::from(ok > 0 && ok < 9000);
    }
    assert!(raced > 0, "the freeze never raced the inserts in {MAX_ROUNDS} rounds");
}

/// Counts live instances.
#[derive(Debug)]
struct Tracked {
    key: u32,
    live: Arc<AtomicUsize>,
}
impl Tracked {
    fn new(key: u32, live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, SeqCst);
        Self {
            key,
            live: live.clone(),
        }
    }
}
impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.fetch_sub(1, SeqCst);
    }
}
impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Tracked {}
impl std::hash::Hash for Tracked {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key.hash(h)
    }
}

#[test]
fn drop_frees_every_element_once() {
    let live = Arc::new(AtomicUsize::new(0));
    {
        let set = Arc::new(RawISet::with_capacity(0));
        thread::scope(|s| {
            for t in 0..4u32 {
                let (set, live) = (set.clone(), live.clone());
                s.spawn(move || {
                    for i in 0..5000 {
                        set.insert(Tracked::new((i + t * 1000) % 8000, &live)).unwrap();
                    }
                });
            }
        });
        assert_eq!(set.len(), 8000);
        assert_eq!(live.load(SeqCst), 8000, "duplicates were dropped at once");
    }
    assert_eq!(live.load(SeqCst), 0, "dropping the set dropped every element");
    // Frozen sets too.
    {
        let set = RawISet::new();
        for i in 0..100 {
            set.insert(Tracked::new(i, &live)).unwrap();
        }
        assert_eq!(set.freeze(), 100);
        assert!(set.insert(Tracked::new(100, &live)).is_err());
    }
    assert_eq!(live.load(SeqCst), 0);
}

/// `extend` from racing threads: each element counted new exactly once in
/// total, every element present, resizes included; and it stops at the
/// first new element after a freeze.
#[test]
fn racing_extends_count_each_element_once() {
    for _ in 0..20 {
        let set = Arc::new(RawISet::with_capacity(0));
        let barrier = Arc::new(Barrier::new(2));
        let new: usize = thread::scope(|s| {
            let hs: Vec<_> = (0..2u64)
                .map(|t| {
                    let (set, barrier) = (set.clone(), barrier.clone());
                    s.spawn(move || {
                        barrier.wait();
                        set.extend((t * 5_000..t * 5_000 + 10_000).chain(0..100)).unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(new, 15_000);
        assert_eq!(set.freeze_sorted(), (0..15_000).collect::<Vec<u64>>());
    }
    let set = RawISet::new();
    set.extend([1u8, 2]).unwrap();
    set.freeze_sorted();
    assert_eq!(set.extend([2, 1]), Ok(0), "known elements are fine after a freeze");
    assert!(matches!(
        set.extend([1, 3, 4]),
        Err(lvars::Error::PutAfterFreeze { .. })
    ));
    assert!(!set.contains(&4), "extend stops at the first error");
}

#[test]
fn a_dense_set_rejects_elements_beyond_its_bound_and_waits_like_a_hashed_one() {
    let set: RawISet<u32> = RawISet::dense(1000);
    assert_eq!(set.insert(1000), Err(Error::OutOfRange { lvar: "dense ISet" }));
    assert_eq!(set.insert(u32::MAX), Err(Error::OutOfRange { lvar: "dense ISet" }));
    assert!(set.is_empty());
    let set = Arc::new(set);
    let waiter = {
        let set = set.clone();
        thread::spawn(move || {
            block_on(set.wait_contains(999));
            block_on(set.wait_size(3));
            set.len()
        })
    };
    thread::sleep(Duration::from_millis(20));
    for x in [5, 999, 63] {
        assert_eq!(set.insert(x), Ok(true));
    }
    assert!(waiter.join().unwrap() >= 3);
    assert!(set.contains(&63) && !set.contains(&64) && !set.contains(&5000));
    assert_eq!(set.freeze(), 3);
    assert!(set.is_frozen());
    assert_eq!(set.freeze_sorted(), vec![5, 63, 999]);
}
