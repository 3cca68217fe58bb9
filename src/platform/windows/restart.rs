//! The Restart Manager as a cross-check: which processes Windows itself says use the files a delete failed on. It
//! names what the handle table may miss (a file mapped by a service, a process this one cannot open). Sessions are
//! a system-wide resource (64 at once): one is held only for the question and ended at once; when none is free the
//! answer is "cannot tell", never a guess. Wine's Restart Manager is a stub that always answers "nobody".
#![expect(unsafe_code, reason = "the Restart Manager calls; each says why it is sound")]

use std::path::PathBuf;

use windows_sys::Win32::Foundation::{ERROR_MORE_DATA, ERROR_SUCCESS};
use windows_sys::Win32::System::RestartManager::{
    CCH_RM_SESSION_KEY, RM_PROCESS_INFO, RmEndSession, RmGetList, RmRegisterResources, RmStartSession,
};

/// The processes using any of `files` (pid and application name), as the Restart Manager sees them.
pub fn users_of(files: &[PathBuf]) -> std::io::Result<Vec<(u32, String)>> {
    let mut session = 0u32;
    let mut key = [0u16; CCH_RM_SESSION_KEY as usize + 1];
    // SAFETY: out-parameters of the documented sizes.
    let started = unsafe { RmStartSession(&raw mut session, 0, key.as_mut_ptr()) };
    if started != ERROR_SUCCESS {
        return Err(std::io::Error::from_raw_os_error(started.cast_signed()));
    }
    let result = ask(session, files);
    // SAFETY: the session just started.
    unsafe { RmEndSession(session) };
    result
}

fn ask(session: u32, files: &[PathBuf]) -> std::io::Result<Vec<(u32, String)>> {
    let wide: Vec<Vec<u16>> = files.iter().map(|f| super::wide(f.as_os_str())).collect();
    let names: Vec<*const u16> = wide.iter().map(Vec::as_ptr).collect();
    let count = u32::try_from(names.len()).unwrap_or(u32::MAX);
    // SAFETY: `names` holds `count` NUL-terminated strings that outlive the call; no applications or services.
    let registered =
        unsafe { RmRegisterResources(session, count, names.as_ptr(), 0, std::ptr::null(), 0, std::ptr::null()) };
    if registered != ERROR_SUCCESS {
        return Err(std::io::Error::from_raw_os_error(registered.cast_signed()));
    }
    let mut room = 8u32;
    loop {
        let mut infos = vec![RM_PROCESS_INFO::default(); room as usize];
        let (mut needed, mut got, mut reasons) = (0u32, room, 0u32);
        // SAFETY: `infos` has `got` entries of space; the rest are out-parameters.
        let listed = unsafe { RmGetList(session, &raw mut needed, &raw mut got, infos.as_mut_ptr(), &raw mut reasons) };
        if listed == ERROR_MORE_DATA {
            room = needed.max(room + 1);
            continue;
        }
        if listed != ERROR_SUCCESS {
            return Err(std::io::Error::from_raw_os_error(listed.cast_signed()));
        }
        return Ok(infos
            .iter()
            .take(got as usize)
            .map(|i| {
                let name = i.strAppName.iter().take_while(|&&c| c != 0).copied().collect::<Vec<u16>>();
                (i.Process.dwProcessId, String::from_utf16_lossy(&name))
            })
            .collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[expect(clippy::print_stderr, reason = "a test says why it did not run")]
    fn names_the_process_that_holds_a_file() {
        if let Some(wine) = super::super::wine_version() {
            eprintln!("skipped under Wine {wine}: its Restart Manager is a stub; the Windows job runs this");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("held.txt");
        std::fs::write(&file, "x").unwrap();
        assert!(users_of(std::slice::from_ref(&file)).unwrap().is_empty(), "nobody uses it yet");
        // This process holds it: the Restart Manager names it.
        let _held = std::fs::File::open(&file).unwrap();
        let users = users_of(std::slice::from_ref(&file)).unwrap();
        assert!(users.iter().any(|(pid, _)| *pid == std::process::id()), "{users:?}");
    }
}
