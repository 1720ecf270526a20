//! An exact count spread over cache lines.
//!
//! The grow-only structures count their elements exactly (for `wait_size`
//! and freezing), handler pools their callbacks (for quiescence) and task
//! groups their detached tasks (`sched/detached.rs`), without one contended
//! counter: each thread increments its own stripe (assigned round-robin on
//! first use) and readers sum the stripes.
//!
//! **Why a threshold read of the sum is sound.** Every stripe only grows.
//! A reader that loads the stripes one after the other gets, for each, a
//! value between the stripe's value when the read started and when it
//! ended, so the sum is at most the true total at the end of the read. If
//! it is at least `n`, the total really reached `n` (and, growing, stays
//! there); if it is smaller, the waiter is registered before the re-check
//! and woken by a later increment (see `lvar/waiters.rs`).

use std::cell::Cell;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicUsize, Ordering::SeqCst};

/// Number of stripes (threads are spread over them round-robin).
#[cfg(not(loom))]
pub(crate) const STRIPES: usize = 16;
#[cfg(loom)]
pub(crate) const STRIPES: usize = 2;

/// Stripes handed out so far (the first `min(NEXT, STRIPES)` are in use).
static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// This thread's stripe, in `0..STRIPES`.
pub(crate) fn thread_stripe() -> usize {
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            // SeqCst: part of the argument of `stripes_in_use`.
            i = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % STRIPES;
            s.set(i);
        }
        i
    })
}

/// How many stripes a sum has to read: those handed out so far.
///
/// **Why skipping the others is sound.** A thread takes its stripe with a
/// `SeqCst` RMW on `NEXT` before its first (`SeqCst`) increment of it. A
/// reader that loads `NEXT` (`SeqCst`) and gets `k` precedes, in the single
/// total order, the RMW that handed out any stripe `j >= k`, so every
/// increment of such a stripe comes after this load: the stripe read as
/// zero at that moment, and everything said in the module doc about a read
/// "between the start and the end" of the sum still holds. The waiter
/// protocols keep their Dekker pairs too: an increment the load precedes is
/// followed by its writer's scan of the waiters, which then sees a waiter
/// that registered before the load. A process with a few threads sums a
/// few stripes instead of sixteen. Loom models pick stripes by hand: there
/// every stripe is read.
#[inline]
pub(crate) fn stripes_in_use() -> usize {
    #[cfg(loom)]
    {
        STRIPES
    }
    #[cfg(not(loom))]
    {
        NEXT.load(SeqCst).min(STRIPES)
    }
}

/// A monotone count, one cache line per stripe.
pub(crate) struct StripedCount {
    stripes: [CachePadded<AtomicUsize>; STRIPES],
}

impl StripedCount {
    pub(crate) fn new() -> Self {
        Self {
            stripes: std::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0))),
        }
    }

    /// Adds one on `stripe` (`SeqCst`: it takes part in the waiter
    /// protocol) and returns that stripe's new value.
    pub(crate) fn increment(&self, stripe: usize) -> usize {
        self.stripes[stripe].fetch_add(1, SeqCst).wrapping_add(1)
    }

    /// The sum of the stripes (see the module docs for when it is exact).
    pub(crate) fn sum(&self) -> usize {
        // Wrapping: a stripe's count wraps with `usize`, and so does the sum.
        self.stripes[..stripes_in_use()]
            .iter()
            .fold(0usize, |sum, c| sum.wrapping_add(c.load(SeqCst)))
    }
}
