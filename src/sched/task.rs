//! Parkable tasks: one heap allocation per task holding a header (state
//! word, reference count, completion count) and the future, recycled
//! through the worker's task cache (`task_cache.rs`). Also plain queued
//! jobs owning a value in a block of the same cache (`queue_detached`), which a
//! handler's pending element is until a worker makes its task
//! (`run_counted_detached`).
//!
//! # State word
//!
//! | bit          | meaning                                                        |
//! |--------------|----------------------------------------------------------------|
//! | `SCHEDULED`  | a `JobRef` for the task is in some queue; whoever claims it polls |
//! | `RUNNING`    | one thread is polling (or cancelling) the future               |
//! | `NOTIFIED`   | woken while running: re-queue after this poll                  |
//! | `COMPLETE`   | the future is gone; the output (if any) is in the stage        |
//! | `JOIN_WAKER` | the join waker slot is written and owned by the task side      |
//! | `JOIN_INTEREST` | the `JoinHandle` still exists (it will take the output)     |
//! | `POLLED`     | claimed at least once (so wakers may exist)                    |
//!
//! **Invariants.** (1) Only the thread that set `RUNNING` (by claiming a
//! `SCHEDULED` task or an idle one) touches the future, so each wake-up
//! leads to at most one poll at a time and a parked task is polled again
//! only after a wake-up. (2) A wake of an idle task sets `SCHEDULED` and
//! pushes exactly one `JobRef`; a wake while `SCHEDULED`, `NOTIFIED` or
//! `COMPLETE` does nothing; a wake while `RUNNING` sets `NOTIFIED`, and the
//! poller re-queues instead of parking, so no wake-up is lost. (3) The join
//! waker slot follows tokio's protocol: the `JoinHandle` writes it only while
//! `JOIN_WAKER` and `COMPLETE` are both clear; completion sets `COMPLETE` and
//! reads the slot only if `JOIN_WAKER` was set. (4) The output is dropped
//! by exactly one side, as soon as nobody can want it: by the task at
//! completion if `JOIN_INTEREST` was already clear, otherwise by the handle
//! (when taken, or when the handle is dropped after `COMPLETE`). So an
//! unawaited task's output is gone before its session can end.
//!
//! # Reference counts
//!
//! A task is created with three references: the `JoinHandle`, the "subtree
//! pending" reference (released when the task and all its children are
//! done, see `group.rs`) and the queued `JobRef`; a detached task
//! (`spawn_detached`, no handle, no `JOIN_INTEREST`) with the last two.
//! Each clone of a waker, each queued `JobRef` and the parked registry
//! hold one more.
//!
//! # Counting children
//!
//! Only attached tasks (forks made while a task of the same group is being
//! polled on the forking thread) are counted in the task they were forked
//! from. Every other task's `parent` is the `DETACHED` sentinel and its
//! finished subtree is counted by the group (`detached.rs`): a detached
//! task (`spawn_detached`: a handler callback spawned by another callback
//! must not keep that one allocated until it finishes too, or a traversal
//! would hold most of its tasks until the end), and a fork made outside
//! any task of its group (the owner's set-up, a `join` closure stolen by an
//! idle worker, a scoped thread). The group itself then only records its
//! owner's set-up hold, released once: such a fork can happen after that,
//! from a detached task still running (found by review: counted in a
//! group-wide count that had reached zero, it made the owner read "done",
//! then "not done", and report a deadlock).
//!
//! A task's subtree is finished when its future and every child's subtree
//! are. Forks and the common "fork, then await the child right here" would
//! cost two atomic read-modify-writes on the parent if counted in one
//! atomic. Instead the count is split: the thread polling the parent (which
//! holds `RUNNING`, so nobody else can) counts forks and children finished
//! *while it polls the parent* in a plain field; children finishing
//! elsewhere decrement an atomic, which therefore only goes below zero
//! (wrapping) until the parent completes and adds its plain count minus its
//! own unit. Before that fold the atomic can never read zero after a
//! decrement, so exactly the last decrement after the fold (or the fold
//! itself) sees zero and finishes the subtree.
//!
//! # Running children inline
//!
//! Awaiting a `JoinHandle` whose task is still `SCHEDULED` (nobody started
//! it) claims it and polls it right there, like `join` pops its job back:
//! the common fork-then-await costs one poll on the same stack and no
//! context switch. The stale `JobRef` left in the queue finds the task not
//! `SCHEDULED` and only drops its reference.
//!
//! Before that poll, if a worker is hungry, the awaiting worker releases
//! the handler element it holds in place (if any) and publishes its oldest
//! private job other than the child's, as `push_private` does at a fork:
//! the child may be a long leaf that pushes nothing, and without this a
//! task that forked N leaves and awaited them in order ran every leaf
//! itself while the other workers idled (the unit test below). Only
//! the first leaf still runs alone when nobody was hungry yet. (Parking
//! instead of claiming a job that was published, so that a thief gets it,
//! made fine-grained fork trees up to 8x slower at two workers, since a
//! claim is far cheaper than a park and a wake-up; and it left a fork
//! awaited from another pool or a foreign thread to a pool whose worker
//! was waiting for that very await: `tests/fork_inline.rs`.)
//!
//! When the popped task's first poll finishes the future, the handle
//! usually holds every reference there is: no waker was kept, every child
//! finished inline. `is_exclusive` checks exactly that, and the task is
//! then freed with no read-modify-write at all (`free_exclusive`): the async
//! analogue of an unstolen `join`.

use std::alloc::Layout;
use std::cell::UnsafeCell;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering::*};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::group::{TaskGroup, NOT_PARKED};
use super::job::JobRef;
use super::registry::WorkerThread;
use super::task_cache;

