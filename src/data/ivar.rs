//! Single-assignment variables.
//!
//! # State
//!
//! One `AtomicPtr`: null while empty, then a box holding the value, written
//! once by a `SeqCst` CAS from null and never replaced until the variable is
//! dropped, so readers need no epoch protection. The low bit is the frozen
//! flag, set by a CAS on the same word.
//!
//! **Invariant.** Among concurrent puts exactly one CAS from null wins;
//! every other put compares its value with the winner's: equal is a
//! no-op, different is `ConflictingPut`. A put racing a freeze either wins
//! before it (and is in the frozen value) or sees the flag and fails with
//! `PutAfterFreeze` (unless it is equal to the frozen value). Modelled by
//! `loom_tests/ivar.rs`.

use std::future::Future;
use std::ptr;

use crate::error::Error;
use crate::lvar::frozen_ptr::{self, is_frozen, strip};
use crate::lvar::wait::{WaitFuture, Waitable};
use crate::lvar::waiters::WaiterList;
use crate::sync::{fence, AtomicPtr, Ordering::*};

#[repr(align(2))]
struct Slot<T>(T);

/// A single-assignment variable without a session.
pub struct RawIVar<T> {
    state: AtomicPtr<Slot<T>>,
    waiters: WaiterList<()>,
}

// SAFETY: the value is shared by reference between threads (T: Send + Sync).
unsafe impl<T: Send + Sync> Send for RawIVar<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for RawIVar<T> {}

impl<T: PartialEq + Send + Sync> Default for RawIVar<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: PartialEq + Send + Sync> RawIVar<T> {
    /// An empty IVar.
    pub fn new() -> Self {
        Self {
            state: AtomicPtr::new(ptr::null_mut()),
            waiters: WaiterList::new(),
        }
    }

    fn value(&self) -> Option<&T> {
        let p = strip(self.state.load(SeqCst));
        // SAFETY: a published slot is never freed or replaced before `self`
        // is dropped.
        unsafe { p.as_ref() }.map(|s| &s.0)
    }

    /// Sets the value. A second put of an equal value is a no-op; a
    /// different value is `ConflictingPut`; any put into a frozen empty
    /// IVar is `PutAfterFreeze`.
    pub fn put(&self, value: T) -> Result<(), Error> {
        if let Some(existing) = self.value() {
            return Self::compare(existing, &value);
        }
        let slot = Box::into_raw(Box::new(Slot(value)));
        loop {
            let cur = self.state.load(SeqCst);
            if !strip(cur).is_null() || is_frozen(cur) {
                // SAFETY: `slot` was never published.
                let Slot(value) = *unsafe { Box::from_raw(slot) };
                return match self.value() {
                    Some(existing) => Self::compare(existing, &value),
                    None => Err(Error::PutAfterFreeze { lvar: "IVar" }),
                };
            }
            if self.state.compare_exchange(cur, slot, SeqCst, SeqCst).is_ok() {
                break;
            }
        }
        fence(SeqCst);
        Waitable::wake_satisfied(&self);
        Ok(())
    }

    fn compare(existing: &T, value: &T) -> Result<(), Error> {
        if existing == value {
            Ok(())
        } else {
            Err(Error::ConflictingPut { lvar: "IVar" })
        }
    }

    /// Waits for the value.
    pub fn get(&self) -> impl Future<Output = &T> + Send + '_ {
        WaitFuture::new(self, ())
    }

    /// The value, if it is already set (quasi-deterministic: the answer
    /// depends on timing; sessions only expose it after freezing).
    pub fn try_get(&self) -> Option<&T> {
        self.value()
    }

    /// Freezes the IVar and returns its value, if any.
    pub fn freeze(&self) -> Option<&T> {
        frozen_ptr::freeze(&self.state);
        self.value()
    }

    /// Whether the IVar is frozen.
    pub fn is_frozen(&self) -> bool {
        is_frozen(self.state.load(SeqCst))
    }
}

impl<'a, T: PartialEq + Send + Sync> Waitable for &'a RawIVar<T> {
    type Query = ();
    type Output = &'a T;

    fn waiters(&self) -> &WaiterList<()> {
        &self.waiters
    }

    fn check(&self, _: &()) -> Option<&'a T> {
        RawIVar::value(self)
    }
}

impl<T> Drop for RawIVar<T> {
    fn drop(&mut self) {
        let p = strip(self.state.load(Relaxed));
        if !p.is_null() {
            // SAFETY: `&mut self`: the published slot is ours to free.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}
