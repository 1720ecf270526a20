//! `Flat`: single assignment.

use super::Lattice;

/// The flat lattice over `T`, for single-assignment variables (IVars).
///
/// `Bottom` is below every `Value`, every `Value` is below `Top`, and
/// distinct values are incomparable. Writing the same value twice is
/// harmless (`Value(x) ⊔ Value(x) = Value(x)`), but writing two different
/// values is a conflict and yields `Top`, the error state.
///
/// ```
/// use lvars::lattice::{Flat, Lattice};
///
/// let v = Flat::Value(1);
/// assert_eq!(v.clone().join(&Flat::Value(1)), Flat::Value(1));
/// assert!(v.join(&Flat::Value(2)).is_top());
/// ```
// Deriving `Default` on an enum adds no `T: Default` bound.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Flat<T> {
    /// Nothing written yet.
    #[default]
    Bottom,
    /// Exactly one value has been written (possibly several times).
    Value(T),
    /// Conflicting values were written: the error state.
    Top,
}

impl<T> Flat<T> {
    /// The written value, if exactly one has been written.
    pub fn value(&self) -> Option<&T> {
        match self {
            Flat::Value(v) => Some(v),
            Flat::Bottom | Flat::Top => None,
        }
    }

    /// Whether nothing has been written yet.
    pub fn is_bottom(&self) -> bool {
        matches!(self, Flat::Bottom)
    }
}

impl<T> From<T> for Flat<T> {
    fn from(value: T) -> Self {
        Flat::Value(value)
    }
}

impl<T: Eq + Clone> Lattice for Flat<T> {
    fn bottom() -> Self {
        Flat::Bottom
    }

    fn join_assign(&mut self, other: &Self) -> bool {
        match (&*self, other) {
            // Nothing to add, or nothing can be added.
            (_, Flat::Bottom) | (Flat::Top, _) => false,
            (Flat::Value(a), Flat::Value(b)) if a == b => false,
            (Flat::Bottom, _) => {
                *self = other.clone();
                true
            }
            // Two different values, or a value meeting top.
            (Flat::Value(_), _) => {
                *self = Flat::Top;
                true
            }
        }
    }

    fn leq(&self, other: &Self) -> bool {
        match (self, other) {
            (Flat::Bottom, _) | (_, Flat::Top) => true,
            (Flat::Value(a), Flat::Value(b)) => a == b,
            (Flat::Value(_), Flat::Bottom) | (Flat::Top, _) => false,
        }
    }

    fn is_top(&self) -> bool {
        matches!(self, Flat::Top)
    }
}
