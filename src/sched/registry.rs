//! The pool's shared state and the worker loop.
//!
//! Each worker owns a LIFO crossbeam `Worker` deque; everybody can steal
//! from its `Stealer`; foreign threads inject into one global `Injector`.
//! Idle workers spin briefly, then sleep through [`Sleep`] (see `sleep.rs`
//! for the no-lost-wake-up protocol).
//!
//! # Lazy publication of join jobs
//!
//! `join` (and `fork`) do not push their job on the shared deque: they push
//! it on the worker's *private* stack (a plain `VecDeque`, no atomics, no
//! fences), and pops it back from there when nobody needed it, which is
//! almost always. A worker that finds no work raises the registry's
//! `hungry` flag; a busy worker that sees the flag at its next `join`
//! *publishes* its oldest private job (the biggest piece of work) to its
//! shared deque, where it can be stolen. Invariants:
//!
//! 1. A `join` returning from its first closure finds its own job on top of
//!    the private stack, unless it was published (publication takes the
//!    oldest first, and nested joins pop what they push) or a task job
//!    forked inside the closure was left on top. In the last two cases it
//!    falls back to the shared deque and, if needed, `wait_until`, which
//!    publishes everything, so the job still runs exactly once.
//! 2. A worker never waits or sleeps holding private jobs: `wait_until`
//!    publishes them all first, and again after every job it runs (a task
//!    may fork and park, leaving its children's jobs behind). So sleeping workers hide no work, idleness
//!    (and deadlock detection) only has to look at the shared queues, and a
//!    waiting worker can still run the outer frames' jobs itself.
//!
//! # Deadlock detection
//!
//! A task group (a session, `group.rs`) can only be woken by code of that
//! group, and every such code runs on a worker. So when *every* worker is
//! asleep and every queue is empty (checked under `idle`, which is also
//! held while a group registers and injects its first job), no group that
//! still has pending tasks can ever make progress: each one is reported as
//! deadlocked, except groups one of whose tasks is blocked inside a nested
//! wait (it is running, only waiting for an inner group).

use std::cell::{Cell, UnsafeCell};
use std::ptr::NonNull;
use std::sync::Arc;

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use crossbeam_utils::{Backoff, CachePadded};

use super::chaos;
use super::deferred::{Deferred, DeferredGuard};
use super::group::TaskGroup;
use super::job::JobRef;
use super::sleep::Sleep;
use super::task_cache::TaskCache;
use crate::sync::{lock, AtomicBool, Mutex, Ordering::Relaxed, Ordering::SeqCst};

/// What the deadlock detector looks at, guarded by one mutex.
#[derive(Default)]
struct IdleState {
    /// Groups with a waiting owner. Raw pointers: a group is registered by
    /// its owner and unregistered before the owner frees it, always under
    /// this lock.
    groups: Vec<*const TaskGroup>,
    /// Groups one of whose tasks is blocked in a nested wait (multiset).
    blocked: Vec<*const TaskGroup>,
}

/// Shared state of one thread pool.
pub(crate) struct Registry {
    injector: Injector<JobRef>,
    stealers: Box<[Stealer<JobRef>]>,
    sleep: Sleep,
    /// Raised by a worker that found no work; see "lazy publication".
    hungry: CachePadded<AtomicBool>,
    terminate: AtomicBool,
    idle: Mutex<IdleState>,
}

// SAFETY: the raw group pointers in `idle` are only dereferenced under the
// `idle` lock while registered (see `IdleState::groups`); everything else is
// Send + Sync.
unsafe impl Send for Registry {}
// SAFETY: as above.
unsafe impl Sync for Registry {}

thread_local! {
    static WORKER: Cell<*const WorkerThread> = const { Cell::new(std::ptr::null()) };
}

