//! Type-erased units of work for the deques.
//!
//! A [`JobRef`] is a pointer plus the function that knows what it points to:
//! a [`StackJob`] living in the frame of a `join` caller, a [`HeapJob`], or
//! a task header (`task.rs`). The deques only ever move `JobRef`s around.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{self, AssertUnwindSafe};

use super::latch::Latch;

/// A pointer to some job and the function that executes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JobRef {
    pointer: *const (),
    execute_fn: unsafe fn(*const ()),
}

// SAFETY: a JobRef is a capability to run a job exactly once; the jobs it
// points to are all `Send` (their closures/futures are required to be), and
// each kind documents how its memory stays valid until it runs.
unsafe impl Send for JobRef {}

impl JobRef {
    /// # Safety
    /// `pointer` must stay valid until `execute_fn(pointer)` has run, and
    /// `execute_fn` must be sound to call on it exactly once from any thread.
    pub(crate) unsafe fn new(pointer: *const (), execute_fn: unsafe fn(*const ())) -> Self {
        Self { pointer, execute_fn }
    }

    /// Identity of the job (used by `join` to recognise its own job when
    /// popping it back).
    #[inline]
    pub(crate) fn id(&self) -> *const () {
        self.pointer
    }

    /// # Safety
    /// Must be called at most once per job (see [`JobRef::new`]).
    #[inline]
    pub(crate) unsafe fn execute(self) {
        // SAFETY: forwarded contract of `JobRef::new`.
        unsafe { (self.execute_fn)(self.pointer) }
    }
}

/// The outcome of running a job's closure.
pub(crate) enum JobResult<R> {
    None,
    Ok(R),
    Panic(Box<dyn Any + Send>),
}

impl<R> JobResult<R> {
    /// Returns the value or resumes the panic on the caller.
    pub(crate) fn into_return_value(self) -> R {
        match self {
            JobResult::Ok(v) => v,
            JobResult::Panic(p) => panic::resume_unwind(p),
            JobResult::None => unreachable!("job result read before the job ran"),
        }
    }
}

/// A job that lives in the stack frame of the thread that will wait for it.
///
/// The waiting thread does not return until `latch` is set, and `execute`
/// sets the latch as its very last access to `self`, so the frame outlives
/// every use.
pub(crate) struct StackJob<L, F, R> {
    pub(crate) latch: L,
    func: UnsafeCell<Option<F>>,
    result: UnsafeCell<JobResult<R>>,
}

impl<L: Latch, F: FnOnce() -> R + Send, R: Send> StackJob<L, F, R> {
    pub(crate) fn new(func: F, latch: L) -> Self {
        Self {
            latch,
            func: UnsafeCell::new(Some(func)),
            result: UnsafeCell::new(JobResult::None),
        }
    }

    /// # Safety
    /// The job must not move or be dropped until it has run and its latch
    /// is set (or it was popped back and run inline with [`Self::run_inline`]).
    pub(crate) unsafe fn as_job_ref(&self) -> JobRef {
        // SAFETY: the caller keeps `self` in place until the latch is set.
        unsafe { JobRef::new(self as *const Self as *const (), Self::execute) }
    }

    unsafe fn execute(this: *const ()) {
        // SAFETY: `this` came from `as_job_ref` and the frame is alive until
        // the latch is set below; only one thread executes a JobRef.
        let this = unsafe { &*(this as *const Self) };
        // SAFETY: exclusive: the owner does not touch `func`/`result` until
        // the latch is set.
        let func = unsafe { (*this.func.get()).take() }.expect("stack job run twice");
        let result = match panic::catch_unwind(AssertUnwindSafe(func)) {
            Ok(v) => JobResult::Ok(v),
            Err(p) => JobResult::Panic(p),
        };
        // SAFETY: as above, exclusive until the latch is set.
        unsafe { *this.result.get() = result };
        // SAFETY: last use of `this`; `set` copies what it needs first.
        unsafe { L::set(&this.latch) };
    }

    /// Runs the closure on the current thread (the job was popped back and
    /// so was never seen by another thread).
    pub(crate) fn run_inline(&self) -> R {
        // SAFETY: the job was never published (or was popped back), so no
        // other thread can reach `func`.
        let func = unsafe { (*self.func.get()).take() }.expect("stack job run twice");
        func()
    }

    /// The result after the latch was observed set.
    pub(crate) fn into_result(self) -> R {
        self.result.into_inner().into_return_value()
    }
}
