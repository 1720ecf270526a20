//! Property tests over many seeds of the network simulation: for every
//! seed, with delays, reordering, duplicates, drops and partitions,
//!
//! * once a query answers at a replica it keeps that answer, and a wait
//!   started at the beginning resolves exactly then, to the same answer
//!   (checked by the harness after every tick);
//! * after the network heals every replica holds the same state, the join
//!   of every local update;
//! * every replica then gives the same answer to every query.
//!
//! The last tests break a lattice and a delta on purpose and check that
//! the harness notices.

use std::fmt::Debug;

use lvars::crdt::codec::{Decode, DecodeError, Encode, Reader};
use lvars::crdt::sim::{NetConfig, Sim, SimFailure, SplitMix64};
use lvars::crdt::{Delta, GCounter, GSet, MVRegister, ORSet, PNCounter, ReplicaId, TwoPSet, VClock};
use lvars::lattice::{Flat, Lattice};
use lvars::lvar::ThresholdSet;

/// Seeds per property.
const SEEDS: u64 = 500;
const REPLICAS: usize = 4;
const CHAOS_TICKS: u64 = 100;

fn config() -> NetConfig {
    NetConfig::default()
}

/// A threshold no run reaches: an event of a replica that does not exist.
fn unreachable_orset() -> ORSet<u8> {
    let mut s = ORSet::new();
    s.add(ReplicaId(99), 0);
    s
}

/// Runs one seed: half the chaos, a watch on a snapshot of replica 0
/// (reached everywhere in the end) and on a state never reached, the rest
/// of the chaos, then `settle`. Returns the final answers.
fn run_seed<L>(
    mut sim: Sim<L>,
    never: L,
    mut workload: impl FnMut(&mut SplitMix64, ReplicaId, &mut L),
) -> Result<(), SimFailure>
where
    L: Lattice + Encode + Decode + Debug + Send + Sync + 'static,
{
    let never = sim.watch(ThresholdSet::single(never).unwrap());
    sim.run_with(CHAOS_TICKS / 2, &mut workload)?;
    let snapshot = sim.replica(0).state();
    let reached = sim.watch(ThresholdSet::single(snapshot).unwrap());
    sim.run_with(CHAOS_TICKS / 2, &mut workload)?;
    sim.settle()?;
    assert!(sim.answers(never).iter().all(Option::is_none));
    assert!(sim.answers(reached).iter().all(Option::is_some));
    Ok(())
}

fn orset_op(rng: &mut SplitMix64, id: ReplicaId, s: &mut ORSet<u8>) {
    let item = rng.below(6) as u8;
    if rng.chance(400) {
        s.remove(id, &item);
    } else {
        s.add(id, item);
    }
}

fn for_all_seeds(name: &str, mut run: impl FnMut(u64) -> Result<(), SimFailure>) {
    for seed in 0..SEEDS {
        if let Err(failure) = run(seed) {
            panic!("{name}, seed {seed}: {failure}");
        }
    }
}

#[test]
fn orset_full_state_gossip() {
    for_all_seeds("ORSet, full states", |seed| {
        run_seed(Sim::new(REPLICAS, config(), seed), unreachable_orset(), orset_op)
    });
}

#[test]
fn orset_delta_gossip() {
    for_all_seeds("ORSet, deltas", |seed| {
        run_seed(
            Sim::with_deltas(REPLICAS, config(), seed),
            unreachable_orset(),
            orset_op,
        )
    });
}

