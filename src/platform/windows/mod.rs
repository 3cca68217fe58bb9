//! The native implementation on Windows.
//!
//! - [`table`]: the process table from sysinfo (parent, name, exe, command line, cwd), with start times from
//!   `GetProcessTimes` (100 ns since 1601), precise enough to tell a reused pid;
//! - [`handles`]: what each process holds, from the system handle table (`NtQuerySystemInformation` with
//!   `SystemExtendedHandleInformation`): each file handle is duplicated into this process, asked its type
//!   (`GetFileType`: only `FILE_TYPE_DISK` is named, so a pipe can never hang the scan) and named
//!   (`GetFinalPathNameByHandleW`); a current directory is such a handle;
//! - [`modules`]: the images each process runs and maps (a running `.exe`, a loaded `.dll` or proc-macro), from a
//!   Toolhelp32 module snapshot: an image holds no file handle;
//! - [`stop`]: a process handle opened once (it pins the process, as a pidfd does), its start time checked against
//!   the scan, `TerminateProcess`, and a wait on the handle.
//!
//! Windows has no process groups and no polite signal for a process we did not start: see the README for what
//! `--grace` means here. Paths are compared by whole components, case-insensitively as NTFS does, with `\\?\` and
//! drive forms made one (see [`normalise`]). A process that cannot be opened (another user's, an elevated one) is
//! counted as uninspectable.
#![expect(unsafe_code, reason = "the Win32 and NT system-call layer: each call says why it is sound")]

pub mod fs;
pub mod handles;
pub mod modules;
pub mod places;
pub mod restart;
mod session;
pub mod stop;
pub mod table;

pub use session::{
    detached, disk_space, hold_log, interrupt_group, leave_session, lower_priority, own_group, remove_own_stderr,
    run_as, say_ready, stderr_stdio, terminal_columns, with_own_rights,
};

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::path::{Path, PathBuf};
use std::time::Instant;

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_NAME_NORMALIZED, FILE_READ_ATTRIBUTES,
    FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, GetFinalPathNameByHandleW, OPEN_EXISTING, VOLUME_NAME_DOS,
};

use super::held::{self, Places};
use super::{Identity, Waited};
use crate::interrupt::Interrupt;
use crate::model::{FileId, Found, Process, Roots, Sig, SignalError, Table, Uninspectable};

/// An open dir that file work is done relative to.
pub type Dir = OwnedHandle;

/// How a walk treats what it finds: on Windows there is one way. A mount point, a junction and a symlink are all
/// reparse points, opened as themselves and never descended into (see [`fs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Files;

/// Which implementation serves each piece: on Windows there is one, the native one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Whether holders are read from the handle table and module snapshots (`false`: the table only, as a run
    /// that only needs parents and names would ask).
    pub holders: bool,
    pub files: Files,
}

impl Platform {
    /// This OS's own implementation of every piece.
    #[must_use]
    pub fn native() -> Self {
        Platform { holders: true, files: Files }
    }

    /// Reads the process table and what every process holds, before anyone knows which dirs matter (see
    /// [`crate::scan`]). `exclude` (this process) is not inspected.
    pub fn snapshot(&self, exclude: u32) -> Result<Snapshot, ScanError> {
        Ok(Snapshot { raw: table::snapshot(exclude, self.holders)? })
    }

    /// Fills in the command line, exe and cwd of the processes `pids`.
    pub fn describe<S: std::hash::BuildHasher>(&self, table: &mut Table, pids: &HashSet<u32, S>) {
        table::describe(table, pids);
    }

    /// Which of `locks` each process waits for: a process blocked in `LockFileEx` shows nothing in the handle table
    /// that tells it from a holder, so `None` (cargo's "Blocking waiting" line is all there is).
    #[must_use]
    pub fn waiting_for(&self, _locks: &[PathBuf]) -> Option<Vec<(u32, PathBuf)>> {
        None
    }

