//! The determinism checker: run a program under many schedules and compare
//! the outcomes exactly.
//!
//! A [`Checker`] runs a session body once per seed, each run on a fresh
//! [`ThreadPool`] whose worker count cycles through a list (1 to 4 workers
//! by default), and compares every outcome (the `Result` the runner
//! returns, value or error) with the first one using `PartialEq`. The
//! [`Verdict`] says either that all runs agreed, or which two runs (seed,
//! worker count and outcome of each) differed first.
//!
//! Built with `--features chaos`, each pool also perturbs its schedule from
//! the run's seed (random steal victims, random LIFO/FIFO order of a
//! worker's own jobs, eager publication of forks, random yields and spins
//! before and after every put and get, and gets that return `Pending`
//! once): far more interleavings are tried, and a seed that exposed a
//! difference makes the same choices again when re-run with
//! [`Checker::first_seed`] and [`Checker::workers`] (as far as the OS
//! thread scheduler allows). Without the feature the checker still varies
//! the worker count and repeats the runs, with the seeds having no effect
//! ([`chaos_enabled`] tells which).
//!
//! The body is the same kind of closure [`ThreadPool::run_par`] takes,
//! except that it must be [`Fn`] (it runs many times): clone what each run
//! needs inside it.
//!
//! ```
//! use lvars::check::{check_determinism, Checker};
//! use lvars::{Freeze, ISet, IVar};
//!
//! // Deterministic: a reader waits for a threshold, then the value is read.
//! let verdict = check_determinism(|p| Box::pin(async move {
//!     let iv = IVar::new(p);
//!     let w = iv.clone();
//!     p.fork(async move { w.put(6 * 7).unwrap() });
//!     *iv.get().await
//! }));
//! assert!(verdict.is_deterministic(), "{verdict}");
//! assert_eq!(verdict.assert_deterministic(), Ok(42));
//!
//! // Deterministic with a freeze after the barrier, on 20 seeds only.
//! let verdict = Checker::new().runs(20).run_par_then_freeze(|p| Box::pin(async move {
//!     let set: ISet<u32> = ISet::new(p);
//!     for i in 0..8 {
//!         let s = set.clone();
//!         p.fork(async move { s.insert(i % 3).unwrap() });
//!     }
//!     set.then_freeze()
//! }));
//! assert_eq!(verdict.assert_deterministic(), Ok(vec![0, 1, 2]));
//! ```
//!
//! Quasi-deterministic bodies (which may freeze) go through
//! [`check_quasi_determinism`] or [`Checker::run_par_quasi_det`]; anything
//! else that can be run on a pool (several sessions, `join`, a custom
//! comparison key) through [`Checker::check`].

use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use crate::error::Error;
use crate::par::{DeferredFreeze, Det, Par, ParFuture, QuasiDet};
use crate::sched::{ThreadPool, ThreadPoolBuilder};

/// Whether this build perturbs schedules (`--features chaos`).
pub const fn chaos_enabled() -> bool {
    cfg!(feature = "chaos")
}

/// Sets the chaos seed of every pool built from now on without an explicit
/// one (including the global pool, if it has not started yet); it
/// overrides the `LVARS_CHAOS_SEED` environment variable, which is read
/// otherwise (the default is 0). Without `--features chaos` it does
/// nothing.
pub fn set_chaos_seed(seed: u64) {
    #[cfg(feature = "chaos")]
    crate::sched::chaos::set_global_seed(seed);
    #[cfg(not(feature = "chaos"))]
    let _ = seed;
}

/// Builds a pool of `num_threads` workers whose schedule perturbations
/// derive from `seed` (worker `i` draws from a stream of `seed` and `i`).
/// This is how the checker builds the pool of each run; use it to replay
/// one run. Without `--features chaos` the seed has no effect.
///
/// ```
/// let pool = lvars::check::seeded_pool(7, 2).unwrap();
/// assert_eq!(pool.run_par(|_| Box::pin(async { 1 })), Ok(1));
/// ```
pub fn seeded_pool(seed: u64, num_threads: usize) -> Result<ThreadPool, crate::sched::BuildError> {
    let build = || ThreadPoolBuilder::new().num_threads(num_threads.max(1)).build();
    #[cfg(feature = "chaos")]
    return crate::sched::chaos::with_pool_seed(seed, build);
    #[cfg(not(feature = "chaos"))]
    {
        let _ = seed;
        build()
    }
}

