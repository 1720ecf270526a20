//! The grow-only map (`src/data/imap.rs`): two threads `get_or_init` one key
//! (one cell, both see it, the loser's cell is dropped), two keys splitting
//! the same trie slot, an insert racing freeze (in the frozen value or
//! `PutAfterFreeze`), and `wait_key` racing the insert that satisfies it
//! (loom reports a deadlock if the waiter is never woken).

use std::hash::{BuildHasher, Hasher};

use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;

use lvars::data::RawIMap;
use lvars::Error;

/// Hash = the key itself: 0 and 16 share the root slot (digit 0) and split
/// one level down.
#[derive(Clone, Copy, Default)]
struct Identity;
struct IdHasher(u64);
impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
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

type Map = RawIMap<u64, Box<u64>, Identity>;

#[test]
fn two_get_or_init_of_one_key_share_one_cell() {
    loom::model(|| {
        let map = Arc::new(Map::with_hasher(Identity));
        let other = {
            let map = map.clone();
            thread::spawn(move || {
                let c = map.get_or_init_with(3, || Box::new(1)).unwrap();
                (&**c as *const u64 as usize, **c)
            })
        };
        let c = map.get_or_init_with(3, || Box::new(2)).unwrap();
        let mine = (&**c as *const u64 as usize, **c);
        let theirs = other.join().unwrap();
        assert_eq!(mine, theirs, "two cells for one key");
        assert_eq!(map.len(), 1);
    });
}

#[test]
fn two_keys_splitting_one_slot_are_both_kept() {
    loom::model(|| {
        let map = Arc::new(Map::with_hasher(Identity));
        let other = {
            let map = map.clone();
            thread::spawn(move || **map.get_or_init_with(16, || Box::new(16)).unwrap())
        };
        assert_eq!(**map.get_or_init_with(0, || Box::new(0)).unwrap(), 0);
        assert_eq!(other.join().unwrap(), 16);
        assert_eq!(map.freeze_sorted_with(|b| **b), vec![(0, 0), (16, 16)]);
    });
}

#[test]
fn insert_racing_freeze_is_frozen_or_refused() {
    loom::model(|| {
        let map = Arc::new(Map::with_hasher(Identity));
        map.get_or_init_with(0, || Box::new(0)).unwrap();
        let other = {
            let map = map.clone();
            // 16 splits 0's slot: the split and the insert both race freeze.
            thread::spawn(move || map.get_or_init_with(16, || Box::new(16)).map(|c| **c))
        };
        let frozen = map.freeze_sorted_with(|b| **b);
        match other.join().unwrap() {
            Ok(16) => assert_eq!(frozen, vec![(0, 0), (16, 16)]),
            Err(Error::PutAfterFreeze { lvar: "IMap" }) => {
                assert_eq!(frozen, vec![(0, 0)]);
                assert!(map.get(&16).is_none());
            }
            other => panic!("unexpected {other:?}"),
        }
        // Existing keys are still found after the freeze.
        assert_eq!(**map.get_or_init_with(0, || Box::new(9)).unwrap(), 0);
    });
}

#[test]
fn wait_key_racing_its_insert_is_woken() {
    loom::model(|| {
        let map = Arc::new(Map::with_hasher(Identity));
        let other = {
            let map = map.clone();
            thread::spawn(move || {
                map.get_or_init_with(5, || Box::new(5)).unwrap();
            })
        };
        assert_eq!(**block_on(map.wait_key(5)), 5);
        other.join().unwrap();
        // Waiter nodes are retired through the epoch.
        lvars::sched::loom_exports::flush_deferred();
    });
}
