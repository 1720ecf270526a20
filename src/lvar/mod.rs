//! The LVar core: lock-free state, threshold gets as ordinary futures,
//! crossbeam-epoch managed waiter lists, freeze.
//!
//! Nothing here knows about the scheduler: a get is a plain
//! `std::future::Future` that parks by handing its `Waker` to the
//! variable's waiter list, so it can be awaited on any executor.

mod core;
pub(crate) mod frozen_ptr;
pub(crate) mod reclaim;
mod threshold;
pub(crate) mod wait;
pub(crate) mod waiters;

pub use self::core::RawLVar;
pub use threshold::ThresholdSet;
