//! Moving the old tree out of the way atomically and recreating an empty target dir, crash-safely.
//!
//! The new dir is made complete beside the old one (`target.safeclean-ID-new`: same mode, `CACHEDIR.TAG`), then
//! exchanged with it in one step (`renameat2(RENAME_EXCHANGE)`), so `target/` never stops existing; the old tree,
//! now under the `-new` name, moves into the new dir as `.safeclean-trash-ID`. Where the filesystem cannot
//! exchange (NFS, FUSE without rename2, vfat/exFAT…) it takes two renames, with an instant without `target/`.
//! A target dir that is a symlink or a mount point is kept: its entries move into the trash instead. Each run
//! collects what a crashed or failed run left (`.safeclean-trash-*` inside, also nested in older trash, and
//! `NAME.safeclean-*` beside), so the next run finishes the job and trash never nests.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, RenameFlags};
use rustix::io::Errno;

use crate::layout::{CACHEDIR_TAG, NEW_SUFFIX, is_run_id};
use crate::platform::Files;
use crate::purge::RemoveError;

type Result<T> = std::result::Result<T, RemoveError>;

pub use crate::layout::TRASH_PREFIX;
/// The infix of the dir a crash may leave beside the target dir: `target.safeclean-ID`.
pub const ASIDE_INFIX: &str = ".safeclean-";

/// A name unique to this run: pid and time, so concurrent and successive runs never collide.
#[must_use]
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{nanos:x}", std::process::id())
}

/// How the old tree is swapped for the new dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapMethod {
    /// `renameat2(RENAME_EXCHANGE)`, falling back to two renames where the filesystem cannot exchange.
    Exchange,
    /// Always two renames (a hidden switch, so that tests reach the fallback).
    Rename,
}

/// What a swap left to purge.
#[derive(Debug, Default)]
pub struct Swapped {
    /// The trash dirs inside the target dir, this run's and earlier runs' leftovers.
    pub trash: Vec<PathBuf>,
    /// Mount points directly inside a target dir that is itself a symlink or a mount: left where they are.
    pub mounts: Vec<PathBuf>,
}

/// Swaps `dir` out and returns the trash dirs (inside `dir`) to purge, including earlier runs' leftovers.
pub fn swap(dir: &Path, id: &str, method: SwapMethod, files: Files) -> Result<Swapped> {
    let mut mounts = Vec::new();
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => recreate(dir, id, 0o755, method)?,
        Err(e) => return Err(RemoveError::new("inspect", dir, e)),
        Ok(m) if m.file_type().is_symlink() || files.mounts(dir).is_mount_point(dir) => {
            mounts = empty_in_place(dir, id)?;
        }
        Ok(m) => recreate(dir, id, m.permissions().mode() & 0o7777, method)?,
    }
    adopt_leftovers_beside(dir)?;
    Ok(Swapped { trash: trash_inside(dir)?, mounts })
}

/// `NAME.safeclean-ID` plus `suffix`, beside `dir`.
fn sibling(dir: &Path, id: &str, suffix: &str) -> PathBuf {
    let mut name: OsString = dir.file_name().unwrap_or_default().to_os_string();
    name.push(ASIDE_INFIX);
    name.push(id);
    name.push(suffix);
    dir.with_file_name(name)
}