    /// Whether the holder source tells a waiter from a holder: not on Windows.
    #[must_use]
    pub fn sees_lock_waiters(&self) -> bool {
        false
    }

    /// The current dir of `pid`, if it can be read.
    #[must_use]
    pub fn cwd(&self, pid: u32) -> Option<PathBuf> {
        table::cwd(pid)
    }

    /// One process as the table would show it (not described), if it is alive.
    #[must_use]
    pub fn process(&self, pid: u32) -> Option<Process> {
        table::process(pid)
    }

    /// Whether `target` is still the process the scan saw: same pid, same creation time.
    #[must_use]
    pub fn is_alive(&self, target: &Identity) -> bool {
        stop::Handle::open(target).is_ok_and(|h| h.is_some_and(|h| !h.exited_now()))
    }

    /// Opens a handle on `target`; `None` when that process is gone (or the pid is someone else's now). A process
    /// that cannot be opened (access denied) gets no handle either: it is reported as one that could not be
    /// signalled by the stage that asks.
    #[must_use]
    pub fn open_process(&self, target: &Identity) -> Option<ProcHandle> {
        stop::Handle::open(target).ok().flatten().map(ProcHandle)
    }

    /// `Term` and `Kill` both end the process with `TerminateProcess` (Windows has no request to exit that a
    /// process we did not start must honour); `Cont` has nothing to resume: a Windows process is never stopped
    /// by a signal.
    pub fn signal(&self, handle: &ProcHandle, sig: Sig) -> Result<(), SignalError> {
        match sig {
            Sig::Cont => Ok(()),
            Sig::Term | Sig::Kill => handle.0.terminate(),
        }
    }

    /// Waits until one of `handles` exits, `until` passes, or an interrupt arrives, woken by the exit itself.
    pub fn wait_any(&self, handles: &[&ProcHandle], until: Instant, interrupt: &Interrupt) -> Waited {
        let handles: Vec<&stop::Handle> = handles.iter().map(|h| &h.0).collect();
        stop::wait_any(&handles, until, interrupt)
    }
}

/// What [`Platform::snapshot`] read, to be narrowed to the dirs that matter with [`Snapshot::holders`].
#[derive(Debug)]
pub struct Snapshot {
    raw: held::Snapshot,
}

impl Snapshot {
    /// What is held under `roots`, with the process table and the processes that could not be inspected.
    pub fn holders(self, roots: &Roots, _exclude: u32) -> Result<(Vec<Found>, Table, Uninspectable), ScanError> {
        // No lock state is visible per handle: a `LockFileEx` range is not in the handle table, and a process that
        // has a locked lock file open may be waiting for the lock while its owner is one this scan cannot see (an
        // elevated process, another machine on a share). A lock file is an open file; the run probes the locks.
        let held::Scanned { found, table, uninspectable } = self.raw.holders(&Places::of(roots), |_, _| None);
        Ok((found, table, uninspectable))
    }
}

/// Why the process table or the holders could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read the process table: {0}")]
    Table(String),
    #[error("cannot read the system handle table (NtQuerySystemInformation): {0}")]
    Handles(#[source] std::io::Error),
}

impl ScanError {
    /// What to check.
    #[must_use]
    pub fn help(&self) -> Option<String> {
        match self {
            ScanError::Table(_) => None,
            ScanError::Handles(_) => Some("run from an account that may query system information".into()),
        }
    }
}

/// A handle on a process we did not spawn, safe against pid reuse: the open handle pins the process.
#[derive(Debug)]
pub struct ProcHandle(stop::Handle);

impl ProcHandle {
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.0.pid()
    }
}

/// A root's identity (volume serial and file index) and the path Windows spells it by now, for
/// [`held::Places::of`]: the handle table names files by that spelling (true case, long names, resolved
/// junctions). The root is opened as itself, never through a reparse point.
#[must_use]
pub fn root_spelling(root: &Path) -> (Option<FileId>, Option<PathBuf>) {
    let Ok(h) = open_as_itself(root) else { return (None, None) };
    (file_id(&h), final_path(h.as_raw_handle()))
}

