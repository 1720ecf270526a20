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
//! - `lvars` / `lvars_cap`: `RawISet<u64>` (foldhash; the keys are kept in
//!   the table slots, `src/data/iset/inline.rs`), default capacity (grows
//!   from 16 slots through 17 resizes) / `with_capacity(distinct)`;
//! - `lvars_extend`: `RawISet::extend` of each thread's slice (hashes and
//!   prefetches 16 keys at a time);
//! - `lvars_ahash`: `RawISet` hashing with ahash, like the peers;
//! - `lvars_entry`: `RawISet` of the keys wrapped in a newtype, which it
//!   stores as entries (as it does strings or tuples): the representation
//!   of every element type that is not a primitive integer;
//! - `lvars_dense`: `RawISet::dense` over the keys' 22-bit range (one bit
//!   per possible key, 512 KiB): not a peer of the hash sets, since it
//!   needs the bound; it shows what a set of small integers costs;
//! - `dashmap`: `dashmap::DashSet` (ahash; sharded `RwLock`s);
//! - `mutex_hashset`: `Mutex<HashSet>` (ahash);
//! - `papaya`: `papaya::HashSet` (ahash; one guard per thread);
//! - `skiplist`: `crossbeam_skiplist::SkipSet`.
//!
//! After criterion finishes, a table of Mops/s (from criterion's median
//! estimates) and of the ratio to `dashmap` at the same thread count is
//! printed. `cargo bench --bench iset`; `LVARS_ISET_KEYS=262144` for a
//! quicker, smaller run.

use std::sync::Arc;
use std::time::Duration;

use common::{env_or, median_ns};
use criterion::{BenchmarkId, Criterion};
use iset::VARIANTS;

mod common;

#[path = "workloads/iset.rs"]
mod iset;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const THREADS: [usize; 2] = [1, 2];
const GROUP: &str = "iset_insert";

fn num_keys() -> usize {
    env_or("LVARS_ISET_KEYS", 1 << 20)
}

fn bench(c: &mut Criterion) {
    let keys: Arc<[u64]> = iset::keys(num_keys()).into();
    let distinct = iset::distinct(&keys);
    println!("{} keys, {} distinct", keys.len(), distinct);
    let mut g = c.benchmark_group(GROUP);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    for t in THREADS {
        for v in VARIANTS {
            let mut run = iset::setup(v, t, Arc::clone(&keys), distinct);
            g.bench_with_input(BenchmarkId::new(v, t), &t, |b, _| b.iter_with_large_drop(&mut run));
        }
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

common::bench_main!(bench, summary);
