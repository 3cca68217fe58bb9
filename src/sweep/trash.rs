//! Moving chosen units out, while cargo's locks are held: each entry with one rename, relative to the open profile
//! dir, never through a link, into a trash dir of this run right under the build (or target) dir, where the purge
//! deletes it and the scan knows it holds nothing of a build's. A unit whose entries cannot all be moved is put
//! back: it goes whole or not at all.

use std::ffi::{CString, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::layout::TRASH_PREFIX;
use crate::layout::unit::open_dir;
use crate::model::FileId;
use crate::purge::{RemoveError, TrashRoot};

/// A trash dir of this run, open.
#[derive(Debug)]
pub struct Trash {
    pub path: PathBuf,
    fd: OwnedFd,
    parent: OwnedFd,
    id: FileId,
    next: usize,
}

impl Trash {
    /// Makes `.safeclean-trash-ID` in the open dir `root` (at `root_path`), checked to be the dir just made by
    /// `made_by` (mode 0700: no other user can open it, or lock it).
    pub fn make(root: &OwnedFd, root_path: &Path, id: &str, made_by: u32) -> Result<Self, RemoveError> {
        let name = CString::new(format!("{TRASH_PREFIX}{id}")).unwrap_or_default();
        let path = root_path.join(OsStr::from_bytes(name.as_bytes()));
        rustix::fs::mkdirat(root, &name, Mode::RWXU).map_err(|e| RemoveError::new("create", &path, e.into()))?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(root, &name, flags, Mode::empty())
            .map_err(|e| RemoveError::new("open", &path, e.into()))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| RemoveError::new("inspect", &path, e.into()))?;
        if st.st_uid != made_by || FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            let e = std::io::Error::other("another file took its place as it was made");
            return Err(RemoveError::new("create", &path, e));
        }
        let parent = root.try_clone().map_err(|e| RemoveError::new("open", root_path, e))?;
        Ok(Trash { path, fd, parent, id: crate::platform::file_id(&st), next: 0 })
    }

    /// Moves `entries` (relative to the open dir `from`, at `from_path`) into the trash, in order; if one cannot be
    /// moved, those already moved go back and the error says which failed. Entries already gone are skipped.
    pub fn take(&mut self, from: &OwnedFd, from_path: &Path, entries: &[&Path]) -> Result<u64, RemoveError> {
        let mut moved: Vec<(OwnedFd, CString, CString)> = Vec::new();
        for entry in entries {
            let (Some(parent), Some(file)) = (entry.parent(), entry.file_name()) else { continue };
            let Some(dir) = open_dir(from, parent) else { continue };
            let file = CString::new(file.as_bytes()).unwrap_or_default();
            let to = CString::new(self.next.to_string()).unwrap_or_default();
            match rustix::fs::renameat(&dir, &file, &self.fd, &to) {
                Ok(()) => {
                    self.next += 1;
                    moved.push((dir, file, to));
                }
                Err(Errno::NOENT) => {}
                Err(e) => {
                    for (dir, file, to) in moved.into_iter().rev() {
                        let _ = rustix::fs::renameat(&self.fd, &to, &dir, &file);
                    }
                    return Err(RemoveError::new("move into the trash", from_path.join(entry), e.into()));
                }
            }
        }
        Ok(moved.len() as u64)
    }

    /// The trash dir, for the purge.
    #[must_use]
    pub fn into_root(self) -> TrashRoot {
        TrashRoot { path: self.path, parent: Some(self.parent), id: self.id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_moves_whole_or_goes_back() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        std::fs::create_dir_all(t.join("debug/deps")).unwrap();
        std::fs::create_dir_all(t.join("debug/.fingerprint/a-0/x")).unwrap();
        std::fs::write(t.join("debug/deps/liba-0.rlib"), "x").unwrap();
        let flags = OFlags::RDONLY | OFlags::DIRECTORY;
        let root = rustix::fs::open(t, flags, Mode::empty()).unwrap();
        let profile = rustix::fs::open(t.join("debug"), flags, Mode::empty()).unwrap();
        let me = rustix::process::geteuid().as_raw();
        let mut trash = Trash::make(&root, t, "1-a", me).unwrap();
        // The second entry cannot be moved onto a non-empty dir's name: nothing moves.
        std::fs::create_dir_all(trash.path.join("1/full")).unwrap();
        let fp = Path::new(".fingerprint/a-0");
        let lib = Path::new("deps/liba-0.rlib");
        assert!(trash.take(&profile, &t.join("debug"), &[fp, Path::new(".fingerprint")]).is_err());
        assert!(t.join("debug/.fingerprint/a-0/x").is_dir(), "put back");
        std::fs::remove_dir_all(trash.path.join("1")).unwrap();
        trash.next = 0;
        assert_eq!(trash.take(&profile, &t.join("debug"), &[fp, lib, Path::new("deps/gone")]).unwrap(), 2);
        assert!(!t.join("debug/deps/liba-0.rlib").exists() && trash.path.join("1").is_file());
        assert_eq!(trash.into_root().path, t.join(".safeclean-trash-1-a"));
    }
}
