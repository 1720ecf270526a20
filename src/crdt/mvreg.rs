//! `MVRegister`: Dynamo's multi-value register.

use std::collections::BTreeSet;

use super::codec::{decode_sorted, Decode, DecodeError, Encode, Reader};
use super::{Delta, ReplicaId, VClock};
use crate::lattice::Lattice;

/// A register that keeps concurrent writes side by side, as Dynamo does:
/// every version carries a vector clock, a version whose clock is strictly
/// before another's is dropped, and concurrent versions all stay until a
/// write that has seen them replaces them. Reading returns every version;
/// reconciling them is up to the client.
///
/// The state is an antichain of `(clock, value)` versions; join is "the
/// maximal versions of the union", which is a lattice join for any states.
/// Joins and decoding compare every two versions, so they are quadratic in
/// the number of concurrent versions (a handful, in practice).
///
/// ```
/// use lvars::crdt::{MVRegister, ReplicaId};
/// use lvars::lattice::Lattice;
///
/// let mut a = MVRegister::new();
/// a.write(ReplicaId(0), "v1");
/// let mut b = a.clone();
/// a.write(ReplicaId(0), "v2"); // both have seen v1: it is replaced
/// b.write(ReplicaId(1), "v3");
/// let mut merged = a.join(&b);
/// let mut concurrent: Vec<_> = merged.values().collect();
/// concurrent.sort();
/// assert_eq!(concurrent, [&"v2", &"v3"]);
/// merged.write(ReplicaId(0), "v4"); // has seen both: replaces both
/// assert_eq!(merged.values().collect::<Vec<_>>(), [&"v4"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(
        from = "Vec<(VClock, T)>",
        into = "Vec<(VClock, T)>",
        bound(
            serialize = "T: Clone + serde::Serialize",
            deserialize = "T: Ord + Clone + serde::Deserialize<'de>"
        )
    )
)]
pub struct MVRegister<T> {
    versions: BTreeSet<(VClock, T)>,
}

impl<T> Default for MVRegister<T> {
    fn default() -> Self {
        MVRegister {
            versions: BTreeSet::new(),
        }
    }
}

impl<T: Ord> MVRegister<T> {
    /// The register with no value written yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The join of every version's clock: what a write now has seen.
    pub fn clock(&self) -> VClock {
        let mut clock = VClock::new();
        for (c, _) in &self.versions {
            clock.join_assign(c);
        }
        clock
    }

    /// Writes `value` as `replica`, replacing every version this state
    /// holds. Returns the new version's clock.
    pub fn write(&mut self, replica: ReplicaId, value: T) -> VClock {
        let context = self.clock();
        self.write_with_context(replica, &context, value)
    }

    /// Writes `value` as `replica` having seen only the versions up to
    /// `context` (the clock a client got with an earlier read): versions
    /// not covered by `context` stay beside the new one. Returns the new
    /// version's clock.
    pub fn write_with_context(&mut self, replica: ReplicaId, context: &VClock, value: T) -> VClock {
        let mut clock = context.clone();
        let next = context.get(replica).max(self.clock().get(replica)).saturating_add(1);
        clock.raise(replica, next);
        self.versions.retain(|(c, _)| !c.leq(&clock));
        self.versions.insert((clock.clone(), value));
        clock
    }

    /// The values of the current versions (one, or several concurrent
    /// ones), ordered by clock.
    pub fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.versions.iter().map(|(_, v)| v)
    }

    /// The current versions with their clocks.
    pub fn versions(&self) -> impl Iterator<Item = (&VClock, &T)> + '_ {
        self.versions.iter().map(|(c, v)| (c, v))
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }
}

/// Whether version `a` is at or below version `b`: the same version, or a
/// strictly earlier clock.
fn version_leq<T: Eq>(a: &(VClock, T), b: &(VClock, T)) -> bool {
    a == b || a.0.dominated_by(&b.0)
}

/// Drops every version strictly dominated by another one.
fn maximal<T: Ord + Clone>(all: BTreeSet<(VClock, T)>) -> BTreeSet<(VClock, T)> {
    all.iter()
        .filter(|(c, _)| !all.iter().any(|(d, _)| c.dominated_by(d)))
        .cloned()
        .collect()
}

impl<T: Ord + Clone> Lattice for MVRegister<T> {
    fn bottom() -> Self {
        MVRegister::new()
    }

    fn join_assign(&mut self, other: &Self) -> bool {
        if other.leq(self) {
            return false;
        }
        let mut all = std::mem::take(&mut self.versions);
        all.extend(other.versions.iter().cloned());
        self.versions = maximal(all);
        true
    }

    fn leq(&self, other: &Self) -> bool {
        self.versions
            .iter()
            .all(|a| other.versions.iter().any(|b| version_leq(a, b)))
    }
}

impl<T: Ord + Clone> Delta for MVRegister<T> {
    type Version = VClock;
    fn version(&self) -> VClock {
        self.clock()
    }
    /// The versions whose clocks are not covered by `since`.
    fn delta_since(&self, since: &VClock) -> Self {
        MVRegister {
            versions: self.versions.iter().filter(|(c, _)| !c.leq(since)).cloned().collect(),
        }
    }
}

impl<T: Ord + Clone> From<Vec<(VClock, T)>> for MVRegister<T> {
    /// The register holding the maximal ones of `versions`.
    fn from(versions: Vec<(VClock, T)>) -> Self {
        MVRegister {
            versions: maximal(versions.into_iter().collect()),
        }
    }
}

impl<T> From<MVRegister<T>> for Vec<(VClock, T)> {
    fn from(reg: MVRegister<T>) -> Self {
        reg.versions.into_iter().collect()
    }
}

impl<T: Encode> Encode for MVRegister<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.versions.encode(out);
    }
}

impl<T: Decode + Ord> Decode for MVRegister<T> {
    /// Rejects a version strictly dominated by another.
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let versions: Vec<(VClock, T)> = decode_sorted(input, "register versions not strictly increasing")?;
        for (c, _) in &versions {
            if versions.iter().any(|(d, _)| c.dominated_by(d)) {
                return Err(DecodeError::NonCanonical {
                    what: "register version dominated by another",
                });
            }
        }
        Ok(MVRegister {
            versions: versions.into_iter().collect(),
        })
    }
}
