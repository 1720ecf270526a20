//! `GSet`: the grow-only set.

use std::collections::{btree_set, BTreeSet};

use super::codec::{Decode, DecodeError, Encode, Reader};
use crate::lattice::Lattice;

/// A grow-only set: elements can be added, never removed; join is union.
///
/// Merging versions of a cart kept in a plain set is how deleted items come
/// back (Dynamo's anomaly): a removal is not information a union can keep.
/// Use [`TwoPSet`](super::TwoPSet) or [`ORSet`](super::ORSet) when elements
/// must be removable.
///
/// ```
/// use lvars::crdt::GSet;
/// use lvars::lattice::Lattice;
///
/// let a: GSet<&str> = ["Book"].into_iter().collect();
/// let b: GSet<&str> = ["Shoes"].into_iter().collect();
/// let both = a.join(&b);
/// assert!(both.contains(&"Book") && both.contains(&"Shoes"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(bound(deserialize = "T: Ord + serde::Deserialize<'de>")))]
pub struct GSet<T>(BTreeSet<T>);

impl<T> Default for GSet<T> {
    fn default() -> Self {
        GSet(BTreeSet::new())
    }
}

impl<T: Ord> GSet<T> {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value`; true if it was new.
    pub fn insert(&mut self, value: T) -> bool {
        self.0.insert(value)
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: &T) -> bool {
        self.0.contains(value)
    }

    /// The elements, in ascending order.
    pub fn iter(&self) -> btree_set::Iter<'_, T> {
        self.0.iter()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Ord> FromIterator<T> for GSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        GSet(iter.into_iter().collect())
    }
}

impl<T: Ord + Clone> Lattice for GSet<T> {
    fn bottom() -> Self {
        GSet::new()
    }
    fn join_assign(&mut self, other: &Self) -> bool {
        let before = self.0.len();
        self.0.extend(other.0.iter().cloned());
        self.0.len() != before
    }
    fn leq(&self, other: &Self) -> bool {
        self.0.is_subset(&other.0)
    }
}

impl<T: Encode> Encode for GSet<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
    }
}

impl<T: Decode + Ord> Decode for GSet<T> {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        BTreeSet::decode(input).map(GSet)
    }
}
