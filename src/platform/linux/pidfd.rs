//! A pidfd pins a process: once opened and checked against the start time the scan saw, no signal sent through it
//! can reach a stranger who got the same pid, and `poll` on it reports the exit as it happens (Linux ≥ 5.3).

use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, pidfd_open, pidfd_send_signal};

use crate::interrupt::Interrupt;
use crate::model::{Sig, SignalError};
use crate::platform::{Identity, Waited, signal_error, signal_of};

/// `pidfd_open` does not exist here (kernel < 5.3, or a sandbox that forbids it).
#[derive(Debug)]
pub struct Unsupported;

#[derive(Debug)]
pub struct Pidfd {
    pid: u32,
    fd: OwnedFd,
}

impl Pidfd {
    /// Opens a pidfd on `target`; `Ok(None)` when that process is gone. `alive` checks the identity after the
    /// open: the pidfd pins whatever process has this pid, which is ours only if its start time matches.
    pub fn open(target: &Identity, alive: impl Fn(&Identity) -> bool) -> Result<Option<Self>, Unsupported> {
        let pid = target.pid;
        let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else { return Ok(None) };
        match pidfd_open(raw, PidfdFlags::empty()) {
            Ok(fd) => Ok(alive(target).then_some(Pidfd { pid, fd })),
            Err(Errno::SRCH) => Ok(None),
            Err(_) => Err(Unsupported),
        }
    }

    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `sig`. The pidfd pins the process checked at open: no identity check is needed, and `_alive`, which
    /// handles that do not pin their process call, is not.
    pub fn signal(&self, sig: Sig, _alive: impl Fn(&Identity) -> bool) -> Result<(), SignalError> {
        pidfd_send_signal(&self.fd, signal_of(sig)).map_err(signal_error)
    }

    /// Whether the process has exited, without waiting.
    #[must_use]
    pub fn exited_now(&self) -> bool {
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        matches!(poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(n) if n > 0)
    }
}

/// Waits on the pidfds and the interrupt's wake-up pipe together: woken by the exit itself, not by a timer.
pub fn wait_any(handles: &[&Pidfd], until: Instant, interrupt: &Interrupt) -> Waited {
    loop {
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(handles.len() + 1);
        fds.push(PollFd::from_borrowed_fd(interrupt.fd(), PollFlags::IN));
        fds.extend(handles.iter().map(|h| PollFd::from_borrowed_fd(h.fd.as_fd(), PollFlags::IN)));
        let left = until.saturating_duration_since(Instant::now());
        let timeout =
            Timespec { tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX), tv_nsec: left.subsec_nanos().into() };
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) => {
                let exited =
                    fds[1..].iter().enumerate().filter(|(_, f)| !f.revents().is_empty()).map(|(i, _)| i).collect();
                let interrupted = !fds[0].revents().is_empty() || interrupt.is_set();
                return Waited { exited, interrupted };
            }
            Err(Errno::INTR) if !interrupt.is_set() => {}
            Err(_) => return Waited { exited: Vec::new(), interrupted: interrupt.is_set() },
        }
    }
}