/// Makes the new dir complete (mode, `CACHEDIR.TAG`) beside `dir`, then puts it in the old one's place, so that
/// a crash never leaves a target dir without its tag. The old tree ends up beside `dir` under a name
/// [`adopt_leftovers_beside`] collects. A dir another run put there meanwhile is kept; ours is then a leftover.
fn recreate(dir: &Path, id: &str, mode: u32, method: SwapMethod) -> Result<()> {
    let new = sibling(dir, id, NEW_SUFFIX);
    std::fs::create_dir(&new).map_err(|e| RemoveError::new("create", &new, e))?;
    write_tag(&new)?;
    // mkdir's mode is filtered by the umask; the old dir's mode is what the user chose.
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(mode))
        .map_err(|e| RemoveError::new("set the mode of", &new, e))?;
    if method == SwapMethod::Exchange {
        match rustix::fs::renameat_with(CWD, &new, CWD, dir, RenameFlags::EXCHANGE) {
            // The old tree now has the new dir's name: into the trash with it (a crash here leaves a leftover).
            Ok(()) => {
                let trash = dir.join(format!("{TRASH_PREFIX}{id}"));
                return std::fs::rename(&new, &trash).map_err(|e| RemoveError::new("move into the trash", new, e));
            }
            // Nothing to exchange with (no target dir yet), or a filesystem that cannot exchange: two renames.
            Err(Errno::NOENT | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
            Err(e) => return Err(RemoveError::new("swap the new dir into place of", dir, e.into())),
        }
    }
    match std::fs::rename(dir, sibling(dir, id, "")) {
        Ok(()) => {}
        // Gone already (a missing target dir, or a crashed run moved it): what is there now is a leftover.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(RemoveError::new("move aside", dir, e)),
    }
    match std::fs::rename(&new, dir) {
        Ok(()) => Ok(()),
        Err(_) if std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) => Ok(()),
        Err(e) => Err(RemoveError::new("move into place", dir, e)),
    }
}

fn write_tag(dir: &Path) -> Result<()> {
    let tag = dir.join("CACHEDIR.TAG");
    std::fs::write(&tag, CACHEDIR_TAG).map_err(|e| RemoveError::new("write", tag, e))
}

/// For a target dir that is a symlink or a mount point: move its entries into a trash dir inside it. A mount
/// point among them cannot be moved (`EBUSY`) and is returned, to be left alone and reported.
fn empty_in_place(dir: &Path, id: &str) -> Result<Vec<PathBuf>> {
    // The tag stays in place, so a crash at any point leaves a dir the guard still recognises.
    write_tag(dir)?;
    let trash = dir.join(format!("{TRASH_PREFIX}{id}"));
    std::fs::create_dir(&trash).map_err(|e| RemoveError::new("create", &trash, e))?;
    let mut mounts = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| RemoveError::new("list", dir, e))? {
        let entry = entry.map_err(|e| RemoveError::new("list", dir, e))?;
        let name = entry.file_name();
        if name.as_bytes().starts_with(TRASH_PREFIX.as_bytes()) || name == "CACHEDIR.TAG" {
            continue;
        }
        match std::fs::rename(entry.path(), trash.join(&name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == io::ErrorKind::ResourceBusy => mounts.push(entry.path()),
            Err(e) => return Err(RemoveError::new("move into the trash", entry.path(), e)),
        }
    }
    Ok(mounts)
}

/// Moves `NAME.safeclean-*` dirs that a crashed run left beside `dir` into it as trash.
fn adopt_leftovers_beside(dir: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else { return Ok(()) };
    let mut prefix = name.as_bytes().to_vec();
    prefix.extend_from_slice(ASIDE_INFIX.as_bytes());
    let Ok(entries) = std::fs::read_dir(parent) else { return Ok(()) };
    for entry in entries.flatten() {
        let entry_name = entry.file_name();
        let Some(id) = entry_name.as_bytes().strip_prefix(prefix.as_slice()) else { continue };
        // Only names this tool makes (`PID-HEX`): never adopt something a user happened to name alike, nor what a
        // detached deleter is working on.
        if !is_run_id(id) || !entry.file_type().is_ok_and(|t| t.is_dir()) || is_busy(&entry.path()) {
            continue;
        }
        let mut trash_name = OsString::from(TRASH_PREFIX);
        trash_name.push(std::ffi::OsStr::from_bytes(id));
        match std::fs::rename(entry.path(), dir.join(trash_name)) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty) => {}
            Err(e) => return Err(RemoveError::new("move into the trash", entry.path(), e)),
        }
    }
    Ok(())
}

