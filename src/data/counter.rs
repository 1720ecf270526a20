//! Bump counters: commutative, non-idempotent increments with threshold
//! waits (LVish's `Data.LVar.Counter`).
//!
//! # Why bumps are not puts
//!
//! A put joins its argument into the state, so putting the same value twice
//! is the same as putting it once. A bump *adds* its argument: bumping by 1
//! twice gives 2. The state is not a join of the arguments but the sum of
//! all bumps, and what makes it deterministic is that addition commutes:
//! every order of the same bumps reaches the same count, and the count only
//! grows, so "the count is at least `n`" is a threshold that, once true, is
//! true forever and in every schedule.
//!
//! Bumps and max-puts must never be mixed on one variable: `put(5)` then
//! `bump(1)` gives 6, `bump(1)` then `put(5)` gives 5. That is why they are
//! different types: a [`RawCounter`] has only [`bump`](RawCounter::bump),
//! a [`RawMaxCounter`](super::RawMaxCounter) only `put`.
//!
//! # State
//!
//! The state and its protocol are `MonotoneWord`'s (`monotone_word.rs`):
//! a bump raises the value by `n`. Bumps and the freeze are totally ordered
//! on one word, so the frozen count is exactly the sum of the bumps that
//! returned `Ok`; a threshold reached only by the sum of several bumps is
//! found by the last of them. Modelled by `loom_tests/counter.rs`.
//!
//! # Overflow is deterministic
//!
//! If the bumps of a session sum to more than [`COUNTER_LIMIT`], some bump
//! fails with `OutOfRange` in every schedule (were none to fail, the count
//! would be the whole sum); if they sum to at most the limit, no prefix of
//! them overflows and none fails. Which bump fails varies, but a session
//! reports the same error either way.

use std::future::Future;

use super::monotone_word::{MonotoneWord, LIMIT};
use crate::error::Error;

/// The largest count a [`RawCounter`] (or one side of a
/// [`RawPNCounter`](super::RawPNCounter)) can reach.
pub const COUNTER_LIMIT: u64 = LIMIT;

/// A bump counter without a session: commutative increments, threshold
/// waits, freeze.
///
/// ```
/// use lvars::data::RawCounter;
///
/// let c = RawCounter::new();
/// c.bump(2).unwrap();
/// c.bump(2).unwrap(); // not idempotent: the count is 4
/// assert_eq!(c.freeze(), 4);
/// assert!(c.bump(1).is_err()); // would change a frozen counter
/// assert!(c.bump(0).is_ok()); // changes nothing
/// ```
pub struct RawCounter {
    word: MonotoneWord,
}

impl Default for RawCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RawCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The count is not shown: reading it before freezing is not
        // deterministic.
        f.debug_struct("RawCounter").field("frozen", &self.is_frozen()).finish()
    }
}

impl RawCounter {
    /// A counter at 0.
    pub fn new() -> Self {
        Self {
            word: MonotoneWord::new(),
        }
    }

    /// Adds `n` to the count. Bumping a frozen counter by `n > 0` is
    /// `PutAfterFreeze`; a bump that would take the count past
    /// [`COUNTER_LIMIT`] is `OutOfRange` and changes nothing. Bumping by 0
    /// is always `Ok`.
    pub fn bump(&self, n: u64) -> Result<(), Error> {
        self.bump_as(n, "Counter")
    }

    /// [`bump`](Self::bump), reporting errors as coming from an LVar of
    /// kind `lvar`.
    pub(crate) fn bump_as(&self, n: u64, lvar: &'static str) -> Result<(), Error> {
        self.word.update(lvar, |cur| match n {
            0 => Ok(None),
            _ => match cur.checked_add(n) {
                Some(next) if next <= COUNTER_LIMIT => Ok(Some(next)),
                _ => Err(Error::OutOfRange { lvar }),
            },
        })
    }

    /// Waits until the count is at least `n`. Resolves to `()`: the count
    /// itself is never revealed before freezing.
    pub fn wait_at_least(&self, n: u64) -> impl Future<Output = ()> + Send + '_ {
        self.word.wait_at_least(n)
    }

    /// Freezes the counter and returns its exact count.
    pub fn freeze(&self) -> u64 {
        self.word.freeze()
    }

    /// Whether the counter is frozen.
    pub fn is_frozen(&self) -> bool {
        self.word.is_frozen()
    }
}
