//! Moving the old tree out of the way atomically and recreating an empty target dir, crash-safely.
//!
//! `rename(target, target.safeclean-ID)`, `mkdir target` (same mode, `CACHEDIR.TAG`), then
//! `rename(target.safeclean-ID, target/.safeclean-trash-ID)`: the dir is usable again in microseconds and the
//! trash sits inside it. A target dir that is a symlink or a mount point is kept: its entries move into the trash
//! instead. Each run first collects what a crashed run left (`.safeclean-trash-*` inside, `NAME.safeclean-*`
//! beside), so the next run finishes the job.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::guard::CACHEDIR_TAG;

/// The name prefix of trash dirs inside the target dir.
pub const TRASH_PREFIX: &str = ".safeclean-trash-";
/// The infix of the dir a crash may leave beside the target dir: `target.safeclean-ID`.
pub const ASIDE_INFIX: &str = ".safeclean-";
/// The suffix of the new dir while it is being prepared beside the target dir.
const NEW_SUFFIX: &str = "-new";

/// A name unique to this run: pid and time, so concurrent and successive runs never collide.
#[must_use]
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{nanos:x}", std::process::id())
}

/// Swaps `dir` out and returns the trash dirs (inside `dir`) to purge, including earlier runs' leftovers.
pub fn swap(dir: &Path, id: &str) -> Result<Vec<PathBuf>> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => recreate(dir, id, 0o755)?,
        Err(e) => return Err(Error::remove("inspect", dir, e)),
        Ok(m) if m.file_type().is_symlink() || is_mount_point(dir, &m) => empty_in_place(dir, id)?,
        Ok(m) => {
            let mode = m.permissions().mode() & 0o7777;
            match std::fs::rename(dir, sibling(dir, id, "")) {
                Ok(()) => {}
                // Another run moved it first: what is there now is theirs to finish; ours is a fresh dir.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::remove("move aside", dir, e)),
            }
            recreate(dir, id, mode)?;
        }
    }
    adopt_leftovers_beside(dir)?;
    trash_inside(dir)
}

/// `NAME.safeclean-ID` plus `suffix`, beside `dir`.
fn sibling(dir: &Path, id: &str, suffix: &str) -> PathBuf {
    let mut name: OsString = dir.file_name().unwrap_or_default().to_os_string();
    name.push(ASIDE_INFIX);
    name.push(id);
    name.push(suffix);
    dir.with_file_name(name)
}

/// Makes the new dir complete (mode, `CACHEDIR.TAG`) beside `dir`, then renames it into place, so that a crash
/// never leaves a target dir without its tag. A dir another run put there meanwhile is kept; ours is then a
/// leftover for [`adopt_leftovers_beside`].
fn recreate(dir: &Path, id: &str, mode: u32) -> Result<()> {
    let new = sibling(dir, id, NEW_SUFFIX);
    std::fs::create_dir(&new).map_err(|e| Error::remove("create", &new, e))?;
    write_tag(&new)?;
    // mkdir's mode is filtered by the umask; the old dir's mode is what the user chose.
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::remove("set the mode of", &new, e))?;
    match std::fs::rename(&new, dir) {
        Ok(()) => Ok(()),
        Err(_) if std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) => Ok(()),
        Err(e) => Err(Error::remove("move into place", dir, e)),
    }
}

fn write_tag(dir: &Path) -> Result<()> {
    let tag = dir.join("CACHEDIR.TAG");
    std::fs::write(&tag, CACHEDIR_TAG).map_err(|e| Error::remove("write", tag, e))
}

