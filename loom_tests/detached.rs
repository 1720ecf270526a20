//! Detached-task counting (`src/sched/detached.rs`, a nonzero indicator:
//! per-stripe leaves and a root counting the nonzero ones): a group's owner
//! is woken when the last task ends (a detached finish after the tree count
//! reached zero, or the tree after the last detached finish), never sees
//! the group finished while a detached task started by another one still
//! runs (also when a stripe empties and fills again meanwhile), and never
//! frees the group while a finisher can still touch it. The owner parks
//! (loom reports a deadlock if it is never woken); the tree count and the
//! owner's flag stand in for the group's. A task's finish names the stripe
//! it was started on, as the task header does. The owner never joins a
//! thread that may still unpark it (loom aborts then, tokio-rs/loom#249,
//! which hid use-after-free mutants behind a loom-internal assertion): it
//! spins on an exit count. Models adapted from a review (2026-12-02); the
//! review checked that dropping the BUSY unit, splitting its RMW, copying
//! the wake handle after it, dropping the root increment, reloading a leaf
//! after its RMW or making the leaf RMWs relaxed each fail some model.

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

use lvars::sched::loom_exports::DetachedCount;

/// A group: the attached tree's count (1: the root is running), the
/// detached counts, and "freed" (set when the owner returns).
struct Group {
    /// Spawned threads that have run to their end (the owner spins on this
    /// instead of joining: loom aborts when an unpark reaches a thread
    /// blocked in `join`, tokio-rs/loom#249).
    exited: AtomicUsize,
    tree: AtomicUsize,
    detached: DetachedCount,
    freed: AtomicBool,
}

impl Group {
    fn new() -> Arc<Self> {
        Arc::new(Group {
            exited: AtomicUsize::new(0),
            tree: AtomicUsize::new(1),
            detached: DetachedCount::new(),
            freed: AtomicBool::new(false),
        })
    }

    /// A detached task's end on `stripe`, waking `owner` if it saw the
    /// tree done.
    fn finish_detached(&self, stripe: usize, owner: &thread::Thread) {
        assert!(!self.freed.load(SeqCst), "a finish began on a freed group");
        self.detached.finish(
            stripe,
            || {
                assert!(!self.freed.load(SeqCst), "a finisher read a freed group");
                self.tree.load(SeqCst) == 0
            },
            || {
                assert!(!self.freed.load(SeqCst), "a finisher copied a freed group's owner");
                let owner = owner.clone();
                move || owner.unpark()
            },
        );
    }

    /// The root's end: the tree count reaches zero and wakes the owner.
    fn finish_tree(&self, owner: &thread::Thread) {
        if self.tree.fetch_sub(1, SeqCst) == 1 {
            owner.unpark();
        }
    }

    /// The owner's wait (`TaskGroup::wait`).
    fn wait(&self) {
        while !(self.tree.load(SeqCst) == 0 && self.detached.all_finished()) {
            thread::park();
        }
        while self.detached.finisher_busy() {
            thread::yield_now();
        }
        self.freed.store(true, SeqCst);
    }
}

impl Group {
    fn exit(&self) {
        self.exited.fetch_add(1, SeqCst);
    }
    fn await_exits(&self, n: usize) {
        while self.exited.load(SeqCst) < n {
            thread::yield_now();
        }
    }
    fn start(&self, stripe: usize) {
        assert!(!self.freed.load(SeqCst), "a start on a freed group");
        self.detached.start(stripe);
    }
}

#[test]
fn a_detached_finish_after_the_tree_wakes_the_owner() {
    loom::model(|| {
        let g = Group::new();
        let owner = thread::current();
        g.start(0);
        let _task = {
            let (g, owner) = (g.clone(), owner.clone());
            thread::spawn(move || {
                g.finish_detached(0, &owner);
                g.exit()
            })
        };
        let _root = {
            let (g, owner) = (g.clone(), owner.clone());
            thread::spawn(move || {
                g.finish_tree(&owner);
                g.exit()
            })
        };
        g.wait();
        g.await_exits(2);
    });
}

