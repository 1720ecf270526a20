//! Fixed-length arrays of single-assignment slots (LVish's
//! `Data.LVar.IStructure`).
//!
//! # State
//!
//! A boxed slice of [`RawIVar`]s, one per slot, each with its own value
//! word and its own waiter list (two words per slot, plus a box per filled
//! slot). A get of slot `i` parks on slot `i`'s list only, so a put to
//! another slot never scans or wakes it; a single shared list tagged with
//! slot indices would be one word per slot smaller but would make every
//! put scan every parked get of the whole array. Puts, gets and freezes of
//! one slot follow the IVar protocol and its invariants
//! (`data/ivar.rs`, modelled by `loom_tests/ivar.rs`); this module only
//! adds bounds checks and relabels errors as `"IStructure"`.
//!
//! **Invariant (freeze).** [`RawIStructure::freeze`] freezes the slots one
//! after another, in index order. A put into slot `i` either wins before
//! slot `i`'s freeze (and its value is in the frozen vector) or finds the
//! slot frozen and fails with `PutAfterFreeze` (unless the slot holds an
//! equal value). The frozen vector is not a snapshot of one instant, but it
//! misses only puts that failed, so a run that loses a put always reports
//! an error, which is all quasi-determinism asks.

use std::future::Future;

use super::ivar::RawIVar;
use crate::error::Error;
use crate::sync::{AtomicBool, Ordering::*};

const LVAR: &str = "IStructure";

/// A fixed-length array of single-assignment slots, without a session.
///
/// ```
/// use lvars::data::RawIStructure;
/// use lvars::Error;
///
/// let a = RawIStructure::new(3);
/// a.put(1, "b").unwrap();
/// assert_eq!(a.put(1, "b"), Ok(())); // equal value: no-op
/// assert_eq!(a.put(1, "x"), Err(Error::ConflictingPut { lvar: "IStructure" }));
/// assert_eq!(a.put(3, "d"), Err(Error::OutOfRange { lvar: "IStructure" }));
/// assert_eq!(a.freeze(), vec![None, Some(&"b"), None]);
/// ```
pub struct RawIStructure<T> {
    slots: Box<[RawIVar<T>]>,
    /// Set once a freeze has frozen every slot.
    frozen: AtomicBool,
}

impl<T> std::fmt::Debug for RawIStructure<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawIStructure").field("len", &self.slots.len()).finish()
    }
}

fn relabel(e: Error) -> Error {
    match e {
        Error::ConflictingPut { .. } => Error::ConflictingPut { lvar: LVAR },
        Error::PutAfterFreeze { .. } => Error::PutAfterFreeze { lvar: LVAR },
        other => other,
    }
}

impl<T: PartialEq + Send + Sync> RawIStructure<T> {
    /// An IStructure of `len` empty slots.
    pub fn new(len: usize) -> Self {
        Self {
            slots: (0..len).map(|_| RawIVar::new()).collect(),
            frozen: AtomicBool::new(false),
        }
    }

    /// The number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots at all.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn slot(&self, i: usize) -> Result<&RawIVar<T>, Error> {
        self.slots.get(i).ok_or(Error::OutOfRange { lvar: LVAR })
    }

    /// Sets slot `i`. An index `>= len()` is `OutOfRange`; a second put of
    /// an equal value is a no-op, a different value is `ConflictingPut`;
    /// a put into an empty slot of a frozen IStructure is `PutAfterFreeze`.
    pub fn put(&self, i: usize, value: T) -> Result<(), Error> {
        self.slot(i)?.put(value).map_err(relabel)
    }

    /// Waits for slot `i`. An index `>= len()` is `OutOfRange` at once
    /// (rather than a get that could never complete).
    pub fn get(&self, i: usize) -> Result<impl Future<Output = &T> + Send + '_, Error> {
        Ok(self.slot(i)?.get())
    }

    /// The value of slot `i` if it is already set (quasi-deterministic:
    /// the answer depends on timing). An index `>= len()` is `OutOfRange`.
    pub fn try_get(&self, i: usize) -> Result<Option<&T>, Error> {
        Ok(self.slot(i)?.try_get())
    }

    /// Freezes every slot and returns the values, `None` for empty slots.
    pub fn freeze(&self) -> Vec<Option<&T>> {
        let values = self.slots.iter().map(RawIVar::freeze).collect();
        self.frozen.store(true, SeqCst);
        values
    }

    /// Whether a freeze has frozen every slot.
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(SeqCst)
    }
}
