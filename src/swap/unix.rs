//! The swap on Unix.
//!
//! The new dir is made beside the old one (`target.safeclean-ID-new`) with `mkdirat`, opened without following a
//! symlink and checked to be the one just made before its tag is created (`O_EXCL|O_NOFOLLOW`) and its owner, group
//! and mode are set to the old one's (`fchown`, `fchmod`). It is then exchanged with the old tree in one step
//! (`renameat2(RENAME_EXCHANGE)`) between names of the held parent, so `target/` never stops existing; what was
//! swapped out must be the approved dir (device and inode), or the exchange is undone and the run refuses. The old
//! tree then moves into the new dir as `.safeclean-trash-ID`, mode 0700, so no other user can open (or lock) it.
//! Where the filesystem cannot exchange, two renames, with an instant without `target/`.
//!
//! A target dir that is a symlink the user made, or a mount point, is kept: its entries move into a trash dir inside
//! it, and its tag is replaced by a rename, never written through a link. Each run collects what a crashed or failed
//! run left (`.safeclean-trash-*` inside, also nested in older trash, and `NAME.safeclean-*` beside), so the next run
//! finishes the job and trash never nests. All of it runs with the rights of the old tree's owner (see
//! `platform::act_as`).

use std::ffi::{CStr, CString, OsStr};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, RenameFlags, Uid};
use rustix::io::Errno;

use super::{ASIDE_INFIX, Result, SwapError, SwapMethod, Swapped, TRASH_PREFIX, changed, io_error};
use crate::anchor::{Anchored, Kind, Opened};
use crate::layout::{CACHEDIR_TAG, NEW_SUFFIX, is_run_id};
use crate::model::{FileId, Owner};
use crate::platform::{self, Acting};
use crate::purge::TrashRoot;
use crate::runlock::TrashLocks;

/// Swaps the approved dir `a` out and returns the trash (inside it) to purge, earlier runs' leftovers included.
/// `locks`: where purges lock the trash dirs they work on (a busy one is neither adopted nor moved). `claim` is
/// called with the new dir's identity before anyone else can see it, so that the run can lock it first: a run that
/// comes after the swap finds the new dir, and must wait for this one to finish with it.
pub fn swap(
    a: &Anchored,
    id: &str,
    method: SwapMethod,
    locks: Option<&TrashLocks>,
    claim: &mut dyn FnMut(FileId) -> io::Result<()>,
) -> Result<Swapped> {
    let parent = rustix::fs::fstat(&a.parent).map_err(|e| io_error("inspect the dir holding", &a.path, e))?;
    let parent_owner = platform::owner(&parent);
    let old_owner = a.dir.as_ref().map(|d| d.owner);
    // An existing tree is worked on as its owner; a dir that does not exist yet is made as the owner of the dir it
    // goes in.
    let acting = Acting::as_owner(Some(old_owner.unwrap_or(parent_owner)))
        .map_err(|e| io_error("act with the rights of the owner of", &a.path, e))?;
    let made_by = acting.uid();
    // The new dir is the old one's owner's; but one root made in another user's dir (`sudo cargo build`) is given
    // back to that user, whose builds go there.
    let new_owner = match old_owner {
        Some(o) if o.uid == 0 && parent_owner.uid != 0 => parent_owner,
        Some(o) => o,
        None => parent_owner,
    };
    let (target, mounts) = match &a.dir {
        None => (create(a, id, made_by, new_owner, claim)?, Vec::new()),
        Some(d) if d.kind == Kind::Plain => (recreate(a, d, id, (method, made_by, new_owner), claim)?, Vec::new()),
        Some(d) => (dup(&d.fd, &a.path)?, empty_in_place(a, d, id, made_by)?),
    };
    adopt_leftovers_beside(a, &target, locks)?;
    Ok(Swapped { trash: trash_inside(&target, &a.path, locks)?, mounts })
}

fn dup(fd: &OwnedFd, path: &Path) -> Result<OwnedFd> {
    fd.try_clone().map_err(|e| io_error("open", path, e))
}

/// `NAME.safeclean-ID` plus `suffix`: the names beside the target dir.
fn sibling(a: &Anchored, id: &str, suffix: &str) -> CString {
    let mut name = a.name.as_bytes().to_vec();
    name.extend_from_slice(format!("{ASIDE_INFIX}{id}{suffix}").as_bytes());
    CString::new(name).unwrap_or_default()
}

