//! Concurrent set inserts: `RawISet` against its peers. Shared by
//! `benches/iset.rs` and `examples/report.rs`.
//!
//! [`setup`] builds one structure's insert run at a thread count; each call
//! of the returned closure builds a fresh set, inserts every key from
//! `threads` OS threads (equal contiguous slices, `std::thread::scope`),
//! checks the final `len` against the number of distinct keys, and returns
//! the set so the caller can drop it outside the timed part.

#![allow(dead_code)]

use std::any::Any;
use std::collections::HashSet;
use std::hint::black_box;
use std::sync::{Arc, Mutex};

use lvars::data::RawISet;

/// Every structure, in the order they are run.
pub const VARIANTS: [&str; 10] = [
    "lvars",
    "lvars_cap",
    "lvars_extend",
    "lvars_ahash",
    "lvars_entry",
    "lvars_dense",
    "dashmap",
    "mutex_hashset",
    "papaya",
    "skiplist",
];

/// The keys: xorshift64 from a fixed seed, reduced to a range 4x the key
/// count (so about 88.5% are distinct).
pub fn keys(n: usize) -> Vec<u64> {
    let range = key_range(n);
    let mut s = 0x2545_f491_4f6c_dd1d_u64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s & (range - 1)
        })
        .collect()
}

/// The keys of [`keys`]`(n)` are below this bound.
pub fn key_range(n: usize) -> u64 {
    (n as u64 * 4).next_power_of_two()
}

/// A `u64` key that a `RawISet` stores as an entry (only primitive
/// integers are kept in the slots).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryKey(pub u64);

/// The number of distinct keys (what every set's `len` must be).
pub fn distinct(keys: &[u64]) -> usize {
    keys.iter().collect::<HashSet<_>>().len()
}

/// Runs `insert_slice` on `threads` equal slices of `keys` in parallel.
fn split<F: Fn(&[u64]) + Sync>(keys: &[u64], threads: usize, insert_slice: F) {
    let per = keys.len().div_ceil(threads);
    std::thread::scope(|s| {
        for slice in keys.chunks(per) {
            let f = &insert_slice;
            s.spawn(move || f(slice));
        }
    });
}

/// Inserts every key into a fresh set (`new`), `threads` ways, each thread
/// running `insert_slice` on its slice; checks `len` and returns the set
/// for dropping by the caller.
fn fill<S: Send + Sync + 'static>(
    keys: &[u64],
    threads: usize,
    distinct: usize,
    new: impl Fn() -> S,
    insert_slice: impl Fn(&S, &[u64]) + Sync,
    len: impl Fn(&S) -> usize,
) -> Box<dyn Any> {
    let set = new();
    split(keys, threads, |ks| insert_slice(&set, ks));
    assert_eq!(len(&set), distinct);
    Box::new(set)
}

/// Calls `insert` on every key of a thread's slice.
fn each(ks: &[u64], mut insert: impl FnMut(u64)) {
    ks.iter().for_each(|&k| insert(black_box(k)));
}

/// `variant` (one of [`VARIANTS`]) inserting `keys` from `threads` threads;
/// `distinct` is the expected final size.
pub fn setup(variant: &str, threads: usize, keys: Arc<[u64]>, distinct: usize) -> Box<dyn FnMut() -> Box<dyn Any>> {
    // A closure that fills a set made by `$new`, each thread inserting
    // its keys through `$insert` (or running `$insert_slice` on its slice),
    // and checks `$len`.
    macro_rules! run {
        ($new:expr, |$s:ident, $k:ident| $insert:expr, $len:expr) => {
            run!(@slices $new, |$s, ks| each(ks, |$k| { black_box($insert); }), $len)
        };
        (@slices $new:expr, $insert_slice:expr, $len:expr) => {
            Box::new(move || fill(&keys, threads, distinct, $new, $insert_slice, $len))
        };
    }
    let ahash = ahash::RandomState::new;
    match variant {
        "lvars" => run!(RawISet::new, |s, k| s.insert(k).unwrap(), RawISet::len),
        "lvars_cap" => run!(
            || RawISet::with_capacity(distinct),
            |s, k| s.insert(k).unwrap(),
            RawISet::len
        ),
        "lvars_extend" => run!(
            @slices RawISet::new,
            |s: &RawISet<u64>, ks| {
                black_box(s.extend(ks.iter().map(|&k| black_box(k))).unwrap());
            },
            RawISet::len
        ),
        // A dense set (one bit per possible key): it needs the keys' bound,
        // which the other structures do not, so it is not their peer; it
        // shows what a set of small integers can be.
        "lvars_dense" => run!(
            || RawISet::dense(key_range(keys.len()) as usize),
            |s, k| s.insert(k).unwrap(),
            RawISet::len
        ),
        // The same keys wrapped in a type that is not a primitive integer:
        // the set stores entries (what a set of strings or tuples does)
        // instead of keeping the keys in its slots.
        "lvars_entry" => run!(RawISet::new, |s, k| s.insert(EntryKey(k)).unwrap(), RawISet::len),
        "lvars_ahash" => run!(
            || RawISet::with_hasher(ahash()),
            |s, k| s.insert(k).unwrap(),
            RawISet::len
        ),
        "dashmap" => run!(
            || dashmap::DashSet::with_hasher(ahash()),
            |s, k| s.insert(k),
            dashmap::DashSet::len
        ),
        "mutex_hashset" => run!(
            || Mutex::new(HashSet::with_hasher(ahash())),
            |s, k| s.lock().unwrap().insert(k),
            |s| s.lock().unwrap().len()
        ),
        // One papaya guard per thread, not per insert.
        "papaya" => run!(
            @slices || papaya::HashSet::with_hasher(ahash()),
            |s: &papaya::HashSet<u64, ahash::RandomState>, ks| {
                let s = s.pin();
                each(ks, |k| {
                    black_box(s.insert(k));
                })
            },
            papaya::HashSet::len
        ),
        "skiplist" => run!(
            crossbeam_skiplist::SkipSet::new,
            |s, k| s.insert(k),
            crossbeam_skiplist::SkipSet::len
        ),
        other => panic!("unknown iset variant {other:?}"),
    }
}