#[test]
fn counters_and_registers() {
    for_all_seeds("PNCounter, deltas", |seed| {
        let mut never = PNCounter::new();
        never.add(ReplicaId(99), 1);
        run_seed(
            Sim::with_deltas(REPLICAS, config(), seed),
            never,
            |rng, id, s: &mut PNCounter| s.add(id, rng.below(9) as i64 - 4),
        )
    });
    for_all_seeds("GCounter, full states", |seed| {
        let never = GCounter::from([(ReplicaId(99), 1)].into_iter().collect::<VClock>());
        run_seed(
            Sim::new(REPLICAS, config(), seed),
            never,
            |rng, id, s: &mut GCounter| s.increment(id, 1 + rng.below(3)),
        )
    });
    for_all_seeds("MVRegister, deltas", |seed| {
        let mut never = MVRegister::new();
        never.write(ReplicaId(99), 0);
        run_seed(
            Sim::with_deltas(REPLICAS, config(), seed),
            never,
            |rng, id, s: &mut MVRegister<u8>| {
                s.write(id, rng.below(4) as u8);
            },
        )
    });
}

#[test]
fn grow_only_and_two_phase_sets() {
    for_all_seeds("GSet", |seed| {
        run_seed(
            Sim::new(REPLICAS, config(), seed),
            GSet::from_iter([200u8]),
            |rng, _, s: &mut GSet<u8>| {
                s.insert(rng.below(20) as u8);
            },
        )
    });
    for_all_seeds("TwoPSet", |seed| {
        let mut never = TwoPSet::new();
        never.insert(200u8);
        run_seed(
            Sim::new(REPLICAS, config(), seed),
            never,
            |rng, _, s: &mut TwoPSet<u8>| {
                let item = rng.below(8) as u8;
                if rng.chance(300) {
                    s.remove(item);
                } else {
                    s.insert(item);
                }
            },
        )
    });
}

/// A cart with a checkout decision: the yes/no query "was checkout decided
/// with answer 1 or with answer 2?" has two incompatible thresholds, and
/// every replica must end with the same one, the one decided.
#[test]
fn incompatible_thresholds_give_one_answer_everywhere() {
    type Cart = (ORSet<u8>, Flat<u8>);
    for_all_seeds("cart with decision", |seed| {
        let decision = 1 + (seed % 2) as u8;
        let mut sim: Sim<Cart> = Sim::new(REPLICAS, config(), seed);
        let q =
            sim.watch(ThresholdSet::new(vec![(ORSet::new(), Flat::Value(1)), (ORSet::new(), Flat::Value(2))]).unwrap());
        sim.run_with(CHAOS_TICKS, |rng, id, (cart, decided): &mut Cart| {
            if rng.chance(30) {
                *decided = Flat::Value(decision);
            } else {
                orset_op(rng, id, cart);
            }
        })?;
        // Make sure someone decided, during a partition.
        sim.partition(&[&[0, 1], &[2, 3]]);
        sim.update(3, |(_, d)| *d = Flat::Value(decision))?;
        sim.run(10)?;
        sim.settle()?;
        for answer in sim.answers(q) {
            assert_eq!(answer.map(|(_, d)| d), Some(Flat::Value(decision)));
        }
        Ok(())
    });
}

// ---- the harness can fail --------------------------------------------

/// A broken "last writer wins" register: the highest sequence number wins,
/// but a tie between two different values keeps whichever arrived last, so
/// its join is not commutative (`leq` only compares sequence numbers).
#[derive(Clone, Debug, PartialEq)]
struct TieLww {
    seq: u64,
    value: u8,
}

impl Lattice for TieLww {
    fn bottom() -> Self {
        TieLww { seq: 0, value: 0 }
    }
    fn join_assign(&mut self, other: &Self) -> bool {
        if other.seq >= self.seq && other != self {
            *self = other.clone();
            return true;
        }
        false
    }
    fn leq(&self, other: &Self) -> bool {
        self.seq <= other.seq
    }
}

impl Encode for TieLww {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.seq, self.value).encode(out);
    }
}

impl Decode for TieLww {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (seq, value) = <(u64, u8)>::decode(input)?;
        Ok(TieLww { seq, value })
    }
}

fn lww_write(rng: &mut SplitMix64, _: ReplicaId, s: &mut TieLww) {
    s.seq += 1;
    s.value = rng.below(200) as u8;
}

