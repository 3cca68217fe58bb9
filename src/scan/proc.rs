//! The Linux backend: `/proc/PID/{stat,exe,cwd,root,fd,maps}` and `/proc/locks`.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use anyhow::Context;

use super::{Found, LockedFile, Roots, Scan, parse_locks};
use crate::model::{Handle, HandleKind, Process};
use crate::process::{self, strip_deleted};

/// Everything a process holds, before anyone knows which dirs matter: an fd's number is kept so that its lock
/// can be checked once it turns out to be under a root.
#[derive(Debug)]
struct RawHandle {
    kind: HandleKind,
    path: PathBuf,
    fd: Option<u32>,
}

/// The process table and every absolute path each process holds. Taken while `cargo metadata` says which dirs
/// matter, then narrowed with [`Raw::filter`]: the scan costs no time the user waits for.
#[derive(Debug, Default)]
pub struct Raw {
    table: crate::process::Table,
    uninspectable: super::Uninspectable,
    held: Vec<(u32, Vec<RawHandle>)>,
}

/// Reads the whole process table and, with `with_handles`, what every process that can be inspected holds.
/// The pids are split among the cores: each process costs a handful of syscalls, and there may be thousands.
pub fn raw(exclude: u32, with_handles: bool) -> anyhow::Result<Raw> {
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .context("failed to list /proc; is procfs mounted?")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let workers = std::thread::available_parallelism().map_or(1, usize::from).min(8);
    let chunk = pids.len().div_ceil(workers).max(1);
    let parts: Vec<Raw> = std::thread::scope(|s| {
        let handles: Vec<_> =
            pids.chunks(chunk).map(|part| s.spawn(|| raw_part(part, exclude, with_handles))).collect();
        handles.into_iter().map(|h| h.join().expect("a scan thread panicked")).collect()
    });
    let mut out = Raw::default();
    for part in parts {
        out.held.extend(part.held);
        out.table.procs.extend(part.table.procs);
        out.uninspectable.other_users += part.uninspectable.other_users;
        out.uninspectable.own.extend(part.uninspectable.own);
    }
    Ok(out)
}

impl Raw {
    /// What is held under `roots`; an fd on a file that `/proc/locks` lists is a `lock`.
    pub fn filter(self, roots: &Roots) -> Scan {
        let locks = std::fs::read_to_string("/proc/locks").map(|t| parse_locks(&t)).unwrap_or_default();
        let mut found = Vec::new();
        for (pid, held) in self.held {
            let handles: Vec<Handle> = held
                .into_iter()
                .filter(|h| roots.contains(&h.path))
                .map(|h| {
                    let locked = h.fd.is_some_and(|fd| is_locked(pid, fd, &locks));
                    Handle { kind: if locked { HandleKind::Lock } else { h.kind }, path: h.path }
                })
                .collect();
            if let (false, Some(p)) = (handles.is_empty(), self.table.procs.get(&pid)) {
                found.push(Found { process: p.clone(), handles });
            }
        }
        Scan { found, table: self.table, uninspectable: self.uninspectable }
    }
}

fn is_locked(pid: u32, fd: u32, locks: &HashSet<LockedFile>) -> bool {
    !locks.is_empty()
        && std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
            .is_ok_and(|m| locks.contains(&LockedFile::from_stat(m.dev(), m.ino())))
}

fn raw_part(pids: &[u32], exclude: u32, with_handles: bool) -> Raw {
    let my_uid = rustix::process::geteuid().as_raw();
    let mut out = Raw::default();
    for &pid in pids {
        let Ok(Some(stat)) = process::read_stat(pid) else { continue };
        let skip = !with_handles || stat.is_zombie() || stat.is_kernel_thread() || pid == exclude;
        let mut p = Process::from(stat);
        if !skip {
            match raw_handles(pid) {
                Ok(h) if !h.is_empty() => out.held.push((pid, h)),
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    p.uid = std::fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid());
                    if p.uid == Some(my_uid) || my_uid == 0 {
                        out.uninspectable.own.push((pid, p.name.clone()));
                    } else {
                        out.uninspectable.other_users += 1;
                    }
                }
                // Nothing held; or gone, a race with exit: the process holds nothing any more.
                Ok(_) | Err(_) => {}
            }
        }
        out.table.procs.insert(pid, p);
    }
    out
}

/// Every absolute path one process holds. `PermissionDenied` means it could not be inspected at all.
fn raw_handles(pid: u32) -> io::Result<Vec<RawHandle>> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    let mut out = Vec::new();
    // exe is the first read: its error tells whether this process can be inspected at all.
    for (name, kind) in [("exe", HandleKind::Exe), ("cwd", HandleKind::Cwd), ("root", HandleKind::Root)] {
        match std::fs::read_link(base.join(name)) {
            Ok(link) => push_absolute(&mut out, kind, link.into_os_string(), None),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(e),
            // Processes without an exe (exiting ones) still have fds worth reading.
            Err(_) => {}
        }
    }
    match std::fs::read_dir(base.join("fd")) {
        Ok(entries) => {
            for e in entries.flatten() {
                let Ok(link) = std::fs::read_link(e.path()) else { continue };
                let fd = e.file_name().to_str().and_then(|n| n.parse().ok());
                push_absolute(&mut out, HandleKind::Fd, link.into_os_string(), fd);
            }
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(e),
        Err(_) => {}
    }
    if let Ok(maps) = std::fs::read(base.join("maps")) {
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for path in map_paths(&maps).filter(|p| seen.insert(p)) {
            push_absolute(&mut out, HandleKind::Mmap, OsString::from(std::ffi::OsStr::from_bytes(path)), None);
        }
    }
    Ok(out)
}

/// Pipes, sockets, anonymous inodes and the like are not paths and never under a root.
fn push_absolute(out: &mut Vec<RawHandle>, kind: HandleKind, link: OsString, fd: Option<u32>) {
    if link.as_bytes().starts_with(b"/") {
        out.push(RawHandle { kind, path: strip_deleted(link), fd });
    }
}

/// The file paths in `/proc/PID/maps`: the sixth column, which may contain spaces.
fn map_paths(maps: &[u8]) -> impl Iterator<Item = &[u8]> {
    maps.split(|b| *b == b'\n').filter_map(|line| {
        let slash = line.iter().position(|b| *b == b'/')?;
        // The path is the first `/` after the five fixed columns; earlier columns never contain `/`.
        let fixed = &line[..slash];
        (fixed.split(|b| *b == b' ').filter(|c| !c.is_empty()).count() >= 5).then(|| &line[slash..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_paths_keep_spaces_and_skip_anonymous() {
        let maps = b"55d0-55d1 r--p 00000000 fe:00 123 /t/a b.rlib\n\
                     7ff0-7ff1 rw-p 00000000 00:00 0 \n\
                     7ff2-7ff3 r--p 00000000 00:00 0 [vdso]\n\
                     7ff4-7ff5 r-xp 00001000 fe:00 9 /t/x (deleted)\n";
        let paths: Vec<&[u8]> = map_paths(maps).collect();
        assert_eq!(paths, vec![&b"/t/a b.rlib"[..], &b"/t/x (deleted)"[..]]);
    }

    #[test]
    fn finds_its_own_cwd() {
        let dir = std::env::current_dir().unwrap();
        let h = raw_handles(std::process::id()).unwrap();
        assert!(h.iter().any(|h| h.kind == HandleKind::Cwd && h.path == dir));
    }
}