#[test]
fn a_detached_task_started_by_another_keeps_the_group_open() {
    loom::model(|| {
        let g = Group::new();
        let owner = thread::current();
        let child_done = Arc::new(AtomicBool::new(false));
        g.start(0); // spawned by the root
        let _root = {
            let (g, owner) = (g.clone(), owner.clone());
            thread::spawn(move || {
                g.finish_tree(&owner);
                g.exit()
            })
        };
        let _first = {
            let (g, owner, child_done) = (g.clone(), owner.clone(), child_done.clone());
            thread::spawn(move || {
                // The first task spawns a second one before it ends.
                g.start(1);
                let child = {
                    let (g, owner, child_done) = (g.clone(), owner.clone(), child_done.clone());
                    thread::spawn(move || {
                        child_done.store(true, SeqCst);
                        g.finish_detached(1, &owner);
                    })
                };
                g.finish_detached(0, &owner);
                child.join().unwrap();
                g.exit();
            })
        };
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
        let g = Group::new();
        let owner = thread::current();
        let c_done = Arc::new(AtomicBool::new(false));
        g.start(0); // A, started during set-up
        let _a = {
            let (g, owner, c_done) = (g.clone(), owner.clone(), c_done.clone());
            thread::spawn(move || {
                g.start(1); // B
                let b = {
                    let (g, owner, c_done) = (g.clone(), owner.clone(), c_done.clone());
                    thread::spawn(move || {
                        g.start(0); // C
                        let c = {
                            let (g, owner, c_done) = (g.clone(), owner.clone(), c_done.clone());
                            thread::spawn(move || {
                                c_done.store(true, SeqCst);
                                g.finish_detached(0, &owner);
                            })
                        };
                        g.finish_detached(1, &owner);
                        c.join().unwrap();
                    })
                };
                g.finish_detached(0, &owner);
                b.join().unwrap();
                g.exit();
            })
        };
        g.finish_tree(&owner); // the owner releases its hold
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
        let g = Group::new();
        let owner = thread::current();
        g.start(0);
        g.start(0);
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let (g, owner) = (g.clone(), owner.clone());
                thread::spawn(move || {
                    g.finish_detached(0, &owner);
                    g.exit()
                })
            })
            .collect();
        g.finish_tree(&owner);
        g.wait();
        drop(ts);
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
        let g = Group::new();
        let owner = thread::current();
        let done = Arc::new(AtomicUsize::new(0));
        g.start(1); // A
        g.start(1); // B
        let _a = {
            let (g, owner, done) = (g.clone(), owner.clone(), done.clone());
            thread::spawn(move || {
                g.start(0); // P, run inline after A's start returns
                done.fetch_add(1, SeqCst);
                g.finish_detached(0, &owner); // P
                g.finish_detached(1, &owner); // A
                g.exit();
            })
        };
        let _b = {
            let (g, owner, done) = (g.clone(), owner.clone(), done.clone());
            thread::spawn(move || {
                g.start(0); // Q
                let q = {
                    let (g, owner, done) = (g.clone(), owner.clone(), done.clone());
                    thread::spawn(move || {
                        g.start(1); // R, run inline
                        done.fetch_add(1, SeqCst);
                        g.finish_detached(1, &owner); // R
                        done.fetch_add(1, SeqCst);
                        g.finish_detached(0, &owner); // Q
                    })
                };
                g.finish_detached(1, &owner); // B
                q.join().unwrap();
                g.exit();
            })
        };
        g.finish_tree(&owner);
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
        let g = Group::new();
        let owner = thread::current();
        let out: Arc<[UnsafeCell<usize>; 2]> = Arc::new([UnsafeCell::new(0), UnsafeCell::new(0)]);
        g.start(0);
        g.start(0);
        let ts: Vec<_> = (0..2)
            .map(|i| {
                let (g, owner, out) = (g.clone(), owner.clone(), out.clone());
                thread::spawn(move || {
                    // SAFETY (model): each task writes its own cell.
                    out[i].with_mut(|p| unsafe { *p = i + 1 });
                    g.finish_detached(0, &owner);
                    g.exit();
                })
            })
            .collect();
        g.finish_tree(&owner);
        g.wait();
        for i in 0..2 {
            // The owner reads what the tasks wrote (loom flags a race if
            // the end did not happen after both writes).
            assert_eq!(out[i].with(|p| unsafe { *p }), i + 1);
        }
        drop(ts);
        g.await_exits(2);
    });
}
