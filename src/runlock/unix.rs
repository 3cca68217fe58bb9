//! The runtime dir and its lock files on Unix: made and opened relative to open fds, never through a symlink, and
//! checked to be this user's alone.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::SystemTime;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::model::FileId;
use crate::platform;

/// The runtime dir's name: one per user, as bases like `/tmp` are shared.
pub(super) fn dir_name() -> String {
    format!("cargo-safeclean-{}", rustix::process::geteuid().as_raw())
}

/// Creates the file `name` in `dir` for writing; it must not exist yet.
pub(super) fn create(dir: &OwnedFd, _path: &Path, name: &str) -> io::Result<File> {
    let flags = OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(File::from(rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600))?))
}

/// Opens (making it) the lock file `name` in `dir` and locks it without waiting: `None` when someone holds it.
pub(super) fn open_locked(dir: &OwnedFd, _path: &Path, name: &str) -> io::Result<Option<File>> {
    loop {
        let flags = OFlags::CREATE | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let file = File::from(rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600))?);
        match file.try_lock() {
            // A run removes the lock files nobody holds: one removed between the open and the lock is no lock.
            Ok(()) if still_named(dir, name, &file) => return Ok(Some(file)),
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// Removes the files of `dir` named `prefix…`, last changed before `before`, that nobody holds locked. A lock file in
/// use is either held or new; one taken here for the moment of the check makes a locker retry (`QUIET`).
pub(super) fn remove_unlocked(dir: &OwnedFd, _path: &Path, prefix: &str, before: SystemTime) {
    let Ok(listing) = rustix::fs::Dir::read_from(dir) else { return };
    for entry in listing.flatten() {
        let name = entry.file_name();
        if !name.to_bytes().starts_with(prefix.as_bytes()) {
            continue;
        }
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let Ok(fd) = rustix::fs::openat(dir, name, flags, Mode::empty()) else { continue };
        let old = File::from(fd);
        if old.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < before) && old.try_lock().is_ok() {
            let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
        }
    }
}

/// Whether `name` in `dir` is still the file `file`.
fn still_named(dir: &OwnedFd, name: &str, file: &File) -> bool {
    let there = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map(|st| platform::file_id(&st));
    there.is_ok() && there.ok() == rustix::fs::fstat(file).ok().map(|st| platform::file_id(&st))
}

/// The identity the open dir or file `fd` has, for keys and for telling a dir from its replacement.
pub fn id_of(fd: &OwnedFd) -> io::Result<FileId> {
    Ok(platform::file_id(&rustix::fs::fstat(fd)?))
}

/// Opens (making it if need be) the dir `name` in `base`, and checks that it is this user's alone.
pub(super) fn private_dir(base: &Path, name: &str) -> io::Result<OwnedFd> {
    let me = rustix::process::geteuid().as_raw();
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let base_fd = rustix::fs::open(base, flags, Mode::empty())?;
    let st = rustix::fs::fstat(&base_fd)?;
    // A base someone else may write could have the name taken by them: only if its sticky bit stops that.
    let shared_unsafely = st.st_mode & 0o022 != 0 && st.st_mode & 0o1000 == 0;
    if (st.st_uid != me && st.st_uid != 0) || shared_unsafely {
        return Err(io::Error::other("others may write the dir it would be in"));
    }
    match rustix::fs::mkdirat(&base_fd, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = rustix::fs::openat(&base_fd, name, flags | OFlags::NOFOLLOW, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory || st.st_uid != me || st.st_mode & 0o077 != 0 {
        return Err(io::Error::other(format!(
            "it is not a private dir of uid {me} (owner {}, mode {:o}); remove it",
            st.st_uid,
            st.st_mode & 0o7777
        )));
    }
    Ok(fd)
}
