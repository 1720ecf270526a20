//! The frozen flag of single-pointer states (`RawLVar`, `RawIVar`): the low
//! bit of the state pointer, so that a put's CAS and a freeze act on one
//! word and are totally ordered (see `core.rs`). The pointees are aligned
//! to at least 2 bytes, so the bit is free.

use crate::sync::{AtomicPtr, Ordering::SeqCst};

const FROZEN: usize = 1;

/// The pointer without the flag.
pub(crate) fn strip<T>(p: *mut T) -> *mut T {
    (p as usize & !FROZEN) as *mut T
}

/// Whether the flag is set in `p`.
pub(crate) fn is_frozen<T>(p: *mut T) -> bool {
    p as usize & FROZEN != 0
}

/// Sets the flag on `state` (a CAS loop: `AtomicPtr` has no `fetch_or` in
/// loom) and returns the pointer it now holds, flag included.
pub(crate) fn freeze<T>(state: &AtomicPtr<T>) -> *mut T {
    let mut cur = state.load(SeqCst);
    while !is_frozen(cur) {
        let frozen = (cur as usize | FROZEN) as *mut T;
        match state.compare_exchange(cur, frozen, SeqCst, SeqCst) {
            Ok(_) => return frozen,
            Err(actual) => cur = actual,
        }
    }
    cur
}
