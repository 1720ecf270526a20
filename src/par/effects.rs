//! Effect signatures: which effects a piece of session code may use.
//!
//! As in LVish, a computation's type says what it may do. Five effects are
//! tracked, each a flag of [`Effects`]:
//!
//! | effect   | trait          | what it allows                                                  |
//! |----------|----------------|-----------------------------------------------------------------|
//! | put      | [`HasPut`]     | joining into a variable: `put`, `insert`, `add`, `remove`, ...   |
//! | get      | [`HasGet`]     | threshold reads: `get`, `wait_*`, handlers, memo lookups         |
//! | freeze   | [`HasFreeze`]  | `freeze` (quasi-deterministic: reads the exact state)            |
//! | bump     | [`HasBump`]    | non-idempotent increments: `Counter::bump`, `PNCounter`          |
//! | I/O      | [`HasIO`]      | [`Par::io`]: arbitrary side effects                              |
//!
//! Freeze and I/O are effects of the *session handle* [`Par<'s, E>`]: the
//! runner decides them. [`run_par`](crate::run_par) and
//! [`run_par_then_freeze`](crate::run_par_then_freeze) hand out [`Det`]
//! (put, get, bump), [`run_par_quasi_det`](crate::run_par_quasi_det) hands
//! out [`QuasiDet`] (also freeze) and [`run_par_io`](crate::run_par_io)
//! hands out [`FullEffects`]. Put, get and bump are effects of the *variable
//! handles*: a handle made with a `Par<'s, E>` may do what `E` allows of
//! them, and [`restrict`](crate::IVar::restrict) narrows a handle (or
//! [`Par::restrict`] a session handle) before passing it on. Nothing can
//! widen a signature, so a function's parameter types bound what it can do.
//!
//! ```
//! use lvars::effects::{HasGet, HasPut, ReadOnly};
//! use lvars::{run_par, IVar, Par};
//!
//! // May only read `input` and only write `output`: the signature says so.
//! async fn double<'s, R: HasGet, W: HasPut>(input: IVar<'s, u32, R>, output: IVar<'s, u32, W>) {
//!     let v = *input.get().await;
//!     output.put(2 * v).unwrap();
//! }
//!
//! let r = run_par(|p: Par<'_>| Box::pin(async move {
//!     let (a, b) = (IVar::new(p), IVar::new(p));
//!     p.fork(double(a.restrict::<ReadOnly>(), b.clone()));
//!     a.put(21).unwrap();
//!     *b.get().await
//! }));
//! assert_eq!(r, Ok(42));
//! ```
//!
//! # Misuse is a compile error
//!
//! A read-only handle cannot put:
//!
//! ```compile_fail,E0277
//! use lvars::effects::HasGet;
//! fn bad<E: HasGet>(iv: &lvars::IVar<'_, u32, E>) {
//!     iv.put(1).unwrap(); // error: `E` does not allow `put`
//! }
//! ```
//!
//! A write-only handle cannot get:
//!
//! ```compile_fail,E0277
//! use lvars::effects::WriteOnly;
//! fn bad<'s>(iv: lvars::IVar<'s, u32, WriteOnly>) -> impl std::future::Future + 's {
//!     async move { *iv.get().await }
//! }
//! ```
//!
//! A handle without bump cannot bump a counter (puts and bumps are
//! separate effects):
//!
//! ```compile_fail,E0277
//! use lvars::effects::HasPut;
//! fn bad<E: HasPut>(c: &lvars::Counter<'_, E>) {
//!     c.bump(1).unwrap();
//! }
//! ```
//!
//! A deterministic session cannot freeze, nor do I/O:
//!
//! ```compile_fail,E0277
//! let _ = lvars::run_par(|p| Box::pin(async move {
//!     let iv = lvars::IVar::<u8>::new(p);
//!     iv.freeze(&p).copied()
//! }));
//! ```
//!
//! ```compile_fail,E0277
//! let _ = lvars::run_par(|p| Box::pin(async move { p.io(|| println!("side effect")) }));
//! ```
//!
//! A quasi-deterministic session may freeze but still not do I/O:
//!
//! ```compile_fail,E0277
//! let _ = lvars::run_par_quasi_det(|p| Box::pin(async move { p.io(|| println!("side effect")) }));
//! ```
//!
//! A signature cannot be widened, neither on a session handle nor on a
//! variable handle:
//!
//! ```compile_fail,E0277
//! use lvars::QuasiDet;
//! let _ = lvars::run_par(|p| Box::pin(async move {
//!     let q = p.restrict::<QuasiDet>(); // Det does not contain freeze
//! }));
//! ```
//!
//! ```compile_fail,E0277
//! use lvars::effects::{ReadOnly, WriteOnly};
//! let _ = lvars::run_par(|p| Box::pin(async move {
//!     let iv = lvars::IVar::<u8>::new(p).restrict::<ReadOnly>();
//!     let w = iv.restrict::<WriteOnly>(); // ReadOnly does not contain put
//! }));
//! ```
//!
//! A function that needs get cannot be given a session handle that only
//! puts:
//!
//! ```compile_fail,E0277
//! use lvars::effects::{HasGet, WriteOnly};
//! use lvars::{IVar, Par};
//! fn reader<E: HasGet>(p: Par<'_, E>) -> IVar<'_, u8, E::Data> { IVar::new(p) }
//! let _ = lvars::run_par(|p| Box::pin(async move {
//!     let _ = reader(p.restrict::<WriteOnly>());
//! }));
//! ```
//!
//! The I/O runner allows everything:
//!
//! ```
//! let r = lvars::run_par_io(|p| Box::pin(async move {
//!     let iv = lvars::IVar::new(p);
//!     iv.put(7u8).unwrap();
//!     p.io(|| eprintln!("I/O is allowed here"));
//!     iv.freeze(&p).copied()
//! }));
//! assert_eq!(r, Ok(Some(7)));
//! ```
//!
//! [`Par<'s, E>`]: crate::Par
//! [`Par::io`]: crate::Par::io
//! [`Par::restrict`]: crate::Par::restrict

