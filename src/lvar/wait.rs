//! The one future behind every threshold get: check, register, re-check.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::waiters::{WaitHandle, WaiterList};

/// Something with a waiter list and a monotone condition per query.
pub(crate) trait Waitable {
    /// What one get waits for (a threshold set, a minimum count, ...).
    type Query: Clone;
    /// What the get resolves to (never the exact state).
    type Output;
    fn waiters(&self) -> &WaiterList<Self::Query>;
    /// `Some` once the current state satisfies `query`. Must be monotone:
    /// once `Some`, always `Some` with the same value.
    fn check(&self, query: &Self::Query) -> Option<Self::Output>;

    /// The putter side: after publishing a state (and a `SeqCst` fence),
    /// fire every waiter the current state satisfies.
    fn wake_satisfied(&self) {
        let waiters = self.waiters();
        if !waiters.is_empty() {
            waiters.wake_matching(|q| self.check(q).is_some());
        }
    }
}

/// Resolves once `src.check(query)` holds; follows the waiter protocol of
/// `waiters.rs` (register, then re-check; exactly one completion).
pub(crate) struct WaitFuture<W: Waitable> {
    /// A reference type (`&RawLVar<L>`, ...), copied into the future.
    src: W,
    /// Held until registration moves it into the waiter node.
    query: Option<W::Query>,
    handle: Option<WaitHandle<W::Query>>,
}

impl<W: Waitable> WaitFuture<W> {
    pub(crate) fn new(src: W, query: W::Query) -> Self {
        Self {
            src,
            query: Some(query),
            handle: None,
        }
    }
}

impl<W: Waitable> Unpin for WaitFuture<W> {}

impl<W: Waitable> Future for WaitFuture<W> {
    type Output = W::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<W::Output> {
        let this = &mut *self;
        let src = &this.src;
        if let Some(h) = &this.handle {
            // Parked before: the state is monotone, so check it directly,
            // whether or not a putter fired us.
            if let Some(out) = src.check(h.payload()) {
                h.cancel();
                this.handle = None;
                return Poll::Ready(out);
            }
            if h.will_wake(cx.waker()) {
                return Poll::Pending;
            }
            // Polled with another waker: withdraw and register afresh.
            this.query = Some(h.payload().clone());
            this.handle = None;
        }
        let query = this.query.take().expect("threshold get polled after it completed");
        if let Some(out) = src.check(&query) {
            return Poll::Ready(out);
        }
        let handle = src.waiters().register(cx.waker().clone(), query);
        // The re-check of the waiter protocol.
        if let Some(out) = src.check(handle.payload()) {
            handle.cancel();
            return Poll::Ready(out);
        }
        this.handle = Some(handle);
        Poll::Pending
    }
}
