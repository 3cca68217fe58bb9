//! The macOS implementation: libproc for the process table and what each process holds, a kqueue watching
//! `NOTE_EXIT` for each process to be stopped, and the portable walk for files. It offers what every native
//! implementation offers (see [`crate::platform`]).
//!
//! Only [`libproc`] and [`kqueue`] call the system, and they only fetch: what a scan read becomes holders in
//! [`crate::platform::held`], the code Linux runs and its tests check. Here that layer is type-checked and linted for
//! both macOS targets on every CI run (`scripts/cross-clippy`); it runs only on a Mac.

pub mod fs;
pub mod kqueue;
pub mod libproc;
pub mod proc;

use std::collections::HashSet;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use crate::model::{FileId, Owner};
use crate::platform::Source;

pub use kqueue::{Watched as Handle, wait_any};
pub use proc::{cwd, describe, holders, is_alive, process, snapshot};

/// The holder source and the process handles the hidden switches name here.
pub const HOLDERS: Source = Source::Libproc;
pub const SIGNALS: Source = Source::Kqueue;

/// Who waits for which lock: libproc shows no lock state at all, so nobody is seen waiting (`None`); cargo's
/// "Blocking waiting" line is all there is.
#[must_use]
pub fn waiting_for(_locks: &[PathBuf]) -> Option<Vec<(u32, PathBuf)>> {
    None
}

/// The files an `flock` is held on: not visible on macOS (neither libproc nor lsof shows lock state).
#[must_use]
pub fn flocked_files() -> Option<HashSet<FileId>> {
    None
}

/// Throttles the calling thread's disk IO (`setiopolicy_np(IOPOL_TYPE_DISK, IOPOL_SCOPE_THREAD, IOPOL_THROTTLE)`):
/// macOS's nearest to Linux's idle IO class. Threads started afterwards inherit it.
pub fn idle_io() -> std::io::Result<()> {
    libproc::throttle_io()
}

/// A root run on macOS keeps its own rights: there is no per-thread filesystem identity to borrow as on Linux
/// (`pthread_setugid_np` changes more than the filesystem's view), so the file work stays anchored by open handles,
/// as the README says. Returns the uid whose rights the thread uses on files: its own.
pub fn act_as(_owner: Option<Owner>) -> std::io::Result<u32> {
    Ok(rustix::process::geteuid().as_raw())
}

/// No rights are borrowed here: `f` runs as it is.
pub fn with_own_rights<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// What a stat says a file is, whatever its name. macOS's `st_dev` is signed; libproc's `vst_dev` is the same
/// bits unsigned, and both must give the same identity.
#[must_use]
pub fn file_id(st: &rustix::fs::Stat) -> FileId {
    FileId { dev: u64::from(st.st_dev.cast_unsigned()), ino: st.st_ino }
}

/// Sets Time Machine's exclusion attribute on the open dir `dir`, as cargo does on a target dir it creates.
pub fn exclude_from_backups(dir: BorrowedFd<'_>) -> std::io::Result<()> {
    let (name, value) = crate::layout::BACKUP_EXCLUSION;
    rustix::fs::fsetxattr(dir, name, value, rustix::fs::XattrFlags::empty()).map_err(Into::into)
}

/// The path of the open file `fd` as the kernel names it now (`F_GETPATH`): `/private/var/…` for a file under
/// `/var`, the way libproc names what processes hold.
#[must_use]
pub fn real_path(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    rustix::fs::getpath(fd).ok().map(|p| PathBuf::from(std::ffi::OsString::from_vec(p.into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs only on a Mac (the macOS workflow): the attribute is set on the open dir, reads back as written, and
    /// Time Machine itself calls the dir excluded.
    #[test]
    fn the_recreated_dir_is_excluded_from_backups_as_cargo_excludes_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = rustix::fs::open(
            tmp.path(),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        exclude_from_backups(std::os::fd::AsFd::as_fd(&dir)).unwrap();
        let (name, value) = crate::layout::BACKUP_EXCLUSION;
        let mut read = vec![0u8; 256];
        let n = rustix::fs::fgetxattr(&dir, name, &mut read[..]).unwrap();
        assert_eq!(&read[..n], value);
        let out = std::process::Command::new("tmutil").arg("isexcluded").arg(tmp.path()).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("[Excluded]"), "{out:?}");
    }
}
