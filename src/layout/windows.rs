//! What cargo leaves on disk, read on Windows: no reparse point (symlink, junction, mount point) is followed, and a
//! lock is probed as cargo takes it there, with `LockFileEx` over the whole file.
#![expect(unsafe_code, reason = "LockFileEx and UnlockFileEx; each call says why it is sound")]

use std::ffi::{OsStr, OsString};
use std::fs::OpenOptions;
use std::io::Read;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};

use windows_sys::Win32::Foundation::{ERROR_LOCK_VIOLATION, ERROR_SHARING_VIOLATION, HANDLE};
use windows_sys::Win32::Storage::FileSystem::{
    FILE_FLAG_OPEN_REPARSE_POINT, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY, LockFileEx, UnlockFileEx,
};
use windows_sys::Win32::System::IO::OVERLAPPED;

use super::{CACHEDIR_SIGNATURE, CARGO_TAG_COMMENT, PROFILE_LOCKS, looks_like_triple};
use crate::platform::Dir;
use crate::platform::windows::fs::{self, Access, Follow, Want};

/// Cargo's lock files in `dir`: `<profile>/<lock>`, and `<triple>/<profile>/<lock>` under dirs named like a target
/// triple.
#[must_use]
pub fn cargo_locks(dir: &Path) -> Vec<PathBuf> {
    match fs::open_dir(dir, Access::Read) {
        Ok(h) => cargo_locks_at(&h, dir),
        Err(_) => Vec::new(),
    }
}

/// [`cargo_locks`] of the open dir `dir`, named under `path`. Nothing is followed: a dir or lock file that is a
/// reparse point (a junction, a symlink) is no lock of cargo's.
#[must_use]
pub fn cargo_locks_at(dir: &Dir, path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (sub, name) in subdirs(dir) {
        push_locks(&sub, &path.join(&name), &mut out);
        if looks_like_triple(&name.to_string_lossy()) {
            for (profile, profile_name) in subdirs(&sub) {
                push_locks(&profile, &path.join(&name).join(profile_name), &mut out);
            }
        }
    }
    out.sort();
    out
}

/// The dirs directly in `dir` whose names do not start with a dot, opened as themselves.
fn subdirs(dir: &Dir) -> Vec<(Dir, OsString)> {
    let Ok(listing) = fs::list(dir) else { return Vec::new() };
    listing
        .into_iter()
        .filter(|e| e.is_plain_dir() && !e.name.to_string_lossy().starts_with('.'))
        .filter_map(|e| Some((fs::open_at(dir, &e.name, Access::Read, Want::Dir, Follow::No).ok()?, e.name)))
        .collect()
}

fn push_locks(profile: &Dir, path: &Path, out: &mut Vec<PathBuf>) {
    out.extend(PROFILE_LOCKS.iter().filter(|n| is_file_at(profile, n)).map(|n| path.join(n)));
}

/// Whether `name` in `dir` is a file itself, not a reparse point or a dir.
fn is_file_at(dir: &Dir, name: &str) -> bool {
    fs::open_at(dir, OsStr::new(name), Access::Read, Want::NotDir, Follow::No)
        .and_then(|h| fs::info(&h))
        .is_ok_and(|i| !i.is_reparse_point())
}

/// Whether the open dir `dir` carries one of the marks only cargo leaves in a target or build dir: cargo's own tag
/// text, or its layout (`.rustc_info.json`, a profile dir with cargo's lock file), none of them a reparse point.
/// Unlike on Unix, who wrote a mark is not asked: a Windows dir's owner is a SID, and the dirs anyone may write
/// (`C:\Users\Public`, a share) are not where a user's workspace puts its target dir.
#[must_use]
pub fn looks_like_target(dir: &Dir) -> bool {
    has_cargo_tag(dir) || is_file_at(dir, ".rustc_info.json") || !cargo_locks_at(dir, Path::new("")).is_empty()
}

