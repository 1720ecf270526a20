//! Typed errors. Every failure a session can report is a value of
//! [`Error`]; a panicking task is the exception, it is re-raised on the
//! caller like `rayon` does.

use std::fmt;

/// What went wrong in a session or an LVar operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A put would have taken the LVar to top: e.g. two different values
    /// put into one IVar, or conflicting values for one map key.
    ConflictingPut {
        /// What kind of variable it was (`"IVar"`, `"LVar<..>"`, ...).
        lvar: &'static str,
    },
    /// A put would have changed an LVar that was already frozen.
    PutAfterFreeze {
        /// What kind of variable it was.
        lvar: &'static str,
    },
    /// A threshold set whose elements are not pairwise incompatible (their
    /// join must be top), which is empty, or which contains top.
    InvalidThreshold {
        /// Why the set was rejected.
        reason: &'static str,
    },
    /// Every live task of the session was parked and nothing could run:
    /// the session can never finish. The parked tasks were cancelled.
    Deadlock {
        /// How many tasks were parked (blocked on a get) when it was detected.
        parked: usize,
    },
    /// A value outside the range a specialised LVar can hold.
    OutOfRange {
        /// What kind of variable it was.
        lvar: &'static str,
    },
    /// Computations of a memo table wait for each other in a cycle (a
    /// key's value depends on itself through the keys it gets): none of
    /// them could ever finish.
    Cycle {
        /// What kind of table it was (`"Memo"`).
        lvar: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ConflictingPut { lvar } => {
                write!(f, "conflicting put: the join of the puts into this {lvar} is top (e.g. two different values into one IVar)")
            }
            Error::PutAfterFreeze { lvar } => {
                write!(
                    f,
                    "put after freeze: this {lvar} was frozen and the put would have changed it"
                )
            }
            Error::InvalidThreshold { reason } => write!(f, "invalid threshold set: {reason}"),
            Error::Deadlock { parked } => write!(
                f,
                "deadlock: all {parked} live task(s) are blocked on gets that no running task can satisfy"
            ),
            Error::OutOfRange { lvar } => write!(f, "value out of range for this {lvar}"),
            Error::Cycle { lvar } => write!(
                f,
                "cycle: computations of this {lvar} wait for each other (a key's value depends on itself)"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
