//! Freeze racing a put (`src/lvar/core.rs`, `src/data/max_counter.rs`):
//! the put is either in the frozen value or fails with `PutAfterFreeze`,
//! never silently lost.

use loom::sync::Arc;
use loom::thread;

use lvars::data::RawMaxCounter;
use lvars::lattice::SetUnion;
use lvars::lvar::RawLVar;
use lvars::Error;

#[test]
fn generic_lvar_put_vs_freeze() {
    loom::model(|| {
        let lv: Arc<RawLVar<SetUnion<u8>>> = Arc::new(RawLVar::new());
        lv.put(&SetUnion::singleton(1)).unwrap();
        let putter = {
            let lv = lv.clone();
            thread::spawn(move || lv.put(&SetUnion::singleton(2)))
        };
        let frozen = lv.freeze();
        let put = putter.join().unwrap();
        match put {
            Ok(()) => assert!(frozen.contains(&2), "a successful put must be in the frozen value"),
            Err(e) => {
                assert_eq!(e, Error::PutAfterFreeze { lvar: "LVar" });
                assert!(!frozen.contains(&2));
            }
        }
        assert!(frozen.contains(&1));
        // A put that changes nothing still succeeds after the freeze.
        assert_eq!(lv.put(&SetUnion::singleton(1)), Ok(()));
        lvars::sched::loom_exports::flush_deferred();
    });
}

#[test]
fn max_counter_put_vs_freeze() {
    loom::model(|| {
        let c = Arc::new(RawMaxCounter::new());
        let putter = {
            let c = c.clone();
            thread::spawn(move || c.put(5))
        };
        let frozen = c.freeze();
        match putter.join().unwrap() {
            Ok(()) => assert_eq!(frozen, 5),
            Err(e) => {
                assert_eq!(e, Error::PutAfterFreeze { lvar: "MaxCounter" });
                assert_eq!(frozen, 0);
            }
        }
        lvars::sched::loom_exports::flush_deferred();
    });
}
