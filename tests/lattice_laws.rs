//! Law checks for every provided lattice, proof that the checker rejects
//! broken lattices, and unit tests for specific join behaviours.

use lvars::lattice::{check_laws, Flat, Lattice, Law, MapUnion, Max, Min, SetUnion};
use std::fmt::Debug;

fn assert_lawful<L: Lattice + Debug>(samples: &[L]) {
    if let Err(e) = check_laws(samples) {
        panic!("{e}");
    }
}

fn assert_violates<L: Lattice + Debug>(samples: &[L], law: Law) {
    match check_laws(samples) {
        Ok(()) => panic!("checker accepted a lattice that breaks {law}"),
        Err(e) => assert_eq!(e.law(), law, "wrong law reported: {e}"),
    }
}

fn set(xs: &[u8]) -> SetUnion<u8> {
    xs.iter().copied().collect()
}

// ---------------------------------------------------------------------------
// Provided lattices pass.

#[test]
fn max_is_lawful() {
    assert_lawful(&[Max::new(0), Max::new(3), Max::new(3), Max::new(-7), Max::new(100)]);
    assert_lawful::<Max<i32>>(&[]);
}

#[test]
fn min_is_lawful() {
    assert_lawful(&[Min::new(0), Min::new(3), Min::new(-7), Min::new(100), Min::bottom()]);
}

#[test]
fn set_union_is_lawful() {
    assert_lawful(&[
        set(&[]),
        set(&[1]),
        set(&[2]),
        set(&[1, 2]),
        set(&[2, 3, 4]),
        set(&[0, 1, 2, 3, 4, 5]),
    ]);
}

