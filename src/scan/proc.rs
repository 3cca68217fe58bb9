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

/// Reads the whole process table and, with `with_handles`, the handles of every process that can be inspected.
/// The pids are split among the cores: each process costs a handful of syscalls, and there may be thousands.
pub fn scan(roots: &Roots, exclude: u32, with_handles: bool) -> anyhow::Result<Scan> {
    let locks = std::fs::read_to_string("/proc/locks").map(|t| parse_locks(&t)).unwrap_or_default();
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .context("failed to list /proc; is procfs mounted?")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let workers = std::thread::available_parallelism().map_or(1, usize::from).min(8);
    let chunk = pids.len().div_ceil(workers).max(1);
    let parts: Vec<Scan> = std::thread::scope(|s| {
        let handles: Vec<_> =
            pids.chunks(chunk).map(|part| s.spawn(|| scan_part(part, roots, exclude, with_handles, &locks))).collect();
        handles.into_iter().map(|h| h.join().expect("a scan thread panicked")).collect()
    });
    let mut out = Scan::default();
    for part in parts {
        out.found.extend(part.found);
        out.table.procs.extend(part.table.procs);
        out.uninspectable.other_users += part.uninspectable.other_users;
        out.uninspectable.own.extend(part.uninspectable.own);
    }
    Ok(out)
}

fn scan_part(pids: &[u32], roots: &Roots, exclude: u32, with_handles: bool, locks: &HashSet<LockedFile>) -> Scan {
    let my_uid = rustix::process::geteuid().as_raw();
    let mut out = Scan::default();
    for &pid in pids {
        let Ok(Some(stat)) = process::read_stat(pid) else { continue };
        let skip = !with_handles || stat.is_zombie() || stat.is_kernel_thread() || pid == exclude;
        let mut p = Process::from(stat);
        p.uid = std::fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid());
        if !skip {
            match handles(pid, roots, locks) {
                Ok(h) if !h.is_empty() => out.found.push(Found { process: p.clone(), handles: h }),
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
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

/// What one process holds under the roots. `PermissionDenied` means it could not be inspected at all.
fn handles(pid: u32, roots: &Roots, locks: &HashSet<LockedFile>) -> io::Result<Vec<Handle>> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    let mut out = Vec::new();
    // exe is the first read: its error tells whether this process can be inspected at all.
    for (name, kind) in [("exe", HandleKind::Exe), ("cwd", HandleKind::Cwd), ("root", HandleKind::Root)] {
        match std::fs::read_link(base.join(name)) {
            Ok(link) => push_if_under(&mut out, roots, kind, link.into_os_string()),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(e),
            // Processes without an exe (exiting ones) still have fds worth reading.
            Err(_) => {}
        }
    }
    let fd_dir = base.join("fd");
    match std::fs::read_dir(&fd_dir) {
        Ok(entries) => {
            for e in entries.flatten() {
                let Ok(link) = std::fs::read_link(e.path()) else { continue };
                if !link.as_os_str().as_bytes().starts_with(b"/") {
                    continue; // pipes, sockets, anon inodes
                }
                let path = strip_deleted(link.into_os_string());
                if roots.contains(&path) {
                    let locked = !locks.is_empty()
                        && std::fs::metadata(e.path())
                            .is_ok_and(|m| locks.contains(&LockedFile::from_stat(m.dev(), m.ino())));
                    out.push(Handle { kind: if locked { HandleKind::Lock } else { HandleKind::Fd }, path });
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(e),
        Err(_) => {}
    }
    if let Ok(maps) = std::fs::read(base.join("maps")) {
        for path in map_paths(&maps) {
            push_if_under(&mut out, roots, HandleKind::Mmap, OsString::from(std::ffi::OsStr::from_bytes(path)));
        }
    }
    Ok(out)
}

fn push_if_under(out: &mut Vec<Handle>, roots: &Roots, kind: HandleKind, link: OsString) {
    let path = strip_deleted(link);
    if path.is_absolute() && roots.contains(&path) {
        out.push(Handle { kind, path });
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
        let roots = Roots::new([dir.as_path()]);
        let h = handles(std::process::id(), &roots, &HashSet::new()).unwrap();
        assert!(h.iter().any(|h| h.kind == HandleKind::Cwd));
    }
}