/// Per-worker state, living on the worker thread's stack.
pub(crate) struct WorkerThread {
    deque: Worker<JobRef>,
    /// Join jobs not yet published (see "lazy publication"). Only this
    /// thread touches it, and never re-entrantly (no user code runs while a
    /// reference to it is live).
    private: UnsafeCell<PrivateStack>,
    /// `registry.hungry`, without the pointer chase on every `join`.
    hungry: *const AtomicBool,
    index: usize,
    registry: Arc<Registry>,
    rng: Cell<u64>,
    /// The task being polled on this thread (for `fork`'s parent link), or
    /// null.
    current_task: Cell<*const ()>,
    /// Freed task blocks for this worker's next forks. Only this thread
    /// touches it, never re-entrantly (no user code runs inside its calls).
    task_cache: UnsafeCell<TaskCache>,
    /// The `Deferred` of the task holding work back on this thread, or
    /// null (see `deferred.rs`).
    deferred: Cell<*const Deferred>,
}

impl Registry {
    /// Creates the registry and starts `num_threads` workers.
    pub(crate) fn new(
        num_threads: usize,
        thread_name: &mut dyn FnMut(usize) -> String,
        stack_size: Option<usize>,
    ) -> std::io::Result<(Arc<Registry>, Vec<std::thread::JoinHandle<()>>)> {
        let num_threads = num_threads.max(1);
        let deques: Vec<Worker<JobRef>> = (0..num_threads).map(|_| Worker::new_lifo()).collect();
        let registry = Arc::new(Registry {
            injector: Injector::new(),
            stealers: deques.iter().map(Worker::stealer).collect(),
            sleep: Sleep::new(num_threads),
            hungry: CachePadded::new(AtomicBool::new(false)),
            terminate: AtomicBool::new(false),
            idle: Mutex::new(IdleState::default()),
        });
        let mut handles = Vec::with_capacity(num_threads);
        #[cfg(feature = "chaos")]
        let chaos_seed = chaos::pool_seed();
        for (index, deque) in deques.into_iter().enumerate() {
            let worker_registry = Arc::clone(&registry);
            let mut b = std::thread::Builder::new().name(thread_name(index));
            if let Some(size) = stack_size {
                b = b.stack_size(size);
            }
            let spawned = b.spawn(move || {
                let worker = WorkerThread {
                    deque,
                    private: UnsafeCell::new(PrivateStack::new()),
                    hungry: &*worker_registry.hungry,
                    index,
                    registry: worker_registry,
                    rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)),
                    current_task: Cell::new(std::ptr::null()),
                    task_cache: UnsafeCell::new(TaskCache::new()),
                    deferred: Cell::new(std::ptr::null()),
                };
                // Schedule fuzzing: this worker's stream (and so its victim
                // choices) derive from the pool's seed and its index.
                #[cfg(feature = "chaos")]
                {
                    chaos::init_worker(chaos_seed, index);
                    worker.rng.set(chaos::next_u64() | 1);
                }
                worker.registry.sleep.register_current_thread(index);
                /// Clears `WORKER` however the loop ends (a panic escaping a
                /// job included), before `worker` is dropped: nothing may
                /// reach the worker (or its task cache) through the thread
                /// local after that.
                struct Registered;
                impl Drop for Registered {
                    fn drop(&mut self) {
                        WORKER.with(|w| w.set(std::ptr::null()));
                    }
                }
                WORKER.with(|w| w.set(&worker));
                let registered = Registered;
                worker.main_loop();
                drop(registered);
            });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    registry.terminate();
                    return Err(e);
                }
            }
        }
        Ok((registry, handles))
    }

    pub(crate) fn num_threads(&self) -> usize {
        self.stealers.len()
    }

    pub(crate) fn sleep(&self) -> &Sleep {
        &self.sleep
    }

    /// Pushes a job from a thread that is not one of our workers.
    pub(crate) fn inject(&self, job: JobRef) {
        self.injector.push(job);
        self.sleep.notify_one(0);
    }

    /// Pushes a job: on the current worker's deque if we are one of ours,
    /// else on the injector.
    pub(crate) fn push(&self, job: JobRef) {
        match WorkerThread::current() {
            Some(w) if std::ptr::eq(&*w.registry, self) => w.push(job),
            _ => self.inject(job),
        }
    }

    /// Asks every worker to exit once idle.
    pub(crate) fn terminate(&self) {
        self.terminate.store(true, SeqCst);
        self.sleep.notify_all();
    }

    fn queues_empty(&self) -> bool {
        self.injector.is_empty() && self.stealers.iter().all(Stealer::is_empty)
    }

    /// Registers `group` for deadlock detection when its owner starts
    /// waiting (never during set-up, when the owner may still fork). If the
    /// pool is already idle, nobody else will run the detector, so check
    /// here: under the lock, either the last sleeper's check sees the group
    /// or this check sees the idle pool.
    pub(crate) fn begin_wait(&self, group: &TaskGroup) {
        let mut idle = lock(&self.idle);
        idle.groups.push(group);
        if self.queues_empty() && self.sleep.sleepers() == self.sleep.num_workers() {
            group.report_stuck();
        }
        drop(idle);
    }

    /// Removes `group` from deadlock detection (before it is freed).
    pub(crate) fn end_wait(&self, group: &TaskGroup) {
        let mut idle = lock(&self.idle);
        if let Some(i) = idle.groups.iter().position(|g| std::ptr::eq(*g, group)) {
            idle.groups.swap_remove(i);
        }
    }

    /// Marks `group` as blocked by a running task (nested wait) or not.
    pub(crate) fn set_blocked(&self, group: *const TaskGroup, blocked: bool) {
        let mut idle = lock(&self.idle);
        if blocked {
            idle.blocked.push(group);
        } else if let Some(i) = idle.blocked.iter().position(|g| std::ptr::eq(*g, group)) {
            idle.blocked.swap_remove(i);
        }
    }

    /// Called by the last worker to fall asleep. Re-checks idleness under
    /// the lock (Invariant 2 of `sleep.rs`) and reports every group that
    /// can no longer progress.
    #[cold]
    fn on_last_asleep(&self) {
        let idle = lock(&self.idle);
        if !self.queues_empty() || self.sleep.sleepers() != self.sleep.num_workers() {
            return;
        }
        for &g in &idle.groups {
            if idle.blocked.iter().any(|b| std::ptr::eq(*b, g)) {
                continue;
            }
            // SAFETY: registered groups are alive while `idle` is locked.
            unsafe { (*g).report_stuck() };
        }
    }
}

