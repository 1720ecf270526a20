//! Sessions: where the scheduler and LVars meet.

use std::future::Future;
use std::marker::PhantomData;
use std::panic;
use std::pin::Pin;
use std::sync::Arc;

use super::effects::{Det, EffectLevel, FullEffects, HasIO, QuasiDet, Within};
use super::freeze::{DeferredFreeze, Erased};
use crate::error::Error;
use crate::sched::group::{GroupEnd, TaskGroup};
use crate::sched::registry::Registry;
use crate::sched::{pool, task, JoinHandle, ThreadPool};
use crate::sync::{lock, Mutex};

/// The future a session body returns: boxed, so that its type may mention
/// the session's lifetime brand `'s` (write `Box::pin(async move { .. })`).
pub type ParFuture<'s, R> = Pin<Box<dyn Future<Output = R> + Send + 's>>;

/// Shared state of one running session.
pub(crate) struct Session {
    /// Session-lifetime state that handles borrow instead of counting
    /// references, some of it holding user callbacks (handler closures
    /// borrowing `'s` data); see [`Session::keep_structure`]. Declared
    /// first, so dropped first: nothing in it refers to the group.
    structures: Mutex<Vec<Box<dyn SessionStructure>>>,
    pub(crate) group: TaskGroup,
    error: Mutex<Option<Error>>,
}

impl Session {
    /// Moves `x` into the session and lends it out for the session's whole
    /// lifetime, so that handles and tasks can share it by reference
    /// instead of cloning an `Arc` (a contended read-modify-write each).
    /// For state without user callbacks or borrowed data (`'static`):
    /// it is dropped with the session, after every task.
    pub(crate) fn keep<X: Send + Sync + 'static>(&self, x: X) -> &X {
        &self.keep_structure(NoCallbacks(x)).0
    }

    /// Moves a structure into the session and lends it out for the
    /// session's lifetime: handles to it are plain references (copying one
    /// is free), and a handler that inserts into its own set is no
    /// reference cycle. At the end of the session every structure's
    /// callbacks are dropped first, while all structures are still alive,
    /// then the structures.
    pub(crate) fn keep_structure<X: SessionStructure + 'static>(&self, x: X) -> &X {
        let boxed = Box::new(x);
        let ptr: *const X = &*boxed;
        lock(&self.structures).push(boxed);
        // SAFETY: the box's contents never move and are only dropped with
        // the session (`structures` only grows until `Drop`), and the
        // reference cannot outlive `&self`.
        unsafe { &*ptr }
    }

    /// A put (insert, bump, ...) into a variable of this session: perturbed
    /// under the `chaos` feature, and a failure fails the whole session (so
    /// which of two conflicting puts lost never leaks into a result). The
    /// put's own result (e.g. "was it new") is dropped: it could depend on
    /// the schedule. Inlined, with the failure out of line: a traversal's
    /// insert of a vertex seen before is then a bit test in the caller.
    #[inline]
    pub(crate) fn put<R>(&self, f: impl FnOnce() -> Result<R, Error>) -> Result<(), Error> {
        match crate::sched::chaos::put(f) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Records a failure (the first one wins) and stops the session.
    #[cold]
    #[inline(never)]
    pub(crate) fn fail(&self, e: Error) -> Error {
        let mut slot = lock(&self.error);
        if slot.is_none() {
            *slot = Some(e.clone());
        }
        drop(slot);
        self.group.cancel();
        e
    }
}

/// The handle a session body receives: forks tasks and creates LVars.
///
/// `'s` brands the session: LVars made with this handle carry it, and the
/// runners accept only bodies that work for *every* `'s`, so nothing
/// branded can escape the session except through
/// [`run_par_then_freeze`]'s frozen values. `E` is the effect signature
/// (see [`effects`](crate::effects)): only a handle with
/// [`HasFreeze`](crate::effects::HasFreeze) can freeze, only one with
/// [`HasIO`] can do I/O, and variables made with it get its put, get and
/// bump effects.
pub struct Par<'s, E: EffectLevel = Det> {
    pub(crate) session: &'s Session,
    _brand: PhantomData<fn(&'s ()) -> &'s ()>,
    _level: PhantomData<E>,
}

