//! Replica identities and dots (unique event tags).

/// The identity of one replica. Every replica that makes local updates
/// needs its own id: two replicas updating under one id would reuse event
/// tags and their updates could shadow each other.
///
/// ```
/// use lvars::crdt::ReplicaId;
///
/// assert!(ReplicaId(1) < ReplicaId(2));
/// assert_eq!(ReplicaId(3).to_string(), "r3");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReplicaId(pub u32);

impl std::fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// A unique tag for one event: the replica that made it and that replica's
/// event count at the time (counting from 1). Dots let a replica remove
/// exactly the additions it has observed ([`ORSet`](super::ORSet)) and
/// ship only the events a peer has not seen ([`Delta`](super::Delta)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Dot {
    /// The replica that made the event.
    pub replica: ReplicaId,
    /// Its position in that replica's sequence of events (1, 2, ...).
    pub counter: u64,
}

impl Dot {
    /// The dot `(replica, counter)`.
    pub fn new(replica: ReplicaId, counter: u64) -> Self {
        Dot { replica, counter }
    }
}
