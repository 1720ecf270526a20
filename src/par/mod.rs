//! Sessions, session-level LVar handles and freezing.
//!
//! A session is one parallel computation: [`run_par`] (deterministic),
//! [`run_par_quasi_det`] (may freeze), [`run_par_then_freeze`] (freezes the
//! result after the barrier). Every runner waits for all tasks the body
//! forked before it returns, reports failures as [`Error`](crate::Error)
//! values, re-raises panics, and leaves the pool usable.

mod freeze;
mod handles;
mod session;

pub use freeze::{DeferredFreeze, Freeze};
pub use handles::{IVar, LVar, MaxCounter};
pub use session::{run_par, run_par_quasi_det, run_par_then_freeze, Det, EffectLevel, Par, ParFuture, QuasiDet};
