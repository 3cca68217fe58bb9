//! The process table and what each process holds, read through [`libproc`] and handed to
//! [`crate::platform::held`] as Linux's `/proc` scan hands it: "pid P has fd F on this path (device, inode)", its
//! cwd, its exe, the files it maps, or "it cannot be inspected".

use std::collections::HashSet;
use std::path::PathBuf;

use rustix::io::Errno;

use super::libproc::{self, Info, Vnode};
use crate::model::{HandleKind, Process, Roots, Table};
use crate::platform::held::{Held, Holds, Place, Places, Scanned, Snapshot};
use crate::platform::{Identity, ScanError, portable};

impl From<Info> for Process {
    fn from(i: Info) -> Self {
        Process {
            pid: i.pid,
            ppid: i.ppid,
            pgid: i.pgid,
            // Another user's process has no start time here: its identity is its pid and name, and it could not be
            // signalled by this run anyway (`EPERM`).
            start_time: i.start_us.unwrap_or(0),
            name: i.name,
            cmdline: Vec::new(),
            exe: None,
            cwd: None,
            started_at: i.start_us.map(|us| us / 1_000_000),
            stopped: i.status == libc::SSTOP,
            uid: Some(i.uid),
        }
    }
}

/// Reads the whole process table and, with `with_handles`, what every process that can be inspected holds. The
/// pids are split among the cores, as on Linux: each process costs a few calls per open file and mapped region.
pub fn snapshot(exclude: u32, with_handles: bool) -> Result<Snapshot, ScanError> {
    let pids = libproc::all_pids().map_err(ScanError::Libproc)?;
    let uid = rustix::process::geteuid().as_raw();
    Ok(Snapshot::in_parallel(&pids, uid, |part| snapshot_part(part, exclude, with_handles)))
}

fn snapshot_part(pids: &[u32], exclude: u32, with_handles: bool) -> Snapshot {
    let mut out = Snapshot::new(rustix::process::geteuid().as_raw());
    for &pid in pids {
        // Gone, or a zombie (libproc does not find zombies without asking for them): not in the table.
        let Ok(info) = libproc::info(pid) else { continue };
        // Pid 0 is the kernel (`kernel_task`): never inspected, never signalled.
        let holds = if !with_handles || pid == exclude || pid == 0 {
            Holds::NotRead
        } else if info.start_us.is_none() {
            Holds::Denied
        } else {
            match held(pid) {
                Ok(held) => Holds::Read(held),
                Err(Errno::PERM | Errno::ACCESS) => Holds::Denied,
                // Gone while it was read: it holds nothing any more.
                Err(_) => Holds::Read(Vec::new()),
            }
        };
        out.add(Process::from(info), holds);
    }
    out
}

/// Everything one process holds that has a place. `EPERM` from the first call means it cannot be inspected.
fn held(pid: u32) -> Result<Vec<Held>, Errno> {
    let mut out = Vec::new();
    let (cwd, root) = libproc::dirs(pid)?;
    push(&mut out, HandleKind::Cwd, cwd, None);
    if let Some(root) = root {
        push(&mut out, HandleKind::Root, root, None);
    }
    if let Ok(exe) = libproc::exe(pid) {
        out.extend(Held::named(HandleKind::Exe, exe, None, None));
    }
    for fd in libproc::vnode_fds(pid)? {
        // An fd closed since the list was read is simply not there.
        if let Ok(v) = libproc::fd_vnode(pid, fd) {
            push(&mut out, HandleKind::Fd, v, Some(fd));
        }
    }
    // A library maps several regions of one file: each file once.
    let mut seen = HashSet::new();
    for v in libproc::mapped(pid)?.into_iter().filter(|v| seen.insert(v.id)) {
        push(&mut out, HandleKind::Mmap, v, None);
    }
    Ok(out)
}

/// A vnode as a held thing. One the kernel gave no path for: a dir is kept by identity (it may be a root, or lie
/// under one); a file is left out, as lsof leaves it out: it has no name left (unlinked) or a path longer than
/// `MAXPATHLEN`, and a file with no name keeps no dir from being renamed or removed.
fn push(out: &mut Vec<Held>, kind: HandleKind, v: Vnode, fd: Option<u32>) {
    match v.path {
        Some(path) => out.extend(Held::named(kind, path, Some(v.id), fd)),
        None if v.is_dir => out.push(Held {
            kind,
            place: Place::Unnamed {
                chain: vec![v.id],
                complete: false,
                why: "holds a dir whose path the kernel does not give (longer than MAXPATHLEN?)",
            },
            fd,
        }),
        None => {}
    }
}

/// What is held under `roots`. libproc shows no lock state (an `flock` is invisible to it): a process with one of
/// cargo's lock files open is reported as having it open, as lsof reports it on macOS.
pub fn holders(snapshot: Snapshot, roots: &Roots) -> Scanned {
    snapshot.holders(&Places::of(roots), |_, _| None)
}

/// Fills in the command line, exe and cwd of the processes `pids` of `table`. libproc has no call for a command
/// line (`KERN_PROCARGS2` has it): sysinfo reads it, with the exe and cwd, for these few.
pub fn describe<S: std::hash::BuildHasher>(table: &mut Table, pids: &HashSet<u32, S>) {
    portable::table::describe(table, pids);
}

/// The current dir of `pid`.
#[must_use]
pub fn cwd(pid: u32) -> Option<PathBuf> {
    libproc::dirs(pid).ok()?.0.path
}

/// One process as the table would show it (not described), if it is alive.
#[must_use]
pub fn process(pid: u32) -> Option<Process> {
    libproc::info(pid).ok().filter(|i| i.status != libc::SZOMB).map(Process::from)
}

/// Whether `target` is still alive (not a zombie) and the same process: start time to the microsecond, and name.
#[must_use]
pub fn is_alive(target: &Identity) -> bool {
    process(target.pid).is_some_and(|p| p.start_time == target.start_time && p.name == target.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs only on a Mac: this process as libproc shows it, and a file it holds found by the whole scan.
    #[test]
    fn reads_itself_and_what_it_holds() {
        let me = std::process::id();
        let p = process(me).unwrap();
        assert_eq!(p.ppid, std::os::unix::process::parent_id());
        assert!(p.start_time > 1_600_000_000_000_000, "microseconds since the epoch: {}", p.start_time);
        let id = Identity::from(&p);
        assert!(is_alive(&id));
        assert!(!is_alive(&Identity { start_time: id.start_time + 1, ..id.clone() }), "a microsecond off");
        assert!(!is_alive(&Identity { name: "someone-else".into(), ..id }));
        let here = std::env::current_dir().unwrap().canonicalize().unwrap();
        assert_eq!(cwd(me).map(|c| c.canonicalize().unwrap()), Some(here));
        let kinds: HashSet<HandleKind> = held(me).unwrap().iter().map(|h| h.kind).collect();
        for kind in [HandleKind::Cwd, HandleKind::Exe, HandleKind::Mmap] {
            assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
        }
        // Under the temp dir, which is under /var: found under the kernel's spelling, /private/var.
        let tmp = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(tmp.path().join("held")).unwrap();
        let scanned = holders(snapshot(0, true).unwrap(), &Roots::new([tmp.path()]));
        let mine = scanned.found.iter().find(|f| f.process.pid == me).expect("it holds its own file");
        assert!(mine.handles.iter().any(|h| h.kind == HandleKind::Fd && h.path.ends_with("held")), "{mine:?}");
        assert!(scanned.table.procs.contains_key(&1), "launchd is in the table");
        drop(file);
    }
}