/// A session marked blocked by [`WorkerThread::block_current_group`];
/// unmarked on drop, also when the wait unwinds.
pub(crate) struct BlockedGroup<'a> {
    registry: &'a Registry,
    group: *const TaskGroup,
}

impl Drop for BlockedGroup<'_> {
    fn drop(&mut self) {
        self.registry.set_blocked(self.group, false);
    }
}

impl WorkerThread {
    /// The worker running on this thread, if any.
    #[inline]
    pub(crate) fn current<'a>() -> Option<&'a WorkerThread> {
        let p = WORKER.with(Cell::get);
        // SAFETY: the pointer is set by the worker thread itself to a value
        // on its own stack that outlives every job it runs, and cleared
        // before that frame ends.
        unsafe { p.as_ref() }
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn registry_arc(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }

    pub(crate) fn current_task(&self) -> *const () {
        self.current_task.get()
    }

    /// Marks the session of the task being polled on this thread (if any)
    /// as blocked, not deadlocked, until the guard is dropped: the task is
    /// running, only waiting on this thread for something that runs
    /// elsewhere (a nested session, or a `join` closure a thief took, which
    /// may itself wait for a nested session). The detector skips it then.
    pub(crate) fn block_current_group(&self) -> Option<BlockedGroup<'_>> {
        let task = self.current_task() as *const super::task::Header;
        if task.is_null() {
            return None;
        }
        // SAFETY: the current task is being polled on this thread, so it is
        // alive, and so is its group (a group outlives its unfinished tasks).
        let group = unsafe { (*task).group };
        self.registry.set_blocked(group, true);
        Some(BlockedGroup {
            registry: &self.registry,
            group,
        })
    }

