//! `SetUnion`: a grow-only set.

use super::Lattice;
use std::borrow::Borrow;
use std::collections::{btree_set, BTreeSet};

/// A grow-only set: join is union, the order is inclusion, bottom is empty.
///
/// Backed by a [`BTreeSet`] rather than a hash set so that iteration order is
/// sorted and therefore the same in every run and on every schedule, which a
/// deterministic-parallelism library must not leak away through iteration.
///
/// ```
/// use lvars::lattice::{Lattice, SetUnion};
///
/// let a: SetUnion<i32> = [3, 1].into_iter().collect();
/// let b = SetUnion::singleton(2);
/// let u = a.join(&b);
/// assert_eq!(u.iter().copied().collect::<Vec<_>>(), [1, 2, 3]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SetUnion<T>(BTreeSet<T>);

// Hand-written so that `T: Default` is not required.
impl<T> Default for SetUnion<T> {
    fn default() -> Self {
        SetUnion(BTreeSet::new())
    }
}

impl<T: Ord> SetUnion<T> {
    /// The empty set (bottom).
    pub fn new() -> Self {
        SetUnion(BTreeSet::new())
    }

    /// The set containing only `value`.
    pub fn singleton(value: T) -> Self {
        SetUnion(BTreeSet::from([value]))
    }

    /// Adds `value`; returns true iff it was not already present (the set
    /// grew).
    pub fn insert(&mut self, value: T) -> bool {
        self.0.insert(value)
    }

    /// Whether `value` is in the set.
    pub fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.0.contains(value)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty (bottom).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The elements in ascending order.
    pub fn iter(&self) -> btree_set::Iter<'_, T> {
        self.0.iter()
    }

    /// The underlying set.
    pub fn into_inner(self) -> BTreeSet<T> {
        self.0
    }
}

impl<T: Ord + Clone> Lattice for SetUnion<T> {
    fn bottom() -> Self {
        SetUnion(BTreeSet::new())
    }

    fn join_assign(&mut self, other: &Self) -> bool {
        let before = self.0.len();
        // Only clone the elements we lack: the common case for an LVar put is
        // joining a small set into a large one that often has them already.
        for x in &other.0 {
            if !self.0.contains(x) {
                self.0.insert(x.clone());
            }
        }
        self.0.len() != before
    }

    fn leq(&self, other: &Self) -> bool {
        self.0.is_subset(&other.0)
    }
}

impl<T: Ord> FromIterator<T> for SetUnion<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        SetUnion(iter.into_iter().collect())
    }
}

impl<T> IntoIterator for SetUnion<T> {
    type Item = T;
    type IntoIter = btree_set::IntoIter<T>;

    /// The elements in ascending order.
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a SetUnion<T> {
    type Item = &'a T;
    type IntoIter = btree_set::Iter<'a, T>;

    /// The elements in ascending order.
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
