//! A law checker for user-defined lattices.
//!
//! LVar determinism rests on join really being a lattice join; the type
//! system cannot check that, so this module tests it on sample values.

use super::Lattice;
use std::error::Error;
use std::fmt;

/// At most this many samples (including bottom) take part in the pairwise
/// laws, which cost O(n²) joins.
pub const MAX_PAIR_SAMPLES: usize = 256;

/// At most this many samples (including bottom) take part in associativity,
/// which costs O(n³) joins.
pub const MAX_TRIPLE_SAMPLES: usize = 32;

/// A law that [`check_laws`] checks. Equations use order-equivalence
/// (`a ≤ b && b ≤ a`) as equality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Law {
    /// `a ≤ a`. Checked first because every other law's notion of equality
    /// relies on it.
    Reflexivity,
    /// `a ⊔ a = a`, and joining `a` into itself reports no change.
    Idempotence,
    /// `a ⊔ b = b ⊔ a`.
    Commutativity,
    /// `(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`.
    Associativity,
    /// `⊥ ⊔ a = a = a ⊔ ⊥`.
    BottomIdentity,
    /// `a ≤ b` iff `a ⊔ b = b`.
    OrderAgreesWithJoin,
    /// `a ≤ a ⊔ b` and `b ≤ a ⊔ b`.
    UpperBound,
    /// `join_assign` returns true exactly when the state changed.
    ChangedFlag,
    /// If `a` is top, then `a ⊔ b` and `b ⊔ a` are top.
    TopAbsorbing,
    /// The by-value `join` agrees with `join_assign` (only fails if `join`
    /// was overridden).
    JoinMatchesJoinAssign,
}

impl Law {
    /// A short statement of the law, for messages.
    pub fn statement(self) -> &'static str {
        match self {
            Law::Reflexivity => "reflexivity (a ≤ a)",
            Law::Idempotence => "idempotence (a ⊔ a = a, reported as no change)",
            Law::Commutativity => "commutativity (a ⊔ b = b ⊔ a)",
            Law::Associativity => "associativity ((a ⊔ b) ⊔ c = a ⊔ (b ⊔ c))",
            Law::BottomIdentity => "bottom identity (⊥ ⊔ a = a = a ⊔ ⊥)",
            Law::OrderAgreesWithJoin => "order agrees with join (a ≤ b iff a ⊔ b = b)",
            Law::UpperBound => "upper bound (a ≤ a ⊔ b and b ≤ a ⊔ b)",
            Law::ChangedFlag => "changed flag (join_assign returns true iff the state changed)",
            Law::TopAbsorbing => "top absorbing (if a is top then a ⊔ b and b ⊔ a are top)",
            Law::JoinMatchesJoinAssign => "join matches join_assign",
        }
    }
}

impl fmt::Display for Law {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.statement())
    }
}

/// A counterexample found by [`check_laws`]: the law that failed and the
/// values involved, formatted with `{:?}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LawViolation {
    law: Law,
    elements: Vec<(&'static str, String)>,
}

