//! Session-level LVar handles: the core variables plus the session brand
//! (so they cannot escape) and error reporting (a failed put fails the
//! whole session, so which put failed never leaks into a result).

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use super::effects::{Det, EffectLevel, HasBump, HasFreeze, HasGet, HasPut, Within};
use super::freeze::{DeferredFreeze, Freeze};
use super::session::{Par, Session};
use crate::data::{RawIVar, RawMaxCounter};
use crate::error::Error;
use crate::lattice::Lattice;
use crate::lvar::{RawLVar, ThresholdSet};
use crate::sched::chaos;

type Brand<'s, E> = PhantomData<(fn(&'s ()) -> &'s (), E)>;

/// The impls every reference-counted session handle shares: `Clone` (one
/// more reference), `Debug` (the type's name) and `restrict` (the same
/// variable under a narrower effect signature).
macro_rules! handle_impls {
    ($name:ident, [$($p:ident $(: $bound:path)?),*]) => {
        impl<$($p $(: $bound)?,)* E> Clone for $name<'_, $($p,)* E> {
            fn clone(&self) -> Self {
                Self {
                    raw: Arc::clone(&self.raw),
                    session: self.session,
                    _brand: PhantomData,
                }
            }
        }

        impl<$($p $(: $bound)?,)* E> std::fmt::Debug for $name<'_, $($p,)* E> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($name))
            }
        }

        impl<'s, $($p $(: $bound)?,)* E: EffectLevel> $name<'s, $($p,)* E> {
            /// The same variable with a narrower effect signature, to hand to code
            /// that should be able to do less (see [`effects`](crate::effects)).
            pub fn restrict<E2: Within<E>>(&self) -> $name<'s, $($p,)* E2> {
                $name {
                    raw: Arc::clone(&self.raw),
                    session: self.session,
                    _brand: PhantomData,
                }
            }
        }
    };
}
pub(crate) use handle_impls;

/// A lattice variable of a session: puts join, gets wait for thresholds.
///
/// Cloning is cheap (a reference count); clones share the variable.
pub struct LVar<'s, L: Lattice, E = Det> {
    raw: Arc<RawLVar<L>>,
    session: &'s Session,
    _brand: Brand<'s, E>,
}

handle_impls!(LVar, [L: Lattice]);

impl<'s, L: Lattice + Send + Sync + 'static> LVar<'s, L> {
    /// A new variable at bottom.
    pub fn new<P: EffectLevel>(p: Par<'s, P>) -> LVar<'s, L, P::Data> {
        LVar {
            raw: Arc::new(RawLVar::new()),
            session: p.session,
            _brand: PhantomData,
        }
    }
}

impl<'s, L: Lattice + Send + Sync + 'static, E: EffectLevel> LVar<'s, L, E> {
    /// Joins `value` into the state. A put that would reach top
    /// (`ConflictingPut`) or change a frozen variable (`PutAfterFreeze`)
    /// fails, and so does the session.
    pub fn put(&self, value: L) -> Result<(), Error>
    where
        E: HasPut,
    {
        self.session.put(|| self.raw.put(&value))
    }

    /// Waits until the state reaches an element of `thresholds`, and
    /// resolves to that element.
    pub fn get(&self, thresholds: ThresholdSet<L>) -> impl Future<Output = L> + Send + '_
    where
        E: HasGet,
    {
        chaos::get(self.raw.get(thresholds))
    }

    /// Waits until the state is at or above `threshold`.
    pub fn get_at_least(&self, threshold: L) -> Result<impl Future<Output = L> + Send + '_, Error>
    where
        E: HasGet,
    {
        self.raw.get_at_least(threshold).map(chaos::get)
    }

    /// Freezes the variable and returns its exact state (quasi-deterministic
    /// sessions only).
    pub fn freeze<F: HasFreeze>(&self, _proof: &Par<'s, F>) -> L {
        self.raw.freeze()
    }
}

impl<'s, L: Lattice + Send + Sync + 'static, E: EffectLevel> Freeze<'s> for LVar<'s, L, E> {
    type Frozen = L;

    fn then_freeze(self) -> DeferredFreeze<'s, L> {
        let raw = self.raw;
        DeferredFreeze::new(move || raw.freeze())
    }
}