#[test]
fn a_non_commutative_lattice_is_caught() {
    assert!(lvars::lattice::check_laws(&[TieLww { seq: 1, value: 1 }, TieLww { seq: 1, value: 2 }]).is_err());
    let mut caught = 0;
    for seed in 0..100 {
        let mut sim: Sim<TieLww> = Sim::new(REPLICAS, config(), seed);
        let result = sim
            .run_with(CHAOS_TICKS, lww_write)
            .and_then(|()| sim.settle().map(|_| ()));
        match result {
            Ok(()) => {}
            Err(SimFailure::NotConverged { .. } | SimFailure::WrongState { .. }) => caught += 1,
            Err(other) => panic!("seed {seed}: unexpected failure {other}"),
        }
    }
    // Only seeds with concurrent writes at equal sequence numbers whose
    // values survive to the end can show it (26 of these 100 do).
    assert!(
        caught >= 10,
        "the harness caught the broken lattice in only {caught} of 100 seeds"
    );
}

/// A grow-only counter whose deltas forget replica 0's count.
#[derive(Clone, Debug, PartialEq)]
struct LossyDelta(GCounter);

impl Lattice for LossyDelta {
    fn bottom() -> Self {
        LossyDelta(GCounter::new())
    }
    fn join_assign(&mut self, other: &Self) -> bool {
        self.0.join_assign(&other.0)
    }
    fn leq(&self, other: &Self) -> bool {
        self.0.leq(&other.0)
    }
}

impl Delta for LossyDelta {
    type Version = VClock;
    fn version(&self) -> VClock {
        self.0.version()
    }
    fn delta_since(&self, since: &VClock) -> Self {
        let full = self.0.delta_since(since);
        let kept = full.counts().iter().filter(|(r, _)| r.0 != 0).map(|(&r, &c)| (r, c));
        LossyDelta(GCounter::from(kept.collect::<VClock>()))
    }
}

impl Encode for LossyDelta {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
    }
}

impl Decode for LossyDelta {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        GCounter::decode(input).map(LossyDelta)
    }
}

#[test]
fn an_incomplete_delta_is_caught() {
    for seed in 0..20 {
        let mut sim: Sim<LossyDelta> = Sim::with_deltas(REPLICAS, config(), seed);
        sim.update(0, |s| s.0.increment(ReplicaId(0), 1)).unwrap();
        sim.run_with(CHAOS_TICKS, |_, id, s| s.0.increment(id, 1)).unwrap();
        assert!(
            matches!(sim.settle(), Err(SimFailure::NotConverged { .. })),
            "seed {seed}: lost updates went unnoticed"
        );
    }
}

/// A "lattice" whose join overwrites (and whose order calls only equal
/// values comparable): a merge can take information away.
#[derive(Clone, Debug, PartialEq)]
struct Overwrite(u8);

impl Lattice for Overwrite {
    fn bottom() -> Self {
        Overwrite(0)
    }
    fn join_assign(&mut self, other: &Self) -> bool {
        if other.0 != 0 && other != self {
            *self = other.clone();
            return true;
        }
        false
    }
    fn leq(&self, other: &Self) -> bool {
        self.0 == 0 || self == other
    }
}

impl Encode for Overwrite {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
    }
}

impl Decode for Overwrite {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        u8::decode(input).map(Overwrite)
    }
}

#[test]
fn a_join_that_forgets_is_caught_as_a_changed_answer() {
    for seed in 0..20 {
        let mut sim: Sim<Overwrite> = Sim::new(REPLICAS, config(), seed);
        for i in 0..REPLICAS {
            sim.update(i, |s| *s = Overwrite(i as u8 + 1)).unwrap();
        }
        sim.watch(ThresholdSet::single(Overwrite(1)).unwrap());
        let failure = sim.run(200).and_then(|()| sim.settle().map(|_| ()));
        assert!(
            matches!(failure, Err(SimFailure::AnswerChanged { .. })),
            "seed {seed}: {failure:?}"
        );
    }
}
