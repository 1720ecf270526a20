//! Loom models of every lock-free protocol in the crate.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom`
//! (in a normal build this target is empty).
#![cfg(loom)]

mod counter;
mod detached;
mod freeze;
mod imap;
mod iset;
mod ivar;
mod quiesce;
mod sleep;
mod waiters;
