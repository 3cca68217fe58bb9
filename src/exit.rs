//! The exit codes of the command-line contract. [`crate::error::Error::exit_code`] is the one table that maps
//! failures to them.

/// Done, or nothing to do.
pub const OK: i32 = 0;
/// An unexpected error (for example: not in a cargo workspace).
pub const UNEXPECTED: i32 = 1;
/// Bad usage: clap's errors, and environment variables with values the tool does not know.
pub const USAGE: i32 = 2;
/// Refused by the guard.
pub const REFUSED: i32 = 3;
/// Holders remain: they survived SIGKILL, could not be signalled, or `--no-kill` was given.
pub const HOLDERS_REMAIN: i32 = 4;
/// Removing or recreating the target dir failed, or a mount point was left inside the old tree.
pub const REMOVE_FAILED: i32 = 5;
/// The verifying `cargo check` failed, or could not be started.
pub const VERIFY_FAILED: i32 = 6;
/// Interrupted by Ctrl-C (or SIGTERM).
pub const INTERRUPTED: i32 = 130;
