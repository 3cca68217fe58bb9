//! The process table on Windows: sysinfo for parents, names, exes, command lines and cwds; `GetProcessTimes` for
//! start times (100 ns units since 1601: a pid reused later never has the same one), and the holders read with it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};
use windows_sys::Win32::Foundation::{FILETIME, HANDLE};
use windows_sys::Win32::System::Threading::{GetProcessTimes, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION};

use super::{ScanError, handles, modules, owned};
use crate::model::{Process, Table};
use crate::platform::held::{Holds, Snapshot};

/// No uid is compared on Windows (owners are SIDs): a process that cannot be opened counts as another user's.
const NO_UID: u32 = u32::MAX;

fn basic() -> ProcessRefreshKind {
    ProcessRefreshKind::nothing().without_tasks()
}

/// When process `pid` was created, in 100 ns units since 1601; `None` if it cannot be opened (gone, or denied).
#[must_use]
pub fn creation_time(pid: u32) -> Option<u64> {
    // SAFETY: plain arguments; the result is checked by `owned`.
    let h = owned(unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) }).ok()?;
    created(std::os::windows::io::AsRawHandle::as_raw_handle(&h) as HANDLE)
}

/// The creation time of an open process.
pub(super) fn created(h: HANDLE) -> Option<u64> {
    let (mut created, mut exited, mut kernel, mut user) =
        (FILETIME::default(), FILETIME::default(), FILETIME::default(), FILETIME::default());
    // SAFETY: a valid process handle and four FILETIMEs to write.
    let ok = unsafe { GetProcessTimes(h, &raw mut created, &raw mut exited, &raw mut kernel, &raw mut user) };
    (ok != 0).then(|| (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime))
}

fn to_process(pid: u32, p: &sysinfo::Process) -> Process {
    // A process that cannot be opened keeps sysinfo's second, in the same unit: it is never stopped anyway.
    let start_time = creation_time(pid).unwrap_or_else(|| (p.start_time() + 11_644_473_600) * 10_000_000);
    Process {
        pid,
        ppid: p.parent().map_or(0, Pid::as_u32),
        // No process groups on Windows: each process leads its own, so a group never widens what is stopped.
        pgid: pid,
        start_time,
        name: p.name().to_string_lossy().into_owned(),
        cmdline: Vec::new(),
        exe: p.exe().map(super::normalise),
        cwd: p.cwd().map(super::normalise),
        started_at: Some(p.start_time()),
        stopped: false,
        uid: None,
    }
}

/// Every live process and, with `holders`, what each holds (file handles and images). `exclude` (this process) is
/// not inspected.
pub fn snapshot(exclude: u32, holders: bool) -> Result<Snapshot, ScanError> {
    let mut sys = System::new().map_err(|e| ScanError::Table(e.to_string()))?;
    // The cwd tells a process's current dir from its other dir handles.
    let kind = if holders { basic().with_cwd(UpdateKind::Always) } else { basic() };
    sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
    let mut by_pid: HashMap<u32, Vec<handles::Entry>> = HashMap::new();
    if holders {
        for e in handles::table().map_err(ScanError::Handles)? {
            by_pid.entry(e.pid).or_default().push(e);
        }
    }
    let mut out = Snapshot::new(NO_UID);
    let mut namer = handles::Namer::start();
    for (pid, p) in sys.processes() {
        let pid = pid.as_u32();
        let process = to_process(pid, p);
        // Pid 0 is the idle process and 4 the kernel's: nothing to open, nothing of ours.
        let holds = if !holders || pid == exclude || pid == 0 || pid == 4 {
            Holds::NotRead
        } else {
            let entries = by_pid.remove(&pid).unwrap_or_default();
            match (handles::held_by(pid, &entries, process.cwd.as_deref(), &mut namer), modules::images(pid)) {
                (Ok(mut files), Ok(images)) => {
                    files.extend(images);
                    Holds::Read(files)
                }
                _ => Holds::Denied,
            }
        };
        out.add(process, holds);
    }
    Ok(out)
}

/// Fills in the command line, exe and cwd of the processes `wanted`, in one refresh.
pub fn describe<S: std::hash::BuildHasher>(table: &mut Table, wanted: &HashSet<u32, S>) {
    let Ok(mut sys) = System::new() else { return };
    let kind = basic().with_cmd(UpdateKind::Always).with_exe(UpdateKind::Always).with_cwd(UpdateKind::Always);
    let pids: Vec<Pid> = wanted.iter().map(|&p| Pid::from_u32(p)).collect();
    sys.refresh_processes_specifics(ProcessesToUpdate::Some(&pids), true, kind);
    for (pid, p) in sys.processes() {
        if let Some(entry) = table.procs.get_mut(&pid.as_u32()) {
            entry.cmdline = p.cmd().iter().map(|a| a.to_string_lossy().into_owned()).collect();
            entry.exe = p.exe().map(super::normalise);
            entry.cwd = p.cwd().map(super::normalise);
        }
    }
}

/// The current dir of `pid`.
#[must_use]
pub fn cwd(pid: u32) -> Option<PathBuf> {
    let mut sys = System::new().ok()?;
    let pids = [Pid::from_u32(pid)];
    sys.refresh_processes_specifics(ProcessesToUpdate::Some(&pids), true, basic().with_cwd(UpdateKind::Always));
    sys.process(Pid::from_u32(pid))?.cwd().map(super::normalise)
}

/// One live process, not described.
#[must_use]
pub fn process(pid: u32) -> Option<Process> {
    let mut sys = System::new().ok()?;
    let pids = [Pid::from_u32(pid)];
    sys.refresh_processes_specifics(ProcessesToUpdate::Some(&pids), true, basic());
    sys.process(Pid::from_u32(pid)).map(|p| to_process(pid, p))
}
