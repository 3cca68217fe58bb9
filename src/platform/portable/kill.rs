//! Signals through `kill(2)`, for where there is no pidfd: the process's identity (pid, start time and, where
//! start times are coarse, name) is checked right before each signal, and exits are noticed by polling (1 ms at
//! first, backing off to 20 ms).
//!
//! A pid reused between the check and the `kill` would get the signal; the window is one syscall long, and a pid
//! is reused only after the whole pid space has wrapped around.

use std::time::{Duration, Instant};

use rustix::process::Pid;

use crate::interrupt::Interrupt;
use crate::model::{Sig, SignalError};
use crate::platform::{Identity, Waited, signal_error, signal_of};

#[derive(Debug)]
pub struct Killable {
    identity: Identity,
}

impl Killable {
    /// A handle on `identity`, or `None` when that process is gone; `alive` checks the identity.
    #[must_use]
    pub fn open(identity: Identity, alive: impl Fn(&Identity) -> bool) -> Option<Self> {
        alive(&identity).then_some(Killable { identity })
    }

    #[must_use]
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Sends `sig` if the process is still the one the scan saw.
    pub fn signal(&self, sig: Sig, alive: impl Fn(&Identity) -> bool) -> Result<(), SignalError> {
        if !alive(&self.identity) {
            return Err(SignalError::Gone);
        }
        let raw = i32::try_from(self.identity.pid).ok().and_then(Pid::from_raw).ok_or(SignalError::Gone)?;
        rustix::process::kill_process(raw, signal_of(sig)).map_err(signal_error)
    }
}

/// Calls `exited` (which returns the indices of the processes that are gone) until it finds one, `until`
/// passes, or an interrupt arrives.
pub fn poll_until(mut exited: impl FnMut() -> Vec<usize>, until: Instant, interrupt: &Interrupt) -> Waited {
    let mut pause = Duration::from_millis(1);
    loop {
        let gone = exited();
        let now = Instant::now();
        if !gone.is_empty() || now >= until || interrupt.is_set() {
            return Waited { exited: gone, interrupted: interrupt.is_set() };
        }
        std::thread::sleep(pause.min(until - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
