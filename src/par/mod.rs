//! Sessions, session-level LVar handles and freezing.
//!
//! A session is one parallel computation: [`run_par`] (deterministic),
//! [`run_par_quasi_det`] (may freeze), [`run_par_then_freeze`] (freezes the
//! result after the barrier). Every runner waits for all tasks the body
//! forked before it returns, reports failures as [`Error`](crate::Error)
//! values, re-raises panics, and leaves the pool usable.
//!
//! # What the types enforce
//!
//! An LVar cannot escape the session that made them (the runner quantifies
//! over the session's lifetime brand `'s`):
//!
//! ```compile_fail
//! let leaked = lvars::run_par(|p| Box::pin(async move { lvars::IVar::<u8>::new(p) }));
//! ```
//!
//! Nor can a deferred freeze (which keeps the variable alive) escape a
//! runner other than `run_par_then_freeze`:
//!
//! ```compile_fail
//! use lvars::Freeze;
//! let escaped = lvars::run_par(|p| Box::pin(async move { lvars::IVar::<u8>::new(p).then_freeze() }));
//! ```
//!
//! A deterministic session cannot freeze (its handle is `Par<'s, Det>`):
//!
//! ```compile_fail
//! let _ = lvars::run_par(|p| Box::pin(async move {
//!     let iv = lvars::IVar::<u8>::new(p);
//!     iv.freeze(&p).copied()
//! }));
//! ```
//!
//! The quasi-deterministic runner can:
//!
//! ```
//! let r = lvars::run_par_quasi_det(|p| Box::pin(async move {
//!     let iv = lvars::IVar::<u8>::new(p);
//!     iv.put(3).unwrap();
//!     iv.freeze(&p).copied()
//! }));
//! assert_eq!(r, Ok(Some(3)));
//! ```

pub mod derived;
pub mod effects;
mod freeze;
pub(crate) mod handlers;
mod handles;
mod imap_handle;
mod memo;
mod session;
mod set_handle;

pub use derived::{AddRemoveSet, FrozenAddRemove};
pub use effects::{Det, EffectLevel, FullEffects, QuasiDet};
pub use freeze::{DeferredFreeze, Freeze};
pub use handlers::{freeze_set_after, HandlerPool};
pub use handles::{Counter, IStructure, IVar, LVar, MaxCounter, PNCounter};
pub use imap_handle::{IMap, IMapOfSets};
pub use memo::Memo;
pub use session::{run_par, run_par_io, run_par_quasi_det, run_par_then_freeze, Par, ParFuture};
pub use set_handle::ISet;
