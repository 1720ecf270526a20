//! Concurrent IVar puts (`src/data/ivar.rs`): exactly one value wins,
//! a different value conflicts, an equal value is a no-op, and a getter
//! always sees the winner.

use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;

use lvars::data::RawIVar;
use lvars::Error;

#[test]
fn different_values_exactly_one_wins() {
    loom::model(|| {
        let iv = Arc::new(RawIVar::new());
        let other = {
            let iv = iv.clone();
            thread::spawn(move || iv.put(2u8))
        };
        let mine = iv.put(1u8);
        let theirs = other.join().unwrap();
        let winner = *iv.try_get().expect("one put succeeded");
        match (mine, theirs) {
            (Ok(()), Err(e)) => {
                assert_eq!(e, Error::ConflictingPut { lvar: "IVar" });
                assert_eq!(winner, 1);
            }
            (Err(e), Ok(())) => {
                assert_eq!(e, Error::ConflictingPut { lvar: "IVar" });
                assert_eq!(winner, 2);
            }
            other => panic!("exactly one put must win, got {other:?}"),
        }
        lvars::sched::loom_exports::flush_deferred();
    });
}

#[test]
fn equal_values_both_succeed_and_the_getter_sees_it() {
    loom::model(|| {
        let iv = Arc::new(RawIVar::new());
        let getter = {
            let iv = iv.clone();
            thread::spawn(move || *block_on(iv.get()))
        };
        let other = {
            let iv = iv.clone();
            thread::spawn(move || iv.put(7u8))
        };
        assert_eq!(iv.put(7u8), Ok(()));
        assert_eq!(other.join().unwrap(), Ok(()));
        assert_eq!(getter.join().unwrap(), 7);
        lvars::sched::loom_exports::flush_deferred();
    });
}
