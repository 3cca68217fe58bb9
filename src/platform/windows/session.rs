//! What a Windows process does about itself and the processes it starts: console groups, the detached deleter's
//! way out of the run's console and job, its priority, the console's width and the disk's free space.
#![expect(unsafe_code, reason = "console, process and volume calls; each says why it is sound")]

use std::path::Path;

/// The bytes this user may still write on the volume of `dir` (quotas counted), and the volume's size.
#[must_use]
pub fn disk_space(dir: &Path) -> Option<(u64, u64)> {
    use windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW;
    let wide = super::wide(dir.as_os_str());
    let (mut available, mut total) = (0u64, 0u64);
    // SAFETY: a NUL-terminated path and two out-parameters; the third may be null.
    let ok = unsafe { GetDiskFreeSpaceExW(wide.as_ptr(), &raw mut available, &raw mut total, std::ptr::null_mut()) };
    (ok != 0).then_some((available, total))
}

/// No rights are borrowed on Windows: `f` runs as it is.
pub fn with_own_rights<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// Starts `cmd` in a console process group of its own (`CREATE_NEW_PROCESS_GROUP`), which a Ctrl-Break can be sent
/// to without reaching this process.
pub fn own_group(cmd: &mut std::process::Command) {
    use windows_sys::Win32::System::Threading::CREATE_NEW_PROCESS_GROUP;
    std::os::windows::process::CommandExt::creation_flags(cmd, CREATE_NEW_PROCESS_GROUP);
}

/// Ctrl-Break to the group [`own_group`] made for `child` (cargo stops, and its job object takes what it started
/// with it); where no console can carry it, the child is terminated.
pub fn interrupt_group(child: &mut std::process::Child) {
    use windows_sys::Win32::System::Console::{CTRL_BREAK_EVENT, GenerateConsoleCtrlEvent};
    // SAFETY: no pointers; the group id is the pid of our own child, not reaped yet.
    if unsafe { GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, child.id()) } == 0 {
        let _ = child.kill();
    }
}

/// Windows has no uids: a run never gives the verify to another user.
pub fn run_as(_cmd: &mut std::process::Command, _uid: u32, _gid: u32) {}

/// This process's stderr, for a child's stdout.
pub fn stderr_stdio() -> std::io::Result<std::process::Stdio> {
    use std::os::windows::io::AsHandle;
    Ok(std::io::stderr().as_handle().try_clone_to_owned()?.into())
}

/// The width of the console on stderr, if it is one.
#[must_use]
pub fn terminal_columns() -> Option<u16> {
    use windows_sys::Win32::System::Console::{
        CONSOLE_SCREEN_BUFFER_INFO, GetConsoleScreenBufferInfo, GetStdHandle, STD_ERROR_HANDLE,
    };
    let mut info = CONSOLE_SCREEN_BUFFER_INFO::default();
    // SAFETY: a standard handle (not owned, never closed) and a struct of the size the call writes.
    let ok = unsafe { GetConsoleScreenBufferInfo(GetStdHandle(STD_ERROR_HANDLE), &raw mut info) };
    let width = i32::from(info.srWindow.Right) - i32::from(info.srWindow.Left) + 1;
    (ok != 0).then(|| u16::try_from(width).ok()).flatten().filter(|&c| c > 0)
}

/// Starts `cmd` detached from the run: no console (`DETACHED_PROCESS`), a console group of its own (no Ctrl-C of the
/// run's reaches it), at idle priority (`IDLE_PRIORITY_CLASS`), and out of the run's job where that job allows it
/// (`CREATE_BREAKAWAY_FROM_JOB`: a CI runner's job that kills on close would otherwise take it along). `breakaway`:
/// whether to ask for that (a job that forbids it fails the start, which is then tried without).
pub fn detached(cmd: &mut std::process::Command, breakaway: bool) {
    use windows_sys::Win32::System::Threading::{
        CREATE_BREAKAWAY_FROM_JOB, CREATE_NEW_PROCESS_GROUP, DETACHED_PROCESS, IDLE_PRIORITY_CLASS,
    };
    let mut flags = DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP | IDLE_PRIORITY_CLASS;
    if breakaway {
        flags |= CREATE_BREAKAWAY_FROM_JOB;
    }
    std::os::windows::process::CommandExt::creation_flags(cmd, flags);
}

/// The deleter leaves the run's world: its current dir moves out of the target dir's tree (the temp dir), so that it
/// holds nothing there but the trash it deletes. Its console and group were left at its start ([`detached`]).
pub fn leave_session() {
    let _ = std::env::set_current_dir(std::env::temp_dir());
}

/// Background mode (`PROCESS_MODE_BACKGROUND_BEGIN`): the lowest CPU, IO and memory priority for the whole process.
/// What could not be lowered is returned, for the log.
#[must_use]
pub fn lower_priority() -> Vec<String> {
    use windows_sys::Win32::System::Threading::{PROCESS_MODE_BACKGROUND_BEGIN, SetPriorityClass};
    // SAFETY: this process's pseudo-handle and a documented class.
    if unsafe { SetPriorityClass(super::current_process(), PROCESS_MODE_BACKGROUND_BEGIN) } == 0 {
        return vec![format!("background mode: {}", std::io::Error::last_os_error())];
    }
    Vec::new()
}

/// Nothing to lock: a log open as a live deleter's stderr cannot be removed (a run removes only a log it can open
/// sharing nothing).
pub fn hold_log() {}

/// Says the deleter is ready on stdout, the pipe its parent reads one line from; nothing else is written there.
pub fn say_ready(ready: impl FnOnce(&mut dyn std::io::Write)) {
    let mut out = std::io::stdout();
    ready(&mut out);
    let _ = std::io::Write::flush(&mut out);
}

/// Removes the file at `path` if that name still leads to this process's stderr (a deleter's own log).
pub fn remove_own_stderr(path: &Path) {
    use std::os::windows::fs::OpenOptionsExt;
    use windows_sys::Win32::Storage::FileSystem::{
        DELETE, FILE_FLAG_OPEN_REPARSE_POINT, FILE_READ_ATTRIBUTES, FILE_SHARE_DELETE, FILE_SHARE_READ,
        FILE_SHARE_WRITE,
    };
    let Ok(there) = std::fs::OpenOptions::new()
        .access_mode(DELETE | FILE_READ_ATTRIBUTES)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
    else {
        return;
    };
    let mine = super::fs::info(&std::io::stderr()).map(|i| i.id);
    if mine.is_ok() && mine.ok() == super::fs::info(&there).ok().map(|i| i.id) {
        let _ = super::fs::delete(&there);
    }
}
