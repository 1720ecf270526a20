//! Task groups: the barrier, failure and cancellation domain of a session.
//!
//! # Counting
//!
//! Completion is counted as a tree, Cilk-style, so that forks never touch
//! a shared cache line: every task has a `pending` count (1 for its own
//! future + 1 per child whose subtree is unfinished) and hands its "done" to
//! its parent when that reaches zero. The roots of those trees are counted
//! in per-thread stripes (`detached.rs`): detached tasks (handler
//! callbacks, memo computations: nobody awaits them, and a finished task is
//! freed at once instead of waiting for the detached tasks it spawned) and
//! forks made outside any task of the group (the session's root, forks
//! from stolen `join` closures or scoped threads). The group itself only
//! records whether the owner has released its set-up hold (`released`,
//! set once by [`TaskGroup::wait`]). The group is finished when the hold is
//! released and every task counted in the stripes has finished with its
//! tree.
//!
//! # Parked tasks, deadlock and cancellation
//!
//! A task registers here the first time it parks and deregisters when it
//! completes, so at any moment every parked task is in `parked`. When the
//! pool goes idle while the group still has pending tasks, the detector in
//! `registry.rs` calls [`TaskGroup::report_stuck`]; the owner then cancels
//! every parked task (drops its future), which frees everything the tasks
//! held and lets the count reach zero. The same happens after a panic or a
//! recorded error: the group is marked cancelled, queued tasks are dropped
//! instead of polled, tasks that would park cancel themselves, and whatever
//! slipped through is cancelled once the pool is idle.

use std::any::Any;
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::detached::DetachedCount;
use super::latch::Owner;
use super::registry::{Registry, WorkerThread};
use super::task::{self, Header};
use crate::striped::thread_stripe;
use crate::sync::{lock, AtomicBool, Mutex, Ordering::*};

/// Marker for "not in the parked registry".
pub(crate) const NOT_PARKED: usize = usize::MAX;

/// How a group ended when its owner stopped waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupEnd {
    /// Every task finished on its own.
    Completed,
    /// The pool went idle with this many tasks parked (deadlock); they were
    /// cancelled.
    Deadlocked { parked: usize },
}

pub(crate) struct TaskGroup {
    registry: Arc<Registry>,
    /// The owner's set-up hold is released (no task can be started by the
    /// owner any more; see `detached.rs`).
    released: CachePadded<AtomicBool>,
    detached: DetachedCount,
    stuck: AtomicBool,
    cancelled: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    parked: Mutex<Vec<*const Header>>,
    owner: Owner,
}

// SAFETY: the raw task pointers in `parked` each hold a reference count on
// their task and are only used under the lock or after being taken out.
unsafe impl Send for TaskGroup {}
// SAFETY: as above.
unsafe impl Sync for TaskGroup {}

impl TaskGroup {
    /// A group owned by the current thread.
    pub(crate) fn new(registry: Arc<Registry>) -> Self {
        let owner = Owner::current(&registry);
        Self {
            registry,
            released: CachePadded::new(AtomicBool::new(false)),
            detached: DetachedCount::new(),
            stuck: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            panic: Mutex::new(None),
            parked: Mutex::new(Vec::new()),
            owner,
        }
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Releases the owner's set-up hold (once, from `wait`, on the owner's
    /// thread, which then checks for the end itself). A `SeqCst` RMW: the
    /// owner's half of the Dekker pair with the last finisher
    /// (`detached.rs`, "no missed end").
    fn release_setup_hold(&self) {
        self.released.swap(true, SeqCst);
    }

    /// Counts a detached task of this group, before it can run.
    /// Returns the stripe it was counted on, for its finish.
    #[inline]
    pub(crate) fn add_detached(&self) -> u32 {
        let stripe = thread_stripe();
        self.detached.start(stripe);
        stripe as u32
    }

    /// A detached task's subtree finished; `stripe` is what `add_detached`
    /// returned for it (`detached.rs`: the group may be freed as soon as
    /// this returns, and is not touched afterwards).
    #[inline]
    pub(crate) fn finish_detached(&self, stripe: u32) {
        self.detached.finish(
            stripe as usize,
            || self.released.load(SeqCst),
            || {
                let owner = self.owner.clone();
                move || owner.wake()
            },
        );
    }

    /// Every task, attached or detached, has finished.
    fn all_done(&self) -> bool {
        self.released.load(SeqCst) && self.detached.all_finished()
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Acquire)
    }