/// Every trash dir inside `dir`. Trash that a failed run left inside the tree it swapped (it then sits inside
/// this run's trash) is lifted back to the top first, so paths never grow from run to run.
fn trash_inside(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = trash_entries(dir)?;
    let mut queue = out.clone();
    while let Some(trash) = queue.pop() {
        // A trash dir that vanished or cannot be listed is the purge's to report, not the swap's.
        for nested in trash_entries(&trash).unwrap_or_default() {
            let top = dir.join(nested.file_name().unwrap_or_default());
            // A detached deleter removes its trash from where it found it; moved, it could not.
            if std::fs::symlink_metadata(&top).is_ok() || is_busy(&nested) {
                continue;
            }
            match std::fs::rename(&nested, &top) {
                Ok(()) => {
                    queue.push(top.clone());
                    out.push(top);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(RemoveError::new("move into the trash", nested, e)),
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a detached deleter holds the lock of the trash dir `path`.
fn is_busy(path: &Path) -> bool {
    std::fs::File::open(path).is_ok_and(|f| {
        matches!(rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive), Err(Errno::WOULDBLOCK))
    })
}

/// The `.safeclean-trash-*` dirs directly in `dir`.
fn trash_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| RemoveError::new("list", dir, e))? {
        let entry = entry.map_err(|e| RemoveError::new("list", dir, e))?;
        if entry.file_name().as_bytes().starts_with(TRASH_PREFIX.as_bytes()) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_and_adopts_leftovers() {
        for method in [SwapMethod::Exchange, SwapMethod::Rename] {
            swaps_and_adopts_leftovers_by(method);
        }
    }

    fn swaps_and_adopts_leftovers_by(method: SwapMethod) {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let t = d.join("target");
        std::fs::create_dir_all(t.join("debug")).unwrap();
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::create_dir_all(d.join("target.safeclean-12-ab/debug")).unwrap();
        std::fs::create_dir_all(d.join("target.safeclean-mine")).unwrap();
        std::fs::create_dir_all(d.join("target.safeclean-13-cd-new")).unwrap();
        let trash = swap(&t, "99-ff", method, Files::Portable).unwrap().trash;
        let names: Vec<String> = trash.iter().map(|p| p.file_name().unwrap().to_string_lossy().into()).collect();
        assert_eq!(names, [".safeclean-trash-12-ab", ".safeclean-trash-13-cd-new", ".safeclean-trash-99-ff"]);
        assert!(t.join(".safeclean-trash-99-ff/debug").is_dir());
        assert!(t.join("CACHEDIR.TAG").is_file());
        assert_eq!(std::fs::metadata(&t).unwrap().permissions().mode() & 0o777, 0o750);
        assert!(d.join("target.safeclean-mine").is_dir(), "a name this tool did not make is left alone");
    }

    #[test]
    fn a_symlinked_target_keeps_its_link() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let real = d.join("cache");
        std::fs::create_dir_all(real.join("debug")).unwrap();
        std::os::unix::fs::symlink(&real, d.join("target")).unwrap();
        let trash = swap(&d.join("target"), "1-a", SwapMethod::Exchange, Files::Portable).unwrap().trash;
        assert!(std::fs::symlink_metadata(d.join("target")).unwrap().file_type().is_symlink());
        assert_eq!(trash, [d.join("target/.safeclean-trash-1-a")]);
        assert!(real.join(".safeclean-trash-1-a/debug").is_dir());
        assert!(real.join("CACHEDIR.TAG").is_file());
    }

    #[test]
    fn a_missing_target_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        assert!(swap(&d.join("target"), "1-a", SwapMethod::Exchange, Files::Portable).unwrap().trash.is_empty());
        assert!(d.join("target/CACHEDIR.TAG").is_file());
    }

    #[test]
    fn nested_trash_is_lifted_not_nested_again() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().join("target");
        // A failed run left trash A inside the target, with trash Z from an older version nested in it.
        std::fs::create_dir_all(t.join(".safeclean-trash-1-a/.safeclean-trash-0-f/x")).unwrap();
        let trash = swap(&t, "2-b", SwapMethod::Exchange, Files::Portable).unwrap().trash;
        let names: Vec<String> = trash.iter().map(|p| p.file_name().unwrap().to_string_lossy().into()).collect();
        assert_eq!(names, [".safeclean-trash-0-f", ".safeclean-trash-1-a", ".safeclean-trash-2-b"]);
        assert!(t.join(".safeclean-trash-0-f/x").is_dir());
        assert!(!t.join(".safeclean-trash-2-b/.safeclean-trash-1-a").exists());
    }

    #[test]
    fn run_ids() {
        assert!(is_run_id(run_id().as_bytes()));
        assert!(!is_run_id(b"backup"));
        assert!(!is_run_id(b"12-"));
    }
}
