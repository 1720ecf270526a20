//! Putting idle workers to sleep without ever losing a wake-up.
//!
//! # The protocol
//!
//! Each worker has an `is_asleep` flag; `sleepers` counts the flags that
//! are set. A worker that ran out of work (after a short spin, see
//! `registry.rs`) calls [`Sleep::sleep`]:
//!
//! 1. increment `sleepers`, then set its `is_asleep` flag (both `SeqCst`;
//!    in this order, so a waker, which decrements only after clearing a set
//!    flag, can never take the count below zero);
//! 2. `SeqCst` fence, then look once more for a reason to stay awake (a job
//!    in any queue, the latch it waits for, termination). If there is one, it
//!    takes its own flag back ([`Sleep::wake_specific`] on itself) and returns;
//! 3. otherwise it parks until its flag is clear.
//!
//! Whoever makes work or sets a latch does the mirror image: publish first
//! (push the job / store the latch), `SeqCst` fence, then read `sleepers` /
//! the flag, and if a flag is set, *swap it to false itself*, decrement
//! `sleepers` and unpark that thread.
//!
//! **Invariant 1 (no lost wake-up).** Steps 1–2 of the sleeper and the
//! publisher's "publish, fence, read" form a Dekker pair: with `SeqCst`
//! fences on both sides at least one side sees the other's write, so either
//! the sleeper sees the new work in step 2, or the publisher sees the flag
//! and wakes it. `park`/`unpark` keep a token, so an `unpark` that arrives
//! before the `park` is not lost either.
//!
//! **Invariant 2 (exact idleness).** A flag is cleared, and `sleepers`
//! decremented, by the thread that *wakes* a sleeper, before that waker goes
//! on (or by the sleeper itself when it cancels in step 2, before it touches
//! any work). So `sleepers == number of workers`, re-read after the queues
//! were seen empty, means no worker is running anything and no wake-up is in
//! flight: the pool is idle. Deadlock detection (`registry.rs`) relies on it.
//!
//! Modelled by `loom_tests/sleep.rs`.

use crossbeam_utils::CachePadded;

use crate::sync::{fence, lock, thread, AtomicBool, AtomicUsize, Mutex, Ordering::SeqCst};

/// Per-worker sleep state, on its own cache line.
struct WorkerSleep {
    is_asleep: AtomicBool,
    /// The worker's thread handle, set once when the worker starts; read
    /// only on the (slow) wake-up path.
    thread: Mutex<Option<thread::Thread>>,
}

/// The sleep state of one pool.
pub struct Sleep {
    sleepers: CachePadded<AtomicUsize>,
    workers: Box<[CachePadded<WorkerSleep>]>,
}

impl Sleep {
    /// Sleep state for `num_workers` workers, all awake.
    pub fn new(num_workers: usize) -> Self {
        let workers = (0..num_workers)
            .map(|_| {
                CachePadded::new(WorkerSleep {
                    is_asleep: AtomicBool::new(false),
                    thread: Mutex::new(None),
                })
            })
            .collect();
        Self {
            sleepers: CachePadded::new(AtomicUsize::new(0)),
            workers,
        }
    }

    /// Called by worker `index` on its own thread before it can sleep.
    pub fn register_current_thread(&self, index: usize) {
        *lock(&self.workers[index].thread) = Some(thread::current());
    }

    /// Number of workers currently registered as asleep.
    pub fn sleepers(&self) -> usize {
        self.sleepers.load(SeqCst)
    }

    /// Number of workers.
    pub fn num_workers(&self) -> usize {
        self.workers.len()
    }

    /// Puts worker `index` to sleep unless `has_reason_to_wake` finds a
    /// reason not to. `on_last_asleep` runs (before parking) when this worker
    /// was the last one to fall asleep; it must re-check idleness itself.
    ///
    /// Returns when some thread woke this worker (or it cancelled).
    pub fn sleep(&self, index: usize, has_reason_to_wake: impl Fn() -> bool, on_last_asleep: impl FnOnce()) {
        let me = &self.workers[index];
        let asleep = self.sleepers.fetch_add(1, SeqCst) + 1;
        me.is_asleep.store(true, SeqCst);
        fence(SeqCst);
        if has_reason_to_wake() {
            self.wake_specific(index);
            return;
        }
        if asleep == self.workers.len() {
            on_last_asleep();
        }
        // Invariant 2: only a waker clears our flag, so loop over spurious
        // returns from `park`.
        while me.is_asleep.load(SeqCst) {
            thread::park();
        }
    }

    /// Wakes worker `index` if it is asleep. Call after publishing whatever
    /// the worker should see (with a `SeqCst` store or fence in between).
    /// Returns whether this call woke it.
    pub fn wake_specific(&self, index: usize) -> bool {
        // The publisher's half of the Dekker pair: whatever the caller
        // published must be ordered before we read the flag.
        fence(SeqCst);
        let w = &self.workers[index];
        if w.is_asleep.load(SeqCst) && w.is_asleep.swap(false, SeqCst) {
            self.sleepers.fetch_sub(1, SeqCst);
            if let Some(t) = lock(&w.thread).as_ref() {
                t.unpark();
            }
            true
        } else {
            false
        }
    }

    /// Wakes one sleeping worker, if any, after new work was published.
    /// `hint` picks where to start looking, to spread wake-ups.
    #[inline]
    pub fn notify_one(&self, hint: usize) {
        fence(SeqCst);
        if self.sleepers.load(SeqCst) == 0 {
            return;
        }
        self.notify_one_slow(hint);
    }

    #[cold]
    fn notify_one_slow(&self, hint: usize) {
        let n = self.workers.len();
        for k in 0..n {
            if self.wake_specific((hint + k) % n) {
                return;
            }
        }
    }

    /// Wakes every sleeping worker (termination).
    pub fn notify_all(&self) {
        fence(SeqCst);
        for i in 0..self.workers.len() {
            self.wake_specific(i);
        }
    }
}
