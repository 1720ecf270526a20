//! Thread pools: the builder, explicit pools and the global pool.

use std::fmt;
use std::sync::{Arc, OnceLock};

use super::job::StackJob;
use super::latch::{Latch, OwnedLatch, Owner};
use super::registry::{Registry, WorkerThread};
use crate::sync::thread;

/// Configures and builds a [`ThreadPool`].
///
/// ```
/// let pool = lvars::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
/// assert_eq!(pool.num_threads(), 2);
/// assert_eq!(pool.install(|| lvars::join(|| 1, || 2)), (1, 2));
/// ```
#[derive(Default)]
pub struct ThreadPoolBuilder {
    num_threads: Option<usize>,
    stack_size: Option<usize>,
    thread_name: Option<Box<dyn FnMut(usize) -> String>>,
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("num_threads", &self.num_threads)
            .field("stack_size", &self.stack_size)
            .finish()
    }
}

/// The pool could not be built (a worker thread failed to start).
#[derive(Debug)]
pub struct BuildError(std::io::Error);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not start a worker thread: {}", self.0)
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl ThreadPoolBuilder {
    /// A builder with default settings: one worker per available core.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of worker threads (0 means the default: available parallelism,
    /// or the `LVARS_NUM_THREADS` environment variable when set).
    pub fn num_threads(mut self, n: usize) -> Self {
        self.num_threads = Some(n);
        self
    }

    /// Stack size of each worker thread, in bytes.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Names worker threads (`lvars-worker-{i}` by default).
    pub fn thread_name(mut self, f: impl FnMut(usize) -> String + 'static) -> Self {
        self.thread_name = Some(Box::new(f));
        self
    }

    /// Starts the workers.
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        let n = match self.num_threads {
            Some(n) if n > 0 => n,
            _ => default_num_threads(),
        };
        let mut name = self
            .thread_name
            .unwrap_or_else(|| Box::new(|i| format!("lvars-worker-{i}")));
        let (registry, handles) = Registry::new(n, &mut *name, self.stack_size).map_err(BuildError)?;
        Ok(ThreadPool { registry, handles })
    }
}

fn default_num_threads() -> usize {
    std::env::var("LVARS_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A pool of worker threads. Dropping it lets the workers finish queued
/// work and exit (it joins them).
pub struct ThreadPool {
    registry: Arc<Registry>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("num_threads", &self.num_threads())
            .finish()
    }
}

impl ThreadPool {
    /// Number of worker threads.
    pub fn num_threads(&self) -> usize {
        self.registry.num_threads()
    }

    /// Runs `op` on a worker of this pool and returns its result; `join`,
    /// `par_for` and sessions called inside use this pool.
    pub fn install<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        self.registry.in_worker(|_| op())
    }

    /// `join` inside this pool.
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        self.install(|| super::join::join(a, b))
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.registry.terminate();
        let me = std::thread::current().id();
        for h in self.handles.drain(..) {
            // A pool dropped from one of its own workers cannot join itself.
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }
}

static GLOBAL: OnceLock<ThreadPool> = OnceLock::new();

/// The global pool, started on first use with the default thread count.
pub(crate) fn global_pool() -> &'static ThreadPool {
    GLOBAL.get_or_init(|| {
        ThreadPoolBuilder::new()
            .build()
            .expect("failed to start the global lvars pool")
    })
}

pub(crate) fn global_registry() -> &'static Arc<Registry> {
    global_pool().registry()
}

/// The registry of the pool the current thread works for, or the global one.
pub(crate) fn current_registry() -> Arc<Registry> {
    match WorkerThread::current() {
        Some(w) => Arc::clone(w.registry_arc()),
        None => Arc::clone(global_registry()),
    }
}

impl Registry {
    /// Runs `op` on a worker of this registry: directly if we are one,
    /// otherwise by injecting a job and parking until it is done.
    pub(crate) fn in_worker<R: Send>(&self, op: impl FnOnce(&WorkerThread) -> R + Send) -> R {
        if let Some(w) = WorkerThread::current() {
            if std::ptr::eq(w.registry(), self) {
                return op(w);
            }
        }
        let latch = OwnedLatch::new(Owner::Thread(thread::current()));
        let job = StackJob::new(
            || op(WorkerThread::current().expect("injected job off the pool")),
            latch,
        );
        // SAFETY: we park until the latch is set, so `job` outlives its run.
        self.inject(unsafe { job.as_job_ref() });
        job.latch.owner().wait_until(|| job.latch.probe());
        job.into_result()
    }
}
