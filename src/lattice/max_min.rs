//! `Max` and `Min`: a single value that only moves one way.

use super::Lattice;

/// The largest value written so far: join keeps the larger value.
///
/// Bottom is "no value yet" (`None`), which is below every value. Useful for
/// monotone counters, high-water marks and "best so far" searches.
///
/// ```
/// use lvars::lattice::{Lattice, Max};
///
/// let mut m = Max::new(3);
/// assert!(m.join_assign(&Max::new(7)));
/// assert!(!m.join_assign(&Max::new(5)));
/// assert_eq!(m.get(), Some(&7));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Max<T>(Option<T>);

/// The smallest value written so far: join keeps the smaller value.
///
/// Bottom is "no value yet" (`None`). The order is the reverse of `T`'s, so
/// a *smaller* `T` is *higher* in the lattice: `Min::new(1)` has more
/// information than `Min::new(5)`. Useful for shortest-distance relaxation.
///
/// ```
/// use lvars::lattice::{Lattice, Min};
///
/// let m = Min::new(5).join(&Min::new(2)).join(&Min::new(9));
/// assert_eq!(m.into_inner(), Some(2));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Min<T>(Option<T>);

// `Default` is written by hand: deriving it would needlessly require
// `T: Default`, but the default (bottom) holds no `T`.
impl<T> Default for Max<T> {
    fn default() -> Self {
        Max(None)
    }
}

impl<T> Default for Min<T> {
    fn default() -> Self {
        Min(None)
    }
}

impl<T: Ord> Max<T> {
    /// A state holding `value`.
    pub fn new(value: T) -> Self {
        Max(Some(value))
    }

    /// The current maximum, or `None` at bottom.
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }

    /// The current maximum, or `None` at bottom, by value.
    pub fn into_inner(self) -> Option<T> {
        self.0
    }
}

impl<T: Ord> Min<T> {
    /// A state holding `value`.
    pub fn new(value: T) -> Self {
        Min(Some(value))
    }

    /// The current minimum, or `None` at bottom.
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }

    /// The current minimum, or `None` at bottom, by value.
    pub fn into_inner(self) -> Option<T> {
        self.0
    }
}

impl<T: Ord> From<T> for Max<T> {
    fn from(value: T) -> Self {
        Max::new(value)
    }
}

impl<T: Ord> From<T> for Min<T> {
    fn from(value: T) -> Self {
        Min::new(value)
    }
}

impl<T: Ord + Clone> Lattice for Max<T> {
    fn bottom() -> Self {
        Max(None)
    }

    fn join_assign(&mut self, other: &Self) -> bool {
        // `Option`'s order already puts `None` below every `Some`, which is
        // exactly the lattice order.
        if other.0 > self.0 {
            self.0.clone_from(&other.0);
            true
        } else {
            false
        }
    }

    fn leq(&self, other: &Self) -> bool {
        self.0 <= other.0
    }
}

impl<T: Ord + Clone> Lattice for Min<T> {
    fn bottom() -> Self {
        Min(None)
    }

    fn join_assign(&mut self, other: &Self) -> bool {
        if other.leq(self) {
            return false;
        }
        // `other` is strictly higher: either we were bottom or it is smaller.
        self.0.clone_from(&other.0);
        true
    }

    fn leq(&self, other: &Self) -> bool {
        // `Option`'s order would put `None` first in both directions, so the
        // reversed order cannot be derived from it; spell out the cases.
        match (&self.0, &other.0) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => b <= a,
        }
    }
}
