//! The lock-free list of parked gets of one LVar.
//!
//! # Protocol
//!
//! *Getter* ([`WaiterList::register`] then a re-check by the caller): push a
//! node (waker + what it waits for) at the head with a `SeqCst` CAS, issue
//! a `SeqCst` fence, then read the LVar's state once more. If the threshold
//! is met now, withdraw the node ([`WaitHandle::cancel`]) and return ready.
//!
//! *Putter*: publish the new (joined) state with a `SeqCst` CAS, issue a
//! `SeqCst` fence, then [`WaiterList::wake_matching`]: for every waiting
//! node whose threshold the *current joined state* meets, move its status
//! `WAITING -> FIRED` with a CAS and wake it.
//!
//! **Invariant (no lost wake-up).** The getter's push and the putter's
//! state publication are each followed by a `SeqCst` fence and a read of the
//! other side's location, so at least one side sees the other: either the
//! putter's scan finds the node, or the getter's re-check sees the state.
//!
//! **Invariant (exactly once).** A node's status leaves `WAITING` exactly
//! once, by one CAS: to `FIRED` (a putter wakes it) or to `CANCELLED` (the
//! getter withdrew it or was dropped). The get future completes once: on the
//! re-check or on the first poll after `FIRED`; extra wake-ups of its task
//! are harmless polls.
//!
//! **Invariant (joined state).** Putters test waiters against the state they
//! load *after* publishing, never against the put's argument, so a
//! threshold reached only by the join of several puts is seen.
//!
//! # Memory
//!
//! Insertion only happens at the head; removal is Harris-Michael: a node
//! that left `WAITING` is marked (low bit of its `next`) and unlinked by any
//! scanner with a CAS on its predecessor. Each node has two references: the
//! list's (dropped through crossbeam-epoch after the unlink, so concurrent
//! scanners never see freed memory) and the get future's (dropped when the
//! future is). The last one frees the node.
//!
//! The waker goes earlier, so that a fired or withdrawn node waiting for
//! the epoch does not keep its task alive: only the getter (`will_wake`)
//! and the putter that fired the node read it. The firer moves the status
//! on to `WOKEN` (`Release`) once it has woken the task; the getter, when
//! its handle is dropped, drops the waker if the status is `CANCELLED` (no
//! putter will read it) or `WOKEN` (`Acquire`: the firer is done with it).
//! If the firer is still waking, the waker stays until the node is freed.
//!
//! Modelled by `loom_tests/waiters.rs`.

use std::cell::UnsafeCell;
use std::ptr::{self, NonNull};
use std::task::Waker;

use super::reclaim::{self, Guard};
use crate::sync::{fence, AtomicPtr, AtomicU8, Ordering::*};

const WAITING: u8 = 0;
const FIRED: u8 = 1;
const CANCELLED: u8 = 2;
/// Fired, and the firer has finished waking (and reading the waker).
const WOKEN: u8 = 3;

const MARK: usize = 1;

struct Node<P> {
    /// Next node; low bit set = this node is logically removed.
    next: AtomicPtr<Node<P>>,
    status: AtomicU8,
    refs: AtomicU8,
    /// `None` once the getter dropped it (see "Memory" above).
    waker: UnsafeCell<Option<Waker>>,
    payload: P,
}

// Nodes must leave the low bit free for the mark.
#[repr(align(2))]
struct Aligned<P>(Node<P>);

fn tagged<P>(p: *mut Node<P>) -> *mut Node<P> {
    (p as usize | MARK) as *mut Node<P>
}

fn untagged<P>(p: *mut Node<P>) -> *mut Node<P> {
    (p as usize & !MARK) as *mut Node<P>
}

fn is_marked<P>(p: *mut Node<P>) -> bool {
    p as usize & MARK != 0
}

/// Drops one of the two references of a node.
///
/// # Safety
/// The caller owns a reference to a live node.
unsafe fn release<P>(node: *mut Node<P>) {
    // SAFETY: caller contract.
    if unsafe { (*node).refs.fetch_sub(1, AcqRel) } == 1 {
        // SAFETY: last reference; allocated as `Aligned<P>` in `register`.
        drop(unsafe { Box::from_raw(node as *mut Aligned<P>) });
    }
}

/// Parked gets of one LVar, each waiting for a condition described by `P`.
pub(crate) struct WaiterList<P> {
    head: AtomicPtr<Node<P>>,
}

// SAFETY: nodes are shared between threads only through atomics; the waker
// is Send + Sync and the payload is required to be.
unsafe impl<P: Send + Sync> Send for WaiterList<P> {}
// SAFETY: as above.
unsafe impl<P: Send + Sync> Sync for WaiterList<P> {}

/// The get side's reference to its node.
pub(crate) struct WaitHandle<P> {
    node: NonNull<Node<P>>,
}

// SAFETY: see WaiterList.
unsafe impl<P: Send + Sync> Send for WaitHandle<P> {}
// SAFETY: see WaiterList.
unsafe impl<P: Send + Sync> Sync for WaitHandle<P> {}

