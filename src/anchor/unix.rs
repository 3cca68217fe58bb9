//! Opening a dir to clean on Unix: `openat` relative to the parent, `O_NOFOLLOW` but where the user put a symlink.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::{AnchorError, Anchored, Kind, Opened};
use crate::platform::{self, Files};

impl From<Errno> for AnchorError {
    fn from(e: Errno) -> Self {
        AnchorError::Io(e.into())
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// Opens `path` and its parent. `Ok(None)` when not even the parent exists: there is nothing to clean, and nothing
/// to recreate.
pub fn open(path: &Path, files: Files) -> Result<Option<Anchored>, AnchorError> {
    // A path ending in `..` names no entry of a parent dir: what it leads to is held by its own name instead.
    let resolved;
    let split = if path.file_name().is_some() {
        path
    } else {
        resolved = path.canonicalize().map_err(AnchorError::Io)?;
        &resolved
    };
    let (Some(parent_path), Some(name)) = (split.parent(), split.file_name()) else {
        return Err(AnchorError::FilesystemRoot);
    };
    let parent_path = if parent_path.as_os_str().is_empty() { Path::new(".") } else { parent_path };
    let parent = match rustix::fs::open(parent_path, dir_flags(), Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let parent_id = platform::file_id(&rustix::fs::fstat(&parent)?);
    let name = CString::new(name.as_bytes()).map_err(|e| AnchorError::Io(io::Error::other(e)))?;
    let dir = match rustix::fs::openat(&parent, &name, dir_flags() | OFlags::NOFOLLOW, Mode::empty()) {
        Ok(fd) => {
            let kind = if files.mounts(parent_path).crosses(parent.as_fd(), fd.as_fd()) {
                Kind::MountPoint
            } else {
                Kind::Plain
            };
            Some(opened(fd, kind)?)
        }
        Err(Errno::LOOP | Errno::NOTDIR) => {
            let st = rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                return Err(AnchorError::NotADirectory);
            }
            match rustix::fs::openat(&parent, &name, dir_flags(), Mode::empty()) {
                Ok(fd) => Some(opened(fd, Kind::Symlink)?),
                Err(Errno::NOENT) => return Err(AnchorError::DanglingSymlink),
                Err(Errno::NOTDIR) => return Err(AnchorError::NotADirectory),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Errno::NOENT) => None,
        Err(e) => return Err(e.into()),
    };
    let real = match &dir {
        Some(d) => platform::real_path(d.fd.as_fd()),
        None => platform::real_path(parent.as_fd()).map(|p| p.join(split.file_name().unwrap_or_default())),
    };
    let real = real.unwrap_or_else(|| split.to_path_buf());
    Ok(Some(Anchored { path: path.to_path_buf(), real, parent, parent_id, name, dir }))
}

fn opened(fd: OwnedFd, kind: Kind) -> Result<Opened, AnchorError> {
    let st = rustix::fs::fstat(&fd)?;
    Ok(Opened {
        id: platform::file_id(&st),
        owner: platform::owner(&st),
        mode: Mode::from_raw_mode(st.st_mode),
        fd,
        kind,
    })
}
