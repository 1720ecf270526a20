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
//! (the roots of the attached trees: see `task.rs`, "Counting children"):
//! each thread adds its starts and finishes to its own stripe, and the
//! group is finished when its owner has released its set-up hold (the
//! group's `pending`, the "tree count" below, is zero) and the finished
//! total equals the started total.
//!
//! # Protocol
//!
//! A spawner adds one to its `started` stripe (`SeqCst` RMW) before the task
//! can run. A finisher adds one to its `finished` stripe together with one
//! `BUSY` unit (one `SeqCst` RMW), reads the tree count (`SeqCst`), and, if
//! that is zero, sums the stripes as the owner does; if they are equal it
//! copies the owner's wake handle. Then it removes its `BUSY` unit and, if
//! it copied the handle, wakes the owner. The owner waits until the
//! tree count is zero and the sums are equal, reading every `finished`
//! stripe first and the `started` stripes after them, then waits (spinning:
//! a finisher is a few instructions from clearing it) until no `BUSY` unit
//! is left before it frees the group.
//!
//! **Invariant (no early end).** Every task is counted in `started` before
//! it runs, so before it finishes; stripes only grow (wrapping aside). A
//! reader that sums `finished` (each stripe read before time `m`) and then
//! `started` (each read after `m`) gets `F <= F(m) <= S(m) <= S`; `F == S`
//! means that at `m` every started task had finished. A task is only
//! started by code of the group: the owner before it releases its hold, or
//! a task of the group that is running (its poll, or a closure it waits for
//! on another thread), and every such task is counted until its tree
//! finishes. With the hold released (read before the sums) and nothing
//! running at `m`, nothing can start a task any more, so the group is
//! finished for good. (The tree count must therefore never rise from zero:
//! a fork counted there by a detached task still running when the hold was
//! released made the owner read "done" and then "not done", found by
//! review; such forks are counted here now.)
//!
//! **Invariant (no missed end).** The last event is either the tree count
//! reaching zero (its finisher wakes the owner, who then reads sums that
//! include every detached finish before it) or a detached finish after it:
//! that finisher's RMW and the tree's decrement are both `SeqCst`, so
//! either the finisher reads zero or the tree's decrement comes later in
//! the total order and the owner, woken by it, reads the finisher's
//! increment (a Dekker pair). Of finishers that read zero, the last one's
//! RMW is last in the total order among the finishes, so its sums (read
//! after it) include every finish and every start: it sees them equal and
//! wakes the owner.
//!
//! **Invariant (no use after free).** A finisher touches the group only
//! while its `BUSY` unit is set, and the owner returns only after reading no
//! `BUSY` unit on any stripe *after* the sums said finished: a finisher
//! that had not yet added its unit then has nothing left to finish (its
//! task's finish is already counted or it would not be equal).
//!
//! Modelled by `loom_tests/detached.rs`.

use crossbeam_utils::CachePadded;

use crate::striped::{stripes_in_use, StripedCount, STRIPES};
use crate::sync::{AtomicU64, Ordering::SeqCst};

/// Low bits of a `finished` stripe: finishers in progress on it. The word
/// is 64 bits wide on every target, so the 48 bits of finishes above them
/// cover a 32-bit `usize` (compared modulo `usize`, like the starts); with
/// a 32-bit word, 16 bits of finishes wrapped after 65,536 (found by
/// review: the owner would then wait forever). On 64-bit targets they wrap
/// after 2^48 finishes on one stripe, where the starts would not: years of
/// callbacks at a billion a second, so not guarded against.
const BUSY_BITS: u32 = 16;
const BUSY: u64 = 1;
const FINISH: u64 = 1 << BUSY_BITS;
const BUSY_MASK: u64 = FINISH - 1;

/// The started and finished detached tasks of one group.
pub struct DetachedCount {
    started: StripedCount,
    /// Per stripe: finishes `<< BUSY_BITS`, plus finishers in progress.
    finished: [CachePadded<AtomicU64>; STRIPES],
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
            started: StripedCount::new(),
            finished: std::array::from_fn(|_| CachePadded::new(AtomicU64::new(0))),
        }
    }

    /// Counts a detached task before it can run.
    pub fn start(&self, stripe: usize) {
        self.started.increment(stripe);
    }

    /// Counts a detached task's end (the protocol above). `tree_done` reads
    /// the group's tree count; `owner` is called while the group is still
    /// alive to copy the owner's wake handle, which is then woken after the
    /// group may have been freed.
    pub fn finish<W: FnOnce()>(&self, stripe: usize, tree_done: impl FnOnce() -> bool, owner: impl FnOnce() -> W) {
        let word = &self.finished[stripe];
        word.fetch_add(FINISH + BUSY, SeqCst);
        dekker_fence();
        // Wake the owner only for the end itself: once the tree is done,
        // every finish would otherwise wake it (a system call each).
        let wake = (tree_done() && self.all_finished()).then(owner);
        // The last touch of the group: after this the owner may free it.
        word.fetch_sub(BUSY, SeqCst);
        if let Some(wake) = wake {
            wake();
        }
    }

    /// Whether every started task has finished (read `finished` first).
    pub fn all_finished(&self) -> bool {
        dekker_fence();
        let finished = self.finished[..stripes_in_use()].iter().fold(0usize, |sum, w| {
            sum.wrapping_add((w.load(SeqCst) >> BUSY_BITS) as usize)
        });
        finished == self.started.sum()
    }

    /// Whether some finisher is still between its two RMWs.
    pub fn finisher_busy(&self) -> bool {
        self.finished.iter().any(|w| w.load(SeqCst) & BUSY_MASK != 0)
    }
}

/// The fence between a finisher's increment and its read of the tree count,
/// and before the owner's read of the stripes. In normal builds it is
/// implied: those are `SeqCst` RMWs and loads, which are all in the single
/// total order (a finisher whose load misses the tree's decrement precedes
/// it, and so precedes the owner's later loads). Loom models `SeqCst`
/// accesses as acquire/release only, hence a real fence there.
#[inline]
fn dekker_fence() {
    #[cfg(loom)]
    crate::sync::fence(SeqCst);
}
