//! serde support (`--features serde`): JSON round trips, and states that
//! come in through serde are normalised like decoded ones.
#![cfg(feature = "serde")]

use std::fmt::Debug;

use lvars::crdt::{Dot, GCounter, GSet, MVRegister, ORSet, PNCounter, ReplicaId, TwoPSet, VClock};
use serde::{de::DeserializeOwned, Serialize};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(&back, value, "{json}");
}

#[test]
fn every_type_round_trips_through_json() {
    let (r0, r1) = (ReplicaId(0), ReplicaId(1));
    let mut clock = VClock::new();
    clock.increment(r0);
    clock.increment(r1);
    round_trip(&clock);
    round_trip(&Dot::new(r1, 4));

    let mut g = GCounter::new();
    g.increment(r1, 9);
    round_trip(&g);
    let mut pn = PNCounter::new();
    pn.add(r0, -3);
    pn.add(r1, 5);
    round_trip(&pn);

    round_trip(&GSet::from_iter(["Book".to_string()]));
    let mut two = TwoPSet::new();
    two.insert(1u8);
    two.remove(1u8);
    two.insert(2u8);
    round_trip(&two);

    let mut or = ORSet::new();
    or.add(r0, "Book".to_string());
    or.add(r1, "Shoes".to_string());
    or.remove(r0, &"Shoes".to_string());
    round_trip(&or);

    let mut reg = MVRegister::new();
    reg.write(r0, 1u8);
    let mut other = reg.clone();
    other.write(r1, 2);
    reg.write(r0, 3);
    let both = lvars::lattice::Lattice::join(reg, &other);
    assert_eq!(both.values().count(), 2);
    round_trip(&both);
}

#[test]
fn deserialised_states_are_normalised() {
    // A zero clock entry is dropped.
    let clock: VClock = serde_json::from_str(r#"{"0": 2, "1": 0}"#).unwrap();
    assert_eq!(clock, [(ReplicaId(0), 2)].into_iter().collect());
    // A register version dominated by another is dropped.
    let reg: MVRegister<u8> = serde_json::from_str(r#"[[{"0": 1}, 7], [{"0": 2}, 8]]"#).unwrap();
    assert_eq!(reg.values().collect::<Vec<_>>(), [&8]);
}