/// Opens `path` for its attributes only, a dir too, a reparse point as itself, sharing everything: never in anyone's
/// way.
pub fn open_as_itself(path: &Path) -> std::io::Result<OwnedHandle> {
    let wide = wide(path.as_os_str());
    // SAFETY: `wide` is NUL-terminated and outlives the call; no security attributes or template.
    let h = unsafe {
        CreateFileW(
            wide.as_ptr(),
            FILE_READ_ATTRIBUTES,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            std::ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT,
            std::ptr::null_mut(),
        )
    };
    owned(h)
}

/// Owns a handle a call returned, or says why there is none.
fn owned(h: HANDLE) -> std::io::Result<OwnedHandle> {
    if h.is_null() || h == INVALID_HANDLE_VALUE {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a valid handle just returned to us and owned by nothing else.
    Ok(unsafe { OwnedHandle::from_raw_handle(h as RawHandle) })
}

/// The identity of the dir `path` leads to now (reparse points followed), if it exists.
#[must_use]
pub fn id_of_path(path: &Path) -> Option<FileId> {
    fs::open_dir(path, fs::Access::Read).and_then(|h| fs::info(&h)).ok().map(|i| i.id)
}

/// The volume serial number and file index of an open file: what identifies it whatever its name.
#[must_use]
pub fn file_id(h: &OwnedHandle) -> Option<FileId> {
    fs::info(h).ok().map(|i| i.id)
}

/// The path of an open file as Windows names it now (normalised, DOS volume names), `\\?\` taken off.
#[must_use]
pub fn final_path(h: RawHandle) -> Option<PathBuf> {
    let mut buf = vec![0u16; 512];
    loop {
        let room = u32::try_from(buf.len()).ok()?;
        // SAFETY: `buf` has `room` u16s of space; the handle is valid for the duration of the call.
        let n = unsafe {
            GetFinalPathNameByHandleW(h as HANDLE, buf.as_mut_ptr(), room, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS)
        };
        let n = usize::try_from(n).ok()?;
        if n == 0 {
            return None;
        }
        if n < buf.len() {
            return Some(normalise(Path::new(&OsString::from_wide(&buf[..n]))));
        }
        // Too small: `n` is the size needed, with the NUL.
        buf.resize(n + 1, 0);
    }
}

/// One spelling for one path: `\\?\C:\x` is `C:\x`, `\\?\UNC\server\share\x` is `\\server\share\x`, and the drive
/// letter is upper case. Other prefixes (`\\?\Volume{…}`, a device path) stay as they are.
#[must_use]
pub fn normalise(path: &Path) -> PathBuf {
    let wide: Vec<u16> = path.as_os_str().encode_wide().collect();
    let verbatim: Vec<u16> = r"\\?\".encode_utf16().collect();
    let unc: Vec<u16> = r"\\?\UNC\".encode_utf16().collect();
    let mut out: Vec<u16> = if let Some(rest) = wide.strip_prefix(unc.as_slice()) {
        r"\\".encode_utf16().chain(rest.iter().copied()).collect()
    } else if let Some(rest) = wide.strip_prefix(verbatim.as_slice())
        && rest.len() >= 2
        && rest[1] == u16::from(b':')
    {
        rest.to_vec()
    } else {
        wide
    };
    if out.len() >= 2 && out[1] == u16::from(b':') && (u16::from(b'a')..=u16::from(b'z')).contains(&out[0]) {
        out[0] -= u16::from(b'a' - b'A');
    }
    PathBuf::from(OsString::from_wide(&out))
}

/// A NUL-terminated UTF-16 copy of `s`, for the `W` calls.
#[must_use]
pub fn wide(s: &std::ffi::OsStr) -> Vec<u16> {
    s.encode_wide().chain([0]).collect()
}

/// The version of Wine this runs under, if it does (`wine_get_version`, which only Wine's ntdll exports): tests of
/// what Wine does differently from Windows skip there, saying why.
#[must_use]
pub fn wine_version() -> Option<String> {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    let ntdll = wide(std::ffi::OsStr::new("ntdll.dll"));
    // SAFETY: a NUL-terminated module name; ntdll is loaded in every process and never unloaded.
    let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
    if module.is_null() {
        return None;
    }
    // SAFETY: a loaded module and a NUL-terminated export name.
    let f = unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }?;
    // SAFETY: Wine's `const char *wine_get_version(void)`, returning a static NUL-terminated string.
    let get: extern "C" fn() -> *const std::ffi::c_char = unsafe { std::mem::transmute(f) };
    // SAFETY: the static string just returned.
    Some(unsafe { std::ffi::CStr::from_ptr(get()) }.to_string_lossy().into_owned())
}