/// `CACHEDIR.TAG` with the signature and the comment cargo writes (read no further than a tag is long).
fn has_cargo_tag(dir: &Dir) -> bool {
    let Ok(h) = fs::open_at(dir, OsStr::new("CACHEDIR.TAG"), Access::Read, Want::NotDir, Follow::No) else {
        return false;
    };
    if fs::info(&h).is_ok_and(|i| i.is_reparse_point()) {
        return false;
    }
    let mut text = String::new();
    let read = std::fs::File::from(h).take(4096).read_to_string(&mut text);
    read.is_ok() && text.starts_with(CACHEDIR_SIGNATURE) && text.lines().any(|l| l.trim_end() == CARGO_TAG_COMMENT)
}

/// Whether some process holds `lock` right now: an exclusive `LockFileEx` over the whole file that fails at once,
/// released at once when it succeeds. Opened as itself, sharing everything; a file someone opened without sharing
/// is held too.
#[must_use]
pub fn is_held(lock: &Path) -> bool {
    let file = match OpenOptions::new().read(true).custom_flags(FILE_FLAG_OPEN_REPARSE_POINT).open(lock) {
        Ok(f) => f,
        Err(e) => return e.raw_os_error() == Some(ERROR_SHARING_VIOLATION.cast_signed()),
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    let h = file.as_raw_handle() as HANDLE;
    let mut overlapped = OVERLAPPED::default();
    // SAFETY: a valid file handle and a zeroed OVERLAPPED (offset 0) that outlives the call; cargo locks the same
    // range (all of it).
    let locked = unsafe {
        LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, u32::MAX, u32::MAX, &raw mut overlapped)
    };
    if locked == 0 {
        return std::io::Error::last_os_error().raw_os_error() == Some(ERROR_LOCK_VIOLATION.cast_signed());
    }
    let mut overlapped = OVERLAPPED::default();
    // SAFETY: the range just locked through this handle.
    unsafe { UnlockFileEx(h, 0, u32::MAX, u32::MAX, &raw mut overlapped) };
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Locks the whole of `file` as cargo does.
    fn lock(file: &std::fs::File) {
        let mut overlapped = OVERLAPPED::default();
        // SAFETY: a valid handle and an OVERLAPPED that outlives the call.
        let ok = unsafe {
            LockFileEx(
                file.as_raw_handle() as HANDLE,
                LOCKFILE_EXCLUSIVE_LOCK,
                0,
                u32::MAX,
                u32::MAX,
                &raw mut overlapped,
            )
        };
        assert_ne!(ok, 0, "{}", std::io::Error::last_os_error());
    }

    #[test]
    fn finds_and_probes_cargos_locks() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for dir in ["debug", "x86_64-pc-windows-gnu/release", ".hidden", "doc"] {
            std::fs::create_dir_all(d.join(dir)).unwrap();
        }
        for lock in ["debug/.cargo-lock", "x86_64-pc-windows-gnu/release/.cargo-build-lock", ".hidden/.cargo-lock"] {
            std::fs::write(d.join(lock), "").unwrap();
        }
        std::fs::create_dir(d.join("doc/.cargo-lock")).unwrap();
        let locks = cargo_locks(d);
        assert_eq!(locks, vec![d.join("debug/.cargo-lock"), d.join("x86_64-pc-windows-gnu/release/.cargo-build-lock")]);
        assert!(!is_held(&locks[0]));
        let holder = std::fs::File::open(&locks[0]).unwrap();
        lock(&holder);
        assert!(is_held(&locks[0]), "a LockFileEx lock through another handle is seen");
        assert!(!is_held(&locks[1]));
        drop(holder);
        assert!(!is_held(&locks[0]), "closing the handle releases the lock");
        assert!(!is_held(&d.join("missing")));
        assert!(looks_like_target(&fs::open_dir(d, Access::Read).unwrap()), "a profile lock is cargo's mark");
    }

    #[test]
    fn only_cargos_own_tag_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let open = || fs::open_dir(d, Access::Read).unwrap();
        assert!(!looks_like_target(&open()));
        std::fs::write(d.join("CACHEDIR.TAG"), format!("{CACHEDIR_SIGNATURE}\n# made by another tool\n")).unwrap();
        assert!(!looks_like_target(&open()));
        std::fs::write(d.join("CACHEDIR.TAG"), crate::layout::CACHEDIR_TAG).unwrap();
        assert!(looks_like_target(&open()));
    }
}