/// A single-assignment variable of a session.
pub struct IVar<'s, T, E = Det> {
    raw: Arc<RawIVar<T>>,
    session: &'s Session,
    _brand: Brand<'s, E>,
}

handle_impls!(IVar, [T]);

impl<'s, T: PartialEq + Send + Sync + 'static> IVar<'s, T> {
    /// An empty IVar.
    pub fn new<P: EffectLevel>(p: Par<'s, P>) -> IVar<'s, T, P::Data> {
        IVar {
            raw: Arc::new(RawIVar::new()),
            session: p.session,
            _brand: PhantomData,
        }
    }
}

impl<'s, T: PartialEq + Send + Sync + 'static, E: EffectLevel> IVar<'s, T, E> {
    /// Sets the value; an equal second put is a no-op, a different one is a
    /// `ConflictingPut` that fails the session.
    pub fn put(&self, value: T) -> Result<(), Error>
    where
        E: HasPut,
    {
        self.session.put(|| self.raw.put(value))
    }

    /// Waits for the value.
    pub fn get(&self) -> impl Future<Output = &T> + Send + '_
    where
        E: HasGet,
    {
        chaos::get(self.raw.get())
    }

    /// Freezes the IVar and returns its value, if set (quasi-deterministic
    /// sessions only).
    pub fn freeze<F: HasFreeze>(&self, _proof: &Par<'s, F>) -> Option<&T> {
        self.raw.freeze()
    }
}

impl<'s, T: PartialEq + Clone + Send + Sync + 'static, E: EffectLevel> Freeze<'s> for IVar<'s, T, E> {
    type Frozen = Option<T>;

    fn then_freeze(self) -> DeferredFreeze<'s, Option<T>> {
        let raw = self.raw;
        DeferredFreeze::new(move || raw.freeze().cloned())
    }
}

/// A counter that only goes up (the max lattice over `u64`).
pub struct MaxCounter<'s, E = Det> {
    raw: Arc<RawMaxCounter>,
    session: &'s Session,
    _brand: Brand<'s, E>,
}

handle_impls!(MaxCounter, []);

impl<'s> MaxCounter<'s> {
    /// A counter at 0.
    pub fn new<P: EffectLevel>(p: Par<'s, P>) -> MaxCounter<'s, P::Data> {
        MaxCounter {
            raw: Arc::new(RawMaxCounter::new()),
            session: p.session,
            _brand: PhantomData,
        }
    }
}

impl<'s, E: EffectLevel> MaxCounter<'s, E> {
    /// Raises the counter to at least `n`.
    pub fn put(&self, n: u64) -> Result<(), Error>
    where
        E: HasPut,
    {
        self.session.put(|| self.raw.put(n))
    }

    /// Waits until the counter is at least `n`.
    pub fn wait_at_least(&self, n: u64) -> impl Future<Output = ()> + Send + '_
    where
        E: HasGet,
    {
        chaos::get(self.raw.wait_at_least(n))
    }

    /// Freezes and returns the exact value (quasi-deterministic sessions only).
    pub fn freeze<F: HasFreeze>(&self, _proof: &Par<'s, F>) -> u64 {
        self.raw.freeze()
    }
}

impl<'s, E: EffectLevel> Freeze<'s> for MaxCounter<'s, E> {
    type Frozen = u64;

    fn then_freeze(self) -> DeferredFreeze<'s, u64> {
        let raw = self.raw;
        DeferredFreeze::new(move || raw.freeze())
    }
}

use crate::data::{FrozenPN, RawCounter, RawIStructure, RawPNCounter};

