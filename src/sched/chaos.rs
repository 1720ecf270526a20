//! Schedule fuzzing: the hooks behind `--features chaos`.
//!
//! With the feature on, every worker draws from its own pseudo-random
//! stream, derived from the pool's seed and the worker's index, and uses it
//! to perturb the schedule:
//!
//! * **steal victims**: a random first victim and a random stride through
//!   the other workers (every victim is still tried once);
//! * **own work**: when a worker takes a job from its own deque it takes
//!   the newest (LIFO, the normal order) or the oldest (FIFO) at random;
//! * **publication**: a job pushed on a worker's private stack is published
//!   to the shared deque at random (normally only when a worker is
//!   hungry), so more forks can be stolen and fewer run inline;
//! * **yields**: before and after every put and get of a session variable,
//!   and before a worker runs a job, a random choice among nothing,
//!   `std::thread::yield_now` and a short spin;
//! * **gets**: an async get returns `Pending` once (waking itself) at
//!   random, so its task is re-queued behind other work even when the
//!   threshold is already reached.
//!
//! The seed of a pool is taken when the pool is built: the one given to
//! [`check::seeded_pool`](crate::check::seeded_pool) (used by the checker
//! for every run), otherwise the global seed of
//! [`check::set_chaos_seed`](crate::check::set_chaos_seed), otherwise
//! `LVARS_CHAOS_SEED` from the environment, otherwise 0. The same seed and
//! worker count make the same choices on each worker, in the order that
//! worker makes them; which worker gets to a job first is still up to the
//! OS, so a failing seed reproduces its schedule as far as the OS allows.
//!
//! Without the feature every hook is an `#[inline(always)]` identity or
//! constant (`put` calls its closure, `get` returns its future unchanged,
//! `victim_stride` is 1, `publish_eagerly` is false), so default builds
//! compile to the same code as if the hooks were not there.

#[cfg(feature = "chaos")]
pub(crate) use imp::*;

#[cfg(not(feature = "chaos"))]
pub(crate) use off::*;

/// The hooks with the feature off: identities and constants.
#[cfg(not(feature = "chaos"))]
mod off {
    /// Runs a put (or bump, or insert).
    #[inline(always)]
    pub(crate) fn put<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    /// Returns a get's future unchanged.
    #[inline(always)]
    pub(crate) fn get<F>(f: F) -> F {
        f
    }

    /// The stride through the steal victims: 1 (every worker in turn).
    #[inline(always)]
    pub(crate) fn victim_stride(_n: usize) -> usize {
        1
    }

    /// Whether to publish a private job although nobody is hungry: never.
    #[inline(always)]
    pub(crate) fn publish_eagerly() -> bool {
        false
    }

    /// Nothing to perturb before a job runs.
    #[inline(always)]
    pub(crate) fn before_job() {}
}

#[cfg(feature = "chaos")]
mod imp {
    use std::cell::Cell;
    use std::future::Future;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    use std::sync::OnceLock;

    /// The global seed set by `set_global_seed` (valid once `GLOBAL_SET`).
    static GLOBAL_SEED: AtomicU64 = AtomicU64::new(0);
    static GLOBAL_SET: AtomicBool = AtomicBool::new(false);
    /// Distinguishes the streams of threads that are not workers.
    static FOREIGN_THREADS: AtomicU64 = AtomicU64::new(0);

    thread_local! {
        /// The seed for pools built by this thread (set by `with_pool_seed`).
        static POOL_SEED: Cell<Option<u64>> = const { Cell::new(None) };
        /// This thread's stream; `None` until first use (foreign threads)
        /// or until the worker seeds it.
        static RNG: Cell<Option<u64>> = const { Cell::new(None) };
    }

    /// SplitMix64's finaliser: a bijective mix of one word.
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Sets the seed for pools built afterwards without an explicit one.
    pub(crate) fn set_global_seed(seed: u64) {
        GLOBAL_SEED.store(seed, Relaxed);
        GLOBAL_SET.store(true, Relaxed);
    }

