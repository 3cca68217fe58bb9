//! What cargo leaves on disk, read through Unix fds: nothing followed, never waiting on a FIFO, `flock` to probe.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, Stat, flock};
use rustix::io::Errno;

use super::{CACHEDIR_SIGNATURE, CARGO_TAG_COMMENT, PROFILE_LOCKS, looks_like_triple};

/// Cargo's lock files in `dir`: `<profile>/<lock>`, and `<triple>/<profile>/<lock>` under dirs named like a target
/// triple. Only those dirs are listed: a target dir's `deps/`, `build/` and `doc/` hold thousands of entries, and
/// this runs between stopping the holders and the swap, while the user waits.
#[must_use]
pub fn cargo_locks(dir: &Path) -> Vec<PathBuf> {
    match rustix::fs::open(dir, dir_flags(), Mode::empty()) {
        Ok(fd) => cargo_locks_at(&fd, dir),
        Err(_) => Vec::new(),
    }
}

/// [`cargo_locks`] of the open dir `fd`, named under `dir`. Nothing is followed: a symlink named like a profile dir
/// or a lock file is no lock of cargo's.
#[must_use]
pub fn cargo_locks_at(fd: &OwnedFd, dir: &Path) -> Vec<PathBuf> {
    locks_where(fd, dir, &|_| true)
}

/// [`cargo_locks_at`], keeping only lock files whose stat passes `keep`.
fn locks_where(fd: &OwnedFd, dir: &Path, keep: &dyn Fn(&Stat) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (sub, name) in subdirs(fd) {
        push_locks(&sub, &dir.join(&name), keep, &mut out);
        if looks_like_triple(&name.to_string_lossy()) {
            for (profile, profile_name) in subdirs(&sub) {
                push_locks(&profile, &dir.join(&name).join(profile_name), keep, &mut out);
            }
        }
    }
    out.sort();
    out
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// The dirs directly in `fd` whose names do not start with a dot, opened without following a symlink.
fn subdirs(fd: &OwnedFd) -> Vec<(OwnedFd, OsString)> {
    let Ok(listing) = rustix::fs::Dir::read_from(fd) else { return Vec::new() };
    listing
        .flatten()
        .filter(|e| e.file_type() == FileType::Directory && !e.file_name().to_bytes().starts_with(b"."))
        .filter_map(|e| {
            let sub = rustix::fs::openat(fd, e.file_name(), dir_flags(), Mode::empty()).ok()?;
            Some((sub, OsStr::from_bytes(e.file_name().to_bytes()).to_os_string()))
        })
        .collect()
}

fn push_locks(profile: &OwnedFd, path: &Path, keep: &dyn Fn(&Stat) -> bool, out: &mut Vec<PathBuf>) {
    out.extend(PROFILE_LOCKS.iter().filter(|n| is_regular_at(profile, n, keep)).map(|n| path.join(n)));
}

/// Whether `name` in `dir` is a regular file itself (not a symlink to one) whose stat passes `keep`.
fn is_regular_at(dir: &OwnedFd, name: &str, keep: &dyn Fn(&Stat) -> bool) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && keep(&st))
}

/// Whether the open dir `dir` carries one of the marks only cargo leaves in a target or build dir: cargo's own tag
/// text, or its layout (`.rustc_info.json`, a profile dir with cargo's lock file). None of them is followed if it
/// is a symlink: a mark is what cargo wrote there, not what a link in a cloned repository points to. And a mark
/// counts only if the dir's owner, root or this process's user wrote it: anyone may write a tag into a dir open to
/// all (`/dev/shm`, a shared cache), and that does not make it a target dir for a root run.
#[must_use]
pub fn looks_like_target(dir: &OwnedFd) -> bool {
    let Ok(owner) = rustix::fs::fstat(dir).map(|st| st.st_uid) else { return false };
    let me = rustix::process::geteuid().as_raw();
    let theirs = |st: &Stat| st.st_uid == owner || st.st_uid == 0 || st.st_uid == me;
    has_cargo_tag(dir, &theirs)
        || is_regular_at(dir, ".rustc_info.json", &theirs)
        || !locks_where(dir, Path::new(""), &theirs).is_empty()
}

