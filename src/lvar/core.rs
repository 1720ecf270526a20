//! The generic LVar: any [`Lattice`] as a lock-free, freezable variable.
//!
//! # State
//!
//! The state is a boxed lattice value behind an `AtomicPtr`; the pointer's
//! low bit is the *frozen* flag. A put loads the state, joins a copy, and
//! installs the copy with one `SeqCst` CAS; the old box is retired through
//! crossbeam-epoch (readers may still look at it). Freeze sets the bit with
//! a CAS on the same word.
//!
//! **Invariant (freeze vs put).** Puts and freeze are CASes on one word, so
//! they are totally ordered: a put whose CAS precedes the freeze is in the
//! frozen value; a put after it sees the bit and fails with
//! `PutAfterFreeze` if it would change the state (a put that changes
//! nothing succeeds). A put is never silently lost. Modelled by
//! `loom_tests/freeze.rs`.
//!
//! **Top.** A put whose join would be top is refused with
//! `ConflictingPut` and the state is left unchanged; sessions record the
//! error and fail as a whole, so which put was refused never leaks.
//!
//! Gets follow the waiter protocol of [`super::waiters`].

use std::future::Future;
use std::ptr;

use super::frozen_ptr::{self, is_frozen, strip};
use super::reclaim::{self, Guard};
use super::threshold::ThresholdSet;
use super::wait::{WaitFuture, Waitable};
use super::waiters::WaiterList;
use crate::error::Error;
use crate::lattice::Lattice;
use crate::sync::{fence, AtomicPtr, Ordering::*};

// Boxes are aligned so the low pointer bit is free for the frozen flag.
#[repr(align(8))]
struct StateBox<L>(L);

/// A lattice variable without a session: the building block of the
/// session-level handles. Its gets are ordinary futures; puts and freeze
/// are lock-free.
///
/// States must not borrow (`L: 'static`): a replaced state is dropped
/// through the epoch, possibly after the variable and the borrowed data are
/// gone. This does not compile:
///
/// ```compile_fail
/// use lvars::lattice::Max;
/// use lvars::lvar::RawLVar;
///
/// let name = String::from("local");
/// let lv = RawLVar::new();
/// lv.put(&Max::new(name.as_str())).unwrap();
/// ```
pub struct RawLVar<L: Lattice> {
    state: AtomicPtr<StateBox<L>>,
    waiters: WaiterList<ThresholdSet<L>>,
}

// SAFETY: the state is shared by pointer between threads (L: Send + Sync),
// and retired boxes are dropped on whatever thread the epoch runs them.
unsafe impl<L: Lattice + Send + Sync> Send for RawLVar<L> {}
// SAFETY: as above.
unsafe impl<L: Lattice + Send + Sync> Sync for RawLVar<L> {}

impl<L: Lattice + Send + Sync + 'static> Default for RawLVar<L> {
    fn default() -> Self {
        Self::new()
    }
}

// `'static`: replaced states are dropped through the epoch, possibly after
// the variable itself is gone, so they must not borrow anything.
impl<L: Lattice + Send + Sync + 'static> RawLVar<L> {
    /// A new variable at bottom.
    pub fn new() -> Self {
        Self::with_state(L::bottom())
    }

    /// A new variable starting at `state`.
    pub fn with_state(state: L) -> Self {
        Self {
            state: AtomicPtr::new(Box::into_raw(Box::new(StateBox(state)))),
            waiters: WaiterList::new(),
        }
    }

    fn load<'g>(&self, _guard: &'g Guard) -> (&'g L, bool) {
        let p = self.state.load(SeqCst);
        // SAFETY: the box is alive while we are pinned (retired boxes are
        // freed through the epoch).
        (unsafe { &(*strip(p)).0 }, is_frozen(p))
    }

    /// Joins `value` into the state. Lock-free.
    ///
    /// Errors: `ConflictingPut` if the join would be top (the state is left
    /// as it was), `PutAfterFreeze` if the variable is frozen and the put
    /// would change it.
    pub fn put(&self, value: &L) -> Result<(), Error> {
        // The guard keeps the boxes we read alive until this scope ends.
        {
            let guard = reclaim::pin();
            let mut cur = self.state.load(SeqCst);
            loop {
                // SAFETY: pinned, see `load`.
                let current = unsafe { &(*strip(cur)).0 };
                if value.leq(current) {
                    return Ok(()); // changes nothing: fine even after freeze
                }
                let mut next = current.clone();
                next.join_assign(value);
                if next.is_top() {
                    return Err(Error::ConflictingPut { lvar: "LVar" });
                }
                if is_frozen(cur) {
                    return Err(Error::PutAfterFreeze { lvar: "LVar" });
                }
                let new = Box::into_raw(Box::new(StateBox(next)));
                match self.state.compare_exchange(cur, new, SeqCst, SeqCst) {
                    Ok(_) => {
                        let old = cur as usize;
                        // SAFETY: `old` is unreachable from now on; readers that
                        // loaded it are pinned, so the epoch waits for them.
                        unsafe {
                            guard.defer_unchecked(move || drop(Box::from_raw(old as *mut StateBox<L>)));
                        }
                        break;
                    }
                    Err(actual) => {
                        // SAFETY: `new` was never published.
                        drop(unsafe { Box::from_raw(new) });
                        cur = actual;
                    }
                }
            }
        }
        fence(SeqCst);
        Waitable::wake_satisfied(&self);
        Ok(())
    }

    /// Freezes the variable and returns its exact state. Later puts that
    /// would change it fail with `PutAfterFreeze`.
    pub fn freeze(&self) -> L {
        let guard = reclaim::pin();
        frozen_ptr::freeze(&self.state);
        self.load(&guard).0.clone()
    }

    /// Whether the variable is frozen.
    pub fn is_frozen(&self) -> bool {
        is_frozen(self.state.load(SeqCst))
    }

    /// Waits until the state reaches one element of `thresholds` and
    /// resolves to that element (a clone), never to the exact state.
    pub fn get(&self, thresholds: ThresholdSet<L>) -> impl Future<Output = L> + Send + '_ {
        WaitFuture::new(self, thresholds)
    }

    /// Shorthand for a one-element threshold set: waits until the state is
    /// at or above `threshold` (an error only if `threshold` is top).
    pub fn get_at_least(&self, threshold: L) -> Result<impl Future<Output = L> + Send + '_, Error> {
        Ok(self.get(ThresholdSet::single(threshold)?))
    }
}

impl<L: Lattice + Send + Sync + 'static> Waitable for &RawLVar<L> {
    type Query = ThresholdSet<L>;
    type Output = L;

    fn waiters(&self) -> &WaiterList<ThresholdSet<L>> {
        &self.waiters
    }

    fn check(&self, thresholds: &ThresholdSet<L>) -> Option<L> {
        let guard = reclaim::pin();
        thresholds.reached_by(self.load(&guard).0).cloned()
    }
}

impl<L: Lattice> Drop for RawLVar<L> {
    fn drop(&mut self) {
        let p = strip(self.state.swap(ptr::null_mut(), Relaxed));
        if !p.is_null() {
            // SAFETY: `&mut self`: the current box is ours; earlier boxes
            // were handed to the epoch.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}