/// An effect signature: one flag per effect (put, get, freeze, bump, I/O).
///
/// Use the aliases ([`Det`], [`QuasiDet`], [`FullEffects`], [`ReadOnly`],
/// [`WriteOnly`], [`BumpOnly`]) or bounds ([`HasPut`], ...) rather than
/// spelling the flags out. This type is never constructed; it only appears
/// as a type parameter.
pub struct Effects<const PUT: bool, const GET: bool, const FREEZE: bool, const BUMP: bool, const IO: bool>(
    std::convert::Infallible,
);

/// Deterministic code: put, get and bump; no freeze, no I/O. What
/// [`run_par`](crate::run_par) hands out, and the default of every handle.
pub type Det = Effects<true, true, false, true, false>;
/// Quasi-deterministic code: [`Det`] plus freeze
/// ([`run_par_quasi_det`](crate::run_par_quasi_det)).
pub type QuasiDet = Effects<true, true, true, true, false>;
/// Every effect, I/O included ([`run_par_io`](crate::run_par_io)).
pub type FullEffects = Effects<true, true, true, true, true>;
/// Threshold reads only.
pub type ReadOnly = Effects<false, true, false, false, false>;
/// Puts only.
pub type WriteOnly = Effects<true, false, false, false, false>;
/// Bumps only (counters).
pub type BumpOnly = Effects<false, false, false, true, false>;