/// One run of a check: the seed and worker count it ran with, and what it
/// returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Run<T> {
    /// The seed of the run's pool.
    pub seed: u64,
    /// The number of workers of the run's pool.
    pub workers: usize,
    /// What the run returned.
    pub outcome: T,
}

impl<T: fmt::Debug> fmt::Display for Run<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} with {} worker(s) gave {:?}",
            self.seed, self.workers, self.outcome
        )
    }
}

/// The result of a check.
#[must_use = "a verdict should be asserted (e.g. `assert_deterministic`)"]
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict<T> {
    /// Every run gave the same outcome.
    Deterministic {
        /// How many runs were compared.
        runs: usize,
        /// The outcome every run gave.
        outcome: T,
    },
    /// Two runs gave different outcomes: the first run of the check and
    /// the first run that differed from it (the check stops there).
    Nondeterministic {
        /// The first run of the check.
        first: Run<T>,
        /// The first run whose outcome differed from `first`'s.
        second: Run<T>,
    },
}

impl<T> Verdict<T> {
    /// Whether every run gave the same outcome.
    pub fn is_deterministic(&self) -> bool {
        matches!(self, Verdict::Deterministic { .. })
    }
}

impl<T: fmt::Debug> Verdict<T> {
    /// The common outcome; panics with the two differing runs (seeds,
    /// worker counts, outcomes) if there was none.
    #[track_caller]
    pub fn assert_deterministic(self) -> T {
        match self {
            Verdict::Deterministic { outcome, .. } => outcome,
            v @ Verdict::Nondeterministic { .. } => panic!("{v}"),
        }
    }

    /// The two differing runs; panics if every run agreed.
    #[track_caller]
    pub fn assert_nondeterministic(self) -> (Run<T>, Run<T>) {
        match self {
            Verdict::Nondeterministic { first, second } => (first, second),
            v @ Verdict::Deterministic { .. } => panic!("expected a nondeterministic program, but {v}"),
        }
    }
}

impl<T: fmt::Debug> fmt::Display for Verdict<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if chaos_enabled() {
            "schedule fuzzing on"
        } else {
            "schedule fuzzing off: build with --features chaos to perturb schedules"
        };
        match self {
            Verdict::Deterministic { runs, outcome } => {
                write!(f, "deterministic: {runs} run(s) all gave {outcome:?} ({mode})")
            }
            Verdict::Nondeterministic { first, second } => write!(
                f,
                "NONDETERMINISTIC: {first}, but {second} ({mode}; replay with \
                 Checker::new().first_seed(SEED).runs(1).workers([WORKERS]))"
            ),
        }
    }
}

/// How many runs, from which seed, on which worker counts.
///
/// Run `i` (from 0) uses seed `first_seed + i` and the worker count
/// `workers[i % workers.len()]`, each on a pool of its own.
#[derive(Debug, Clone)]
pub struct Checker {
    runs: usize,
    first_seed: u64,
    workers: Vec<usize>,
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

impl Checker {
    /// 100 runs, seeds from 0, worker counts 1, 2, 3 and 4 in turn.
    pub fn new() -> Self {
        Self {
            runs: 100,
            first_seed: 0,
            workers: vec![1, 2, 3, 4],
        }
    }

    /// The number of runs (at least 1).
    pub fn runs(mut self, runs: usize) -> Self {
        self.runs = runs.max(1);
        self
    }

    /// The seed of the first run (run `i` uses `first_seed + i`).
    pub fn first_seed(mut self, seed: u64) -> Self {
        self.first_seed = seed;
        self
    }

