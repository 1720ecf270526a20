//! An atomic maximum with threshold waits.
//!
//! # State
//!
//! One `AtomicU64`: the low 63 bits hold the maximum so far, the top bit is
//! the frozen flag. A put is a CAS loop that only ever raises the value; a
//! freeze sets the top bit on the same word, so puts and freeze are totally
//! ordered exactly as for the generic LVar (see `lvar/core.rs`).

use std::future::Future;

use crate::error::Error;
use crate::lvar::wait::{WaitFuture, Waitable};
use crate::lvar::waiters::WaiterList;
use crate::sync::{fence, AtomicU64, Ordering::*};

const FROZEN: u64 = 1 << 63;

/// The largest value a [`RawMaxCounter`] can hold.
pub const MAX_COUNTER_LIMIT: u64 = FROZEN - 1;

/// A monotonically increasing counter (the max lattice over `u64`) without
/// a session.
pub struct RawMaxCounter {
    state: AtomicU64,
    waiters: WaiterList<u64>,
}

impl Default for RawMaxCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl RawMaxCounter {
    /// A counter at 0.
    pub fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
            waiters: WaiterList::new(),
        }
    }

    /// Raises the counter to at least `n`. Values above
    /// [`MAX_COUNTER_LIMIT`] are `OutOfRange`; a put that would raise a
    /// frozen counter is `PutAfterFreeze`.
    pub fn put(&self, n: u64) -> Result<(), Error> {
        if n > MAX_COUNTER_LIMIT {
            return Err(Error::OutOfRange { lvar: "MaxCounter" });
        }
        let mut cur = self.state.load(SeqCst);
        loop {
            if n <= cur & !FROZEN {
                return Ok(());
            }
            if cur & FROZEN != 0 {
                return Err(Error::PutAfterFreeze { lvar: "MaxCounter" });
            }
            match self.state.compare_exchange_weak(cur, n, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        fence(SeqCst);
        Waitable::wake_satisfied(&self);
        Ok(())
    }

    /// Waits until the counter is at least `n`.
    pub fn wait_at_least(&self, n: u64) -> impl Future<Output = ()> + Send + '_ {
        WaitFuture::new(self, n)
    }

    /// Freezes the counter and returns its exact value.
    pub fn freeze(&self) -> u64 {
        self.state.fetch_or(FROZEN, SeqCst) & !FROZEN
    }

    /// Whether the counter is frozen.
    pub fn is_frozen(&self) -> bool {
        self.state.load(SeqCst) & FROZEN != 0
    }
}

impl Waitable for &RawMaxCounter {
    type Query = u64;
    type Output = ();

    fn waiters(&self) -> &WaiterList<u64> {
        &self.waiters
    }

    fn check(&self, n: &u64) -> Option<()> {
        (self.state.load(SeqCst) & !FROZEN >= *n).then_some(())
    }
}