#[test]
fn map_union_is_lawful() {
    let m = |entries: &[(&'static str, i32)]| -> MapUnion<&'static str, Max<i32>> {
        entries.iter().map(|&(k, v)| (k, Max::new(v))).collect()
    };
    assert_lawful(&[
        m(&[]),
        m(&[("a", 1)]),
        m(&[("a", 5)]),
        m(&[("b", 2)]),
        m(&[("a", 1), ("b", 9)]),
        m(&[("a", 7), ("c", 0)]),
    ]);
}

#[test]
fn map_union_with_top_is_lawful() {
    type M = MapUnion<u8, Flat<char>>;
    let samples: Vec<M> = vec![
        M::singleton(1, Flat::Value('x')),
        M::singleton(1, Flat::Value('y')),
        M::singleton(2, Flat::Value('x')),
        M::singleton(1, Flat::Top),
        [(1, Flat::Value('x')), (2, Flat::Top)].into_iter().collect(),
        M::singleton(3, Flat::Bottom),
    ];
    assert_lawful(&samples);
}

#[test]
fn flat_is_lawful() {
    assert_lawful(&[Flat::Bottom, Flat::Value(1), Flat::Value(2), Flat::Value(1), Flat::Top]);
}

#[test]
fn unit_and_bool_are_lawful() {
    assert_lawful(&[(), ()]);
    assert_lawful(&[false, true]);
}

#[test]
fn tuples_are_lawful() {
    assert_lawful(&[
        (Max::new(1), set(&[1])),
        (Max::new(4), set(&[])),
        (Max::new(2), set(&[2, 3])),
        (Max::bottom(), set(&[1, 3])),
    ]);
    assert_lawful(&[
        (Flat::Value(1), true, Min::new(5)),
        (Flat::Value(2), false, Min::new(3)),
        (Flat::Top, false, Min::bottom()),
        (Flat::Bottom, true, Min::new(9)),
    ]);
}

#[test]
fn large_sample_slices_are_capped_but_accepted() {
    let samples: Vec<SetUnion<u16>> = (0..1000u16).map(|i| [i % 7, i % 11].into_iter().collect()).collect();
    assert_lawful(&samples);
}

// ---------------------------------------------------------------------------
// Broken lattices are rejected with the right law. Each one breaks a single
// law on the chosen samples, so the reported law is unambiguous.

/// Join keeps the left operand.
#[derive(Clone, Debug)]
struct LeftBiased(Option<u8>);

impl Lattice for LeftBiased {
    fn bottom() -> Self {
        LeftBiased(None)
    }
    fn join_assign(&mut self, other: &Self) -> bool {
        if self.0.is_none() && other.0.is_some() {
            self.0 = other.0;
            return true;
        }
        false
    }
    fn leq(&self, other: &Self) -> bool {
        self.0.is_none() || self.0 == other.0
    }
}

#[test]
fn rejects_non_commutative_join() {
    assert_violates(&[LeftBiased(Some(1)), LeftBiased(Some(2))], Law::Commutativity);
}

/// Join is bitwise or (subset order), but `leq` is numeric order.
#[derive(Clone, Debug)]
struct OrWithNumericOrder(u8);

impl Lattice for OrWithNumericOrder {
    fn bottom() -> Self {
        OrWithNumericOrder(0)
    }
    fn join_assign(&mut self, other: &Self) -> bool {
        let old = self.0;
        self.0 |= other.0;
        self.0 != old
    }
    fn leq(&self, other: &Self) -> bool {
        self.0 <= other.0
    }
}

#[test]
fn rejects_order_that_disagrees_with_join() {
    // 1 <= 2 numerically, but 1 | 2 = 3, not 2.
    assert_violates(
        &[OrWithNumericOrder(1), OrWithNumericOrder(2)],
        Law::OrderAgreesWithJoin,
    );
}

/// Rock-paper-scissors with a bottom: commutative and idempotent, but each
/// move beats exactly one other, so join is not associative.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Rps {
    Bottom,
    Rock,
    Paper,
    Scissors,
}

impl Rps {
    fn join_value(self, other: Self) -> Self {
        use Rps::*;
        match (self, other) {
            (Bottom, x) | (x, Bottom) => x,
            (Rock, Paper) | (Paper, Rock) => Paper,
            (Paper, Scissors) | (Scissors, Paper) => Scissors,
            (Scissors, Rock) | (Rock, Scissors) => Rock,
            (x, _) => x,
        }
    }
}

impl Lattice for Rps {
    fn bottom() -> Self {
        Rps::Bottom
    }
    fn join_assign(&mut self, other: &Self) -> bool {
        let new = self.join_value(*other);
        let changed = new != *self;
        *self = new;
        changed
    }
    fn leq(&self, other: &Self) -> bool {
        self.join_value(*other) == *other
    }
}

#[test]
fn rejects_non_associative_join() {
    assert_violates(&[Rps::Rock, Rps::Paper, Rps::Scissors], Law::Associativity);
}

/// A correct max lattice with configurable lies in its changed flag, bottom
/// or top.
#[derive(Clone, Debug)]
struct Faulty<const FAULT: u8>(u8);

const ALWAYS_CHANGED: u8 = 1;
const NEVER_CHANGED: u8 = 2;
const BAD_BOTTOM: u8 = 3;
const BAD_TOP: u8 = 4;

impl<const FAULT: u8> Lattice for Faulty<FAULT> {
    fn bottom() -> Self {
        Faulty(if FAULT == BAD_BOTTOM { 5 } else { 0 })
    }
    fn join_assign(&mut self, other: &Self) -> bool {
        let old = self.0;
        self.0 = self.0.max(other.0);
        match FAULT {
            ALWAYS_CHANGED => true,
            NEVER_CHANGED => false,
            _ => self.0 != old,
        }
    }
    fn leq(&self, other: &Self) -> bool {
        self.0 <= other.0
    }
    fn is_top(&self) -> bool {
        // 3 claims to be top, yet joining 5 into it yields 5.
        FAULT == BAD_TOP && self.0 == 3
    }
}

#[test]
fn rejects_change_reported_for_self_join() {
    assert_violates(&[Faulty::<ALWAYS_CHANGED>(1)], Law::Idempotence);
}

#[test]
fn rejects_growth_reported_as_no_change() {
    assert_violates(&[Faulty::<NEVER_CHANGED>(1), Faulty(2)], Law::ChangedFlag);
}

#[test]
fn rejects_bottom_that_is_not_identity() {
    assert_violates(&[Faulty::<BAD_BOTTOM>(1)], Law::BottomIdentity);
}

#[test]
fn rejects_top_that_is_not_absorbing() {
    assert_violates(&[Faulty::<BAD_TOP>(3), Faulty(5)], Law::TopAbsorbing);
}

/// Overrides `join` with something other than `join_assign`.
#[derive(Clone, Debug)]
struct InconsistentJoin(u8);

impl Lattice for InconsistentJoin {
    fn bottom() -> Self {
        InconsistentJoin(0)
    }
    fn join_assign(&mut self, other: &Self) -> bool {
        let old = self.0;
        self.0 = self.0.max(other.0);
        self.0 != old
    }
    fn leq(&self, other: &Self) -> bool {
        self.0 <= other.0
    }
    fn join(self, _other: &Self) -> Self {
        self
    }
}

#[test]
fn rejects_join_that_disagrees_with_join_assign() {
    assert_violates(&[InconsistentJoin(1), InconsistentJoin(2)], Law::JoinMatchesJoinAssign);
}

/// `leq` is strict, so not even `a ≤ a` holds.
#[derive(Clone, Debug)]
struct Strict(u8);

impl Lattice for Strict {
    fn bottom() -> Self {
        Strict(0)
    }
    fn join_assign(&mut self, other: &Self) -> bool {
        let old = self.0;
        self.0 = self.0.max(other.0);
        self.0 != old
    }
    fn leq(&self, other: &Self) -> bool {
        self.0 < other.0
    }
}

#[test]
fn rejects_irreflexive_order() {
    assert_violates(&[Strict(1)], Law::Reflexivity);
}

#[test]
fn violation_message_names_law_and_elements() {
    let err = check_laws(&[LeftBiased(Some(1)), LeftBiased(Some(2))]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("commutativity"), "{msg}");
    assert!(msg.contains("LeftBiased(Some(1))"), "{msg}");
    assert!(msg.contains("LeftBiased(Some(2))"), "{msg}");
    assert!(!msg.contains('\n'), "message should be one line: {msg}");
    let names: Vec<&str> = err.elements().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["a", "b", "a ⊔ b", "b ⊔ a"]);
    // Usable as a boxed error.
    let _: Box<dyn std::error::Error> = Box::new(err);
}

