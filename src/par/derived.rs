//! Sets derived from other sets, and the add/remove set.
//!
//! # Derived sets
//!
//! [`union`], [`intersection`], [`map`] and [`filter`] each return a new
//! [`ISet`] whose contents follow its sources as they grow (LVish's derived
//! LVars). They are built from handlers: each function installs handlers on
//! its sources in a [`HandlerPool`] that *the caller passes in*, and the
//! handlers insert into the result. Taking the pool (rather than creating
//! one) lets a chain of derivations share one pool, so that a single
//! [`HandlerPool::quiesce`] waits for the whole chain (quiescing the pool of
//! only the last link would not wait for the earlier ones).
//!
//! Because the work is done by handler tasks of the session:
//!
//! - [`run_par_then_freeze`](super::run_par_then_freeze) may return a
//!   derived set: its barrier waits for the handler tasks like for any other
//!   task, so the frozen result is exact and deterministic;
//! - in a quasi-deterministic session, quiescing the pool after the sources'
//!   writers are done and then freezing the derived set gives its exact
//!   contents (freezing it while a source still grows may fail the session
//!   with `PutAfterFreeze`, as for any set).
//!
//! No derivation leaves a task parked: an element that never reaches the
//! derived set costs at most a bounded handler run, never a waiting task,
//! so sessions using derived sets are not reported as deadlocked.
//!
//! Functions passed to [`map`] and [`filter`] must be pure (same answer for
//! the same element in every run), or the result is not deterministic. Each
//! derivation uses one handler slot per source ([`ISet`]s have 64); when the
//! slots are exhausted the derivation returns `Error::OutOfRange`.
//!
//! # The add/remove set
//!
//! [`AddRemoveSet`] is a 2P-set: two grow-only sets, `added` and `removed`.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Mutex, MutexGuard};

use super::effects::{Det, EffectLevel, HasFreeze, HasGet, HasPut, Within};
use super::freeze::{DeferredFreeze, Freeze};
use super::handlers::HandlerPool;
use super::session::Par;
use super::set_handle::ISet;
use crate::error::Error;

/// The union of two sets: every element that is (now or later) in `a` or
/// in `b` is inserted into the returned set by handlers of `pool`.
///
/// Correctness: the pool runs the handler of each source exactly once for
/// every element that is or will be in that source, and each run inserts
/// that element, so every element of `a` or `b` reaches the result; nothing
/// else is ever inserted into it.
///
/// ```
/// use lvars::derived::union;
/// use lvars::{run_par_then_freeze, Freeze, HandlerPool, ISet};
///
/// let u = run_par_then_freeze(|p| Box::pin(async move {
///     let (a, b): (ISet<u32>, ISet<u32>) = (ISet::new(p), ISet::new(p));
///     a.insert(1).unwrap();
///     let pool = HandlerPool::new(p);
///     let u = union(p, &pool, &a, &b).unwrap();
///     // Inserted after the union was made: followed all the same.
///     let (a2, b2) = (a.clone(), b.clone());
///     p.fork(async move { a2.insert(3).unwrap() });
///     p.fork(async move { b2.insert(2).unwrap(); b2.insert(3).unwrap() });
///     u.then_freeze()
/// }))
/// .unwrap();
/// assert_eq!(u, vec![1, 2, 3]);
/// ```
pub fn union<'s, E, S, T>(
    p: Par<'s, E>,
    pool: &HandlerPool<'s>,
    a: &ISet<'s, T, S>,
    b: &ISet<'s, T, S>,
) -> Result<ISet<'s, T>, Error>
where
    E: HasPut,
    S: HasGet,
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    let out = derived_set(p);
    for source in [a, b] {
        feed(pool, source, out, Some)?;
    }
    Ok(out)
}

/// The result set of a derivation. The caller may put (`E: HasPut`); the
/// result is an ordinary set.
fn derived_set<'s, E: HasPut, U: Hash + Eq + Send + Sync + 'static>(p: Par<'s, E>) -> ISet<'s, U> {
    ISet::new(p.grant_data())
}

/// Installs the handler every derivation is made of: for each element `x`
/// that is (now or later) in `source`, a task of `pool` inserts `f(x)` into
/// `out` if it is `Some`. `f` is cloned into each task (derivations pass
/// zero-sized or `Copy` closures, or an `Arc` around the user's function).
fn feed<'s, S, T, U, F>(pool: &HandlerPool<'s>, source: &ISet<'s, T, S>, out: ISet<'s, U>, f: F) -> Result<(), Error>
where
    S: HasGet,
    T: Hash + Eq + Clone + Send + Sync + 'static,
    U: Hash + Eq + Send + Sync + 'static,
    F: Fn(T) -> Option<U> + Clone + Send + Sync + 's,
{
    pool.add_handler(source, move |x| {
        let f = f.clone();
        async move {
            if let Some(y) = f(x) {
                // An error (the result was frozen) already failed the session.
                let _ = out.insert(y);
            }
        }
    })
}

