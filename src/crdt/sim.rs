//! A deterministic, seeded simulation of replicas on a faulty network.
//!
//! [`Sim`] runs N [`Replica`]s in one thread. Each tick, replicas gossip to
//! random peers (full states, or versions answered with deltas); messages
//! travel as encoded bytes and arrive after a random delay (so out of
//! order), may be duplicated or dropped, and are lost while a partition
//! separates sender and receiver. Everything random comes from one
//! [`SplitMix64`] seeded by the caller, so a seed replays exactly.
//!
//! While it runs, the simulation checks the guarantees of threshold queries
//! on every watched [`ThresholdSet`] at every replica, after every tick:
//!
//! * **stability**: once a query answers at a replica it keeps that answer;
//! * **waits agree**: a [`Replica::wait`] future started at the beginning
//!   resolves exactly when the query answers, to the same element, and its
//!   waker was called;
//!
//! and, once the network heals and [`settle`](Sim::settle) has run:
//!
//! * **convergence**: every replica holds one state (order-equivalent and
//!   byte-for-byte equal), and it is the join of every local update;
//! * **agreement**: every replica gives the same answer to every query.
//!
//! A violation is returned as a [`SimFailure`].
//!
//! ```
//! use lvars::crdt::sim::{NetConfig, Sim};
//! use lvars::crdt::GSet;
//! use lvars::lvar::ThresholdSet;
//!
//! let mut sim: Sim<GSet<u8>> = Sim::new(3, NetConfig::default(), 7);
//! let q = sim.watch(ThresholdSet::single(GSet::from_iter([1, 2])).unwrap());
//! sim.update(0, |s| { s.insert(1); }).unwrap();
//! sim.partition(&[&[0], &[1, 2]]);
//! sim.update(2, |s| { s.insert(2); }).unwrap();
//! sim.run(20).unwrap();
//! assert_eq!(sim.answers(q), [None, None, None]); // nobody has both yet
//! sim.settle().unwrap(); // heal, converge, check
//! assert!(sim.answers(q).iter().all(Option::is_some));
//! ```

use std::fmt::{self, Debug};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use super::codec::{from_bytes, to_bytes, Decode, Encode};
use super::{Delta, Replica, ReplicaError, ReplicaId};
use crate::lattice::Lattice;
use crate::lvar::ThresholdSet;

pub use super::rng::SplitMix64;

/// The network's behaviour and the workload's rates. Probabilities are in
/// permille (1000 = always).
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Chance that a message is lost.
    pub drop_permille: u32,
    /// Chance that a delivered message is delivered again later.
    pub duplicate_permille: u32,
    /// Messages arrive 1 to `max_delay` ticks after they are sent.
    pub max_delay: u64,
    /// Chance per tick that a replica gossips to one random peer.
    pub gossip_permille: u32,
    /// In [`Sim::run_with`], chance per tick that a replica makes a local
    /// update.
    pub update_permille: u32,
    /// In [`Sim::run_with`], chance per tick that the network splits in two
    /// (if whole) or heals (if split).
    pub partition_permille: u32,
    /// How many ticks [`Sim::settle`] may take to converge.
    pub settle_limit: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            drop_permille: 150,
            duplicate_permille: 100,
            max_delay: 5,
            gossip_permille: 400,
            update_permille: 200,
            partition_permille: 50,
            settle_limit: 2_000,
        }
    }
}

/// What the network did, counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages sent (duplicates not counted).
    pub sent: u64,
    /// Messages delivered and merged (duplicates counted).
    pub delivered: u64,
    /// Messages dropped at random.
    pub dropped: u64,
    /// Messages lost to a partition.
    pub partitioned: u64,
    /// Extra deliveries of a message.
    pub duplicated: u64,
    /// Bytes of the messages sent.
    pub bytes: u64,
}

