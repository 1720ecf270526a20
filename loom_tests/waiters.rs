//! The waiter protocol (`src/lvar/waiters.rs`): register then re-check vs
//! publish then scan. Every get completes (loom reports a deadlock if a
//! parked get is never woken) and sees the joined state.

use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;

use lvars::data::RawMaxCounter;
use lvars::lattice::Max;
use lvars::lvar::RawLVar;

#[test]
fn a_get_racing_a_put_is_always_woken() {
    loom::model(|| {
        let c = Arc::new(RawMaxCounter::new());
        let getter = {
            let c = c.clone();
            thread::spawn(move || block_on(c.wait_at_least(1)))
        };
        c.put(1).unwrap();
        getter.join().unwrap();
        lvars::sched::loom_exports::flush_deferred();
    });
}

#[test]
fn two_getters_one_put_both_resume() {
    loom::model(|| {
        let c = Arc::new(RawMaxCounter::new());
        let gs: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || block_on(c.wait_at_least(2)))
            })
            .collect();
        c.put(2).unwrap();
        for g in gs {
            g.join().unwrap();
        }
        lvars::sched::loom_exports::flush_deferred();
    });
}

#[test]
fn a_threshold_reached_only_by_the_join_of_two_puts_wakes_the_getter() {
    loom::model(|| {
        let lv: Arc<RawLVar<(Max<u8>, Max<u8>)>> = Arc::new(RawLVar::new());
        let getter = {
            let lv = lv.clone();
            thread::spawn(move || block_on(lv.get_at_least((Max::new(1), Max::new(1))).unwrap()))
        };
        let left = {
            let lv = lv.clone();
            thread::spawn(move || lv.put(&(Max::new(1), Max::default())).unwrap())
        };
        lv.put(&(Max::default(), Max::new(1))).unwrap();
        left.join().unwrap();
        assert_eq!(getter.join().unwrap(), (Max::new(1), Max::new(1)));
        lvars::sched::loom_exports::flush_deferred();
    });
}
