//! Lattice instances for `()`, `bool` and tuples of lattices.

use super::Lattice;

/// The one-point lattice: carries no information, so every join is a no-op.
/// Useful as the value type of a [`MapUnion`](super::MapUnion) used as a set
/// of keys, or as a placeholder component of a tuple.
impl Lattice for () {
    fn bottom() -> Self {}

    fn join_assign(&mut self, _other: &Self) -> bool {
        false
    }

    fn leq(&self, _other: &Self) -> bool {
        true
    }
}

/// The two-point lattice `false < true`; join is logical or. A one-shot flag
/// such as "done" or "seen".
impl Lattice for bool {
    fn bottom() -> Self {
        false
    }

    fn join_assign(&mut self, other: &Self) -> bool {
        let changed = !*self && *other;
        *self |= *other;
        changed
    }

    fn leq(&self, other: &Self) -> bool {
        !*self || *other
    }
}

/// The product lattice: components are joined and compared independently.
///
/// The pair is top iff any component is top. Tops are not collapsed into a
/// single element (`(⊤, x)` and `(⊤, y)` stay distinct), but top is still
/// absorbing: joining anything into a pair with a top component keeps it.
impl<A: Lattice, B: Lattice> Lattice for (A, B) {
    fn bottom() -> Self {
        (A::bottom(), B::bottom())
    }

    fn join_assign(&mut self, other: &Self) -> bool {
        // Evaluate every component before combining: `||` would short-circuit
        // and skip joining the later ones.
        let a = self.0.join_assign(&other.0);
        let b = self.1.join_assign(&other.1);
        a | b
    }

    fn leq(&self, other: &Self) -> bool {
        self.0.leq(&other.0) && self.1.leq(&other.1)
    }

    fn is_top(&self) -> bool {
        self.0.is_top() || self.1.is_top()
    }
}

/// The product lattice of three components; see the pair instance.
impl<A: Lattice, B: Lattice, C: Lattice> Lattice for (A, B, C) {
    fn bottom() -> Self {
        (A::bottom(), B::bottom(), C::bottom())
    }

    fn join_assign(&mut self, other: &Self) -> bool {
        // No short-circuiting, as for pairs.
        let a = self.0.join_assign(&other.0);
        let b = self.1.join_assign(&other.1);
        let c = self.2.join_assign(&other.2);
        a | b | c
    }

    fn leq(&self, other: &Self) -> bool {
        self.0.leq(&other.0) && self.1.leq(&other.1) && self.2.leq(&other.2)
    }

    fn is_top(&self) -> bool {
        self.0.is_top() || self.1.is_top() || self.2.is_top()
    }
}