const SCHEDULED: usize = 1;
const RUNNING: usize = 2;
const NOTIFIED: usize = 4;
const COMPLETE: usize = 8;
const JOIN_WAKER: usize = 16;
const JOIN_INTEREST: usize = 32;
/// Set by the first claim: a task without it has never been polled, so no
/// waker for it exists and its first `JobRef` is the only way to run it.
const POLLED: usize = 64;

/// `Header::parent` of a task not counted in a parent (a detached task, or
/// a fork made outside any task of its group): its finished subtree is
/// counted in the group's detached stripes (`detached.rs`) instead, and the
/// task that spawned it may be freed before it. Never dereferenced.
const DETACHED: *const Header = NonNull::<Header>::dangling().as_ptr();

/// The type-independent part of a task, at the start of every allocation.
pub(crate) struct Header {
    state: AtomicUsize,
    refs: AtomicUsize,
    /// Completion count, in two parts (see "Counting children" above).
    /// `local_pending`: 1 for the task's own future plus 1 per child forked,
    /// minus 1 per child whose subtree finished on the thread that was
    /// polling this task at that moment. Only the thread holding `RUNNING`
    /// touches it.
    local_pending: UnsafeCell<usize>,
    /// Minus the children whose subtree finished anywhere else (wrapping),
    /// until completion folds `local_pending - 1` into it; the subtree is
    /// done when the folded count reaches zero.
    pending: AtomicUsize,
    /// The task this one was forked from, or [`DETACHED`] (counted by the
    /// group, not a parent: see "Counting children").
    parent: *const Header,
    /// For a `DETACHED` task: the stripe of the group's count it was
    /// started on, which its finish decrements (`detached.rs`).
    detached_stripe: u32,
    pub(crate) group: *const TaskGroup,
    /// Index in the group's parked registry, or `NOT_PARKED`. Written only
    /// under that registry's lock.
    pub(crate) park_slot: AtomicUsize,
    vtable: &'static Vtable,
    join_waker: UnsafeCell<Option<Waker>>,
}

struct Vtable {
    /// Polls the future once; on `Ready` stores the output in the stage.
    poll: unsafe fn(*const Header, &mut Context<'_>) -> Poll<()>,
    /// Drops the future in place (cancellation or after a panic).
    drop_future: unsafe fn(*const Header),
    /// Moves the output into `*dst` (an `Option<T>`), if there is one.
    take_output: unsafe fn(*const Header, *mut ()),
    /// Drops the output in place, if there is one.
    drop_output: unsafe fn(*const Header),
    dealloc: unsafe fn(*const Header),
}

enum Stage<F: Future> {
    Running(F),
    Finished(F::Output),
    /// Output taken, or the future was dropped without an output.
    Gone,
}

#[repr(C)]
struct Task<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F>>,
}

/// Spawns `future` as a task of `group`, queued on the current worker (or
/// the injector). The caller guarantees the group outlives the task's
/// completion (sessions wait for their tasks).
///
/// # Safety
/// `future` may borrow data that lives as long as the group's owner waits;
/// the caller must not let the group end before the task completes.
pub(crate) unsafe fn spawn<F>(group: &TaskGroup, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    // SAFETY: forwarded.
    let header = unsafe { spawn_task(group, future, true) };
    JoinHandle {
        header,
        extra_ref: false,
        taken: false,
        _marker: PhantomData,
    }
}

/// [`spawn`] without a `JoinHandle`: nobody awaits the task and its output
/// is dropped when it completes. Saves the handle's reference and its two
/// read-modify-writes on drop (for handler callbacks, one task per element).
///
/// # Safety
/// As [`spawn`].
pub(crate) unsafe fn spawn_detached<F>(group: &TaskGroup, future: F)
where
    F: Future + Send,
    F::Output: Send,
{
    // SAFETY: forwarded.
    unsafe { spawn_task(group, future, false) };
}

/// Allocates, links and queues the task; with `handle`, the task starts
/// with the `JoinHandle`'s reference and `JOIN_INTEREST`.
///
/// # Safety
/// As [`spawn`].
#[inline(always)]
unsafe fn spawn_task<F>(group: &TaskGroup, future: F, handle: bool) -> *const Header
where
    F: Future + Send,
    F::Output: Send,
{
    let worker = pool_worker(group);
    // A fork made outside any task of its group (the owner's set-up, a
    // `join` closure stolen by an idle worker, a scoped thread) is counted
    // like a detached task: the owner may have released its hold already
    // (a detached task may be what is running that code; see "Counting
    // children" above).
    let parent = if handle {
        worker
            .map(|w| w.current_task() as *const Header)
            // SAFETY: the current task is being polled on this thread.
            .filter(|t| !t.is_null() && unsafe { std::ptr::eq((**t).group, group) })
            .unwrap_or(DETACHED)
    } else {
        DETACHED
    };
    let detached_stripe = if parent == DETACHED {
        group.add_detached()
    } else {
        // SAFETY: the parent is being polled on this thread, which holds
        // its RUNNING bit and so owns `local_pending`.
        unsafe { *(*parent).local_pending.get() += 1 };
        0
    };
    let slot = alloc_block::<Task<F>>(worker);
    // Written in place: building the task on the stack and moving it into
    // its block costs a copy of the whole future (a `memmove` call) per fork
    // (and so does passing the future to a helper that writes it: about 7%
    // of a fork, although the instruction count hardly changes).
    // SAFETY: `slot` is a valid, aligned, uninitialised `Task<F>` block;
    // both fields are written before it is used.
    unsafe {
        write_header(slot, group, handle, parent, detached_stripe);
        std::ptr::addr_of_mut!((*slot).stage).write(UnsafeCell::new(Stage::Running(future)));
    }
    let header = slot as *const Header;
    // SAFETY: the task holds a reference for this JobRef.
    let job = unsafe { job_ref(header) };
    queue(worker, group, job);
    header
}

