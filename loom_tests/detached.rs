//! Detached-task counting (`src/sched/detached.rs`, a nonzero indicator:
//! per-stripe leaves and a root counting the nonzero ones): a group's owner
//! is woken when the last task ends (a detached finish after the tree count
//! reached zero, or the tree after the last detached finish), never sees
//! the group finished while a detached task started by another one still
//! runs (also when a stripe empties and fills again meanwhile), and never
//! frees the group while a finisher can still touch it. The owner parks
//! (loom reports a deadlock if it is never woken); the tree count and the
//! owner's flag stand in for the group's. A task's finish names the stripe
//! it was started on, as the task header does.

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

use lvars::sched::loom_exports::DetachedCount;

/// A group: the attached tree's count (1: the root is running), the
/// detached counts, and "freed" (set when the owner returns).
struct Group {
    tree: AtomicUsize,
    detached: DetachedCount,
    freed: AtomicBool,
}

impl Group {
    fn new() -> Arc<Self> {
        Arc::new(Group {
            tree: AtomicUsize::new(1),
            detached: DetachedCount::new(),
            freed: AtomicBool::new(false),
        })
    }

    /// A detached task's end on `stripe`, waking `owner` if it saw the
    /// tree done.
    fn finish_detached(&self, stripe: usize, owner: &thread::Thread) {
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

#[test]
fn a_detached_finish_after_the_tree_wakes_the_owner() {
    loom::model(|| {
        let g = Group::new();
        let owner = thread::current();
        g.detached.start(0);
        let task = {
            let (g, owner) = (g.clone(), owner.clone());
            thread::spawn(move || g.finish_detached(0, &owner))
        };
        let root = {
            let (g, owner) = (g.clone(), owner.clone());
            thread::spawn(move || g.finish_tree(&owner))
        };
        g.wait();
        task.join().unwrap();
        root.join().unwrap();
    });
}

#[test]
fn a_detached_task_started_by_another_keeps_the_group_open() {
    loom::model(|| {
        let g = Group::new();
        let owner = thread::current();
        let child_done = Arc::new(AtomicBool::new(false));
        g.detached.start(0); // spawned by the root
        let root = {
            let (g, owner) = (g.clone(), owner.clone());
            thread::spawn(move || g.finish_tree(&owner))
        };
        let first = {
            let (g, owner, child_done) = (g.clone(), owner.clone(), child_done.clone());
            thread::spawn(move || {
                // The first task spawns a second one before it ends.
                g.detached.start(1);
                let child = {
                    let (g, owner, child_done) = (g.clone(), owner.clone(), child_done.clone());
                    thread::spawn(move || {
                        child_done.store(true, SeqCst);
                        g.finish_detached(1, &owner);
                    })
                };
                g.finish_detached(0, &owner);
                child.join().unwrap();
            })
        };
        g.wait();
        assert!(child_done.load(SeqCst), "the owner returned while a detached task ran");
        first.join().unwrap();
        root.join().unwrap();
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
        g.detached.start(0); // A, started during set-up
        let a = {
            let (g, owner, c_done) = (g.clone(), owner.clone(), c_done.clone());
            thread::spawn(move || {
                g.detached.start(1); // B
                let b = {
                    let (g, owner, c_done) = (g.clone(), owner.clone(), c_done.clone());
                    thread::spawn(move || {
                        g.detached.start(0); // C
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
            })
        };
        g.finish_tree(&owner); // the owner releases its hold
        g.wait();
        assert!(c_done.load(SeqCst), "the owner returned while a detached task ran");
        a.join().unwrap();
    });
}

/// Two tasks on one stripe finish concurrently: exactly the one that
/// empties the stripe takes it off the root and wakes the owner.
#[test]
fn two_finishes_on_one_stripe_wake_the_owner_once_it_is_empty() {
    loom::model(|| {
        let g = Group::new();
        let owner = thread::current();
        g.detached.start(0);
        g.detached.start(0);
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let (g, owner) = (g.clone(), owner.clone());
                thread::spawn(move || g.finish_detached(0, &owner))
            })
            .collect();
        g.finish_tree(&owner);
        g.wait();
        for t in ts {
            t.join().unwrap();
        }
    });
}
