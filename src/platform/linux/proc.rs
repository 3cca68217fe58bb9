//! `/proc`: the process table (`stat`), what each process holds (`exe`, `cwd`, `root`, `fd/*`, `maps`) and which
//! files are locked (`/proc/locks`).
//!
//! Each process is read through one `O_PATH` handle on `/proc/PID` and `*at` calls, so its dir is resolved once.
//! `stat` and `/proc/locks` are parsed by `procfs-core`; links and `maps` are read here, byte for byte: paths may
//! be any bytes, and procfs reads those files as UTF-8 lines (a non-UTF-8 name would lose a whole process's maps).

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use procfs_core::FromRead;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::model::{FileId, HandleKind, Hold, Process, Roots, Table};
use crate::platform::held::{Held, Holds, Place, Places, Scanned, Snapshot};
use crate::platform::{Identity, ScanError, strip_deleted};

/// What `/proc/PID/stat` says about a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    pub name: String,
    pub state: char,
    pub ppid: u32,
    pub pgid: u32,
    pub flags: u32,
    pub start_time: u64,
}

impl Stat {
    /// Zombies hold nothing and cannot be signalled usefully: they count as gone.
    #[must_use]
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }

    /// Kernel threads (`PF_KTHREAD`) are never signalled.
    #[must_use]
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & 0x0020_0000 != 0
    }

    fn parse(bytes: &[u8]) -> Option<Stat> {
        let s = procfs_core::process::Stat::from_read(bytes).ok()?;
        Some(Stat {
            pid: u32::try_from(s.pid).ok()?,
            name: s.comm,
            state: s.state,
            ppid: u32::try_from(s.ppid).unwrap_or(0),
            pgid: u32::try_from(s.pgrp).unwrap_or(0),
            flags: s.flags,
            start_time: s.starttime,
        })
    }
}

impl From<Stat> for Process {
    fn from(s: Stat) -> Self {
        Process {
            pid: s.pid,
            ppid: s.ppid,
            pgid: s.pgid,
            start_time: s.start_time,
            name: s.name,
            cmdline: Vec::new(),
            exe: None,
            cwd: None,
            started_at: None,
            stopped: matches!(s.state, 'T' | 't'),
            uid: None,
        }
    }
}

/// An error that means the process went away while we looked at it.
fn is_gone(e: Errno) -> bool {
    matches!(e, Errno::NOENT | Errno::SRCH)
}