    /// The worker counts to cycle through (zeros are read as 1; an empty
    /// list means `[1]`).
    pub fn workers(mut self, workers: impl IntoIterator<Item = usize>) -> Self {
        self.workers = workers.into_iter().map(|n| n.max(1)).collect();
        if self.workers.is_empty() {
            self.workers.push(1);
        }
        self
    }

    /// Runs `program` once per seed, each time on a fresh pool built by
    /// [`seeded_pool`], and compares the outcomes with the first one. A
    /// panic in a run is re-raised after printing the run's seed and worker
    /// count to standard error.
    pub fn check<T, F>(&self, program: F) -> Verdict<T>
    where
        T: PartialEq,
        F: Fn(&ThreadPool) -> T,
    {
        let mut first: Option<Run<T>> = None;
        for i in 0..self.runs {
            let seed = self.first_seed.wrapping_add(i as u64);
            let workers = self.workers[i % self.workers.len()];
            let pool = seeded_pool(seed, workers).expect("lvars::check: could not start a pool");
            let outcome = match panic::catch_unwind(AssertUnwindSafe(|| program(&pool))) {
                Ok(outcome) => outcome,
                Err(p) => {
                    eprintln!("lvars::check: the run with seed {seed} and {workers} worker(s) panicked");
                    panic::resume_unwind(p);
                }
            };
            drop(pool);
            let run = Run { seed, workers, outcome };
            match &first {
                None => first = Some(run),
                Some(f) if f.outcome == run.outcome => {}
                Some(_) => {
                    return Verdict::Nondeterministic {
                        first: first.expect("set above"),
                        second: run,
                    }
                }
            }
        }
        let first = first.expect("at least one run");
        Verdict::Deterministic {
            runs: self.runs,
            outcome: first.outcome,
        }
    }

    /// Checks a [`run_par`](crate::run_par) body (deterministic session).
    pub fn run_par<R, F>(&self, body: F) -> Verdict<Result<R, Error>>
    where
        R: PartialEq + Send,
        F: for<'s> Fn(Par<'s, Det>) -> ParFuture<'s, R>,
    {
        self.check(|pool| pool.run_par(&body))
    }

    /// Checks a [`run_par_quasi_det`](crate::run_par_quasi_det) body (may
    /// freeze). Outcomes are compared exactly, errors included: a program
    /// whose freeze can race with a put returns the value in some runs and
    /// `PutAfterFreeze` in others, and is reported as nondeterministic.
    /// A freeze that comes after every put (e.g. after a handler pool's
    /// `quiesce`) gives one outcome.
    pub fn run_par_quasi_det<R, F>(&self, body: F) -> Verdict<Result<R, Error>>
    where
        R: PartialEq + Send,
        F: for<'s> Fn(Par<'s, QuasiDet>) -> ParFuture<'s, R>,
    {
        self.check(|pool| pool.run_par_quasi_det(&body))
    }

    /// Checks a [`run_par_then_freeze`](crate::run_par_then_freeze) body.
    pub fn run_par_then_freeze<T, F>(&self, body: F) -> Verdict<Result<T, Error>>
    where
        T: PartialEq + Send + 'static,
        F: for<'s> Fn(Par<'s, Det>) -> ParFuture<'s, DeferredFreeze<'s, T>>,
    {
        self.check(|pool| pool.run_par_then_freeze(&body))
    }
}

/// [`Checker::run_par`] with the default settings (100 runs on 1 to 4
/// workers).
pub fn check_determinism<R, F>(body: F) -> Verdict<Result<R, Error>>
where
    R: PartialEq + Send,
    F: for<'s> Fn(Par<'s, Det>) -> ParFuture<'s, R>,
{
    Checker::new().run_par(body)
}

/// [`Checker::run_par_quasi_det`] with the default settings.
pub fn check_quasi_determinism<R, F>(body: F) -> Verdict<Result<R, Error>>
where
    R: PartialEq + Send,
    F: for<'s> Fn(Par<'s, QuasiDet>) -> ParFuture<'s, R>,
{
    Checker::new().run_par_quasi_det(body)
}
