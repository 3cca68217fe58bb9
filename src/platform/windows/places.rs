//! The places Windows itself names: the user's profile and the system's dirs, asked of the shell
//! (`SHGetKnownFolderPath`), not read from the environment a caller can change.
#![expect(unsafe_code, reason = "SHGetKnownFolderPath and CoTaskMemFree; each call says why it is sound")]

use std::ffi::OsString;
use std::os::windows::ffi::OsStringExt;
use std::path::PathBuf;

use windows_sys::Win32::System::Com::CoTaskMemFree;
use windows_sys::Win32::UI::Shell::{
    FOLDERID_Profile, FOLDERID_ProgramData, FOLDERID_ProgramFiles, FOLDERID_ProgramFilesX86, FOLDERID_Windows,
    SHGetKnownFolderPath,
};
use windows_sys::core::GUID;

/// The current user's profile dir (`C:\Users\me`), if the shell knows it.
#[must_use]
pub fn profile() -> Option<PathBuf> {
    known(&FOLDERID_Profile)
}

/// The system's own dirs: `Windows`, `Program Files` (both), `ProgramData`.
#[must_use]
pub fn system() -> Vec<PathBuf> {
    [FOLDERID_Windows, FOLDERID_ProgramFiles, FOLDERID_ProgramFilesX86, FOLDERID_ProgramData]
        .iter()
        .filter_map(known)
        .collect()
}

fn known(id: &GUID) -> Option<PathBuf> {
    let mut path = std::ptr::null_mut();
    // SAFETY: a valid GUID, no flags or token, and an out-pointer the shell fills with a string we free below.
    let hr = unsafe { SHGetKnownFolderPath(id, 0, std::ptr::null_mut(), &raw mut path) };
    let out = (hr >= 0 && !path.is_null()).then(|| {
        // SAFETY: a NUL-terminated wide string the shell allocated: read up to its NUL, never past it.
        let len = (0..usize::MAX).take_while(|&i| unsafe { *path.add(i) } != 0).count();
        // SAFETY: `len` u16s were just read from it.
        PathBuf::from(OsString::from_wide(unsafe { std::slice::from_raw_parts(path, len) }))
    });
    // SAFETY: what SHGetKnownFolderPath allocated (null is allowed).
    unsafe { CoTaskMemFree(path.cast()) };
    out
}
