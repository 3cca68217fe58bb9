//! Walking a tree to delete it with what every Unix has: `openat(O_NOFOLLOW)`, `fstat` to see a mount point, and
//! `fchmodat(AT_SYMLINK_NOFOLLOW)` to make a mode-000 dir accessible; no `/proc/self/fd`, no `openat2`.
//!
//! A mount point is a dir on another device than its parent. On Linux a bind mount of the same filesystem shares
//! the device, so there the mount id is compared too: the portable mode replaces what macOS lacks, never a
//! safety check Linux has. macOS has no bind mounts (bindfs-style FUSE mounts have their own device).

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::platform::OpenDirError;

#[derive(Debug, Default)]
pub struct Mounts;

/// Whether `child` lies on another mount than `parent`.
#[must_use]
pub fn crosses(parent: BorrowedFd<'_>, child: BorrowedFd<'_>) -> bool {
    let dev = |fd| rustix::fs::fstat(fd).map(|s| s.st_dev).ok();
    if dev(parent) != dev(child) {
        return true;
    }
    #[cfg(target_os = "linux")]
    if !crate::platform::linux::fs::same_mount(parent, child) {
        return true;
    }
    false
}

impl Mounts {
    /// Whether `child` lies on another mount than `parent`.
    #[must_use]
    pub fn crosses(&self, parent: BorrowedFd<'_>, child: BorrowedFd<'_>) -> bool {
        crosses(parent, child)
    }

    /// Opens the directory `name` in `parent` to list it; a mount point is opened only to be recognised, then
    /// closed untouched.
    pub fn open_dir(&self, parent: &OwnedFd, name: &CStr) -> Result<OwnedFd, OpenDirError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(parent, name, flags, Mode::empty()).map_err(OpenDirError::Errno)?;
        if crosses(parent.as_fd(), fd.as_fd()) { Err(OpenDirError::Mount) } else { Ok(fd) }
    }

    /// Gives the owner rwx on the directory `name` in `parent`.
    ///
    /// The check-then-chmod race: between seeing a dir here and changing it, `name` could be swapped for a symlink
    /// to a dir elsewhere. `fchmodat(AT_SYMLINK_NOFOLLOW)` changes `name` itself, never what it points to, so on
    /// macOS (and the BSDs) there is no window. Linux answers `EOPNOTSUPP` for it (rustix does not use
    /// `fchmodat2`), and a chmod by path would follow the swapped-in symlink; there the walk keeps Linux's own way,
    /// a handle opened without following and changed through `/proc/self/fd`.
    pub fn chmod_dir_rwx(&self, parent: &OwnedFd, name: &CStr) -> Result<(), OpenDirError> {
        let st = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW).map_err(OpenDirError::Errno)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(OpenDirError::Errno(Errno::NOTDIR));
        }
        if self.is_mount_at(parent, name) {
            return Err(OpenDirError::Mount);
        }
        match rustix::fs::chmodat(parent, name, Mode::RWXU, AtFlags::SYMLINK_NOFOLLOW) {
            #[cfg(target_os = "linux")]
            Err(Errno::OPNOTSUPP) => {
                crate::platform::linux::fs::chmod_dir_rwx_nofollow(parent, name).map_err(OpenDirError::Errno)
            }
            result => result.map_err(OpenDirError::Errno),
        }
    }

    /// Whether `name` in `parent` (not followed if a symlink) is a mount point.
    #[must_use]
    pub fn is_mount_at(&self, parent: &OwnedFd, name: &CStr) -> bool {
        let Ok(st) = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) else { return false };
        if rustix::fs::fstat(parent).is_ok_and(|p| p.st_dev != st.st_dev) {
            return true;
        }
        // The mount id needs an open file; a dir that cannot be opened (mode 000) is compared by device alone
        // here, and its open in `open_dir` compares the rest.
        #[cfg(target_os = "linux")]
        {
            let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            if let Ok(fd) = rustix::fs::openat(parent, name, flags, Mode::empty()) {
                return !crate::platform::linux::fs::same_mount(parent.as_fd(), fd.as_fd());
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_a_plain_tree_and_opens_a_mode_000_dir() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir(d.join("locked")).unwrap();
        std::fs::set_permissions(d.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
        std::os::unix::fs::symlink(d.join("locked"), d.join("link")).unwrap();
        let parent = rustix::fs::open(d, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let m = Mounts;
        assert!(!m.is_mount_at(&parent, c"locked"));
        assert_eq!(m.chmod_dir_rwx(&parent, c"link"), Err(OpenDirError::Errno(Errno::NOTDIR)), "not through a link");
        m.chmod_dir_rwx(&parent, c"locked").unwrap();
        assert_eq!(std::fs::metadata(d.join("locked")).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(m.open_dir(&parent, c"locked").is_ok());
        let root = rustix::fs::open("/", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        assert!(m.is_mount_at(&root, c"proc") || !std::path::Path::new("/proc").exists());
    }
}
