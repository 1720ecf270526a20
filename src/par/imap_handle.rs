//! The session-level handles of the grow-only map: lattice-valued maps
//! ([`IMap`]) and maps of sets ([`IMapOfSets`]), both over
//! [`RawIMap`](crate::data::RawIMap).
//!
//! Handlers over maps are not provided yet: the raw map has the
//! exactly-once listener hook, but `HandlerPool` does not expose what a
//! map handler would need (its counting state) outside `handlers.rs`.

use std::collections::BTreeMap;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use super::effects::{Det, EffectLevel, HasFreeze, HasGet, HasPut, Within};
use super::freeze::{DeferredFreeze, Freeze};
use super::handlers::HandlerPool;
use super::handles::handle_impls;
use super::session::{Par, Session};
use crate::data::{RawIMap, RawISet};
use crate::error::Error;
use crate::lattice::Lattice;
use crate::lvar::RawLVar;
use crate::sched::chaos;

type Brand<'s, E> = PhantomData<(fn(&'s ()) -> &'s (), E)>;

/// A grow-only map of a session whose values are lattice states: an insert
/// joins its value into the key's state; a join that would be top (e.g. two
/// different values under [`Flat`](crate::lattice::Flat)) is a
/// `ConflictingPut` that fails the session.
///
/// The seed's shopping cart: two forked inserts, frozen after the barrier,
/// give the same map in every run.
///
/// ```
/// use std::collections::BTreeMap;
/// use lvars::{run_par_then_freeze, Freeze, IMap};
/// use lvars::lattice::Max;
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
/// enum Item { Book, Shoes }
///
/// let cart = run_par_then_freeze(|p| Box::pin(async move {
///     let cart: IMap<Item, Max<u32>> = IMap::new(p);
///     let (c1, c2) = (cart.clone(), cart.clone());
///     p.fork(async move { c1.insert(Item::Book, Max::new(1)).unwrap() });
///     p.fork(async move { c2.insert(Item::Shoes, Max::new(1)).unwrap() });
///     cart.then_freeze()
/// }))
/// .unwrap();
/// assert_eq!(cart, BTreeMap::from([(Item::Book, Max::new(1)), (Item::Shoes, Max::new(1))]));
/// ```
pub struct IMap<'s, K, L: Lattice, E = Det> {
    raw: Arc<RawIMap<K, RawLVar<L>>>,
    session: &'s Session,
    _brand: Brand<'s, E>,
}

handle_impls!(IMap, [K, L: Lattice]);

