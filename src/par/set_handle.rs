//! The session-level handle of the grow-only set.

use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;

type Brand<'s, E> = PhantomData<(fn(&'s ()) -> &'s (), E)>;

use super::effects::{Det, EffectLevel, HasFreeze, HasGet, HasPut, Within};
use super::freeze::{DeferredFreeze, Freeze};
use super::session::{Par, Session, SessionStructure};
use crate::data::{DenseKey, RawISet};
use crate::error::Error;
use crate::sched::chaos;

/// A grow-only set of a session: lock-free inserts, threshold reads
/// (`wait_contains`, `wait_size`), handlers (see
/// [`HandlerPool`](super::HandlerPool)), and a frozen value sorted the same
/// way in every run.
///
/// The set itself belongs to the session and is dropped with it: a handle
/// is a reference, so cloning (or copying) one costs nothing, and a
/// handler that inserts into its own set is no reference cycle.
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
pub struct ISet<'s, T, E = Det> {
    raw: &'s RawISet<T>,
    session: &'s Session,
    _brand: Brand<'s, E>,
}

impl<T, E> Clone for ISet<'_, T, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, E> Copy for ISet<'_, T, E> {}

impl<T: Hash + Eq + Send + Sync + 'static> SessionStructure for RawISet<T> {
    fn take_callbacks(&mut self) -> Vec<Box<dyn Send + Sync>> {
        self.take_listeners()
            .into_iter()
            .map(|l| Box::new(l) as Box<dyn Send + Sync>)
            .collect()
    }
}

impl<T, E> std::fmt::Debug for ISet<'_, T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ISet")
    }
}

impl<'s, T: Hash + Eq + Send + Sync + 'static> ISet<'s, T> {
    /// An empty set.
    pub fn new<P: EffectLevel>(p: Par<'s, P>) -> ISet<'s, T, P::Data> {
        ISet {
            raw: p.session.keep_structure(RawISet::new()),
            session: p.session,
            _brand: PhantomData,
        }
    }
    /// An empty set with room for `n` elements before its first resize.
    pub fn with_capacity<P: EffectLevel>(p: Par<'s, P>, n: usize) -> ISet<'s, T, P::Data> {
        ISet {
            raw: p.session.keep_structure(RawISet::with_capacity(n)),
            session: p.session,
            _brand: PhantomData,
        }
    }
}

impl<'s, T: DenseKey> ISet<'s, T> {
    /// An empty dense set of the integers below `bound`, one bit each (see
    /// [`RawISet::dense`]): the visited set of a traversal over vertex
    /// numbers. Inserting an integer `>= bound` fails (and fails the
    /// session) with `OutOfRange`.
    ///
    /// ```
    /// use lvars::{run_par_then_freeze, Freeze, ISet};
    ///
    /// let frozen = run_par_then_freeze(|p| Box::pin(async move {
    ///     let set: ISet<u32> = ISet::dense(p, 1000);
    ///     for i in 0..10 {
    ///         p.fork(async move { set.insert(i * 99).unwrap() });
    ///     }
    ///     set.then_freeze()
    /// }))
    /// .unwrap();
    /// assert_eq!(frozen, vec![0, 99, 198, 297, 396, 495, 594, 693, 792, 891]);
    /// ```
    pub fn dense<P: EffectLevel>(p: Par<'s, P>, bound: usize) -> ISet<'s, T, P::Data> {
        ISet {
            raw: p.session.keep_structure(RawISet::dense(bound)),
            session: p.session,
            _brand: PhantomData,
        }
    }
}

impl<'s, T: Hash + Eq + Send + Sync + 'static, E: EffectLevel> ISet<'s, T, E> {
    /// The same variable with a narrower effect signature, to hand to code
    /// that should be able to do less (see [`effects`](crate::effects)).
    pub fn restrict<E2: Within<E>>(&self) -> ISet<'s, T, E2> {
        ISet {
            raw: self.raw,
            session: self.session,
            _brand: PhantomData,
        }
    }

    /// Inserts `x` (inserting an element already present is a no-op).
    /// Fails, and fails the session, if the set is frozen and `x` is new, or
    /// (`OutOfRange`) if `x` is beyond a [dense](ISet::dense) set's bound.
    #[inline]
    pub fn insert(&self, x: T) -> Result<(), Error>
    where
        E: HasPut,
    {
        self.session.put(|| self.raw.insert(x))
    }

    /// Waits until `x` is in the set.
    pub fn wait_contains(&self, x: T) -> impl Future<Output = ()> + Send + '_
    where
        E: HasGet,
    {
        chaos::get(self.raw.wait_contains(x))
    }

    /// Waits until the set has at least `n` elements.
    pub fn wait_size(&self, n: usize) -> impl Future<Output = ()> + Send + '_
    where
        E: HasGet,
    {
        chaos::get(self.raw.wait_size(n))
    }

    /// Inserts every element of `xs` (see [`RawISet::extend`]: faster than
    /// one by one for large batches). Fails, and fails the session, at the
    /// first new element if the set is frozen, or at the first element
    /// beyond a [dense](ISet::dense) set's bound.
    pub fn extend(&self, xs: impl IntoIterator<Item = T>) -> Result<(), Error>
    where
        E: HasPut,
    {
        self.session.put(|| self.raw.extend(xs))
    }

    pub(crate) fn raw(&self) -> &'s RawISet<T> {
        self.raw
    }
}

impl<'s, T: Hash + Eq + Ord + Clone + Send + Sync + 'static, E: EffectLevel> ISet<'s, T, E> {
    /// Freezes the set and returns its elements in sorted order
    /// (quasi-deterministic sessions only).
    pub fn freeze<F: HasFreeze>(&self, _proof: &Par<'s, F>) -> Vec<T> {
        self.raw.freeze_sorted()
    }
}

impl<'s, T: Hash + Eq + Ord + Clone + Send + Sync + 'static, E: EffectLevel> Freeze<'s> for ISet<'s, T, E> {
    /// The elements, sorted.
    type Frozen = Vec<T>;

    fn then_freeze(self) -> DeferredFreeze<'s, Vec<T>> {
        DeferredFreeze::new_in_session(move || self.raw.freeze_sorted())
    }
}
