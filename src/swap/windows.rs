//! The swap on Windows, where NTFS has no exchange of two names.
//!
//! The new dir is made complete in a stage beside the old one (`target.safeclean-ID-new\new`, with its
//! `CACHEDIR.TAG`) and claimed (its run lock taken) before anyone can see it. The old tree is then opened again by
//! the parent's handle, for moving, checked to be the approved dir (volume and file index), and moved by that
//! handle into the stage; the new dir is moved by its handle into the freed name. Between the two renames there is
//! no `target\` (a build starting then makes its own, and the second rename refuses to replace it); there is never
//! a `target\` without its tag. The old tree finally moves into the new dir as `.safeclean-trash-ID`.
//!
//! Windows refuses to move a dir while a file inside is open without share-delete or runs as an image (NTFS: access
//! denied): the run stops the holders first, and says which path refused if one is left. A dir that is a junction or
//! a symlink the user made (or a mounted volume) is kept: its entries move into a trash dir inside it.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::windows::ffi::OsStrExt;
use std::path::Path;

use windows_sys::Win32::Foundation::ERROR_NOT_SAME_DEVICE;

use super::{ASIDE_INFIX, Result, SwapMethod, Swapped, TRASH_PREFIX, changed, io_error};
use crate::anchor::{Anchored, Kind, Opened};
use crate::layout::{CACHEDIR_TAG, NEW_SUFFIX, is_run_id};
use crate::model::FileId;
use crate::platform::Dir;
use crate::platform::windows::fs::{self, Access, Follow, Want};
use crate::purge::TrashRoot;
use crate::runlock::TrashLocks;

/// Swaps the approved dir `a` out and returns the trash (inside it) to purge, earlier runs' leftovers included.
/// `claim` is called with the new dir's identity before it has its name. `_method`: there is one way here.
pub fn swap(
    a: &Anchored,
    id: &str,
    _method: SwapMethod,
    locks: Option<&TrashLocks>,
    claim: &mut dyn FnMut(FileId) -> io::Result<()>,
) -> Result<Swapped> {
    let target = match &a.dir {
        None => create(a, id, claim)?,
        Some(d) if d.kind == Kind::Plain => recreate(a, d, id, claim)?,
        Some(d) => {
            empty_in_place(a, d, id)?;
            d.fd.try_clone().map_err(|e| io_error("open", &a.path, e))?
        }
    };
    adopt_leftovers_beside(a, &target, locks)?;
    // Trash is named under the dir's real path, as Windows spells it: a detached deleter opens it by that path,
    // and the spelling given (a trailing space in a parent's name) may lead nowhere when read again.
    Ok(Swapped { trash: trash_inside(&target, &a.real, locks)?, mounts: Vec::new() })
}

/// `NAME.safeclean-ID` plus `suffix`: the names beside the target dir.
fn sibling(a: &Anchored, id: &str, suffix: &str) -> OsString {
    let mut name = a.name.clone();
    name.push(format!("{ASIDE_INFIX}{id}{suffix}"));
    name
}

fn trash_name(id: &str) -> OsString {
    OsString::from(format!("{TRASH_PREFIX}{id}"))
}

fn beside(a: &Anchored, name: &OsStr) -> std::path::PathBuf {
    a.path.parent().unwrap_or(Path::new("")).join(name)
}

/// The stage beside the target dir and the complete new dir in it.
struct Stage {
    dir: Dir,
    new: Dir,
}

const NEW: &str = "new";
const OLD: &str = "old";

impl Stage {
    fn make(a: &Anchored, id: &str, claim: &mut dyn FnMut(FileId) -> io::Result<()>) -> Result<Self> {
        let name = sibling(a, id, NEW_SUFFIX);
        let dir = fs::create_dir_at(&a.parent, &name).map_err(|e| io_error("create", &beside(a, &name), e))?;
        let path = beside(a, &name).join(NEW);
        let made = fs::create_dir_at(&dir, OsStr::new(NEW)).map_err(|e| io_error("create", &path, e));
        let new = match made {
            Ok(new) => new,
            Err(e) => {
                let _ = fs::delete(&dir);
                return Err(e);
            }
        };
        let stage = Stage { dir, new };
        let tagged = fs::create_file_at(&stage.new, OsStr::new("CACHEDIR.TAG"))
            .and_then(|mut f| f.write_all(CACHEDIR_TAG.as_bytes()))
            .map_err(|e| io_error("write", &path.join("CACHEDIR.TAG"), e));
        let mut claimed = || fs::info(&stage.new).and_then(|i| claim(i.id)).map_err(|e| io_error("lock", &a.path, e));
        match tagged.and_then(|()| claimed()) {
            Ok(()) => Ok(stage),
            Err(e) => {
                stage.discard(true);
                Err(e)
            }
        }
    }