impl<'s, K, L> IMap<'s, K, L>
where
    K: Hash + Eq + Send + Sync + 'static,
    L: Lattice + Send + Sync + 'static,
{
    /// An empty map.
    pub fn new<P: EffectLevel>(p: Par<'s, P>) -> IMap<'s, K, L, P::Data> {
        IMap {
            raw: Arc::new(RawIMap::new()),
            session: p.session,
            _brand: PhantomData,
        }
    }
}

impl<'s, K, L, E: EffectLevel> IMap<'s, K, L, E>
where
    K: Hash + Eq + Send + Sync + 'static,
    L: Lattice + Send + Sync + 'static,
{
    /// Joins `value` into `key`'s state (bottom if the key is new). Fails,
    /// and fails the session, with `ConflictingPut` if the join would be
    /// top, or `PutAfterFreeze` if the map is frozen and the insert would
    /// change it.
    pub fn insert(&self, key: K, value: L) -> Result<(), Error>
    where
        E: HasPut,
    {
        self.session.put(|| self.raw.insert(key, value))
    }

    /// Waits until `key`'s state is at or above `threshold` and resolves
    /// to `threshold`. An invalid (top) threshold fails the session at once.
    pub fn wait_key_at_least(&self, key: K, threshold: L) -> Result<impl Future<Output = L> + Send + '_, Error>
    where
        E: HasGet,
    {
        self.raw
            .wait_key_at_least(key, threshold)
            .map(chaos::get)
            .map_err(|e| self.session.fail(e))
    }

    /// Waits until the map has at least `n` keys.
    pub fn wait_size(&self, n: usize) -> impl Future<Output = ()> + Send + '_
    where
        E: HasGet,
    {
        chaos::get(self.raw.wait_size(n))
    }
}

impl<'s, K, L, E: EffectLevel> IMap<'s, K, L, E>
where
    K: Hash + Eq + Ord + Clone + Send + Sync + 'static,
    L: Lattice + Send + Sync + 'static,
{
    /// Freezes the map (keys and states) and returns its entries sorted by
    /// key (quasi-deterministic sessions only).
    pub fn freeze<F: HasFreeze>(&self, _proof: &Par<'s, F>) -> Vec<(K, L)> {
        self.raw.freeze_sorted_with(RawLVar::freeze)
    }
}

impl<'s, K, L, E: EffectLevel> IMap<'s, K, L, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    L: Lattice + Send + Sync + 'static,
{
    /// Runs `callback(key)` as a task of `pool` once for every key that is
    /// in the map now or is added later, exactly once per key. The callback
    /// gets the key only (the value may still be growing; read it with a
    /// threshold get). Errors: `OutOfRange` beyond 64 handlers on one map.
    ///
    /// ```
    /// use lvars::lattice::Max;
    /// use lvars::{run_par_then_freeze, Freeze, HandlerPool, IMap, ISet};
    ///
    /// let keys = run_par_then_freeze(|p| Box::pin(async move {
    ///     let scores: IMap<&str, Max<u32>> = IMap::new(p);
    ///     let seen: ISet<&str> = ISet::new(p);
    ///     let pool = HandlerPool::new(p);
    ///     let s = seen.clone();
    ///     scores.add_handler(&pool, move |k| {
    ///         let s = s.clone();
    ///         async move { s.insert(k).unwrap() }
    ///     })
    ///     .unwrap();
    ///     scores.insert("b", Max::new(2)).unwrap();
    ///     scores.insert("a", Max::new(1)).unwrap();
    ///     scores.insert("b", Max::new(5)).unwrap();
    ///     seen.then_freeze()
    /// }))
    /// .unwrap();
    /// assert_eq!(keys, vec!["a", "b"]);
    /// ```
    pub fn add_handler<F, Fut>(&self, pool: &HandlerPool<'s>, callback: F) -> Result<(), Error>
    where
        E: HasGet,
        F: Fn(K) -> Fut + Send + Sync + 's,
        Fut: Future<Output = ()> + Send + 's,
    {
        self.raw.add_listener(pool.entry_listener(callback))
    }
}

impl<'s, K, L, E: EffectLevel> Freeze<'s> for IMap<'s, K, L, E>
where
    K: Hash + Eq + Ord + Clone + Send + Sync + 'static,
    L: Lattice + Send + Sync + 'static,
{
    /// The entries, in key order.
    type Frozen = BTreeMap<K, L>;

    fn then_freeze(self) -> DeferredFreeze<'s, BTreeMap<K, L>> {
        let raw = self.raw;
        DeferredFreeze::new(move || raw.freeze_sorted_with(RawLVar::freeze).into_iter().collect())
    }
}

/// A grow-only map of a session whose values are grow-only sets (LVish's
/// map of sets, e.g. an analysis store or a graph's adjacency lists).
///
/// ```
/// use std::collections::BTreeMap;
/// use lvars::{run_par_then_freeze, Freeze, IMapOfSets};
///
/// let edges = [(1, 2), (1, 3), (2, 3), (3, 1), (1, 2)];
/// let graph = run_par_then_freeze(|p| Box::pin(async move {
///     let g: IMapOfSets<u32, u32> = IMapOfSets::new(p);
///     for (a, b) in edges {
///         let g = g.clone();
///         p.fork(async move { g.insert(a, b).unwrap() });
///     }
///     g.then_freeze()
/// }))
/// .unwrap();
/// assert_eq!(graph, BTreeMap::from([(1, vec![2, 3]), (2, vec![3]), (3, vec![1])]));
/// ```
pub struct IMapOfSets<'s, K, T, E = Det> {
    raw: Arc<RawIMap<K, RawISet<T>>>,
    session: &'s Session,
    _brand: Brand<'s, E>,
}