/// The image of `a` under `f`: `f(x)` is inserted into the returned set for
/// every element `x` that is (now or later) in `a`. `f` runs in a handler
/// task of `pool`, once per element of `a`; it must be pure.
///
/// Correctness: the pool runs the handler exactly once for every element of
/// `a`, and that run inserts `f(x)`, so the result holds exactly
/// `{ f(x) | x in a }` once the handlers are done.
///
/// ```
/// use lvars::derived::map;
/// use lvars::{run_par_then_freeze, Freeze, HandlerPool, ISet};
///
/// let squares = run_par_then_freeze(|p| Box::pin(async move {
///     let a: ISet<i32> = ISet::new(p);
///     let pool = HandlerPool::new(p);
///     let sq = map(p, &pool, &a, |x| x * x).unwrap();
///     for x in [-2, -1, 0, 1, 2] {
///         let a = a.clone();
///         p.fork(async move { a.insert(x).unwrap() });
///     }
///     sq.then_freeze()
/// }))
/// .unwrap();
/// assert_eq!(squares, vec![0, 1, 4]);
/// ```
pub fn map<'s, E, S, T, U, F>(
    p: Par<'s, E>,
    pool: &HandlerPool<'s>,
    a: &ISet<'s, T, S>,
    f: F,
) -> Result<ISet<'s, U>, Error>
where
    E: HasPut,
    S: HasGet,
    T: Hash + Eq + Clone + Send + Sync + 'static,
    U: Hash + Eq + Send + Sync + 'static,
    F: Fn(T) -> U + Send + Sync + 's,
{
    let out = derived_set(p);
    let f = Arc::new(f);
    feed(pool, a, out, move |x| Some(f(x)))?;
    Ok(out)
}

/// The elements of `a` that satisfy `pred`: every `x` that is (now or
/// later) in `a` and for which `pred(&x)` holds is inserted into the
/// returned set. `pred` runs in a handler task of `pool`, once per element
/// of `a`; it must be pure.
///
/// Correctness: the pool runs the handler exactly once for every element of
/// `a`, and that run inserts the element iff `pred` holds, so the result is
/// exactly `{ x in a | pred(x) }` once the handlers are done.
///
/// ```
/// use lvars::derived::filter;
/// use lvars::{run_par_then_freeze, Freeze, HandlerPool, ISet};
///
/// let even = run_par_then_freeze(|p| Box::pin(async move {
///     let a: ISet<u32> = ISet::new(p);
///     let pool = HandlerPool::new(p);
///     let even = filter(p, &pool, &a, |x| x % 2 == 0).unwrap();
///     for x in 0..7 {
///         a.insert(x).unwrap();
///     }
///     even.then_freeze()
/// }))
/// .unwrap();
/// assert_eq!(even, vec![0, 2, 4, 6]);
/// ```
pub fn filter<'s, E, S, T, F>(
    p: Par<'s, E>,
    pool: &HandlerPool<'s>,
    a: &ISet<'s, T, S>,
    pred: F,
) -> Result<ISet<'s, T>, Error>
where
    E: HasPut,
    S: HasGet,
    T: Hash + Eq + Clone + Send + Sync + 'static,
    F: Fn(&T) -> bool + Send + Sync + 's,
{
    let out = derived_set(p);
    let pred = Arc::new(pred);
    feed(pool, a, out, move |x| pred(&x).then_some(x))?;
    Ok(out)
}

/// Which source an element arrived from (bits of [`Meet`]'s marks).
const FROM_A: u8 = 1;
const FROM_B: u8 = 2;

/// Shards of [`Meet`] (chosen by hash), so that unrelated elements rarely
/// contend on one lock.
const MEET_SHARDS: usize = 32;