mod sealed {
    /// A flag as a type, so that "flag A implies flag B" can be a bound.
    pub struct Flag<const B: bool>;
    /// `Flag<A>: Implies<Flag<B>>` holds unless A is set and B is not.
    #[diagnostic::on_unimplemented(
        message = "an effect signature cannot be widened: `restrict` only removes effects",
        label = "the target signature has an effect that the source does not",
        note = "effects are granted by the runner (`run_par`, `run_par_quasi_det`, `run_par_io`)"
    )]
    pub trait Implies<T> {}
    impl Implies<Flag<false>> for Flag<false> {}
    impl Implies<Flag<true>> for Flag<false> {}
    impl Implies<Flag<true>> for Flag<true> {}

    pub trait Sealed {}
    impl<const P: bool, const G: bool, const F: bool, const B: bool, const I: bool> Sealed
        for super::Effects<P, G, F, B, I>
    {
    }
}
use sealed::{Flag, Implies};

/// An effect signature ([`Effects`]); implemented for every combination.
pub trait EffectLevel: sealed::Sealed + Send + Sync + 'static {
    /// The effects a variable handle made under this signature may use:
    /// the put, get and bump flags (freeze and I/O belong to the session
    /// handle, so a `QuasiDet` session makes the same handles as a `Det`
    /// one).
    type Data: EffectLevel;
}

impl<const P: bool, const G: bool, const F: bool, const B: bool, const I: bool> EffectLevel for Effects<P, G, F, B, I> {
    type Data = Effects<P, G, false, B, false>;
}

/// `Self` allows no effect that `Of` does not: a signature can be narrowed
/// to it with `restrict`.
pub trait Within<Of: EffectLevel>: EffectLevel {}

impl<
        const P: bool,
        const G: bool,
        const F: bool,
        const B: bool,
        const I: bool,
        const P2: bool,
        const G2: bool,
        const F2: bool,
        const B2: bool,
        const I2: bool,
    > Within<Effects<P2, G2, F2, B2, I2>> for Effects<P, G, F, B, I>
where
    Flag<P>: Implies<Flag<P2>>,
    Flag<G>: Implies<Flag<G2>>,
    Flag<F>: Implies<Flag<F2>>,
    Flag<B>: Implies<Flag<B2>>,
    Flag<I>: Implies<Flag<I2>>,
{
}

macro_rules! effect_trait {
    ($(#[$doc:meta])* $name:ident, $message:literal, $label:literal, [$($before:ident),*], [$($after:ident),*]) => {
        $(#[$doc])*
        #[diagnostic::on_unimplemented(
            message = $message,
            label = $label,
            note = "signatures only narrow (`restrict`); the runner grants effects: see `lvars::effects`"
        )]
        pub trait $name: EffectLevel {}
        impl<$(const $before: bool,)* $(const $after: bool,)*> $name
            for Effects<$($before,)* true $(, $after)*>
        {
        }
    };
}

effect_trait!(
    /// The signature allows puts (joins into a variable).
    HasPut,
    "the effect signature `{Self}` does not allow `put`",
    "this needs the put effect",
    [],
    [G, F, B, I]
);
effect_trait!(
    /// The signature allows threshold gets (and handlers, which observe).
    HasGet,
    "the effect signature `{Self}` does not allow `get`",
    "this needs the get effect",
    [P],
    [F, B, I]
);
effect_trait!(
    /// The signature allows freezing (quasi-deterministic).
    HasFreeze,
    "the effect signature `{Self}` does not allow `freeze`",
    "this needs the freeze effect: only `run_par_quasi_det` and `run_par_io` grant it",
    [P, G],
    [B, I]
);
effect_trait!(
    /// The signature allows bumps (non-idempotent counter increments).
    HasBump,
    "the effect signature `{Self}` does not allow `bump`",
    "this needs the bump effect",
    [P, G, F],
    [I]
);
effect_trait!(
    /// The signature allows arbitrary I/O ([`Par::io`](crate::Par::io)).
    HasIO,
    "the effect signature `{Self}` does not allow I/O",
    "this needs the I/O effect: only `run_par_io` grants it",
    [P, G, F, B],
    []
);
