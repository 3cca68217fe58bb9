//! A handle on a process this run did not spawn: a kqueue of its own watching the process's `NOTE_EXIT`
//! (`EVFILT_PROC`), registered and then checked against the identity the scan saw, so the exit it reports is that
//! process's. macOS has no pidfd: a signal still goes by pid, right after the kqueue says the process has not
//! exited and the table says it is the same one (pid, start time to the microsecond, name). The window between that
//! check and `kill(2)` is one system call, and a pid is reused only after the pid space wrapped around.
//!
//! Waiting watches every handle's kqueue, and the interrupt's pipe, from one more kqueue: woken by the exit itself,
//! never by a timer.

#![expect(unsafe_code, reason = "rustix's kevent is unsafe for the file descriptors an event may name; see SAFETY")]

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::kqueue::{Event, EventFilter, EventFlags, ProcessEvents, kevent, kqueue};
use rustix::io::Errno;
use rustix::process::Pid;

use crate::interrupt::Interrupt;
use crate::model::{Sig, SignalError};
use crate::platform::{Identity, Waited, portable, signal_error, signal_of};

/// The kqueue could not be made or the exit not watched: signals fall back to `kill(2)` and polling.
#[derive(Debug)]
pub struct Unsupported;

#[derive(Debug)]
pub struct Watched {
    identity: Identity,
    kq: OwnedFd,
    /// The exit was seen: a `NOTE_EXIT` event is delivered once.
    exited: AtomicBool,
}

impl Watched {
    /// Watches `target`'s exit; `Ok(None)` when that process is gone. `alive` checks the identity after the watch
    /// is registered: the process the pid named then was alive from the registration to the check, so the watch
    /// is on it.
    pub fn open(target: &Identity, alive: impl Fn(&Identity) -> bool) -> Result<Option<Self>, Unsupported> {
        let Some(pid) = i32::try_from(target.pid).ok().and_then(Pid::from_raw) else { return Ok(None) };
        let kq = kqueue().map_err(|_| Unsupported)?;
        let watch = Event::new(
            EventFilter::Proc { pid, flags: ProcessEvents::EXIT },
            EventFlags::ADD | EventFlags::ONESHOT,
            std::ptr::null_mut(),
        );
        // SAFETY: the event names a pid, not a file descriptor: nothing it names can be closed under the kqueue.
        match unsafe { kevent(&kq, &[watch], no_events(), Some(Duration::ZERO)) } {
            Ok(_) => {
                Ok(alive(target).then(|| Watched { identity: target.clone(), kq, exited: AtomicBool::new(false) }))
            }
            Err(Errno::SRCH) => Ok(None),
            Err(_) => Err(Unsupported),
        }
    }

    #[must_use]
    pub fn pid(&self) -> u32 {
        self.identity.pid
    }

    /// Sends `sig` if the process has not exited and is still the one the scan saw.
    pub fn signal(&self, sig: Sig, alive: impl Fn(&Identity) -> bool) -> Result<(), SignalError> {
        if self.exited_now() || !alive(&self.identity) {
            return Err(SignalError::Gone);
        }
        let pid = i32::try_from(self.identity.pid).ok().and_then(Pid::from_raw).ok_or(SignalError::Gone)?;
        rustix::process::kill_process(pid, signal_of(sig)).map_err(signal_error)
    }

    /// Whether the process has exited, without waiting.
    #[must_use]
    pub fn exited_now(&self) -> bool {
        if self.exited.load(Ordering::SeqCst) {
            return true;
        }
        let mut events: Vec<Event> = Vec::with_capacity(1);
        // SAFETY: no change is registered; the watch already registered names a pid, not a file descriptor.
        let seen = matches!(
            unsafe { kevent(&self.kq, &[], spare_capacity(&mut events), Some(Duration::ZERO)) },
            Ok(n) if n > 0
        );
        if seen {
            self.exited.store(true, Ordering::SeqCst);
        }
        seen
    }
}

