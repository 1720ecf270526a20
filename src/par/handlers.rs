//! Handler pools and quiescence.
//!
//! A handler is a callback that runs, as a task of the session, once for
//! every element that is in a set now or is added later: the way graph
//! traversals and fixpoint analyses are written with LVars.
//!
//! # Exactly once
//!
//! Delivery is the set's protocol (`data::iset`, `add_listener`): every
//! element carries a bit per listener, and whichever of the inserting
//! thread and the installing scan sets the bit first delivers it. So a
//! handler sees each element once, even when inserts race with its
//! installation (LVish ran handlers twice in that case).
//!
//! # Quiescence
//!
//! Two monotone counts per stripe of threads (`data::striped`): callback
//! tasks *started* and *finished*, each incremented by the thread that
//! starts or finishes the task on its own stripe, so workers share no
//! word (with up to 16 threads in the process; beyond, threads share
//! stripes), where a single `pending` counter was a contended cache line
//! touched twice per element. A task is counted as started *before* the
//! insert that delivered its element returns, and as finished only once
//! it has no callback left to run: its own element's, then each element it
//! holds back ("Tail elements" below: a held element has no count of its
//! own, the holder's covers it, and one released to a task of its own is
//! counted as started then, while the holder's count is still open). A
//! callback that inserts more elements counts their tasks as started
//! before its own task finishes. So while work remains the finished total
//! is below the started total.
//!
//! **Invariant (exact quiescence).** Reading every `finished` stripe and
//! then every `started` stripe gives `F <= finished(t) <= started(t) <= S`
//! for an instant `t` between the two passes (every stripe only grows, and
//! a callback's start happens before its finish). So `F == S` proves the
//! pool was quiescent at `t`; and once it is quiescent for good, the next
//! read finds `F == S`.
//!
//! **No lost wake-up.** A finisher, after its `SeqCst` increment, loads the
//! quiesce waiter list (`SeqCst`) and, only if a waiter is there, reads the
//! sums; if they are equal it bumps the `quiescent` epoch and wakes the
//! waiters. A waiter registers, fences and re-checks the sums (the protocol
//! of `lvar/waiters.rs`). Of the finishes that together bring the pool to
//! quiescence, the last one in the `SeqCst` order sees all the others'
//! increments, and either it sees the waiter or the waiter's re-check sees
//! its increment. A `quiesce()` future resolves once the pool is quiescent
//! or the epoch moved past the value it read when it was made. The epoch
//! moves only while a waiter is registered, so a zero that lasts only an
//! instant while the future is registered is not missed; one that comes
//! and goes before it registers (in its first poll) is, and the future
//! resolves at the next quiescent moment instead. Counter-based, no lock;
//! modelled by `loom_tests/quiesce.rs`, across stripes.
//!
//! # Tail elements
//!
//! Each delivered element needs its callback to run as a task, but a task
//! per element costs an allocation, a queue push and pop and a header to
//! set up and free, and a traversal's callbacks are short. Two things make
//! that cheaper.
//!
//! *Queued elements.* An element that needs a task of its own is queued as
//! a small job (`QueuedElement`: the element, its count in the pool and
//! its count in the session; 32 bytes for a `u32`), and the task is made
//! only when a worker runs that job (`task::queue_detached`,
//! `task::run_counted_detached`), so a
//! traversal's frontier (thousands of pending elements) takes a few
//! hundred kilobytes instead of megabytes of 256-byte tasks, and the task
//! block, freed as soon as its callbacks are done, is reused hot from the
//! worker's cache by the next element. The job is counted in the session
//! like a task (the session count passes to the task), so the barrier,
//! cancellation and deadlock detection treat it as one.
//!
//! *Tail elements.* A callback
//! task keeps the *last* element its own callback delivered on this thread
//! (the one a LIFO queue would have run next anyway) and, when the
//! callback returns, runs that element's callback itself, in the same
//! allocation; earlier elements go to new tasks, which other workers can
//! steal. An element is not held back when a worker is hungry (it would
//! have nothing to steal; `join`'s lazy publication uses the same flag),
//! and is released as its own task whenever the callback parks, or its
//! worker blocks or polls another holder (`sched/deferred.rs` states the
//! invariant). A held element is covered by its holder's count (see
//! "Quiescence"), and the holder is a live task, so quiescence and the
//! session's barrier wait for it; running it in place takes no count at
//! all. In the LVish traversal this runs about a third of all callbacks
//! without a task of their own.
//!
//! A callback that *blocks its thread* (a std lock or channel, not an
//! `.await`) after delivering keeps its last element from running until it
//! returns. Blocking a worker on another callback's progress can deadlock
//! on one worker regardless; callbacks that wait should await.
//!
//! Quiescence covers the pool's handlers: inserts by other tasks that are
//! still running are not waited for. Freezing after quiescence is therefore
//! quasi-deterministic ([`freeze_set_after`]); to get a deterministic result
//! return the set from [`run_par_then_freeze`](super::run_par_then_freeze),
//! whose barrier waits for handler tasks like any other task.

