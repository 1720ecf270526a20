//! One place that chooses between `std` and `loom` primitives.
//!
//! Every lock-free protocol in the crate takes its atomics, fences, thread
//! parking and `UnsafeCell` from here, so that building with
//! `RUSTFLAGS="--cfg loom"` lets the models in `loom_tests/` explore every
//! interleaving of the very code that ships.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize};

pub(crate) use std::sync::atomic::Ordering;

#[cfg(loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;

/// Thread parking: `park` blocks until a matching `unpark` (an `unpark`
/// that comes first makes the next `park` return at once).
pub(crate) mod thread {
    #[cfg(loom)]
    pub(crate) use loom::thread::{current, park, Thread};
    #[cfg(not(loom))]
    pub(crate) use std::thread::{current, park, Thread};
}

/// Lock a mutex, ignoring poisoning: the data behind our mutexes stays
/// consistent even if a panic unwound while it was held (every critical
/// section is a single push, pop or flag change).
pub(crate) fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    #[cfg(loom)]
    {
        m.lock().unwrap()
    }
    #[cfg(not(loom))]
    {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(loom)]
pub(crate) use loom::sync::MutexGuard;
#[cfg(not(loom))]
pub(crate) use std::sync::MutexGuard;
