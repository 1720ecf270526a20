//! `Replica`: one copy of a replicated lattice, with threshold queries.

use std::fmt;
use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::codec::{from_bytes, to_bytes, Decode, DecodeError, Encode};
use super::{Delta, ReplicaId};
use crate::data::RawMaxCounter;
use crate::error::Error;
use crate::lattice::Lattice;
use crate::lvar::{RawLVar, ThresholdSet};

/// Why a replica refused an update, a merge or bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicaError {
    /// The join would have reached top (`Error::ConflictingPut`); the
    /// state was left as it was.
    Lattice(Error),
    /// A local update that would have lost information (the new state is
    /// not at or above the current one). Replicas only grow.
    NotInflationary,
    /// Bytes from a peer that are not a state of this type.
    Decode(DecodeError),
}

impl fmt::Display for ReplicaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicaError::Lattice(e) => write!(f, "replica: {e}"),
            ReplicaError::NotInflationary => f.write_str(
                "replica: update is not inflationary (the new state is not at or above the current one, so it would lose information)",
            ),
            ReplicaError::Decode(e) => write!(f, "replica: cannot decode peer bytes: {e}"),
        }
    }
}

impl std::error::Error for ReplicaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReplicaError::Lattice(e) => Some(e),
            ReplicaError::Decode(e) => Some(e),
            ReplicaError::NotInflationary => None,
        }
    }
}

impl From<Error> for ReplicaError {
    fn from(e: Error) -> Self {
        ReplicaError::Lattice(e)
    }
}

impl From<DecodeError> for ReplicaError {
    fn from(e: DecodeError) -> Self {
        ReplicaError::Decode(e)
    }
}

struct Inner<L> {
    state: L,
    /// How many times the state grew (for [`Replica::wait_view`]).
    changes: u64,
}

/// One replica of a state-based replicated data type (CvRDT) whose state
/// is the lattice `L`.
///
/// Local updates only ever make the state grow; peers' states (or deltas)
/// are merged by join, in any order, any number of times. The library ships
/// bytes ([`encode_state`](Self::encode_state),
/// [`encode_delta_since`](Self::encode_delta_since),
/// [`merge_bytes`](Self::merge_bytes)); the network is the caller's.
///
/// Reads are LVar threshold queries: [`query`](Self::query) answers with the
/// element of a [`ThresholdSet`] the state has reached, or `None` for
/// "not yet", and [`wait`](Self::wait) is a future that resolves once a
/// merge or update makes it answer. Because the elements are pairwise
/// incompatible and states only grow, an answer, once given, is given
/// forever at this replica, and every replica that receives the same
/// updates gives the same one, although replicas disagree on the exact
/// state in between.
///
/// A join that would reach top (for lattices that have one, like
/// [`Flat`](crate::lattice::Flat)) is refused with
/// `ReplicaError::Lattice(Error::ConflictingPut)` and the state is kept.
///
/// ```
/// use lvars::crdt::{GSet, Replica, ReplicaId};
/// use lvars::lvar::ThresholdSet;
///
/// let a: Replica<GSet<&str>> = Replica::new(ReplicaId(0));
/// let b: Replica<GSet<&str>> = Replica::new(ReplicaId(1));
/// a.update(|cart| {
///     cart.insert("Book");
/// })
/// .unwrap();
///
/// let has_book = ThresholdSet::single(GSet::from_iter(["Book"])).unwrap();
/// assert!(a.query(&has_book).is_some());
/// assert!(b.query(&has_book).is_none()); // not yet
/// b.merge(&a.state()).unwrap();
/// assert!(b.query(&has_book).is_some()); // and from now on, forever
/// ```
pub struct Replica<L: Lattice> {
    id: ReplicaId,
    /// The exact state, for shipping. Only ever held for a join, never
    /// across an await.
    inner: Mutex<Inner<L>>,
    /// The same state as an LVar: threshold waits park on it.
    lvar: RawLVar<L>,
    /// `Inner::changes`, for waits on views.
    changes: RawMaxCounter,
}

impl<L: Lattice + fmt::Debug + Send + Sync + 'static> fmt::Debug for Replica<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.id)
            .field("state", &self.lock().state)
            .finish()
    }
}

