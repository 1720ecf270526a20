//! The grow-only set (`src/data/iset.rs`, `src/data/iset/table.rs`), in
//! tables of 2 and 4 slots so that the races below run across resizes:
//! concurrent inserts of one element (exactly one wins), inserts racing a
//! listener's registration (delivered exactly once), inserts racing freeze
//! (in the frozen value or `PutAfterFreeze`), and `wait_contains` /
//! `wait_size` racing the insert that satisfies them (loom reports a
//! deadlock if a waiter is never woken). The `dense_*` models run the same
//! races on a dense set (`src/data/iset/dense.rs`), whose elements are bits
//! of one word here.

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

/// `set` with the elements `pre` inserted, shared.
fn holding<S: BuildHasher>(set: RawISet<u64, S>, pre: &[u64]) -> Arc<RawISet<u64, S>> {
    for &x in pre {
        assert_eq!(set.insert(x), Ok(true));
    }
    Arc::new(set)
}

/// A set of 2 slots holding `pre`; its next new element triggers a resize.
fn tiny_set(pre: &[u64]) -> Arc<RawISet<u64, Identity>> {
    holding(RawISet::with_capacity_and_hasher(0, Identity), pre)
}

#[test]
fn same_element_twice_exactly_one_insert_wins() {
    loom::model(|| {
        // 1 and 3 share home slot 1 of the 2-slot table: the race on 3 is a
        // probe past 1, and the winner's insert resizes the table.
        let set = tiny_set(&[1]);
        let other = {
            let set = set.clone();
            thread::spawn(move || set.insert(3))
        };
        let mine = set.insert(3);
        let theirs = other.join().unwrap();
        match (mine, theirs) {
            (Ok(true), Ok(false)) | (Ok(false), Ok(true)) => {}
            other => panic!("exactly one insert must win, got {other:?}"),
        }
        assert_eq!(set.len(), 2);
        assert!(set.contains(&1) && set.contains(&3));
        assert_eq!(set.freeze_sorted(), vec![1, 3]);
        lvars::sched::loom_exports::flush_deferred();
    });
}

#[test]
fn different_elements_during_a_resize_are_both_kept() {
    loom::model(|| {
        // 0 and 2 share home slot 0; whichever comes second resizes.
        let set = tiny_set(&[]);
        let other = {
            let set = set.clone();
            thread::spawn(move || set.insert(2))
        };
        assert_eq!(set.insert(0), Ok(true));
        assert_eq!(other.join().unwrap(), Ok(true));
        assert_eq!(set.len(), 2);
        assert!(set.contains(&0) && set.contains(&2) && !set.contains(&1));
        assert_eq!(set.freeze_sorted(), vec![0, 2]);
        lvars::sched::loom_exports::flush_deferred();
    });
}

#[test]
fn insert_racing_add_listener_is_delivered_exactly_once() {
    loom::model(|| listener_race(tiny_set(&[1])));
}

#[test]
fn dense_insert_racing_add_listener_is_delivered_exactly_once() {
    loom::model(|| listener_race(dense_set(&[1])));
}

/// `set` holds 1 (and nothing else below 8); 3 is inserted while a
/// listener is added: it gets 1 and 3 once each and nothing else.
fn listener_race<S: BuildHasher + Send + Sync + 'static>(set: Arc<RawISet<u64, S>>) {
    // Deliveries per element (a plain recorder: loom runs model threads on
    // one OS thread).
    let seen: std::sync::Arc<[AtomicUsize; 8]> = std::sync::Arc::new(Default::default());
    let inserter = {
        let set = set.clone();
        thread::spawn(move || set.insert(3).unwrap())
    };
    let rec = seen.clone();
    set.loom_add_listener(move |x: &u64| {
        rec[*x as usize].fetch_add(1, SeqCst);
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
    loom::model(|| freeze_race(tiny_set(&[1])));
}

#[test]
fn dense_insert_racing_freeze_is_in_the_frozen_value_or_fails() {
    loom::model(|| freeze_race(dense_set(&[1])));
}

/// `set` holds 1; 3 is inserted while the set is frozen: it is in the
/// frozen value or fails with `PutAfterFreeze`.
fn freeze_race<S: BuildHasher + Send + Sync + 'static>(set: Arc<RawISet<u64, S>>) {
    let inserter = {
        let set = set.clone();
        thread::spawn(move || set.insert(3))
    };
    let frozen = set.freeze_sorted();
    match inserter.join().unwrap() {
        Ok(true) => assert_eq!(frozen, vec![1, 3], "a successful insert is in the frozen value"),
        Err(e) => {
            assert_eq!(e, Error::PutAfterFreeze { lvar: "ISet" });
            assert_eq!(frozen, vec![1]);
        }
        Ok(false) => panic!("3 was new"),
    }
    // Inserting an element already present still succeeds.
    assert_eq!(set.insert(1), Ok(false));
    assert_eq!(set.freeze_sorted(), frozen);
    lvars::sched::loom_exports::flush_deferred();
}

#[test]
fn wait_contains_racing_the_insert_is_woken() {
    loom::model(|| {
        let set = tiny_set(&[1]);
        let waiter = {
            let set = set.clone();
            thread::spawn(move || block_on(set.wait_contains(3)))
        };
        set.insert(3).unwrap();
        waiter.join().unwrap();
        lvars::sched::loom_exports::flush_deferred();
    });
}

#[test]
fn wait_size_reached_by_two_racing_inserts_is_woken() {
    loom::model(|| {
        let set: Arc<RawISet<u64, Identity>> = Arc::new(RawISet::with_capacity_and_hasher(0, Identity));
        let waiter = {
            let set = set.clone();
            thread::spawn(move || block_on(set.wait_size(2)))
        };
        let other = {
            let set = set.clone();
            thread::spawn(move || set.insert(0).unwrap())
        };
        set.insert(1).unwrap();
        other.join().unwrap();
        waiter.join().unwrap();
        lvars::sched::loom_exports::flush_deferred();
    });
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
