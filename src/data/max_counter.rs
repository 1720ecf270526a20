//! An atomic maximum with threshold waits.
//!
//! The state and its protocol are `MonotoneWord`'s (`monotone_word.rs`):
//! a put raises the value to the maximum.

use std::future::Future;

use super::monotone_word::{MonotoneWord, LIMIT};
use crate::error::Error;

/// The largest value a [`RawMaxCounter`] can hold.
pub const MAX_COUNTER_LIMIT: u64 = LIMIT;

/// A monotonically increasing counter (the max lattice over `u64`) without
/// a session.
pub struct RawMaxCounter {
    word: MonotoneWord,
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
            word: MonotoneWord::new(),
        }
    }

    /// Raises the counter to at least `n`. Values above
    /// [`MAX_COUNTER_LIMIT`] are `OutOfRange`; a put that would raise a
    /// frozen counter is `PutAfterFreeze`.
    pub fn put(&self, n: u64) -> Result<(), Error> {
        if n > MAX_COUNTER_LIMIT {
            return Err(Error::OutOfRange { lvar: "MaxCounter" });
        }
        self.word.update("MaxCounter", |cur| Ok((n > cur).then_some(n)))
    }

    /// Waits until the counter is at least `n`.
    pub fn wait_at_least(&self, n: u64) -> impl Future<Output = ()> + Send + '_ {
        self.word.wait_at_least(n)
    }

    /// Freezes the counter and returns its exact value.
    pub fn freeze(&self) -> u64 {
        self.word.freeze()
    }

    /// Whether the counter is frozen.
    pub fn is_frozen(&self) -> bool {
        self.word.is_frozen()
    }
}
