//! The replicated lattices obey the lattice laws, their encodings round
//! trip, and decoding hostile bytes fails with an error instead of
//! panicking.

use std::fmt::Debug;

use lvars::crdt::codec::{from_bytes, to_bytes, Decode, DecodeError, Encode};
use lvars::crdt::sim::SplitMix64;
use lvars::crdt::{Causality, Delta, GCounter, GSet, MVRegister, ORSet, PNCounter, ReplicaId, TwoPSet, VClock};
use lvars::lattice::{check_laws, Flat, Lattice, Max};

const REPLICAS: u32 = 3;

/// States reached by `REPLICAS` replicas doing random `op`s and merging
/// each other's states at random: realistic samples, including concurrent
/// (incomparable) ones.
fn reachable<L: Lattice>(seed: u64, steps: usize, mut op: impl FnMut(&mut SplitMix64, ReplicaId, &mut L)) -> Vec<L> {
    let mut rng = SplitMix64::new(seed);
    let mut states = vec![L::bottom(); REPLICAS as usize];
    let mut samples = Vec::new();
    for _ in 0..steps {
        let i = rng.index(states.len());
        if rng.chance(300) {
            let j = rng.index(states.len());
            let other = states[j].clone();
            states[i].join_assign(&other);
        } else {
            op(&mut rng, ReplicaId(i as u32), &mut states[i]);
        }
        samples.push(states[i].clone());
    }
    samples
}

fn item(rng: &mut SplitMix64) -> u8 {
    rng.below(5) as u8
}

fn vclocks() -> Vec<VClock> {
    reachable(1, 60, |rng, id, s: &mut VClock| {
        for _ in 0..=rng.below(2) {
            s.increment(id);
        }
    })
}

fn gcounters() -> Vec<GCounter> {
    reachable(2, 60, |rng, id, s: &mut GCounter| s.increment(id, rng.below(4)))
}

fn pncounters() -> Vec<PNCounter> {
    reachable(3, 60, |rng, id, s: &mut PNCounter| s.add(id, rng.below(7) as i64 - 3))
}

fn gsets() -> Vec<GSet<u8>> {
    reachable(4, 60, |rng, _, s: &mut GSet<u8>| {
        s.insert(item(rng));
    })
}

fn two_p_sets() -> Vec<TwoPSet<u8>> {
    reachable(5, 60, |rng, _, s: &mut TwoPSet<u8>| {
        if rng.chance(300) {
            s.remove(item(rng));
        } else {
            s.insert(item(rng));
        }
    })
}

fn orsets() -> Vec<ORSet<u8>> {
    reachable(6, 80, |rng, id, s: &mut ORSet<u8>| {
        if rng.chance(400) {
            s.remove(id, &item(rng));
        } else {
            s.add(id, item(rng));
        }
    })
}

fn mvregisters() -> Vec<MVRegister<u8>> {
    reachable(7, 60, |rng, id, s: &mut MVRegister<u8>| {
        s.write(id, item(rng));
    })
}

#[test]
fn every_replicated_type_is_a_lattice() {
    check_laws(&vclocks()).unwrap();
    check_laws(&gcounters()).unwrap();
    check_laws(&pncounters()).unwrap();
    check_laws(&gsets()).unwrap();
    check_laws(&two_p_sets()).unwrap();
    check_laws(&orsets()).unwrap();
    check_laws(&mvregisters()).unwrap();
}

#[test]
fn arbitrary_register_states_are_a_lattice_too() {
    // Not only reachable states: any sets of versions (equal clocks with
    // different values included), normalised to their maximal versions.
    let mut rng = SplitMix64::new(8);
    let samples: Vec<MVRegister<u8>> = (0..40)
        .map(|_| {
            let versions = (0..rng.below(4))
                .map(|_| {
                    let clock: VClock = (0..2).map(|r| (ReplicaId(r), rng.below(3))).collect();
                    (clock, rng.below(2) as u8)
                })
                .collect::<Vec<_>>();
            MVRegister::from(versions)
        })
        .collect();
    check_laws(&samples).unwrap();
}

#[test]
fn samples_include_concurrent_states() {
    // Otherwise the law checks above would only see a chain.
    let orsets = orsets();
    let concurrent = orsets.iter().any(|a| orsets.iter().any(|b| !a.leq(b) && !b.leq(a)));
    assert!(concurrent);
    let clocks = vclocks();
    assert!(clocks
        .iter()
        .any(|a| clocks.iter().any(|b| a.compare(b) == Causality::Concurrent)));
}

fn round_trips<L: Lattice + Encode + Decode + Debug + PartialEq>(samples: &[L]) {
    for s in samples {
        let bytes = to_bytes(s);
        assert_eq!(from_bytes::<L>(&bytes).as_ref(), Ok(s));
    }
}

