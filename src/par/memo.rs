//! Parallel memo tables (LVish's `Memo`): a function from keys to values,
//! computed at most once per key by a task of the session, whose
//! computations may get other keys of the same table, with cycles among
//! keys reported as [`Error::Cycle`] instead of a deadlock.
//!
//! # Cells: computed exactly once
//!
//! The table is a [`RawIMap`] from keys to cells. `get_or_init_with`
//! installs one cell per key and every caller for that key gets the same
//! cell; the cell's `started` flag is set by exactly one `swap`, and only
//! that caller starts the computation. The value goes into the cell's
//! [`RawIVar`], put exactly once; getters wait on it and clone it.
//!
//! # Cycle detection
//!
//! Each handle passed to a computation knows the key it computes (its
//! *owner*). When a get made through such a handle finds its key
//! unfinished (the slow path), it adds the wait-for edge `owner -> key` to
//! the table's wait-for graph under a mutex and, in the same critical
//! section, searches for a path from `key` back to `owner`. The edge is
//! removed when the get completes (or its future is dropped).
//!
//! * No cycle is missed: the edges of a cycle of unfinished keys are never
//!   removed (each waits for a value that never comes), so when the last
//!   of them is added, all the others are in the graph and the search from
//!   its target finds its source.
//! * No false cycle: an edge `a -> b` in the graph means a get of `b` made
//!   for `a`'s computation is pending. A computation awaits its gets before
//!   it returns (see the contract below), so a finished key has no outgoing
//!   edges and cannot be on a cycle (an edge *to* a finished key, left by
//!   a getter that has not woken yet, is harmless). Every key on a cycle in
//!   the graph is thus unfinished and waiting for the next one: none of
//!   them can ever finish. (Even without the removals, every edge is a
//!   real dependency between keys, so a cycle in the graph is a cycle in
//!   the code; the removals keep the graph, and the search, small.)
//!
//! A cycle among keys is a property of the code (each computation's
//! dependencies are fixed), so it is found in every schedule; which get
//! detects it may vary, the error does not.
//!
//! **Contract.** Gets made through a computation's handle (also from tasks
//! it forks) count as dependencies of its key: the computation is assumed
//! to await them before it returns. A get through that handle in a task
//! that outlives the computation may be reported as a cycle. Cycles that go
//! through other LVars or other tables are not seen here; they end in
//! [`Error::Deadlock`] like any other deadlock.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use super::effects::{HasGet, HasPut};
use super::session::{Par, Session};
use crate::data::{RawIMap, RawIVar};
use crate::error::Error;
use crate::sched::{chaos, task};
use crate::sync::{lock, AtomicBool, Mutex, Ordering::SeqCst};

/// A computed value in a cell. Each cell is put exactly once, so the
/// comparison `RawIVar` makes for a second put never happens; the wrapper
/// spares `V` a `PartialEq` bound.
struct Computed<V>(V);

impl<V> PartialEq for Computed<V> {
    fn eq(&self, _: &Self) -> bool {
        false
    }
}

/// One key's cell: who started it, and the value once computed.
struct Cell<V> {
    started: AtomicBool,
    value: RawIVar<Computed<V>>,
}

/// Starts the computation of a key as a task of the session.
type Start<'s, K, V> = dyn Fn(Memo<'s, K, V>, K) + Send + Sync + 's;

struct Inner<'s, K, V> {
    cells: RawIMap<K, Cell<V>>,
    /// For each unfinished key, the keys its computation is waiting for
    /// (a multiset: forked sub-gets may wait for the same key twice).
    waits: Mutex<HashMap<K, Vec<K>>>,
    start: Box<Start<'s, K, V>>,
    session: &'s Session,
}

/// A parallel memo table of a session: `get(k)` starts the computation of
/// `k` the first time any task asks for it (exactly once, as a task of the
/// session) and every getter waits for the same value. A computation gets
/// a handle to the table and may get other keys; a cycle among keys fails
/// the session with [`Error::Cycle`].
///
/// Memoised Fibonacci: each key is computed once, so `fib(60)` takes 61
/// computations, not billions.
///
/// ```
/// use lvars::{run_par, Memo};
///
/// let fib60 = run_par(|p| Box::pin(async move {
///     let fib = Memo::new(p, |fib, n: u64| async move {
///         if n < 2 {
///             n
///         } else {
///             // Both gets start their computations before either is awaited.
///             let (a, b) = (fib.get(n - 1), fib.get(n - 2));
///             a.await + b.await
///         }
///     });
///     fib.get(60).await
/// }));
/// assert_eq!(fib60, Ok(1_548_008_755_920));
/// ```
///
/// A key whose value depends on itself is an error, not a hang:
///
/// ```
/// use lvars::{run_par, Error, Memo};
///
/// let r = run_par(|p| Box::pin(async move {
///     // 0 needs 1, 1 needs 2, 2 needs 0.
///     let m = Memo::new(p, |m, k: u32| async move {
///         let next: u32 = m.get((k + 1) % 3).await;
///         next + 1
///     });
///     m.get(0).await
/// }));
/// assert_eq!(r, Err(Error::Cycle { lvar: "Memo" }));
/// ```
pub struct Memo<'s, K, V> {
    inner: Arc<Inner<'s, K, V>>,
    /// The key whose computation this handle was given to, if any.
    owner: Option<K>,
    _brand: PhantomData<fn(&'s ()) -> &'s ()>,
}