impl<E: EffectLevel> Clone for Par<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E: EffectLevel> Copy for Par<'_, E> {}

impl<E: EffectLevel> std::fmt::Debug for Par<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Par").finish_non_exhaustive()
    }
}

impl<'s, E: EffectLevel> Par<'s, E> {
    /// The same session handle with a narrower effect signature, to pass to
    /// code that should be able to do less. Widening does not compile.
    ///
    /// ```
    /// use lvars::effects::{HasGet, ReadOnly};
    /// use lvars::Par;
    ///
    /// fn only_reads<E: HasGet>(_p: Par<'_, E>) {}
    ///
    /// let r = lvars::run_par(|p| Box::pin(async move { only_reads(p.restrict::<ReadOnly>()) }));
    /// assert_eq!(r, Ok(()));
    /// ```
    pub fn restrict<E2: Within<E>>(self) -> Par<'s, E2> {
        Par {
            session: self.session,
            _brand: PhantomData,
            _level: PhantomData,
        }
    }

    /// The session handle with the put, get and bump effects, for variables
    /// the crate makes on the caller's behalf after checking the effects it
    /// needs (e.g. the result of a derived set, which the caller may put
    /// into anyway).
    pub(crate) fn grant_data(self) -> Par<'s, Det> {
        Par {
            session: self.session,
            _brand: PhantomData,
            _level: PhantomData,
        }
    }

    /// Moves `x` into the session and lends it to every task for the whole
    /// session: the way to share read-only input (a graph, a table of
    /// parameters) without borrowing from the caller's stack, which a
    /// session body cannot do, and without cloning an `Arc` in every task
    /// (a contended reference-count update per task when tasks run on
    /// several workers). `x` is dropped when the session ends, after every
    /// task.
    ///
    /// ```
    /// use lvars::IVar;
    ///
    /// let weights = vec![3u64, 1, 4, 1, 5];
    /// let r = lvars::run_par(move |p| {
    ///     let weights: &Vec<u64> = p.keep(weights);
    ///     Box::pin(async move {
    ///         let total: IVar<u64> = IVar::new(p);
    ///         let t = total.clone();
    ///         // The task uses the kept vector by reference.
    ///         p.fork(async move { t.put(weights.iter().sum()).unwrap() });
    ///         *total.get().await
    ///     })
    /// });
    /// assert_eq!(r, Ok(14));
    /// ```
    pub fn keep<X: Send + Sync + 'static>(self, x: X) -> &'s X {
        self.session.keep(x)
    }

    /// Runs `f`, an arbitrary side effect (printing, files, clocks). Only
    /// sessions run by [`run_par_io`] allow it: the result of such a
    /// session may depend on the outside world.
    pub fn io<R>(self, f: impl FnOnce() -> R) -> R
    where
        E: HasIO,
    {
        f()
    }

    /// Forks `future` as a parallel task of this session and returns a
    /// handle to await its output. The session does not end until every
    /// forked task has finished, awaited or not.
    #[inline]
    pub fn fork<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 's,
        F::Output: Send + 's,
    {
        // SAFETY: the session's runner waits for every task of the group
        // (or cancels it) before `'s` ends.
        unsafe { task::spawn(&self.session.group, future) }
    }
}

/// A structure a session can own (see [`Session::keep_structure`]).
pub(crate) trait SessionStructure: Send + Sync {
    /// Takes out every user callback the structure holds, for the session
    /// to drop before it drops any structure.
    fn take_callbacks(&mut self) -> Vec<Box<dyn Send + Sync>>;
}

/// State kept by the session that holds no user callbacks.
struct NoCallbacks<X>(X);

