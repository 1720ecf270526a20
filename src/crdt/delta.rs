//! Deltas: shipping only what changed since a version.

use std::fmt::Debug;

use super::codec::{Decode, Encode};
use crate::lattice::Lattice;

/// A lattice whose states summarise the events they hold in a *version*
/// (a vector clock, typically), so that a replica can ship only the part
/// of its state a peer has not seen.
///
/// The contract: `delta_since(v)` is at or below `self`, and joining it
/// into any state that holds every event covered by `v` gives at least
/// `self`. A peer tells its version, the sender answers with the delta,
/// the peer merges it like any state. A delta computed against an older
/// (smaller) version is larger but still correct.
///
/// ```
/// use lvars::crdt::{Delta, GCounter, ReplicaId};
/// use lvars::lattice::Lattice;
///
/// let mut a = GCounter::new();
/// a.increment(ReplicaId(0), 1);
/// a.increment(ReplicaId(1), 1);
/// let peer = a.clone();
/// a.increment(ReplicaId(1), 4);
/// let delta = a.delta_since(&peer.version());
/// assert_eq!(delta.get(ReplicaId(0)), 0); // not shipped: the peer has it
/// let caught_up = peer.join(&delta);
/// assert!(a.leq(&caught_up) && caught_up.leq(&a));
/// ```
pub trait Delta: Lattice {
    /// What a replica tells a peer about the events it holds.
    type Version: Lattice + Encode + Decode + Debug + Send + Sync + 'static;

    /// The version of this state.
    fn version(&self) -> Self::Version;

    /// The part of `self` that a state at `since` may lack.
    fn delta_since(&self, since: &Self::Version) -> Self;
}