/// A violated guarantee, found by the simulation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimFailure {
    /// A query answered at a replica, and later answered differently or
    /// "not yet".
    AnswerChanged {
        /// Which query ([`Sim::watch`]'s index).
        query: usize,
        /// At which replica.
        replica: usize,
        /// The tick.
        tick: u64,
        /// The earlier answer (`Debug`).
        before: String,
        /// The later answer (`Debug`).
        after: String,
    },
    /// A wait future disagreed with the query (resolved to another element,
    /// stayed pending although the query answered, or resolved without its
    /// waker being called).
    WaitDisagrees {
        /// Which query.
        query: usize,
        /// At which replica.
        replica: usize,
        /// What went wrong.
        detail: String,
    },
    /// Replicas still differed `ticks` ticks after the network healed.
    NotConverged {
        /// Ticks waited.
        ticks: u64,
    },
    /// Replicas converged on something other than the join of every local
    /// update.
    WrongState {
        /// The replica.
        replica: usize,
        /// Its state (`Debug`).
        state: String,
        /// The join of the updates (`Debug`).
        expected: String,
    },
    /// After convergence, replicas answered a query differently.
    AnswersDiffer {
        /// Which query.
        query: usize,
        /// Every replica's answer (`Debug`).
        answers: Vec<String>,
    },
    /// A replica refused a local update or a message.
    Replica {
        /// The replica.
        replica: usize,
        /// Its error.
        error: ReplicaError,
    },
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimFailure::AnswerChanged {
                query,
                replica,
                tick,
                before,
                after,
            } => write!(
                f,
                "query {query} at replica {replica} answered {before} and then, at tick {tick}, {after}"
            ),
            SimFailure::WaitDisagrees { query, replica, detail } => {
                write!(f, "wait for query {query} at replica {replica}: {detail}")
            }
            SimFailure::NotConverged { ticks } => {
                write!(f, "replicas still differ {ticks} ticks after the network healed")
            }
            SimFailure::WrongState {
                replica,
                state,
                expected,
            } => write!(
                f,
                "replica {replica} converged to {state}, not to the join of all updates {expected}"
            ),
            SimFailure::AnswersDiffer { query, answers } => {
                write!(
                    f,
                    "after convergence, replicas answer query {query} differently: {answers:?}"
                )
            }
            SimFailure::Replica { replica, error } => write!(f, "replica {replica}: {error}"),
        }
    }
}

impl std::error::Error for SimFailure {}

enum Payload {
    /// A full state, to merge.
    State(Vec<u8>),
    /// "Here is my version; send me what I lack."
    Version(Vec<u8>),
    /// A delta, to merge.
    Delta(Vec<u8>),
}

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::State(b) | Payload::Version(b) | Payload::Delta(b) => b.len(),
        }
    }

    fn duplicate(&self) -> Payload {
        match self {
            Payload::State(b) => Payload::State(b.clone()),
            Payload::Version(b) => Payload::Version(b.clone()),
            Payload::Delta(b) => Payload::Delta(b.clone()),
        }
    }
}

struct Message {
    deliver_at: u64,
    from: usize,
    to: usize,
    payload: Payload,
}

/// How a simulation with deltas asks for and computes them; absent for
/// full-state gossip.
struct DeltaOps<L: Lattice> {
    version: fn(&Replica<L>) -> Vec<u8>,
    delta: DeltaFn<L>,
}

/// Answers encoded version bytes with encoded delta bytes.
type DeltaFn<L> = fn(&Replica<L>, &[u8]) -> Result<Vec<u8>, ReplicaError>;

#[derive(Default)]
struct FlagWaker(AtomicBool);

impl Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

type WaitFut<L> = Pin<Box<dyn Future<Output = L> + Send>>;

struct Watch<L: Lattice> {
    thresholds: ThresholdSet<L>,
    answers: Vec<Option<L>>,
    /// Per replica: the pending wait and its waker (`None` once resolved).
    waits: Vec<Option<(WaitFut<L>, Arc<FlagWaker>)>>,
}