fn trash_name(id: &str) -> CString {
    CString::new(format!("{TRASH_PREFIX}{id}")).unwrap_or_default()
}

fn in_dir(dir: &Path, name: &CStr) -> PathBuf {
    dir.join(OsStr::from_bytes(name.to_bytes()))
}

/// What `name` in `dir` is, not following a symlink.
fn id_at(dir: &OwnedFd, name: &CStr) -> Option<FileId> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok().map(|st| platform::file_id(&st))
}

/// Makes the dir `name` in `parent`, opens it without following a symlink, and checks it is the one just made
/// (a new dir of `made_by`'s that nobody else may enter) before anything is written into it. It gets `mode` and
/// `owner` at the end, so nothing can slip in while it is open to others. With `tag`, it gets cargo's `CACHEDIR.TAG`.
fn make_dir(
    parent: &OwnedFd,
    parent_path: &Path,
    name: &CStr,
    made_by: u32,
    look: (Mode, Option<Owner>),
    tag: bool,
) -> Result<OwnedFd> {
    let path = in_dir(parent_path, name);
    rustix::fs::mkdirat(parent, name, Mode::RWXU).map_err(|e| io_error("create", &path, e))?;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let taken = || SwapError::Changed { path: path.clone(), what: "another file took its place as it was made".into() };
    let fd = match rustix::fs::openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::LOOP | Errno::NOTDIR | Errno::NOENT) => return Err(taken()),
        Err(e) => return Err(io_error("open", &path, e)),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| io_error("inspect", &path, e))?;
    if st.st_uid != made_by || st.st_mode & 0o077 != 0 {
        return Err(taken());
    }
    if tag {
        write_new(&fd, c"CACHEDIR.TAG", CACHEDIR_TAG.as_bytes()).map_err(|e| io_error("write", &path, e))?;
        // What cargo sets on a target dir it creates, on the open dir: optional, as in cargo (a filesystem without
        // extended attributes refuses it, and the dir is no less a target dir).
        let _ = platform::exclude_from_backups(fd.as_fd());
    }
    let (mode, owner) = look;
    // A dir this run made and checked, held open: root gives it away, and sets a setgid bit for a group the owner
    // is not in, with its own rights. Another user's run can only change the group, to one of its own, or keeps its
    // own; the mode keeps others out as before.
    platform::with_own_rights(|| {
        if let Some(o) = owner.filter(|o| (o.uid, o.gid) != (st.st_uid, st.st_gid)) {
            let _ = rustix::fs::fchown(&fd, Some(Uid::from_raw(o.uid)), Some(Gid::from_raw(o.gid)))
                .or_else(|_| rustix::fs::fchown(&fd, None, Some(Gid::from_raw(o.gid))));
        }
        rustix::fs::fchmod(&fd, mode)
    })
    .map_err(|e| io_error("set the mode of", &path, e))?;
    Ok(fd)
}

/// Creates `name` in `dir` with `bytes`: never an existing file, never through a symlink.
fn write_new(dir: &OwnedFd, name: &CStr, bytes: &[u8]) -> io::Result<()> {
    let flags = OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o644))?;
    std::fs::File::from(fd).write_all(bytes)
}

/// A private dir beside the target dir (`target.safeclean-ID-new`, mode 0700, checked to be the one just made):
/// the new dir is made in it and the old tree lands in it, so that between the steps no other user can touch
/// either. The only name another user can change is the target dir's own, and what the exchange takes out of it is
/// checked.
struct Stage {
    name: CString,
    fd: OwnedFd,
    path: PathBuf,
}

/// The names inside the stage: the new dir before the exchange, the old tree after it.
const NEW: &CStr = c"new";
const OLD: &CStr = c"old";

impl Stage {
    fn make(a: &Anchored, id: &str, made_by: u32) -> Result<Self> {
        let name = sibling(a, id, NEW_SUFFIX);
        let parent_path = a.path.parent().unwrap_or(Path::new("/"));
        let fd = make_dir(&a.parent, parent_path, &name, made_by, (Mode::RWXU, None), false)?;
        Ok(Stage { path: in_dir(parent_path, &name), name, fd })
    }

