//! Work a running task holds back on its worker.
//!
//! A task that is about to finish may keep one piece of work it created
//! (a handler keeps the last element its callback delivered, see
//! `par/handlers.rs`) and run it itself, in the same allocation, once its
//! current work is done, instead of queueing a new task for it: no
//! allocation, no queue push and pop, no second header. The scheduler
//! knows nothing of what is held; it only knows how to *release* it (turn
//! it into an ordinary queued task) through the holder's [`Deferred`].
//!
//! **Invariant.** Held work is invisible to other workers, so it may only
//! exist while its worker runs the holder's own code directly:
//!
//! 1. A holder installs its `Deferred` only around its own poll
//!    ([`WorkerThread::install_deferred`]), which first releases any other
//!    one: a holder polled while another is installed runs nested inside
//!    that one's code, so the outer one's work is released before it can be
//!    held up behind the inner one.
//! 2. A worker releases the installed `Deferred` before it blocks
//!    ([`WorkerThread::wait_until`], and a worker waiting as a plain thread
//!    on another pool, see `latch.rs`). So a worker never sleeps or waits
//!    holding work, and deadlock detection, which sees only queues, misses
//!    none.
//! 3. A holder whose poll returns `Pending` releases its held work itself
//!    before returning: a parked task holds nothing.
//!
//! Not needed for the invariant, but for parallelism: a worker about to
//! run a forked child inline while another worker is hungry releases the
//! installed `Deferred` too (`JoinHandle::poll` in `task.rs`), since the
//! child may run long.
//!
//! Everything here happens on one thread (the `Deferred` lives in the
//! holder's poll frame and the pointer to it in the worker's state), so
//! there is no concurrent protocol to model.

use std::any::TypeId;

/// How to recognise and release work held by a running task.
pub(crate) struct Deferred {
    /// Who holds: code that adds work to a holder checks that the
    /// installed `Deferred` is the one it expects (same key, same type)
    /// before it casts `data`.
    pub(crate) key: *const (),
    pub(crate) type_id: TypeId,
    /// The holder's slot, as the holder's code understands it.
    pub(crate) data: *mut (),
    /// Queues whatever `data` holds as its own task and empties the slot.
    /// Runs no user code (it may run while the scheduler is mid-way
    /// through its own bookkeeping).
    pub(crate) release: unsafe fn(*mut ()),
}

/// Restores the previously installed `Deferred` (normally none) when the
/// holder's poll ends, also when it unwinds.
pub(crate) struct DeferredGuard<'a> {
    pub(super) slot: &'a std::cell::Cell<*const Deferred>,
    pub(super) previous: *const Deferred,
}

impl Drop for DeferredGuard<'_> {
    fn drop(&mut self) {
        self.slot.set(self.previous);
    }
}
