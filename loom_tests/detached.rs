//! Detached-task counting (`src/sched/detached.rs`, a nonzero indicator:
//! per-stripe leaves and a root counting the nonzero ones): a group's owner
//! is woken when the last task ends (a detached finish after the owner's
//! hold was released, or the release after the last detached finish),
//! never sees the group finished while a detached task started by another
//! one still runs (also when a stripe empties and fills again meanwhile),
//! and never frees the group while a finisher can still touch it. The owner
//! parks (loom reports a deadlock if it is never woken); the hold flag and
//! the owner's "freed" flag stand in for the group's. A task's finish names
//! the stripe it was started on, as the task header does. The owner never
//! joins a thread that may still unpark it (loom aborts then,
//! tokio-rs/loom#249, which hid use-after-free mutants behind a
//! loom-internal assertion): it spins on an exit count. Models adapted from
//! a review (2026-12-02); the review checked that dropping the BUSY unit,
//! splitting its RMW, copying the wake handle after it, dropping the root
//! increment, reloading a leaf after its RMW or making the leaf RMWs
//! relaxed each fail some model.

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

use lvars::sched::loom_exports::DetachedCount;

/// A group: the owner's hold, the detached counts, the owner's thread (the
/// thread that made the group) and "freed" (set when the owner returns).
struct Group {
    /// Spawned threads that have run to their end (the owner spins on this
    /// instead of joining: loom aborts when an unpark reaches a thread
    /// blocked in `join`, tokio-rs/loom#249).
    exited: AtomicUsize,
    released: AtomicBool,
    detached: DetachedCount,
    owner: thread::Thread,
    freed: AtomicBool,
}

/// Runs `f` on a new thread with a handle of the group.
fn spawn(g: &Arc<Group>, f: impl FnOnce(&Arc<Group>) + 'static) -> thread::JoinHandle<()> {
    let g = Arc::clone(g);
    thread::spawn(move || f(&g))
}

impl Group {
    /// A group owned by the calling thread, its hold not released.
    fn new() -> Arc<Self> {
        Arc::new(Group {
            exited: AtomicUsize::new(0),
            released: AtomicBool::new(false),
            detached: DetachedCount::new(),
            owner: thread::current(),
            freed: AtomicBool::new(false),
        })
    }

    fn start(&self, stripe: usize) {
        assert!(!self.freed.load(SeqCst), "a start on a freed group");
        self.detached.start(stripe);
    }

    /// A detached task's end on `stripe`, waking the owner if it saw the
    /// hold released.
    fn finish_detached(&self, stripe: usize) {
        assert!(!self.freed.load(SeqCst), "a finish began on a freed group");
        self.detached.finish(
            stripe,
            || {
                assert!(!self.freed.load(SeqCst), "a finisher read a freed group");
                self.released.load(SeqCst)
            },
            || {
                assert!(!self.freed.load(SeqCst), "a finisher copied a freed group's owner");
                let owner = self.owner.clone();
                move || owner.unpark()
            },
        );
    }

    /// The release of the owner's hold (by the owner, or by another thread
    /// standing in for its set-up, which then wakes it).
    fn release_hold(&self) {
        self.released.swap(true, SeqCst);
        self.owner.unpark();
    }

    /// The owner's wait (`TaskGroup::wait`).
    fn wait(&self) {
        while !(self.released.load(SeqCst) && self.detached.all_finished()) {
            thread::park();
        }
        while self.detached.finisher_busy() {
            thread::yield_now();
        }
        self.freed.store(true, SeqCst);
    }

    fn exit(&self) {
        self.exited.fetch_add(1, SeqCst);
    }

    fn await_exits(&self, n: usize) {
        while self.exited.load(SeqCst) < n {
            thread::yield_now();
        }
    }
}

#[test]
fn a_detached_finish_after_the_tree_wakes_the_owner() {
    loom::model(|| {
        let g = &Group::new();
        g.start(0);
        spawn(g, |g| {
            g.finish_detached(0);
            g.exit()
        });
        spawn(g, |g| {
            g.release_hold();
            g.exit()
        });
        g.wait();
        g.await_exits(2);
    });
}

#[test]
fn a_detached_task_started_by_another_keeps_the_group_open() {
    loom::model(|| {
        let g = &Group::new();
        let child_done = Arc::new(AtomicBool::new(false));
        g.start(0); // spawned by the root
        spawn(g, |g| {
            g.release_hold();
            g.exit()
        });
        let done = Arc::clone(&child_done);
        spawn(g, move |g| {
            // The first task spawns a second one before it ends.
            g.start(1);
            let child = spawn(g, move |g| {
                done.store(true, SeqCst);
                g.finish_detached(1);
            });
            g.finish_detached(0);
            child.join().unwrap();
            g.exit();
        });
        g.wait();
        assert!(child_done.load(SeqCst), "the owner returned while a detached task ran");
        g.await_exits(2);
    });
}

