//! The grow-only set (`src/data/iset.rs`, `src/data/iset/table.rs`), in
//! tables of 2 and 4 slots so that the races below run across resizes:
//! concurrent inserts of one element (exactly one wins), inserts racing a
//! listener's registration (delivered exactly once), inserts racing freeze
//! (in the frozen value or `PutAfterFreeze`), and `wait_contains` /
//! `wait_size` racing the insert that satisfies them (loom reports a
//! deadlock if a waiter is never woken). The elements are `Key`s, which
//! the set stores as entries; the `inline_*` models run the same races on
//! `u64` elements, which it stores in the slots (`src/data/iset/inline.rs`),
//! and the `dense_*` models on a dense set (`src/data/iset/dense.rs`),
//! whose elements are bits of one word here.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;

use lvars::data::RawISet;
use lvars::Error;

/// Hash = the element itself: predictable homes (all on the same tag).
#[derive(Clone, Copy, Default)]
struct Identity;
struct IdHasher(u64);
impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 elements")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
impl BuildHasher for Identity {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

/// An element type the set stores as an entry (it is not a primitive
/// integer); it hashes as its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key(u64);

impl From<u64> for Key {
    fn from(n: u64) -> Self {
        Key(n)
    }
}

impl From<Key> for u64 {
    fn from(k: Key) -> u64 {
        k.0
    }
}

/// The element types of the models: `Key` (entries) and `u64` (inline).
trait Elem: Copy + std::fmt::Debug + Ord + std::hash::Hash + Send + Sync + 'static + From<u64> + Into<u64> {}
impl<E: Copy + std::fmt::Debug + Ord + std::hash::Hash + Send + Sync + 'static + From<u64> + Into<u64>> Elem for E {}

fn e<E: Elem>(n: u64) -> E {
    E::from(n)
}

fn elems<E: Elem>(ns: &[u64]) -> Vec<E> {
    ns.iter().map(|&n| e(n)).collect()
}

/// `set` with the elements `pre` inserted, shared.
fn holding<E: Elem, S: BuildHasher>(set: RawISet<E, S>, pre: &[u64]) -> Arc<RawISet<E, S>> {
    for &x in pre {
        assert_eq!(set.insert(e(x)), Ok(true));
    }
    Arc::new(set)
}

/// A set of 2 slots holding `pre`; its next new element triggers a resize.
fn tiny_set<E: Elem>(pre: &[u64]) -> Arc<RawISet<E, Identity>> {
    holding(RawISet::with_capacity_and_hasher(0, Identity), pre)
}

#[test]
fn same_element_twice_exactly_one_insert_wins() {
    loom::model(same_element_twice::<Key>);
}

#[test]
fn inline_same_element_twice_exactly_one_insert_wins() {
    loom::model(same_element_twice::<u64>);
}

fn same_element_twice<E: Elem>() {
    // 1 and 3 share home slot 1 of the 2-slot table: the race on 3 is a
    // probe past 1, and the winner's insert resizes the table.
    let set = tiny_set::<E>(&[1]);
    let other = {
        let set = set.clone();
        thread::spawn(move || set.insert(e(3)))
    };
    let mine = set.insert(e(3));
    let theirs = other.join().unwrap();
    match (mine, theirs) {
        (Ok(true), Ok(false)) | (Ok(false), Ok(true)) => {}
        other => panic!("exactly one insert must win, got {other:?}"),
    }
    assert_eq!(set.len(), 2);
    assert!(set.contains(&e(1)) && set.contains(&e(3)));
    assert_eq!(set.freeze_sorted(), elems::<E>(&[1, 3]));
    lvars::sched::loom_exports::flush_deferred();
}

#[test]
fn different_elements_during_a_resize_are_both_kept() {
    loom::model(different_elements_during_a_resize::<Key>);
}

#[test]
fn inline_different_elements_during_a_resize_are_both_kept() {
    loom::model(different_elements_during_a_resize::<u64>);
}

fn different_elements_during_a_resize<E: Elem>() {
    // 0 and 2 share home slot 0; whichever comes second resizes.
    let set = tiny_set::<E>(&[]);
    let other = {
        let set = set.clone();
        thread::spawn(move || set.insert(e(2)))
    };
    assert_eq!(set.insert(e(0)), Ok(true));
    assert_eq!(other.join().unwrap(), Ok(true));
    assert_eq!(set.len(), 2);
    assert!(set.contains(&e(0)) && set.contains(&e(2)) && !set.contains(&e(1)));
    assert_eq!(set.freeze_sorted(), elems::<E>(&[0, 2]));
    lvars::sched::loom_exports::flush_deferred();
}

// Three threads through a whole migration: bounded to two preemptions
// (a few seconds; three take minutes). Two are enough to catch a range
// pass that leaves the empty slot open.
#[test]
fn same_element_into_a_migrating_table_is_new_once() {
    two_preemptions().check(same_element_into_a_migrating_table::<Key>);
}

#[test]
fn inline_same_element_into_a_migrating_table_is_new_once() {
    two_preemptions().check(same_element_into_a_migrating_table::<u64>);
}

fn two_preemptions() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b
}