impl<K: Clone, V> Clone for Memo<'_, K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            owner: self.owner.clone(),
            _brand: PhantomData,
        }
    }
}

impl<K, V> std::fmt::Debug for Memo<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo")
    }
}

impl<'s, K, V> Memo<'s, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// An empty table whose values are computed by `f(handle, key)`.
    /// `handle` is this table as seen from the computation of `key`: gets
    /// through it are recorded as dependencies of `key` (for cycle
    /// detection), so a computation should get other keys through it, and
    /// await those gets before it returns.
    ///
    /// `f` itself runs on the task that first gets the key (it only has to
    /// build the future); the future runs as a new task of the session.
    ///
    /// A memo table both reads (gets wait for values) and writes (a get of
    /// a missing key computes and stores it), so it needs both effects.
    pub fn new<E, F, Fut>(p: Par<'s, E>, f: F) -> Self
    where
        E: HasPut + HasGet,
        F: Fn(Memo<'s, K, V>, K) -> Fut + Send + Sync + 's,
        Fut: Future<Output = V> + Send + 's,
    {
        let session = p.session;
        let start = move |table: Memo<'s, K, V>, key: K| {
            let work = f(table.owned_by(key.clone()), key.clone());
            // SAFETY: the session outlives its tasks (its runner waits for
            // them or cancels them before `'s` ends), and the future only
            // borrows for `'s`.
            unsafe {
                task::spawn_detached(&session.group, async move {
                    let value = work.await;
                    table.finish(&key, value);
                })
            };
        };
        Self {
            inner: Arc::new(Inner {
                cells: RawIMap::new(),
                waits: Mutex::new(HashMap::new()),
                start: Box::new(start),
                session,
            }),
            owner: None,
            _brand: PhantomData,
        }
    }

    /// The value of `key`. The call itself starts `key`'s computation if
    /// no task has asked for it before (so several gets made before any is
    /// awaited run in parallel); the future waits for the value and
    /// resolves to a clone of it, the same value for every getter.
    ///
    /// If waiting would close a cycle of computations waiting for each
    /// other (including a key that gets itself), the session fails with
    /// [`Error::Cycle`] and the future never resolves (the session cancels
    /// it).
    pub fn get(&self, key: K) -> impl Future<Output = V> + Send + 's {
        let cell = self.cell(key.clone());
        if !cell.started.load(SeqCst) && !cell.started.swap(true, SeqCst) {
            (self.inner.start)(self.without_owner(), key.clone());
        }
        let table = self.clone();
        chaos::get(async move {
            let cell = table.cell(key.clone());
            if let Some(Computed(v)) = cell.value.try_get() {
                return v.clone();
            }
            let _edge = match table.wait_for(&key) {
                Ok(edge) => edge,
                Err(e) => {
                    table.inner.session.fail(e);
                    return std::future::pending().await;
                }
            };
            cell.value.get().await.0.clone()
        })
    }

    fn cell(&self, key: K) -> &Cell<V> {
        self.inner
            .cells
            .get_or_init_with(key, || Cell {
                started: AtomicBool::new(false),
                value: RawIVar::new(),
            })
            .expect("a memo table is never frozen")
    }

    fn finish(&self, key: &K, value: V) {
        let cell = self.inner.cells.get(key).expect("a started key has a cell");
        // Cannot fail: the cell is not frozen and only this task puts.
        let _ = chaos::put(|| cell.value.put(Computed(value)));
    }

    fn owned_by(&self, key: K) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            owner: Some(key),
            _brand: PhantomData,
        }
    }

    fn without_owner(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            owner: None,
            _brand: PhantomData,
        }
    }

    /// Records that this handle's owner waits for `key` (the slow path),
    /// or reports the cycle that edge would close.
    fn wait_for(&self, key: &K) -> Result<Option<Edge<'_, 's, K, V>>, Error> {
        let Some(owner) = &self.owner else {
            // Nothing waits for a get made outside every computation.
            return Ok(None);
        };
        let mut waits = lock(&self.inner.waits);
        if reaches(&waits, key, owner) {
            return Err(Error::Cycle { lvar: "Memo" });
        }
        waits.entry(owner.clone()).or_default().push(key.clone());
        Ok(Some(Edge {
            table: self,
            to: key.clone(),
        }))
    }
}

/// Whether `to` is reachable from `from` in the wait-for graph (`from ==
/// to` counts: a key that waits for itself).
fn reaches<K: Hash + Eq + Clone>(waits: &HashMap<K, Vec<K>>, from: &K, to: &K) -> bool {
    let mut seen: HashSet<&K> = HashSet::new();
    let mut stack = vec![from];
    while let Some(k) = stack.pop() {
        if k == to {
            return true;
        }
        if seen.insert(k) {
            stack.extend(waits.get(k).into_iter().flatten());
        }
    }
    false
}

/// A wait-for edge `owner -> to`, removed when the get stops waiting.
struct Edge<'a, 's, K: Hash + Eq, V> {
    table: &'a Memo<'s, K, V>,
    to: K,
}

impl<K: Hash + Eq, V> Drop for Edge<'_, '_, K, V> {
    fn drop(&mut self) {
        let Some(owner) = &self.table.owner else { return };
        let mut waits = lock(&self.table.inner.waits);
        if let Some(targets) = waits.get_mut(owner) {
            if let Some(i) = targets.iter().position(|k| *k == self.to) {
                targets.swap_remove(i);
            }
            if targets.is_empty() {
                waits.remove(owner);
            }
        }
    }
}
