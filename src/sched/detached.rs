//! Counting detached tasks (handler callbacks, memo computations) without a
//! parent and without a contended counter.
//!
//! An attached task hands its "subtree done" to the task it was forked
//! from, so a parent stays allocated until every child has finished. That
//! is right for forks (the parent usually awaits them) but wrong for
//! detached tasks: a handler callback spawned by the callback that inserted
//! its element would keep that callback, and so the whole chain of a
//! traversal, allocated until the end. Detached tasks are counted here
//! instead, per group, and so are forks made outside any task of the group
//! (the roots of the attached trees: see `task.rs`, "Counting children"),
//! and the group is finished when its owner has released its set-up hold
//! (the group's `released` flag, "the hold" below) and no counted task is
//! unfinished.
//!
//! # Protocol
//!
//! A two-level count in the spirit of SNZI (Ellen et al., "scalable
//! non-zero indicators"): the group only needs to know when the number of
//! unfinished tasks is zero, not the number itself.
//!
//! - Each stripe has a *leaf*: the tasks started on it (by a thread of that
//!   stripe) that have not finished. A task remembers its stripe (in its
//!   header) and its finish decrements that same leaf, wherever it runs.
//! - The *root* counts the leaves that are not zero, in its high bits
//!   (while no start or finish is between its two RMWs; the invariants
//!   below say what holds meanwhile), and the finishers in progress
//!   (`BUSY` units) in its low bits.
//! - `start`: increment the leaf (`SeqCst` RMW); if it was zero, add one to
//!   the root. Both before the task can run.
//! - `finish`: decrement the leaf; if that left it nonzero, done (no other
//!   access to the group). If it reached zero, take the leaf off the root
//!   *and* add a `BUSY` unit in one RMW; if the root's count reached zero,
//!   read the hold (`SeqCst`) and, if it is released, copy the owner's
//!   wake handle; then remove the `BUSY` unit and wake the owner.
//! - The owner releases its hold (a `SeqCst` RMW), then waits until the
//!   root's count is zero, then (spinning: a finisher is a few instructions from clearing
//!   it) until no `BUSY` unit is left, before it frees the group.
//!
//! A finish that does not empty its leaf, almost every one while work
//! remains, costs one RMW on a cache line its own thread usually owns; the
//! root is touched only when a stripe runs out of tasks or gets its first.
//! (The previous design summed every stripe's started and finished counts
//! at each finish once the tree was done: cache misses on the other
//! workers' stripes at every handler callback.)
//!
//! **Invariant (no early end).** Call a leaf's *share* of the root its
//! root increments done minus its root decrements done. A share is never
//! negative (a leaf goes from one to zero only after the task that took it
//! from zero to one has finished, and that task ran only after its
//! starter's root increment), and it is at least one while the leaf is
//! nonzero and its latest zero-to-one step has reached the root. So if the
//! root's count is zero, every nonzero leaf has a zero-to-one starter still
//! between its two RMWs. That starter is code of the group, which is
//! counted itself: the owner before it releases its hold (then the group
//! is not finished anyway), or a running task (or a closure such a task waits
//! for), counted, directly or as part of the tree of a counted task, on a
//! leaf that cannot reach zero while it runs. If that leaf is not in the
//! root either, its own zero-to-one starter began strictly earlier, and so
//! on: the chain ends at a leaf in the root or at the hold. (With threads
//! sharing a stripe, a task can run while its leaf is not yet in the root:
//! a second start on the leaf returns at once while the first is still
//! between its RMWs; hence the chain.) So whenever the hold is released
//! and the root's count is zero, no task is unfinished, and none can start
//! any more (only the group's own code starts tasks): the group is finished
//! for good.
//!
//! **Invariant (no missed end).** The last event is either the release of
//! the hold (the owner then reads the root itself) or a finish that takes
//! the root's count to zero after it: its RMW and the release are both
//! `SeqCst`, so either that finisher reads the hold released and wakes the
//! owner, or the release comes later in the total order and the owner then
//! reads the root's zero (a Dekker pair).
//!
//! **Invariant (no use after free).** A finisher touches the group after
//! its leaf RMW only when that emptied the leaf, and then only while its
//! `BUSY` unit is set (added by the same RMW that takes the leaf off the
//! root, so the root's count is still at least one until then). A finisher
//! whose leaf stays nonzero does not touch the group again; its RMW happens
//! before the group is freed through the leaf's later RMWs (so they must
//! be at least acquire-release), the finisher that empties the leaf, and
//! that one's root RMW. The owner returns only after reading no `BUSY` unit
//! after the root's count was zero.
//!
//! Modelled by `loom_tests/detached.rs`.

