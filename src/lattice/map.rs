//! `MapUnion`: a grow-only map whose values are themselves lattices.

use super::Lattice;
use std::borrow::Borrow;
use std::collections::{btree_map, BTreeMap};

/// A map from keys to lattice values, joined pointwise.
///
/// A key that is absent is treated as holding `V::bottom()`, so
/// `{a: x} ⊔ {b: y} = {a: x, b: y}` and `{a: x} ⊔ {a: y} = {a: x ⊔ y}`.
/// The map is top iff any value is top: one conflicting entry poisons the
/// whole LVar, as a put that produced it should fail.
///
/// No constructor or join ever stores a bottom value, since it would carry
/// no information; this keeps [`len`](MapUnion::len) and `PartialEq`
/// meaningful (a map with a stored bottom entry would be order-equivalent to
/// one without it, yet compare unequal).
///
/// Backed by a [`BTreeMap`] so iteration is in key order, identical in every
/// run.
///
/// ```
/// use lvars::lattice::{Lattice, MapUnion, Max};
///
/// let a = MapUnion::singleton("x", Max::new(1));
/// let b: MapUnion<_, _> = [("x", Max::new(4)), ("y", Max::new(2))].into_iter().collect();
/// let j = a.join(&b);
/// assert_eq!(j.get("x"), Some(&Max::new(4)));
/// assert_eq!(j.get("y"), Some(&Max::new(2)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MapUnion<K, V>(BTreeMap<K, V>);

// Hand-written so that `K: Default, V: Default` are not required.
impl<K, V> Default for MapUnion<K, V> {
    fn default() -> Self {
        MapUnion(BTreeMap::new())
    }
}

impl<K: Ord, V: Lattice> MapUnion<K, V> {
    /// The empty map (bottom).
    pub fn new() -> Self {
        MapUnion(BTreeMap::new())
    }

    /// The map with the single entry `key => value` (empty if `value` is
    /// bottom).
    pub fn singleton(key: K, value: V) -> Self {
        let mut map = MapUnion::new();
        map.join_entry(key, value);
        map
    }

    /// Joins `value` into the entry for `key` (which starts at bottom if
    /// absent). Returns true iff the map changed.
    pub fn join_entry(&mut self, key: K, value: V) -> bool {
        match self.0.entry(key) {
            btree_map::Entry::Occupied(mut slot) => slot.get_mut().join_assign(&value),
            btree_map::Entry::Vacant(slot) => {
                // An absent key already means bottom; skip storing bottom.
                let grew = !value.leq(&V::bottom());
                if grew {
                    slot.insert(value);
                }
                grew
            }
        }
    }

    /// The value stored for `key`; `None` means bottom.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.0.get(key)
    }

    /// Number of keys holding a non-bottom value.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the map is empty (bottom).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries in ascending key order.
    pub fn iter(&self) -> btree_map::Iter<'_, K, V> {
        self.0.iter()
    }

    /// The underlying map.
    pub fn into_inner(self) -> BTreeMap<K, V> {
        self.0
    }
}

impl<K: Ord + Clone, V: Lattice> Lattice for MapUnion<K, V> {
    fn bottom() -> Self {
        MapUnion(BTreeMap::new())
    }

    fn join_assign(&mut self, other: &Self) -> bool {
        // Computed once per join rather than once per missing key.
        let bottom = V::bottom();
        let mut changed = false;
        for (k, v) in &other.0 {
            match self.0.get_mut(k) {
                // Join every entry: `changed |= ...` must not short-circuit.
                Some(mine) => changed |= mine.join_assign(v),
                None if v.leq(&bottom) => {}
                None => {
                    self.0.insert(k.clone(), v.clone());
                    changed = true;
                }
            }
        }
        changed
    }

    fn leq(&self, other: &Self) -> bool {
        // Keys only in `other` are fine (bottom ≤ anything); keys only in
        // `self` must hold bottom-equivalent values.
        let bottom = V::bottom();
        self.0.iter().all(|(k, v)| v.leq(other.0.get(k).unwrap_or(&bottom)))
    }

    fn is_top(&self) -> bool {
        self.0.values().any(Lattice::is_top)
    }
}

impl<K: Ord, V: Lattice> FromIterator<(K, V)> for MapUnion<K, V> {
    /// Builds a map from entries; repeated keys are joined, not overwritten,
    /// so the result does not depend on the order of the entries.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = MapUnion::new();
        for (k, v) in iter {
            map.join_entry(k, v);
        }
        map
    }
}

impl<K, V> IntoIterator for MapUnion<K, V> {
    type Item = (K, V);
    type IntoIter = btree_map::IntoIter<K, V>;

    /// The entries in ascending key order.
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a MapUnion<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = btree_map::Iter<'a, K, V>;

    /// The entries in ascending key order.
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
