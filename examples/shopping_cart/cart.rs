//! The LVar cart of `main.rs`, in a file of its own so that
//! `tests/chaos.rs` checks this very session body under many schedules.

use lvars::lattice::{MapUnion, Max};
use lvars::par::DeferredFreeze;
use lvars::{Freeze, LVar, Par, ParFuture};

/// The LVar cart's session: two forked inserts, frozen after the barrier.
pub fn lvar_cart_session(p: Par<'_>) -> ParFuture<'_, DeferredFreeze<'_, MapUnion<&'static str, Max<u32>>>> {
    Box::pin(async move {
        let cart: LVar<MapUnion<&'static str, Max<u32>>> = LVar::new(p);
        for item in ["Book", "Shoes"] {
            let cart = cart.clone();
            p.fork(async move { cart.put(MapUnion::singleton(item, Max::new(1))).unwrap() });
        }
        // No waiting here either: the runner freezes after every task is done.
        cart.then_freeze()
    })
}
