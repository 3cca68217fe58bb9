//! Typed failures of the pipeline and the exit codes they map to.
//!
//! Each variant is one failure class of `DESIGN.md`; [`Error::exit_code`] is the single table from failure to
//! exit code, used by `main.rs` and by the JSON `summary` line.

use std::path::PathBuf;

/// Exit codes of the command-line contract.
pub mod exit {
    /// Done, or nothing to do.
    pub const OK: i32 = 0;
    /// An unexpected error.
    pub const UNEXPECTED: i32 = 1;
    /// Bad usage (clap reports these itself).
    pub const USAGE: i32 = 2;
    /// Refused by the guard.
    pub const REFUSED: i32 = 3;
    /// Holders remain: they survived SIGKILL, could not be signalled, or `--no-kill` was given.
    pub const HOLDERS_REMAIN: i32 = 4;
    /// Removing or recreating the target dir failed.
    pub const REMOVE_FAILED: i32 = 5;
    /// The verifying `cargo check` failed.
    pub const VERIFY_FAILED: i32 = 6;
    /// Interrupted by Ctrl-C.
    pub const INTERRUPTED: i32 = 130;
}

/// A failure that ends the run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Workspace(String),
    #[error("{0}")]
    Refused(#[from] crate::guard::Refusal),
    #[error("{0}")]
    HoldersRemain(String),
    #[error("failed to {action} {path}: {source}; {hint}", path = path.display())]
    Remove {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
        hint: &'static str,
    },
    #[error(
        "left {} inside the old tree mounted and untouched: {}; the rest was removed. Release {} with `umount PATH` \
         (as root) and run cargo safeclean again: it removes what is left",
        if mounts.len() == 1 { "a mount point" } else { "mount points" },
        mounts.iter().map(|m| m.display().to_string()).collect::<Vec<_>>().join(", "),
        if mounts.len() == 1 { "it" } else { "them" }
    )]
    MountsLeft { mounts: Vec<PathBuf> },
    #[error("{0}")]
    Verify(String),
    #[error("interrupted: {0}")]
    Interrupted(&'static str),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    /// The documented exit code of this failure.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Workspace(_) | Error::Other(_) => exit::UNEXPECTED,
            Error::Refused(_) => exit::REFUSED,
            Error::HoldersRemain(_) => exit::HOLDERS_REMAIN,
            Error::Remove { .. } | Error::MountsLeft { .. } => exit::REMOVE_FAILED,
            Error::Verify(_) => exit::VERIFY_FAILED,
            Error::Interrupted(_) => exit::INTERRUPTED,
        }
    }

    /// Builds a removal failure that names the path and the usual way out.
    pub fn remove(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        // EPERM, unlike EACCES, survives the owner's own chmod: an immutable or append-only file, usually.
        let hint = match (source.raw_os_error(), source.kind()) {
            (Some(code), _) if code == rustix::io::Errno::PERM.raw_os_error() => {
                "it may be immutable or append-only (`lsattr` shows an `i` or `a`): clear that with `chattr -i -a` \
                 as root, or it belongs to another user in a sticky dir; then run cargo safeclean again"
            }
            (_, std::io::ErrorKind::PermissionDenied) => "check the owner and permissions, or run as the owner",
            _ => "fix the cause and run cargo safeclean again; it finishes what this run left",
        };
        Error::Remove { action, path: path.into(), source, hint }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
