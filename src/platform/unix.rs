//! The seam on Unix: which implementation, native or [`portable`], serves each piece, chosen at run time.

/// This OS's own implementation, by one name on every Unix.
#[cfg(target_os = "linux")]
pub use super::linux as native;
/// This OS's own implementation, by one name on every Unix.
#[cfg(target_os = "macos")]
pub use super::macos as native;
use super::{Identity, Waited, held, portable};

use std::collections::HashSet;
use std::ffi::{CStr, OsString};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::interrupt::Interrupt;
use crate::model::{Found, Owner, Process, Roots, Sig, SignalError, Table, Uninspectable};

/// An open dir that file work is done relative to.
pub type Dir = OwnedFd;

/// The identity of what `path` leads to now (links followed), if it exists.
#[must_use]
pub fn id_of_path(path: &Path) -> Option<crate::model::FileId> {
    rustix::fs::stat(path).ok().map(|st| file_id(&st))
}

/// The bytes this user may still write on the filesystem of `dir` (what `df` shows as available), and its size.
#[must_use]
pub fn disk_space(dir: &Path) -> Option<(u64, u64)> {
    let st = rustix::fs::statvfs(dir).ok()?;
    let unit = st.f_frsize.max(1);
    Some((st.f_bavail.saturating_mul(unit), st.f_blocks.saturating_mul(unit)))
}

/// Nothing to add to a deleter's start: it leaves the run's session itself ([`leave_session`]).
pub fn detached(_cmd: &mut std::process::Command, _breakaway: bool) {}

/// The deleter leaves the run's session (no terminal to lose; a hang-up is ignored too, in case one comes anyway)
/// and the target dir's tree (`/`).
pub fn leave_session() {
    let _ = rustix::process::setsid();
    let _ = signal_hook::flag::register(signal_hook::consts::SIGHUP, std::sync::Arc::default());
    let _ = std::env::set_current_dir("/");
}

/// Says the deleter is ready on the pipe its parent reads one line from. The parent is gone soon after: stdout goes
/// to `/dev/null` first, and the line through a copy of the pipe, closed once written.
pub fn say_ready(ready: impl FnOnce(&mut dyn std::io::Write)) {
    let pipe = rustix::io::dup(std::io::stdout()).map(std::fs::File::from);
    if let Ok(null) = std::fs::File::options().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(null);
    }
    if let Ok(mut pipe) = pipe {
        ready(&mut pipe);
    }
}

/// Removes the file at `path` if that name still leads to this process's stderr (a deleter's own log).
pub fn remove_own_stderr(path: &Path) {
    use rustix::fs::{AtFlags, Mode, OFlags};
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let Ok(dir) = rustix::fs::open(dir, flags, Mode::empty()) else { return };
    let mine = rustix::fs::fstat(std::io::stderr()).map(|st| file_id(&st));
    let there = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).map(|st| file_id(&st));
    if mine.is_ok() && mine == there {
        let _ = rustix::fs::unlinkat(&dir, name, AtFlags::empty());
    }
}

/// The deleter holds the lock of its log (its stderr) until it exits: a run removes only logs nobody holds.
pub fn hold_log() {
    use std::os::fd::AsFd;
    let _ = rustix::fs::flock(std::io::stderr().as_fd(), rustix::fs::FlockOperation::NonBlockingLockExclusive);
}

/// Starts `cmd` in a process group of its own (its id is the child's pid).
pub fn own_group(cmd: &mut std::process::Command) {
    std::os::unix::process::CommandExt::process_group(cmd, 0);
}

/// SIGINT to the group [`own_group`] made for `child`, not yet reaped (so its pid is still its own).
pub fn interrupt_group(child: &mut std::process::Child) {
    let _ = rustix::process::kill_process_group(rustix::process::Pid::from_child(child), rustix::process::Signal::INT);
}

/// Runs `cmd` as `uid` and `gid` (a root run giving the verify to the workspace's owner).
pub fn run_as(cmd: &mut std::process::Command, uid: u32, gid: u32) {
    std::os::unix::process::CommandExt::uid(cmd, uid);
    std::os::unix::process::CommandExt::gid(cmd, gid);
}

/// This process's stderr, for a child's stdout.
pub fn stderr_stdio() -> std::io::Result<std::process::Stdio> {
    Ok(std::os::fd::AsFd::as_fd(&std::io::stderr()).try_clone_to_owned()?.into())
}

