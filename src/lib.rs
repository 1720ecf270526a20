#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod check;
pub mod crdt;
pub mod data;
mod error;
pub mod lattice;
pub mod lvar;
pub mod par;
pub mod sched;
mod striped;
mod sync;

pub use error::{Error, Result};
pub use par::{
    derived, effects, freeze_set_after, run_par, run_par_io, run_par_quasi_det, run_par_then_freeze, AddRemoveSet,
    Counter, Det, EffectLevel, Freeze, FrozenAddRemove, FullEffects, HandlerPool, IMap, IMapOfSets, ISet, IStructure,
    IVar, LVar, MaxCounter, Memo, PNCounter, Par, ParFuture, QuasiDet,
};

pub use sched::{join, par_for, par_for_grain, yield_now, JoinHandle, ThreadPool, ThreadPoolBuilder};