/// Runs `future` now, on this worker, as a detached task of `group` that
/// is already counted (`count`, handed to a [`queue_detached`] job's
/// `run`): the task is made and executed as if it had been queued and
/// popped at once, so it finishes (or parks) like any other.
///
/// # Safety
/// As [`spawn_detached`]; the caller runs on a worker of `group`'s pool,
/// and `count` was taken in `group`.
pub(crate) unsafe fn run_counted_detached<F>(group: &TaskGroup, future: F, count: DetachedCount)
where
    F: Future + Send,
    F::Output: Send,
{
    let worker = pool_worker(group);
    debug_assert!(worker.is_some(), "run_counted_detached off its pool");
    let slot = alloc_block::<Task<F>>(worker);
    // SAFETY: as in `spawn_task`; the count was taken by the caller.
    unsafe {
        write_header(slot, group, false, DETACHED, count.stripe);
        std::ptr::addr_of_mut!((*slot).stage).write(UnsafeCell::new(Stage::Running(future)));
        // The JobRef's reference, consumed here as a popped job's is.
        run_job(slot as *const ());
    }
}

/// Writes the header of a new task (`SCHEDULED`, with a reference for its
/// JobRef and the "subtree pending" one, plus the handle's if `handle`).
///
/// # Safety
/// `slot` is a valid, aligned, uninitialised `Task<F>` block; `parent` and
/// `detached_stripe` are how the task was counted in `group`.
#[inline(always)]
unsafe fn write_header<F>(
    slot: *mut Task<F>,
    group: &TaskGroup,
    handle: bool,
    parent: *const Header,
    detached_stripe: u32,
) where
    F: Future + Send,
    F::Output: Send,
{
    // SAFETY: caller contract.
    unsafe {
        std::ptr::addr_of_mut!((*slot).header).write(Header {
            state: AtomicUsize::new(if handle { SCHEDULED | JOIN_INTEREST } else { SCHEDULED }),
            refs: AtomicUsize::new(if handle { 3 } else { 2 }),
            local_pending: UnsafeCell::new(1),
            pending: AtomicUsize::new(0),
            parent,
            detached_stripe,
            group,
            park_slot: AtomicUsize::new(NOT_PARKED),
            vtable: &Vtable {
                poll: poll_future::<F>,
                drop_future: drop_future::<F>,
                take_output: take_output::<F>,
                drop_output: drop_output::<F>,
                dealloc: dealloc::<F>,
            },
            join_waker: UnsafeCell::new(None),
        });
    }
}

/// A detached task's count in its group, taken by [`queue_detached`]
/// before the job was queued and handed to its `run`, which passes it on
/// to [`run_counted_detached`] (the task finishes it).
pub(crate) struct DetachedCount {
    stripe: u32,
}

/// Work that a [`queue_detached`] job runs once, on a worker.
pub(crate) trait QueuedJob: Send {
    /// Runs the job; `count` is its count in the group, to be handed to
    /// the task it makes. Must not unwind (it may run inside `join`'s wait
    /// for a stolen closure, whose frame must not be left early).
    fn run(self, count: DetachedCount);
}

/// A queued job's value and its count in the group.
struct Queued<X> {
    value: X,
    count: DetachedCount,
}

/// Queues `value` to be run (`QueuedJob::run`) by a worker of `group`'s
/// pool, counted in the group like a detached task from now on: a plain
/// job, a block from the worker's task cache holding the value and its
/// count, no task header (a handler's queued element).
///
/// # Safety
/// As [`spawn_detached`]: `value` may borrow data that lives as long as
/// the group's owner waits.
pub(crate) unsafe fn queue_detached<X: QueuedJob>(group: &TaskGroup, value: X) {
    let count = DetachedCount {
        stripe: group.add_detached(),
    };
    let worker = pool_worker(group);
    let block = alloc_block::<Queued<X>>(worker);
    // SAFETY: a valid, aligned, uninitialised block for a `Queued<X>`; the
    // JobRef is its only reference and runs once (`run_queued_job` frees
    // it).
    let job = unsafe {
        block.write(Queued { value, count });
        JobRef::new(block as *const (), run_queued_job::<X>)
    };
    queue(worker, group, job);
}

/// Executes a [`queue_detached`] job: takes the value out, frees its block,
/// runs it.
unsafe fn run_queued_job<X: QueuedJob>(ptr: *const ()) {
    // SAFETY: written by `queue_detached`, read once here (the JobRef runs
    // once).
    let Queued { value, count } = unsafe { std::ptr::read(ptr as *const Queued<X>) };
    // SAFETY: allocated by `alloc_block::<Queued<X>>`; its value was moved
    // out.
    unsafe { free_block::<Queued<X>>(NonNull::new_unchecked(ptr as *mut u8)) };
    value.run(count);
}

/// The current worker, if it belongs to `group`'s pool.
#[inline]
fn pool_worker(group: &TaskGroup) -> Option<&WorkerThread> {
    WorkerThread::current().filter(|w| std::ptr::eq(w.registry(), &**group.registry()))
}

/// Queues `job` on `worker` (from [`pool_worker`]), or, off the pool, on
/// the pool's injector.
#[inline]
fn queue(worker: Option<&WorkerThread>, group: &TaskGroup, job: JobRef) {
    match worker {
        Some(w) => w.push_private(job),
        None => group.registry().push(job),
    }
}

/// # Safety
/// The caller transfers one reference to the returned JobRef.
unsafe fn job_ref(header: *const Header) -> JobRef {
    // SAFETY: the reference keeps the header alive until `run_job` runs.
    unsafe { JobRef::new(header as *const (), run_job) }
}

/// # Safety
/// `h` must be alive (the caller holds a reference).
pub(crate) unsafe fn acquire(h: *const Header) {
    // SAFETY: caller contract.
    unsafe { (*h).refs.fetch_add(1, Relaxed) };
}

