//! Bump counters (`src/data/counter.rs`): a freeze racing bumps keeps
//! exactly the bumps that returned `Ok`, and a bump reaching a waiter's
//! threshold always wakes it, also when only the sum of two racing bumps
//! reaches it.

use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;

use lvars::data::{RawCounter, RawPNCounter};
use lvars::Error;

#[test]
fn two_bumps_vs_freeze_keep_exactly_the_ok_bumps() {
    loom::model(|| {
        let c = Arc::new(RawCounter::new());
        let bumpers: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|n| {
                let c = c.clone();
                thread::spawn(move || (n, c.bump(n)))
            })
            .collect();
        let frozen = c.freeze();
        let mut ok = 0;
        for b in bumpers {
            match b.join().unwrap() {
                (n, Ok(())) => ok += n,
                (_, Err(e)) => assert_eq!(e, Error::PutAfterFreeze { lvar: "Counter" }),
            }
        }
        assert_eq!(frozen, ok, "the frozen count is the sum of the Ok bumps");
        assert_eq!(c.bump(0), Ok(()));
        lvars::sched::loom_exports::flush_deferred();
    });
}

#[test]
fn bumps_racing_a_waiter_at_the_threshold_always_wake_it() {
    loom::model(|| {
        let c = Arc::new(RawCounter::new());
        let getter = {
            let c = c.clone();
            thread::spawn(move || block_on(c.wait_at_least(3)))
        };
        let other = {
            let c = c.clone();
            thread::spawn(move || c.bump(1).unwrap())
        };
        c.bump(2).unwrap();
        other.join().unwrap();
        // loom reports a deadlock if the getter is never woken.
        getter.join().unwrap();
        assert_eq!(c.freeze(), 3);
        lvars::sched::loom_exports::flush_deferred();
    });
}

#[test]
fn pn_increment_vs_freeze() {
    loom::model(|| {
        let c = Arc::new(RawPNCounter::new());
        let inc = {
            let c = c.clone();
            thread::spawn(move || c.increment(2))
        };
        c.decrement(1).unwrap();
        let frozen = c.freeze();
        match inc.join().unwrap() {
            Ok(()) => assert_eq!(frozen.value(), 1),
            Err(e) => {
                assert_eq!(e, Error::PutAfterFreeze { lvar: "PNCounter" });
                assert_eq!(frozen.value(), -1);
            }
        }
        lvars::sched::loom_exports::flush_deferred();
    });
}