/// The width of the terminal on stderr, if it is one and says.
#[must_use]
pub fn terminal_columns() -> Option<u16> {
    rustix::termios::tcgetwinsize(std::io::stderr()).ok().map(|w| w.ws_col).filter(|&c| c > 0)
}

/// Where the process table (parents, groups, start times, command lines) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processes {
    /// This OS's own table: `/proc/PID/stat` (start times in clock ticks since boot) on Linux, `PROC_PIDTBSDINFO`
    /// (start times in microseconds) on macOS.
    Native,
    /// sysinfo (refreshed without threads) and `getpgid`; start times in whole seconds, so the identity check
    /// also compares the name.
    Sysinfo,
}

/// Who says which process holds what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holders {
    /// Read with the process table in one pass: `/proc/PID/{fd,maps,cwd,exe,root}` and `/proc/locks` on Linux;
    /// libproc's fd, vnode, path and region info on macOS.
    Native,
    /// `lsof -F`, run as `program`.
    Lsof { program: OsString },
}

/// How processes are signalled and waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    /// This OS's own handle on a process it did not spawn, woken by the exit itself: a pidfd on Linux (≥ 5.3; no
    /// signal reaches a stranger), a kqueue watching `NOTE_EXIT` on macOS (with an identity check before each
    /// signal). Falls back to [`Signals::Kill`] where the handle cannot be made.
    Native,
    /// `kill(2)` right after an identity check, and exits noticed by polling.
    Kill,
}

/// How the purge walks a tree: recognising mount points, and making a mode-000 dir accessible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    /// This OS's own walk, with a mount check forced (`None`: the best one, detected). On Linux
    /// `openat2(RESOLVE_NO_XDEV)` (or a fallback) and a chmod through `/proc/self/fd`; macOS's own walk is the
    /// portable one (no bind mounts, and an `fchmodat` that does not follow).
    Native(Option<MountCheck>),
    /// `openat` then the device (and, on Linux, the mount id), and `fchmodat(AT_SYMLINK_NOFOLLOW)`.
    Portable,
}

/// A native holder source or signal handle, by the name the hidden switches use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `/proc` (Linux).
    Proc,
    /// libproc (macOS).
    Libproc,
    /// pidfds (Linux).
    Pidfd,
    /// kqueue (macOS).
    Kqueue,
}

/// How a walk recognises mount points; forced only to test the fallbacks (Linux has three, macOS one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountCheck {
    /// Every descent is an `openat2(RESOLVE_NO_XDEV)`: crossing a mount fails with `EXDEV` (Linux ≥ 5.6).
    Openat2,
    /// `openat`, then the mount id from `statx(STATX_MNT_ID)` against the parent's (Linux ≥ 5.8).
    Statx,
    /// `openat`, then the device and `/proc/self/mountinfo`'s mount points.
    Mountinfo,
}

impl Files {
    /// What the purge and the swap walk trees with; `probe` is a dir on the filesystem to be walked.
    #[must_use]
    pub fn mounts(self, probe: &Path) -> Mounts {
        match self {
            Files::Native(check) => Mounts::Native(native::fs::mounts(check, probe)),
            Files::Portable => Mounts::Portable(portable::fs::Mounts),
        }
    }
}

/// Which implementation serves each piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub processes: Processes,
    pub holders: Holders,
    pub signals: Signals,
    pub files: Files,
}

impl Platform {
    /// This OS's own implementation of every piece.
    #[must_use]
    pub fn native() -> Self {
        Platform {
            processes: Processes::Native,
            holders: Holders::Native,
            signals: Signals::Native,
            files: Files::Native(None),
        }
    }

    /// The portable implementation of every piece, with `lsof` as the holder source.
    #[must_use]
    pub fn portable(lsof: OsString) -> Self {
        Platform {
            processes: Processes::Sysinfo,
            holders: Holders::Lsof { program: lsof },
            signals: Signals::Kill,
            files: Files::Portable,
        }
    }

    /// With the native holder source, and so the native process table: they are read in one pass, and start times
    /// from two tables must never meet in an identity check. `None` when `source` is not this OS's.
    #[must_use]
    pub fn with_native_holders(self, source: Source) -> Option<Self> {
        (source == native::HOLDERS).then_some(Platform {
            holders: Holders::Native,
            processes: Processes::Native,
            ..self
        })
    }

