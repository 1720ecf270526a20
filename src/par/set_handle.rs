//! The session-level handle of the grow-only set.

use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use super::freeze::{DeferredFreeze, Freeze};
use super::session::{EffectLevel, Par, QuasiDet, Session};
use crate::data::RawISet;
use crate::error::Error;

/// A grow-only set of a session: lock-free inserts, threshold reads
/// (`wait_contains`, `wait_size`), handlers (see
/// [`HandlerPool`](super::HandlerPool)), and a frozen value sorted the same
/// way in every run.
///
/// ```
/// use lvars::{run_par_then_freeze, Freeze, ISet};
///
/// let frozen = run_par_then_freeze(|p| Box::pin(async move {
///     let set: ISet<u32> = ISet::new(p);
///     for i in (0..10).rev() {
///         let s = set.clone();
///         p.fork(async move { s.insert(i * i).unwrap() });
///     }
///     set.wait_size(10).await;
///     set.then_freeze()
/// }))
/// .unwrap();
/// assert_eq!(frozen, vec![0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
/// ```
pub struct ISet<'s, T> {
    raw: Arc<RawISet<T>>,
    session: &'s Session,
    _brand: PhantomData<fn(&'s ()) -> &'s ()>,
}

impl<T> Clone for ISet<'_, T> {
    fn clone(&self) -> Self {
        Self {
            raw: Arc::clone(&self.raw),
            session: self.session,
            _brand: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for ISet<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ISet")
    }
}

impl<'s, T: Hash + Eq + Send + Sync + 'static> ISet<'s, T> {
    /// An empty set.
    pub fn new<E: EffectLevel>(p: Par<'s, E>) -> Self {
        Self {
            raw: Arc::new(RawISet::new()),
            session: p.session,
            _brand: PhantomData,
        }
    }

    /// An empty set with room for `n` elements before its first resize.
    pub fn with_capacity<E: EffectLevel>(p: Par<'s, E>, n: usize) -> Self {
        Self {
            raw: Arc::new(RawISet::with_capacity(n)),
            session: p.session,
            _brand: PhantomData,
        }
    }

    /// Inserts `x` (inserting an element already present is a no-op).
    /// Fails, and fails the session, if the set is frozen and `x` is new.
    pub fn insert(&self, x: T) -> Result<(), Error> {
        self.raw.insert(x).map(drop).map_err(|e| self.session.fail(e))
    }

    /// Waits until `x` is in the set.
    pub fn wait_contains(&self, x: T) -> impl Future<Output = ()> + Send + '_ {
        self.raw.wait_contains(x)
    }

    /// Waits until the set has at least `n` elements.
    pub fn wait_size(&self, n: usize) -> impl Future<Output = ()> + Send + '_ {
        self.raw.wait_size(n)
    }

    pub(crate) fn raw(&self) -> &RawISet<T> {
        &self.raw
    }
}

impl<'s, T: Hash + Eq + Ord + Clone + Send + Sync + 'static> ISet<'s, T> {
    /// Freezes the set and returns its elements in sorted order
    /// (quasi-deterministic sessions only).
    pub fn freeze(&self, _proof: &Par<'s, QuasiDet>) -> Vec<T> {
        self.raw.freeze_sorted()
    }
}

impl<'s, T: Hash + Eq + Ord + Clone + Send + Sync + 'static> Freeze<'s> for ISet<'s, T> {
    /// The elements, sorted.
    type Frozen = Vec<T>;

    fn then_freeze(self) -> DeferredFreeze<'s, Vec<T>> {
        let raw = self.raw;
        DeferredFreeze::new(move || raw.freeze_sorted())
    }
}
