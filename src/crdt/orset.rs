//! `ORSet`: the observed-remove set (add wins).

use std::collections::{BTreeMap, BTreeSet};

use super::codec::{Decode, DecodeError, Encode, Reader};
use super::{Delta, Dot, ReplicaId, VClock};
use crate::lattice::Lattice;

/// The observed-remove set. Every add is an event with its own [`Dot`]; a
/// remove is an event too, and it removes exactly the adds of the element
/// that its replica has *observed*. An add concurrent with a remove was not
/// observed by it, so it survives: add wins. An element is present while
/// some add of it has not been removed.
///
/// The state is two grow-only sets (the adds, and the pairs
/// "add dot, removing dot"), so join is union and the lattice laws hold for
/// any state. The price is that removals leave tombstones. Because every
/// change is a dotted event, [`Delta::delta_since`] can ship only the
/// events a peer has not seen.
///
/// ```
/// use lvars::crdt::{ORSet, ReplicaId};
/// use lvars::lattice::Lattice;
///
/// let (r0, r1) = (ReplicaId(0), ReplicaId(1));
/// let mut a = ORSet::new();
/// a.add(r0, "Book");
/// a.add(r0, "Shoes");
/// let mut b = a.clone();
/// // Concurrently: r0 removes Shoes, r1 adds a Hat and re-adds Book.
/// a.remove(r0, &"Shoes");
/// a.remove(r0, &"Book");
/// b.add(r1, "Hat");
/// b.add(r1, "Book");
/// let merged = a.join(&b);
/// // Shoes stays removed; the concurrent re-add of Book wins.
/// assert_eq!(merged.iter().collect::<Vec<_>>(), [&"Book", &"Hat"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(
        from = "serde_repr::ORSetRepr<T>",
        into = "serde_repr::ORSetRepr<T>",
        bound(
            serialize = "T: Clone + serde::Serialize",
            deserialize = "T: Ord + serde::Deserialize<'de>"
        )
    )
)]
pub struct ORSet<T> {
    /// Element -> the dots of its adds (never empty).
    adds: BTreeMap<T, BTreeSet<Dot>>,
    /// Add dot -> the dots of the removes that observed it (never empty).
    removes: BTreeMap<Dot, BTreeSet<Dot>>,
}

impl<T> Default for ORSet<T> {
    fn default() -> Self {
        ORSet {
            adds: BTreeMap::new(),
            removes: BTreeMap::new(),
        }
    }
}

impl<T: Ord> ORSet<T> {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The vector clock of every add and remove event in the state.
    pub fn clock(&self) -> VClock {
        let mut clock = VClock::new();
        for &d in self.adds.values().flatten() {
            clock.observe(d);
        }
        for &d in self.removes.values().flatten() {
            clock.observe(d);
        }
        clock
    }

    /// The next event of `replica`. Requires that this state holds every
    /// earlier event of `replica`, which is true at `replica` itself.
    fn next_dot(&self, replica: ReplicaId) -> Dot {
        self.clock().increment(replica)
    }

    fn is_live(&self, dot: &Dot) -> bool {
        !self.removes.contains_key(dot)
    }

    /// Adds `value` as a new event of `replica` and returns its dot.
    pub fn add(&mut self, replica: ReplicaId, value: T) -> Dot {
        let dot = self.next_dot(replica);
        self.adds.entry(value).or_default().insert(dot);
        dot
    }

    /// Removes the adds of `value` that this state has observed, as a new
    /// event of `replica`. Returns false (and records nothing) if `value`
    /// was not present.
    pub fn remove(&mut self, replica: ReplicaId, value: &T) -> bool {
        let Some(dots) = self.adds.get(value) else {
            return false;
        };
        let observed: Vec<Dot> = dots.iter().copied().filter(|d| self.is_live(d)).collect();
        if observed.is_empty() {
            return false;
        }
        let event = self.next_dot(replica);
        for d in observed {
            self.removes.entry(d).or_default().insert(event);
        }
        true
    }

    /// Whether some add of `value` has not been removed.
    pub fn contains(&self, value: &T) -> bool {
        self.adds
            .get(value)
            .is_some_and(|dots| dots.iter().any(|d| self.is_live(d)))
    }

    /// The present elements, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.adds
            .iter()
            .filter(|(_, dots)| dots.iter().any(|d| self.is_live(d)))
            .map(|(v, _)| v)
    }

    /// Number of present elements.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether no element is present.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// Joins `src` into `dst` (maps of sets, per-key union); true if it grew.