/// `CACHEDIR.TAG` with the signature and the comment cargo writes (read no further than a tag is long).
fn has_cargo_tag(dir: &OwnedFd, keep: &dyn Fn(&Stat) -> bool) -> bool {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::openat(dir, "CACHEDIR.TAG", flags, Mode::empty()) else { return false };
    if !rustix::fs::fstat(&fd).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && keep(&st))
    {
        return false;
    }
    let mut text = String::new();
    let read = File::from(fd).take(4096).read_to_string(&mut text);
    read.is_ok() && text.starts_with(CACHEDIR_SIGNATURE) && text.lines().any(|l| l.trim_end() == CARGO_TAG_COMMENT)
}

/// Whether some process holds `lock` right now: a non-blocking exclusive `flock`, released at once.
#[must_use]
pub fn is_held(lock: &Path) -> bool {
    // Never through a link, never waiting on whatever a name was swapped for (a FIFO blocks an open).
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    rustix::fs::open(lock, flags, Mode::empty()).is_ok_and(|file| held(&file))
}

/// [`is_held`] for the lock file `name` in the open dir `dir`.
#[must_use]
pub fn is_held_at(dir: &OwnedFd, name: &str) -> bool {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    rustix::fs::openat(dir, name, flags, Mode::empty()).is_ok_and(|file| held(&file))
}

fn held(file: &OwnedFd) -> bool {
    rustix::fs::fstat(file).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
        && matches!(flock(file, FlockOperation::NonBlockingLockExclusive), Err(Errno::WOULDBLOCK))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{CACHEDIR_TAG, is_profile_lock};

    #[test]
    fn finds_and_probes_profile_locks() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("debug")).unwrap();
        std::fs::create_dir_all(d.join("x86_64-unknown-linux-gnu/release")).unwrap();
        std::fs::write(d.join("debug/.cargo-lock"), "").unwrap();
        std::fs::write(d.join("x86_64-unknown-linux-gnu/release/.cargo-build-lock"), "").unwrap();
        let locks = cargo_locks(d);
        assert_eq!(locks.len(), 2);
        assert!(locks.iter().all(|l| is_profile_lock(l)));
        assert!(!is_held(&locks[0]));
        let held = File::open(&locks[0]).unwrap();
        flock(&held, FlockOperation::LockExclusive).unwrap();
        assert!(is_held(&locks[0]));
        drop(held);
        assert!(!is_held(&locks[0]));
        assert!(looks_like_target(&open(d)));
    }

    fn open(d: &Path) -> OwnedFd {
        rustix::fs::open(d, dir_flags(), Mode::empty()).unwrap()
    }

    #[test]
    fn only_cargos_own_tag_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("CACHEDIR.TAG"), format!("{CACHEDIR_SIGNATURE}\n# made by another tool\n")).unwrap();
        assert!(!looks_like_target(&open(d)));
        std::fs::write(d.join("CACHEDIR.TAG"), CACHEDIR_TAG).unwrap();
        assert!(looks_like_target(&open(d)));
    }

    #[test]
    fn marks_that_are_symlinks_do_not_count() {
        let tmp = tempfile::tempdir().unwrap();
        let (d, outside) = (tmp.path().join("t"), tmp.path().join("o"));
        std::fs::create_dir_all(outside.join("debug")).unwrap();
        std::fs::create_dir_all(d.join("release")).unwrap();
        std::fs::write(outside.join("CACHEDIR.TAG"), CACHEDIR_TAG).unwrap();
        std::fs::write(outside.join(".rustc_info.json"), "{}").unwrap();
        std::fs::write(outside.join("debug/.cargo-lock"), "").unwrap();
        for name in ["CACHEDIR.TAG", ".rustc_info.json", "debug"] {
            std::os::unix::fs::symlink(outside.join(name), d.join(name)).unwrap();
        }
        std::os::unix::fs::symlink(outside.join("debug/.cargo-lock"), d.join("release/.cargo-lock")).unwrap();
        assert!(looks_like_target(&open(&outside)));
        let fifo = d.join("release/.cargo-build-lock");
        // nix's mkfifo, not rustix's mknodat: macOS has no mknodat.
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR).unwrap();
        assert!(!is_held(&fifo), "a FIFO is no lock, and probing it does not wait");
        assert!(!looks_like_target(&open(&d)), "a mark behind a symlink is not cargo's");
        assert!(cargo_locks(&d).is_empty());
    }
}
