//! The runtime dir and its lock files on Windows: `cargo-safeclean` in the user's own `%LOCALAPPDATA%`, never a
//! reparse point. A lock file is opened without share-delete, so nobody can remove it while a run holds it open,
//! and locked with std's `try_lock` (`LockFileEx`, released when the process dies). An old file is removed only
//! when it can be opened sharing nothing: then nobody has it open.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use windows_sys::Win32::Foundation::{ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION};
use windows_sys::Win32::Storage::FileSystem::{
    DELETE, FILE_FLAG_OPEN_REPARSE_POINT, FILE_GENERIC_READ, FILE_SHARE_READ, FILE_SHARE_WRITE,
};

use crate::platform::Dir;
use crate::platform::windows::fs::{self, Access, Follow, Want};

/// The runtime dir's name: the base is the user's own.
pub(super) fn dir_name() -> String {
    "cargo-safeclean".into()
}

/// Opens (making it if need be) the dir `name` in `base`; a reparse point by that name is refused, not followed.
pub(super) fn private_dir(base: &Path, name: &str) -> io::Result<Dir> {
    let base_dir = fs::open_dir(base, Access::Read)?;
    match fs::create_dir_at(&base_dir, OsStr::new(name)) {
        Ok(dir) => return Ok(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let dir = fs::open_at(&base_dir, OsStr::new(name), Access::Read, Want::Any, Follow::No)?;
    let info = fs::info(&dir)?;
    if info.is_reparse_point() || !info.is_dir() {
        return Err(io::Error::other("it is not a dir of its own (a link or a file); remove it"));
    }
    Ok(dir)
}

/// Creates the file `name` in `dir` for writing; it must not exist yet.
pub(super) fn create(dir: &Dir, _path: &Path, name: &str) -> io::Result<File> {
    fs::create_file_at(dir, OsStr::new(name))
}

/// Opens (making it) the lock file `name` and locks it without waiting: `None` when someone holds it, or is
/// removing it right now.
pub(super) fn open_locked(_dir: &Dir, path: &Path, name: &str) -> io::Result<Option<File>> {
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path.join(name));
    let file = match opened {
        Ok(f) => f,
        Err(e) if busy(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Another open without the sharing this one asks (a cleanup removing the file), or a delete pending on it.
fn busy(e: &io::Error) -> bool {
    [ERROR_SHARING_VIOLATION, ERROR_ACCESS_DENIED].iter().any(|&c| e.raw_os_error() == Some(c.cast_signed()))
}

/// Removes the files of the runtime dir named `prefix…`, last changed before `before`, that nobody has open.
pub(super) fn remove_unlocked(_dir: &Dir, path: &Path, prefix: &str, before: SystemTime) {
    let Ok(listing) = std::fs::read_dir(path) else { return };
    for entry in listing.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let alone = OpenOptions::new()
            .access_mode(DELETE | FILE_GENERIC_READ)
            .share_mode(0)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .open(entry.path());
        let Ok(file) = alone else { continue };
        if file.metadata().is_ok_and(|m| m.is_file() && m.modified().is_ok_and(|t| t < before)) {
            let _ = fs::delete(&file);
        }
    }
}