fn union_into<K: Ord + Clone>(dst: &mut BTreeMap<K, BTreeSet<Dot>>, src: &BTreeMap<K, BTreeSet<Dot>>) -> bool {
    let mut grew = false;
    for (k, dots) in src {
        match dst.get_mut(k) {
            Some(mine) => {
                for d in dots {
                    grew |= mine.insert(*d);
                }
            }
            None => {
                dst.insert(k.clone(), dots.clone());
                grew = true;
            }
        }
    }
    grew
}

fn subset<K: Ord>(a: &BTreeMap<K, BTreeSet<Dot>>, b: &BTreeMap<K, BTreeSet<Dot>>) -> bool {
    a.iter()
        .all(|(k, dots)| b.get(k).is_some_and(|theirs| dots.is_subset(theirs)))
}

/// The entries whose dots are not covered by `since` (empty entries dropped).
fn unseen<K: Ord + Clone>(map: &BTreeMap<K, BTreeSet<Dot>>, since: &VClock) -> BTreeMap<K, BTreeSet<Dot>> {
    map.iter()
        .filter_map(|(k, dots)| {
            let new: BTreeSet<Dot> = dots.iter().copied().filter(|d| !since.contains(*d)).collect();
            (!new.is_empty()).then(|| (k.clone(), new))
        })
        .collect()
}

impl<T: Ord + Clone> Lattice for ORSet<T> {
    fn bottom() -> Self {
        ORSet::new()
    }
    fn join_assign(&mut self, other: &Self) -> bool {
        let a = union_into(&mut self.adds, &other.adds);
        let r = union_into(&mut self.removes, &other.removes);
        a | r
    }
    fn leq(&self, other: &Self) -> bool {
        subset(&self.adds, &other.adds) && subset(&self.removes, &other.removes)
    }
}

impl<T: Ord + Clone> Delta for ORSet<T> {
    type Version = VClock;
    fn version(&self) -> VClock {
        self.clock()
    }
    /// The add and remove events not covered by `since`.
    fn delta_since(&self, since: &VClock) -> Self {
        ORSet {
            adds: unseen(&self.adds, since),
            removes: unseen(&self.removes, since),
        }
    }
}

impl<T: Encode> Encode for ORSet<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.adds.encode(out);
        self.removes.encode(out);
    }
}

fn no_empty_entries<K>(map: &BTreeMap<K, BTreeSet<Dot>>) -> Result<(), DecodeError> {
    if map.values().any(BTreeSet::is_empty) {
        return Err(DecodeError::NonCanonical {
            what: "ORSet entry without dots",
        });
    }
    Ok(())
}

impl<T: Decode + Ord> Decode for ORSet<T> {
    /// Rejects entries without dots.
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let adds = BTreeMap::decode(input)?;
        no_empty_entries(&adds)?;
        let removes = BTreeMap::decode(input)?;
        no_empty_entries(&removes)?;
        Ok(ORSet { adds, removes })
    }
}

/// serde goes through lists of pairs, so that formats whose map keys must
/// be strings (JSON) can hold dots; entries without dots are dropped.
#[cfg(feature = "serde")]
mod serde_repr {
    use super::{BTreeMap, BTreeSet, Dot, ORSet};

    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct ORSetRepr<T> {
        adds: Vec<(T, BTreeSet<Dot>)>,
        removes: Vec<(Dot, BTreeSet<Dot>)>,
    }

    impl<T: Ord> From<ORSetRepr<T>> for ORSet<T> {
        fn from(repr: ORSetRepr<T>) -> Self {
            let mut adds: BTreeMap<T, BTreeSet<Dot>> = BTreeMap::new();
            for (v, dots) in repr.adds {
                adds.entry(v).or_default().extend(dots);
            }
            let mut removes: BTreeMap<Dot, BTreeSet<Dot>> = BTreeMap::new();
            for (d, dots) in repr.removes {
                removes.entry(d).or_default().extend(dots);
            }
            adds.retain(|_, dots| !dots.is_empty());
            removes.retain(|_, dots| !dots.is_empty());
            ORSet { adds, removes }
        }
    }

    impl<T> From<ORSet<T>> for ORSetRepr<T> {
        fn from(set: ORSet<T>) -> Self {
            ORSetRepr {
                adds: set.adds.into_iter().collect(),
                removes: set.removes.into_iter().collect(),
            }
        }
    }
}