use std::any::TypeId;
use std::cell::UnsafeCell;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::effects::{EffectLevel, HasFreeze, HasGet};
use super::session::{Par, Session, SessionStructure};
use super::set_handle::ISet;
use crate::data::{EntryListener, Listener};
use crate::error::Error;
use crate::lvar::wait::{WaitFuture, Waitable};
use crate::lvar::waiters::WaiterList;
use crate::sched::deferred::Deferred;
use crate::sched::registry::WorkerThread;
use crate::sched::task;
use crate::striped::{thread_stripe, StripedCount};
use crate::sync::{fence, AtomicU64, Ordering::SeqCst};

/// The counting state of a pool, shared with its listeners and callbacks.
/// (Public only for the loom models; not reachable from outside the crate.)
pub struct PoolState {
    /// Callback tasks started and finished, each counted on the stripe of the
    /// thread that started or finished it.
    started: StripedCount,
    finished: StripedCount,
    quiescent: AtomicU64,
    waiters: WaiterList<u64>,
}

impl PoolState {
    /// A pool with no callback running.
    pub fn new() -> Self {
        Self {
            started: StripedCount::new(),
            finished: StripedCount::new(),
            quiescent: AtomicU64::new(0),
            waiters: WaiterList::new(),
        }
    }

    /// A callback is about to start (counted on this thread's stripe).
    pub fn start(&self) {
        self.start_on(thread_stripe());
    }

    /// A callback finished or was cancelled (counted on this thread's
    /// stripe).
    pub fn finish(&self) {
        self.finish_on(thread_stripe());
    }

    /// `start` on a given stripe (the loom models choose stripes).
    #[doc(hidden)]
    pub fn start_on(&self, stripe: usize) {
        self.started.increment(stripe);
    }

    /// `finish` on a given stripe: the finisher's side of the wake-up
    /// protocol (module doc).
    #[doc(hidden)]
    pub fn finish_on(&self, stripe: usize) {
        self.finished.increment(stripe);
        // Loom models `SeqCst` RMWs as acquire/release only: the fence makes
        // the Dekker pair explicit there (the RMW already is one elsewhere).
        #[cfg(loom)]
        fence(SeqCst);
        if !self.waiters.is_empty() && self.is_quiescent() {
            self.quiescent.fetch_add(1, SeqCst);
            fence(SeqCst);
            Waitable::wake_satisfied(&self);
        }
    }

    /// Whether the pool was quiescent at some instant during this call
    /// (module doc: finished totals first, then started totals).
    fn is_quiescent(&self) -> bool {
        let finished = self.finished.sum();
        let started = self.started.sum();
        finished == started
    }

    /// Resolves once the pool is (or has been, while the future was
    /// registered as a waiter) quiescent.
    pub fn quiesce(&self) -> impl Future<Output = ()> + Send + '_ {
        WaitFuture::new(self, self.quiescent.load(SeqCst))
    }
}

impl Default for PoolState {
    fn default() -> Self {
        Self::new()
    }
}

impl Waitable for &PoolState {
    /// The quiescence epoch when the wait started.
    type Query = u64;
    type Output = ();

    fn waiters(&self) -> &WaiterList<u64> {
        &self.waiters
    }

    fn check(&self, started_at: &u64) -> Option<()> {
        (self.quiescent.load(SeqCst) > *started_at || self.is_quiescent()).then_some(())
    }
}

/// Counts the callback as finished when it ends, however it ends (finished,
/// cancelled with its session, or panicked).
struct Finish<'s>(&'s PoolState);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// A group of handlers that can be waited for together.
///
/// ```
/// use lvars::{run_par_then_freeze, Freeze, HandlerPool, ISet};
///
/// // Everything reachable from 1 under x -> 2x, x -> 3x, below 100.
/// let reached = run_par_then_freeze(|p| Box::pin(async move {
///     let set: ISet<u32> = ISet::new(p);
///     let pool = HandlerPool::new(p);
///     let s = set.clone();
///     pool.add_handler(&set, move |x| {
///         let s = s.clone();
///         async move {
///             for y in [2 * x, 3 * x] {
///                 if y < 100 {
///                     s.insert(y).unwrap();
///                 }
///             }
///         }
///     })
///     .unwrap();
///     set.insert(1).unwrap();
///     set.then_freeze()
/// }))
/// .unwrap();
/// assert_eq!(reached, vec![1, 2, 3, 4, 6, 8, 9, 12, 16, 18, 24, 27, 32, 36, 48, 54, 64, 72, 81, 96]);
/// ```
pub struct HandlerPool<'s> {
    /// Kept by the session: callbacks borrow it instead of counting
    /// references to it.
    state: &'s PoolState,
    session: &'s Session,
    _brand: PhantomData<fn(&'s ()) -> &'s ()>,
}