/// No room for events: a call that only registers changes, and so reports a change that failed as its error.
fn no_events() -> &'static mut [Event] {
    &mut []
}

/// Waits until one of `handles` exits, `until` passes, or an interrupt arrives. One kqueue watches each handle's
/// kqueue (readable once its exit is pending) and the interrupt's wake-up pipe. Where that kqueue cannot be made,
/// the handles are polled.
pub fn wait_any(handles: &[&Watched], until: Instant, interrupt: &Interrupt) -> Waited {
    let exited = || handles.iter().enumerate().filter(|(_, h)| h.exited_now()).map(|(i, _)| i).collect::<Vec<_>>();
    let done = exited();
    if !done.is_empty() || interrupt.is_set() {
        return Waited { exited: done, interrupted: interrupt.is_set() };
    }
    let Ok(all) = kqueue() else { return portable::kill::poll_until(exited, until, interrupt) };
    let read = |fd: std::os::fd::BorrowedFd<'_>| {
        Event::new(EventFilter::Read(fd.as_raw_fd()), EventFlags::ADD, std::ptr::null_mut())
    };
    let changes: Vec<Event> =
        std::iter::once(read(interrupt.fd())).chain(handles.iter().map(|h| read(h.kq.as_fd()))).collect();
    // SAFETY: the descriptors named (the interrupt's pipe, each handle's kqueue) are borrowed for this whole
    // function, and `all` is closed when it returns, before any of them can be.
    if unsafe { kevent(&all, &changes, no_events(), Some(Duration::ZERO)) }.is_err() {
        return portable::kill::poll_until(exited, until, interrupt);
    }
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let mut events: Vec<Event> = Vec::with_capacity(changes.len());
        // SAFETY: as above; nothing new is registered.
        match unsafe { kevent(&all, &[], spare_capacity(&mut events), Some(left)) } {
            Ok(_) => {
                let woken = events
                    .iter()
                    .any(|e| matches!(e.filter(), EventFilter::Read(fd) if fd == interrupt.fd().as_raw_fd()));
                let done = exited();
                if !done.is_empty() || woken || interrupt.is_set() || Instant::now() >= until {
                    return Waited { exited: done, interrupted: woken || interrupt.is_set() };
                }
            }
            Err(Errno::INTR) if !interrupt.is_set() => {}
            Err(_) => return Waited { exited: exited(), interrupted: interrupt.is_set() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::macos::proc::{is_alive, process};

    /// Runs only on a Mac: a child watched by its kqueue, not woken for while it lives, woken for when a signal sent
    /// through the handle ends it; a stale identity is not watched; an interrupt wakes the wait.
    #[test]
    fn the_exit_wakes_the_wait_and_nothing_else_does() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let id = Identity::from(&process(child.id()).unwrap());
        assert!(Watched::open(&Identity { start_time: id.start_time + 1, ..id.clone() }, is_alive).unwrap().is_none());
        let h = Watched::open(&id, is_alive).unwrap().unwrap();
        let interrupt = Interrupt::manual().unwrap();
        let waited = wait_any(&[&h], Instant::now() + Duration::from_millis(50), &interrupt);
        assert!(waited.exited.is_empty() && !waited.interrupted && !h.exited_now());
        h.signal(Sig::Term, is_alive).unwrap();
        let waited = wait_any(&[&h], Instant::now() + Duration::from_secs(10), &interrupt);
        assert_eq!(waited.exited, [0]);
        assert_eq!(h.signal(Sig::Term, is_alive), Err(SignalError::Gone), "never a signal after the exit");
        child.wait().unwrap();

        let mut other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let h = Watched::open(&Identity::from(&process(other.id()).unwrap()), is_alive).unwrap().unwrap();
        interrupt.trigger();
        let waited = wait_any(&[&h], Instant::now() + Duration::from_secs(10), &interrupt);
        assert!(waited.interrupted && waited.exited.is_empty());
        other.kill().unwrap();
        other.wait().unwrap();
    }
}