    /// Removes the stage, and the new dir in it if it is still there; what else is in it (the old tree, after a
    /// failure) stays, for the next run to adopt as trash.
    fn discard(self, a: &Anchored, new: &OwnedFd) {
        remove_made(&self.fd, NEW, new);
        if crate::runlock::id_of(&self.fd).ok() == id_at(&a.parent, &self.name) {
            let _ = rustix::fs::unlinkat(&a.parent, &self.name, AtFlags::REMOVEDIR);
        }
    }
}

/// No target dir yet: one is made complete in the stage, then renamed into place.
fn create(
    a: &Anchored,
    id: &str,
    made_by: u32,
    owner: Owner,
    claim: &mut dyn FnMut(FileId) -> io::Result<()>,
) -> Result<OwnedFd> {
    let stage = Stage::make(a, id, made_by)?;
    let fd = make_dir(&stage.fd, &stage.path, NEW, made_by, (Mode::from_raw_mode(0o755), Some(owner)), true)?;
    if let Err(e) = crate::runlock::id_of(&fd).and_then(&mut *claim) {
        stage.discard(a, &fd);
        return Err(io_error("lock", &a.path, e));
    }
    let moved = match rustix::fs::renameat_with(&stage.fd, NEW, &a.parent, &a.name, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => rustix::fs::renameat(&stage.fd, NEW, &a.parent, &a.name),
        other => other,
    };
    stage.discard(a, &fd);
    match moved {
        Ok(()) => Ok(fd),
        Err(Errno::EXIST | Errno::NOTEMPTY) => Err(changed(a, "a dir appeared by its name after it was checked")),
        Err(e) => Err(io_error("move into place", &a.path, e)),
    }
}

/// Removes a dir this run made and no longer needs (its tag, then it), if `name` in `parent` still names it.
fn remove_made(parent: &OwnedFd, name: &CStr, fd: &OwnedFd) {
    if crate::runlock::id_of(fd).ok() == id_at(parent, name) {
        let _ = rustix::fs::unlinkat(fd, c"CACHEDIR.TAG", AtFlags::empty());
        let _ = rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR);
    }
}

/// Makes the new dir complete in the stage, then exchanges it with the old tree in one step, so that a crash never
/// leaves a target dir without its tag. What came out must be the approved dir, or the exchange is undone. The old
/// tree then moves from the stage into the new dir's trash.
fn recreate(
    a: &Anchored,
    d: &Opened,
    id: &str,
    (method, made_by, owner): (SwapMethod, u32, Owner),
    claim: &mut dyn FnMut(FileId) -> io::Result<()>,
) -> Result<OwnedFd> {
    let stage = Stage::make(a, id, made_by)?;
    let new = make_dir(&stage.fd, &stage.path, NEW, made_by, (d.mode, Some(owner)), true)?;
    if let Err(e) = crate::runlock::id_of(&new).and_then(&mut *claim) {
        stage.discard(a, &new);
        return Err(io_error("lock", &a.path, e));
    }
    let approved = |dir: &OwnedFd, name: &CStr| id_at(dir, name) == Some(d.id);
    let exchanged = match method {
        SwapMethod::Exchange => rustix::fs::renameat_with(&stage.fd, NEW, &a.parent, &a.name, RenameFlags::EXCHANGE),
        SwapMethod::Rename => Err(Errno::INVAL),
    };
    let old = match exchanged {
        Ok(()) if approved(&stage.fd, NEW) => NEW,
        Ok(()) => {
            // Replaced between the check and the exchange: put back what was taken out, touch nothing more.
            let _ = rustix::fs::renameat_with(&stage.fd, NEW, &a.parent, &a.name, RenameFlags::EXCHANGE);
            stage.discard(a, &new);
            return Err(changed(a, "its name was given to another dir as it was swapped"));
        }
        // A filesystem that cannot exchange: two renames, through the stage.
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            if let Err(e) = rustix::fs::renameat(&a.parent, &a.name, &stage.fd, OLD) {
                stage.discard(a, &new);
                return Err(io_error("move aside", &a.path, e));
            }
            if !approved(&stage.fd, OLD) {
                let _ = rustix::fs::renameat_with(&stage.fd, OLD, &a.parent, &a.name, RenameFlags::NOREPLACE);
                stage.discard(a, &new);
                return Err(changed(a, "its name was given to another dir as it was moved aside"));
            }
            match rustix::fs::renameat_with(&stage.fd, NEW, &a.parent, &a.name, RenameFlags::NOREPLACE) {
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                    rustix::fs::renameat(&stage.fd, NEW, &a.parent, &a.name)
                }
                other => other,
            }
            .map_err(|e| io_error("move into place", &a.path, e))?;
            OLD
        }
        Err(e) => {
            stage.discard(a, &new);
            return Err(io_error("swap the new dir into place of", &a.path, e));
        }
    };
    into_trash(a, d, &stage, old, &new, id)?;
    stage.discard(a, &new);
    Ok(new)
}

