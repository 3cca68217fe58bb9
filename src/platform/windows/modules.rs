//! Images a process runs or has loaded (its `.exe`, each `.dll`, a proc-macro), from a Toolhelp32 module
//! snapshot: a mapped image holds no file handle, yet Windows refuses to delete it while it is mapped.

use std::ffi::OsString;
use std::io;
use std::os::windows::ffi::OsStringExt;
use std::os::windows::io::AsRawHandle;
use std::path::Path;

use windows_sys::Win32::Foundation::{ERROR_BAD_LENGTH, HANDLE};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, MODULEENTRY32W, Module32FirstW, Module32NextW, TH32CS_SNAPMODULE, TH32CS_SNAPMODULE32,
};

use super::{normalise, owned};
use crate::model::HandleKind;
use crate::platform::held::Held;

/// The images of process `pid`: the first module is its exe, the others what it mapped. An error when the process
/// cannot be read (access denied, or it exited).
pub fn images(pid: u32) -> io::Result<Vec<Held>> {
    let snap = loop {
        // SAFETY: plain arguments; the result is checked by `owned`.
        match owned(unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPMODULE | TH32CS_SNAPMODULE32, pid) }) {
            // The process was loading or unloading a module: the documented answer is to ask again.
            Err(e) if e.raw_os_error() == Some(ERROR_BAD_LENGTH.cast_signed()) => {}
            other => break other?,
        }
    };
    let h = snap.as_raw_handle() as HANDLE;
    let mut entry =
        MODULEENTRY32W { dwSize: u32::try_from(size_of::<MODULEENTRY32W>()).unwrap_or(0), ..Default::default() };
    let mut out = Vec::new();
    // SAFETY: a module snapshot handle and an entry whose dwSize is set.
    let mut more = unsafe { Module32FirstW(h, &raw mut entry) } != 0;
    while more {
        let len = entry.szExePath.iter().position(|&c| c == 0).unwrap_or(entry.szExePath.len());
        let path = normalise(Path::new(&OsString::from_wide(&entry.szExePath[..len])));
        let kind = if out.is_empty() { HandleKind::Exe } else { HandleKind::Mmap };
        out.extend(Held::named(kind, path, None, None));
        // SAFETY: as above.
        more = unsafe { Module32NextW(h, &raw mut entry) } != 0;
    }
    Ok(out)
}
