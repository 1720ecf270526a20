//! The shared core of `RawMaxCounter` and `RawCounter`: a value that only
//! grows, in one atomic word, with threshold waits and freeze.
//!
//! # State
//!
//! One `AtomicU64`: the low 63 bits hold the value, the top bit is the
//! frozen flag. An update is a `SeqCst` CAS loop that only ever raises the
//! value; a freeze sets the flag with one `fetch_or` on the same word.
//!
//! **Invariant (freeze vs update).** Updates and the freeze are
//! read-modify-writes of one word, so they are totally ordered: an update
//! whose CAS comes first is in the value the freeze returns; one that comes
//! after sees the flag and fails with `PutAfterFreeze` (an update that would
//! change nothing still succeeds). Never silently lost.
//!
//! **Invariant (no lost wake-up).** A successful update publishes with its
//! `SeqCst` CAS, fences, then wakes every waiter whose threshold the
//! *current* value meets (`lvar/waiters.rs`), so a threshold reached only by
//! several updates together is found by the last of them. Modelled by
//! `loom_tests/freeze.rs`, `loom_tests/waiters.rs` and `loom_tests/counter.rs`.

use std::future::Future;

use crate::error::Error;
use crate::lvar::wait::{WaitFuture, Waitable};
use crate::lvar::waiters::WaiterList;
use crate::sync::{fence, AtomicU64, Ordering::SeqCst};

const FROZEN: u64 = 1 << 63;

/// The largest value the word can hold.
pub(crate) const LIMIT: u64 = FROZEN - 1;

pub(crate) struct MonotoneWord {
    state: AtomicU64,
    waiters: WaiterList<u64>,
}

impl MonotoneWord {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
            waiters: WaiterList::new(),
        }
    }

    /// Moves the value from `v` to `step(v)`: `Ok(None)` means no change
    /// (always allowed, even when frozen), `Ok(Some(next))` requires
    /// `v < next <= LIMIT`, `Err` is returned as is. `lvar` names the
    /// variable in a `PutAfterFreeze` error.
    pub(crate) fn update(
        &self,
        lvar: &'static str,
        step: impl Fn(u64) -> Result<Option<u64>, Error>,
    ) -> Result<(), Error> {
        let mut cur = self.state.load(SeqCst);
        loop {
            let Some(next) = step(cur & !FROZEN)? else {
                return Ok(());
            };
            debug_assert!(next > cur & !FROZEN && next <= LIMIT);
            if cur & FROZEN != 0 {
                return Err(Error::PutAfterFreeze { lvar });
            }
            match self.state.compare_exchange_weak(cur, next, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        fence(SeqCst);
        Waitable::wake_satisfied(&self);
        Ok(())
    }

    /// Waits until the value is at least `n`; never reveals the value.
    pub(crate) fn wait_at_least(&self, n: u64) -> impl Future<Output = ()> + Send + '_ {
        WaitFuture::new(self, n)
    }

    /// Freezes and returns the exact value.
    pub(crate) fn freeze(&self) -> u64 {
        self.state.fetch_or(FROZEN, SeqCst) & !FROZEN
    }

    pub(crate) fn is_frozen(&self) -> bool {
        self.state.load(SeqCst) & FROZEN != 0
    }
}

impl Waitable for &MonotoneWord {
    type Query = u64;
    type Output = ();

    fn waiters(&self) -> &WaiterList<u64> {
        &self.waiters
    }

    fn check(&self, n: &u64) -> Option<()> {
        (self.state.load(SeqCst) & !FROZEN >= *n).then_some(())
    }
}
