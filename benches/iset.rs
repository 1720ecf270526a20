//! Concurrent set inserts: `RawISet` against its peers.
//!
//! 1,048,576 pseudo-random `u64` keys (a fixed-seed xorshift reduced to 22
//! bits: about 928,000 distinct), split into equal contiguous slices, one
//! per OS thread (`std::thread::scope`), at 1 and 2 threads, all in the
//! same run. Each iteration builds a fresh set, inserts every key and checks
//! that the final `len` equals the known number of distinct keys; the set is
//! dropped outside the timed part (criterion's `iter_with_large_drop`), for
//! every structure alike. Variants:
//!
//! - `lvars` / `lvars_cap`: `RawISet` (foldhash), default capacity (grows
//!   from 16 slots through 17 resizes) / `with_capacity(distinct)`;
//! - `lvars_ahash`: `RawISet` hashing with ahash, like the peers;
//! - `dashmap`: `dashmap::DashSet` (ahash; sharded `RwLock`s);
//! - `mutex_hashset`: `Mutex<HashSet>` (ahash);
//! - `papaya`: `papaya::HashSet` (ahash; one guard per thread);
//! - `skiplist`: `crossbeam_skiplist::SkipSet`.
//!
//! After criterion finishes, a table of Mops/s (from criterion's median
//! estimates) and of the ratio to `dashmap` at the same thread count is
//! printed. `cargo bench --bench iset`; `LVARS_ISET_KEYS=262144` for a
//! quicker, smaller run.

use std::collections::HashSet;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::Duration;

use common::median_ns;
use criterion::{criterion_group, BenchmarkId, Criterion};
use lvars::data::RawISet;

mod common;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const THREADS: [usize; 2] = [1, 2];
const GROUP: &str = "iset_insert";
const VARIANTS: [&str; 7] = [
    "lvars",
    "lvars_cap",
    "lvars_ahash",
    "dashmap",
    "mutex_hashset",
    "papaya",
    "skiplist",
];

fn num_keys() -> usize {
    std::env::var("LVARS_ISET_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1 << 20)
}

/// The keys: xorshift64 from a fixed seed, reduced to a range 4x the key
/// count (so about 88.5% are distinct).
fn keys(n: usize) -> Vec<u64> {
    let range = (n as u64 * 4).next_power_of_two();
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

fn bench(c: &mut Criterion) {
    let keys = keys(num_keys());
    let distinct = keys.iter().collect::<HashSet<_>>().len();
    println!("{} keys, {} distinct", keys.len(), distinct);
    let keys = &keys[..];
    let mut g = c.benchmark_group(GROUP);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    for t in THREADS {
        g.bench_with_input(BenchmarkId::new("lvars", t), &t, |b, &t| {
            b.iter_with_large_drop(|| {
                let set = RawISet::new();
                split(keys, t, |ks| {
                    ks.iter().for_each(|&k| {
                        black_box(set.insert(black_box(k)).unwrap());
                    })
                });
                assert_eq!(set.len(), distinct);
                set
            })
        });
        g.bench_with_input(BenchmarkId::new("lvars_cap", t), &t, |b, &t| {
            b.iter_with_large_drop(|| {
                let set = RawISet::with_capacity(distinct);
                split(keys, t, |ks| {
                    ks.iter().for_each(|&k| {
                        black_box(set.insert(black_box(k)).unwrap());
                    })
                });
                assert_eq!(set.len(), distinct);
                set
            })
        });
        g.bench_with_input(BenchmarkId::new("lvars_ahash", t), &t, |b, &t| {
            b.iter_with_large_drop(|| {
                let set = RawISet::with_hasher(ahash::RandomState::new());
                split(keys, t, |ks| {
                    ks.iter().for_each(|&k| {
                        black_box(set.insert(black_box(k)).unwrap());
                    })
                });
                assert_eq!(set.len(), distinct);
                set
            })
        });
        g.bench_with_input(BenchmarkId::new("dashmap", t), &t, |b, &t| {
            b.iter_with_large_drop(|| {
                let set = dashmap::DashSet::with_hasher(ahash::RandomState::new());
                split(keys, t, |ks| {
                    ks.iter().for_each(|&k| {
                        black_box(set.insert(black_box(k)));
                    })
                });
                assert_eq!(set.len(), distinct);
                set
            })
        });
        g.bench_with_input(BenchmarkId::new("mutex_hashset", t), &t, |b, &t| {
            b.iter_with_large_drop(|| {
                let set = Mutex::new(HashSet::with_hasher(ahash::RandomState::new()));
                split(keys, t, |ks| {
                    ks.iter().for_each(|&k| {
                        black_box(set.lock().unwrap().insert(black_box(k)));
                    })
                });
                assert_eq!(set.lock().unwrap().len(), distinct);
                set
            })
        });
        g.bench_with_input(BenchmarkId::new("papaya", t), &t, |b, &t| {
            b.iter_with_large_drop(|| {
                let set = papaya::HashSet::with_hasher(ahash::RandomState::new());
                split(keys, t, |ks| {
                    let set = set.pin();
                    ks.iter().for_each(|&k| {
                        black_box(set.insert(black_box(k)));
                    })
                });
                assert_eq!(set.len(), distinct);
                set
            })
        });
        g.bench_with_input(BenchmarkId::new("skiplist", t), &t, |b, &t| {
            b.iter_with_large_drop(|| {
                let set = crossbeam_skiplist::SkipSet::new();
                split(keys, t, |ks| {
                    ks.iter().for_each(|&k| {
                        black_box(set.insert(black_box(k)));
                    })
                });
                assert_eq!(set.len(), distinct);
                set
            })
        });
    }
    g.finish();
}

fn summary() {
    let n = num_keys() as f64;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!("\n{n} inserts per iteration, median of criterion samples, {cores} core(s); ratio = Mops/s / dashmap's");
    println!("{:<14} {:>8} {:>10} {:>8}", "variant", "threads", "Mops/s", "ratio");
    for t in THREADS {
        let Some(dash) = median_ns(GROUP, &format!("dashmap/{t}")) else {
            continue;
        };
        for v in VARIANTS {
            if let Some(m) = median_ns(GROUP, &format!("{v}/{t}")) {
                println!("{:<14} {:>8} {:>10.1} {:>7.2}x", v, t, n / m * 1e3, dash / m);
            }
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