impl std::fmt::Debug for HandlerPool<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerPool").finish_non_exhaustive()
    }
}

impl Clone for HandlerPool<'_> {
    fn clone(&self) -> Self {
        Self {
            state: self.state,
            session: self.session,
            _brand: PhantomData,
        }
    }
}

/// The listener that turns each delivered element into a callback task.
struct Handler<'s, F> {
    state: &'s PoolState,
    session: &'s Session,
    callback: F,
}

/// The element a running callback task holds back (module doc, "Tail
/// elements"), with the handler that can queue it. A held element has no
/// count of its own: the holding task's count covers it.
struct Tail<'s, T, F> {
    handler: *const Handler<'s, F>,
    element: Option<T>,
}

impl<'s, F> Handler<'s, F> {
    /// Hands the element to the callback task running on this thread, if
    /// that is a task of this handler (it runs the element itself when its
    /// callback is done), or to a new task.
    fn deliver<T, Fut>(&self, value: T)
    where
        T: Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 's,
        Fut: Future<Output = ()> + Send + 's,
    {
        if let Some(worker) = WorkerThread::current() {
            let d = worker.deferred();
            // SAFETY: an installed `Deferred` is valid: its holder is being
            // polled on this thread, in a frame below this one.
            // Held back only while no worker is hungry (it would have
            // nothing to steal): the lazy publication of `join` jobs.
            if !d.is_null()
                && unsafe { (*d).key == self.key() && (*d).type_id == TypeId::of::<T>() }
                && !worker.is_hungry()
            {
                // SAFETY: this key and type are only installed by
                // `HandlerTask<T, F, _>::poll` of this handler, with `data`
                // pointing to its `Tail<'s, T, F>`, which nothing else
                // touches while its poll runs below this frame.
                let tail = unsafe { &mut *((*d).data as *mut Tail<'s, T, F>) };
                if let Some(older) = tail.element.replace(value) {
                    self.spawn::<T, Fut>(older);
                }
                return;
            }
        }
        self.spawn::<T, Fut>(value);
    }

    /// Counts a callback as started and queues `value` for it: as a small
    /// job holding just the element and its counts, which makes the task
    /// only when it runs (a traversal's frontier is thousands of queued
    /// elements: 32 bytes each instead of a 256-byte task).
    fn spawn<T, Fut>(&self, value: T)
    where
        T: Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 's,
        Fut: Future<Output = ()> + Send + 's,
    {
        self.state.start();
        let element = QueuedElement::<T, F, Fut> {
            handler: self,
            value,
            count: Finish(self.state),
            _callback: PhantomData,
        };
        // SAFETY: the session outlives its tasks and queued jobs (its
        // runner waits for them or cancels them), and listeners are only
        // called by inserts, which only happen while the session runs.
        unsafe { task::queue_detached(&self.session.group, element) };
    }

    fn key(&self) -> *const () {
        self as *const Self as *const ()
    }
}

/// An element queued for its callback: becomes a callback task when a
/// worker runs it. Carries the count in the pool a task would (its count
/// in the session is carried by the queued job).
struct QueuedElement<'s, T, F, Fut> {
    handler: *const Handler<'s, F>,
    value: T,
    count: Finish<'s>,
    _callback: PhantomData<fn() -> Fut>,
}

// SAFETY: as `HandlerTask` (the handler is used as `&Handler`, `F: Sync`).
unsafe impl<T: Send, F: Sync, Fut> Send for QueuedElement<'_, T, F, Fut> {}

impl<'s, T, F, Fut> task::QueuedJob for QueuedElement<'s, T, F, Fut>
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 's,
    Fut: Future<Output = ()> + Send + 's,
{
    fn run(self, session_count: task::DetachedCount) {
        let task = HandlerTask::<T, F, Fut> {
            current: None,
            count: Some(self.count),
            tail: UnsafeCell::new(Tail {
                handler: self.handler,
                element: Some(self.value),
            }),
        };
        // SAFETY: the handler outlives the session's tasks and queued
        // elements (see `HandlerTask::poll`); this runs on a worker of the
        // session's pool (the element was queued there), and the session
        // count passes to the task. If the session failed, the task is
        // cancelled before its first poll, like any queued task.
        unsafe {
            let group = &(*self.handler).session.group;
            task::run_counted_detached(group, task, session_count);
        }
    }
}

/// `Deferred::release` of a callback task: queues the held element as its
/// own task (counted as started now, while the holder's count is still
/// open). Runs no user code.
///
/// # Safety
/// `data` points to the `Tail<'s, T, F>` of a callback task being polled on
/// this thread.
unsafe fn release_tail<'s, T, F, Fut>(data: *mut ())
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 's,
    Fut: Future<Output = ()> + Send + 's,
{
    // SAFETY: caller contract; its handler outlives the task's polls.
    unsafe {
        let tail = &mut *(data as *mut Tail<'s, T, F>);
        if let Some(value) = tail.element.take() {
            (*tail.handler).spawn::<T, Fut>(value);
        }
    }
}

/// The task of a handler: runs the callback for its element, then, in the
/// same task, for the element it holds back, and so on.
struct HandlerTask<'s, T, F, Fut> {
    /// The callback running now (pinned: dropped in place, never moved).
    /// Declared first: dropping it may deliver elements, which are counted
    /// before `count` is closed.
    current: Option<Fut>,
    /// The task's one count in the pool: started when the task was queued,
    /// finished when it is dropped, once the task has no callback left to
    /// run (its own element's, then each held one's in turn).
    count: Option<Finish<'s>>,
    /// The next element, read and written through `Deferred::data` by
    /// `deliver` while `current` is polled.
    tail: UnsafeCell<Tail<'s, T, F>>,
}

// SAFETY: the handler pointer is used as `&Handler` (the callback is `Sync`)
// on whichever worker polls the task; the rest is `Send` by the bounds.
unsafe impl<T: Send, F: Sync, Fut: Send> Send for HandlerTask<'_, T, F, Fut> {}

impl<'s, T, F, Fut> Future for HandlerTask<'s, T, F, Fut>
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 's,
    Fut: Future<Output = ()> + Send + 's,
{
    type Output = ();

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `current` is structurally pinned (only dropped in place,
        // by `Pin::set`, or assigned while it is `None`); nothing else is.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: the handler outlives its tasks' polls: it is dropped with
        // its set (or kept by the session, for maps), after the session's
        // tasks have all ended.
        let handler = unsafe { &*this.tail.get_mut().handler };
        let worker = WorkerThread::current();
        // The same record for every callback this poll runs (`this` is
        // pinned, so the tail does not move).
        let deferred = Deferred {
            key: handler.key(),
            type_id: TypeId::of::<T>(),
            data: this.tail.get() as *mut (),
            release: release_tail::<T, F, Fut>,
        };
        loop {
            if this.current.is_none() {
                // Nothing left (or the session failed): finished, after
                // everything the callbacks queued was counted as started.
                let next = this.tail.get_mut().element.take();
                let Some(value) = next.filter(|_| !handler.session.group.is_cancelled()) else {
                    this.count = None;
                    return Poll::Ready(());
                };
                this.current = Some((handler.callback)(value));
            }
            // SAFETY: `deferred` outlives the guard, and `release_tail`
            // fits its `data` while this poll runs.
            let guard = worker.map(|w| unsafe { w.install_deferred(&deferred) });
            // SAFETY: pinned, see above.
            let polled = unsafe { Pin::new_unchecked(this.current.as_mut().expect("a callback")) }.poll(cx);
            drop(guard);
            if polled.is_pending() {
                // A parked task holds nothing back (`deferred.rs`, 3).
                // SAFETY: our own tail; the handler outlives this poll.
                unsafe { release_tail::<T, F, Fut>(this.tail.get() as *mut ()) };
                return Poll::Pending;
            }
            // SAFETY: pinned, see above.
            unsafe { Pin::new_unchecked(&mut this.current) }.set(None);
            // What it queued becomes stealable now, as it would have at the
            // end of a task of its own (not only when the chain ends).
            if let Some(w) = worker {
                w.publish_all();
            }
        }
    }
}

impl<'s, T, F, Fut> Listener<T> for Handler<'s, F>
where
    T: Clone + Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 's,
    Fut: Future<Output = ()> + Send + 's,
{
    fn on_element(&self, value: &T) {
        self.deliver::<T, Fut>(value.clone());
    }
}

/// Map handlers see keys only: a lattice value at insertion time could
/// differ between schedules, the key cannot.
impl<'s, K, V, F, Fut> EntryListener<K, V> for Handler<'s, F>
where
    K: Clone + Send + 'static,
    F: Fn(K) -> Fut + Send + Sync + 's,
    Fut: Future<Output = ()> + Send + 's,
{
    fn on_entry(&self, key: &K, _value: &V) {
        self.deliver::<K, Fut>(key.clone());
    }
}

impl<'s> HandlerPool<'s> {
    /// An empty pool.
    pub fn new<E: EffectLevel>(p: Par<'s, E>) -> Self {
        Self {
            state: p.session.keep(PoolState::new()),
            session: p.session,
            _brand: PhantomData,
        }
    }