#[test]
fn encodings_round_trip() {
    round_trips(&vclocks());
    round_trips(&gcounters());
    round_trips(&pncounters());
    round_trips(&gsets());
    round_trips(&two_p_sets());
    round_trips(&orsets());
    round_trips(&mvregisters());
}

/// Every strict prefix of a valid encoding is an error (never a panic,
/// never a different value), and random bytes never panic.
fn hostile_bytes_are_errors<L: Lattice + Encode + Decode + Debug>(samples: &[L], seed: u64) {
    for s in samples {
        let bytes = to_bytes(s);
        for cut in 0..bytes.len() {
            assert!(from_bytes::<L>(&bytes[..cut]).is_err(), "prefix {cut} of {s:?} decoded");
        }
        // Flip one random byte: an error or some other valid state, never a panic.
        let mut rng = SplitMix64::new(seed ^ bytes.len() as u64);
        let mut flipped = bytes.clone();
        let at = rng.index(flipped.len());
        flipped[at] ^= 1 << rng.below(8);
        if let Ok(other) = from_bytes::<L>(&flipped) {
            assert_eq!(to_bytes(&other), flipped, "decoding is canonical");
        }
    }
    let mut rng = SplitMix64::new(seed);
    for _ in 0..3_000 {
        let len = rng.index(40);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        if let Ok(v) = from_bytes::<L>(&bytes) {
            // Whatever decodes re-encodes to the same bytes.
            assert_eq!(to_bytes(&v), bytes);
        }
    }
}

#[test]
fn decoding_hostile_bytes_never_panics() {
    hostile_bytes_are_errors(&vclocks(), 10);
    hostile_bytes_are_errors(&gcounters(), 11);
    hostile_bytes_are_errors(&pncounters(), 12);
    hostile_bytes_are_errors(&gsets(), 13);
    hostile_bytes_are_errors(&two_p_sets(), 14);
    hostile_bytes_are_errors(&orsets(), 15);
    hostile_bytes_are_errors(&mvregisters(), 16);
    hostile_bytes_are_errors(&[(Flat::Value(3u8), Max::new(7u64))], 17);
}

#[test]
fn non_canonical_states_are_rejected_with_the_reason() {
    // A zero clock entry: replica 1, count 0.
    assert_eq!(
        from_bytes::<VClock>(&[1, 1, 0]),
        Err(DecodeError::NonCanonical {
            what: "zero vector-clock entry"
        })
    );
    // A register holding a version and one that dominates it.
    let old: VClock = [(ReplicaId(0), 1)].into_iter().collect();
    let new: VClock = [(ReplicaId(0), 2)].into_iter().collect();
    let bytes = to_bytes(&vec![(old, 1u8), (new, 2u8)]);
    assert_eq!(
        from_bytes::<MVRegister<u8>>(&bytes),
        Err(DecodeError::NonCanonical {
            what: "register version dominated by another"
        })
    );
    // An OR-set element without any add.
    assert!(matches!(
        from_bytes::<ORSet<u8>>(&[1, 7, 0, 0]),
        Err(DecodeError::NonCanonical { .. })
    ));
}

/// `delta_since` is below the state, and brings any state holding the
/// events of the version up to the full state.
fn deltas_are_complete<L: Delta + Debug>(samples: &[L]) {
    for full in samples {
        for peer in samples {
            let delta = full.delta_since(&peer.version());
            assert!(delta.leq(full), "delta above the state: {delta:?} vs {full:?}");
            // Samples come from replicas that exchange whole states, so each
            // holds every event its version covers: the delta must suffice.
            let caught_up = peer.clone().join(&delta);
            if full.leq(&caught_up) {
                continue;
            }
            panic!("delta since {peer:?} misses part of {full:?}: {delta:?}");
        }
    }
}

#[test]
fn deltas_carry_what_a_peer_lacks() {
    deltas_are_complete(&vclocks());
    deltas_are_complete(&gcounters());
    deltas_are_complete(&pncounters());
    deltas_are_complete(&orsets());
    deltas_are_complete(&mvregisters());
}

#[test]
fn deltas_are_smaller_than_states() {
    let mut a = ORSet::new();
    for i in 0..50u8 {
        a.add(ReplicaId(0), i);
    }
    let peer = a.clone();
    a.add(ReplicaId(0), 200);
    a.remove(ReplicaId(0), &3);
    let delta = a.delta_since(&peer.version());
    assert!(to_bytes(&delta).len() * 10 < to_bytes(&a).len());
    let caught_up = peer.join(&delta);
    assert!(caught_up.leq(&a) && a.leq(&caught_up));
    assert!(!caught_up.contains(&3) && caught_up.contains(&200));
}