/// This process's pseudo-handle (needs no closing).
fn current_process() -> HANDLE {
    // SAFETY: no arguments; returns a constant pseudo-handle.
    unsafe { windows_sys::Win32::System::Threading::GetCurrentProcess() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HandleKind;

    #[test]
    fn verbatim_and_drive_forms_are_one_spelling() {
        assert_eq!(normalise(Path::new(r"\\?\C:\w\target")), PathBuf::from(r"C:\w\target"));
        assert_eq!(normalise(Path::new(r"c:\w\target")), PathBuf::from(r"C:\w\target"));
        assert_eq!(normalise(Path::new(r"\\?\UNC\host\share\t")), PathBuf::from(r"\\host\share\t"));
        assert_eq!(normalise(Path::new(r"\\?\Volume{1}\t")), PathBuf::from(r"\\?\Volume{1}\t"));
    }

    #[test]
    fn a_root_is_known_by_identity_and_by_its_spelling() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("Target");
        std::fs::create_dir(&dir).unwrap();
        let (id, spelled) = root_spelling(&dir);
        let spelled = spelled.unwrap();
        assert!(id.is_some());
        assert!(!spelled.as_os_str().encode_wide().take(4).eq(r"\\?\".encode_utf16()), "{}", spelled.display());
        assert!(spelled.ends_with("Target"), "{}", spelled.display());
        // Another spelling of the same dir (lower case) has the same identity.
        let lower = PathBuf::from(dir.to_string_lossy().to_lowercase());
        assert_eq!(root_spelling(&lower).0, id);
        assert_eq!(root_spelling(&tmp.path().join("missing")), (None, None));
    }

    /// Run by [`real_holders_are_found_and_stopped`] in a process of its own (a copy of this test binary inside the
    /// target dir): holds a file open and its cwd in the target dir, loads an image from it as a proc-macro server
    /// loads a proc-macro DLL, says "ready", and waits for stdin to close. Alone (no variable set) it does nothing.
    #[test]
    fn holder_child() {
        use std::io::{Read, Write};
        let Some(file) = std::env::var_os("SAFECLEAN_TEST_HOLD") else { return };
        let file = PathBuf::from(file);
        let _held = std::fs::File::open(&file).unwrap();
        let dll = wide(&std::env::var_os("SAFECLEAN_TEST_DLL").unwrap());
        // SAFETY: a NUL-terminated path; the image is mapped and its entry point, if any, is not ours to fear: it
        // is a copy of this very test binary.
        let module = unsafe { windows_sys::Win32::System::LibraryLoader::LoadLibraryW(dll.as_ptr()) };
        assert!(!module.is_null(), "LoadLibraryW: {}", std::io::Error::last_os_error());
        std::env::set_current_dir(file.parent().unwrap()).unwrap();
        let mut out = std::io::stdout();
        writeln!(out, "ready").unwrap();
        out.flush().unwrap();
        let _ = std::io::stdin().read(&mut [0u8; 1]);
    }

    /// Kills the child it holds when the test ends, pass or fail.
    struct Reap(std::process::Child);

    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn real_holders_are_found_and_stopped() {
        use std::io::BufRead;
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("Target");
        let debug = target.join("debug");
        std::fs::create_dir_all(&debug).unwrap();
        let held = debug.join("held.txt");
        std::fs::write(&held, "x").unwrap();
        // The running exe lives in the target dir, as a test binary or a `cargo run` server does.
        let exe = debug.join("holder.exe");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        // A loaded image that is not the exe: a copy of this binary, named as a proc-macro DLL is. It holds no file
        // handle; only the module snapshot sees it.
        let dll = debug.join("deps").join("macros-1.dll");
        std::fs::create_dir(debug.join("deps")).unwrap();
        std::fs::copy(std::env::current_exe().unwrap(), &dll).unwrap();
        let child = std::process::Command::new(&exe)
            .args(["--exact", "platform::windows::tests::holder_child", "--nocapture", "--test-threads=1"])
            .env("SAFECLEAN_TEST_HOLD", &held)
            .env("SAFECLEAN_TEST_DLL", &dll)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = Reap(child);
        let pid = child.0.id();
        let mut lines = std::io::BufReader::new(child.0.stdout.take().unwrap()).lines();
        // libtest prints the test's name first, on the same line.
        assert!(lines.any(|l| l.unwrap().ends_with("ready")), "the holder never said it was ready");

        let platform = Platform::native();
        // The roots in lower case, as a user may type them.
        let roots = Roots::exact([PathBuf::from(target.to_string_lossy().to_lowercase())]);
        let (found, _table, _) =
            platform.snapshot(std::process::id()).unwrap().holders(&roots, std::process::id()).unwrap();
        let mine = found.iter().find(|f| f.process.pid == pid).expect("the holder is found");
        let has = |kind: HandleKind, name: &str| {
            mine.handles
                .iter()
                .any(|h| h.kind == kind && h.path.file_name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        };
        assert!(has(HandleKind::Fd, "held.txt"), "the open file: {:?}", mine.handles);
        assert!(has(HandleKind::Exe, "holder.exe"), "the running exe: {:?}", mine.handles);
        assert!(has(HandleKind::Cwd, "debug"), "the cwd: {:?}", mine.handles);
        assert!(has(HandleKind::Mmap, "macros-1.dll"), "the loaded image: {:?}", mine.handles);
        assert!(found.iter().all(|f| f.process.pid != std::process::id()), "this process is never a holder");

        // A stale identity (another creation time) is never opened, so never stopped.
        let identity = Identity::from(&mine.process);
        let stale = Identity { start_time: identity.start_time + 1, ..identity.clone() };
        assert!(platform.open_process(&stale).is_none());
        assert!(platform.is_alive(&identity));
        let handle = platform.open_process(&identity).expect("the holder can be opened");
        platform.signal(&handle, Sig::Term).unwrap();
        let interrupt = Interrupt::manual().unwrap();
        let until = Instant::now() + std::time::Duration::from_secs(10);
        let waited = platform.wait_any(&[&handle], until, &interrupt);
        assert_eq!(waited.exited, vec![0]);
        assert!(!platform.is_alive(&identity));
        assert!(matches!(platform.signal(&handle, Sig::Kill), Err(SignalError::Gone)));
        // The file is free once its holder is gone.
        std::fs::remove_file(&held).unwrap();
    }

    #[test]
    fn an_interrupt_wakes_a_wait() {
        let interrupt = Interrupt::manual().unwrap();
        interrupt.trigger();
        let waited = stop::wait_any(&[], Instant::now() + std::time::Duration::from_secs(30), &interrupt);
        assert!(waited.interrupted && waited.exited.is_empty());
    }
}