    fn global_seed() -> u64 {
        static FROM_ENV: OnceLock<u64> = OnceLock::new();
        if GLOBAL_SET.load(Relaxed) {
            return GLOBAL_SEED.load(Relaxed);
        }
        *FROM_ENV.get_or_init(|| {
            std::env::var("LVARS_CHAOS_SEED")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0)
        })
    }

    /// Runs `f` (which builds a pool) with `seed` as the seed of the pools
    /// this thread builds.
    pub(crate) fn with_pool_seed<R>(seed: u64, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<u64>);
        impl Drop for Restore {
            fn drop(&mut self) {
                POOL_SEED.with(|s| s.set(self.0));
            }
        }
        let _restore = Restore(POOL_SEED.with(|s| s.replace(Some(seed))));
        f()
    }

    /// The seed of a pool being built on this thread.
    pub(crate) fn pool_seed() -> u64 {
        POOL_SEED.with(Cell::get).unwrap_or_else(global_seed)
    }

    /// Seeds the calling worker thread's stream from the pool's seed and
    /// the worker's index.
    pub(crate) fn init_worker(seed: u64, index: usize) {
        let state = mix(seed ^ mix(index as u64 + 1).wrapping_add(0x9E37_79B9_7F4A_7C15));
        RNG.with(|r| r.set(Some(state)));
    }

    /// The next number of this thread's stream (SplitMix64).
    pub(crate) fn next_u64() -> u64 {
        RNG.with(|r| {
            let state = r.get().unwrap_or_else(|| {
                let k = FOREIGN_THREADS.fetch_add(1, Relaxed);
                mix(global_seed() ^ 0xF0F0_F0F0_0000_0000 ^ k)
            });
            let state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            r.set(Some(state));
            mix(state)
        })
    }

    /// A random number below `n` (`n > 0`).
    fn below(n: usize) -> usize {
        (next_u64() % n as u64) as usize
    }

    /// Nothing, a `yield_now`, or a short spin, at random.
    pub(crate) fn jitter() {
        let r = next_u64();
        match r % 8 {
            0 => std::thread::yield_now(),
            1 | 2 => {
                for _ in 0..(r >> 8) % 256 {
                    std::hint::spin_loop();
                }
            }
            _ => {}
        }
    }

    /// Runs a put (or bump, or insert) between two jitters.
    pub(crate) fn put<R>(f: impl FnOnce() -> R) -> R {
        jitter();
        let r = f();
        jitter();
        r
    }

    /// Wraps a get: a jitter before it, possibly one `Pending` with a
    /// self-wake (the task goes back to a queue), and a jitter after it
    /// resolves.
    pub(crate) async fn get<F: Future>(f: F) -> F::Output {
        jitter();
        if next_u64() % 4 == 0 {
            // `Pending` once, with a self-wake.
            crate::sched::yield_now().await;
        }
        let v = f.await;
        jitter();
        v
    }

    /// A random stride through `n` steal victims, coprime with `n` so that
    /// `start + k * stride (mod n)` visits every worker once.
    pub(crate) fn victim_stride(n: usize) -> usize {
        loop {
            let s = 1 + below(n.max(2) - 1);
            if gcd(s, n) == 1 {
                return s;
            }
        }
    }

    fn gcd(mut a: usize, mut b: usize) -> usize {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }

    /// Whether a worker takes the oldest job of its own deque (FIFO)
    /// instead of the newest: half the time.
    pub(crate) fn take_oldest() -> bool {
        next_u64() % 2 == 0
    }

    /// Whether to publish a private job although nobody is hungry: one
    /// push in four.
    pub(crate) fn publish_eagerly() -> bool {
        next_u64() % 4 == 0
    }

    /// Perturbs the moment a worker runs a job.
    pub(crate) fn before_job() {
        jitter();
    }
}