use crossbeam_utils::CachePadded;

use crate::striped::STRIPES;
use crate::sync::{AtomicU64, AtomicUsize, Ordering::SeqCst};

/// Low bits of the root: finishers in progress (at most 65,535 at once
/// per group). The root is 64 bits wide on every target; its high bits
/// count the leaves' shares (see above): at most `STRIPES` plus the
/// finishers in flight, since a leaf can empty and fill again before its
/// finisher's root RMW.
const BUSY_BITS: u32 = 16;
const BUSY: u64 = 1;
const LEAF: u64 = 1 << BUSY_BITS;
const BUSY_MASK: u64 = LEAF - 1;

/// The unfinished detached tasks of one group, as a nonzero indicator.
pub struct DetachedCount {
    /// Per stripe: tasks started on it and not finished.
    leaves: [CachePadded<AtomicUsize>; STRIPES],
    /// The leaves' shares `<< BUSY_BITS`, plus finishers in progress.
    root: CachePadded<AtomicU64>,
}

impl Default for DetachedCount {
    fn default() -> Self {
        Self::new()
    }
}

impl DetachedCount {
    /// No task started or finished.
    pub fn new() -> Self {
        Self {
            leaves: std::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0))),
            root: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// Counts a detached task on `stripe` (the caller's), before it can
    /// run. Its finish must name the same stripe.
    #[inline]
    pub fn start(&self, stripe: usize) {
        if self.leaves[stripe].fetch_add(1, SeqCst) == 0 {
            self.root.fetch_add(LEAF, SeqCst);
        }
    }

    /// Counts the end of a task started on `stripe` (the protocol above).
    /// `released` reads the group's hold; `owner` is called while
    /// the group is still alive to copy the owner's wake handle, which is
    /// then woken after the group may have been freed.
    #[inline]
    pub fn finish<W: FnOnce()>(&self, stripe: usize, released: impl FnOnce() -> bool, owner: impl FnOnce() -> W) {
        if self.leaves[stripe].fetch_sub(1, SeqCst) != 1 {
            // The leaf is still counted in the root: not the end, and the
            // group is not touched again.
            return;
        }
        self.leaf_emptied(released, owner);
    }

    #[cold]
    #[inline(never)]
    fn leaf_emptied<W: FnOnce()>(&self, released: impl FnOnce() -> bool, owner: impl FnOnce() -> W) {
        // Take the leaf off the root and add our BUSY unit, in one RMW.
        let prev = self.root.fetch_add(BUSY.wrapping_sub(LEAF), SeqCst);
        dekker_fence();
        // Wake the owner only for the end itself.
        let wake = (prev >> BUSY_BITS == 1 && released()).then(owner);
        // The last touch of the group: after this the owner may free it.
        self.root.fetch_sub(BUSY, SeqCst);
        if let Some(wake) = wake {
            wake();
        }
    }

    /// Whether every started task has finished (call after reading the
    /// hold released).
    pub fn all_finished(&self) -> bool {
        dekker_fence();
        self.root.load(SeqCst) >> BUSY_BITS == 0
    }

    /// Whether some finisher is still between its two RMWs on the root.
    pub fn finisher_busy(&self) -> bool {
        self.root.load(SeqCst) & BUSY_MASK != 0
    }
}

/// The fence between a finisher's root RMW and its read of the hold, and
/// before the owner's read of the root. In normal builds it is implied:
/// those are `SeqCst` RMWs and loads, which are all in the single total
/// order (a finisher whose load misses the release precedes it, and so
/// precedes the owner's later loads). Loom models `SeqCst`
/// accesses as acquire/release only, hence a real fence there.
#[inline]
fn dekker_fence() {
    #[cfg(loom)]
    crate::sync::fence(SeqCst);
}
