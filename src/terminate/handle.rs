//! A handle on a process we did not spawn, safe against pid reuse.
//!
//! We cannot use `std::process::Child` (the processes are not our children) nor sysinfo's `wait()` (it polls
//! forever on non-children). On Linux ≥ 5.3 a pidfd pins the process: it is opened, then checked against the
//! start time seen by the scan, and from then on no signal can reach a stranger and `poll` reports the exit.
//! Elsewhere (and when forced) the start time is re-checked before each `kill(2)` and exit is polled with backoff.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

use super::machine::{Sig, SignalError};
use crate::cli::SignalBackend;
use crate::interrupt::Interrupt;
use crate::process;

#[derive(Debug)]
pub enum ProcHandle {
    Pidfd { pid: u32, fd: OwnedFd },
    Kill { pid: u32, start_time: u64 },
}

impl ProcHandle {
    /// Opens a handle on `(pid, start_time)`; `None` when that process is already gone (or a zombie).
    #[must_use]
    pub fn open(pid: u32, start_time: u64, backend: SignalBackend) -> Option<Self> {
        if backend != SignalBackend::Kill {
            let raw = i32::try_from(pid).ok().and_then(Pid::from_raw)?;
            match pidfd_open(raw, PidfdFlags::empty()) {
                // The pidfd now pins whatever process has this pid; it is ours only if the start time matches.
                Ok(fd) => return process::is_alive(pid, start_time).then_some(ProcHandle::Pidfd { pid, fd }),
                Err(Errno::SRCH) => return None,
                // ENOSYS (kernel < 5.3) and the like: fall back to kill(2).
                Err(_) => {}
            }
        }
        process::is_alive(pid, start_time).then_some(ProcHandle::Kill { pid, start_time })
    }

    #[must_use]
    pub fn pid(&self) -> u32 {
        match self {
            ProcHandle::Pidfd { pid, .. } | ProcHandle::Kill { pid, .. } => *pid,
        }
    }

    pub fn signal(&self, sig: Sig) -> Result<(), SignalError> {
        let signal = match sig {
            Sig::Term => Signal::TERM,
            Sig::Cont => Signal::CONT,
            Sig::Kill => Signal::KILL,
        };
        let result = match self {
            ProcHandle::Pidfd { fd, .. } => pidfd_send_signal(fd, signal),
            ProcHandle::Kill { pid, start_time } => {
                if !process::is_alive(*pid, *start_time) {
                    return Err(SignalError::Gone);
                }
                let raw = i32::try_from(*pid).ok().and_then(Pid::from_raw).ok_or(SignalError::Gone)?;
                rustix::process::kill_process(raw, signal)
            }
        };
        result.map_err(|e| match e {
            Errno::SRCH => SignalError::Gone,
            Errno::PERM => SignalError::Denied(
                "operation not permitted (EPERM): the process belongs to another user; run as that user or root".into(),
            ),
            other => SignalError::Denied(other.to_string()),
        })
    }

    fn exited_now(&self) -> bool {
        match self {
            ProcHandle::Pidfd { fd, .. } => {
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                matches!(poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(n) if n > 0)
            }
            ProcHandle::Kill { pid, start_time } => !process::is_alive(*pid, *start_time),
        }
    }
}

/// The result of one wait.
#[derive(Debug, Default)]
pub struct Waited {
    /// Indices (into the slice given to [`wait_any`]) of the processes that exited.
    pub exited: Vec<usize>,
    pub interrupted: bool,
}

/// Waits until one of `handles` exits, `until` passes, or an interrupt arrives.
pub fn wait_any(handles: &[&ProcHandle], until: Instant, interrupt: &Interrupt) -> Waited {
    if handles.iter().all(|h| matches!(h, ProcHandle::Pidfd { .. })) {
        poll_pidfds(handles, until, interrupt)
    } else {
        poll_with_backoff(handles, until, interrupt)
    }
}

fn poll_pidfds(handles: &[&ProcHandle], until: Instant, interrupt: &Interrupt) -> Waited {
    loop {
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(handles.len() + 1);
        fds.push(PollFd::from_borrowed_fd(interrupt.fd(), PollFlags::IN));
        for h in handles {
            if let ProcHandle::Pidfd { fd, .. } = h {
                fds.push(PollFd::from_borrowed_fd(fd.as_fd(), PollFlags::IN));
            }
        }
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

fn poll_with_backoff(handles: &[&ProcHandle], until: Instant, interrupt: &Interrupt) -> Waited {
    let mut pause = Duration::from_millis(1);
    loop {
        let exited: Vec<usize> = handles.iter().enumerate().filter(|(_, h)| h.exited_now()).map(|(i, _)| i).collect();
        let now = Instant::now();
        if !exited.is_empty() || now >= until || interrupt.is_set() {
            return Waited { exited, interrupted: interrupt.is_set() };
        }
        std::thread::sleep(pause.min(until - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
