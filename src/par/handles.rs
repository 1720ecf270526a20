//! Session-level LVar handles: the core variables plus the session brand
//! (so they cannot escape) and error reporting (a failed put fails the
//! whole session, so which put failed never leaks into a result).

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use super::freeze::{DeferredFreeze, Freeze};
use super::session::{EffectLevel, Par, QuasiDet, Session};
use crate::data::{RawIVar, RawMaxCounter};
use crate::error::Error;
use crate::lattice::Lattice;
use crate::lvar::{RawLVar, ThresholdSet};

type Brand<'s> = PhantomData<fn(&'s ()) -> &'s ()>;

/// A lattice variable of a session: puts join, gets wait for thresholds.
///
/// Cloning is cheap (a reference count); clones share the variable.
pub struct LVar<'s, L: Lattice> {
    raw: Arc<RawLVar<L>>,
    session: &'s Session,
    _brand: Brand<'s>,
}

impl<L: Lattice> Clone for LVar<'_, L> {
    fn clone(&self) -> Self {
        Self {
            raw: Arc::clone(&self.raw),
            session: self.session,
            _brand: PhantomData,
        }
    }
}

impl<L: Lattice> std::fmt::Debug for LVar<'_, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LVar")
    }
}

impl<'s, L: Lattice + Send + Sync + 'static> LVar<'s, L> {
    /// A new variable at bottom.
    pub fn new<E: EffectLevel>(p: Par<'s, E>) -> Self {
        Self {
            raw: Arc::new(RawLVar::new()),
            session: p.session,
            _brand: PhantomData,
        }
    }

    /// Joins `value` into the state. A put that would reach top
    /// (`ConflictingPut`) or change a frozen variable (`PutAfterFreeze`)
    /// fails, and so does the session.
    pub fn put(&self, value: L) -> Result<(), Error> {
        self.raw.put(&value).map_err(|e| self.session.fail(e))
    }

    /// Waits until the state reaches an element of `thresholds`, and
    /// resolves to that element.
    pub fn get(&self, thresholds: ThresholdSet<L>) -> impl Future<Output = L> + Send + '_ {
        self.raw.get(thresholds)
    }

    /// Waits until the state is at or above `threshold`.
    pub fn get_at_least(&self, threshold: L) -> Result<impl Future<Output = L> + Send + '_, Error> {
        self.raw.get_at_least(threshold)
    }

    /// Freezes the variable and returns its exact state (quasi-deterministic
    /// sessions only).
    pub fn freeze(&self, _proof: &Par<'s, QuasiDet>) -> L {
        self.raw.freeze()
    }
}

impl<L: Lattice + Send + Sync + 'static> Freeze for LVar<'_, L> {
    type Frozen = L;

    fn then_freeze(self) -> DeferredFreeze<L> {
        let raw = self.raw;
        DeferredFreeze::new(move || raw.freeze())
    }
}

/// A single-assignment variable of a session.
pub struct IVar<'s, T> {
    raw: Arc<RawIVar<T>>,
    session: &'s Session,
    _brand: Brand<'s>,
}

impl<T> Clone for IVar<'_, T> {
    fn clone(&self) -> Self {
        Self {
            raw: Arc::clone(&self.raw),
            session: self.session,
            _brand: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for IVar<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IVar")
    }
}

impl<'s, T: PartialEq + Send + Sync + 'static> IVar<'s, T> {
    /// An empty IVar.
    pub fn new<E: EffectLevel>(p: Par<'s, E>) -> Self {
        Self {
            raw: Arc::new(RawIVar::new()),
            session: p.session,
            _brand: PhantomData,
        }
    }

    /// Sets the value; an equal second put is a no-op, a different one is a
    /// `ConflictingPut` that fails the session.
    pub fn put(&self, value: T) -> Result<(), Error> {
        self.raw.put(value).map_err(|e| self.session.fail(e))
    }

    /// Waits for the value.
    pub fn get(&self) -> impl Future<Output = &T> + Send + '_ {
        self.raw.get()
    }

    /// Freezes the IVar and returns its value, if set (quasi-deterministic
    /// sessions only).
    pub fn freeze(&self, _proof: &Par<'s, QuasiDet>) -> Option<&T> {
        self.raw.freeze()
    }
}

impl<T: PartialEq + Clone + Send + Sync + 'static> Freeze for IVar<'_, T> {
    type Frozen = Option<T>;

    fn then_freeze(self) -> DeferredFreeze<Option<T>> {
        let raw = self.raw;
        DeferredFreeze::new(move || raw.freeze().cloned())
    }
}

/// A counter that only goes up (the max lattice over `u64`).
pub struct MaxCounter<'s> {
    raw: Arc<RawMaxCounter>,
    session: &'s Session,
    _brand: Brand<'s>,
}

impl Clone for MaxCounter<'_> {
    fn clone(&self) -> Self {
        Self {
            raw: Arc::clone(&self.raw),
            session: self.session,
            _brand: PhantomData,
        }
    }
}

impl std::fmt::Debug for MaxCounter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MaxCounter")
    }
}

impl<'s> MaxCounter<'s> {
    /// A counter at 0.
    pub fn new<E: EffectLevel>(p: Par<'s, E>) -> Self {
        Self {
            raw: Arc::new(RawMaxCounter::new()),
            session: p.session,
            _brand: PhantomData,
        }
    }

    /// Raises the counter to at least `n`.
    pub fn put(&self, n: u64) -> Result<(), Error> {
        self.raw.put(n).map_err(|e| self.session.fail(e))
    }

    /// Waits until the counter is at least `n`.
    pub fn wait_at_least(&self, n: u64) -> impl Future<Output = ()> + Send + '_ {
        self.raw.wait_at_least(n)
    }

    /// Freezes and returns the exact value (quasi-deterministic sessions only).
    pub fn freeze(&self, _proof: &Par<'s, QuasiDet>) -> u64 {
        self.raw.freeze()
    }
}

impl Freeze for MaxCounter<'_> {
    type Frozen = u64;

    fn then_freeze(self) -> DeferredFreeze<u64> {
        let raw = self.raw;
        DeferredFreeze::new(move || raw.freeze())
    }
}