    /// Whether a worker is hungry (schedule fuzzing sometimes says yes
    /// regardless). Read, not cleared: a caller that queues a job instead of
    /// holding it back goes through `push_private`, which publishes it and
    /// clears the flag (found by review: clearing it here first left the
    /// job private and the hungry worker asleep).
    #[inline]
    pub(crate) fn is_hungry(&self) -> bool {
        // SAFETY: points into our registry, which outlives this worker.
        let hungry = unsafe { (*self.hungry).load(Relaxed) };
        hungry || chaos::publish_eagerly()
    }

    /// Before this worker waits (in `wait_until`, or as a plain thread for a
    /// session of another pool): releases held work and publishes private jobs, so
    /// other workers can run them meanwhile (invariant 2 of `deferred.rs`,
    /// and invariant 2 above; found by review: both stayed hidden).
    pub(crate) fn release_and_publish(&self) {
        self.release_deferred();
        self.publish_all();
    }

    /// The `Deferred` installed on this thread, or null.
    #[inline]
    pub(crate) fn deferred(&self) -> *const Deferred {
        self.deferred.get()
    }

    /// Installs `d` for the holder's poll (invariant 1 of `deferred.rs`:
    /// releases the one installed before, which this poll is nested in).
    ///
    /// # Safety
    /// `d` stays valid until the guard is dropped, and its `release` may be
    /// called on this thread until then.
    #[inline]
    pub(crate) unsafe fn install_deferred(&self, d: *const Deferred) -> DeferredGuard<'_> {
        let previous = self.deferred.get();
        self.release_deferred();
        self.deferred.set(d);
        DeferredGuard {
            slot: &self.deferred,
            previous,
        }
    }

    /// Releases the work held on this thread, if any, and uninstalls its
    /// `Deferred`, so nothing more is held until a holder installs one again
    /// (invariants 1 and 2 of `deferred.rs`).
    #[inline]
    pub(crate) fn release_deferred(&self) {
        let d = self.deferred.replace(std::ptr::null());
        if !d.is_null() {
            self.release_deferred_cold(d);
        }
    }

    #[cold]
    fn release_deferred_cold(&self, d: *const Deferred) {
        // SAFETY: an installed `Deferred` is valid while installed
        // (`install_deferred`'s contract), and it is installed now.
        unsafe { ((*d).release)((*d).data) };
    }

    pub(crate) fn set_current_task(&self, t: *const ()) -> *const () {
        self.current_task.replace(t)
    }

    /// A task block of size class `class` (see `task_cache`).
    #[inline]
    pub(crate) fn alloc_task_block(&self, class: usize) -> NonNull<u8> {
        // SAFETY: only this thread touches the cache, and `alloc` runs no
        // user code, so this is the only reference to it.
        unsafe { (*self.task_cache.get()).alloc(class) }
    }

    /// Takes back a task block whose contents were dropped.
    ///
    /// # Safety
    /// As [`TaskCache::free`].
    #[inline]
    pub(crate) unsafe fn free_task_block(&self, class: usize, block: NonNull<u8>) {
        // SAFETY: only this thread touches the cache, and `free` runs no
        // user code; the block contract is forwarded.
        unsafe { (*self.task_cache.get()).free(class, block) }
    }

    #[inline]
    pub(crate) fn push(&self, job: JobRef) {
        self.deque.push(job);
        self.registry.sleep.notify_one(self.index + 1);
    }

    /// Pushes a join job on the private stack; publishes the oldest
    /// private job if some worker is hungry.
    #[inline]
    pub(crate) fn push_private(&self, job: JobRef) {
        // SAFETY: only this thread touches `private`, not re-entrantly.
        unsafe { (*self.private.get()).push(job) };
        // SAFETY: points into our registry, which outlives this worker.
        if unsafe { (*self.hungry).load(Relaxed) } || chaos::publish_eagerly() {
            self.publish_oldest();
        }
    }

    /// How many jobs are on the shared deque and on the private stack.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn queued_jobs(&self) -> (usize, usize) {
        // SAFETY: only this thread touches `private`, not re-entrantly.
        (self.deque.len(), unsafe { (*self.private.get()).len() })
    }

    /// Raises the hungry flag as an idle worker would.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn raise_hungry(&self) {
        self.registry.hungry.store(true, Relaxed);
    }

    /// Pops the top private job if it is `id` (it was not published).
    #[inline]
    pub(crate) fn pop_private_if(&self, id: *const ()) -> bool {
        // SAFETY: only this thread touches `private`, not re-entrantly.
        unsafe { (*self.private.get()).pop_if(id) }
    }

    /// Publishes the oldest private job that is not `id` and lowers the
    /// hungry flag: a worker about to run job `id` itself (an awaited fork)
    /// hands a hungry one something else (`id`'s own JobRef, if it comes
    /// first, goes along: it is stale once the task is claimed).
    #[cold]
    pub(crate) fn publish_oldest_except(&self, id: *const ()) {
        loop {
            // SAFETY: only this thread touches `private`, not re-entrantly.
            let Some(job) = (unsafe { (*self.private.get()).take_oldest() }) else {
                return;
            };
            self.registry.hungry.store(false, Relaxed);
            let other = job.id() != id;
            self.push(job);
            if other {
                return;
            }
        }
    }

    #[cold]
    fn publish_oldest(&self) {
        // No JobRef has a null id: this publishes the oldest job, if any.
        self.publish_oldest_except(std::ptr::null());
    }

    /// Publishes every private job (invariant 2: before waiting, and after
    /// every job, so task jobs a job left behind never stay hidden; also
    /// between the callbacks a handler task runs in place, each of which
    /// stands for a job of its own).
    #[inline]
    pub(crate) fn publish_all(&self) {
        // SAFETY: only this thread touches `private`, not re-entrantly.
        let private = unsafe { &mut *self.private.get() };
        if private.is_empty() {
            return;
        }
        while let Some(job) = private.take_oldest() {
            self.deque.push(job);
        }
        self.registry.sleep.notify_one(self.index + 1);
    }

    /// Pops the most recent local job (LIFO).
    #[inline]
    pub(crate) fn pop_local(&self) -> Option<JobRef> {
        self.deque.pop()
    }

    fn next_random(&self) -> u64 {
        // xorshift64*: only used to pick steal victims.
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn steal(&self) -> Option<JobRef> {
        loop {
            let mut retry = false;
            match self.registry.injector.steal_batch_and_pop(&self.deque) {
                Steal::Success(job) => {
                    self.notify_if_left_over();
                    return Some(job);
                }
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            let n = self.registry.stealers.len();
            if n > 1 {
                let start = (self.next_random() % n as u64) as usize;
                let stride = chaos::victim_stride(n);
                for k in 0..n {
                    let victim = (start + k * stride) % n;
                    if victim == self.index {
                        continue;
                    }
                    // Half the victim's deque (up to crossbeam's batch
                    // limit) at once: a traversal's handler tasks are
                    // short, and one steal per task cost a cold cache
                    // line each. Fork-join loses nothing: lazy
                    // publication leaves one or two jobs to steal there.
                    match self.registry.stealers[victim].steal_batch_and_pop(&self.deque) {
                        Steal::Success(job) => {
                            self.notify_if_left_over();
                            return Some(job);
                        }
                        Steal::Retry => retry = true,
                        Steal::Empty => {}
                    }
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// After a batch steal: the rest of the batch is stealable from us
    /// now; keep "queued work means a notified sleeper".
    fn notify_if_left_over(&self) {
        if !self.deque.is_empty() {
            self.registry.sleep.notify_one(self.index + 1);
        }
    }

    #[inline]
    fn find_work(&self) -> Option<JobRef> {
        // Schedule fuzzing: sometimes take our oldest job (FIFO) instead.
        // Nothing is drawn while the deque is empty, so how long a worker
        // idles does not shift its stream.
        #[cfg(feature = "chaos")]
        if !self.deque.is_empty() && chaos::take_oldest() {
            if let Steal::Success(job) = self.registry.stealers[self.index].steal() {
                return Some(job);
            }
        }
        self.deque.pop().or_else(|| self.steal())
    }

    fn has_work_anywhere(&self) -> bool {
        !self.deque.is_empty() || !self.registry.queues_empty()
    }

    fn main_loop(&self) {
        let terminated = || self.registry.terminate.load(SeqCst);
        self.wait_until(terminated);
        // Drain what is left so no job is lost at shutdown.
        while let Some(job) = self.find_work() {
            // SAFETY: every JobRef in our queues is executed exactly once.
            unsafe { job.execute() };
        }
    }

    /// Runs jobs until `cond` holds, sleeping when there is nothing to do.
    /// `cond` must read with `SeqCst` (see `sleep.rs`).
    pub(crate) fn wait_until(&self, cond: impl Fn() -> bool) {
        self.release_and_publish();
        let backoff = Backoff::new();
        while !cond() {
            if let Some(job) = self.find_work() {
                chaos::before_job();
                // SAFETY: every JobRef in our queues is executed exactly once.
                unsafe { job.execute() };
                // Every holder restored what it found, nothing (the guard
                // runs on unwinding too).
                debug_assert!(self.deferred.get().is_null(), "a held-work record outlived its poll");
                self.publish_all();
                backoff.reset();
                continue;
            }
            // Nobody can take a published job from the only worker: it
            // stays unhungry, so whether it idled before a session's root
            // arrived does not change which forks get published (a one-
            // worker schedule is then a function of the chaos seed alone).
            if self.registry.num_threads() > 1 && !self.registry.hungry.load(Relaxed) {
                self.registry.hungry.store(true, Relaxed);
            }
            if !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            self.registry.sleep.sleep(
                self.index,
                || cond() || self.has_work_anywhere() || self.registry.terminate.load(SeqCst),
                || self.registry.on_last_asleep(),
            );
            backoff.reset();
        }
    }
}

/// The private job stack: a growable array whose live part is
/// `jobs[bottom..len]`. Pushes and pops happen at the top; publication takes
/// from the bottom (the oldest job, the largest piece of work).
struct PrivateStack {
    jobs: Vec<JobRef>,
    bottom: usize,
}

impl PrivateStack {
    fn new() -> Self {
        Self {
            jobs: Vec::with_capacity(64),
            bottom: 0,
        }
    }

    #[inline]
    fn push(&mut self, job: JobRef) {
        self.jobs.push(job);
    }

    #[inline]
    fn pop_if(&mut self, id: *const ()) -> bool {
        if self.jobs.len() > self.bottom && self.jobs.last().is_some_and(|j| j.id() == id) {
            self.jobs.pop();
            self.reset_if_empty();
            true
        } else {
            false
        }
    }

    #[cfg(all(test, not(loom)))]
    fn len(&self) -> usize {
        self.jobs.len() - self.bottom
    }

    fn take_oldest(&mut self) -> Option<JobRef> {
        let job = *self.jobs.get(self.bottom)?;
        self.bottom += 1;
        self.reset_if_empty();
        Some(job)
    }

    #[inline]
    fn reset_if_empty(&mut self) {
        if self.bottom == self.jobs.len() {
            self.jobs.clear();
            self.bottom = 0;
        }
    }

    fn is_empty(&self) -> bool {
        self.bottom == self.jobs.len()
    }
}