impl<X: Send + Sync> SessionStructure for NoCallbacks<X> {
    fn take_callbacks(&mut self) -> Vec<Box<dyn Send + Sync>> {
        Vec::new()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Phase 1: user callbacks (which may refer to any structure of the
        // session, or insert into one when dropped) go while every
        // structure is alive. Taken out first, so no `&mut` to a structure
        // is live while user code runs.
        let mut structures = std::mem::take(&mut *lock(&self.structures));
        let callbacks: Vec<_> = structures.iter_mut().flat_map(|s| s.take_callbacks()).collect();
        drop(callbacks);
        // Phase 2: the structures themselves (their elements are `'static`
        // and cannot refer to the session).
        drop(structures);
        // Anything kept while phase 1 ran is dropped with the fields.
    }
}

/// Runs a session and hands its output to `finish` *while the session
/// still exists*: whatever `finish` drops (e.g. the last reference to a
/// frozen set, and with it handler closures that may touch the session) is
/// gone before the session's memory is.
fn run_session<E, R, T>(
    registry: Arc<Registry>,
    body: impl for<'s> FnOnce(Par<'s, E>) -> ParFuture<'s, R>,
    finish: impl FnOnce(R) -> T,
) -> Result<T, Error>
where
    E: EffectLevel,
    R: Send,
{
    let session = Session {
        structures: Mutex::new(Vec::new()),
        group: TaskGroup::new(registry),
        error: Mutex::new(None),
    };
    let par = Par {
        session: &session,
        _brand: PhantomData,
        _level: PhantomData,
    };
    // The body closure itself runs here; a panic in it (before any task
    // exists) simply propagates after the tasks it forked are done.
    let built = panic::catch_unwind(panic::AssertUnwindSafe(|| body(par)));
    let mut root = match built {
        Ok(fut) => Some(par.fork(fut)),
        Err(p) => {
            session.group.record_panic(p);
            None
        }
    };
    let end = session.group.wait();
    if let Some(p) = session.group.take_panic() {
        drop(root);
        panic::resume_unwind(p);
    }
    if let Some(e) = lock(&session.error).take() {
        return Err(e);
    }
    if let GroupEnd::Deadlocked { parked } = end {
        return Err(Error::Deadlock { parked });
    }
    match root.as_mut().and_then(JoinHandle::take_if_finished) {
        Some(v) => Ok(finish(v)),
        // Unreachable in practice: a root that did not finish means the
        // group was cancelled, which is reported above.
        None => Err(Error::Deadlock { parked: 0 }),
    }
}

/// Runs a deterministic session on the current pool (the global pool
/// outside one) and returns the body's output.
///
/// The body gets a [`Par`] handle that can fork tasks and create LVars but
/// cannot freeze: the result is the same in every run. The runner waits
/// for every task the body forked (transitively) before returning.
///
/// Errors: a conflicting put, or a deadlock (every task blocked on a get
/// that can never be satisfied). A panicking task is re-raised here.
///
/// A session is a closed world: its tasks must be woken by the session
/// itself (puts into its LVars, its tasks finishing). Deadlock detection
/// relies on it: when no task of the session can run and the pool is idle,
/// the session is reported as deadlocked at once, and its parked tasks are
/// cancelled. Awaiting a future that only the outside world completes (a
/// timer, I/O, a raw LVar filled by another thread) therefore ends in
/// `Error::Deadlock`; such effects are not deterministic anyway.
///
/// ```
/// use lvars::{run_par, IVar};
///
/// let answer = run_par(|p| Box::pin(async move {
///     let iv = IVar::new(p);
///     let writer = iv.clone();
///     p.fork(async move { writer.put(42).unwrap() });
///     *iv.get().await
/// }));
/// assert_eq!(answer, Ok(42));
/// ```
pub fn run_par<R, F>(body: F) -> Result<R, Error>
where
    R: Send,
    F: for<'s> FnOnce(Par<'s, Det>) -> ParFuture<'s, R>,
{
    run_session(pool::current_registry(), body, |r| r)
}

/// Runs a quasi-deterministic session: the handle can also freeze LVars.
/// Every run returns the same answer *or* an error (e.g. a put that came
/// after a freeze and would have changed the frozen value).
pub fn run_par_quasi_det<R, F>(body: F) -> Result<R, Error>
where
    R: Send,
    F: for<'s> FnOnce(Par<'s, QuasiDet>) -> ParFuture<'s, R>,
{
    run_session(pool::current_registry(), body, |r| r)
}

