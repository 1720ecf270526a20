//! LVar data structures built on the core, without sessions. The
//! session-level handles in [`crate::par`] wrap them.

mod ivar;
mod max_counter;

pub use ivar::RawIVar;
pub use max_counter::{RawMaxCounter, MAX_COUNTER_LIMIT};
