//! Tests of the crate-private parts of the set: listener delivery (the
//! hook of handler pools) and dropping a set in the middle of a migration.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;

use super::table::Table;
use super::{Listener, RawISet};
use crate::error::Error;

/// Records how often each element `0..n` was delivered.
struct Counting {
    counts: Vec<AtomicU8>,
    total: AtomicUsize,
    /// Deliveries made by `add_listener`'s scan (on the adding thread).
    by_scan: AtomicUsize,
}

thread_local! {
    static ADDING_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Counting {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            counts: (0..n).map(|_| AtomicU8::new(0)).collect(),
            total: AtomicUsize::new(0),
            by_scan: AtomicUsize::new(0),
        })
    }

    fn assert_exactly_once(&self, what: &str) {
        for (x, c) in self.counts.iter().enumerate() {
            assert_eq!(
                c.load(SeqCst),
                1,
                "{what}: element {x} delivered {} times",
                c.load(SeqCst)
            );
        }
        assert_eq!(self.total.load(SeqCst), self.counts.len());
    }
}

/// An element type the set stores as entries (it is not a primitive
/// integer, which the set stores in its slots).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key(u32);

impl From<u32> for Key {
    fn from(n: u32) -> Self {
        Key(n)
    }
}

impl From<Key> for u32 {
    fn from(k: Key) -> u32 {
        k.0
    }
}

impl<E: Copy + Into<u32>> Listener<E> for Counting {
    fn on_element(&self, value: &E) {
        let i: u32 = (*value).into();
        self.counts[i as usize].fetch_add(1, SeqCst);
        self.total.fetch_add(1, SeqCst);
        if ADDING_THREAD.with(|a| a.get()) {
            self.by_scan.fetch_add(1, SeqCst);
        }
    }
}

/// A tiny xorshift for random pauses.
fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[test]
fn listeners_added_while_inserting_see_every_element_exactly_once() {
    listeners_race(100_000, 200_000, |_| RawISet::<u32>::with_capacity(0));
}

#[test]
fn entry_listeners_added_while_inserting_see_every_element_exactly_once() {
    let n = if cfg!(miri) { 2_000 } else { 100_000 };
    listeners_race(n, 200_000, |_| RawISet::<Key>::with_capacity(0));
}

#[test]
fn dense_listeners_added_while_inserting_see_every_element_exactly_once() {
    // Smaller under Miri. Bits are cheap: more elements and shorter pauses
    // between listeners than for the hashed set, so that they overlap.
    let n = if cfg!(miri) { 2_000 } else { 400_000 };
    listeners_race(n, 20_000, RawISet::<u32>::dense);
}

/// Four threads insert `0..n` (each element twice) into `make(n)` while
/// listeners are added before, during (after random pauses of up to
/// `max_pause` spins) and after; each must see every element exactly once.
fn listeners_race<E>(n: usize, max_pause: u64, make: fn(usize) -> RawISet<E>)
where
    E: Copy + Into<u32> + From<u32> + std::hash::Hash + Eq + Send + Sync + 'static,
{
    const LISTENERS: usize = 10;
    // Listeners that got elements both from their scan and from inserts:
    // proof that the test really raced them.
    // At least three rounds, and more (up to 50) until one has raced: on a
    // loaded machine the adding thread can be descheduled until every
    // insert is done, and CI once saw three such rounds in a row.
    const MAX_ROUNDS: u64 = 50;
    let mut raced = 0;
    for round in 0..MAX_ROUNDS {
        if round >= 3 && (raced > 0 || cfg!(miri)) {
            break;
        }
        let set = Arc::new(make(n));
        let listeners: Vec<Arc<Counting>> = (0..LISTENERS).map(|_| Counting::new(n)).collect();
        let start = Arc::new(Barrier::new(5));
        thread::scope(|s| {
            // 4 inserters; every element is inserted by two of them.
            for t in 0..4usize {
                let (set, start) = (set.clone(), start.clone());
                s.spawn(move || {
                    start.wait();
                    for i in 0..n / 2 {
                        set.insert(E::from(((i + t * n / 4) % n) as u32)).unwrap();
                    }
                });
            }
            // Listeners join at random moments: before, during and after.
            let (set, start, listeners) = (set.clone(), start.clone(), listeners.clone());
            s.spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15 ^ round;
                ADDING_THREAD.with(|a| a.set(true));
                set.add_listener(listeners[0].clone()).unwrap();
                start.wait();
                for l in &listeners[1..LISTENERS - 1] {
                    for _ in 0..xorshift(&mut rng) % max_pause {
                        std::hint::spin_loop();
                    }
                    set.add_listener(l.clone()).unwrap();
                }
            });
        });
        assert_eq!(set.len(), n);
        set.add_listener(listeners[LISTENERS - 1].clone()).unwrap();
        for (i, l) in listeners.iter().enumerate() {
            l.assert_exactly_once(&format!("round {round}, listener {i}"));
            let scanned = l.by_scan.load(SeqCst);
            raced += usize::from(scanned > 0 && scanned < n);
        }
    }
    // (Miri interleaves threads its own way: the race is not guaranteed there.)
    assert!(
        raced > 0 || cfg!(miri),
        "no listener was added while inserts were running, in {MAX_ROUNDS} rounds"
    );
}