    /// With the native process handles; `None` when `source` is not this OS's.
    #[must_use]
    pub fn with_native_signals(self, source: Source) -> Option<Self> {
        (source == native::SIGNALS).then_some(Platform { signals: Signals::Native, ..self })
    }

    /// With the native walk and `check` forced; `None` where that check does not exist.
    #[must_use]
    pub fn with_mount_check(self, check: MountCheck) -> Option<Self> {
        native::fs::MOUNT_CHECKS.contains(&check).then_some(Platform { files: Files::Native(Some(check)), ..self })
    }

    /// Reads the process table and, when the holder source reads it with the table, what every process holds,
    /// before anyone knows which dirs matter (see [`crate::scan`]). `exclude` (this process) is not inspected.
    pub fn snapshot(&self, exclude: u32) -> Result<Snapshot, ScanError> {
        let raw = match (&self.holders, self.processes) {
            (Holders::Native, _) => native::snapshot(exclude, true)?,
            (Holders::Lsof { .. }, Processes::Native) => native::snapshot(exclude, false)?,
            (Holders::Lsof { .. }, Processes::Sysinfo) => portable::table::table()?,
        };
        Ok(Snapshot { raw, holders: self.holders.clone() })
    }

    /// Fills in the command line and exe of the processes `pids` of `table` (read only for the few that may be
    /// reported).
    pub fn describe<S: std::hash::BuildHasher>(&self, table: &mut Table, pids: &HashSet<u32, S>) {
        match self.processes {
            Processes::Native => native::describe(table, pids),
            Processes::Sysinfo => portable::table::describe(table, pids),
        }
    }

    /// Which of `locks` each process is blocked waiting for, where the holder source can see waiters: `/proc/locks`
    /// does; libproc and lsof do not (`None`; cargo's "Blocking waiting" line is all there is then).
    #[must_use]
    pub fn waiting_for(&self, locks: &[PathBuf]) -> Option<Vec<(u32, PathBuf)>> {
        match &self.holders {
            Holders::Native => native::waiting_for(locks),
            Holders::Lsof { .. } => None,
        }
    }

    /// Whether the holder source tells a process blocked waiting for a lock from one that holds it.
    #[must_use]
    pub fn sees_lock_waiters(&self) -> bool {
        self.waiting_for(&[]).is_some()
    }

    /// The current dir of `pid`, if it can be read.
    #[must_use]
    pub fn cwd(&self, pid: u32) -> Option<PathBuf> {
        match self.processes {
            Processes::Native => native::cwd(pid),
            Processes::Sysinfo => portable::table::cwd(pid),
        }
    }

    /// One process as the table would show it (not described), if it is alive; for identifying our own child.
    #[must_use]
    pub fn process(&self, pid: u32) -> Option<Process> {
        match self.processes {
            Processes::Native => native::process(pid),
            Processes::Sysinfo => portable::table::process(pid),
        }
    }

    /// Whether `target` is still the process the scan saw (a zombie is not).
    #[must_use]
    pub fn is_alive(&self, target: &Identity) -> bool {
        match self.processes {
            Processes::Native => native::is_alive(target),
            Processes::Sysinfo => portable::table::is_alive(target),
        }
    }

    /// Opens a handle on `target`; `None` when that process is gone (or a zombie).
    #[must_use]
    pub fn open_process(&self, target: &Identity) -> Option<ProcHandle> {
        let alive = |t: &Identity| self.is_alive(t);
        // Where the native handle cannot be made (`pidfd_open` missing, kernel < 5.3), kill(2) below.
        if self.signals == Signals::Native
            && let Ok(handle) = native::Handle::open(target, alive)
        {
            return handle.map(ProcHandle::Native);
        }
        portable::kill::Killable::open(target.clone(), alive).map(ProcHandle::Kill)
    }

    /// Sends `sig` through `handle`, checking first that it still is the process the scan saw where the handle
    /// does not pin it.
    pub fn signal(&self, handle: &ProcHandle, sig: Sig) -> Result<(), SignalError> {
        let alive = |t: &Identity| self.is_alive(t);
        match handle {
            ProcHandle::Native(h) => h.signal(sig, alive),
            ProcHandle::Kill(h) => h.signal(sig, alive),
        }
    }

