//! The process table from sysinfo (refreshed without threads: on Linux it would list every thread as a
//! process) and `getpgid`, which any Unix answers for any process.
//!
//! sysinfo was chosen over `ps -axo …`: it returns each argument of a command line as it was (ps joins them with
//! spaces, and `lstart` is a locale-dependent date), and it reads exe and cwd, which ps does not show. Its start
//! times are whole seconds, so the identity check also compares the name the scan saw: a pid reused within the
//! same second by a process of the same name would pass, which needs the whole pid space to wrap in under a
//! second, far beyond any fork rate. `bench/scan.sh` prints what reading the table costs both ways.

use std::collections::HashSet;
use std::path::PathBuf;

use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind};

use crate::model::{Process, Table};
use crate::platform::held::{Holds, Snapshot};
use crate::platform::{Identity, ScanError};

fn system() -> Option<System> {
    System::new().ok()
}

/// What every refresh reads: parent, name and start time come with any refresh; the user is asked for.
fn basic() -> ProcessRefreshKind {
    ProcessRefreshKind::nothing().without_tasks().with_user(UpdateKind::Always)
}

fn pids(pids: impl IntoIterator<Item = u32>) -> Vec<Pid> {
    pids.into_iter().map(Pid::from_u32).collect()
}

fn is_gone(status: ProcessStatus) -> bool {
    matches!(status, ProcessStatus::Zombie | ProcessStatus::Dead)
}

fn to_process(pid: Pid, p: &sysinfo::Process) -> Process {
    let number = pid.as_u32();
    // nix, not rustix: rustix's pid type cannot be 0, the group of Linux kernel threads (and of init in some
    // sandboxes). Pid 0 itself (macOS's kernel_task) would ask for our own group.
    let group = i32::try_from(number)
        .ok()
        .filter(|&n| n > 0)
        .and_then(|n| nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(n))).ok())
        .map_or(0, |g| g.as_raw().unsigned_abs());
    Process {
        pid: number,
        ppid: p.parent().map_or(0, Pid::as_u32),
        pgid: group,
        start_time: p.start_time(),
        name: p.name().to_string_lossy().into_owned(),
        cmdline: Vec::new(),
        exe: None,
        cwd: None,
        started_at: Some(p.start_time()),
        stopped: p.status() == ProcessStatus::Stop,
        uid: p.user_id().map(|u| **u),
    }
}

/// Every live process, none of them inspected: lsof reads what they hold, and says what it could not read.
pub fn table() -> Result<Snapshot, ScanError> {
    let mut sys = System::new().map_err(|e| ScanError::Table(e.to_string()))?;
    sys.refresh_processes_specifics(ProcessesToUpdate::All, true, basic());
    let mut out = Snapshot::new(rustix::process::geteuid().as_raw());
    for (&pid, p) in sys.processes().iter().filter(|(_, p)| !is_gone(p.status())) {
        out.add(to_process(pid, p), Holds::NotRead);
    }
    Ok(out)
}

/// How many processes of the table belong to other users while we are not root: what lsof may not read.
#[must_use]
pub fn others(table: &Table) -> usize {
    let me = rustix::process::geteuid();
    if me.is_root() {
        return 0;
    }
    table.procs.values().filter(|p| p.uid.is_some_and(|u| u != me.as_raw())).count()
}

/// Fills in the command line and exe of the processes `wanted`, in one refresh.
pub fn describe<S: std::hash::BuildHasher>(table: &mut Table, wanted: &HashSet<u32, S>) {
    let Some(mut sys) = system() else { return };
    let kind = basic().with_cmd(UpdateKind::Always).with_exe(UpdateKind::Always).with_cwd(UpdateKind::Always);
    sys.refresh_processes_specifics(ProcessesToUpdate::Some(&pids(wanted.iter().copied())), true, kind);
    for (pid, p) in sys.processes() {
        if let Some(entry) = table.procs.get_mut(&pid.as_u32()) {
            entry.cmdline = p.cmd().iter().map(|a| a.to_string_lossy().into_owned()).collect();
            entry.exe = p.exe().map(PathBuf::from);
            entry.cwd = p.cwd().map(PathBuf::from);
        }
    }
}

/// The current dir of `pid`.
#[must_use]
pub fn cwd(pid: u32) -> Option<PathBuf> {
    let mut sys = system()?;
    sys.refresh_processes_specifics(ProcessesToUpdate::Some(&pids([pid])), true, basic().with_cwd(UpdateKind::Always));
    sys.process(Pid::from_u32(pid))?.cwd().map(PathBuf::from)
}

/// One live process, not described.
#[must_use]
pub fn process(pid: u32) -> Option<Process> {
    let mut sys = system()?;
    sys.refresh_processes_specifics(ProcessesToUpdate::Some(&pids([pid])), true, basic());
    let p = sys.process(Pid::from_u32(pid))?;
    (!is_gone(p.status())).then(|| to_process(Pid::from_u32(pid), p))
}

/// Whether `target` is alive and still the process the scan saw: same start second, same name.
#[must_use]
pub fn is_alive(target: &Identity) -> bool {
    process(target.pid).is_some_and(|p| p.start_time == target.start_time && p.name == target.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_itself_and_tells_a_stranger() {
        let me = process(std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        let id = Identity::from(&me);
        assert!(is_alive(&id));
        assert!(!is_alive(&Identity { start_time: id.start_time + 1, ..id.clone() }));
        assert!(!is_alive(&Identity { name: "someone-else".into(), ..id }));
        assert!(table().unwrap().table.procs.contains_key(&std::process::id()));
        assert_eq!(cwd(std::process::id()), std::env::current_dir().ok());
    }
}