/// Drops one reference, freeing the task with the last one.
///
/// # Safety
/// The caller gives up one reference it owns.
pub(crate) unsafe fn release(h: *const Header) {
    // SAFETY: forwarded.
    unsafe { release_n(h, 1) }
}

/// Drops `n` references at once.
///
/// # Safety
/// The caller gives up `n` references it owns.
unsafe fn release_n(h: *const Header, n: usize) {
    // SAFETY: caller owns a reference, so `h` is alive here.
    if unsafe { (*h).refs.fetch_sub(n, Release) } == n {
        fence(Acquire);
        // SAFETY: that was the last reference.
        unsafe { ((*h).vtable.dealloc)(h) };
    }
}

/// Executes a queued task: claims it if it is still `SCHEDULED`.
unsafe fn run_job(ptr: *const ()) {
    let h = ptr as *const Header;
    // SAFETY: the JobRef owns a reference.
    if unsafe { try_claim(h) } {
        // SAFETY: we hold RUNNING and the JobRef's reference.
        if let Some(result) = unsafe { poll_step(h) } {
            // SAFETY: still RUNNING, with the JobRef's reference.
            if matches!(result, Ok(Poll::Ready(()))) && unsafe { is_exclusive_detached(h) } {
                // Holds no payload: nothing to drop.
                std::mem::forget(result);
                // SAFETY: exclusive: nobody can take the output, and the
                // JobRef's reference goes with the task.
                return unsafe {
                    drop_unwanted_output(h);
                    free_exclusive(h)
                };
            }
            // SAFETY: still RUNNING.
            unsafe { after_poll(h, result) };
        }
    }
    // SAFETY: the JobRef's reference.
    unsafe { release(h) };
}

/// Claims a `SCHEDULED` task for polling.
unsafe fn try_claim(h: *const Header) -> bool {
    // SAFETY: caller holds a reference.
    let state = unsafe { &(*h).state };
    let mut s = state.load(Acquire);
    loop {
        if s & (SCHEDULED | RUNNING | COMPLETE) != SCHEDULED {
            return false;
        }
        match state.compare_exchange_weak(s, (s & !SCHEDULED) | RUNNING | POLLED, Acquire, Acquire) {
            Ok(_) => return true,
            Err(actual) => s = actual,
        }
    }
}

/// Cancels a parked (idle) task, if it still is one.
///
/// # Safety
/// The caller holds a reference.
pub(crate) unsafe fn cancel_if_idle(h: *const Header) {
    // SAFETY: caller holds a reference.
    let state = unsafe { &(*h).state };
    let mut s = state.load(Acquire);
    loop {
        if s & (SCHEDULED | RUNNING | COMPLETE) != 0 {
            return;
        }
        match state.compare_exchange_weak(s, s | RUNNING | POLLED, Acquire, Acquire) {
            // SAFETY: we hold RUNNING.
            Ok(_) => return unsafe { cancel_claimed(h) },
            Err(actual) => s = actual,
        }
    }
}

/// Polls a task whose `RUNNING` bit the caller set.
unsafe fn poll_claimed(h: *const Header) {
    // SAFETY: forwarded: the caller holds RUNNING and a reference.
    if let Some(result) = unsafe { poll_step(h) } {
        // SAFETY: still RUNNING.
        unsafe { after_poll(h, result) }
    }
}

type PollResult = std::thread::Result<Poll<()>>;

/// Polls the future of a task whose `RUNNING` bit the caller holds, with
/// the task as the worker's current task. `None`: the group was cancelled
/// and the task was cancelled instead (it is complete).
///
/// # Safety
/// The caller holds `RUNNING` and a reference.
#[inline]
unsafe fn poll_step(h: *const Header) -> Option<PollResult> {
    // SAFETY: the caller holds RUNNING and a reference; the group outlives
    // every unfinished task.
    let header = unsafe { &*h };
    let group = unsafe { &*header.group };
    if group.is_cancelled() {
        // SAFETY: we hold RUNNING.
        unsafe { cancel_claimed(h) };
        return None;
    }
    // A borrowed waker: no reference is taken unless the future clones it.
    // SAFETY: the vtable's functions uphold the RawWaker contract.
    let waker = ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(h as *const (), &WAKER_VTABLE)) });
    let mut cx = Context::from_waker(&waker);
    let worker = WorkerThread::current();
    let prev = worker.map(|w| w.set_current_task(h as *const ()));
    // SAFETY: we hold RUNNING, so we have exclusive access to the future.
    let result = panic::catch_unwind(AssertUnwindSafe(|| unsafe { (header.vtable.poll)(h, &mut cx) }));
    if let (Some(w), Some(p)) = (worker, prev) {
        w.set_current_task(p);
    }
    Some(result)
}

/// What follows a poll: completion, a recorded panic, or parking.
///
/// # Safety
/// The caller holds `RUNNING` and a reference.
unsafe fn after_poll(h: *const Header, result: PollResult) {
    // SAFETY: the caller holds RUNNING and a reference.
    let header = unsafe { &*h };
    let group = unsafe { &*header.group };
    match result {
        // SAFETY: still RUNNING: the future finished, complete the task.
        Ok(Poll::Ready(())) => unsafe { complete(h) },
        Err(payload) => {
            group.record_panic(payload);
            // SAFETY: still RUNNING.
            unsafe { cancel_claimed(h) }
        }
        Ok(Poll::Pending) => {
            if header.park_slot.load(Relaxed) == NOT_PARKED {
                group.register_parked(h);
            }
            let mut s = header.state.load(Acquire);
            loop {
                if s & NOTIFIED != 0 {
                    let next = (s & !(RUNNING | NOTIFIED)) | SCHEDULED;
                    match header.state.compare_exchange_weak(s, next, AcqRel, Acquire) {
                        Ok(_) => {
                            // SAFETY: the new JobRef gets its own reference.
                            unsafe {
                                acquire(h);
                                group.registry().push(job_ref(h));
                            }
                            return;
                        }
                        Err(actual) => s = actual,
                    }
                } else if group.is_cancelled() {
                    // SAFETY: still RUNNING.
                    return unsafe { cancel_claimed(h) };
                } else {
                    match header.state.compare_exchange_weak(s, s & !RUNNING, AcqRel, Acquire) {
                        Ok(_) => return,
                        Err(actual) => s = actual,
                    }
                }
            }
        }
    }
}