    /// Waits until one of `handles` exits, `until` passes, or an interrupt arrives: woken by the exit itself when
    /// every handle is a native one, polling otherwise.
    pub fn wait_any(&self, handles: &[&ProcHandle], until: Instant, interrupt: &Interrupt) -> Waited {
        let natives: Option<Vec<&native::Handle>> = handles
            .iter()
            .map(|h| match h {
                ProcHandle::Native(n) => Some(n),
                ProcHandle::Kill(_) => None,
            })
            .collect();
        if let Some(natives) = natives {
            return native::wait_any(&natives, until, interrupt);
        }
        let exited = || {
            handles
                .iter()
                .enumerate()
                .filter(|(_, h)| match h {
                    ProcHandle::Native(n) => n.exited_now(),
                    ProcHandle::Kill(k) => !self.is_alive(k.identity()),
                })
                .map(|(i, _)| i)
                .collect()
        };
        portable::kill::poll_until(exited, until, interrupt)
    }
}

/// Lowers the calling thread to the lowest CPU priority (nice 19) and the lowest IO priority (Linux's idle class,
/// macOS's throttled disk policy). Both are per thread: call it before starting the threads that should inherit
/// it. What could not be lowered is returned, for the log.
#[must_use]
pub fn lower_priority() -> Vec<String> {
    let mut failed = Vec::new();
    if let Err(e) = rustix::process::setpriority_process(None, 19) {
        failed.push(format!("nice 19: {e}"));
    }
    if let Err(e) = native::idle_io() {
        failed.push(format!("idle IO priority: {e}"));
    }
    failed
}

/// Makes the calling thread act on files with `owner`'s rights, or its own again (`None`), and returns the uid whose
/// rights it uses now: how a root run keeps a name another user controls from leading it anywhere that user could
/// not reach. Only a root process changes anything. Linux: the thread's fs uid, fs gid and groups
/// (`linux::creds`); macOS keeps the run's own rights (anchored by open handles all the same; see the README).
pub use native::{act_as, with_own_rights};

/// Acts with `owner`'s rights until dropped, then with the thread's own again.
#[must_use = "the rights are borrowed only while the guard lives"]
pub struct Acting {
    uid: u32,
}

impl Acting {
    pub fn as_owner(owner: Option<Owner>) -> std::io::Result<Self> {
        Ok(Acting { uid: act_as(owner)? })
    }

    /// The uid whose rights are used: what a file made now is owned by.
    #[must_use]
    pub fn uid(&self) -> u32 {
        self.uid
    }
}

impl Drop for Acting {
    fn drop(&mut self) {
        // Going back to one's own rights cannot be refused to root, the only process that changed them.
        let _ = act_as(None);
    }
}

/// A root's identity and the path the kernel spells it by now, for [`held::Places::of`]. Neither ever follows the
/// root's last component (a name swapped for a link to `/` would otherwise make every chain of dirs match), and the
/// open never waits on a FIFO.
#[must_use]
pub fn root_spelling(root: &Path) -> (Option<crate::model::FileId>, Option<PathBuf>) {
    use rustix::fs::{Mode, OFlags};
    let id = rustix::fs::lstat(root).ok().map(|st| file_id(&st));
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let spelled =
        rustix::fs::open(root, flags, Mode::empty()).ok().and_then(|fd| real_path(std::os::fd::AsFd::as_fd(&fd)));
    (id, spelled)
}

/// What a stat says a file is, whatever its name.
pub use native::file_id;

/// Keeps the open dir out of backups as cargo keeps a target dir it creates: macOS's Time Machine exclusion
/// attribute ([`crate::layout::BACKUP_EXCLUSION`]); on Linux, where backup tools read `CACHEDIR.TAG` (written
/// beside it), there is nothing more to set.
pub use native::exclude_from_backups;

/// Who owns the file a stat describes.
#[must_use]
pub fn owner(st: &rustix::fs::Stat) -> Owner {
    Owner { uid: st.st_uid, gid: st.st_gid }
}

/// The path of the open file `fd` as the kernel names it now (Linux: `/proc/self/fd`; macOS: `F_GETPATH`).
pub use native::real_path;

/// What [`Platform::snapshot`] read, to be narrowed to the dirs that matter with [`Snapshot::holders`].
#[derive(Debug)]
pub struct Snapshot {
    raw: held::Snapshot,
    holders: Holders,
}

