//! Vector clocks: per-replica event counts, joined by pointwise max.

use std::collections::{btree_map, BTreeMap};

use super::codec::{write_len, Decode, DecodeError, Encode, Reader};
use super::{Delta, Dot, ReplicaId};
use crate::lattice::Lattice;

/// A vector clock: for each replica, how many of its events are known.
/// Missing entries are zero (and zero entries are never stored, so equal
/// clocks are equal values). Join is the pointwise maximum; `a ≤ b` when
/// every entry of `a` is at most the one of `b`, that is when `b` has seen
/// everything `a` has.
///
/// ```
/// use lvars::crdt::{Causality, ReplicaId, VClock};
/// use lvars::lattice::Lattice;
///
/// let (a, b) = (ReplicaId(0), ReplicaId(1));
/// let mut x = VClock::new();
/// x.increment(a);
/// let mut y = x.clone();
/// y.increment(b);
/// x.increment(a);
/// assert_eq!(x.compare(&y), Causality::Concurrent);
/// let z = x.clone().join(&y);
/// assert_eq!((z.get(a), z.get(b)), (2, 1));
/// assert_eq!(x.compare(&z), Causality::Before);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(from = "BTreeMap<ReplicaId, u64>", into = "BTreeMap<ReplicaId, u64>")
)]
pub struct VClock(BTreeMap<ReplicaId, u64>);

/// How two vector clocks (and the events they stand for) are related.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Causality {
    /// Strictly before: the other clock has seen everything and more.
    Before,
    /// The same clock.
    Equal,
    /// Strictly after.
    After,
    /// Neither has seen everything the other has.
    Concurrent,
}

impl VClock {
    /// The zero clock (bottom).
    pub fn new() -> Self {
        VClock(BTreeMap::new())
    }

    /// The count for `replica` (zero if absent).
    pub fn get(&self, replica: ReplicaId) -> u64 {
        self.0.get(&replica).copied().unwrap_or(0)
    }

    /// Counts one more event of `replica` and returns its dot. Saturates at
    /// `u64::MAX` (unreachable in practice).
    pub fn increment(&mut self, replica: ReplicaId) -> Dot {
        let c = self.0.entry(replica).or_insert(0);
        *c = c.saturating_add(1);
        Dot::new(replica, *c)
    }

    /// Raises the entry of `replica` to at least `count`.
    pub fn raise(&mut self, replica: ReplicaId, count: u64) -> bool {
        if count == 0 {
            return false;
        }
        let c = self.0.entry(replica).or_insert(0);
        let grew = count > *c;
        *c = (*c).max(count);
        grew
    }

    /// Whether the clock has seen the event `dot`.
    pub fn contains(&self, dot: Dot) -> bool {
        dot.counter <= self.get(dot.replica)
    }

    /// Records that the event `dot` (and, as clocks count prefixes, every
    /// earlier event of its replica) has been seen.
    pub fn observe(&mut self, dot: Dot) -> bool {
        self.raise(dot.replica, dot.counter)
    }

    /// The causal relation between `self` and `other`.
    pub fn compare(&self, other: &VClock) -> Causality {
        match (self.leq(other), other.leq(self)) {
            (true, true) => Causality::Equal,
            (true, false) => Causality::Before,
            (false, true) => Causality::After,
            (false, false) => Causality::Concurrent,
        }
    }

    /// Whether `self` is strictly before `other`.
    pub fn dominated_by(&self, other: &VClock) -> bool {
        self.compare(other) == Causality::Before
    }

    /// The non-zero entries, by replica.
    pub fn iter(&self) -> btree_map::Iter<'_, ReplicaId, u64> {
        self.0.iter()
    }

    /// Whether every entry is zero.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sum of all entries (saturating): the number of events counted.
    pub fn total(&self) -> u64 {
        self.0.values().fold(0u64, |acc, &c| acc.saturating_add(c))
    }
}

impl From<BTreeMap<ReplicaId, u64>> for VClock {
    /// Builds a clock from counts, dropping zero entries.
    fn from(mut map: BTreeMap<ReplicaId, u64>) -> Self {
        map.retain(|_, c| *c > 0);
        VClock(map)
    }
}

impl From<VClock> for BTreeMap<ReplicaId, u64> {
    fn from(clock: VClock) -> Self {
        clock.0
    }
}

impl FromIterator<(ReplicaId, u64)> for VClock {
    /// Joins the counts (the largest count per replica wins).
    fn from_iter<I: IntoIterator<Item = (ReplicaId, u64)>>(iter: I) -> Self {
        let mut clock = VClock::new();
        for (r, c) in iter {
            clock.raise(r, c);
        }
        clock
    }
}

impl Lattice for VClock {
    fn bottom() -> Self {
        VClock::new()
    }

    fn join_assign(&mut self, other: &Self) -> bool {
        let mut grew = false;
        for (&r, &c) in &other.0 {
            grew |= self.raise(r, c);
        }
        grew
    }

    fn leq(&self, other: &Self) -> bool {
        self.0.iter().all(|(&r, &c)| c <= other.get(r))
    }
}

impl Delta for VClock {
    type Version = VClock;

    fn version(&self) -> VClock {
        self.clone()
    }

    /// The entries larger than in `since`.
    fn delta_since(&self, since: &VClock) -> Self {
        VClock(
            self.0
                .iter()
                .filter(|(&r, &c)| c > since.get(r))
                .map(|(&r, &c)| (r, c))
                .collect(),
        )
    }
}

impl Encode for VClock {
    fn encode(&self, out: &mut Vec<u8>) {
        write_len(out, self.0.len());
        for (r, c) in &self.0 {
            r.encode(out);
            c.encode(out);
        }
    }
}

impl Decode for VClock {
    /// Rejects unsorted or repeated replicas and zero counts.
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let map = BTreeMap::<ReplicaId, u64>::decode(input)?;
        if map.values().any(|&c| c == 0) {
            return Err(DecodeError::NonCanonical {
                what: "zero vector-clock entry",
            });
        }
        Ok(VClock(map))
    }
}

impl Encode for ReplicaId {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
    }
}

impl Decode for ReplicaId {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ReplicaId(u32::decode(input)?))
    }
}

impl Encode for Dot {
    fn encode(&self, out: &mut Vec<u8>) {
        self.replica.encode(out);
        self.counter.encode(out);
    }
}

impl Decode for Dot {
    /// Rejects counter zero (events count from 1).
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let replica = ReplicaId::decode(input)?;
        match u64::decode(input)? {
            0 => Err(DecodeError::NonCanonical {
                what: "dot with counter 0",
            }),
            counter => Ok(Dot { replica, counter }),
        }
    }
}