/// Whether the caller, holding `RUNNING` on a task whose future has just
/// finished, is its only user: no waker clone, no queued `JobRef` and no
/// registry entry holds a reference (the three left are the handle's, the
/// popped `JobRef`'s and the "subtree pending" one), and every child
/// finished while it was polled (nothing is left in the atomic count).
/// Wakers release with `Release`, so the `Acquire` load sees their last use.
///
/// # Safety
/// The caller holds `RUNNING` and the handle's and first `JobRef`'s
/// references, and the task was never parked (first poll).
#[inline]
unsafe fn is_exclusive(h: *const Header) -> bool {
    // SAFETY: forwarded.
    unsafe { holds_only(h, 3) }
}

/// The check behind [`is_exclusive`] and [`is_exclusive_detached`]: the
/// task's references are exactly the caller's `refs`, and every child
/// finished while it was polled (nothing is left in the atomic count).
///
/// # Safety
/// The caller holds `RUNNING` and a reference.
#[inline]
unsafe fn holds_only(h: *const Header, refs: usize) -> bool {
    // SAFETY: caller contract: alive, and `local_pending` is ours.
    unsafe { (*h).refs.load(Acquire) == refs && *(*h).local_pending.get() == 1 }
}

/// Frees a completed task that `is_exclusive` or `is_exclusive_detached`
/// found to have no other user, and takes its finished subtree off its
/// parent (or the group). This is `complete` + `subtree_done` + the
/// releases, with plain accesses: nobody else can observe the state word
/// or the counts any more.
///
/// # Safety
/// `is_exclusive(h)` or `is_exclusive_detached(h)` held, and the output
/// was taken or dropped.
#[inline]
unsafe fn free_exclusive(h: *const Header) {
    // SAFETY: exclusive, alive until the dealloc below.
    let (parent, group, stripe) = unsafe { ((*h).parent, (*h).group, (*h).detached_stripe) };
    // SAFETY: every reference is ours, so this is the last use.
    unsafe { ((*h).vtable.dealloc)(h) };
    if parent == DETACHED {
        // SAFETY: the group outlives its unfinished detached subtrees.
        unsafe { (*group).finish_detached(stripe) };
    } else {
        // SAFETY: a parent with an unfinished child is alive.
        unsafe { finish_subtree(parent) };
    }
}

/// Whether the caller, holding `RUNNING` on a detached task whose future
/// has just finished, is its only user: the two references left are the
/// "subtree pending" one and the caller's `JobRef` (no waker clone, no other
/// queued `JobRef`, no registry entry: each holds one more), and every
/// child finished while it was polled. The handler-callback analogue of
/// [`is_exclusive`]: a callback that inserts and returns never parks.
///
/// # Safety
/// The caller holds `RUNNING` and a `JobRef`'s reference.
#[inline]
unsafe fn is_exclusive_detached(h: *const Header) -> bool {
    // SAFETY: forwarded.
    unsafe { (*h).parent == DETACHED && holds_only(h, 2) }
}

/// Drops the output of a completed task whose output nobody will take,
/// recording a panic of its destructor in the group (the stage is `Gone`
/// afterwards either way).
///
/// # Safety
/// The caller owns the output (invariant 4) and the task is alive.
unsafe fn drop_unwanted_output(h: *const Header) {
    // SAFETY: caller contract.
    let dropped = panic::catch_unwind(AssertUnwindSafe(|| unsafe { ((*h).vtable.drop_output)(h) }));
    if let Err(payload) = dropped {
        // SAFETY: the group outlives its unfinished tasks.
        unsafe { (*(*h).group).record_panic(payload) };
    }
}

/// Drops the future of a task the caller holds `RUNNING` on, and completes it.
unsafe fn cancel_claimed(h: *const Header) {
    // SAFETY: we hold RUNNING; a panic in a destructor is recorded, not
    // propagated into the worker.
    let dropped = panic::catch_unwind(AssertUnwindSafe(|| unsafe { ((*h).vtable.drop_future)(h) }));
    if let Err(payload) = dropped {
        // SAFETY: the group outlives its unfinished tasks.
        unsafe { (*(*h).group).record_panic(payload) };
    }
    // SAFETY: still RUNNING.
    unsafe { complete(h) };
}

/// Marks a task complete, wakes its joiner and finishes its subtree count.
unsafe fn complete(h: *const Header) {
    // SAFETY: we hold RUNNING and a reference.
    let header = unsafe { &*h };
    if header.park_slot.load(Relaxed) != NOT_PARKED {
        // SAFETY: the group outlives its unfinished tasks.
        unsafe { (*header.group).deregister_parked(h) };
    }
    // RUNNING is set and COMPLETE clear, so xor clears one and sets the other.
    let prev = header.state.fetch_xor(RUNNING | COMPLETE, AcqRel);
    debug_assert!(prev & RUNNING != 0 && prev & COMPLETE == 0);
    if prev & JOIN_INTEREST == 0 {
        // Invariant 4: the handle is gone, nobody will take the output.
        // SAFETY: the handle no longer touches the stage; we still own it.
        unsafe { drop_unwanted_output(h) };
    } else if prev & JOIN_WAKER != 0 {
        // SAFETY: invariant 3: the handle no longer writes the slot.
        if let Some(w) = unsafe { &*header.join_waker.get() } {
            w.wake_by_ref();
        }
    }
    // Fold the plain count, minus the task's own unit, into the atomic one.
    // SAFETY: we hold RUNNING, so `local_pending` is ours.
    let others = unsafe { *header.local_pending.get() } - 1;
    if others == 0 {
        // Every child finished while we were polling this task: the atomic
        // part was never touched and nobody can touch it any more.
        // SAFETY: the subtree is complete.
        unsafe { subtree_done(h) };
    } else if header.pending.fetch_add(others, AcqRel).wrapping_add(others) == 0 {
        // SAFETY: the fold brought the count to zero: the subtree is complete.
        unsafe { subtree_done(h) };
    }
}