/// A stripe empties and fills again while the group runs: A (stripe 0)
/// starts B on stripe 1 and ends, emptying stripe 0; B starts C on
/// stripe 0 (zero to one again) and ends, emptying stripe 1. The owner
/// releases its hold meanwhile and must not return before C has finished.
#[test]
fn a_stripe_that_empties_and_fills_again_keeps_the_group_open() {
    loom::model(|| {
        let g = &Group::new();
        let c_done = Arc::new(AtomicBool::new(false));
        g.start(0); // A, started during set-up
        let done = Arc::clone(&c_done);
        spawn(g, move |g| {
            g.start(1); // B
            let b = spawn(g, move |g| {
                g.start(0); // C
                let c = spawn(g, move |g| {
                    done.store(true, SeqCst);
                    g.finish_detached(0);
                });
                g.finish_detached(1);
                c.join().unwrap();
            });
            g.finish_detached(0);
            b.join().unwrap();
            g.exit();
        });
        g.release_hold();
        g.wait();
        assert!(c_done.load(SeqCst), "the owner returned while a detached task ran");
        g.await_exits(1);
    });
}

/// Two tasks on one stripe finish concurrently: exactly the one that
/// empties the stripe takes it off the root and wakes the owner.
#[test]
fn two_finishes_on_one_stripe_wake_the_owner_once_it_is_empty() {
    loom::model(|| {
        let g = &Group::new();
        g.start(0);
        g.start(0);
        for _ in 0..2 {
            spawn(g, |g| {
                g.finish_detached(0);
                g.exit()
            });
        }
        g.release_hold();
        g.wait();
        g.await_exits(2);
    });
}

/// Two running tasks (A, B, both on stripe 1) start tasks on stripe 0 at
/// once: the later start sees the leaf nonzero while the earlier may not
/// have counted it in the root yet, and its task Q runs meanwhile and
/// starts R on stripe 1 (which may have emptied and fill again). The owner
/// must not return before P, Q and R have finished.
#[test]
fn concurrent_starts_on_one_stripe_keep_the_group_open() {
    loom::model(|| {
        let g = &Group::new();
        let done = Arc::new(AtomicUsize::new(0));
        g.start(1); // A
        g.start(1); // B
        let d = Arc::clone(&done);
        spawn(g, move |g| {
            g.start(0); // P, run inline after A's start returns
            d.fetch_add(1, SeqCst);
            g.finish_detached(0); // P
            g.finish_detached(1); // A
            g.exit();
        });
        let d = Arc::clone(&done);
        spawn(g, move |g| {
            g.start(0); // Q
            let q = spawn(g, move |g| {
                g.start(1); // R, run inline
                d.fetch_add(1, SeqCst);
                g.finish_detached(1); // R
                d.fetch_add(1, SeqCst);
                g.finish_detached(0); // Q
            });
            g.finish_detached(1); // B
            q.join().unwrap();
            g.exit();
        });
        g.release_hold();
        g.wait();
        assert_eq!(done.load(SeqCst), 3, "the owner returned while a detached task ran");
        g.await_exits(2);
    });
}

/// Everything a task wrote before its finish is visible to the owner when
/// it returns, also for a finish that leaves its leaf nonzero (it never
/// touches the root: the happens-before runs through the leaf's RMWs to
/// the finisher that empties it, then through the root).
#[test]
fn a_finish_that_leaves_its_leaf_nonzero_happens_before_the_end() {
    use loom::cell::UnsafeCell;
    loom::model(|| {
        let g = &Group::new();
        let out: Arc<[UnsafeCell<usize>; 2]> = Arc::new([UnsafeCell::new(0), UnsafeCell::new(0)]);
        g.start(0);
        g.start(0);
        for i in 0..2 {
            let out = Arc::clone(&out);
            spawn(g, move |g| {
                // SAFETY (model): each task writes its own cell.
                out[i].with_mut(|p| unsafe { *p = i + 1 });
                g.finish_detached(0);
                g.exit();
            });
        }
        g.release_hold();
        g.wait();
        for (i, cell) in out.iter().enumerate() {
            // The owner reads what the tasks wrote (loom flags a race if
            // the end did not happen after both writes).
            assert_eq!(cell.with(|p| unsafe { *p }), i + 1);
        }
        g.await_exits(2);
    });
}
