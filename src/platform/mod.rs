//! The platform seam: the only code that reads `/proc`, holds pidfds, walks `/proc/self/fd` or calls
//! Linux-only syscalls. One module per implementation, as fuc keeps one `compat` module per OS:
//!
//! - [`linux`]: `/proc` for the process table and what each process holds (with `/proc/locks`), pidfds for
//!   signals, `openat2`/`statx`/mountinfo for mount points and `/proc/self/fd` for a chmod that cannot follow a
//!   symlink;
//! - [`portable`]: what any Unix has: `lsof -F` for holders and `kill(2)` guarded by an identity check for signals.
//!
//! A [`Platform`] says which implementation serves each piece. The plan builds it once: `SAFECLEAN_PLATFORM`
//! picks every piece, and the per-piece switches (`SAFECLEAN_SCAN_BACKEND`, `SAFECLEAN_SIGNAL_BACKEND`) override
//! the piece they name. Both implementations are compiled on Linux, so CI tests both.

#[cfg(target_os = "linux")]
pub mod linux;
pub mod portable;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Instant;

pub use linux::fs::{MountCheck, Mounts, OpenDirError};

use crate::interrupt::Interrupt;
use crate::model::{Found, Process, Roots, Sig, SignalError, Table, Uninspectable};

/// Who says which process holds what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holders {
    /// `/proc/PID/{fd,maps,cwd,exe,root}` and `/proc/locks`.
    Proc,
    /// `lsof -F`, run as `program`.
    Lsof { program: OsString },
}

/// How processes are signalled and waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    /// A pidfd pins the process: no signal reaches a stranger, and `poll` reports the exit (Linux ≥ 5.3; falls
    /// back to [`Signals::Kill`] where `pidfd_open` is missing).
    Pidfd,
    /// `kill(2)` after an identity check, and exits noticed by polling.
    Kill,
}

/// Which implementation serves each piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub holders: Holders,
    pub signals: Signals,
}

impl Platform {
    /// This OS's own implementation of every piece.
    #[must_use]
    pub fn native() -> Self {
        Platform { holders: Holders::Proc, signals: Signals::Pidfd }
    }

    /// The portable implementation of every piece that has one, with `lsof` as the holder source.
    #[must_use]
    pub fn portable(lsof: OsString) -> Self {
        Platform { holders: Holders::Lsof { program: lsof }, signals: Signals::Kill }
    }

    /// Reads the process table and, when the holder source is `/proc`, what every process holds, before anyone
    /// knows which dirs matter (see [`crate::scan`]). `exclude` (this process) is not inspected.
    pub fn snapshot(&self, exclude: u32) -> Result<Snapshot, ScanError> {
        let with_handles = self.holders == Holders::Proc;
        Ok(Snapshot { raw: linux::proc::snapshot(exclude, with_handles)?, holders: self.holders.clone() })
    }

    /// Fills in the command line and exe of a process (read only for the few that may be reported).
    pub fn describe(&self, p: &mut Process) {
        linux::proc::describe(p);
    }

    /// The current dir of `pid`, if it can be read.
    #[must_use]
    pub fn cwd(&self, pid: u32) -> Option<PathBuf> {
        linux::proc::cwd(pid)
    }

    /// The start time of our own child `pid` (its identity, which cannot be reused before we reap it).
    #[must_use]
    pub fn start_time(&self, pid: u32) -> Option<u64> {
        linux::proc::read_stat(pid).ok().flatten().map(|s| s.start_time)
    }

    /// Opens a handle on `(pid, start_time)`; `None` when that process is gone (or a zombie).
    #[must_use]
    pub fn open_process(&self, pid: u32, start_time: u64) -> Option<ProcHandle> {
        // Where `pidfd_open` is missing (ENOSYS, kernel < 5.3), kill(2) below.
        if self.signals == Signals::Pidfd
            && let Ok(handle) = linux::pidfd::Pidfd::open(pid, start_time, linux::proc::is_alive)
        {
            return handle.map(ProcHandle::Pidfd);
        }
        portable::kill::Killable::open(pid, start_time, linux::proc::is_alive).map(ProcHandle::Kill)
    }
}