    /// Runs `callback` as a task of this pool once for every element that
    /// is in `set` now or is inserted later, exactly once per element.
    ///
    /// Errors: `OutOfRange` if the set already has 64 handlers.
    pub fn add_handler<T, S, F, Fut>(&self, set: &ISet<'s, T, S>, callback: F) -> Result<(), Error>
    where
        S: HasGet,
        T: Hash + Eq + Clone + Send + Sync + 'static,
        F: Fn(T) -> Fut + Send + Sync + 's,
        Fut: Future<Output = ()> + Send + 's,
    {
        let handler: Arc<dyn Listener<T> + 's> = Arc::new(Handler {
            state: self.state,
            session: self.session,
            callback,
        });
        // SAFETY: only the lifetime is erased. The listener is called only by
        // inserts into a set of this session, which happen while the session
        // runs; it is dropped with the set, and every reference to a set of
        // the session is dropped before the session ends (handles are
        // branded and cannot escape, and so is a deferred freeze, which only
        // `run_par_then_freeze` accepts and runs inside the session, see
        // `run_session`).
        let handler: Arc<dyn Listener<T>> = unsafe { std::mem::transmute(handler) };
        set.raw().add_listener(handler)
    }

    /// The listener a map installs for `callback` (see `IMap::add_handler`).
    pub(crate) fn entry_listener<K, V, F, Fut>(&self, callback: F) -> Arc<dyn EntryListener<K, V>>
    where
        K: Clone + Send + 'static,
        V: 'static,
        F: Fn(K) -> Fut + Send + Sync + 's,
        Fut: Future<Output = ()> + Send + 's,
    {
        let handler: Arc<dyn EntryListener<K, V> + 's> = Arc::new(Handler {
            state: self.state,
            session: self.session,
            callback,
        });
        // SAFETY: only the lifetime is erased; see `add_handler` (maps of a
        // session follow the same rules as its sets).
        let handler: Arc<dyn EntryListener<K, V>> = unsafe { std::mem::transmute(handler) };
        // A map is reference-counted, not kept by the session, so its last
        // handle may go while callback tasks are queued; they use the
        // handler, so the session keeps it too (found by review: a
        // use-after-free).
        self.session
            .keep_structure(KeptHandler(Some(Box::new(Arc::clone(&handler)))));
        handler
    }

    /// Resolves when every callback of the pool has finished and none is
    /// waiting to start (or this has been so at some moment while the
    /// future was waiting).
    pub fn quiesce(&self) -> impl Future<Output = ()> + Send + '_ {
        self.state.quiesce()
    }
}