// ---------------------------------------------------------------------------
// Specific behaviours.

#[test]
fn flat_conflicting_values_join_to_top() {
    let mut v = Flat::Value("a");
    assert!(!v.join_assign(&Flat::Value("a")));
    assert_eq!(v, Flat::Value("a"));
    assert!(v.join_assign(&Flat::Value("b")));
    assert_eq!(v, Flat::Top);
    assert!(v.is_top());
    // Top absorbs everything afterwards.
    assert!(!v.join_assign(&Flat::Value("a")));
    assert!(v.is_top());
    assert_eq!(Flat::Bottom.join(&Flat::Value(7)), Flat::Value(7));
    assert_eq!(Flat::Value(7).value(), Some(&7));
}

#[test]
fn map_union_joins_pointwise() {
    let mut a: MapUnion<&str, Max<u32>> = [("x", Max::new(1)), ("y", Max::new(9))].into_iter().collect();
    let b: MapUnion<&str, Max<u32>> = [("x", Max::new(5)), ("z", Max::new(2))].into_iter().collect();
    assert!(a.join_assign(&b));
    let entries: Vec<(&str, u32)> = a.iter().map(|(k, v)| (*k, *v.get().unwrap())).collect();
    assert_eq!(entries, [("x", 5), ("y", 9), ("z", 2)]);
    // Joining again adds nothing.
    assert!(!a.join_assign(&b));
    // Keys absent on one side count as bottom for the order.
    assert!(b.leq(&a));
    assert!(!a.leq(&b));
    // A single top value makes the map top.
    let c = MapUnion::singleton("k", Flat::Value(1)).join(&MapUnion::singleton("k", Flat::Value(2)));
    assert!(c.is_top());
    // Bottom values are never stored.
    assert!(MapUnion::<u8, Max<u8>>::singleton(1, Max::bottom()).is_empty());
}

#[test]
fn map_union_from_iter_joins_repeated_keys() {
    let m: MapUnion<u8, Max<u8>> = [(1, Max::new(4)), (1, Max::new(2))].into_iter().collect();
    assert_eq!(m.get(&1), Some(&Max::new(4)));
    assert_eq!(m.len(), 1);
}

#[test]
fn set_union_iterates_sorted() {
    let mut s: SetUnion<i32> = [5, -1, 3].into_iter().collect();
    assert!(s.join_assign(&[4, 0, 5].into_iter().collect()));
    assert_eq!(s.iter().copied().collect::<Vec<_>>(), [-1, 0, 3, 4, 5]);
    assert_eq!((&s).into_iter().count(), 5);
    assert!(s.contains(&4));
    assert!(!s.insert(4));
    assert_eq!(s.into_iter().collect::<Vec<_>>(), [-1, 0, 3, 4, 5]);
}

#[test]
fn min_keeps_the_minimum() {
    let mut m = Min::bottom();
    assert!(m.join_assign(&Min::new(10)));
    assert!(m.join_assign(&Min::new(3)));
    assert!(!m.join_assign(&Min::new(7)));
    assert!(!m.join_assign(&Min::bottom()));
    assert_eq!(m.get(), Some(&3));
    // Smaller is higher in the lattice.
    assert!(Min::new(10).leq(&Min::new(3)));
    assert!(!Min::new(3).leq(&Min::new(10)));
}

#[test]
fn max_keeps_the_maximum() {
    let m = Max::new(3).join(&Max::new(10)).join(&Max::new(7));
    assert_eq!(m.into_inner(), Some(10));
}

#[test]
fn pairs_join_componentwise() {
    let mut p = (Max::new(1), set(&[1]));
    assert!(p.join_assign(&(Max::new(0), set(&[2]))));
    assert_eq!(p, (Max::new(1), set(&[1, 2])));
    // A change in only the first component is still reported (no
    // short-circuit skipping the second).
    let mut q = (true, false);
    assert!(!q.join_assign(&(true, false)));
    assert!(q.join_assign(&(false, true)));
    assert_eq!(q, (true, true));
    // Any top component makes the tuple top.
    let t = (Flat::Value(1), false).join(&(Flat::Value(2), true));
    assert!(t.is_top());
    let triple = (true, Max::new(2), Min::new(2)).join(&(false, Max::new(5), Min::new(9)));
    assert_eq!(triple, (true, Max::new(5), Min::new(2)));
}

#[test]
fn bool_and_unit_behave() {
    assert!(!bool::bottom());
    let mut b = false;
    assert!(b.join_assign(&true));
    assert!(!b.join_assign(&false));
    assert!(b);
    assert!(!().join_assign(&()));
    assert!(().leq(&()));
}