/// A fixed-length array of single-assignment slots of a session; each slot
/// is an [`IVar`] with its own waiters.
///
/// Cloning is cheap (a reference count); clones share the array.
///
/// ```
/// use lvars::{run_par_then_freeze, Freeze, IStructure};
///
/// // Prefix sums as a wavefront: slot i waits for slot i - 1.
/// let sums = run_par_then_freeze(|p| Box::pin(async move {
///     let a: IStructure<u64> = IStructure::new(p, 5);
///     for i in (1..5).rev() {
///         let a = a.clone();
///         p.fork(async move {
///             let prev = *a.get(i - 1).unwrap().await;
///             a.put(i, prev + i as u64).unwrap();
///         });
///     }
///     a.put(0, 0).unwrap();
///     a.then_freeze()
/// })).unwrap();
/// assert_eq!(sums, vec![Some(0), Some(1), Some(3), Some(6), Some(10)]);
/// ```
pub struct IStructure<'s, T, E = Det> {
    raw: Arc<RawIStructure<T>>,
    session: &'s Session,
    _brand: Brand<'s, E>,
}

handle_impls!(IStructure, [T]);

impl<'s, T: PartialEq + Send + Sync + 'static> IStructure<'s, T> {
    /// An IStructure of `len` empty slots.
    pub fn new<P: EffectLevel>(p: Par<'s, P>, len: usize) -> IStructure<'s, T, P::Data> {
        IStructure {
            raw: Arc::new(RawIStructure::new(len)),
            session: p.session,
            _brand: PhantomData,
        }
    }
}

impl<'s, T: PartialEq + Send + Sync + 'static, E: EffectLevel> IStructure<'s, T, E> {
    /// The number of slots.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether there are no slots at all.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Sets slot `i`; an equal second put is a no-op. A different value
    /// (`ConflictingPut`) or an index `>= len()` (`OutOfRange`) fails the
    /// session.
    pub fn put(&self, i: usize, value: T) -> Result<(), Error>
    where
        E: HasPut,
    {
        self.session.put(|| self.raw.put(i, value))
    }

    /// Waits for slot `i`. An index `>= len()` is `OutOfRange` at once; it
    /// is returned to the caller (it is the same in every schedule) and
    /// does not fail the session.
    pub fn get(&self, i: usize) -> Result<impl Future<Output = &T> + Send + '_, Error>
    where
        E: HasGet,
    {
        self.raw.get(i).map(chaos::get)
    }

    /// Freezes every slot and returns the values, `None` for empty slots
    /// (quasi-deterministic sessions only).
    pub fn freeze<F: HasFreeze>(&self, _proof: &Par<'s, F>) -> Vec<Option<&T>> {
        self.raw.freeze()
    }
}

impl<'s, T: PartialEq + Clone + Send + Sync + 'static, E: EffectLevel> Freeze<'s> for IStructure<'s, T, E> {
    type Frozen = Vec<Option<T>>;

    fn then_freeze(self) -> DeferredFreeze<'s, Vec<Option<T>>> {
        let raw = self.raw;
        DeferredFreeze::new(move || raw.freeze().into_iter().map(|v| v.cloned()).collect())
    }
}

/// A bump counter of a session: commutative, non-idempotent increments
/// and threshold waits that never reveal the count.
///
/// A `Counter` only has [`bump`](Counter::bump) and a [`MaxCounter`] only
/// `put`: mixing the two on one variable would not be deterministic
/// (`put(5)` then `bump(1)` is 6, the other order 5).
///
/// ```
/// use lvars::{run_par_then_freeze, Counter, Freeze};
///
/// let total = run_par_then_freeze(|p| Box::pin(async move {
///     let hits = Counter::new(p);
///     for i in 1..=4 {
///         let hits = hits.clone();
///         p.fork(async move { hits.bump(i).unwrap() });
///     }
///     hits.wait_at_least(10).await; // all four bumps are in
///     hits.then_freeze()
/// })).unwrap();
/// assert_eq!(total, 10);
/// ```
pub struct Counter<'s, E = Det> {
    raw: Arc<RawCounter>,
    session: &'s Session,
    _brand: Brand<'s, E>,
}

handle_impls!(Counter, []);

impl<'s> Counter<'s> {
    /// A counter at 0.
    pub fn new<P: EffectLevel>(p: Par<'s, P>) -> Counter<'s, P::Data> {
        Counter {
            raw: Arc::new(RawCounter::new()),
            session: p.session,
            _brand: PhantomData,
        }
    }
}

impl<'s, E: EffectLevel> Counter<'s, E> {
    /// Adds `n` to the count. Bumping a frozen counter by `n > 0`
    /// (`PutAfterFreeze`) or past [`COUNTER_LIMIT`](crate::data::COUNTER_LIMIT)
    /// (`OutOfRange`) fails the session; bumping by 0 never fails.
    pub fn bump(&self, n: u64) -> Result<(), Error>
    where
        E: HasBump,
    {
        self.session.put(|| self.raw.bump(n))
    }