/// The subtree of `h` has finished: drop its "subtree pending" reference
/// and take one unit off its parent (or the group).
unsafe fn subtree_done(h: *const Header) {
    // SAFETY: alive until the release below.
    let (parent, group, stripe) = unsafe { ((*h).parent, (*h).group, (*h).detached_stripe) };
    // SAFETY: the "subtree pending" reference.
    unsafe { release(h) };
    if parent == DETACHED {
        // SAFETY: the group outlives its unfinished detached subtrees.
        unsafe { (*group).finish_detached(stripe) };
    } else {
        // SAFETY: a parent with an unfinished child is alive.
        unsafe { finish_subtree(parent) };
    }
}

/// A child subtree of `h` finished: take its unit off `h`'s count and
/// propagate finished subtrees up to the group.
#[inline]
unsafe fn finish_subtree(h: *const Header) {
    let polling_parent = WorkerThread::current().is_some_and(|w| w.current_task() == h as *const ());
    if polling_parent {
        // SAFETY: `h` is being polled on this thread (it holds RUNNING), so
        // its plain count is ours; it is not complete, so no fold happened.
        unsafe { *(*h).local_pending.get() -= 1 };
        return;
    }
    // SAFETY: a task is alive while its subtree is unfinished (it holds the
    // "subtree pending" reference).
    if unsafe { (*h).pending.fetch_sub(1, AcqRel) } == 1 {
        // SAFETY: that was the last unit after the fold.
        unsafe { subtree_done(h) };
    }
}

/// Wakes a task: see invariant 2.
unsafe fn schedule(h: *const Header) {
    // SAFETY: the waker holds a reference.
    let header = unsafe { &*h };
    let mut s = header.state.load(Acquire);
    loop {
        if s & (COMPLETE | SCHEDULED | NOTIFIED) != 0 {
            return;
        }
        let next = if s & RUNNING != 0 { s | NOTIFIED } else { s | SCHEDULED };
        match header.state.compare_exchange_weak(s, next, AcqRel, Acquire) {
            Ok(_) => break,
            Err(actual) => s = actual,
        }
    }
    if s & RUNNING == 0 {
        // SAFETY: the JobRef gets its own reference; an unfinished task's
        // group (and so its registry) is alive.
        unsafe {
            acquire(h);
            (*header.group).registry().push(job_ref(h));
        }
    }
}

static WAKER_VTABLE: RawWakerVTable = RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

unsafe fn waker_clone(p: *const ()) -> RawWaker {
    // SAFETY: a waker holds (or borrows from a holder of) a reference.
    unsafe { acquire(p as *const Header) };
    RawWaker::new(p, &WAKER_VTABLE)
}

unsafe fn waker_wake(p: *const ()) {
    // SAFETY: consumes the waker's reference after scheduling.
    unsafe {
        schedule(p as *const Header);
        release(p as *const Header);
    }
}

unsafe fn waker_wake_by_ref(p: *const ()) {
    // SAFETY: the waker's reference keeps the task alive.
    unsafe { schedule(p as *const Header) }
}

unsafe fn waker_drop(p: *const ()) {
    // SAFETY: the waker's own reference.
    unsafe { release(p as *const Header) }
}

unsafe fn poll_future<F: Future>(h: *const Header, cx: &mut Context<'_>) -> Poll<()> {
    // SAFETY: the caller holds RUNNING: exclusive access to the stage.
    let stage = unsafe { &mut *(*(h as *const Task<F>)).stage.get() };
    let output = match stage {
        // SAFETY: the future lives in the heap allocation and never moves.
        Stage::Running(f) => match unsafe { Pin::new_unchecked(f) }.poll(cx) {
            Poll::Ready(v) => v,
            Poll::Pending => return Poll::Pending,
        },
        _ => unreachable!("polled a finished task"),
    };
    *stage = Stage::Finished(output);
    Poll::Ready(())
}

unsafe fn drop_future<F: Future>(h: *const Header) {
    // SAFETY: the caller holds RUNNING: exclusive access to the stage.
    let stage = unsafe { &mut *(*(h as *const Task<F>)).stage.get() };
    if let Stage::Running(_) = stage {
        *stage = Stage::Gone;
    }
}

unsafe fn take_output<F: Future>(h: *const Header, dst: *mut ()) {
    // SAFETY: called by the JoinHandle after observing COMPLETE (Acquire):
    // the task side no longer touches the stage.
    let stage = unsafe { &mut *(*(h as *const Task<F>)).stage.get() };
    if let Stage::Finished(v) = stage {
        // Only the output is read (not the whole stage, which is as large
        // as the future), and `Gone` overwrites the stage without dropping.
        // SAFETY: the output is moved out exactly once: the stage is set to
        // `Gone` right after, without running a destructor on it. `dst`
        // points to an `Option<F::Output>` (JoinHandle<T> is only created
        // with T = F::Output).
        unsafe {
            let v = std::ptr::read(v);
            std::ptr::write(stage, Stage::Gone);
            *(dst as *mut Option<F::Output>) = Some(v);
        }
    }
}

