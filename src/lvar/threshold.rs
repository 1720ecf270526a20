//! Threshold sets: what a get waits for.

use crate::error::Error;
use crate::lattice::Lattice;

/// A set of pairwise incompatible lattice elements (the join of any two is
/// top). A get on a threshold set waits until the LVar's state is at or
/// above one of them and returns *that element*, never the exact state;
/// incompatibility guarantees that at most one element can ever be reached,
/// so every schedule returns the same one.
///
/// ```
/// use lvars::lattice::Flat;
/// use lvars::lvar::ThresholdSet;
///
/// // "the flag is set to true" or "the flag is set to false": incompatible.
/// let either = ThresholdSet::new(vec![Flat::Value(true), Flat::Value(false)]).unwrap();
/// assert_eq!(either.len(), 2);
///
/// // Two comparable thresholds are rejected: the answer would depend on timing.
/// use lvars::lattice::Max;
/// assert!(ThresholdSet::new(vec![Max::new(1), Max::new(2)]).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct ThresholdSet<L> {
    elements: Elements<L>,
}

/// The one-element case (by far the most common get) is stored inline: a
/// parked get's waiter node then holds its threshold with no allocation of
/// its own.
#[derive(Debug, Clone)]
enum Elements<L> {
    One(L),
    Many(Box<[L]>),
}

impl<L> Elements<L> {
    fn as_slice(&self) -> &[L] {
        match self {
            Elements::One(t) => std::slice::from_ref(t),
            Elements::Many(ts) => ts,
        }
    }
}

impl<L: Lattice> ThresholdSet<L> {
    /// Validates `elements`: non-empty, no element is top, and the join of
    /// every two distinct elements is top.
    pub fn new(mut elements: Vec<L>) -> Result<Self, Error> {
        if elements.is_empty() {
            return Err(Error::InvalidThreshold {
                reason: "the set is empty, so no state could ever satisfy it",
            });
        }
        if elements.iter().any(Lattice::is_top) {
            return Err(Error::InvalidThreshold {
                reason: "an element is top, which no successful put ever reaches",
            });
        }
        for (i, a) in elements.iter().enumerate() {
            for b in &elements[i + 1..] {
                if !a.clone().join(b).is_top() {
                    return Err(Error::InvalidThreshold {
                        reason: "two elements are compatible (their join is not top), so which one a get returns would depend on the schedule",
                    });
                }
            }
        }
        let elements = if elements.len() == 1 {
            Elements::One(elements.pop().expect("one element"))
        } else {
            Elements::Many(elements.into_boxed_slice())
        };
        Ok(Self { elements })
    }

    /// The one-element threshold set (always valid unless `t` is top).
    pub fn single(t: L) -> Result<Self, Error> {
        if t.is_top() {
            return Self::new(vec![t]); // the error of `new`
        }
        Ok(Self {
            elements: Elements::One(t),
        })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.elements.as_slice().len()
    }

    /// Always false: threshold sets are never empty.
    pub fn is_empty(&self) -> bool {
        self.elements.as_slice().is_empty()
    }

    /// The element that `state` is at or above, if any.
    pub fn reached_by(&self, state: &L) -> Option<&L> {
        self.elements.as_slice().iter().find(|t| t.leq(state))
    }
}
