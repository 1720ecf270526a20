//! Freezing after the barrier: how [`run_par_then_freeze`](super::run_par_then_freeze)
//! gets frozen values out of a session without letting LVars escape.

/// A freeze that the runner performs after every task has finished.
///
/// Made by [`Freeze::then_freeze`]; it can only be run by
/// `run_par_then_freeze` (returned from any other runner it is inert).
#[must_use = "return it from a run_par_then_freeze body"]
pub struct DeferredFreeze<T>(Box<dyn FnOnce() -> T + Send>);

impl<T> DeferredFreeze<T> {
    pub(crate) fn new(f: impl FnOnce() -> T + Send + 'static) -> Self {
        Self(Box::new(f))
    }

    pub(crate) fn run(self) -> T {
        (self.0)()
    }
}

impl<T> std::fmt::Debug for DeferredFreeze<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeferredFreeze")
    }
}

/// LVars (and tuples of them) that can be frozen after the session.
pub trait Freeze {
    /// The frozen, read-only value (e.g. the lattice state; sets and maps
    /// iterate in sorted order, the same in every run).
    type Frozen: Send + 'static;

    /// Asks the runner to freeze this after the session's barrier.
    fn then_freeze(self) -> DeferredFreeze<Self::Frozen>;
}

impl<A: Freeze, B: Freeze> Freeze for (A, B) {
    type Frozen = (A::Frozen, B::Frozen);

    fn then_freeze(self) -> DeferredFreeze<Self::Frozen> {
        let (a, b) = (self.0.then_freeze(), self.1.then_freeze());
        DeferredFreeze::new(move || (a.run(), b.run()))
    }
}

impl<A: Freeze, B: Freeze, C: Freeze> Freeze for (A, B, C) {
    type Frozen = (A::Frozen, B::Frozen, C::Frozen);

    fn then_freeze(self) -> DeferredFreeze<Self::Frozen> {
        let (a, b, c) = (self.0.then_freeze(), self.1.then_freeze(), self.2.then_freeze());
        DeferredFreeze::new(move || (a.run(), b.run(), c.run()))
    }
}

impl<T: Freeze> Freeze for Vec<T> {
    type Frozen = Vec<T::Frozen>;

    fn then_freeze(self) -> DeferredFreeze<Self::Frozen> {
        let parts: Vec<_> = self.into_iter().map(Freeze::then_freeze).collect();
        DeferredFreeze::new(move || parts.into_iter().map(DeferredFreeze::run).collect())
    }
}
