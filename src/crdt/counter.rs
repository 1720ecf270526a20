//! Replicated counters: grow-only (`GCounter`) and up-down (`PNCounter`).

use super::codec::{Decode, DecodeError, Encode, Reader};
use super::{Delta, ReplicaId, VClock};
use crate::lattice::Lattice;

/// A grow-only counter: each replica counts its own increments, the value
/// is the sum, and join takes the maximum per replica (so merging the same
/// state twice counts nothing twice).
///
/// ```
/// use lvars::crdt::{GCounter, ReplicaId};
/// use lvars::lattice::Lattice;
///
/// let mut a = GCounter::new();
/// a.increment(ReplicaId(0), 2);
/// let mut b = GCounter::new();
/// b.increment(ReplicaId(1), 3);
/// let merged = a.clone().join(&b).join(&a);
/// assert_eq!(merged.value(), 5);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GCounter(VClock);

impl GCounter {
    /// Zero.
    pub fn new() -> Self {
        GCounter(VClock::new())
    }

    /// Adds `by` to the count of `replica` (saturating at `u64::MAX`).
    pub fn increment(&mut self, replica: ReplicaId, by: u64) {
        let c = self.0.get(replica).saturating_add(by);
        self.0.raise(replica, c);
    }

    /// The total over all replicas (saturating).
    pub fn value(&self) -> u64 {
        self.0.total()
    }

    /// The count of one replica.
    pub fn get(&self, replica: ReplicaId) -> u64 {
        self.0.get(replica)
    }

    /// The per-replica counts, as a vector clock.
    pub fn counts(&self) -> &VClock {
        &self.0
    }
}

impl From<VClock> for GCounter {
    fn from(counts: VClock) -> Self {
        GCounter(counts)
    }
}

impl Lattice for GCounter {
    fn bottom() -> Self {
        GCounter::new()
    }
    fn join_assign(&mut self, other: &Self) -> bool {
        self.0.join_assign(&other.0)
    }
    fn leq(&self, other: &Self) -> bool {
        self.0.leq(&other.0)
    }
}

impl Delta for GCounter {
    type Version = VClock;
    fn version(&self) -> VClock {
        self.0.clone()
    }
    /// The counts that grew since `since`.
    fn delta_since(&self, since: &VClock) -> Self {
        GCounter(self.0.delta_since(since))
    }
}

impl Encode for GCounter {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
    }
}

impl Decode for GCounter {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        VClock::decode(input).map(GCounter)
    }
}

/// A counter that goes up and down: two grow-only counters, one for
/// increments and one for decrements; the value is their difference.
///
/// ```
/// use lvars::crdt::{PNCounter, ReplicaId};
/// use lvars::lattice::Lattice;
///
/// let mut a = PNCounter::new();
/// a.add(ReplicaId(0), 5);
/// let mut b = a.clone();
/// b.add(ReplicaId(1), -7);
/// a.add(ReplicaId(0), 1);
/// assert_eq!(a.join(&b).value(), -1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PNCounter {
    increments: GCounter,
    decrements: GCounter,
}

impl PNCounter {
    /// Zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `by` (which may be negative) on behalf of `replica`.
    pub fn add(&mut self, replica: ReplicaId, by: i64) {
        if by >= 0 {
            self.increments.increment(replica, by.unsigned_abs());
        } else {
            self.decrements.increment(replica, by.unsigned_abs());
        }
    }

    /// Increments minus decrements.
    pub fn value(&self) -> i128 {
        i128::from(self.increments.value()) - i128::from(self.decrements.value())
    }

    /// The grow-only counter of increments.
    pub fn increments(&self) -> &GCounter {
        &self.increments
    }

    /// The grow-only counter of decrements.
    pub fn decrements(&self) -> &GCounter {
        &self.decrements
    }
}

impl Lattice for PNCounter {
    fn bottom() -> Self {
        PNCounter::new()
    }
    fn join_assign(&mut self, other: &Self) -> bool {
        let p = self.increments.join_assign(&other.increments);
        let n = self.decrements.join_assign(&other.decrements);
        p | n
    }
    fn leq(&self, other: &Self) -> bool {
        self.increments.leq(&other.increments) && self.decrements.leq(&other.decrements)
    }
}

impl Delta for PNCounter {
    /// The clocks of increments and of decrements.
    type Version = (VClock, VClock);
    fn version(&self) -> (VClock, VClock) {
        (self.increments.version(), self.decrements.version())
    }
    fn delta_since(&self, since: &(VClock, VClock)) -> Self {
        PNCounter {
            increments: self.increments.delta_since(&since.0),
            decrements: self.decrements.delta_since(&since.1),
        }
    }
}

impl Encode for PNCounter {
    fn encode(&self, out: &mut Vec<u8>) {
        self.increments.encode(out);
        self.decrements.encode(out);
    }
}

impl Decode for PNCounter {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PNCounter {
            increments: GCounter::decode(input)?,
            decrements: GCounter::decode(input)?,
        })
    }
}