unsafe fn drop_output<F: Future>(h: *const Header) {
    // SAFETY: called by the one side that owns the output (invariant 4).
    let stage = unsafe { &mut *(*(h as *const Task<F>)).stage.get() };
    if let Stage::Finished(_) = stage {
        *stage = Stage::Gone;
    }
}

/// The size class of an `X` block in the task cache, if it is cached.
const fn block_class<X>() -> Option<usize> {
    task_cache::class_of(Layout::new::<X>())
}

/// An uninitialised block for an `X` (a task, or a queued job's value):
/// from the current worker's task cache when the size is cached, else from
/// the allocator.
#[inline]
fn alloc_block<X>(worker: Option<&WorkerThread>) -> *mut X {
    match const { block_class::<X>() } {
        Some(class) => match worker {
            Some(w) => w.alloc_task_block(class),
            None => task_cache::alloc_block(class),
        }
        .cast()
        .as_ptr(),
        None => {
            let layout = Layout::new::<X>();
            // SAFETY: never zero-sized (a task has a header, a queued job
            // holds an element and its counts).
            let p = unsafe { std::alloc::alloc(layout) };
            if p.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            p.cast()
        }
    }
}

/// Returns a block of `alloc_block::<X>` whose contents are gone.
///
/// # Safety
/// `block` was allocated by `alloc_block::<X>`, and nobody uses it any more.
#[inline]
unsafe fn free_block<X>(block: NonNull<u8>) {
    match const { block_class::<X>() } {
        Some(class) => match WorkerThread::current() {
            // SAFETY: a block of `class`, unused.
            Some(w) => unsafe { w.free_task_block(class, block) },
            // SAFETY: as above.
            None => unsafe { task_cache::free_block(class, block) },
        },
        // SAFETY: allocated by `alloc_block` with this layout.
        None => unsafe { std::alloc::dealloc(block.as_ptr(), Layout::new::<X>()) },
    }
}

unsafe fn dealloc<F: Future>(h: *const Header) {
    let task = h as *mut Task<F>;
    // The contents first: dropping them runs user code (which may free
    // other tasks); the block goes back only afterwards. A stage whose
    // output was taken (the common end) holds nothing: skip its destructor,
    // which would otherwise look through every state of the future.
    // SAFETY: last reference: nobody else can reach the allocation.
    unsafe {
        let stage = (*task).stage.get();
        if !matches!(*stage, Stage::Gone) {
            std::ptr::drop_in_place(stage);
        }
        std::ptr::drop_in_place(std::ptr::addr_of_mut!((*task).header));
    }
    // SAFETY: `task` is non-null (it was dereferenced above), allocated by
    // `alloc_block::<Task<F>>`; its contents are dropped and nobody can
    // reach it any more.
    unsafe { free_block::<Task<F>>(NonNull::new_unchecked(task).cast()) }
}

/// Awaits the output of a forked task.
///
/// If the task panicked or was cancelled (its session failed), the handle
/// never resolves; the awaiting task is cancelled with the session.
pub struct JoinHandle<T> {
    header: *const Header,
    /// The handle also owns the reference of the task's first `JobRef`,
    /// taken back from the private stack (released together on drop).
    extra_ref: bool,
    /// The output was taken: the task is complete and holds nothing for us.
    taken: bool,
    _marker: PhantomData<T>,
}