/// For a target dir that is a symlink or a mount point: move its entries into a trash dir inside it.
fn empty_in_place(dir: &Path, id: &str) -> Result<()> {
    // The tag stays in place, so a crash at any point leaves a dir the guard still recognises.
    write_tag(dir)?;
    let trash = dir.join(format!("{TRASH_PREFIX}{id}"));
    std::fs::create_dir(&trash).map_err(|e| Error::remove("create", &trash, e))?;
    for entry in std::fs::read_dir(dir).map_err(|e| Error::remove("list", dir, e))? {
        let entry = entry.map_err(|e| Error::remove("list", dir, e))?;
        let name = entry.file_name();
        if name.as_bytes().starts_with(TRASH_PREFIX.as_bytes()) || name == "CACHEDIR.TAG" {
            continue;
        }
        match std::fs::rename(entry.path(), trash.join(&name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::remove("move into the trash", entry.path(), e)),
        }
    }
    Ok(())
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
        // Only names this tool makes (`PID-HEX`): never adopt something a user happened to name alike.
        if !is_run_id(id) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let mut trash_name = OsString::from(TRASH_PREFIX);
        trash_name.push(std::ffi::OsStr::from_bytes(id));
        match std::fs::rename(entry.path(), dir.join(trash_name)) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty) => {}
            Err(e) => return Err(Error::remove("move into the trash", entry.path(), e)),
        }
    }
    Ok(())
}

fn is_run_id(id: &[u8]) -> bool {
    let id = id.strip_suffix(NEW_SUFFIX.as_bytes()).unwrap_or(id);
    let mut parts = id.splitn(2, |b| *b == b'-');
    let pid = parts.next().unwrap_or_default();
    let time = parts.next().unwrap_or_default();
    !pid.is_empty() && pid.iter().all(u8::is_ascii_digit) && !time.is_empty() && time.iter().all(u8::is_ascii_hexdigit)
}

/// Every trash dir inside `dir`.
fn trash_inside(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::remove("list", dir, e))? {
        let entry = entry.map_err(|e| Error::remove("list", dir, e))?;
        if entry.file_name().as_bytes().starts_with(TRASH_PREFIX.as_bytes()) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// A mount root: its device differs from its parent's, or statx says so (bind mounts of the same device).
fn is_mount_point(dir: &Path, meta: &std::fs::Metadata) -> bool {
    let parent_dev = dir.parent().and_then(|p| std::fs::metadata(p).ok()).map(|m| m.dev());
    if parent_dev.is_some_and(|d| d != meta.dev()) {
        return true;
    }
    rustix::fs::statx(rustix::fs::CWD, dir, rustix::fs::AtFlags::SYMLINK_NOFOLLOW, rustix::fs::StatxFlags::BASIC_STATS)
        .is_ok_and(|s| {
            let mount_root = rustix::fs::StatxAttributes::MOUNT_ROOT;
            s.stx_attributes_mask.contains(mount_root) && s.stx_attributes.contains(mount_root)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_and_adopts_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let t = d.join("target");
        std::fs::create_dir_all(t.join("debug")).unwrap();
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::create_dir_all(d.join("target.safeclean-12-ab/debug")).unwrap();
        std::fs::create_dir_all(d.join("target.safeclean-mine")).unwrap();
        std::fs::create_dir_all(d.join("target.safeclean-13-cd-new")).unwrap();
        let trash = swap(&t, "99-ff").unwrap();
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
        let trash = swap(&d.join("target"), "1-a").unwrap();
        assert!(std::fs::symlink_metadata(d.join("target")).unwrap().file_type().is_symlink());
        assert_eq!(trash, [d.join("target/.safeclean-trash-1-a")]);
        assert!(real.join(".safeclean-trash-1-a/debug").is_dir());
        assert!(real.join("CACHEDIR.TAG").is_file());
    }

    #[test]
    fn a_missing_target_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        assert!(swap(&d.join("target"), "1-a").unwrap().is_empty());
        assert!(d.join("target/CACHEDIR.TAG").is_file());
    }

    #[test]
    fn run_ids() {
        assert!(is_run_id(run_id().as_bytes()));
        assert!(!is_run_id(b"backup"));
        assert!(!is_run_id(b"12-"));
    }
}
