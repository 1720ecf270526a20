//! Join-semilattices: the state spaces of LVars.
//!
//! # What a join-semilattice is
//!
//! A *join-semilattice* is a set of states with a partial order `≤` ("has no
//! more information than") in which every two states `a` and `b` have a
//! *least upper bound* `a ⊔ b`, their **join**: the smallest state that
//! contains the information of both. Join is
//!
//! * idempotent: `a ⊔ a = a`,
//! * commutative: `a ⊔ b = b ⊔ a`,
//! * associative: `(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`,
//!
//! and it determines the order: `a ≤ b` exactly when `a ⊔ b = b`. Every
//! lattice here also has a least element `⊥` ([`Lattice::bottom`]) with
//! `⊥ ⊔ a = a`. Some have a greatest element `⊤` that stands for an error
//! ("two writers disagreed"); once a state is top, joining more into it
//! keeps it top.
//!
//! # How LVars use it
//!
//! An LVar is a shared variable whose state lives in a lattice. Writers never
//! overwrite: a `put` *joins* its value into the current state, so the state
//! only grows. Because join is commutative, associative and idempotent, the
//! final state is the same whatever order (or however many times) concurrent
//! puts happen to run in, which is what makes LVar programs deterministic.
//! Readers use *threshold reads*: they block until the state is at least some
//! value (via [`Lattice::leq`]) rather than observing the exact state, which
//! could differ between schedules. A put that drives the state to top
//! ([`Lattice::is_top`]) is a deterministic error.
//!
//! None of this holds if a type's `join_assign` and `leq` do not actually
//! form a lattice, and the compiler cannot check that. Use [`check_laws`] in
//! your tests for every lattice you write.
//!
//! # Provided lattices
//!
//! | Type | States | Join |
//! |------|--------|------|
//! | [`Max<T>`] / [`Min<T>`] | nothing, or one `T` | keep the larger / smaller |
//! | [`SetUnion<T>`] | a set of `T` | union |
//! | [`MapUnion<K, V>`] | a map from `K` to lattice `V` | pointwise join |
//! | [`Flat<T>`] | bottom, one value, or top | equal values agree, different ones conflict |
//! | `()` | one state | trivial |
//! | `bool` | `false < true` | or |
//! | `(A, B)`, `(A, B, C)` | tuples of lattices | componentwise |
//!
//! # Writing your own lattice
//!
//! A set of up to eight flags, ordered by inclusion, with bitwise-or as join:
//!
//! ```
//! use lvars::lattice::{check_laws, Lattice};
//!
//! #[derive(Clone, Debug)]
//! struct Flags(u8);
//!
//! impl Lattice for Flags {
//!     fn bottom() -> Self {
//!         Flags(0)
//!     }
//!     fn join_assign(&mut self, other: &Self) -> bool {
//!         let old = self.0;
//!         self.0 |= other.0;
//!         self.0 != old
//!     }
//!     fn leq(&self, other: &Self) -> bool {
//!         // `self` is a subset of `other`.
//!         self.0 & !other.0 == 0
//!     }
//! }
//!
//! let samples: Vec<Flags> = [0b0001, 0b0010, 0b0110, 0b1111].map(Flags).into();
//! check_laws(&samples).expect("Flags is a lattice");
//!
//! let joined = Flags(0b01).join(&Flags(0b10));
//! assert_eq!(joined.0, 0b11);
//! ```

mod flat;
mod laws;
mod map;
mod max_min;
mod product;
mod set;

pub use flat::Flat;
pub use laws::{check_laws, Law, LawViolation, MAX_PAIR_SAMPLES, MAX_TRIPLE_SAMPLES};
pub use map::MapUnion;
pub use max_min::{Max, Min};
pub use set::SetUnion;

/// A join-semilattice with a least element: the state space of an LVar.
///
/// Implementations must satisfy the laws described in the
/// [module documentation](self): join is idempotent, commutative and
/// associative, [`bottom`](Lattice::bottom) is its identity, and
/// [`leq`](Lattice::leq) agrees with join (`a ≤ b` iff `a ⊔ b = b`).
/// [`check_laws`] tests these on sample values.
///
/// Equality of states is *order-equivalence* (`a ≤ b && b ≤ a`), not
/// `PartialEq`, so a lattice may have several representations of one state.
pub trait Lattice: Clone {
    /// The least element; every state starts here.
    fn bottom() -> Self;

    /// Joins `other` into `self` in place. Returns true iff `self` changed
    /// (grew strictly).
    ///
    /// The return value lets an LVar skip waking readers after a put that
    /// added no information, so it must be exact: `true` precisely when the
    /// new state is not order-equivalent to the old one.
    fn join_assign(&mut self, other: &Self) -> bool;

    /// The partial order: `self <= other`, i.e. `other` has at least the
    /// information of `self`.
    fn leq(&self, other: &Self) -> bool;

    /// True for the top (error) element. Default: false (the lattice has no
    /// reachable top).
    ///
    /// Top must be absorbing: if `a.is_top()` then `a.join(b).is_top()`.
    fn is_top(&self) -> bool {
        false
    }

    /// Provided: by-value join, `self ⊔ other`.
    ///
    /// Overrides must agree with [`join_assign`](Lattice::join_assign).
    fn join(mut self, other: &Self) -> Self
    where
        Self: Sized,
    {
        self.join_assign(other);
        self
    }
}