/// A 4-slot table holds 1 and 2; inserting 3 grows it. Meanwhile two
/// threads insert 4 (home slot 0, still empty in the old table): one may
/// probe the old table while the other, finding the migration under way,
/// goes to the successor. The own-range rule (closing slot 0 before
/// probing the successor) makes exactly one of them new.
fn same_element_into_a_migrating_table<E: Elem>() {
    let set = holding(RawISet::<E, Identity>::with_capacity_and_hasher(2, Identity), &[1, 2]);
    let inserters: Vec<_> = (0..2)
        .map(|_| {
            let set = set.clone();
            thread::spawn(move || set.insert(e(4)))
        })
        .collect();
    assert_eq!(set.insert(e(3)), Ok(true));
    let wins = inserters
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|r| *r == Ok(true))
        .count();
    assert_eq!(wins, 1, "exactly one insert of 4 is new");
    assert_eq!(set.len(), 4);
    assert_eq!(set.freeze_sorted(), elems::<E>(&[1, 2, 3, 4]));
    lvars::sched::loom_exports::flush_deferred();
}

#[test]
fn insert_racing_add_listener_is_delivered_exactly_once() {
    loom::model(|| listener_race(tiny_set::<Key>(&[1])));
}

#[test]
fn inline_insert_racing_add_listener_is_delivered_exactly_once() {
    loom::model(|| listener_race(tiny_set::<u64>(&[1])));
}

#[test]
fn dense_insert_racing_add_listener_is_delivered_exactly_once() {
    loom::model(|| listener_race(dense_set(&[1])));
}

/// `set` holds 1 (and nothing else below 8); 3 is inserted while a
/// listener is added: it gets 1 and 3 once each and nothing else.
fn listener_race<E: Elem, S: BuildHasher + Send + Sync + 'static>(set: Arc<RawISet<E, S>>) {
    // Deliveries per element (a plain recorder: loom runs model threads on
    // one OS thread).
    let seen: std::sync::Arc<[AtomicUsize; 8]> = std::sync::Arc::new(Default::default());
    let inserter = {
        let set = set.clone();
        thread::spawn(move || set.insert(e(3)).unwrap())
    };
    let rec = seen.clone();
    set.loom_add_listener(move |x: &E| {
        let n: u64 = (*x).into();
        rec[n as usize].fetch_add(1, SeqCst);
    })
    .unwrap();
    assert!(inserter.join().unwrap());
    assert_eq!(seen[1].load(SeqCst), 1, "the element present before");
    assert_eq!(seen[3].load(SeqCst), 1, "the racing element");
    let others: usize = [0, 2, 4, 5, 6, 7].iter().map(|&i| seen[i].load(SeqCst)).sum();
    assert_eq!(others, 0);
    lvars::sched::loom_exports::flush_deferred();
}

#[test]
fn insert_racing_freeze_is_in_the_frozen_value_or_fails() {
    loom::model(|| freeze_race(tiny_set::<Key>(&[1]), 1, 3));
}

#[test]
fn inline_insert_racing_freeze_is_in_the_frozen_value_or_fails() {
    loom::model(|| freeze_race(tiny_set::<u64>(&[1]), 1, 3));
}

#[test]
fn inline_special_element_racing_freeze_is_in_the_frozen_value_or_fails() {
    // `u64::MAX` lives in the special word, not in a slot.
    loom::model(|| freeze_race(tiny_set::<u64>(&[1]), 1, u64::MAX));
}

