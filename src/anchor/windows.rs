//! Opening a dir to clean on Windows: relative to its parent's handle, the name opened as itself first, so that a
//! junction, a symlink or a mount point the user made is known for what it is before it is followed.
//!
//! The dir is opened for reading only, sharing everything: a handle that asked for `DELETE` could not be had while
//! a holder's cwd (opened without share-delete) is inside, and the guard must see the dir before anything is
//! stopped. The swap opens it again by the parent's handle to move it, and checks it is this one.

use std::io;
use std::os::windows::io::AsRawHandle;
use std::path::Path;

use windows_sys::Win32::Foundation::ERROR_DIRECTORY;

use super::{AnchorError, Anchored, Kind, Opened};
use crate::platform::Files;
use crate::platform::windows::final_path;
use crate::platform::windows::fs::{self, Access, Follow, Want};

impl From<io::Error> for AnchorError {
    fn from(e: io::Error) -> Self {
        AnchorError::Io(e)
    }
}

/// Opens `path` and its parent. `Ok(None)` when not even the parent exists: there is nothing to clean, and nothing
/// to recreate. A drive's root (`C:\`) or a share's (`\\host\share`) has no parent to hold it by.
pub fn open(path: &Path, _files: Files) -> Result<Option<Anchored>, AnchorError> {
    // A path ending in `..` names no entry of a parent dir: what it leads to is held by its own name instead.
    // As Windows' own path calls (and so cargo) read it: absolute, `..` folded, trailing dots and spaces dropped
    // (`target.` is `target` to cargo, never a dir of that name).
    let full = std::path::absolute(path)?;
    let split = full.as_path();
    if split.file_name().is_some_and(|n| n.to_string_lossy().contains(':')) {
        return Err(AnchorError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a name with `:` names a stream, not a dir",
        )));
    }
    let (Some(parent_path), Some(name)) = (split.parent(), split.file_name()) else {
        return Err(AnchorError::FilesystemRoot);
    };
    let parent_path = if parent_path.as_os_str().is_empty() { Path::new(".") } else { parent_path };
    let parent = match fs::open_dir(parent_path, Access::Read) {
        Ok(h) => h,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let parent_id = fs::info(&parent)?.id;
    let mut name = name.to_os_string();
    let dir = match fs::open_at(&parent, &name, Access::Read, Want::Any, Follow::No) {
        Ok(h) => {
            // The name as it is on disk (not an 8.3 short name or another case): the one the swap moves and makes.
            if let Some(on_disk) = final_path(h.as_raw_handle()).and_then(|p| p.file_name().map(ToOwned::to_owned)) {
                name = on_disk;
            }
            let info = fs::info(&h)?;
            if info.is_reparse_point() {
                // The user's own junction or symlink (or a volume mounted here): held by where it leads, and emptied
                // in place, the link kept.
                match fs::open_at(&parent, &name, Access::Read, Want::Dir, Follow::Yes) {
                    Ok(d) => Some(opened(d, Kind::Symlink)?),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(AnchorError::DanglingSymlink),
                    Err(e) if e.raw_os_error() == Some(ERROR_DIRECTORY.cast_signed()) => {
                        return Err(AnchorError::NotADirectory);
                    }
                    Err(e) => return Err(e.into()),
                }
            } else if info.is_dir() {
                Some(opened(h, Kind::Plain)?)
            } else {
                return Err(AnchorError::NotADirectory);
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    // Where it really is, as Windows names it: what the guard judges. A dir Windows cannot name (a volume mounted
    // without a drive letter) is not judged by the name it was given: refused.
    let real = match &dir {
        Some(d) => final_path(d.fd.as_raw_handle()),
        None => final_path(parent.as_raw_handle()).map(|p| p.join(&name)),
    };
    let Some(real) = real else {
        return Err(AnchorError::Io(io::Error::other(
            "Windows cannot say where it is (a volume without a drive letter?)",
        )));
    };
    Ok(Some(Anchored { path: path.to_path_buf(), real, parent, parent_id, name, dir }))
}

fn opened(fd: crate::platform::Dir, kind: Kind) -> Result<Opened, AnchorError> {
    let id = fs::info(&fd)?.id;
    Ok(Opened { fd, id, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_dir_a_file_and_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir(d.join("Target")).unwrap();
        let plain = open(&d.join("target"), Files).unwrap().unwrap();
        assert_eq!(plain.dir.as_ref().unwrap().kind, Kind::Plain);
        assert!(plain.real.ends_with("Target"), "held by its true spelling: {}", plain.real.display());
        let missing = open(&d.join("missing"), Files).unwrap().unwrap();
        assert!(missing.dir.is_none() && missing.real.ends_with("missing"));
        assert!(open(&d.join(r"no\such"), Files).unwrap().is_none(), "no parent: nothing to do");
        std::fs::write(d.join("file"), "").unwrap();
        assert!(matches!(open(&d.join("file"), Files), Err(AnchorError::NotADirectory)));
        assert!(matches!(open(Path::new(r"C:\"), Files), Err(AnchorError::FilesystemRoot)));
        // Cargo's reading of a trailing dot or space, and the name on disk whatever the case given.
        let dotted = open(&d.join("target. "), Files).unwrap().unwrap();
        assert_eq!((dotted.id(), dotted.name.to_str()), (plain.id(), Some("Target")));
        assert!(open(&d.join("Target:stream"), Files).is_err(), "a stream is no dir");
        // Renamed and replaced after the check: seen.
        assert_eq!(plain.changed(Files), None);
        std::fs::rename(d.join("Target"), d.join("moved")).unwrap();
        std::fs::create_dir(d.join("Target")).unwrap();
        assert!(plain.changed(Files).unwrap().contains("another dir"), "{:?}", plain.changed(Files));
    }
}
