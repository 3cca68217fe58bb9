//! The failures that end a run, one variant per stage, and the one table from failure to exit code
//! ([`Error::exit_code`]), used by `main.rs` and by the JSON summary.
//!
//! A failure speaks as cargo does: its `Display` is the one `error:` line (what went wrong, naming the path or pid),
//! [`Error::help`] what the user can do, [`Error::note`] what was or was not done. Each stage's error keeps its own
//! advice in `help()`/`note()` methods beside its messages; this enum only delegates, so that a message and its
//! advice are written in one place.

use crate::event::Failure;
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
    /// The stable name of this failure's class, for scripts (the JSON summary's `error.kind`). Each kind has one
    /// exit code; where one stage's failures end with different codes, they have different kinds.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::Verify(VerifyError::BadArguments { .. }) => "check-arguments",
            Error::Workspace(_) => "workspace",
            // A dir that changed under the swap is refused as the guard refuses it.
            Error::Refused(_) | Error::Swap(SwapError::Changed { .. }) => "refused",
            Error::RunLock(RunLockError::Io { .. } | RunLockError::NoRuntimeDir(_)) => "run-lock",
            Error::RunLock(RunLockError::Timeout { .. }) => "run-lock-timeout",
            Error::Scan(_) => "scan",
            Error::HoldersRemain(_) => "holders-remain",
            Error::Swap(SwapError::Io(_)) => "swap",
            Error::Purge(_) => "purge",
            Error::Verify(_) => "verify",
            Error::Interrupted(_) | Error::RunLock(RunLockError::Interrupted { .. }) => "interrupted",
            Error::Signals(_) => "signals",
        }
    }

    /// What the user can do about it: cargo's `help:` line.
    #[must_use]
    pub fn help(&self) -> Option<String> {
        match self {
            Error::Usage(e) => e.help(),
            Error::Workspace(e) => e.help(),
            Error::Refused(e) => e.help(),
            Error::RunLock(e) => e.help(),
            Error::Scan(e) => e.help(),
            Error::HoldersRemain(e) => e.help(),
            Error::Swap(e) => e.help(),
            Error::Purge(e) => e.help(),
            Error::Verify(e) => e.help(),
            Error::Interrupted(_) | Error::Signals(_) => None,
        }
    }

    /// What was or was not done, when the user needs to know (`nothing was deleted`): cargo's `note:` line.
    #[must_use]
    pub fn note(&self) -> Option<String> {
        match self {
            Error::Refused(e) => e.note(),
            Error::RunLock(e) => e.note(),
            Error::HoldersRemain(e) => e.note(),
            Error::Swap(e) => e.note(),
            Error::Purge(e) => e.note(),
            Error::Verify(e) => e.note(),
            Error::Interrupted(e) => Some(e.note.to_string()),
            Error::Usage(_) | Error::Workspace(_) | Error::Scan(_) | Error::Signals(_) => None,
        }
    }

    /// The failure as every reporter shows it.
    #[must_use]
    pub fn failure(&self) -> Failure {
        Failure { kind: self.kind(), message: self.to_string(), help: self.help(), note: self.note() }
    }

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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::guard::Reason;
    use crate::purge::RemoveError;
    use crate::workspace::CargoSaid;

    /// The kinds the README documents, in its order.
    const DOCUMENTED: &[&str] = &[
        "usage",
        "check-arguments",
        "workspace",
        "refused",
        "run-lock",
        "run-lock-timeout",
        "scan",
        "holders-remain",
        "swap",
        "purge",
        "verify",
        "interrupted",
        "signals",
    ];

    /// One failure of every kind, and of every variant whose kind or exit code differs from its siblings'.
    fn samples() -> Vec<Error> {
        let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let cargo = CargoSaid::parse("error: could not find `Cargo.toml` in `/x` or any parent directory\n");
        vec![
            PlanError::BadEnv { name: "SAFECLEAN_PLATFORM", value: "x".into(), expected: "one of: native".into() }
                .into(),
            VerifyError::BadArguments { command: "cargo check --bogus".into(), reason: "bad".into(), tip: None }.into(),
            WorkspaceError::NotAWorkspace {
                dir: "/x".into(),
                reason: cargo.error.unwrap(),
                tip: cargo.tip,
                manifest: false,
            }
            .into(),
            Refusal { path: "/w".into(), reason: Reason::NotACargoTarget }.into(),
            SwapError::Changed { path: "/w/target".into(), what: "it is a symlink now".into() }.into(),
            RunLockError::NoRuntimeDir("/run/user/1000: not ours".into()).into(),
            RunLockError::Io { dir: "/w/target".into(), lock: "/run/l".into(), source: io() }.into(),
            RunLockError::Timeout {
                dir: "/w/target".into(),
                lock: "/run/l".into(),
                holder: "pid 7 cargo-safeclean".into(),
                waited: Duration::from_secs(1),
            }
            .into(),
            RunLockError::Interrupted { dir: "/w/target".into() }.into(),
            #[cfg(unix)]
            ScanError::Proc(io()).into(),
            #[cfg(windows)]
            ScanError::Handles(io()).into(),
            HoldersRemain::NoKill { dir: "/w/target".into(), pids: vec![7] }.into(),
            SwapError::Io(RemoveError::new("rename", "/w/target", io())).into(),
            PurgeError::MountsLeft { mounts: vec!["/w/target/.safeclean-trash-1/m".into()] }.into(),
            VerifyError::Failed { command: "cargo check".into(), exit_code: Some(101) }.into(),
            Interrupted { during: "while verifying", note: "nothing was deleted" }.into(),
            Error::Signals(io()),
        ]
    }

    #[test]
    fn each_kind_has_one_exit_code_and_is_documented() {
        let mut codes: HashMap<&str, i32> = HashMap::new();
        for e in samples() {
            let code = *codes.entry(e.kind()).or_insert(e.exit_code());
            assert_eq!(code, e.exit_code(), "{} ends with two exit codes", e.kind());
            assert!(e.kind().bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{}", e.kind());
        }
        let mut kinds: Vec<&str> = codes.into_keys().collect();
        kinds.sort_unstable();
        let mut documented = DOCUMENTED.to_vec();
        documented.sort_unstable();
        assert_eq!(kinds, documented);
        let readme = include_str!("../README.md");
        for kind in DOCUMENTED {
            assert!(readme.contains(&format!("`{kind}`")), "the README does not document the kind {kind}");
        }
    }

    /// The message is the one `error:` line: no advice in it (that is `help`), and never cargo's own `error: `.
    #[test]
    fn messages_say_what_went_wrong_and_advice_goes_to_help() {
        for e in samples() {
            let f = e.failure();
            assert!(!f.message.contains("error:"), "{}", f.message);
            assert!(!f.message.contains('\n'), "{}", f.message);
            for advice in ["; nothing was", "run again", "; pass --", "; install", "set XDG", ". "] {
                assert!(!f.message.contains(advice), "{:?} in the message: {}", advice, f.message);
            }
            assert!(f.help.as_deref().is_none_or(|h| !h.is_empty() && !h.starts_with("help")), "{f:?}");
        }
        let f = Error::from(WorkspaceError::NotAWorkspace {
            dir: "/x".into(),
            reason: CargoSaid::parse("error: could not find `Cargo.toml` in `/x` or any parent directory")
                .error
                .unwrap(),
            tip: None,
            manifest: false,
        })
        .failure();
        assert_eq!(
            f.message,
            "`cargo metadata` failed in /x: could not find `Cargo.toml` in `/x` or any parent directory"
        );
        assert_eq!(f.help.as_deref(), Some("run this inside a cargo workspace or pass --manifest-path"));
    }
}