    /// Removes the stage, and the new dir in it when `with_new`; what else is in it (the old tree, after a
    /// failure) keeps the stage, for the next run to adopt as trash.
    fn discard(self, with_new: bool) {
        if with_new {
            if let Ok(tag) =
                fs::open_at(&self.new, OsStr::new("CACHEDIR.TAG"), Access::Delete, Want::NotDir, Follow::No)
            {
                let _ = fs::delete(&tag);
            }
            let _ = fs::delete(&self.new);
        }
        drop(self.new);
        let _ = fs::delete(&self.dir);
    }
}

/// No target dir yet: one is made complete in the stage, then moved into place.
fn create(a: &Anchored, id: &str, claim: &mut dyn FnMut(FileId) -> io::Result<()>) -> Result<Dir> {
    let stage = Stage::make(a, id, claim)?;
    if let Err(e) = fs::rename_into(&stage.new, &a.parent, &a.name) {
        stage.discard(true);
        return Err(if e.kind() == io::ErrorKind::AlreadyExists {
            changed(a, "a dir appeared by its name after it was checked")
        } else {
            io_error("move into place", &a.path, e)
        });
    }
    let new = stage.new.try_clone().map_err(|e| io_error("open", &a.path, e))?;
    stage.discard(false);
    Ok(new)
}

/// Moves the approved dir out by its own handle and the complete new dir in by its handle; the old tree then goes
/// into the new dir's trash.
fn recreate(a: &Anchored, d: &Opened, id: &str, claim: &mut dyn FnMut(FileId) -> io::Result<()>) -> Result<Dir> {
    let stage = Stage::make(a, id, claim)?;
    let old = match fs::open_at(&a.parent, &a.name, Access::Delete, Want::Any, Follow::No) {
        Ok(old) => old,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            stage.discard(true);
            return Err(changed(a, "it was removed after it was checked"));
        }
        Err(e) => {
            stage.discard(true);
            return Err(io_error("move aside", &a.path, e));
        }
    };
    if fs::info(&old).map(|i| i.id).ok() != Some(d.id) {
        stage.discard(true);
        return Err(changed(a, "its name now leads to another dir"));
    }
    if let Err(e) = fs::rename_into(&old, &stage.dir, OsStr::new(OLD)) {
        stage.discard(true);
        return Err(io_error("move aside", &a.path, e));
    }
    if let Err(e) = fs::rename_into(&stage.new, &a.parent, &a.name) {
        // A build made its own dir in the instant without one: put the old tree back if the name is free, or
        // leave it in the stage, where the next run adopts it.
        if let Err(back) = fs::rename_into(&old, &a.parent, &a.name) {
            // Neither in place: say where the old tree is (the next run takes it as trash).
            let aside = beside(a, &sibling(a, id, NEW_SUFFIX)).join(OLD);
            let why = io::Error::new(
                e.kind(),
                format!("{e}; putting the old tree back failed too ({back}): it is at {}", aside.display()),
            );
            stage.discard(false);
            return Err(io_error("move into place", &a.path, why));
        }
        stage.discard(true);
        return Err(if e.kind() == io::ErrorKind::AlreadyExists {
            changed(a, "a dir appeared by its name while the old one was moved aside")
        } else {
            io_error("move into place", &a.path, e)
        });
    }
    let trash = trash_name(id);
    let into_trash = fs::rename_into(&old, &stage.new, &trash);
    let new = stage.new.try_clone().map_err(|e| io_error("open", &a.path, e))?;
    into_trash.map_err(|e| io_error("move into the trash", &beside(a, &sibling(a, id, NEW_SUFFIX)).join(OLD), e))?;
    stage.discard(false);
    Ok(new)
}

/// For a target dir that is a link the user made: move its entries into a trash dir inside it. Its tag stays if it
/// is a file; a tag that is itself a link goes with the rest and a new one is written.
fn empty_in_place(a: &Anchored, d: &Opened, id: &str) -> Result<()> {
    let trash = trash_name(id);
    let trash_dir = fs::create_dir_at(&d.fd, &trash).map_err(|e| io_error("create", &a.path.join(&trash), e))?;
    let tag = OsStr::new("CACHEDIR.TAG");
    let tag_is_file = fs::open_at(&d.fd, tag, Access::Read, Want::NotDir, Follow::No)
        .and_then(|h| fs::info(&h))
        .is_ok_and(|i| !i.is_reparse_point());
    let entries = fs::list(&d.fd).map_err(|e| io_error("list", &a.path, e))?;
    for entry in entries {
        let name = entry.name;
        if (tag_is_file && name == tag) || name.to_string_lossy().starts_with(TRASH_PREFIX) {
            continue;
        }
        let moved = fs::open_at(&d.fd, &name, Access::Delete, Want::Any, Follow::No)
            .and_then(|h| fs::rename_into(&h, &trash_dir, &name));
        match moved {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("move into the trash", &a.path.join(&name), e)),
        }
    }
    if !tag_is_file {
        fs::create_file_at(&d.fd, tag)
            .and_then(|mut f| f.write_all(CACHEDIR_TAG.as_bytes()))
            .map_err(|e| io_error("write", &a.path.join(tag), e))?;
    }
    Ok(())
}

