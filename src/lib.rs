#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod lattice;
pub mod sched;
mod sync;

pub use sched::{join, par_for, par_for_grain, yield_now, JoinHandle, ThreadPool, ThreadPoolBuilder};