/// `/proc/PID`, opened once.
fn open_pid(pid: u32) -> Result<OwnedFd, Errno> {
    rustix::fs::open(format!("/proc/{pid}"), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
}

/// Reads a whole `/proc` file; `capacity` is what it usually needs, so that it takes one read and one more for EOF.
fn read_at(dir: &OwnedFd, name: &str, capacity: usize) -> Result<Vec<u8>, Errno> {
    let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut out = Vec::with_capacity(capacity);
    io::Read::read_to_end(&mut std::fs::File::from(fd), &mut out)
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
    Ok(out)
}

fn stat_at(dir: &OwnedFd) -> Result<Option<Stat>, Errno> {
    match read_at(dir, "stat", 1024) {
        Ok(bytes) => Ok(Stat::parse(&bytes)),
        Err(e) if is_gone(e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the stat of one process; `Ok(None)` when it no longer exists.
pub fn read_stat(pid: u32) -> io::Result<Option<Stat>> {
    match open_pid(pid) {
        Ok(dir) => stat_at(&dir).map_err(io::Error::from),
        Err(e) if is_gone(e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether `target` is still alive (a zombie is not) and the same process: start time and name.
#[must_use]
pub fn is_alive(target: &Identity) -> bool {
    matches!(read_stat(target.pid), Ok(Some(s))
        if s.start_time == target.start_time && s.name == target.name && !s.is_zombie())
}

/// Fills in the command line, exe and cwd of the processes `pids` of `table`.
pub fn describe<S: std::hash::BuildHasher>(table: &mut Table, pids: &HashSet<u32, S>) {
    for p in table.procs.values_mut().filter(|p| pids.contains(&p.pid)) {
        describe_one(p);
    }
}

/// One process as the table would show it (not described), if it is alive (a zombie is not).
#[must_use]
pub fn process(pid: u32) -> Option<Process> {
    read_stat(pid).ok().flatten().filter(|s| !s.is_zombie()).map(Process::from)
}

/// Fills in the command line, exe and cwd of a process.
fn describe_one(p: &mut Process) {
    let Ok(dir) = open_pid(p.pid) else { return };
    if p.cmdline.is_empty()
        && let Ok(raw) = read_at(&dir, "cmdline", 4096)
    {
        p.cmdline =
            raw.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
    }
    if p.exe.is_none() {
        p.exe = link_at(&dir, "exe").ok().map(strip_deleted);
    }
    if p.cwd.is_none() {
        p.cwd = link_at(&dir, "cwd").ok().map(strip_deleted);
    }
    p.started_at = boot_time().map(|boot| boot + p.start_time / rustix::param::clock_ticks_per_second());
}

/// When the machine booted, in seconds since the epoch (`btime` in `/proc/stat`); start times count from there.
fn boot_time() -> Option<u64> {
    static BOOT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()
    })
}

/// The current dir of `pid`.
#[must_use]
pub fn cwd(pid: u32) -> Option<PathBuf> {
    link_at(&open_pid(pid).ok()?, "cwd").ok().map(strip_deleted)
}

fn link_at(dir: impl AsFd, name: &str) -> Result<OsString, Errno> {
    rustix::fs::readlinkat(dir, name, Vec::new()).map(|c| OsString::from_vec(c.into_bytes()))
}

/// Reads the whole process table and, with `with_handles`, what every process that can be inspected holds.
/// The pids are split among the cores: each process costs a handful of syscalls, and there may be thousands.
pub fn snapshot(exclude: u32, with_handles: bool) -> Result<Snapshot, ScanError> {
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .map_err(ScanError::Proc)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let uid = rustix::process::geteuid().as_raw();
    Ok(Snapshot::in_parallel(&pids, uid, |part| snapshot_part(part, exclude, with_handles)))
}

/// What is held under `roots`. An fd's lock state: its owner is the open file description whose
/// `/proc/PID/fdinfo/N` lists the lock (`lock:` lines), a waiter is named by a `->` line of `/proc/locks`, and
/// anyone else only has the file open.
pub fn holders(snapshot: Snapshot, roots: &Roots) -> Scanned {
    let waiting = std::fs::read("/proc/locks").map(|t| waiters(&t)).unwrap_or_default();
    snapshot.holders(&Places::of(roots), |pid, fd| fd_hold(pid, fd, &waiting))
}

/// A lock waiter, as `/proc/locks` names it: pid, device and inode.
type Waiter = (u32, u32, u32, u64);

/// The `->` lines of `/proc/locks`: processes blocked waiting for a lock. procfs-core parses a line but does not
/// keep whether it waits, so the arrow is looked at here.
fn waiters(text: &[u8]) -> HashSet<Waiter> {
    text.split(|b| *b == b'\n')
        .filter(|line| line.split(|b| *b == b' ').filter(|c| !c.is_empty()).nth(1) == Some(b"->"))
        .filter_map(|line| procfs_core::Locks::from_read(line).ok()?.0.into_iter().next())
        .filter(is_flock)
        .filter_map(|l| Some((u32::try_from(l.pid?).ok()?, l.devmaj, l.devmin, l.inode)))
        .collect()
}

/// The files an `flock` is held on now (device and inode), from `/proc/locks`: what lsof's lock field is checked
/// against, since it prints POSIX and `flock` locks alike.
#[must_use]
pub fn flocked_files() -> Option<HashSet<FileId>> {
    let Ok(text) = std::fs::read("/proc/locks") else { return Some(HashSet::new()) };
    text.split(|b| *b == b'\n')
        .filter_map(|line| procfs_core::Locks::from_read(line).ok()?.0.into_iter().next())
        .filter(is_flock)
        .map(|l| FileId { dev: rustix::fs::makedev(l.devmaj, l.devmin), ino: l.inode })
        .collect::<HashSet<_>>()
        .into()
}

/// Whether a lock is an `flock`, the kind cargo takes. A POSIX (`fcntl`, `lockf`) or OFD lock on the same file never
/// conflicts with one on Linux: its holder blocks no cargo, and owns nothing this tool frees.
fn is_flock(lock: &procfs_core::Lock) -> bool {
    matches!(lock.lock_type, procfs_core::LockType::FLock)
}

/// Which of `locks` each process is blocked waiting for, from the `->` lines of `/proc/locks` (an unreadable
/// `/proc/locks` shows nobody waiting).
#[must_use]
pub fn waiting_for(locks: &[PathBuf]) -> Option<Vec<(u32, PathBuf)>> {
    use std::os::unix::fs::MetadataExt;
    let Ok(text) = std::fs::read("/proc/locks") else { return Some(Vec::new()) };
    let waiting = waiters(&text);
    let mut out = Vec::new();
    for lock in locks {
        let Ok(m) = std::fs::metadata(lock) else { continue };
        let (major, minor) = (rustix::fs::major(m.dev()), rustix::fs::minor(m.dev()));
        out.extend(waiting.iter().filter(|w| (w.1, w.2, w.3) == (major, minor, m.ino())).map(|w| (w.0, lock.clone())));
    }
    Some(out)
}

/// How the fd `fd` of `pid` stands towards a lock on its file.
fn fd_hold(pid: u32, fd: u32, waiting: &HashSet<Waiter>) -> Option<Hold> {
    if let Ok(info) = std::fs::read(format!("/proc/{pid}/fdinfo/{fd}")) {
        let locks = info.split(|b| *b == b'\n').filter_map(|line| line.strip_prefix(b"lock:"));
        let mut hold = None;
        for line in locks {
            let lock = procfs_core::Locks::from_read(line).ok()?.0.into_iter().next()?;
            if !is_flock(&lock) {
                continue;
            }
            hold = Some(match (lock.kind, hold) {
                (procfs_core::LockKind::Write, _) | (_, Some(Hold::Exclusive)) => Hold::Exclusive,
                _ => Hold::Shared,
            });
        }
        if hold.is_some() {
            return hold;
        }
    }
    if waiting.iter().any(|w| w.0 == pid) {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok()?;
        let id = (pid, rustix::fs::major(m.dev()), rustix::fs::minor(m.dev()), m.ino());
        return waiting.contains(&id).then_some(Hold::Waiting);
    }
    None
}

fn snapshot_part(pids: &[u32], exclude: u32, with_handles: bool) -> Snapshot {
    let mut out = Snapshot::new(rustix::process::geteuid().as_raw());
    for &pid in pids {
        let Ok(dir) = open_pid(pid) else { continue };
        let Ok(Some(stat)) = stat_at(&dir) else { continue };
        let skip = !with_handles || stat.is_zombie() || stat.is_kernel_thread() || pid == exclude;
        let mut p = Process::from(stat);
        // `/proc/PID` belongs to the process's user: who may be inspected, when lsof is the holder source.
        p.uid = rustix::fs::fstat(&dir).ok().map(|s| s.st_uid);
        let holds = if skip {
            Holds::NotRead
        } else {
            match raw_handles(&dir) {
                Ok(held) => Holds::Read(held),
                Err(Errno::ACCESS | Errno::PERM) => Holds::Denied,
                // Gone, a race with exit: the process holds nothing any more.
                Err(_) => Holds::Read(Vec::new()),
            }
        };
        out.add(p, holds);
    }
    out
}

/// Every absolute path one process holds. `EACCES`/`EPERM` means it could not be inspected at all.
fn raw_handles(dir: &OwnedFd) -> Result<Vec<Held>, Errno> {
    let mut out = Vec::new();
    // exe is the first read: its error tells whether this process can be inspected at all.
    for (name, kind) in [("exe", HandleKind::Exe), ("cwd", HandleKind::Cwd), ("root", HandleKind::Root)] {
        match link_at(dir, name) {
            Ok(link) => push_absolute(&mut out, kind, link, None),
            Err(Errno::NAMETOOLONG) => out.push(unnamed(dir, name, kind, None)),
            Err(e @ (Errno::ACCESS | Errno::PERM)) => return Err(e),
            // Processes without an exe (exiting ones) still have fds worth reading.
            Err(_) => {}
        }
    }
    match rustix::fs::openat(dir, "fd", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fds) => {
            let names: Vec<_> = rustix::fs::Dir::read_from(&fds)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| std::str::from_utf8(e.file_name().to_bytes()).ok()?.parse::<u32>().ok())
                .collect();
            for fd in names {
                match link_at(&fds, &fd.to_string()) {
                    Ok(link) => push_absolute(&mut out, HandleKind::Fd, link, Some(fd)),
                    Err(Errno::NAMETOOLONG) => out.push(unnamed(&fds, &fd.to_string(), HandleKind::Fd, Some(fd))),
                    Err(_) => {}
                }
            }
        }
        Err(e @ (Errno::ACCESS | Errno::PERM)) => return Err(e),
        Err(_) => {}
    }
    if let Ok(maps) = read_at(dir, "maps", 32 * 1024) {
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for path in map_paths(&maps).filter(|p| seen.insert(p)) {
            push_absolute(&mut out, HandleKind::Mmap, OsStr::from_bytes(path).to_os_string(), None);
        }
    }
    Ok(out)
}

/// Pipes, sockets, anonymous inodes and the like are not paths and never under a root.
fn push_absolute(out: &mut Vec<Held>, kind: HandleKind, link: OsString, fd: Option<u32>) {
    out.extend(Held::named(kind, strip_deleted(link), None, fd));
}

/// A handle whose path is longer than the kernel will spell out: the magic link `name` in `dir` is opened (which
/// needs no path) and, if it is a dir, walked up by `..` to the filesystem's root, so that whether it lies in a root
/// is told by identity.
fn unnamed(dir: impl AsFd, name: &str, kind: HandleKind, fd: Option<u32>) -> Held {
    const DEEPEST: usize = 1 << 16;
    let mut chain = Vec::new();
    let mut complete = false;
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    if let Ok(mut cur) = rustix::fs::openat(dir, name, flags, Mode::empty()) {
        while let Ok(st) = rustix::fs::fstat(&cur) {
            if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
                break;
            }
            let id = crate::platform::file_id(&st);
            // The filesystem's root is its own parent: the whole chain is known.
            if chain.last() == Some(&id) {
                complete = true;
                break;
            }
            if chain.len() > DEEPEST {
                break;
            }
            chain.push(id);
            let Ok(up) = rustix::fs::openat(&cur, "..", flags | OFlags::DIRECTORY, Mode::empty()) else { break };
            cur = up;
        }
    }
    let why = if chain.is_empty() {
        "holds a file whose path is too long to read"
    } else {
        "holds a dir whose path is too long to read"
    };
    Held { kind, place: Place::Unnamed { chain, complete, why }, fd }
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
    fn parses_names_with_parens_and_spaces() {
        let s = Stat::parse(b"42 (a) b (c)) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1234 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n").unwrap();
        assert_eq!((s.pid, s.name.as_str(), s.state, s.ppid, s.pgid), (42, "a) b (c)", 'S', 1, 42));
        assert_eq!(s.start_time, 1234);
        assert!(!s.is_kernel_thread());
        let k = Stat::parse(b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n").unwrap();
        assert!(k.is_kernel_thread());
    }

    #[test]
    fn reads_itself() {
        let me = read_stat(std::process::id()).unwrap().unwrap();
        let id = Identity::from(&Process::from(me.clone()));
        assert!(is_alive(&id));
        assert!(!is_alive(&Identity { start_time: id.start_time + 1, ..id.clone() }));
        assert!(!is_alive(&Identity { name: "someone-else".into(), ..id }));
        let dir = std::env::current_dir().unwrap();
        assert_eq!(cwd(me.pid), Some(dir.clone()));
        let h = raw_handles(&open_pid(me.pid).unwrap()).unwrap();
        assert!(h.iter().any(|h| h.kind == HandleKind::Cwd && h.place == Place::Named { path: dir.clone(), id: None }));
        let roots = Roots::new([dir.as_path()]);
        let scanned = holders(snapshot(0, true).unwrap(), &roots);
        assert!(scanned.found.iter().any(|f| f.process.pid == me.pid), "it holds its own cwd");
        assert!(scanned.table.procs.contains_key(&1));
    }

    #[test]
    fn finds_waiters_and_only_waiters() {
        let text = b"1: FLOCK  ADVISORY  WRITE 1817 fe:00:10010689 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 1900 fe:00:10010689 0 EOF\n\
                    2: POSIX  ADVISORY  READ 12 00:1a:77 0 EOF\n";
        assert_eq!(waiters(text), [(1900, 0xfe, 0, 10_010_689)].into());
    }

    #[test]
    fn owners_shared_holders_and_waiters_are_told_apart() {
        use std::os::fd::AsRawFd;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(".package-cache");
        std::fs::write(&path, "").unwrap();
        let me = std::process::id();
        let raw = |f: &std::fs::File| u32::try_from(f.as_raw_fd()).unwrap();
        let plain = std::fs::File::open(&path).unwrap();
        assert_eq!(fd_hold(me, raw(&plain), &HashSet::new()), None);
        rustix::fs::flock(&plain, rustix::fs::FlockOperation::LockShared).unwrap();
        assert_eq!(fd_hold(me, raw(&plain), &HashSet::new()), Some(Hold::Shared));
        drop(plain);
        let owner = std::fs::File::open(&path).unwrap();
        rustix::fs::flock(&owner, rustix::fs::FlockOperation::LockExclusive).unwrap();
        assert_eq!(fd_hold(me, raw(&owner), &HashSet::new()), Some(Hold::Exclusive));
        let opener = std::fs::File::open(&path).unwrap();
        assert_eq!(fd_hold(me, raw(&opener), &HashSet::new()), None, "the same file, another description");
    }

    #[test]
    fn map_paths_keep_spaces_and_skip_anonymous() {
        let maps = b"55d0-55d1 r--p 00000000 fe:00 123 /t/a b.rlib\n\
                     7ff0-7ff1 rw-p 00000000 00:00 0 \n\
                     7ff2-7ff3 r--p 00000000 00:00 0 [vdso]\n\
                     7ff4-7ff5 r-xp 00001000 fe:00 9 /t/x (deleted)\n";
        let paths: Vec<&[u8]> = map_paths(maps).collect();
        assert_eq!(paths, vec![&b"/t/a b.rlib"[..], &b"/t/x (deleted)"[..]]);
    }
}