impl<L: Lattice + Send + Sync + 'static> Replica<L> {
    /// A replica at bottom.
    pub fn new(id: ReplicaId) -> Self {
        Replica {
            id,
            inner: Mutex::new(Inner {
                state: L::bottom(),
                changes: 0,
            }),
            lvar: RawLVar::new(),
            changes: RawMaxCounter::new(),
        }
    }

    /// A replica starting at `state` (refused if it is top).
    pub fn with_state(id: ReplicaId, state: L) -> Result<Self, ReplicaError> {
        let replica = Self::new(id);
        replica.merge(&state)?;
        Ok(replica)
    }

    /// This replica's id: the one its local updates are tagged with.
    pub fn id(&self) -> ReplicaId {
        self.id
    }

    fn lock(&self) -> MutexGuard<'_, Inner<L>> {
        // A panic elsewhere never leaves a half-joined state behind (joins
        // happen on a copy), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins `value` into the state under the lock; true if it grew.
    fn join_locked(&self, inner: &mut Inner<L>, value: &L) -> Result<bool, ReplicaError> {
        if value.leq(&inner.state) {
            return Ok(false);
        }
        let mut next = inner.state.clone();
        next.join_assign(value);
        if next.is_top() {
            return Err(Error::ConflictingPut { lvar: "Replica" }.into());
        }
        // Cannot fail: the LVar holds the same state, so this join is
        // `next`, which is not top, and the LVar is never frozen.
        self.lvar.put(value)?;
        inner.state = next;
        inner.changes += 1;
        self.changes.put(inner.changes.min(crate::data::MAX_COUNTER_LIMIT))?;
        Ok(true)
    }

    /// A local update: `f` edits a copy of the current state (using the
    /// type's own operations, such as [`ORSet::add`](super::ORSet::add)
    /// with [`id`](Self::id)), and the copy replaces the state if it is at
    /// or above it. Returns whether the state grew.
    ///
    /// # Errors
    ///
    /// [`ReplicaError::NotInflationary`] if the edited copy lost
    /// information, [`ReplicaError::Lattice`] if it is top; in both cases
    /// the state is unchanged.
    pub fn update(&self, f: impl FnOnce(&mut L)) -> Result<bool, ReplicaError> {
        let mut inner = self.lock();
        let mut next = inner.state.clone();
        f(&mut next);
        if !inner.state.leq(&next) {
            return Err(ReplicaError::NotInflationary);
        }
        self.join_locked(&mut inner, &next)
    }

    /// Replaces the state by `state`, which must be at or above the
    /// current one. Returns whether the state grew.
    ///
    /// # Errors
    ///
    /// [`ReplicaError::NotInflationary`] if `state` is not at or above the
    /// current state (for example a removal done by hand on a grow-only
    /// set), [`ReplicaError::Lattice`] if it is top.
    pub fn set(&self, state: L) -> Result<bool, ReplicaError> {
        self.update(|s| *s = state)
    }

    /// Joins a peer's state (or a delta) into this replica. Returns whether
    /// the state grew.
    ///
    /// # Errors
    ///
    /// [`ReplicaError::Lattice`] if the join would be top.
    pub fn merge(&self, remote: &L) -> Result<bool, ReplicaError> {
        let mut inner = self.lock();
        self.join_locked(&mut inner, remote)
    }

    /// A copy of the exact current state.
    pub fn state(&self) -> L {
        self.lock().state.clone()
    }

    /// The element of `thresholds` the state has reached, or `None` (not
    /// yet). Once `Some`, every later call returns the same element.
    pub fn query(&self, thresholds: &ThresholdSet<L>) -> Option<L> {
        thresholds.reached_by(&self.lock().state).cloned()
    }

    /// Resolves to the element of `thresholds` the state reaches, parking
    /// (on any executor) until a merge or local update gets it there.
    pub fn wait(&self, thresholds: ThresholdSet<L>) -> impl Future<Output = L> + Send + '_ {
        self.lvar.get(thresholds)
    }

    /// A threshold query on a view of the state: `view` maps the state to
    /// another lattice `M`, and the answer is the element of `thresholds`
    /// the view has reached.
    ///
    /// `view` must be monotone (a larger state never gives a smaller
    /// view); that is what makes the answer stable, and it is the caller's
    /// to ensure. A typical view projects a component or tests a property
    /// that, once true, stays true.
    pub fn query_view<M: Lattice>(&self, view: impl Fn(&L) -> M, thresholds: &ThresholdSet<M>) -> Option<M> {
        thresholds.reached_by(&view(&self.lock().state)).cloned()
    }

    /// Waits until [`query_view`](Self::query_view) answers and resolves to
    /// the answer. `view` must be monotone.
    pub async fn wait_view<M: Lattice, F: Fn(&L) -> M>(&self, view: F, thresholds: ThresholdSet<M>) -> M {
        loop {
            let (answer, seen) = {
                let inner = self.lock();
                (thresholds.reached_by(&view(&inner.state)).cloned(), inner.changes)
            };
            if let Some(answer) = answer {
                return answer;
            }
            // Any change after the snapshot raises the counter past `seen`,
            // so this cannot miss one.
            self.changes
                .wait_at_least(seen.saturating_add(1).min(crate::data::MAX_COUNTER_LIMIT))
                .await;
        }
    }
}

impl<L: Lattice + Encode + Send + Sync + 'static> Replica<L> {
    /// The current state in the [`codec`](super::codec) format, for a peer's
    /// [`merge_bytes`](Self::merge_bytes).
    pub fn encode_state(&self) -> Vec<u8> {
        to_bytes(&self.lock().state)
    }
}

impl<L: Lattice + Decode + Send + Sync + 'static> Replica<L> {
    /// Decodes a peer's state or delta and merges it. Returns whether the
    /// state grew. Never panics on bad input.
    ///
    /// # Errors
    ///
    /// [`ReplicaError::Decode`] for bytes that are not a state of `L` (the
    /// state is unchanged), or what [`merge`](Self::merge) reports.
    pub fn merge_bytes(&self, bytes: &[u8]) -> Result<bool, ReplicaError> {
        let remote: L = from_bytes(bytes)?;
        self.merge(&remote)
    }
}

impl<L: Delta + Send + Sync + 'static> Replica<L> {
    /// The version of the current state, for a peer's
    /// [`delta_since`](Self::delta_since).
    pub fn version(&self) -> L::Version {
        self.lock().state.version()
    }

    /// The part of the state a peer at version `since` may lack.
    pub fn delta_since(&self, since: &L::Version) -> L {
        self.lock().state.delta_since(since)
    }
}

impl<L: Delta + Encode + Send + Sync + 'static> Replica<L> {
    /// [`delta_since`](Self::delta_since), encoded.
    pub fn encode_delta_since(&self, since: &L::Version) -> Vec<u8> {
        to_bytes(&self.delta_since(since))
    }

    /// The version, encoded.
    pub fn encode_version(&self) -> Vec<u8> {
        to_bytes(&self.version())
    }
}
