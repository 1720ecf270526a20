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

/// This thread's stripe, in `0..STRIPES`.
pub(crate) fn thread_stripe() -> usize {
    // Not part of any protocol (any stripe is correct): plain std atomics.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % STRIPES;
            s.set(i);
        }
        i
    })
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
        self.stripes[stripe].fetch_add(1, SeqCst) + 1
    }

    /// The sum of the stripes (see the module docs for when it is exact).
    pub(crate) fn sum(&self) -> usize {
        self.stripes.iter().map(|c| c.load(SeqCst)).sum()
    }
}