/// Moves the old tree, now `from` in the stage, into the new dir's trash, and closes it to other users.
fn into_trash(a: &Anchored, d: &Opened, stage: &Stage, from: &CStr, new: &OwnedFd, id: &str) -> Result<()> {
    let trash = trash_name(id);
    // Only the owner (or root) may open it from here on.
    let _ = rustix::fs::fchmod(&d.fd, Mode::RWXU);
    rustix::fs::renameat(&stage.fd, from, new, &trash)
        .map_err(|e| io_error("move into the trash", &in_dir(&stage.path, from), e))?;
    if id_at(new, &trash) == Some(d.id) {
        Ok(())
    } else {
        Err(changed(a, "the trash is not the dir that was swapped out"))
    }
}

/// For a target dir that is a symlink or a mount point: move its entries into a trash dir inside it. A mount point
/// among them cannot be moved (`EBUSY`) and is returned, to be left alone and reported.
fn empty_in_place(a: &Anchored, d: &Opened, id: &str, made_by: u32) -> Result<Vec<PathBuf>> {
    let trash = trash_name(id);
    let trash_fd = make_dir(&d.fd, &a.path, &trash, made_by, (Mode::RWXU, Some(d.owner)), false)?;
    // The tag is replaced first, by a rename that never writes through a link: a crash at any later point leaves a
    // dir the guard still recognises.
    // Written in the trash dir, which nobody else may enter, so that no one can swap it before it moves.
    let tmp = c".safeclean-tag";
    write_new(&trash_fd, tmp, CACHEDIR_TAG.as_bytes())
        .map_err(|e| io_error("write", &a.path.join("CACHEDIR.TAG"), e))?;
    if let Err(Errno::ISDIR | Errno::NOTEMPTY | Errno::EXIST) =
        rustix::fs::renameat(&trash_fd, tmp, &d.fd, c"CACHEDIR.TAG")
    {
        let _ = rustix::fs::renameat(&d.fd, c"CACHEDIR.TAG", &trash_fd, c"CACHEDIR.TAG.old");
        rustix::fs::renameat(&trash_fd, tmp, &d.fd, c"CACHEDIR.TAG")
            .map_err(|e| io_error("write", &a.path.join("CACHEDIR.TAG"), e))?;
    }
    let mut mounts = Vec::new();
    let listing = rustix::fs::Dir::read_from(&d.fd).map_err(|e| io_error("list", &a.path, e))?;
    for entry in listing {
        let entry = entry.map_err(|e| io_error("list", &a.path, e))?;
        let name = entry.file_name();
        if [&b"."[..], b"..", b"CACHEDIR.TAG"].contains(&name.to_bytes())
            || name.to_bytes().starts_with(TRASH_PREFIX.as_bytes())
        {
            continue;
        }
        match rustix::fs::renameat(&d.fd, name, &trash_fd, name) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(Errno::BUSY) => mounts.push(in_dir(&a.path, name)),
            Err(e) => return Err(io_error("move into the trash", &in_dir(&a.path, name), e)),
        }
    }
    Ok(mounts)
}

