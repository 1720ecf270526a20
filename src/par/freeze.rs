//! Freezing after the barrier: how [`run_par_then_freeze`](super::run_par_then_freeze)
//! gets frozen values out of a session without letting LVars escape.

use std::marker::PhantomData;

/// A freeze that the runner performs after every task has finished.
///
/// Made by [`Freeze::then_freeze`] and branded with the session's lifetime
/// `'s`, like the LVars it freezes: only `run_par_then_freeze`, whose body
/// may return it, can run it, and no other runner can return it (so the
/// variables behind it, and handler closures attached to them, never
/// outlive their session).
#[must_use = "return it from a run_par_then_freeze body"]
pub struct DeferredFreeze<'s, T> {
    freeze: Erased<T>,
    _brand: PhantomData<fn(&'s ()) -> &'s ()>,
}

/// The freeze without its brand, for the runner.
pub(crate) struct Erased<T>(Box<dyn FnOnce() -> T + Send>);

impl<T> Erased<T> {
    pub(crate) fn run(self) -> T {
        (self.0)()
    }
}

impl<'s, T> DeferredFreeze<'s, T> {
    pub(crate) fn new(f: impl FnOnce() -> T + Send + 'static) -> Self {
        Self {
            freeze: Erased(Box::new(f)),
            _brand: PhantomData,
        }
    }

    /// A freeze that borrows session data (`'s`). Sound because a
    /// deferred freeze only ever runs inside its session: only
    /// `run_par_then_freeze` accepts one, and `run_session` runs it before
    /// the session ends.
    pub(crate) fn new_in_session(f: impl FnOnce() -> T + Send + 's) -> Self {
        let f: Box<dyn FnOnce() -> T + Send + 's> = Box::new(f);
        // SAFETY: only the lifetime is erased; see above: the closure runs
        // (or is dropped) while the session, and so every `'s` borrow, is
        // alive.
        let f: Box<dyn FnOnce() -> T + Send + 'static> = unsafe { std::mem::transmute(f) };
        Self {
            freeze: Erased(f),
            _brand: PhantomData,
        }
    }

    pub(crate) fn erase(self) -> Erased<T> {
        self.freeze
    }
}

impl<T> std::fmt::Debug for DeferredFreeze<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeferredFreeze")
    }
}

/// LVars of session `'s` (and tuples and vectors of them) that can be
/// frozen after the session.
pub trait Freeze<'s> {
    /// The frozen, read-only value (e.g. the lattice state; sets and maps
    /// iterate in sorted order, the same in every run).
    type Frozen: Send + 'static;

    /// Asks the runner to freeze this after the session's barrier.
    fn then_freeze(self) -> DeferredFreeze<'s, Self::Frozen>;
}

impl<'s, A: Freeze<'s>, B: Freeze<'s>> Freeze<'s> for (A, B) {
    type Frozen = (A::Frozen, B::Frozen);

    fn then_freeze(self) -> DeferredFreeze<'s, Self::Frozen> {
        let (a, b) = (self.0.then_freeze().erase(), self.1.then_freeze().erase());
        DeferredFreeze::new(move || (a.run(), b.run()))
    }
}

impl<'s, A: Freeze<'s>, B: Freeze<'s>, C: Freeze<'s>> Freeze<'s> for (A, B, C) {
    type Frozen = (A::Frozen, B::Frozen, C::Frozen);

    fn then_freeze(self) -> DeferredFreeze<'s, Self::Frozen> {
        let (a, b, c) = (
            self.0.then_freeze().erase(),
            self.1.then_freeze().erase(),
            self.2.then_freeze().erase(),
        );
        DeferredFreeze::new(move || (a.run(), b.run(), c.run()))
    }
}

impl<'s, T: Freeze<'s>> Freeze<'s> for Vec<T> {
    type Frozen = Vec<T::Frozen>;

    fn then_freeze(self) -> DeferredFreeze<'s, Self::Frozen> {
        let parts: Vec<_> = self.into_iter().map(|x| x.then_freeze().erase()).collect();
        DeferredFreeze::new(move || parts.into_iter().map(Erased::run).collect())
    }
}