// SAFETY: the handle only moves the output `T` across threads.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` allows nothing but `is_finished`.
unsafe impl<T: Send> Sync for JoinHandle<T> {}
impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// Whether the task has finished (with an output or not).
    pub fn is_finished(&self) -> bool {
        if self.header.is_null() {
            return true; // freed by the inline fast path after completing
        }
        // SAFETY: the handle holds a reference.
        unsafe { (*self.header).state.load(Acquire) & COMPLETE != 0 }
    }

    #[inline]
    fn try_take(&self) -> Option<T> {
        let mut out: Option<T> = None;
        // SAFETY: COMPLETE was observed; `out` has the type the vtable
        // expects (T = F::Output).
        unsafe { ((*self.header).vtable.take_output)(self.header, &mut out as *mut Option<T> as *mut ()) };
        out
    }

    /// The output, if the task completed and it was not taken before.
    pub(crate) fn take_if_finished(&mut self) -> Option<T> {
        if self.header.is_null() || !self.is_finished() {
            return None;
        }
        let out = self.try_take();
        self.taken = out.is_some();
        out
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let h = self.header;
        assert!(!h.is_null(), "JoinHandle polled after it returned its output");
        // SAFETY: the handle holds a reference.
        let header = unsafe { &*h };
        let mut s = header.state.load(Acquire);
        // Not started yet: run it here, on our stack. If its job is still on
        // top of our private stack, take it back (no fence, no deque; never
        // polled, since only a task's first JobRef goes there, so a store
        // claims it); otherwise claim it with a CAS, its job staying behind
        // as a stale reference.
        if s & (SCHEDULED | RUNNING | COMPLETE) == SCHEDULED {
            let worker = WorkerThread::current();
            let popped = worker.is_some_and(|w| w.pop_private_if(h as *const ()));
            // The child may be a long leaf that pushes nothing: like a fork,
            // this await is a point where a hungry worker is handed what we
            // hold back: a handler element held in place (`deferred.rs`),
            // and our oldest private job (not the child's own: we are about
            // to run it). Without it a task that forked leaves and awaited
            // them in order ran them all itself while the other workers
            // idled.
            if let Some(w) = worker.filter(|w| w.is_hungry()) {
                w.release_deferred();
                w.publish_oldest_except(h as *const ());
            }
            if popped && s == SCHEDULED | JOIN_INTEREST {
                // Never polled and its only JobRef is back in our hands: no
                // other thread can reach the state word, a store claims it.
                header.state.store(RUNNING | JOIN_INTEREST | POLLED, Relaxed);
                // SAFETY: we hold RUNNING and the handle's reference.
                let polled = unsafe { poll_step(h) };
                // SAFETY: RUNNING and both references are still ours.
                if matches!(polled, Some(Ok(Poll::Ready(())))) && unsafe { is_exclusive(h) } {
                    // Holds no payload: nothing to drop.
                    std::mem::forget(polled);
                    let out = self.try_take().expect("a completed task left its output");
                    // SAFETY: exclusive: the last users of the task are
                    // this handle and the JobRef it popped.
                    unsafe { free_exclusive(h) };
                    self.header = std::ptr::null();
                    return Poll::Ready(out);
                }
                if let Some(result) = polled {
                    // SAFETY: still RUNNING.
                    unsafe { after_poll(h, result) };
                }
            // SAFETY: the handle's reference keeps the task alive.
            } else if unsafe { try_claim(h) } {
                // SAFETY: a successful claim gives us RUNNING.
                unsafe { poll_claimed(h) };
            }
            if popped {
                // The popped JobRef's reference is released with ours.
                self.extra_ref = true;
            }
            s = header.state.load(Acquire);
        }
        loop {
            if s & COMPLETE != 0 {
                return match self.try_take() {
                    Some(v) => {
                        self.taken = true;
                        Poll::Ready(v)
                    }
                    None => Poll::Pending, // cancelled or panicked
                };
            }
            if s & JOIN_WAKER == 0 {
                // SAFETY: invariant 3: JOIN_WAKER and COMPLETE are clear,
                // so the slot is ours to write.
                unsafe { *header.join_waker.get() = Some(cx.waker().clone()) };
                match header.state.compare_exchange(s, s | JOIN_WAKER, AcqRel, Acquire) {
                    Ok(_) => return Poll::Pending,
                    Err(actual) => s = actual,
                }
                continue;
            }
            // SAFETY: JOIN_WAKER is set: the slot is stable; reading it
            // concurrently with the task side's read is fine.
            let same = unsafe { &*header.join_waker.get() }
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()));
            if same {
                return Poll::Pending;
            }
            // Take the slot back to replace the waker.
            match header.state.compare_exchange(s, s & !JOIN_WAKER, AcqRel, Acquire) {
                Ok(_) => s &= !JOIN_WAKER,
                Err(actual) => s = actual,
            }
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let h = self.header;
        if h.is_null() {
            return; // the inline fast path freed the task already
        }
        if self.taken {
            // Complete and the output is ours already: nothing to hand over.
            // SAFETY: the handle's own reference (and the JobRef's it took).
            return unsafe { release_n(h, 1 + self.extra_ref as usize) };
        }
        // SAFETY: the handle holds a reference.
        let prev = unsafe { (*h).state.fetch_and(!JOIN_INTEREST, AcqRel) };
        if prev & COMPLETE != 0 {
            // Invariant 4: completed while we were interested, so the output
            // (if not taken) is ours to drop.
            // SAFETY: COMPLETE observed: the task side is done with the stage.
            unsafe { ((*h).vtable.drop_output)(h) };
        }
        // SAFETY: the handle's own reference (and the JobRef's it took).
        unsafe { release_n(h, 1 + self.extra_ref as usize) }
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Yields once: the task is re-queued behind other work.
pub fn yield_now() -> impl Future<Output = ()> {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldNow(false)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::WorkerThread;
    use crate::ThreadPoolBuilder;

    /// The worker running the calling task (these tests run on pools).
    fn this_worker() -> &'static WorkerThread {
        WorkerThread::current().expect("runs on a worker")
    }

    /// An await that runs its child inline first hands a hungry worker the
    /// oldest private job other than the child's (module doc, "Running
    /// children inline"): without it, a task that forked leaves and awaited
    /// them in order ran them all itself while the other workers idled.
    /// One worker, with the flag raised by hand: nobody takes the published
    /// jobs, so the child can count them.
    #[test]
    fn an_inline_await_publishes_a_sibling_for_a_hungry_worker() {
        let pool = ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let r = pool.run_par(|p| {
            Box::pin(async move {
                let first = p.fork(async { this_worker().queued_jobs() });
                let second = p.fork(async { 2 });
                this_worker().raise_hungry();
                let (published, private) = first.await;
                assert_eq!(second.await, 2);
                (published, private)
            })
        });
        // `first`'s own JobRef was the oldest (it goes along, stale), then
        // `second`'s: both on the shared deque, none left private.
        assert_eq!(r, Ok((2, 0)));
    }

    /// The same await inside a handler callback that holds an element back
    /// (the last one it delivered, `deferred.rs`): the element is released
    /// and, the worker being hungry, published, before the child runs.
    #[test]
    fn an_inline_await_releases_a_held_handler_element_for_a_hungry_worker() {
        use crate::{HandlerPool, ISet};
        use std::sync::{Arc, Mutex};
        let pool = ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let seen = Arc::new(Mutex::new(None));
        let s2 = Arc::clone(&seen);
        let r = pool.run_par(move |p| {
            Box::pin(async move {
                let set: ISet<u32> = ISet::new(p);
                let handlers = HandlerPool::new(p);
                handlers
                    .add_handler(&set, move |x| {
                        let seen = Arc::clone(&s2);
                        async move {
                            if x == 0 {
                                // Held in place: nobody is hungry yet.
                                set.insert(1).unwrap();
                                let child = p.fork(async { this_worker().queued_jobs() });
                                this_worker().raise_hungry();
                                *seen.lock().unwrap() = Some(child.await);
                            }
                        }
                    })
                    .unwrap();
                set.insert(0).unwrap();
                handlers.quiesce().await;
            })
        });
        assert_eq!(r, Ok(()));
        // Element 1's job on the shared deque, nothing private.
        assert_eq!(*seen.lock().unwrap(), Some((1, 0)));
    }
}