/// Moves `NAME.safeclean-*` dirs that a crashed run left beside the target dir into it as trash (those on another
/// filesystem than a symlinked target dir stay: the next run with that layout takes them).
fn adopt_leftovers_beside(a: &Anchored, target: &OwnedFd, locks: Option<&TrashLocks>) -> Result<()> {
    let mut prefix = a.name.as_bytes().to_vec();
    prefix.extend_from_slice(ASIDE_INFIX.as_bytes());
    let Ok(listing) = rustix::fs::Dir::read_from(&a.parent) else { return Ok(()) };
    for entry in listing.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_bytes().strip_prefix(prefix.as_slice()) else { continue };
        // Only names this tool makes (`PID-HEX`): never adopt something a user happened to name alike, nor what a
        // detached deleter is working on.
        if !is_run_id(id) || !is_dir_at(&a.parent, name) || is_busy(&a.parent, name, locks) {
            continue;
        }
        let mut trash = TRASH_PREFIX.as_bytes().to_vec();
        trash.extend_from_slice(id);
        let trash = CString::new(trash).unwrap_or_default();
        match rustix::fs::renameat_with(&a.parent, name, target, &trash, RenameFlags::NOREPLACE) {
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                match rustix::fs::renameat(&a.parent, name, target, &trash) {
                    Ok(()) | Err(Errno::NOENT | Errno::NOTEMPTY | Errno::EXIST | Errno::XDEV) => {}
                    Err(e) => return Err(io_error("move into the trash", &leftover(a, name), e)),
                }
            }
            Ok(()) | Err(Errno::NOENT | Errno::NOTEMPTY | Errno::EXIST | Errno::XDEV) => {}
            Err(e) => return Err(io_error("move into the trash", &leftover(a, name), e)),
        }
    }
    Ok(())
}

fn leftover(a: &Anchored, name: &CStr) -> PathBuf {
    in_dir(a.path.parent().unwrap_or(Path::new("/")), name)
}

fn is_dir_at(dir: &OwnedFd, name: &CStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

/// Whether a purge holds the lock of the trash dir `name` in `dir` (a detached deleter working on it).
fn is_busy(dir: &OwnedFd, name: &CStr, locks: Option<&TrashLocks>) -> bool {
    locks.zip(id_at(dir, name)).is_some_and(|(locks, id)| locks.is_busy(id))
}

/// Every trash entry inside the target dir `target` (at `path`). Trash that a failed run left inside the tree it
/// swapped (it then sits inside this run's trash) is lifted back to the top first, so paths never grow from run to
/// run.
pub fn trash_inside(target: &OwnedFd, path: &Path, locks: Option<&TrashLocks>) -> Result<Vec<TrashRoot>> {
    let mut names = trash_entries(target).map_err(|e| io_error("list", path, e))?;
    let mut queue: Vec<CString> = names.iter().filter(|n| is_dir_at(target, n)).cloned().collect();
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    while let Some(name) = queue.pop() {
        // A trash dir that vanished or cannot be opened or listed is the purge's to report, not the swap's.
        let Ok(trash) = rustix::fs::openat(target, &name, flags, Mode::empty()) else { continue };
        for nested in trash_entries(&trash).unwrap_or_default() {
            // A detached deleter removes its trash from where it found it; moved, it could not.
            if is_busy(&trash, &nested, locks) {
                continue;
            }
            match rustix::fs::renameat_with(&trash, &nested, target, &nested, RenameFlags::NOREPLACE) {
                Ok(()) => {
                    if is_dir_at(target, &nested) {
                        queue.push(nested.clone());
                    }
                    names.push(nested);
                }
                Err(Errno::NOENT | Errno::EXIST | Errno::NOTEMPTY | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                }
                Err(e) => return Err(io_error("move into the trash", &in_dir(path, &nested), e)),
            }
        }
    }
    names.sort();
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let id = id_at(target, &name)?;
            Some(TrashRoot { path: in_dir(path, &name), parent: target.try_clone().ok(), id })
        })
        .collect())
}

