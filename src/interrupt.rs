//! Ctrl-C: the first one asks the run to stop at the next safe point, the second one exits at once.
//!
//! The handler only sets a flag and wakes whatever waits: a self-pipe that `poll` watches on Unix ([`unix`]), an
//! event object that `WaitForMultipleObjects` watches on Windows ([`windows`]).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::Interrupt;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::Interrupt;

/// A run stopped by Ctrl-C: when, and what was (not) done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("interrupted {during}")]
pub struct Interrupted {
    /// `while verifying`, `during the check`.
    pub during: &'static str,
    /// What the interruption left: `nothing was deleted`.
    pub note: &'static str,
}
