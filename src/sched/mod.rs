//! The work-stealing scheduler. It knows nothing of LVars: it runs
//! closures (`join`, `par_for`) and futures (tasks grouped by
//! `TaskGroup`, in `group.rs`), and wakes tasks through ordinary
//! `std::task::Waker`s.
//!
//! Modules, from the bottom up: `sleep` (idle workers, no lost wake-ups),
//! `job` and `latch` (units of work, completion flags), `registry` (queues,
//! worker loop, deadlock detection), `join`, `par_for`, `task` (futures)
//! with `task_cache` (each worker's freed task blocks) and `deferred`
//! (work a running task holds back on its worker),
//! `group` (barrier, failure and cancellation of a session's tasks) with
//! `detached` (its count of detached tasks), `pool`.

pub(crate) mod chaos;
pub(crate) mod deferred;
pub(crate) mod detached;
pub(crate) mod group;
pub(crate) mod job;
pub(crate) mod join;
pub(crate) mod latch;
pub(crate) mod par_for;
pub(crate) mod pool;
pub(crate) mod registry;
pub(crate) mod sleep;

/// Internals exposed to the loom models in `loom_tests/` only.
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_exports {
    pub use super::detached::DetachedCount;
    pub use super::sleep::Sleep;
    pub use crate::lvar::reclaim::flush_deferred;
    pub use crate::par::handlers::PoolState;
}
pub(crate) mod task;
pub(crate) mod task_cache;

pub use join::join;
pub use par_for::{par_for, par_for_grain};
pub use pool::{BuildError, ThreadPool, ThreadPoolBuilder};
pub use task::{yield_now, JoinHandle};