#[test]
fn dense_insert_racing_freeze_is_in_the_frozen_value_or_fails() {
    loom::model(|| freeze_race(dense_set(&[1]), 1, 3));
}

/// `set` holds `held`; `x` is inserted while the set is frozen: it is in
/// the frozen value or fails with `PutAfterFreeze`.
fn freeze_race<E: Elem, S: BuildHasher + Send + Sync + 'static>(set: Arc<RawISet<E, S>>, held: u64, x: u64) {
    let inserter = {
        let set = set.clone();
        thread::spawn(move || set.insert(e(x)))
    };
    let frozen = set.freeze_sorted();
    match inserter.join().unwrap() {
        Ok(true) => assert_eq!(
            frozen,
            elems::<E>(&[held, x]),
            "a successful insert is in the frozen value"
        ),
        Err(err) => {
            assert_eq!(err, Error::PutAfterFreeze { lvar: "ISet" });
            assert_eq!(frozen, elems::<E>(&[held]));
        }
        Ok(false) => panic!("{x} was new"),
    }
    // Inserting an element already present still succeeds.
    assert_eq!(set.insert(e(held)), Ok(false));
    assert_eq!(set.freeze_sorted(), frozen);
    lvars::sched::loom_exports::flush_deferred();
}

#[test]
fn wait_contains_racing_the_insert_is_woken() {
    loom::model(wait_contains_racing_the_insert::<Key>);
}

#[test]
fn inline_wait_contains_racing_the_insert_is_woken() {
    loom::model(wait_contains_racing_the_insert::<u64>);
}

fn wait_contains_racing_the_insert<E: Elem>() {
    let set = tiny_set::<E>(&[1]);
    let waiter = {
        let set = set.clone();
        thread::spawn(move || block_on(set.wait_contains(e(3))))
    };
    set.insert(e(3)).unwrap();
    waiter.join().unwrap();
    lvars::sched::loom_exports::flush_deferred();
}

#[test]
fn wait_size_reached_by_two_racing_inserts_is_woken() {
    loom::model(wait_size_reached_by_two_racing_inserts::<Key>);
}

#[test]
fn inline_wait_size_reached_by_two_racing_inserts_is_woken() {
    loom::model(wait_size_reached_by_two_racing_inserts::<u64>);
}

fn wait_size_reached_by_two_racing_inserts<E: Elem>() {
    let set = tiny_set::<E>(&[]);
    let waiter = {
        let set = set.clone();
        thread::spawn(move || block_on(set.wait_size(2)))
    };
    let other = {
        let set = set.clone();
        thread::spawn(move || set.insert(e(0)).unwrap())
    };
    set.insert(e(1)).unwrap();
    other.join().unwrap();
    waiter.join().unwrap();
    lvars::sched::loom_exports::flush_deferred();
}

/// A dense set of 0..8 (one word) holding `pre`.
fn dense_set(pre: &[u64]) -> Arc<RawISet<u64>> {
    holding(RawISet::dense(8), pre)
}

#[test]
fn dense_same_element_twice_exactly_one_insert_wins() {
    loom::model(|| {
        let set = dense_set(&[1]);
        let other = {
            let set = set.clone();
            thread::spawn(move || set.insert(3))
        };
        // A different bit of the same word races too.
        let mine = (set.insert(3), set.insert(5));
        let theirs = other.join().unwrap();
        match (mine.0, theirs) {
            (Ok(true), Ok(false)) | (Ok(false), Ok(true)) => {}
            other => panic!("exactly one insert must win, got {other:?}"),
        }
        assert_eq!(mine.1, Ok(true));
        assert_eq!(set.len(), 3);
        assert_eq!(set.freeze_sorted(), vec![1, 3, 5]);
    });
}

#[test]
fn dense_wait_contains_and_wait_size_racing_the_insert_are_woken() {
    loom::model(|| {
        let set = dense_set(&[1]);
        let waiter = {
            let set = set.clone();
            thread::spawn(move || {
                block_on(set.wait_contains(3));
                block_on(set.wait_size(2));
            })
        };
        set.insert(3).unwrap();
        waiter.join().unwrap();
        lvars::sched::loom_exports::flush_deferred();
    });
}