    /// Waits until the count is at least `n`.
    pub fn wait_at_least(&self, n: u64) -> impl Future<Output = ()> + Send + '_
    where
        E: HasGet,
    {
        chaos::get(self.raw.wait_at_least(n))
    }

    /// Freezes and returns the exact count (quasi-deterministic sessions only).
    pub fn freeze<F: HasFreeze>(&self, _proof: &Par<'s, F>) -> u64 {
        self.raw.freeze()
    }
}

impl<'s, E: EffectLevel> Freeze<'s> for Counter<'s, E> {
    type Frozen = u64;

    fn then_freeze(self) -> DeferredFreeze<'s, u64> {
        let raw = self.raw;
        DeferredFreeze::new(move || raw.freeze())
    }
}

/// A counter with increments and decrements of a session: two bump
/// counters with separate threshold waits. The value `increments -
/// decrements` goes up and down, so reading it before the end would depend
/// on the schedule; it is only available from the frozen state,
/// [`FrozenPN::value`].
///
/// ```
/// use lvars::{run_par_then_freeze, Freeze, PNCounter};
///
/// let frozen = run_par_then_freeze(|p| Box::pin(async move {
///     let stock = PNCounter::new(p);
///     let (inc, dec) = (stock.clone(), stock.clone());
///     p.fork(async move { inc.increment(10).unwrap() });
///     p.fork(async move { dec.decrement(3).unwrap() });
///     stock.then_freeze()
/// })).unwrap();
/// assert_eq!((frozen.increments, frozen.decrements), (10, 3));
/// assert_eq!(frozen.value(), 7);
/// ```
pub struct PNCounter<'s, E = Det> {
    raw: Arc<RawPNCounter>,
    session: &'s Session,
    _brand: Brand<'s, E>,
}

handle_impls!(PNCounter, []);

impl<'s> PNCounter<'s> {
    /// A counter with no increments and no decrements.
    pub fn new<P: EffectLevel>(p: Par<'s, P>) -> PNCounter<'s, P::Data> {
        PNCounter {
            raw: Arc::new(RawPNCounter::new()),
            session: p.session,
            _brand: PhantomData,
        }
    }
}

impl<'s, E: EffectLevel> PNCounter<'s, E> {
    /// Adds `n` to the increments; errors fail the session (as
    /// [`Counter::bump`]).
    pub fn increment(&self, n: u64) -> Result<(), Error>
    where
        E: HasBump,
    {
        self.session.put(|| self.raw.increment(n))
    }

    /// Adds `n` to the decrements; errors fail the session (as
    /// [`Counter::bump`]).
    pub fn decrement(&self, n: u64) -> Result<(), Error>
    where
        E: HasBump,
    {
        self.session.put(|| self.raw.decrement(n))
    }

    /// Waits until the increments sum to at least `n`.
    pub fn wait_increments_at_least(&self, n: u64) -> impl Future<Output = ()> + Send + '_
    where
        E: HasGet,
    {
        chaos::get(self.raw.wait_increments_at_least(n))
    }

    /// Waits until the decrements sum to at least `n`.
    pub fn wait_decrements_at_least(&self, n: u64) -> impl Future<Output = ()> + Send + '_
    where
        E: HasGet,
    {
        chaos::get(self.raw.wait_decrements_at_least(n))
    }

    /// Freezes both sides and returns them (quasi-deterministic sessions
    /// only).
    pub fn freeze<F: HasFreeze>(&self, _proof: &Par<'s, F>) -> FrozenPN {
        self.raw.freeze()
    }
}

impl<'s, E: EffectLevel> Freeze<'s> for PNCounter<'s, E> {
    type Frozen = FrozenPN;

    fn then_freeze(self) -> DeferredFreeze<'s, FrozenPN> {
        let raw = self.raw;
        DeferredFreeze::new(move || raw.freeze())
    }
}
