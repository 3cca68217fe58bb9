//! Signals through `kill(2)`, for where there is no pidfd: the identity `(pid, start time)` is checked right
//! before each signal, and exits are noticed by polling (1 ms at first, backing off to 20 ms).
//!
//! A pid reused between the check and the `kill` would get the signal; the window is one syscall long, and a pid
//! is reused only after the whole pid space has wrapped around.

use std::time::{Duration, Instant};

use rustix::process::Pid;

use crate::interrupt::Interrupt;
use crate::model::{Sig, SignalError};
use crate::platform::{Waited, signal_error, signal_of};

#[derive(Debug)]
pub struct Killable {
    pid: u32,
    start_time: u64,
}

impl Killable {
    /// A handle on `(pid, start_time)`, or `None` when that process is gone.
    #[must_use]
    pub fn open(pid: u32, start_time: u64, alive: fn(u32, u64) -> bool) -> Option<Self> {
        alive(pid, start_time).then_some(Killable { pid, start_time })
    }

    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    #[must_use]
    pub fn start_time(&self) -> u64 {
        self.start_time
    }

    /// Sends `sig` if the process is still the one the scan saw.
    pub fn signal(&self, sig: Sig, alive: fn(u32, u64) -> bool) -> Result<(), SignalError> {
        if !alive(self.pid, self.start_time) {
            return Err(SignalError::Gone);
        }
        let raw = i32::try_from(self.pid).ok().and_then(Pid::from_raw).ok_or(SignalError::Gone)?;
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