handle_impls!(IMapOfSets, [K, T]);

impl<'s, K, T> IMapOfSets<'s, K, T>
where
    K: Hash + Eq + Send + Sync + 'static,
    T: Hash + Eq + Send + Sync + 'static,
{
    /// An empty map.
    pub fn new<P: EffectLevel>(p: Par<'s, P>) -> IMapOfSets<'s, K, T, P::Data> {
        IMapOfSets {
            raw: Arc::new(RawIMap::new()),
            session: p.session,
            _brand: PhantomData,
        }
    }
}

impl<'s, K, T, E: EffectLevel> IMapOfSets<'s, K, T, E>
where
    K: Hash + Eq + Send + Sync + 'static,
    T: Hash + Eq + Send + Sync + 'static,
{
    /// Inserts `x` into `key`'s set (an empty set if the key is new).
    /// Fails, and fails the session, with `PutAfterFreeze` if the map (or
    /// that set) is frozen and the insert would change it.
    pub fn insert(&self, key: K, x: T) -> Result<(), Error>
    where
        E: HasPut,
    {
        self.session
            .put(|| self.raw.get_or_init(key).and_then(|set| set.insert(x)))
    }

    /// Waits until `x` is in `key`'s set.
    pub fn wait_contains(&self, key: K, x: T) -> impl Future<Output = ()> + Send + '_
    where
        E: HasGet,
    {
        let set = self.raw.wait_key(key);
        chaos::get(async move { set.await.wait_contains(x).await })
    }

    /// Waits until the map has at least `n` keys.
    pub fn wait_size(&self, n: usize) -> impl Future<Output = ()> + Send + '_
    where
        E: HasGet,
    {
        chaos::get(self.raw.wait_size(n))
    }
}

impl<'s, K, T, E: EffectLevel> IMapOfSets<'s, K, T, E>
where
    K: Hash + Eq + Ord + Clone + Send + Sync + 'static,
    T: Hash + Eq + Ord + Clone + Send + Sync + 'static,
{
    /// Freezes the map and every set, and returns the entries sorted by key
    /// with sorted sets (quasi-deterministic sessions only).
    pub fn freeze<F: HasFreeze>(&self, _proof: &Par<'s, F>) -> Vec<(K, Vec<T>)> {
        self.raw.freeze_sorted_with(RawISet::freeze_sorted)
    }
}

impl<'s, K, T, E: EffectLevel> IMapOfSets<'s, K, T, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Hash + Eq + Send + Sync + 'static,
{
    /// Runs `callback(key)` as a task of `pool` once for every key that is
    /// in the map now or is added later, exactly once per key (see
    /// [`IMap::add_handler`]).
    pub fn add_handler<F, Fut>(&self, pool: &HandlerPool<'s>, callback: F) -> Result<(), Error>
    where
        E: HasGet,
        F: Fn(K) -> Fut + Send + Sync + 's,
        Fut: Future<Output = ()> + Send + 's,
    {
        self.raw.add_listener(pool.entry_listener(callback))
    }
}

impl<'s, K, T, E: EffectLevel> Freeze<'s> for IMapOfSets<'s, K, T, E>
where
    K: Hash + Eq + Ord + Clone + Send + Sync + 'static,
    T: Hash + Eq + Ord + Clone + Send + Sync + 'static,
{
    /// The entries in key order, each set sorted.
    type Frozen = BTreeMap<K, Vec<T>>;

    fn then_freeze(self) -> DeferredFreeze<'s, BTreeMap<K, Vec<T>>> {
        let raw = self.raw;
        DeferredFreeze::new(move || raw.freeze_sorted_with(RawISet::freeze_sorted).into_iter().collect())
    }
}