impl Snapshot {
    /// What is held under `roots`, with the process table and the processes that could not be inspected.
    pub fn holders(self, roots: &Roots, exclude: u32) -> Result<(Vec<Found>, Table, Uninspectable), ScanError> {
        match &self.holders {
            Holders::Native => {
                let held::Scanned { found, table, uninspectable } = native::holders(self.raw, roots);
                Ok((found, table, uninspectable))
            }
            Holders::Lsof { program } => {
                let table = self.raw.table;
                let (found, unnamed) = portable::lsof::scan(program, roots, exclude, &table)?;
                // lsof skips what it may not read (`-w`): other users' processes, when not root.
                let uninspectable =
                    Uninspectable { other_users: portable::table::others(&table), unnamed, ..Uninspectable::default() };
                Ok((found, table, uninspectable))
            }
        }
    }
}

/// Why the process table or the holders could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot list /proc: {0}")]
    Proc(#[source] std::io::Error),
    #[error("cannot list the processes (proc_listallpids): {0}")]
    Libproc(#[source] std::io::Error),
    #[error("cannot read the process table: {0}")]
    Table(String),
    #[error("cannot run {}: {source}", program.to_string_lossy())]
    LsofSpawn {
        program: OsString,
        #[source]
        source: std::io::Error,
    },
    #[error("{} printed nothing ({status})", program.to_string_lossy())]
    LsofSilent { program: OsString, status: std::process::ExitStatus },
}

impl ScanError {
    /// What to check.
    #[must_use]
    pub fn help(&self) -> Option<String> {
        match self {
            ScanError::Proc(_) => Some("check that procfs is mounted on /proc".into()),
            ScanError::Libproc(_) => Some("run with SAFECLEAN_SCAN_BACKEND=lsof to ask lsof instead".into()),
            ScanError::Table(_) => None,
            ScanError::LsofSpawn { .. } => Some("install lsof, or leave SAFECLEAN_SCAN_BACKEND unset".into()),
            ScanError::LsofSilent { .. } => Some("check that lsof is installed and allowed to read processes".into()),
        }
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

/// A handle on a process we did not spawn, safe against pid reuse.
///
/// We cannot use `std::process::Child` (the processes are not our children) nor sysinfo's `wait()` (it polls
/// forever on non-children).
#[derive(Debug)]
pub enum ProcHandle {
    /// This OS's own: a pidfd (Linux), a kqueue watching the exit (macOS).
    Native(native::Handle),
    Kill(portable::kill::Killable),
}

impl ProcHandle {
    #[must_use]
    pub fn pid(&self) -> u32 {
        match self {
            ProcHandle::Native(h) => h.pid(),
            ProcHandle::Kill(h) => h.identity().pid,
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

/// Why a directory was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenDirError {
    /// It is a mount point: left alone.
    Mount,
    Errno(rustix::io::Errno),
}

/// Walking a tree to delete it: never into a mount point, never through a symlink.
#[derive(Debug)]
pub enum Mounts {
    Native(native::fs::Mounts),
    Portable(portable::fs::Mounts),
}

impl Mounts {
    /// Opens the directory `name` in `parent` to list it: never through a symlink, never into a mount.
    pub fn open_dir(&self, parent: &OwnedFd, name: &CStr) -> Result<OwnedFd, OpenDirError> {
        match self {
            Mounts::Native(m) => m.open_dir(parent, name),
            Mounts::Portable(m) => m.open_dir(parent, name),
        }
    }

    /// Gives the owner rwx on the directory `name` in `parent`, never through a symlink, never on a mount's root.
    pub fn chmod_dir_rwx(&self, parent: &OwnedFd, name: &CStr) -> Result<(), OpenDirError> {
        match self {
            Mounts::Native(m) => m.chmod_dir_rwx(parent, name),
            Mounts::Portable(m) => m.chmod_dir_rwx(parent, name),
        }
    }

    /// Whether `name` in `parent` (not followed if a symlink) is a mount point: asked when an unlink says `EBUSY`.
    #[must_use]
    pub fn is_mount_at(&self, parent: &OwnedFd, name: &CStr) -> bool {
        match self {
            Mounts::Native(m) => m.is_mount_at(parent, name),
            Mounts::Portable(m) => m.is_mount_at(parent, name),
        }
    }

    /// Whether the open dir `child` lies on another mount than the open dir `parent`.
    #[must_use]
    pub fn crosses(&self, parent: std::os::fd::BorrowedFd<'_>, child: std::os::fd::BorrowedFd<'_>) -> bool {
        match self {
            Mounts::Native(m) => m.crosses(parent, child),
            Mounts::Portable(m) => m.crosses(parent, child),
        }
    }
}
