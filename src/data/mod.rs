//! LVar data structures built on the core, without sessions. The
//! session-level handles in [`crate::par`] wrap them.

mod counter;
mod imap;
mod iset;
mod istructure;
mod ivar;
mod max_counter;
mod monotone_word;
mod pn_counter;

pub use counter::{RawCounter, COUNTER_LIMIT};
pub(crate) use imap::EntryListener;
pub use imap::RawIMap;
pub(crate) use iset::Listener;
pub use iset::{DefaultHashBuilder, DenseKey, RawISet};
pub use istructure::RawIStructure;
pub use ivar::RawIVar;
pub use max_counter::{RawMaxCounter, MAX_COUNTER_LIMIT};
pub use pn_counter::{FrozenPN, RawPNCounter};
