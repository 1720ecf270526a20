//! Replicated lattices (state-based CRDTs, "CvRDTs") with LVar threshold
//! queries.
//!
//! The lattices that tasks share inside one process are also the states of
//! replicated data types across processes: replicas update locally, ship
//! their states, and merge what they receive by join, in any order and any
//! number of times, so they converge once they have all received the same
//! updates. Asking a replica its exact state gives answers that differ from
//! replica to replica until then; asking a *threshold query* (as an LVar
//! get does) gives an answer that, once given at a replica, stays, and that
//! every replica eventually gives ("Joining forces", Kuper and Newton).
//!
//! * Types, each a [`Lattice`](crate::lattice::Lattice) (so also usable as
//!   an LVar in a session): [`VClock`], [`GCounter`], [`PNCounter`],
//!   [`GSet`], [`TwoPSet`], [`ORSet`] (observed-remove, add wins) and
//!   [`MVRegister`] (Dynamo's multi-value register).
//! * [`Replica`]: local inflationary updates, merges of states, deltas and
//!   bytes, threshold queries that answer now or wait.
//! * [`codec`]: the compact binary encoding of states and [`Delta`]s
//!   (serde support too, behind the `serde` feature).
//! * [`sim`]: a deterministic, seeded network simulation (delays,
//!   reordering, duplicates, drops, partitions) that checks convergence and
//!   the stability of query answers.
//!
//! ```
//! use lvars::crdt::{ORSet, Replica, ReplicaId};
//!
//! let r0: Replica<ORSet<&str>> = Replica::new(ReplicaId(0));
//! let r1: Replica<ORSet<&str>> = Replica::new(ReplicaId(1));
//! r0.update(|cart| {
//!     cart.add(ReplicaId(0), "Book");
//! })
//! .unwrap();
//! r1.merge(&r0.state()).unwrap();
//! r1.update(|cart| {
//!     cart.remove(ReplicaId(1), &"Book");
//! })
//! .unwrap();
//! r0.merge(&r1.state()).unwrap();
//! assert!(r0.state().is_empty() && r1.state().is_empty());
//! ```

pub mod codec;
mod counter;
mod delta;
mod gset;
mod id;
mod mvreg;
mod orset;
mod replica;
mod rng;
pub mod sim;
mod two_p_set;
mod vclock;

pub use counter::{GCounter, PNCounter};
pub use delta::Delta;
pub use gset::GSet;
pub use id::{Dot, ReplicaId};
pub use mvreg::MVRegister;
pub use orset::ORSet;
pub use replica::{Replica, ReplicaError};
pub use two_p_set::TwoPSet;
pub use vclock::{Causality, VClock};