/// Runs a session that may use every effect: put, get, bump, freeze and
/// I/O through [`Par::io`]. Nothing about its result is guaranteed to be
/// deterministic; it is LVish's `runParIO`, for programs that mix LVars
/// with the outside world. Errors, panics and deadlocks are reported as by
/// [`run_par`].
///
/// ```
/// let r = lvars::run_par_io(|p| Box::pin(async move {
///     let seen = lvars::IVar::new(p);
///     seen.put(p.io(|| std::env::args().count() > 0)).unwrap();
///     *seen.get().await
/// }));
/// assert_eq!(r, Ok(true));
/// ```
pub fn run_par_io<R, F>(body: F) -> Result<R, Error>
where
    R: Send,
    F: for<'s> FnOnce(Par<'s, FullEffects>) -> ParFuture<'s, R>,
{
    run_session(pool::current_registry(), body, |r| r)
}

/// Runs a deterministic session, waits for every task it forked, then
/// freezes the LVars the body returned (through
/// [`Freeze::then_freeze`](super::Freeze::then_freeze)) and returns their
/// frozen values. Freezing after the barrier cannot race with any put, so
/// the result is deterministic.
///
/// ```
/// use lvars::{run_par_then_freeze, Freeze, LVar};
/// use lvars::lattice::{MapUnion, Max};
///
/// // The seed's shopping cart: two concurrent inserts, frozen after both.
/// let cart = run_par_then_freeze(|p| Box::pin(async move {
///     let cart: LVar<MapUnion<&str, Max<u32>>> = LVar::new(p);
///     let (c1, c2) = (cart.clone(), cart.clone());
///     p.fork(async move { c1.put(MapUnion::singleton("Book", Max::new(1))).unwrap() });
///     p.fork(async move { c2.put(MapUnion::singleton("Shoes", Max::new(1))).unwrap() });
///     cart.then_freeze()
/// })).unwrap();
/// assert_eq!(cart.len(), 2);
/// ```
pub fn run_par_then_freeze<T, F>(body: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: for<'s> FnOnce(Par<'s, Det>) -> ParFuture<'s, DeferredFreeze<'s, T>>,
{
    run_session(pool::current_registry(), erase_then_freeze(body), Erased::run)
}

/// Adapts a `run_par_then_freeze` body for `run_session`, whose output type
/// cannot name the session: the brand of the deferred freeze is dropped
/// inside the session, and `run_session` runs the freeze before the session
/// ends.
fn erase_then_freeze<T, F>(body: F) -> impl for<'s> FnOnce(Par<'s, Det>) -> ParFuture<'s, Erased<T>>
where
    T: Send + 'static,
    F: for<'s> FnOnce(Par<'s, Det>) -> ParFuture<'s, DeferredFreeze<'s, T>>,
{
    move |p| {
        let fut = body(p);
        Box::pin(async move { fut.await.erase() })
    }
}

impl ThreadPool {
    /// [`run_par`] on this pool.
    pub fn run_par<R, F>(&self, body: F) -> Result<R, Error>
    where
        R: Send,
        F: for<'s> FnOnce(Par<'s, Det>) -> ParFuture<'s, R>,
    {
        run_session(Arc::clone(self.registry()), body, |r| r)
    }

    /// [`run_par_quasi_det`] on this pool.
    pub fn run_par_quasi_det<R, F>(&self, body: F) -> Result<R, Error>
    where
        R: Send,
        F: for<'s> FnOnce(Par<'s, QuasiDet>) -> ParFuture<'s, R>,
    {
        run_session(Arc::clone(self.registry()), body, |r| r)
    }

    /// [`run_par_io`] on this pool.
    pub fn run_par_io<R, F>(&self, body: F) -> Result<R, Error>
    where
        R: Send,
        F: for<'s> FnOnce(Par<'s, FullEffects>) -> ParFuture<'s, R>,
    {
        run_session(Arc::clone(self.registry()), body, |r| r)
    }

    /// [`run_par_then_freeze`] on this pool.
    pub fn run_par_then_freeze<T, F>(&self, body: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'s> FnOnce(Par<'s, Det>) -> ParFuture<'s, DeferredFreeze<'s, T>>,
    {
        run_session(Arc::clone(self.registry()), erase_then_freeze(body), Erased::run)
    }
}