/// N replicas of `L` on a simulated network; see the [module docs](self).
pub struct Sim<L: Lattice> {
    replicas: Vec<Arc<Replica<L>>>,
    rng: SplitMix64,
    config: NetConfig,
    tick: u64,
    queue: Vec<Message>,
    /// The side of each replica while partitioned.
    sides: Option<Vec<usize>>,
    /// The join of every state right after a local update.
    expected: L,
    watches: Vec<Watch<L>>,
    deltas: Option<DeltaOps<L>>,
    stats: Stats,
    /// A violation found outside `step` (by `watch`), reported by the
    /// next `step`.
    pending: Option<SimFailure>,
}

fn equiv<L: Lattice>(a: &L, b: &L) -> bool {
    a.leq(b) && b.leq(a)
}

impl<L> Sim<L>
where
    L: Lattice + Encode + Decode + Debug + Send + Sync + 'static,
{
    /// `n` replicas (ids 0..n) at bottom, gossiping full states.
    pub fn new(n: usize, config: NetConfig, seed: u64) -> Self {
        Sim {
            replicas: (0..n).map(|i| Arc::new(Replica::new(ReplicaId(i as u32)))).collect(),
            rng: SplitMix64::new(seed),
            config,
            tick: 0,
            queue: Vec::new(),
            sides: None,
            expected: L::bottom(),
            watches: Vec::new(),
            deltas: None,
            stats: Stats::default(),
            pending: None,
        }
    }

    /// Like [`new`](Self::new), but gossip is anti-entropy with deltas: a
    /// replica sends its version to a peer, which answers with
    /// [`Delta::delta_since`] that version. Convergence then also checks
    /// that the deltas are complete.
    pub fn with_deltas(n: usize, config: NetConfig, seed: u64) -> Self
    where
        L: Delta,
    {
        let mut sim = Self::new(n, config, seed);
        sim.deltas = Some(DeltaOps {
            version: |r| r.encode_version(),
            delta: |r, bytes| {
                let since: L::Version = from_bytes(bytes)?;
                Ok(r.encode_delta_since(&since))
            },
        });
        sim
    }

    /// Replica `i`.
    pub fn replica(&self, i: usize) -> &Replica<L> {
        &self.replicas[i]
    }

    /// The number of replicas.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Whether there are no replicas.
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// The simulation's generator (for workloads that want to share it).
    pub fn rng(&mut self) -> &mut SplitMix64 {
        &mut self.rng
    }

    /// What the network has done so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Ticks run so far.
    pub fn tick_count(&self) -> u64 {
        self.tick
    }

    /// A local update at replica `i` (see [`Replica::update`]).
    pub fn update(&mut self, i: usize, f: impl FnOnce(&mut L)) -> Result<bool, SimFailure> {
        let replica = &self.replicas[i];
        let grew = replica
            .update(f)
            .map_err(|error| SimFailure::Replica { replica: i, error })?;
        self.expected.join_assign(&replica.state());
        Ok(grew)
    }

    /// Watches `thresholds` at every replica from now on; returns the
    /// query's index for [`answers`](Self::answers).
    pub fn watch(&mut self, thresholds: ThresholdSet<L>) -> usize {
        let waits = self
            .replicas
            .iter()
            .map(|r| {
                let r = Arc::clone(r);
                let t = thresholds.clone();
                let fut: WaitFut<L> = Box::pin(async move { r.wait(t).await });
                Some((fut, Arc::new(FlagWaker::default())))
            })
            .collect();
        self.watches.push(Watch {
            thresholds,
            answers: vec![None; self.replicas.len()],
            waits,
        });
        let q = self.watches.len() - 1;
        // A first poll registers the waits; a violation is reported by the
        // next step.
        if let Err(failure) = self.check_watch(q, true) {
            self.pending.get_or_insert(failure);
        }
        q
    }

    /// Every replica's current answer to query `q`.
    pub fn answers(&self, q: usize) -> Vec<Option<L>> {
        let t = &self.watches[q].thresholds;
        self.replicas.iter().map(|r| r.query(t)).collect()
    }

    /// Splits the network: replicas in different groups cannot reach each
    /// other (messages between them are lost). Replicas in no group form
    /// one more group.
    pub fn partition(&mut self, groups: &[&[usize]]) {
        let mut sides = vec![groups.len(); self.replicas.len()];
        for (g, members) in groups.iter().enumerate() {
            for &i in *members {
                sides[i] = g;
            }
        }
        self.sides = Some(sides);
    }

    /// Ends any partition.
    pub fn heal(&mut self) {
        self.sides = None;
    }

    /// Whether a partition is in force.
    pub fn is_partitioned(&self) -> bool {
        self.sides.is_some()
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        self.sides.as_ref().map_or(true, |s| s[a] == s[b])
    }

    fn send(&mut self, from: usize, to: usize, payload: Payload) {
        self.stats.sent += 1;
        self.stats.bytes += payload.len() as u64;
        self.enqueue(from, to, payload);
    }

    fn enqueue(&mut self, from: usize, to: usize, payload: Payload) {
        let delay = 1 + self.rng.below(self.config.max_delay.max(1));
        self.queue.push(Message {
            deliver_at: self.tick + delay,
            from,
            to,
            payload,
        });
    }

    fn gossip(&mut self, from: usize) {
        let n = self.replicas.len();
        if n < 2 {
            return;
        }
        let mut to = self.rng.index(n - 1);
        if to >= from {
            to += 1;
        }
        let payload = match &self.deltas {
            Some(ops) => Payload::Version((ops.version)(&self.replicas[from])),
            None => Payload::State(self.replicas[from].encode_state()),
        };
        self.send(from, to, payload);
    }

    fn deliver(&mut self, msg: Message) -> Result<(), SimFailure> {
        let to = msg.to;
        let failure = |error| SimFailure::Replica { replica: to, error };
        match &msg.payload {
            Payload::State(bytes) | Payload::Delta(bytes) => {
                self.replicas[to].merge_bytes(bytes).map_err(failure)?;
            }
            Payload::Version(bytes) => {
                if let Some(ops) = &self.deltas {
                    let delta = (ops.delta)(&self.replicas[to], bytes).map_err(failure)?;
                    self.send(to, msg.from, Payload::Delta(delta));
                }
            }
        }
        self.stats.delivered += 1;
        if self.rng.chance(self.config.duplicate_permille) {
            self.stats.duplicated += 1;
            let copy = msg.payload.duplicate();
            self.enqueue(msg.from, to, copy);
        }
        Ok(())
    }

    /// One tick without local updates: gossip, deliveries, checks.
    pub fn step(&mut self) -> Result<(), SimFailure> {
        if let Some(failure) = self.pending.take() {
            return Err(failure);
        }
        self.tick += 1;
        for i in 0..self.replicas.len() {
            if self.rng.chance(self.config.gossip_permille) {
                self.gossip(i);
            }
        }
        let now = self.tick;
        let (mut due, rest): (Vec<Message>, Vec<Message>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|m| m.deliver_at <= now);
        self.queue = rest;
        self.rng.shuffle(&mut due);
        for msg in due {
            if !self.reachable(msg.from, msg.to) {
                self.stats.partitioned += 1;
            } else if self.rng.chance(self.config.drop_permille) {
                self.stats.dropped += 1;
            } else {
                self.deliver(msg)?;
            }
        }
        for q in 0..self.watches.len() {
            self.check_watch(q, false)?;
        }
        Ok(())
    }

    /// `ticks` ticks without local updates.
    pub fn run(&mut self, ticks: u64) -> Result<(), SimFailure> {
        for _ in 0..ticks {
            self.step()?;
        }
        Ok(())
    }

    /// `ticks` ticks of chaos: each tick, each replica makes a local update
    /// with probability `update_permille` (`workload` edits its state, given
    /// the generator and the replica's id), and the network splits or heals
    /// with probability `partition_permille`.
    pub fn run_with(
        &mut self,
        ticks: u64,
        mut workload: impl FnMut(&mut SplitMix64, ReplicaId, &mut L),
    ) -> Result<(), SimFailure> {
        let n = self.replicas.len();
        for _ in 0..ticks {
            if self.rng.chance(self.config.partition_permille) {
                if self.is_partitioned() {
                    self.heal();
                } else {
                    let sides = (0..n).map(|_| self.rng.index(2)).collect();
                    self.sides = Some(sides);
                }
            }
            for i in 0..n {
                if self.rng.chance(self.config.update_permille) {
                    let mut rng = SplitMix64::new(self.rng.next_u64());
                    let id = self.replicas[i].id();
                    self.update(i, |s| workload(&mut rng, id, s))?;
                }
            }
            self.step()?;
        }
        Ok(())
    }

    /// Whether every replica holds the same state (order-equivalent and
    /// byte-for-byte).
    pub fn converged(&self) -> bool {
        let Some(first) = self.replicas.first() else {
            return true;
        };
        let state = first.state();
        let bytes = to_bytes(&state);
        self.replicas[1..].iter().all(|r| {
            let s = r.state();
            equiv(&s, &state) && to_bytes(&s) == bytes
        })
    }

    /// Heals the network and runs until every replica holds the same state
    /// (at most `settle_limit` ticks), then checks that it is the join of
    /// every local update and that every replica answers every query alike.
    /// Returns the ticks it took.
    pub fn settle(&mut self) -> Result<u64, SimFailure> {
        if let Some(failure) = self.pending.take() {
            return Err(failure);
        }
        self.heal();
        let mut ticks = 0;
        while !self.converged() {
            if ticks == self.config.settle_limit {
                return Err(SimFailure::NotConverged { ticks });
            }
            self.step()?;
            ticks += 1;
        }
        for (i, r) in self.replicas.iter().enumerate() {
            let state = r.state();
            if !equiv(&state, &self.expected) {
                return Err(SimFailure::WrongState {
                    replica: i,
                    state: format!("{state:?}"),
                    expected: format!("{:?}", self.expected),
                });
            }
        }
        for q in 0..self.watches.len() {
            let answers = self.answers(q);
            let expected = self.watches[q].thresholds.reached_by(&self.expected);
            let agree = answers.iter().all(|a| match (a, expected) {
                (Some(a), Some(e)) => equiv(a, e),
                (None, None) => true,
                _ => false,
            });
            if !agree {
                return Err(SimFailure::AnswersDiffer {
                    query: q,
                    answers: answers.iter().map(|a| format!("{a:?}")).collect(),
                });
            }
        }
        Ok(ticks)
    }

    fn check_watch(&mut self, q: usize, first: bool) -> Result<(), SimFailure> {
        let tick = self.tick;
        for (i, r) in self.replicas.iter().enumerate() {
            let watch = &mut self.watches[q];
            let now = r.query(&watch.thresholds);
            if let Some(before) = &watch.answers[i] {
                if !now.as_ref().is_some_and(|a| equiv(a, before)) {
                    return Err(SimFailure::AnswerChanged {
                        query: q,
                        replica: i,
                        tick,
                        before: format!("{before:?}"),
                        after: format!("{now:?}"),
                    });
                }
            }
            let disagree = |detail: String| SimFailure::WaitDisagrees {
                query: q,
                replica: i,
                detail,
            };
            if let Some((fut, waker)) = &mut watch.waits[i] {
                let woken = waker.0.swap(false, Ordering::SeqCst);
                let w = Waker::from(Arc::clone(waker));
                match fut.as_mut().poll(&mut Context::from_waker(&w)) {
                    Poll::Ready(v) => {
                        if !now.as_ref().is_some_and(|a| equiv(a, &v)) {
                            return Err(disagree(format!("resolved to {v:?} while the query answers {now:?}")));
                        }
                        if !first && !woken {
                            return Err(disagree("resolved, but its waker was never called".into()));
                        }
                        watch.waits[i] = None;
                    }
                    Poll::Pending => {
                        if let Some(a) = &now {
                            return Err(disagree(format!("still pending while the query answers {a:?}")));
                        }
                    }
                }
            }
            watch.answers[i] = now;
        }
        Ok(())
    }
}
