//! `TwoPSet`: a set with removal, where a removed element stays removed.

use std::collections::BTreeSet;

use super::codec::{Decode, DecodeError, Encode, Reader};
use crate::lattice::Lattice;

/// The two-phase set: two grow-only sets, the elements ever added and the
/// elements ever removed (tombstones). An element is present when it was
/// added and not removed. Removal wins over any add, concurrent or later:
/// once removed, an element can never come back (use
/// [`ORSet`](super::ORSet) when it must).
///
/// ```
/// use lvars::crdt::TwoPSet;
/// use lvars::lattice::Lattice;
///
/// let mut a = TwoPSet::new();
/// a.insert("Book");
/// a.insert("Shoes");
/// let mut b = a.clone();
/// b.remove("Shoes");
/// a.insert("Hat");
/// let merged = a.join(&b);
/// assert_eq!(merged.iter().collect::<Vec<_>>(), [&"Book", &"Hat"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(bound(deserialize = "T: Ord + serde::Deserialize<'de>")))]
pub struct TwoPSet<T> {
    added: BTreeSet<T>,
    removed: BTreeSet<T>,
}

impl<T> Default for TwoPSet<T> {
    fn default() -> Self {
        TwoPSet {
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
        }
    }
}

impl<T: Ord> TwoPSet<T> {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value`; true if it is present afterwards and was not before
    /// (false for an element already removed: it stays removed).
    pub fn insert(&mut self, value: T) -> bool {
        !self.removed.contains(&value) && self.added.insert(value)
    }

    /// Removes `value` for good (records a tombstone, even for an element
    /// not added yet, so a later add of it has no effect). True if it was
    /// present.
    pub fn remove(&mut self, value: T) -> bool {
        let was_present = self.contains(&value);
        self.removed.insert(value);
        was_present
    }

    /// Whether `value` was added and not removed.
    pub fn contains(&self, value: &T) -> bool {
        self.added.contains(value) && !self.removed.contains(value)
    }

    /// The present elements, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.added.difference(&self.removed)
    }

    /// Every element ever added (present or removed).
    pub fn added(&self) -> &BTreeSet<T> {
        &self.added
    }

    /// Every element ever removed.
    pub fn removed(&self) -> &BTreeSet<T> {
        &self.removed
    }
}

impl<T: Ord + Clone> Lattice for TwoPSet<T> {
    fn bottom() -> Self {
        TwoPSet::new()
    }
    fn join_assign(&mut self, other: &Self) -> bool {
        let before = (self.added.len(), self.removed.len());
        self.added.extend(other.added.iter().cloned());
        self.removed.extend(other.removed.iter().cloned());
        (self.added.len(), self.removed.len()) != before
    }
    fn leq(&self, other: &Self) -> bool {
        self.added.is_subset(&other.added) && self.removed.is_subset(&other.removed)
    }
}

impl<T: Encode> Encode for TwoPSet<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.added.encode(out);
        self.removed.encode(out);
    }
}

impl<T: Decode + Ord> Decode for TwoPSet<T> {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TwoPSet {
            added: BTreeSet::decode(input)?,
            removed: BTreeSet::decode(input)?,
        })
    }
}