/// The per-element state of an intersection: for each element seen on one
/// side only, which side. Entries only go from "unseen" to "seen on one
/// side" to "seen on both" (then the entry is dropped: no more arrivals can
/// come for it), so the state is itself monotone.
struct Meet<T> {
    hasher: RandomState,
    shards: Box<[Mutex<HashMap<T, u8>>]>,
}

impl<T: Hash + Eq + Clone> Meet<T> {
    fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..MEET_SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, x: &T) -> MutexGuard<'_, HashMap<T, u8>> {
        let i = (self.hasher.hash_one(x) as usize) % MEET_SHARDS;
        // The critical sections below cannot panic halfway through an
        // update (a panicking `Hash`/`Eq` leaves at worst a stale mark).
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `x` arrived from `side`; true iff this arrival completes
    /// the pair (the other side had already arrived).
    fn arrive(&self, x: &T, side: u8) -> bool {
        let mut shard = self.shard(x);
        match shard.get(x) {
            Some(&seen) if seen & side == 0 => {
                shard.remove(x);
                true
            }
            // Same side again: cannot happen (handlers run once per element).
            Some(_) => false,
            None => {
                shard.insert(x.clone(), side);
                false
            }
        }
    }
}

/// The intersection of two sets: an element is inserted into the returned
/// set, by a handler of `pool`, once it is in both `a` and `b`.
///
/// No task ever waits for an element to appear: a handler on each source
/// records the element's arrival in a per-element state (which sides have
/// delivered it, behind a sharded lock) and the arrival that completes the
/// pair inserts the element. An element that is only ever in one source
/// leaves a mark in that state (kept until the derived set is dropped)
/// rather than a parked task, so disjoint sources do not make the session
/// report a deadlock.
///
/// Correctness (exactly once, nothing lost): the pool delivers every
/// element of `a` exactly once to the `a` handler and every element of `b`
/// exactly once to the `b` handler, each after the element is in its
/// source; for an element in both, those two arrivals are serialized by the
/// shard's lock, so the first finds no mark and records its side and the
/// second finds the other side's mark and inserts, exactly once. An element
/// in only one source has one arrival, which never inserts, so the result
/// holds exactly the elements of both once the handlers are done.
///
/// ```
/// use lvars::derived::intersection;
/// use lvars::{run_par_then_freeze, Freeze, HandlerPool, ISet};
///
/// let both = run_par_then_freeze(|p| Box::pin(async move {
///     let (a, b): (ISet<u32>, ISet<u32>) = (ISet::new(p), ISet::new(p));
///     let pool = HandlerPool::new(p);
///     let both = intersection(p, &pool, &a, &b).unwrap();
///     let (a2, b2) = (a.clone(), b.clone());
///     p.fork(async move { (0..10).for_each(|x| a2.insert(x).unwrap()) });
///     p.fork(async move { (5..15).for_each(|x| b2.insert(x).unwrap()) });
///     both.then_freeze()
/// }))
/// .unwrap();
/// assert_eq!(both, vec![5, 6, 7, 8, 9]);
/// ```
pub fn intersection<'s, E, S, T>(
    p: Par<'s, E>,
    pool: &HandlerPool<'s>,
    a: &ISet<'s, T, S>,
    b: &ISet<'s, T, S>,
) -> Result<ISet<'s, T>, Error>
where
    E: HasPut,
    S: HasGet,
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    let out = derived_set(p);
    // Kept by the session, so each task borrows it (no reference count).
    let meet: &'s Meet<T> = p.session.keep(Meet::new());
    for (source, side) in [(a, FROM_A), (b, FROM_B)] {
        feed(pool, source, out, move |x| meet.arrive(&x, side).then_some(x))?;
    }
    Ok(out)
}