/// The rest of `name` after `prefix`, if `name` starts with it (compared as UTF-16, as Windows names are).
fn strip_prefix(name: &OsStr, prefix: &OsStr) -> Option<String> {
    let name: Vec<u16> = name.encode_wide().collect();
    let prefix: Vec<u16> = prefix.encode_wide().collect();
    let rest = name.strip_prefix(prefix.as_slice())?;
    String::from_utf16(rest).ok()
}

/// Moves `NAME.safeclean-*` dirs that a crashed run left beside the target dir into it as trash.
fn adopt_leftovers_beside(a: &Anchored, target: &Dir, locks: Option<&TrashLocks>) -> Result<()> {
    let mut prefix = a.name.clone();
    prefix.push(ASIDE_INFIX);
    let Ok(listing) = fs::list(&a.parent) else { return Ok(()) };
    for entry in listing.into_iter().filter(fs::Entry::is_plain_dir) {
        // Only names this tool makes (`PID-HEX`): never adopt something a user happened to name alike, nor what a
        // detached deleter is working on.
        let Some(id) = strip_prefix(&entry.name, &prefix).filter(|id| is_run_id(id.as_bytes())) else { continue };
        let Ok(h) = fs::open_at(&a.parent, &entry.name, Access::Delete, Want::Dir, Follow::No) else { continue };
        if is_busy(&h, locks) {
            continue;
        }
        match fs::rename_into(&h, target, &trash_name(&id)) {
            Ok(()) => {}
            Err(e) if tolerated(&e) => {}
            Err(e) => return Err(io_error("move into the trash", &beside(a, &entry.name), e)),
        }
    }
    Ok(())
}

/// Gone meanwhile, its name taken, or on another volume (the next run with that layout takes it).
fn tolerated(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::AlreadyExists)
        || e.raw_os_error() == Some(ERROR_NOT_SAME_DEVICE.cast_signed())
}

/// Whether a purge holds the lock of the open trash dir `h` (a detached deleter working on it).
fn is_busy(h: &Dir, locks: Option<&TrashLocks>) -> bool {
    locks.zip(fs::info(h).ok()).is_some_and(|(locks, info)| locks.is_busy(info.id))
}

