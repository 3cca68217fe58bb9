//! What a run acts on, opened once. Each dir to clean is held as an open handle, with its parent's, from the moment
//! it is checked: the guard judges the opened dir (identity, owner, real path, contents), the run lock is keyed on
//! it, and after the lock [`Anchored::changed`] says whether its name still leads to it. The swap and the purge then
//! work relative to these handles, never by a name looked up again.
//!
//! A symlink (on Windows: a junction or a symlink) is followed only where the user put one on the way: in the path
//! to the parent, and as the dir itself (a user's own `target -> /fast/disk/…`); nothing below the dir is ever
//! followed. How a dir is opened is each OS's own (`unix.rs`: `openat` with `O_NOFOLLOW`; `windows.rs`:
//! `NtCreateFile` relative to the parent's handle, reparse points opened as themselves).

use std::io;
use std::path::PathBuf;

use crate::model::FileId;
#[cfg(unix)]
use crate::model::Owner;
use crate::platform::{Dir, Files};

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;
#[cfg(unix)]
pub use unix::open;
#[cfg(windows)]
pub use windows::open;

/// A name in a dir, as the OS's calls take it.
#[cfg(unix)]
pub type Name = std::ffi::CString;
/// A name in a dir, as the OS's calls take it.
#[cfg(windows)]
pub type Name = std::ffi::OsString;

/// A dir to clean, as opened.
#[derive(Debug)]
pub struct Anchored {
    /// The path the run was given (by `cargo metadata` or `--target-dir`).
    pub path: PathBuf,
    /// Where the dir really is: the opened dir's path as the kernel names it (for a symlink, where it leads).
    pub real: PathBuf,
    /// The dir that holds its name, opened through the given path.
    pub parent: Dir,
    pub parent_id: FileId,
    pub name: Name,
    /// `None`: nothing by that name yet (cargo will make it).
    pub dir: Option<Opened>,
}

/// An existing dir to clean, open.
#[derive(Debug)]
pub struct Opened {
    pub fd: Dir,
    pub id: FileId,
    #[cfg(unix)]
    pub owner: Owner,
    /// Permission bits and setuid/setgid/sticky (not the file type), as the recreated dir gets them.
    #[cfg(unix)]
    pub mode: rustix::fs::Mode,
    pub kind: Kind,
}

/// How the dir sits under its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A dir under its own name: exchanged for a fresh one.
    Plain,
    /// Its name is a symlink the user made to it: the link stays, and the dir is emptied in place.
    Symlink,
    /// A mount point: the mount stays, and the dir is emptied in place.
    MountPoint,
}

/// Why a path could not be anchored.
#[derive(Debug)]
pub enum AnchorError {
    /// `/`: there is nothing above it to hold it by.
    FilesystemRoot,
    NotADirectory,
    /// A symlink to nothing: cleaning it would create whatever it names.
    DanglingSymlink,
    Io(io::Error),
}

impl Anchored {
    /// What the path leads to now, if not what was anchored: `None` when it still leads to the same parent and the
    /// same dir (or still to nothing), held the same way.
    #[must_use]
    pub fn changed(&self, files: Files) -> Option<String> {
        let now = match open(&self.path, files) {
            Ok(Some(now)) => now,
            Ok(None) => return Some("its parent dir is gone".into()),
            Err(AnchorError::Io(e)) => return Some(format!("it cannot be opened any more ({e})")),
            Err(_) => return Some("it is no longer a directory".into()),
        };
        if now.parent_id != self.parent_id {
            return Some(format!("its parent is another dir now ({})", now.real.display()));
        }
        match (&self.dir, &now.dir) {
            (None, None) => None,
            (Some(was), Some(is)) if was.id == is.id && was.kind == is.kind => None,
            (_, None) => Some("it was removed".into()),
            (None, Some(_)) => Some("a dir appeared by that name".into()),
            (Some(_), Some(is)) if is.kind == Kind::Symlink => {
                Some(format!("its name is now a symlink to {}", now.real.display()))
            }
            (Some(_), Some(_)) => Some(format!("its name now leads to another dir ({})", now.real.display())),
        }
    }

    /// Its name's bytes as the OS keeps them (UTF-16 little-endian on Windows), for a key that must be exact.
    #[must_use]
    pub fn name_bytes(&self) -> Vec<u8> {
        #[cfg(unix)]
        return self.name.as_bytes().to_vec();
        #[cfg(windows)]
        return std::os::windows::ffi::OsStrExt::encode_wide(self.name.as_os_str())
            .flat_map(u16::to_le_bytes)
            .collect();
    }

    /// The identity of the dir, if there is one.
    #[must_use]
    pub fn id(&self) -> Option<FileId> {
        self.dir.as_ref().map(|d| d.id)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::path::Path;

    fn files() -> Files {
        crate::platform::Platform::native().files
    }

    #[test]
    fn a_plain_dir_a_symlink_and_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(d.join("real")).unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
        let plain = open(&d.join("real"), files()).unwrap().unwrap();
        assert_eq!(plain.dir.as_ref().unwrap().kind, Kind::Plain);
        let link = open(&d.join("link"), files()).unwrap().unwrap();
        assert_eq!(link.dir.as_ref().unwrap().kind, Kind::Symlink);
        assert_eq!((link.id(), &link.real), (plain.id(), &d.join("real")), "a symlink is held by where it leads");
        let missing = open(&d.join("missing"), files()).unwrap().unwrap();
        assert!(missing.dir.is_none() && missing.real == d.join("missing"));
        assert!(open(&d.join("no/such"), files()).unwrap().is_none(), "no parent: nothing to do");
        std::os::unix::fs::symlink(d.join("nowhere"), d.join("dangling")).unwrap();
        assert!(matches!(open(&d.join("dangling"), files()), Err(AnchorError::DanglingSymlink)));
        std::fs::write(d.join("file"), "").unwrap();
        assert!(matches!(open(&d.join("file"), files()), Err(AnchorError::NotADirectory)));
        assert!(matches!(open(Path::new("/"), files()), Err(AnchorError::FilesystemRoot)));
        assert_eq!(open(&d.join("real/.."), files()).unwrap().unwrap().real, d, "`..` is held by what it leads to");
    }

    #[test]
    fn a_name_swapped_after_the_check_is_seen() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(d.join("target")).unwrap();
        std::fs::create_dir_all(d.join("elsewhere")).unwrap();
        let a = open(&d.join("target"), files()).unwrap().unwrap();
        assert_eq!(a.changed(files()), None);
        std::fs::rename(d.join("target"), d.join("moved")).unwrap();
        std::os::unix::fs::symlink(d.join("elsewhere"), d.join("target")).unwrap();
        assert!(a.changed(files()).unwrap().contains("symlink"), "{:?}", a.changed(files()));
        std::fs::remove_file(d.join("target")).unwrap();
        std::fs::create_dir(d.join("target")).unwrap();
        assert!(a.changed(files()).unwrap().contains("another dir"));
    }
}