/// A set with removal, as two grow-only sets (a 2P-set): `added` and
/// `removed`. Both [`add`](Self::add) and [`remove`](Self::remove) are
/// inserts, so they commute: any interleaving of the same adds and removes
/// reaches the same state. A removed element stays removed (adding it again
/// does not bring it back), and a remove that comes before the add still
/// removes it.
///
/// There is no `wait_member` / `contains`: "x is a member" is not a monotone
/// property (it can be true now and falsified by a later `remove`), so a
/// read of it before the set is frozen could give different answers in
/// different runs. Only the two monotone facts can be waited for
/// ([`wait_added`](Self::wait_added), [`wait_removed`](Self::wait_removed));
/// membership is read from the frozen value ([`FrozenAddRemove::members`]).
///
/// ```
/// use lvars::{run_par_then_freeze, AddRemoveSet, Freeze};
///
/// let cart = run_par_then_freeze(|p| Box::pin(async move {
///     let cart: AddRemoveSet<&str> = AddRemoveSet::new(p);
///     let (c1, c2, c3) = (cart.clone(), cart.clone(), cart.clone());
///     p.fork(async move { c1.add("book").unwrap(); c1.add("shoes").unwrap() });
///     p.fork(async move { c2.remove("shoes").unwrap() });
///     p.fork(async move { c3.add("hat").unwrap() });
///     cart.then_freeze()
/// }))
/// .unwrap();
/// assert_eq!(cart.members(), vec!["book", "hat"]);
/// assert_eq!(cart.removed, vec!["shoes"]);
/// ```
pub struct AddRemoveSet<'s, T, E = Det> {
    added: ISet<'s, T, E>,
    removed: ISet<'s, T, E>,
}

impl<T, E> Clone for AddRemoveSet<'_, T, E> {
    fn clone(&self) -> Self {
        Self {
            added: self.added,
            removed: self.removed,
        }
    }
}

impl<T, E> std::fmt::Debug for AddRemoveSet<'_, T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AddRemoveSet")
    }
}

impl<'s, T: Hash + Eq + Send + Sync + 'static> AddRemoveSet<'s, T> {
    /// An empty set (nothing added, nothing removed).
    pub fn new<P: EffectLevel>(p: Par<'s, P>) -> AddRemoveSet<'s, T, P::Data> {
        AddRemoveSet {
            added: ISet::new(p),
            removed: ISet::new(p),
        }
    }
}

impl<'s, T: Hash + Eq + Send + Sync + 'static, E: EffectLevel> AddRemoveSet<'s, T, E> {
    /// The same set with a narrower effect signature (see
    /// [`effects`](crate::effects)).
    pub fn restrict<E2: Within<E>>(&self) -> AddRemoveSet<'s, T, E2> {
        AddRemoveSet {
            added: self.added.restrict(),
            removed: self.removed.restrict(),
        }
    }

    /// Records that `x` was added. Fails, and fails the session, if the set
    /// is frozen and `x` was not already added.
    pub fn add(&self, x: T) -> Result<(), Error>
    where
        E: HasPut,
    {
        self.added.insert(x)
    }

    /// Records that `x` was removed (whether or not it was, or ever will
    /// be, added). Fails, and fails the session, if the set is frozen and
    /// `x` was not already removed.
    pub fn remove(&self, x: T) -> Result<(), Error>
    where
        E: HasPut,
    {
        self.removed.insert(x)
    }

    /// Waits until `x` has been added (a threshold read: it does not say
    /// whether `x` is, or will stay, a member).
    ///
    /// ```
    /// use lvars::{run_par, AddRemoveSet};
    ///
    /// let r = run_par(|p| Box::pin(async move {
    ///     let s: AddRemoveSet<u8> = AddRemoveSet::new(p);
    ///     let w = s.clone();
    ///     p.fork(async move { w.add(7).unwrap() });
    ///     s.wait_added(7).await;
    ///     "added"
    /// }));
    /// assert_eq!(r, Ok("added"));
    /// ```
    pub fn wait_added(&self, x: T) -> impl Future<Output = ()> + Send + '_
    where
        E: HasGet,
    {
        self.added.wait_contains(x)
    }

    /// Waits until `x` has been removed.
    ///
    /// ```
    /// use lvars::{run_par, AddRemoveSet};
    ///
    /// let r = run_par(|p| Box::pin(async move {
    ///     let s: AddRemoveSet<u8> = AddRemoveSet::new(p);
    ///     let w = s.clone();
    ///     p.fork(async move { w.remove(7).unwrap() });
    ///     s.wait_removed(7).await;
    ///     "removed"
    /// }));
    /// assert_eq!(r, Ok("removed"));
    /// ```
    pub fn wait_removed(&self, x: T) -> impl Future<Output = ()> + Send + '_
    where
        E: HasGet,
    {
        self.removed.wait_contains(x)
    }

    /// The grow-only set of added elements (e.g. to install handlers on it
    /// or derive sets from it).
    ///
    /// ```
    /// use lvars::{run_par_then_freeze, AddRemoveSet, Freeze};
    ///
    /// let added = run_par_then_freeze(|p| Box::pin(async move {
    ///     let s: AddRemoveSet<u8> = AddRemoveSet::new(p);
    ///     s.add(1).unwrap();
    ///     s.remove(1).unwrap();
    ///     s.added().clone().then_freeze()
    /// }))
    /// .unwrap();
    /// assert_eq!(added, vec![1]);
    /// ```
    pub fn added(&self) -> &ISet<'s, T, E> {
        &self.added
    }

    /// The grow-only set of removed elements.
    ///
    /// ```
    /// use lvars::{run_par_then_freeze, AddRemoveSet, Freeze};
    ///
    /// let removed = run_par_then_freeze(|p| Box::pin(async move {
    ///     let s: AddRemoveSet<u8> = AddRemoveSet::new(p);
    ///     s.remove(2).unwrap();
    ///     s.removed().clone().then_freeze()
    /// }))
    /// .unwrap();
    /// assert_eq!(removed, vec![2]);
    /// ```
    pub fn removed(&self) -> &ISet<'s, T, E> {
        &self.removed
    }
}

