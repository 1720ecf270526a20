//! Latches: one-shot "done" flags whose setter wakes the waiting thread.
//!
//! # Protocol
//!
//! The waiter polls [`Latch::probe`] while it helps with other work and, when
//! idle, sleeps through the pool's sleep protocol with `probe()` as one of
//! its reasons to wake (see `sleep.rs`). The setter stores the flag with
//! `SeqCst` and then wakes the owner. Because the waiter may return (and
//! free the latch) the moment it sees the flag, [`Latch::set`] copies
//! everything it needs to wake the owner *before* the store and never
//! touches the latch after it.

use crate::sync::{thread, AtomicBool, Ordering::SeqCst};

use super::registry::Registry;

/// A latch that can be set from any thread.
pub(crate) trait Latch {
    /// Whether the latch is set.
    fn probe(&self) -> bool;

    /// Sets the latch and wakes its owner.
    ///
    /// # Safety
    /// `this` must be valid on entry; it may be freed as soon as the flag is
    /// stored, so implementations must not touch it afterwards.
    unsafe fn set(this: *const Self);
}

/// Who waits for a latch, and how to wake them.
#[derive(Clone)]
pub(crate) enum Owner {
    /// A worker of `registry`, waiting while it runs other jobs.
    Worker { registry: *const Registry, index: usize },
    /// A thread outside the pool, parked.
    Thread(thread::Thread),
}

// SAFETY: the registry pointer is only dereferenced by threads of that
// registry's pool (which keep it alive), and `Thread` is Send + Sync.
unsafe impl Send for Owner {}
// SAFETY: as above.
unsafe impl Sync for Owner {}

impl Owner {
    /// The current thread as an owner: its worker identity if it is a
    /// worker of `registry`, otherwise its thread handle.
    pub(crate) fn current(registry: &Registry) -> Self {
        match super::registry::WorkerThread::current() {
            Some(w) if std::ptr::eq(w.registry(), registry) => Owner::Worker {
                registry,
                index: w.index(),
            },
            _ => Owner::Thread(thread::current()),
        }
    }

    /// Wakes the owner after the condition it waits for became true.
    pub(crate) fn wake(self) {
        match self {
            // SAFETY: a worker owner is woken only by threads of the same
            // pool, which keep the registry alive.
            Owner::Worker { registry, index } => unsafe {
                (*registry).sleep().wake_specific(index);
            },
            Owner::Thread(t) => t.unpark(),
        }
    }

    /// Blocks until `cond` holds: a worker keeps running other jobs, a
    /// foreign thread parks. `cond` must read with `SeqCst` (it takes part
    /// in the sleep protocol's Dekker pair).
    pub(crate) fn wait_until(&self, cond: impl Fn() -> bool) {
        match self {
            Owner::Worker { .. } => {
                let w = super::registry::WorkerThread::current().expect("worker owner off its thread");
                w.wait_until(cond);
            }
            Owner::Thread(_) => {
                // A worker of another pool waiting here as a plain thread
                // hides no work meanwhile: no held element (`deferred.rs`,
                // invariant 2), no private job (`registry.rs`, invariant 2).
                if let Some(w) = super::registry::WorkerThread::current() {
                    w.release_and_publish();
                }
                while !cond() {
                    thread::park();
                }
            }
        }
    }
}

/// The latch of `join`: its owner is always a worker, so it holds no
/// thread handle and needs no drop glue.
pub(crate) struct WorkerLatch {
    set: AtomicBool,
    registry: *const Registry,
    index: usize,
}

impl WorkerLatch {
    pub(crate) fn new(registry: &Registry, index: usize) -> Self {
        Self {
            set: AtomicBool::new(false),
            registry,
            index,
        }
    }
}

impl Latch for WorkerLatch {
    #[inline]
    fn probe(&self) -> bool {
        self.set.load(SeqCst)
    }

    unsafe fn set(this: *const Self) {
        // SAFETY: valid on entry; copy what we need before the store.
        let (registry, index) = unsafe { ((*this).registry, (*this).index) };
        // SAFETY: still valid until this store makes the waiter return.
        unsafe { (*this).set.store(true, SeqCst) };
        // SAFETY: the setter is a worker of the same pool, which keeps the
        // registry alive.
        unsafe { (*registry).sleep().wake_specific(index) };
    }
}

/// The general latch: a flag and its owner.
pub(crate) struct OwnedLatch {
    set: AtomicBool,
    owner: Owner,
}

impl OwnedLatch {
    pub(crate) fn new(owner: Owner) -> Self {
        Self {
            set: AtomicBool::new(false),
            owner,
        }
    }

    pub(crate) fn owner(&self) -> &Owner {
        &self.owner
    }
}

impl Latch for OwnedLatch {
    #[inline]
    fn probe(&self) -> bool {
        self.set.load(SeqCst)
    }

    unsafe fn set(this: *const Self) {
        // SAFETY: valid on entry (caller contract); copy the owner first.
        let owner = unsafe { (*this).owner.clone() };
        // SAFETY: still valid until this store makes the waiter return.
        unsafe { (*this).set.store(true, SeqCst) };
        owner.wake();
    }
}
