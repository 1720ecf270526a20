//! Increment/decrement counters (the PN-Counter of the CRDT literature,
//! LVish's `Data.LVar.PNCounter`).
//!
//! # State
//!
//! Two independent [`RawCounter`]s: the sum of all increments and the sum
//! of all decrements. Each only grows, so the state is the pair, ordered
//! componentwise, and each side keeps the bump protocol and its invariants
//! (see `data/counter.rs`).
//!
//! # Why the value is only available after freezing
//!
//! A threshold read on one side ("at least `n` increments") is
//! deterministic: once true it stays true, in every schedule. The value
//! `increments - decrements` is not monotone: it goes up with every
//! increment and down with every decrement, so a read of it (or a wait for
//! "value >= k") depends on how far each side had got at the moment of the
//! read, that is on the schedule. Running `increment(1)` and `decrement(1)`
//! in parallel, a reader could see -1, 0 or 1. Only the frozen pair, taken
//! when no more bumps can come, has one exact value: [`FrozenPN::value`].
//!
//! **Invariant (freeze).** [`RawPNCounter::freeze`] freezes the increment
//! side, then the decrement side. Each side includes exactly the bumps that
//! returned `Ok` on it (the counter invariant); a bump ordered after its
//! side's freeze returns `PutAfterFreeze`. So the frozen pair misses only
//! bumps that failed, and a run that loses a bump always reports an error:
//! the pair is not a snapshot of one instant, but quasi-determinism only
//! needs "same answer or an error".

use std::future::Future;

use super::counter::RawCounter;
use crate::error::Error;

const LVAR: &str = "PNCounter";

/// The exact state of a frozen PN-counter.
///
/// ```
/// use lvars::data::FrozenPN;
///
/// let f = FrozenPN { increments: 3, decrements: 5 };
/// assert_eq!(f.value(), -2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FrozenPN {
    /// The sum of all increments.
    pub increments: u64,
    /// The sum of all decrements.
    pub decrements: u64,
}

impl FrozenPN {
    /// `increments - decrements`. Both sides are below 2^63, so the
    /// difference always fits an `i128` (and an `i64` too, but `i128` makes
    /// that obvious).
    pub fn value(&self) -> i128 {
        i128::from(self.increments) - i128::from(self.decrements)
    }
}

/// A counter with increments and decrements, without a session: each side
/// is a bump counter with its own threshold waits; the difference is only
/// available from the frozen state.
///
/// ```
/// use lvars::data::RawPNCounter;
///
/// let c = RawPNCounter::new();
/// c.increment(2).unwrap();
/// c.decrement(5).unwrap();
/// let frozen = c.freeze();
/// assert_eq!((frozen.increments, frozen.decrements), (2, 5));
/// assert_eq!(frozen.value(), -3);
/// ```
#[derive(Default)]
pub struct RawPNCounter {
    increments: RawCounter,
    decrements: RawCounter,
}

impl std::fmt::Debug for RawPNCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawPNCounter")
            .field("frozen", &self.is_frozen())
            .finish()
    }
}

impl RawPNCounter {
    /// A counter with no increments and no decrements.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` to the increments. Errors as
    /// [`RawCounter::bump`](super::RawCounter::bump), labelled `"PNCounter"`.
    pub fn increment(&self, n: u64) -> Result<(), Error> {
        self.increments.bump_as(n, LVAR)
    }

    /// Adds `n` to the decrements. Errors as
    /// [`RawCounter::bump`](super::RawCounter::bump), labelled `"PNCounter"`.
    pub fn decrement(&self, n: u64) -> Result<(), Error> {
        self.decrements.bump_as(n, LVAR)
    }

    /// Waits until the increments sum to at least `n` (decrements do not
    /// count against it).
    pub fn wait_increments_at_least(&self, n: u64) -> impl Future<Output = ()> + Send + '_ {
        self.increments.wait_at_least(n)
    }

    /// Waits until the decrements sum to at least `n`.
    pub fn wait_decrements_at_least(&self, n: u64) -> impl Future<Output = ()> + Send + '_ {
        self.decrements.wait_at_least(n)
    }

    /// Freezes both sides and returns them.
    pub fn freeze(&self) -> FrozenPN {
        let increments = self.increments.freeze();
        let decrements = self.decrements.freeze();
        FrozenPN { increments, decrements }
    }

    /// Whether a freeze has frozen both sides.
    pub fn is_frozen(&self) -> bool {
        self.increments.is_frozen() && self.decrements.is_frozen()
    }
}
