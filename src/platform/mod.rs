//! The platform seam: the only code that reads `/proc` or libproc, holds pidfds or kqueues, walks `/proc/self/fd` or
//! calls OS-specific syscalls. One module per implementation, chosen whole with `#[cfg]` on the `mod` line, as std's
//! `sys/` and nextest's `runner/{unix,windows}.rs` are, so that each compiles as a whole and none is half-compiled:
//!
//! - `linux` (the native implementation on Linux): `/proc` for the process table and what each process holds
//!   (with `/proc/locks`), pidfds for signals, `openat2`/`statx`/mountinfo for mount points and `/proc/self/fd` for
//!   a chmod that cannot follow a symlink;
//! - `macos` (the native implementation on macOS): libproc for the process table and what each process holds,
//!   kqueue (`EVFILT_PROC`/`NOTE_EXIT`) for exits, an identity check before each `kill(2)`;
//! - [`windows`] (the native implementation on Windows): the system handle table and module snapshots for what each
//!   process holds, sysinfo for the table, process handles (`OpenProcess`, `TerminateProcess`, a wait on the handle)
//!   for stopping;
//! - [`portable`]: what any Unix has — sysinfo and `getpgid` for the process table, `lsof -F` for holders,
//!   `kill(2)` guarded by an identity check for signals, `openat`/`fstat`/`fchmodat` for the purge. It is compiled
//!   and tested everywhere, chosen piece by piece or whole (`SAFECLEAN_PLATFORM=portable`).
//!
//! What a native scan reads becomes holders in [`held`], the same code on every OS. On Unix (the seam in `unix.rs`)
//! a [`Platform`] says which
//! implementation serves each piece: `Native` is this OS's own (every native module offers the same functions), the
//! other variant the portable one. The plan builds it once: `SAFECLEAN_PLATFORM` picks every piece, and the
//! per-piece switches override the piece they name.

pub mod held;
#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(target_os = "macos")]
pub mod macos;
#[cfg(unix)]
pub mod portable;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
pub mod windows;

#[cfg(unix)]
pub use unix::*;
#[cfg(windows)]
pub use windows::{
    Dir, Files, Platform, ProcHandle, ScanError, Snapshot, detached, disk_space, hold_log, id_of_path, interrupt_group,
    leave_session, lower_priority, own_group, remove_own_stderr, root_spelling, run_as, say_ready, stderr_stdio,
    terminal_columns, with_own_rights,
};

use crate::model::Process;

/// What identifies a process across time: a pid alone can be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub pid: u32,
    /// In the unit of the process table it came from (clock ticks since boot for `/proc`, microseconds since the
    /// epoch for libproc, seconds for sysinfo).
    pub start_time: u64,
    /// Compared too, which matters where start times are coarse (sysinfo's whole seconds). A process that changed
    /// its name (by exec) counts as gone; the re-scan after the termination finds it again under its new name.
    pub name: String,
}

impl From<&Process> for Identity {
    fn from(p: &Process) -> Self {
        Identity { pid: p.pid, start_time: p.start_time, name: p.name.clone() }
    }
}

/// The result of one wait.
#[derive(Debug, Default)]
pub struct Waited {
    /// Indices (into the slice given to [`Platform::wait_any`]) of the processes that exited.
    pub exited: Vec<usize>,
    pub interrupted: bool,
}