/// A handler kept by the session until it ends, dropped with the other
/// user callbacks before any structure.
struct KeptHandler(Option<Box<dyn Send + Sync>>);

impl SessionStructure for KeptHandler {
    fn take_callbacks(&mut self) -> Vec<Box<dyn Send + Sync>> {
        self.0.take().into_iter().collect()
    }
}

/// Handlers, quiescence, then freeze (LVish's `freezeSetAfter`): runs
/// `callback` for every element of `set`, waits until the pool is quiescent,
/// and returns the frozen set, sorted. Quasi-deterministic: inserts by
/// tasks outside the pool that are still running may come after the freeze
/// and then fail with `PutAfterFreeze`.
pub async fn freeze_set_after<'s, Q, S, T, F, Fut>(
    p: Par<'s, Q>,
    set: &ISet<'s, T, S>,
    callback: F,
) -> Result<Vec<T>, Error>
where
    Q: HasFreeze,
    S: HasGet,
    T: Hash + Eq + Ord + Clone + Send + Sync + 'static,
    F: Fn(T) -> Fut + Send + Sync + 's,
    Fut: Future<Output = ()> + Send + 's,
{
    let pool = HandlerPool::new(p);
    pool.add_handler(set, callback)?;
    pool.quiesce().await;
    Ok(set.freeze(&p))
}