impl<'s, T: Hash + Eq + Ord + Clone + Send + Sync + 'static, E: EffectLevel> AddRemoveSet<'s, T, E> {
    /// Freezes both sides and returns them, sorted (quasi-deterministic
    /// sessions only).
    ///
    /// ```
    /// use lvars::{run_par_quasi_det, AddRemoveSet};
    ///
    /// let r = run_par_quasi_det(|p| Box::pin(async move {
    ///     let s: AddRemoveSet<u8> = AddRemoveSet::new(p);
    ///     s.add(1).unwrap();
    ///     s.add(2).unwrap();
    ///     s.remove(1).unwrap();
    ///     s.freeze(&p).members()
    /// }));
    /// assert_eq!(r, Ok(vec![2]));
    /// ```
    pub fn freeze<F: HasFreeze>(&self, proof: &Par<'s, F>) -> FrozenAddRemove<T> {
        FrozenAddRemove {
            added: self.added.freeze(proof),
            removed: self.removed.freeze(proof),
        }
    }
}

impl<'s, T: Hash + Eq + Ord + Clone + Send + Sync + 'static, E: EffectLevel> Freeze<'s> for AddRemoveSet<'s, T, E> {
    /// Both sides, sorted.
    type Frozen = FrozenAddRemove<T>;

    fn then_freeze(self) -> DeferredFreeze<'s, FrozenAddRemove<T>> {
        let (added, removed) = (self.added.then_freeze().erase(), self.removed.then_freeze().erase());
        DeferredFreeze::new(move || FrozenAddRemove {
            added: added.run(),
            removed: removed.run(),
        })
    }
}

/// The frozen value of an [`AddRemoveSet`]: both sides, each sorted (the
/// same in every run). The queries assume both vectors are sorted, as a
/// freeze makes them; a hand-built value must be sorted too.
///
/// ```
/// use lvars::FrozenAddRemove;
///
/// let f = FrozenAddRemove { added: vec![1, 2, 3], removed: vec![2, 9] };
/// assert_eq!(f.members(), vec![1, 3]);
/// assert!(f.is_member(&3) && !f.is_member(&2) && !f.is_member(&9));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrozenAddRemove<T> {
    /// Every element ever added, sorted.
    pub added: Vec<T>,
    /// Every element ever removed (added or not), sorted.
    pub removed: Vec<T>,
}

impl<T: Ord + Clone> FrozenAddRemove<T> {
    /// The members: added and not removed, sorted.
    ///
    /// ```
    /// use lvars::FrozenAddRemove;
    ///
    /// let f = FrozenAddRemove { added: vec!["a", "b"], removed: vec!["a"] };
    /// assert_eq!(f.members(), vec!["b"]);
    /// ```
    pub fn members(&self) -> Vec<T> {
        self.added.iter().filter(|x| !self.removed_has(x)).cloned().collect()
    }

    /// Whether `x` is a member (added and not removed).
    ///
    /// ```
    /// use lvars::FrozenAddRemove;
    ///
    /// let f = FrozenAddRemove { added: vec![1], removed: vec![] };
    /// assert!(f.is_member(&1) && !f.is_member(&2));
    /// ```
    pub fn is_member(&self, x: &T) -> bool {
        self.added.binary_search(x).is_ok() && !self.removed_has(x)
    }

    fn removed_has(&self, x: &T) -> bool {
        self.removed.binary_search(x).is_ok()
    }
}