/// Every trash entry inside the target dir `target` (at `path`). Trash that a failed run left inside the tree it
/// swapped is lifted back to the top first, so paths never grow from run to run.
pub fn trash_inside(target: &Dir, path: &Path, locks: Option<&TrashLocks>) -> Result<Vec<TrashRoot>> {
    let is_trash = |e: &fs::Entry| e.name.to_string_lossy().starts_with(TRASH_PREFIX);
    let listing = fs::list(target).map_err(|e| io_error("list", path, e))?;
    let mut names: Vec<OsString> = listing.iter().filter(|e| is_trash(e)).map(|e| e.name.clone()).collect();
    let mut queue: Vec<OsString> =
        listing.into_iter().filter(|e| is_trash(e) && e.is_plain_dir()).map(|e| e.name).collect();
    while let Some(name) = queue.pop() {
        // A trash dir that vanished or cannot be opened or listed is the purge's to report, not the swap's.
        let Ok(trash) = fs::open_at(target, &name, Access::Read, Want::Dir, Follow::No) else { continue };
        for nested in fs::list(&trash).unwrap_or_default().into_iter().filter(|e| is_trash(e)) {
            let Ok(h) = fs::open_at(&trash, &nested.name, Access::Delete, Want::Any, Follow::No) else { continue };
            // A detached deleter removes its trash from where it found it; moved, it could not.
            if is_busy(&h, locks) {
                continue;
            }
            match fs::rename_into(&h, target, &nested.name) {
                Ok(()) => {
                    if nested.is_plain_dir() {
                        queue.push(nested.name.clone());
                    }
                    names.push(nested.name);
                }
                Err(e) if tolerated(&e) => {}
                Err(e) => return Err(io_error("move into the trash", &path.join(&name).join(&nested.name), e)),
            }
        }
    }
    names.sort();
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let h = fs::open_at(target, &name, Access::Read, Want::Any, Follow::No).ok()?;
            let id = fs::info(&h).ok()?.id;
            Some(TrashRoot { path: path.join(&name), parent: target.try_clone().ok(), id })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Files;

    fn anchored(dir: &Path) -> Anchored {
        crate::anchor::open(dir, Files).unwrap().unwrap()
    }

    fn names(trash: &[TrashRoot]) -> Vec<String> {
        trash.iter().map(|t| t.path.file_name().unwrap().to_string_lossy().into()).collect()
    }

    #[test]
    fn swaps_recreates_and_adopts_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let t = d.join("target");
        std::fs::create_dir_all(t.join("debug")).unwrap();
        std::fs::write(t.join("debug/app.exe"), "x").unwrap();
        std::fs::create_dir_all(d.join(r"target.safeclean-12-ab\debug")).unwrap();
        std::fs::create_dir_all(d.join("target.safeclean-mine")).unwrap();
        std::fs::create_dir_all(d.join(r"target.safeclean-13-cd-new\old")).unwrap();
        let a = anchored(&t);
        let mut claimed = None;
        let trash = swap(&a, "99-ff", SwapMethod::Exchange, None, &mut |id| {
            claimed = Some(id);
            Ok(())
        })
        .unwrap()
        .trash;
        assert_eq!(names(&trash), [".safeclean-trash-12-ab", ".safeclean-trash-13-cd-new", ".safeclean-trash-99-ff"]);
        assert_eq!(trash[2].id, a.id().unwrap(), "the trash is the dir that was approved");
        assert!(t.join(r".safeclean-trash-99-ff\debug\app.exe").is_file());
        assert_eq!(std::fs::read_to_string(t.join("CACHEDIR.TAG")).unwrap(), CACHEDIR_TAG);
        assert_eq!(anchored(&t).id(), claimed, "the new dir is the one claimed");
        assert!(d.join("target.safeclean-mine").is_dir(), "a name the tool did not make is left alone");
        assert!(!d.join("target.safeclean-99-ff-new").exists(), "the stage is gone");

        // The purge removes it all.
        let interrupt = crate::interrupt::Interrupt::manual().unwrap();
        let settings = crate::purge::Settings {
            workers: 4,
            files: Files,
            busy: crate::purge::Busy::Skip,
            lock_timeout: std::time::Duration::ZERO,
        };
        let purged = crate::purge::purge(&trash, settings, None, &crate::purge::Progress::default(), &interrupt);
        assert!(purged.problems.errors.is_empty(), "{:?}", purged.problems.errors);
        // The anchor's handle on the old tree: with classic deletes (Wine, FAT) a deleted dir keeps its name while a
        // handle is open.
        drop((trash, a));
        let root = fs::open_dir(&t, Access::Read).unwrap();
        let left: Vec<String> =
            fs::list(&root).unwrap().into_iter().map(|e| e.name.to_string_lossy().into_owned()).collect();
        assert_eq!(left, ["CACHEDIR.TAG"]);
    }

    #[test]
    fn a_one_letter_target_dir_is_swapped() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().join("t");
        std::fs::create_dir_all(t.join("debug")).unwrap();
        let a = anchored(&t);
        let trash = swap(&a, "7-e", SwapMethod::Exchange, None, &mut |_| Ok(())).unwrap().trash;
        assert_eq!(names(&trash), [".safeclean-trash-7-e"]);
        assert!(t.join("CACHEDIR.TAG").is_file() && t.join(r".safeclean-trash-7-e\debug").is_dir());
    }

    #[test]
    fn a_missing_dir_is_made_and_a_replaced_one_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().join("target");
        let a = anchored(&t);
        swap(&a, "1-a", SwapMethod::Exchange, None, &mut |_| Ok(())).unwrap();
        assert!(t.join("CACHEDIR.TAG").is_file());

        let a = anchored(&t);
        std::fs::rename(&t, tmp.path().join("moved")).unwrap();
        std::fs::create_dir(&t).unwrap();
        let e = swap(&a, "2-b", SwapMethod::Exchange, None, &mut |_| Ok(())).unwrap_err();
        assert!(matches!(e, super::super::SwapError::Changed { .. }), "{e}");
        assert!(tmp.path().join(r"moved\CACHEDIR.TAG").is_file(), "the approved dir is untouched");
        assert!(!tmp.path().join("target.safeclean-2-b-new").exists(), "the stage is gone");
    }
}
