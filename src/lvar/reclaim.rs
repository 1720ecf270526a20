//! Memory reclamation for the lock-free LVar structures.
//!
//! Normal builds use crossbeam-epoch: a node unlinked (or a state replaced)
//! while other threads may still read it is destroyed only after every
//! thread that was pinned at that time has unpinned.
//!
//! Under `--cfg loom` the guard is a no-op and deferred destruction is
//! skipped (the memory is leaked for the rest of the model): loom then
//! explores the interleavings of *our* atomics, while the reclamation scheme
//! itself is crossbeam-epoch's, tested by that crate.

#[cfg(not(loom))]
pub(crate) use crossbeam_epoch::{pin, Guard};

#[cfg(loom)]
pub(crate) struct Guard(());

#[cfg(loom)]
pub(crate) fn pin() -> Guard {
    Guard(())
}

#[cfg(loom)]
impl Guard {
    /// Loom stand-in: never runs `f` (see the module docs).
    ///
    /// # Safety
    /// Same contract as crossbeam-epoch's `defer_unchecked`.
    pub(crate) unsafe fn defer_unchecked<F: FnOnce() -> R, R>(&self, f: F) {
        std::mem::forget(f);
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