impl<P> WaiterList<P> {
    pub(crate) fn new() -> Self {
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Pushes a waiting node, then issues the `SeqCst` fence of the
    /// protocol: the caller must re-check the state afterwards.
    pub(crate) fn register(&self, waker: Waker, payload: P) -> WaitHandle<P> {
        let node = Box::into_raw(Box::new(Aligned(Node {
            next: AtomicPtr::new(ptr::null_mut()),
            status: AtomicU8::new(WAITING),
            refs: AtomicU8::new(2),
            waker: UnsafeCell::new(Some(waker)),
            payload,
        }))) as *mut Node<P>;
        let mut head = self.head.load(Relaxed);
        loop {
            // SAFETY: `node` is ours until the CAS publishes it.
            unsafe { (*node).next.store(head, Relaxed) };
            match self.head.compare_exchange_weak(head, node, SeqCst, Relaxed) {
                Ok(_) => break,
                Err(actual) => head = actual,
            }
        }
        fence(SeqCst);
        WaitHandle {
            // SAFETY: from Box::into_raw.
            node: unsafe { NonNull::new_unchecked(node) },
        }
    }

    /// Whether no node is linked (a putter may then skip the scan). Call
    /// after the putter's `SeqCst` fence.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(SeqCst).is_null()
    }

    /// Fires and wakes every waiting node for which `satisfied` holds, and
    /// unlinks nodes that are no longer waiting. `satisfied` must test the
    /// LVar's current state (see the joined-state invariant).
    pub(crate) fn wake_matching(&self, mut satisfied: impl FnMut(&P) -> bool) {
        let guard = reclaim::pin();
        'retry: loop {
            let mut prev: &AtomicPtr<Node<P>> = &self.head;
            let mut curr = prev.load(Acquire);
            while !curr.is_null() {
                // SAFETY: reachable nodes are alive while we are pinned
                // (their list reference is dropped only through the epoch).
                let c = unsafe { &*curr };
                let next = c.next.load(Acquire);
                if is_marked(next) {
                    // `curr` is logically removed: unlink it.
                    match prev.compare_exchange(curr, untagged(next), AcqRel, Acquire) {
                        Ok(_) => {
                            // SAFETY: unlinked by us, exactly once.
                            unsafe { defer_release(&guard, curr) };
                            curr = untagged(next);
                            continue;
                        }
                        Err(_) => continue 'retry,
                    }
                }
                let mut status = c.status.load(Acquire);
                if status == WAITING && satisfied(&c.payload) {
                    match c.status.compare_exchange(WAITING, FIRED, AcqRel, Acquire) {
                        Ok(_) => {
                            // SAFETY: we fired it, so the getter drops the
                            // waker only after our `WOKEN` store below.
                            if let Some(w) = unsafe { &*c.waker.get() } {
                                w.wake_by_ref();
                            }
                            c.status.store(WOKEN, Release);
                            status = WOKEN;
                        }
                        Err(s) => status = s,
                    }
                }
                if status != WAITING {
                    // Mark it; the next iteration unlinks it. Only the mark
                    // or an unlink of our successor can change `next`.
                    let _ = c.next.compare_exchange(next, tagged(next), AcqRel, Acquire);
                    continue;
                }
                prev = &c.next;
                curr = next;
            }
            return;
        }
    }
}

/// # Safety
/// `node` was just unlinked by the caller; its list reference is dropped
/// once no pinned thread can still reach it.
unsafe fn defer_release<P>(guard: &Guard, node: *mut Node<P>) {
    let node = node as usize;
    // SAFETY: after the epoch advances nobody holds a pointer from the list.
    unsafe { guard.defer_unchecked(move || release(node as *mut Node<P>)) };
}

impl<P> Drop for WaiterList<P> {
    fn drop(&mut self) {
        let _exclusive = reclaim::exclusive();
        let mut curr = untagged(self.head.load(Relaxed));
        while !curr.is_null() {
            // SAFETY: `&mut self`: no scanner runs; every linked node still
            // holds its list reference, which we drop here.
            let next = untagged(unsafe { (*curr).next.load(Relaxed) });
            // SAFETY: as above.
            unsafe { release(curr) };
            curr = next;
        }
    }
}

impl<P> WaitHandle<P> {
    fn node(&self) -> &Node<P> {
        // SAFETY: the handle owns a reference.
        unsafe { self.node.as_ref() }
    }

    /// Withdraws the node. Returns `false` if a putter fired it first.
    pub(crate) fn cancel(&self) -> bool {
        match self.node().status.compare_exchange(WAITING, CANCELLED, AcqRel, Acquire) {
            Ok(_) => true,
            Err(s) => s == CANCELLED,
        }
    }

    /// What the node waits for.
    pub(crate) fn payload(&self) -> &P {
        &self.node().payload
    }

    /// Whether `waker` would wake the same task as the registered one.
    pub(crate) fn will_wake(&self, waker: &Waker) -> bool {
        // SAFETY: only this handle ever writes the slot (in `drop`); a
        // firer only reads it.
        unsafe { &*self.node().waker.get() }
            .as_ref()
            .is_some_and(|w| w.will_wake(waker))
    }
}

impl<P> Drop for WaitHandle<P> {
    fn drop(&mut self) {
        if self.cancel() || self.node().status.load(Acquire) == WOKEN {
            // SAFETY: no putter reads the waker any more: none fired the
            // node (cancelled), or the one that did has finished (`WOKEN`,
            // acquired). Other threads touch only `next`, `status`, `refs`
            // and the payload.
            drop(unsafe { (*self.node().waker.get()).take() });
        }
        // SAFETY: the handle's own reference.
        unsafe { release(self.node.as_ptr()) };
    }
}
