//! What cargo leaves on disk, read on Windows: no reparse point (symlink, junction, mount point) is followed, and a
//! lock is probed as cargo takes it there, with `LockFileEx` over the whole file.
#![expect(unsafe_code, reason = "LockFileEx and UnlockFileEx; each call says why it is sound")]

use std::fs::OpenOptions;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};

use windows_sys::Win32::Foundation::{ERROR_LOCK_VIOLATION, ERROR_SHARING_VIOLATION, HANDLE};
use windows_sys::Win32::Storage::FileSystem::{
    FILE_FLAG_OPEN_REPARSE_POINT, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY, LockFileEx, UnlockFileEx,
};
use windows_sys::Win32::System::IO::OVERLAPPED;

use super::{PROFILE_LOCKS, looks_like_triple};

/// Cargo's lock files in `dir`: `<profile>/<lock>`, and `<triple>/<profile>/<lock>` under dirs named like a target
/// triple. A dir or lock file that is a reparse point is no lock of cargo's.
#[must_use]
pub fn cargo_locks(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (name, sub) in subdirs(dir) {
        push_locks(&sub, &mut out);
        if looks_like_triple(&name) {
            for (_, profile) in subdirs(&sub) {
                push_locks(&profile, &mut out);
            }
        }
    }
    out.sort();
    out
}

/// The dirs directly in `dir` whose names do not start with a dot; a junction or a symlink to a dir is a reparse
/// point, which std's entry type reports as a symlink, not a dir.
fn subdirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(listing) = std::fs::read_dir(dir) else { return Vec::new() };
    listing
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(name, _)| !name.starts_with('.'))
        .collect()
}

fn push_locks(profile: &Path, out: &mut Vec<PathBuf>) {
    out.extend(
        PROFILE_LOCKS
            .iter()
            .map(|n| profile.join(n))
            .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())),
    );
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
    }
}