    /// Stops the group: queued tasks are dropped instead of polled.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, SeqCst);
    }

    /// Records a task's panic (the first one wins) and cancels the group.
    pub(crate) fn record_panic(&self, payload: Box<dyn Any + Send>) {
        let mut slot = lock(&self.panic);
        if slot.is_none() {
            *slot = Some(payload);
        }
        drop(slot);
        self.cancel();
    }

    pub(crate) fn take_panic(&self) -> Option<Box<dyn Any + Send>> {
        lock(&self.panic).take()
    }

    /// Called by the deadlock detector, under the registry's idle lock.
    pub(crate) fn report_stuck(&self) {
        if self.all_done() {
            return;
        }
        self.stuck.store(true, SeqCst);
        self.owner.clone().wake();
    }

    pub(crate) fn register_parked(&self, task: *const Header) {
        let mut parked = lock(&self.parked);
        // SAFETY: the caller runs `task` (holds RUNNING), so it is alive.
        unsafe { task::acquire(task) };
        // SAFETY: as above; `park_slot` is only written under this lock.
        unsafe { (*task).park_slot.store(parked.len(), Relaxed) };
        parked.push(task);
    }

    pub(crate) fn deregister_parked(&self, task: *const Header) {
        let mut parked = lock(&self.parked);
        // SAFETY: the caller is completing `task`, so it is alive.
        let slot = unsafe { (*task).park_slot.load(Relaxed) };
        if slot == NOT_PARKED {
            return;
        }
        // `park_slot` is only written under this lock (also when
        // `cancel_parked` takes the entries), so a set slot indexes `task`.
        debug_assert!(parked.get(slot).is_some_and(|&t| std::ptr::eq(t, task)));
        parked.swap_remove(slot);
        if let Some(&moved) = parked.get(slot) {
            // SAFETY: entries of `parked` hold a reference.
            unsafe { (*moved).park_slot.store(slot, Relaxed) };
        }
        // SAFETY: as above.
        unsafe { (*task).park_slot.store(NOT_PARKED, Relaxed) };
        drop(parked);
        // SAFETY: drops the registry's reference; the completing caller
        // still holds one, so this never frees the task.
        unsafe { task::release(task) };
    }

    /// Cancels every task currently parked. Returns how many there were.
    fn cancel_parked(&self) -> usize {
        // Take the entries and clear their slots in one critical section:
        // a task woken (from outside) in between that completes must find
        // its slot cleared, or it would remove an entry of the new list and
        // release a reference that is ours now.
        let taken = {
            let mut parked = lock(&self.parked);
            for &t in parked.iter() {
                // SAFETY: each entry holds a reference; `park_slot` is only
                // written under this lock.
                unsafe { (*t).park_slot.store(NOT_PARKED, Relaxed) };
            }
            std::mem::take(&mut *parked)
        };
        let n = taken.len();
        for t in taken {
            // SAFETY: we own one reference per entry.
            unsafe {
                task::cancel_if_idle(t);
                task::release(t);
            }
        }
        n
    }

    /// Releases the owner's set-up hold and waits until every task of the
    /// group has finished, cancelling parked tasks whenever the pool reports
    /// the group stuck. Call once, on the owner's thread.
    pub(crate) fn wait(&self) -> GroupEnd {
        // A worker that waits here while polling a task of another group
        // keeps that group "running" for the detector (until the end of
        // this function: the guard is dropped last).
        let _outer = WorkerThread::current()
            .filter(|w| std::ptr::eq(w.registry(), &*self.registry))
            .and_then(|w| w.block_current_group());
        // Release the set-up hold, then become visible to the detector.
        self.release_setup_hold();
        self.registry.begin_wait(self);
        let mut end = GroupEnd::Completed;
        loop {
            self.owner.wait_until(|| self.all_done() || self.stuck.load(SeqCst));
            if self.all_done() {
                break;
            }
            self.stuck.store(false, SeqCst);
            self.cancel();
            let parked = self.cancel_parked();
            if end == GroupEnd::Completed {
                end = GroupEnd::Deadlocked { parked };
            }
        }
        // A detached finisher may still be between its two steps (a few
        // instructions; it touches the group until then): wait it out.
        while self.detached.finisher_busy() {
            std::hint::spin_loop();
            std::thread::yield_now();
        }
        self.registry.end_wait(self);
        end
    }
}