#[test]
fn at_most_64_listeners() {
    let set: RawISet<u32> = RawISet::new();
    set.insert(7).unwrap();
    let ls: Vec<Arc<Counting>> = (0..64).map(|_| Counting::new(8)).collect();
    for l in &ls {
        set.add_listener(l.clone()).unwrap();
    }
    assert_eq!(
        set.add_listener(Counting::new(8)),
        Err(Error::OutOfRange { lvar: "ISet listeners" })
    );
    set.insert(3).unwrap();
    for l in &ls {
        assert_eq!(l.counts[7].load(SeqCst), 1);
        assert_eq!(l.counts[3].load(SeqCst), 1);
        assert_eq!(l.total.load(SeqCst), 2);
    }
}

/// A handler that inserts into the set it listens to (a traversal).
struct Successor(std::sync::Weak<RawISet<u32>>, AtomicUsize);

impl Listener<u32> for Successor {
    fn on_element(&self, value: &u32) {
        self.1.fetch_add(1, SeqCst);
        if *value < 1000 {
            if let Some(set) = self.0.upgrade() {
                set.insert(value + 1).unwrap();
                set.insert(value / 2).unwrap(); // present already
            }
        }
    }
}

#[test]
fn a_listener_may_insert_into_its_own_set() {
    let set = Arc::new(RawISet::with_capacity(0));
    let l = Arc::new(Successor(Arc::downgrade(&set), AtomicUsize::new(0)));
    set.add_listener(l.clone()).unwrap();
    set.insert(0).unwrap();
    assert_eq!(set.len(), 1001);
    assert_eq!(l.1.load(SeqCst), 1001);
    assert_eq!(set.freeze_sorted(), (0..=1000).collect::<Vec<_>>());
}

/// Counts live instances.
struct Tracked(u32, Arc<AtomicUsize>);
impl Tracked {
    fn new(k: u32, live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, SeqCst);
        Self(k, live.clone())
    }
}
impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.fetch_sub(1, SeqCst);
    }
}
impl PartialEq for Tracked {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Tracked {}
impl std::hash::Hash for Tracked {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.hash(h)
    }
}

#[test]
fn a_half_done_migration_is_visible_and_dropped_cleanly() {
    let live = Arc::new(AtomicUsize::new(0));
    {
        let set = RawISet::with_capacity(8); // 16 slots, below the load factor
        for k in 0..6 {
            set.insert(Tracked::new(k, &live)).unwrap();
        }
        // Start a resize that nobody has helped yet.
        let root: &Table<Tracked> = unsafe { &*set.root.load(SeqCst) };
        assert!(root.install_successor().is_ok());
        // Membership sees both tables; inserts migrate their own range.
        for k in 0..6 {
            assert!(set.contains(&Tracked::new(k, &live)));
        }
        assert_eq!(set.insert(Tracked::new(3, &live)), Ok(false));
        assert_eq!(set.insert(Tracked::new(6, &live)), Ok(true));
        assert_eq!(set.len(), 7);
        assert_eq!(live.load(SeqCst), 7);
    }
    assert_eq!(live.load(SeqCst), 0);
    {
        // A migration left half done by hand: only some slots migrated.
        let set = RawISet::with_capacity(8);
        for k in 0..6 {
            set.insert(Tracked::new(k, &live)).unwrap();
        }
        let root: &Table<Tracked> = unsafe { &*set.root.load(SeqCst) };
        let next = root.install_successor().unwrap();
        // From element 0's home slot, which is occupied (from slot 0, as
        // before, most sets had nothing to copy: the hashes are random).
        let home = set.hash_of(&Tracked::new(0, &live));
        // SAFETY: `next` is the successor; tables live as long as the set.
        unsafe { root.migrate_range(&*next, home, |_| false) };
        let mut copied = 0;
        root.for_each_slot(|w, _| {
            if w & super::table::COPIED != 0 {
                copied += 1;
            }
        });
        assert!(copied > 0, "the migration copied nothing");
    }
    assert_eq!(live.load(SeqCst), 0, "no entry leaked or freed twice");
}