impl LawViolation {
    fn new(law: Law, elements: &[(&'static str, &dyn fmt::Debug)]) -> Self {
        let elements = elements
            .iter()
            .map(|(name, value)| (*name, format!("{value:?}")))
            .collect();
        LawViolation { law, elements }
    }

    /// The law that failed.
    pub fn law(&self) -> Law {
        self.law
    }

    /// The offending values and relevant intermediate results, as
    /// `(name, Debug text)` pairs such as `("a ⊔ b", "Max(Some(3))")`.
    pub fn elements(&self) -> &[(&'static str, String)] {
        &self.elements
    }
}

impl fmt::Display for LawViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lattice law violated: {}", self.law)?;
        for (i, (name, value)) in self.elements.iter().enumerate() {
            let sep = if i == 0 { ": " } else { ", " };
            write!(f, "{sep}{name} = {value}")?;
        }
        Ok(())
    }
}

impl Error for LawViolation {}

/// Checks the lattice laws on `samples` plus `L::bottom()`, returning the
/// first counterexample found.
///
/// Equality is order-equivalence (`a.leq(b) && b.leq(a)`), so `L` need not
/// implement `PartialEq`. Checked, in this order:
///
/// 1. per element: [`Law::Reflexivity`], [`Law::Idempotence`],
///    [`Law::BottomIdentity`];
/// 2. per ordered pair: [`Law::JoinMatchesJoinAssign`],
///    [`Law::Commutativity`], [`Law::UpperBound`],
///    [`Law::OrderAgreesWithJoin`], [`Law::ChangedFlag`],
///    [`Law::TopAbsorbing`];
/// 3. per ordered triple: [`Law::Associativity`].
///
/// # Cost
///
/// Pairwise laws cost O(n²) joins and associativity O(n³). To keep a large
/// sample slice from making a test run for minutes, at most
/// [`MAX_PAIR_SAMPLES`] samples take part in the pairwise laws and at most
/// [`MAX_TRIPLE_SAMPLES`] in associativity (both counts include bottom).
/// When there are more, an evenly spaced, deterministic selection is used,
/// so the first and later parts of the slice are both covered. Every sample
/// is still checked by the per-element laws.
///
/// # Errors
///
/// Returns the first [`LawViolation`] found, naming the [`Law`] and the
/// values that break it.
///
/// Passing is evidence, not proof: choose samples that include incomparable
/// elements, equal elements, and top if the lattice has one.
///
/// ```
/// use lvars::lattice::{check_laws, Law, Lattice, Max};
///
/// check_laws(&[Max::new(1), Max::new(5), Max::new(3)]).unwrap();
///
/// /// A broken "lattice": join keeps the left operand.
/// #[derive(Clone, Debug)]
/// struct First(Option<u8>);
/// impl Lattice for First {
///     fn bottom() -> Self { First(None) }
///     fn join_assign(&mut self, other: &Self) -> bool {
///         if self.0.is_none() && other.0.is_some() {
///             self.0 = other.0;
///             return true;
///         }
///         false
///     }
///     fn leq(&self, other: &Self) -> bool {
///         self.0.is_none() || self.0 == other.0
///     }
/// }
///
/// let err = check_laws(&[First(Some(1)), First(Some(2))]).unwrap_err();
/// assert_eq!(err.law(), Law::Commutativity);
/// ```
pub fn check_laws<L: Lattice + fmt::Debug>(samples: &[L]) -> Result<(), LawViolation> {
    let bottom = L::bottom();

    for a in std::iter::once(&bottom).chain(samples) {
        check_element(a, &bottom)?;
    }

    let pairs = pool(&bottom, samples, MAX_PAIR_SAMPLES);
    for &a in &pairs {
        for &b in &pairs {
            check_pair(a, b)?;
        }
    }

    let triples = pool(&bottom, samples, MAX_TRIPLE_SAMPLES);
    for &a in &triples {
        for &b in &triples {
            for &c in &triples {
                check_triple(a, b, c)?;
            }
        }
    }
    Ok(())
}

/// Bottom followed by at most `limit - 1` samples, evenly spaced.
fn pool<'a, L>(bottom: &'a L, samples: &'a [L], limit: usize) -> Vec<&'a L> {
    let take = samples.len().min(limit - 1);
    let mut out = Vec::with_capacity(take + 1);
    out.push(bottom);
    // With take < len the indices i * len / take are strictly increasing,
    // so no sample is picked twice; with take == len they are 0..len.
    out.extend((0..take).map(|i| &samples[i * samples.len() / take]));
    out
}

fn equiv<L: Lattice>(a: &L, b: &L) -> bool {
    a.leq(b) && b.leq(a)
}

/// `a ⊔ b` via `join_assign`, with its changed flag.
fn join_flag<L: Lattice>(a: &L, b: &L) -> (L, bool) {
    let mut x = a.clone();
    let changed = x.join_assign(b);
    (x, changed)
}

fn join<L: Lattice>(a: &L, b: &L) -> L {
    join_flag(a, b).0
}

fn check_element<L: Lattice + fmt::Debug>(a: &L, bottom: &L) -> Result<(), LawViolation> {
    if !a.leq(a) {
        return Err(LawViolation::new(Law::Reflexivity, &[("a", a)]));
    }

    let (aa, changed) = join_flag(a, a);
    if changed || !equiv(&aa, a) {
        return Err(LawViolation::new(
            Law::Idempotence,
            &[("a", a), ("a ⊔ a", &aa), ("reported change", &changed)],
        ));
    }

    let ba = join(bottom, a);
    let ab = join(a, bottom);
    if !equiv(&ba, a) || !equiv(&ab, a) {
        return Err(LawViolation::new(
            Law::BottomIdentity,
            &[("⊥", bottom), ("a", a), ("⊥ ⊔ a", &ba), ("a ⊔ ⊥", &ab)],
        ));
    }
    Ok(())
}

fn check_pair<L: Lattice + fmt::Debug>(a: &L, b: &L) -> Result<(), LawViolation> {
    let (ab, changed) = join_flag(a, b);

    let by_value = a.clone().join(b);
    if !equiv(&by_value, &ab) {
        return Err(LawViolation::new(
            Law::JoinMatchesJoinAssign,
            &[("a", a), ("b", b), ("a.join(b)", &by_value), ("join_assign", &ab)],
        ));
    }

    let ba = join(b, a);
    if !equiv(&ab, &ba) {
        return Err(LawViolation::new(
            Law::Commutativity,
            &[("a", a), ("b", b), ("a ⊔ b", &ab), ("b ⊔ a", &ba)],
        ));
    }

    if !a.leq(&ab) || !b.leq(&ab) {
        return Err(LawViolation::new(
            Law::UpperBound,
            &[("a", a), ("b", b), ("a ⊔ b", &ab)],
        ));
    }

    let leq = a.leq(b);
    if leq != equiv(&ab, b) {
        return Err(LawViolation::new(
            Law::OrderAgreesWithJoin,
            &[("a", a), ("b", b), ("a ⊔ b", &ab), ("a ≤ b", &leq)],
        ));
    }

    if changed == equiv(&ab, a) {
        return Err(LawViolation::new(
            Law::ChangedFlag,
            &[("a", a), ("b", b), ("a ⊔ b", &ab), ("reported change", &changed)],
        ));
    }

    if a.is_top() && !(ab.is_top() && ba.is_top()) {
        return Err(LawViolation::new(
            Law::TopAbsorbing,
            &[("a", a), ("b", b), ("a ⊔ b", &ab), ("b ⊔ a", &ba)],
        ));
    }
    Ok(())
}

fn check_triple<L: Lattice + fmt::Debug>(a: &L, b: &L, c: &L) -> Result<(), LawViolation> {
    let left = join(&join(a, b), c);
    let right = join(a, &join(b, c));
    if !equiv(&left, &right) {
        return Err(LawViolation::new(
            Law::Associativity,
            &[
                ("a", a),
                ("b", b),
                ("c", c),
                ("(a ⊔ b) ⊔ c", &left),
                ("a ⊔ (b ⊔ c)", &right),
            ],
        ));
    }
    Ok(())
}
