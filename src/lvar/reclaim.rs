//! Memory reclamation for the lock-free LVar structures.
//!
//! Normal builds use crossbeam-epoch: a node unlinked (or a state replaced)
//! while other threads may still read it is destroyed only after every
//! thread that was pinned at that time has unpinned.
//!
//! Under `--cfg loom` the guard is a no-op and deferred destruction is
//! queued until the model calls [`flush_deferred`] after joining every
//! thread (the moment no thread can hold a pointer any more, which is what
//! the epoch guarantees in normal builds): loom explores the interleavings
//! of *our* atomics, while the reclamation scheme itself is
//! crossbeam-epoch's, tested by that crate.

#[cfg(not(loom))]
pub(crate) use crossbeam_epoch::{pin, Guard};

#[cfg(loom)]
pub(crate) struct Guard(());

#[cfg(loom)]
pub(crate) fn pin() -> Guard {
    Guard(())
}

#[cfg(loom)]
thread_local! {
    // Loom runs all model threads on one OS thread, so one queue serves all.
    static DEFERRED: std::cell::RefCell<Vec<Box<dyn FnOnce()>>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(loom)]
impl Guard {
    /// Loom stand-in: queues `f` until [`flush_deferred`].
    ///
    /// # Safety
    /// Same contract as crossbeam-epoch's `defer_unchecked`.
    pub(crate) unsafe fn defer_unchecked<F: FnOnce() -> R, R>(&self, f: F) {
        let f: Box<dyn FnOnce() + '_> = Box::new(move || drop(f()));
        // SAFETY: the closure is run by `flush_deferred`, which the model
        // calls before anything it refers to is gone.
        let f: Box<dyn FnOnce()> = unsafe { std::mem::transmute(f) };
        DEFERRED.with(|d| d.borrow_mut().push(f));
    }
}

/// Runs the destruction deferred during a loom model. Call it after every
/// model thread has been joined.
#[cfg(loom)]
pub fn flush_deferred() {
    let fs = DEFERRED.with(|d| std::mem::take(&mut *d.borrow_mut()));
    for f in fs {
        f();
    }
}

/// A `Guard` for code that has exclusive access (e.g. in `Drop`).
#[cfg(not(loom))]
pub(crate) fn exclusive() -> &'static Guard {
    // SAFETY: only used where no other thread can reach the structure, so
    // deferred functions may run at once.
    unsafe { crossbeam_epoch::unprotected() }
}

#[cfg(loom)]
pub(crate) fn exclusive() -> &'static Guard {
    static G: Guard = Guard(());
    &G
}