/// Linux appends ` (deleted)` to links whose target was unlinked, and lsof repeats it; the path is what matters.
#[must_use]
pub fn strip_deleted(link: OsString) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let mut bytes = link.into_vec();
    if bytes.ends_with(b" (deleted)") {
        bytes.truncate(bytes.len() - b" (deleted)".len());
    }
    PathBuf::from(OsString::from_vec(bytes))
}

/// What [`Platform::snapshot`] read, to be narrowed to the dirs that matter with [`Snapshot::holders`].
#[derive(Debug)]
pub struct Snapshot {
    raw: linux::proc::Raw,
    holders: Holders,
}

impl Snapshot {
    /// What is held under `roots`, with the process table and the processes that could not be inspected.
    pub fn holders(self, roots: &Roots, exclude: u32) -> Result<(Vec<Found>, Table, Uninspectable), ScanError> {
        let (mut found, table, uninspectable) = self.raw.filter(roots);
        if let Holders::Lsof { program } = &self.holders {
            found = portable::lsof::scan(program, roots, exclude, &table)?;
        }
        Ok((found, table, uninspectable))
    }
}

/// Why the process table or the holders could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("failed to list /proc: {0}; is procfs mounted?")]
    Proc(#[source] std::io::Error),
    #[error("failed to run {}: {source}; install lsof or use the /proc backend", program.to_string_lossy())]
    LsofSpawn {
        program: OsString,
        #[source]
        source: std::io::Error,
    },
    #[error("{} printed nothing ({status}); is it installed and allowed to read processes?", program.to_string_lossy())]
    LsofSilent { program: OsString, status: std::process::ExitStatus },
}

/// A handle on a process we did not spawn, safe against pid reuse.
///
/// We cannot use `std::process::Child` (the processes are not our children) nor sysinfo's `wait()` (it polls
/// forever on non-children).
#[derive(Debug)]
pub enum ProcHandle {
    Pidfd(linux::pidfd::Pidfd),
    Kill(portable::kill::Killable),
}

impl ProcHandle {
    #[must_use]
    pub fn pid(&self) -> u32 {
        match self {
            ProcHandle::Pidfd(h) => h.pid(),
            ProcHandle::Kill(h) => h.pid(),
        }
    }

    pub fn signal(&self, sig: Sig) -> Result<(), SignalError> {
        match self {
            ProcHandle::Pidfd(h) => h.signal(sig),
            ProcHandle::Kill(h) => h.signal(sig, linux::proc::is_alive),
        }
    }
}

/// The signal `sig` names.
#[must_use]
pub fn signal_of(sig: Sig) -> rustix::process::Signal {
    use rustix::process::Signal;
    match sig {
        Sig::Term => Signal::TERM,
        Sig::Cont => Signal::CONT,
        Sig::Kill => Signal::KILL,
    }
}

/// What a failed signal means.
#[must_use]
pub fn signal_error(e: rustix::io::Errno) -> SignalError {
    use rustix::io::Errno;
    match e {
        Errno::SRCH => SignalError::Gone,
        Errno::PERM => SignalError::Denied(
            "operation not permitted (EPERM): the process belongs to another user; run as that user or root".into(),
        ),
        other => SignalError::Denied(other.to_string()),
    }
}

/// The result of one wait.
#[derive(Debug, Default)]
pub struct Waited {
    /// Indices (into the slice given to [`wait_any`]) of the processes that exited.
    pub exited: Vec<usize>,
    pub interrupted: bool,
}

/// Waits until one of `handles` exits, `until` passes, or an interrupt arrives: woken by the exit itself when
/// every handle is a pidfd, polling otherwise.
pub fn wait_any(handles: &[&ProcHandle], until: Instant, interrupt: &Interrupt) -> Waited {
    let pidfds: Option<Vec<&linux::pidfd::Pidfd>> = handles
        .iter()
        .map(|h| match h {
            ProcHandle::Pidfd(p) => Some(p),
            ProcHandle::Kill(_) => None,
        })
        .collect();
    match pidfds {
        Some(pidfds) => linux::pidfd::wait_any(&pidfds, until, interrupt),
        None => portable::kill::poll_until(
            || {
                handles
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| match h {
                        ProcHandle::Pidfd(p) => p.exited_now(),
                        ProcHandle::Kill(k) => !linux::proc::is_alive(k.pid(), k.start_time()),
                    })
                    .map(|(i, _)| i)
                    .collect()
            },
            until,
            interrupt,
        ),
    }
}
