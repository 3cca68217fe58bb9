//! macOS walks trees the portable way ([`crate::platform::portable::fs`]): it has no bind mounts, so a mount point
//! always has a device of its own, and its `fchmodat(AT_SYMLINK_NOFOLLOW)` changes a name without following it.
//! There is nothing to detect and no other check to force. The walk is the portable one under macOS's own name, so
//! that what the platform picks is said in one place ([`crate::platform::Files`]).

use std::ffi::CStr;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use crate::platform::{MountCheck, OpenDirError, portable};

/// Every check a walk can be forced to use here: none.
pub const MOUNT_CHECKS: &[MountCheck] = &[];

/// The walk's mount knowledge: the device alone, so neither a forced check (none exists, see [`MOUNT_CHECKS`]) nor a
/// probe of the filesystem is needed.
#[must_use]
pub fn mounts(_forced: Option<MountCheck>, _probe: &Path) -> Mounts {
    Mounts(portable::fs::Mounts)
}

#[derive(Debug)]
pub struct Mounts(portable::fs::Mounts);

impl Mounts {
    pub fn open_dir(&self, parent: &OwnedFd, name: &CStr) -> Result<OwnedFd, OpenDirError> {
        self.0.open_dir(parent, name)
    }

    pub fn chmod_dir_rwx(&self, parent: &OwnedFd, name: &CStr) -> Result<(), OpenDirError> {
        self.0.chmod_dir_rwx(parent, name)
    }

    #[must_use]
    pub fn is_mount_at(&self, parent: &OwnedFd, name: &CStr) -> bool {
        self.0.is_mount_at(parent, name)
    }

    #[must_use]
    pub fn crosses(&self, parent: BorrowedFd<'_>, child: BorrowedFd<'_>) -> bool {
        self.0.crosses(parent, child)
    }
}
