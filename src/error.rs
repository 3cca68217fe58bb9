//! The failures that end a run, one variant per stage, and the one table from failure to exit code
//! ([`Error::exit_code`]), used by `main.rs` and by the JSON summary.

use crate::exit;
use crate::guard::Refusal;
use crate::interrupt::Interrupted;
use crate::plan::PlanError;
use crate::purge::PurgeError;
use crate::runlock::RunLockError;
use crate::scan::ScanError;
use crate::swap::SwapError;
use crate::terminate::HoldersRemain;
use crate::verify::VerifyError;
use crate::workspace::WorkspaceError;

/// A failure that ends the run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Usage(#[from] PlanError),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    RunLock(#[from] RunLockError),
    #[error("failed to scan for holders: {0}")]
    Scan(#[from] ScanError),
    #[error(transparent)]
    HoldersRemain(#[from] HoldersRemain),
    #[error(transparent)]
    Swap(#[from] SwapError),
    #[error(transparent)]
    Purge(#[from] PurgeError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
    #[error("failed to install the Ctrl-C handler: {0}")]
    Signals(#[source] std::io::Error),
}

impl Error {
    /// The documented exit code of this failure.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            // Check arguments cargo rejects are known before anything is done: a usage error.
            Error::Usage(_) | Error::Verify(VerifyError::BadArguments { .. }) => exit::USAGE,
            Error::Workspace(_)
            | Error::Scan(_)
            | Error::Signals(_)
            | Error::RunLock(RunLockError::Io { .. } | RunLockError::NoRuntimeDir(_)) => exit::UNEXPECTED,
            Error::Refused(_) | Error::Swap(SwapError::Changed { .. }) => exit::REFUSED,
            // A lock held past the bound is held by a process that remains.
            Error::HoldersRemain(_) | Error::RunLock(RunLockError::Timeout { .. }) => exit::HOLDERS_REMAIN,
            Error::Swap(SwapError::Io(_)) | Error::Purge(_) => exit::REMOVE_FAILED,
            Error::Verify(_) => exit::VERIFY_FAILED,
            Error::Interrupted(_) | Error::RunLock(RunLockError::Interrupted { .. }) => exit::INTERRUPTED,
        }
    }
}

/// The exit code of a run's result.
#[must_use]
pub fn exit_code(result: &Result<(), Error>) -> i32 {
    result.as_ref().err().map_or(exit::OK, Error::exit_code)
}