/// The names of the `.safeclean-trash-*` entries directly in `dir`.
fn trash_entries(dir: &OwnedFd) -> io::Result<Vec<CString>> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_owned();
        if name.to_bytes().starts_with(TRASH_PREFIX.as_bytes()) {
            out.push(name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swap::run_id;
    use std::os::unix::fs::PermissionsExt;

    fn anchored(dir: &Path) -> Anchored {
        crate::anchor::open(dir, crate::platform::Platform::native().files).unwrap().unwrap()
    }

    fn names(trash: &[TrashRoot]) -> Vec<String> {
        trash.iter().map(|t| t.path.file_name().unwrap().to_string_lossy().into()).collect()
    }

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
        let a = anchored(&t);
        let trash = swap(&a, "99-ff", method, None, &mut |_| Ok(())).unwrap().trash;
        assert_eq!(names(&trash), [".safeclean-trash-12-ab", ".safeclean-trash-13-cd-new", ".safeclean-trash-99-ff"]);
        assert_eq!(trash[2].id, a.id().unwrap(), "the trash is the dir that was approved");
        assert!(t.join(".safeclean-trash-99-ff/debug").is_dir());
        assert_eq!(std::fs::metadata(t.join(".safeclean-trash-99-ff")).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(t.join("CACHEDIR.TAG").is_file());
        assert_eq!(std::fs::metadata(&t).unwrap().permissions().mode() & 0o777, 0o750);
        assert!(d.join("target.safeclean-mine").is_dir(), "a name this tool did not make is left alone");
    }

    #[test]
    fn a_symlinked_target_keeps_its_link_and_its_tag_is_never_written_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let real = d.join("cache");
        std::fs::create_dir_all(real.join("debug")).unwrap();
        std::fs::write(d.join("precious"), "keep").unwrap();
        std::os::unix::fs::symlink(d.join("precious"), real.join("CACHEDIR.TAG")).unwrap();
        std::os::unix::fs::symlink(&real, d.join("target")).unwrap();
        let trash =
            swap(&anchored(&d.join("target")), "1-a", SwapMethod::Exchange, None, &mut |_| Ok(())).unwrap().trash;
        assert!(std::fs::symlink_metadata(d.join("target")).unwrap().file_type().is_symlink());
        assert_eq!(names(&trash), [".safeclean-trash-1-a"]);
        assert!(real.join(".safeclean-trash-1-a/debug").is_dir());
        assert_eq!(std::fs::read_to_string(real.join("CACHEDIR.TAG")).unwrap(), CACHEDIR_TAG);
        assert!(!std::fs::symlink_metadata(real.join("CACHEDIR.TAG")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(d.join("precious")).unwrap(), "keep");
    }

    #[test]
    fn a_missing_target_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        assert!(
            swap(&anchored(&d.join("target")), "1-a", SwapMethod::Exchange, None, &mut |_| Ok(()))
                .unwrap()
                .trash
                .is_empty()
        );
        assert!(d.join("target/CACHEDIR.TAG").is_file());
    }

    #[test]
    fn a_name_swapped_after_the_check_is_refused_and_left_alone() {
        for method in [SwapMethod::Exchange, SwapMethod::Rename] {
            let tmp = tempfile::tempdir().unwrap();
            let d = tmp.path();
            std::fs::create_dir_all(d.join("target/debug")).unwrap();
            std::fs::create_dir_all(d.join("elsewhere/keep")).unwrap();
            let a = anchored(&d.join("target"));
            std::fs::rename(d.join("target"), d.join("moved")).unwrap();
            std::os::unix::fs::symlink(d.join("elsewhere"), d.join("target")).unwrap();
            let e = swap(&a, "1-a", method, None, &mut |_| Ok(())).unwrap_err();
            assert!(matches!(e, SwapError::Changed { .. }), "{e}");
            assert!(std::fs::symlink_metadata(d.join("target")).unwrap().file_type().is_symlink());
            assert!(d.join("elsewhere/keep").is_dir() && !d.join("elsewhere/CACHEDIR.TAG").exists());
            assert!(d.join("moved/debug").is_dir());
            let left: Vec<_> = std::fs::read_dir(d).unwrap().flatten().map(|e| e.file_name()).collect();
            assert_eq!(left.len(), 3, "nothing of this run's is left: {left:?}");
        }
    }

    #[test]
    fn nested_trash_is_lifted_not_nested_again() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().join("target");
        // A failed run left trash A inside the target, with trash Z from an older version nested in it.
        std::fs::create_dir_all(t.join(".safeclean-trash-1-a/.safeclean-trash-0-f/x")).unwrap();
        let trash = swap(&anchored(&t), "2-b", SwapMethod::Exchange, None, &mut |_| Ok(())).unwrap().trash;
        assert_eq!(names(&trash), [".safeclean-trash-0-f", ".safeclean-trash-1-a", ".safeclean-trash-2-b"]);
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
