//! What processes hold, as each native scan reads it, and the one piece of code that turns it into holders.
//!
//! Linux's `/proc` scan and macOS's libproc scan differ only in how they read: each fills a [`Snapshot`] with
//! "pid P has fd F on this path (device and inode)", "its cwd is", "its exe is", "it maps", or "it cannot be
//! inspected". Everything after that, which handles lie under the dirs being cleaned, which are known only by their
//! device and inode, which lock state an fd has, who could not be inspected and why, is decided here, once, and is
//! tested on Linux with data recorded in either shape.

use std::path::PathBuf;

use crate::model::{FileId, Found, Handle, HandleKind, Hold, Process, Roots, Table, Uninspectable};

/// One thing a process holds, before anyone knows which dirs matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub kind: HandleKind,
    pub place: Place,
    /// The fd number, for an open file: its lock state is asked for only once it turns out to lie under a root.
    pub fd: Option<u32>,
}

/// Where a held file lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The absolute path the kernel names it by, and its device and inode where the scan reads them with the path
    /// (macOS's vnode info does; `/proc`'s links do not, and a `stat` per fd would cost more than the scan).
    Named { path: PathBuf, id: Option<FileId> },
    /// No path could be read (too long for the kernel to spell out, or a file with no name left): the identities
    /// of it and of each dir above it, nearest first, as far as they are known; `complete` when they reach the
    /// filesystem's root, so that a chain without any root in it proves the file lies outside every root.
    Unnamed { chain: Vec<FileId>, complete: bool, why: &'static str },
}

impl Held {
    /// A held path; what is not absolute (a pipe, a socket, an anonymous inode) is never under a root: `None`.
    #[must_use]
    pub fn named(kind: HandleKind, path: PathBuf, id: Option<FileId>, fd: Option<u32>) -> Option<Self> {
        path.is_absolute().then_some(Held { kind, place: Place::Named { path, id }, fd })
    }
}

/// What one process's inspection gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    /// Not looked at: the scan reads only the table, or the process is this one, a zombie or a kernel thread.
    NotRead,
    /// Everything it holds that has a path (possibly nothing).
    Read(Vec<Held>),
    /// The kernel refused to show what it holds (`EACCES`/`EPERM`).
    Denied,
}

/// The process table and what every inspected process holds, to be narrowed with [`Snapshot::holders`].
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub table: Table,
    held: Vec<(u32, Vec<Held>)>,
    denied: Vec<u32>,
    /// The effective uid of the scan: a denied process of this user (or any, for root) is a surprise worth naming.
    uid: u32,
}

impl Snapshot {
    /// The snapshot of `pids`, read by `read` in parts, one per core (at most 8: each process costs a few system
    /// calls per open file), merged; taken as effective user `uid`.
    #[must_use]
    pub fn in_parallel(pids: &[u32], uid: u32, read: impl Fn(&[u32]) -> Snapshot + Sync) -> Self {
        let workers = std::thread::available_parallelism().map_or(1, usize::from).min(8);
        let chunk = pids.len().div_ceil(workers).max(1);
        let parts: Vec<Snapshot> = std::thread::scope(|s| {
            let read = &read;
            let handles: Vec<_> = pids.chunks(chunk).map(|part| s.spawn(move || read(part))).collect();
            handles.into_iter().map(|h| h.join().expect("a scan thread panicked")).collect()
        });
        let mut out = Snapshot::new(uid);
        for part in parts {
            out.merge(part);
        }
        out
    }

    /// An empty snapshot taken as effective user `uid`.
    #[must_use]
    pub fn new(uid: u32) -> Self {
        Snapshot { uid, ..Snapshot::default() }
    }

    /// Adds a process and what its inspection gave.
    pub fn add(&mut self, process: Process, holds: Holds) {
        match holds {
            Holds::NotRead => {}
            Holds::Read(held) if held.is_empty() => {}
            Holds::Read(held) => self.held.push((process.pid, held)),
            Holds::Denied => self.denied.push(process.pid),
        }
        self.table.procs.insert(process.pid, process);
    }

    /// Adds what another part of the same scan read (scans split the pids among threads).
    pub fn merge(&mut self, other: Snapshot) {
        self.table.procs.extend(other.table.procs);
        self.held.extend(other.held);
        self.denied.extend(other.denied);
    }

    /// What is held under `roots`, with the table and who could not be inspected. `lock` tells how an open file
    /// (pid, fd) stands towards a lock on it, where the platform can see that; it is asked only for files under a
    /// root.
    pub fn holders(self, roots: &Places, mut lock: impl FnMut(u32, u32) -> Option<Hold>) -> Scanned {
        let name = |pid: u32| self.table.procs.get(&pid).map(|p| p.name.clone()).unwrap_or_default();
        let mut uninspectable = Uninspectable::default();
        for pid in &self.denied {
            let own = self.uid == 0 || self.table.procs.get(pid).and_then(|p| p.uid) == Some(self.uid);
            if own {
                uninspectable.own.push((*pid, name(*pid)));
            } else {
                uninspectable.other_users += 1;
            }
        }
        let mut found = Vec::new();
        for (pid, held) in self.held {
            let mut handles = Vec::new();
            for h in held {
                let path = match h.place {
                    Place::Named { path, id } => match roots.place(&path, id) {
                        Some(path) => path,
                        None => continue,
                    },
                    Place::Unnamed { chain, complete, why } => match roots.by_id(&chain) {
                        Some(root) => root.join("…"),
                        None if complete => continue,
                        None => {
                            uninspectable.unnamed.push((pid, name(pid), why.into()));
                            continue;
                        }
                    },
                };
                let hold = h.fd.and_then(|fd| lock(pid, fd));
                let kind = if matches!(hold, Some(Hold::Exclusive | Hold::Shared)) { HandleKind::Lock } else { h.kind };
                handles.push(Handle { kind, path, hold });
            }
            if let (false, Some(p)) = (handles.is_empty(), self.table.procs.get(&pid)) {
                found.push(Found { process: p.clone(), handles });
            }
        }
        // One process named twice (a file too long to name, held by several fds) is said once.
        uninspectable.unnamed.dedup();
        Scanned { found, table: self.table, uninspectable }
    }
}

/// What [`Snapshot::holders`] found.
#[derive(Debug)]
pub struct Scanned {
    pub found: Vec<Found>,
    pub table: Table,
    pub uninspectable: Uninspectable,
}

/// The dirs being scanned as a held file's place is compared with them: under every spelling that matters, and
/// by identity.
#[derive(Debug, Clone)]
pub struct Places {
    roots: Roots,
    ids: Vec<(FileId, PathBuf)>,
}

impl Places {
    /// `roots` as given, plus each one's identity and its path as the kernel spells it now. The kernel names a
    /// held file by the same call that spells an open dir (`/proc/self/fd` on Linux, `F_GETPATH` on macOS, where
    /// `/var` is `/private/var` and a firmlink has one spelling), so a file under a root is matched whichever
    /// spelling the user gave; the root itself is also recognised by device and inode, whatever its spelling.
    #[must_use]
    pub fn of(roots: &Roots) -> Self {
        let mut spelled = Vec::new();
        let mut ids = Vec::new();
        for root in roots.paths() {
            let (id, spelling) = crate::platform::root_spelling(root);
            ids.extend(id.map(|id| (id, root.clone())));
            // A spelling already among the roots would only be compared twice for every handle of every process.
            spelled.extend(spelling.filter(|p| !roots.paths().contains(p) && !spelled.contains(p)));
        }
        Places { roots: Roots::exact(roots.paths().iter().cloned().chain(spelled)), ids }
    }

    /// Exactly these paths and identities, for tests and recorded data.
    #[must_use]
    pub fn new(roots: Roots, ids: Vec<(FileId, PathBuf)>) -> Self {
        Places { roots, ids }
    }

    /// Where a file named `path` (with identity `id`, if known) lies among the roots: its own path when it lies
    /// under one by name, the root's path when it is a root known only by identity, `None` when it is outside.
    fn place(&self, path: &std::path::Path, id: Option<FileId>) -> Option<PathBuf> {
        if self.roots.contains(path) {
            return Some(path.to_path_buf());
        }
        let id = id?;
        self.ids.iter().find(|(root, _)| *root == id).map(|(_, p)| p.clone())
    }

    /// The first root whose identity is in `chain`.
    fn by_id(&self, chain: &[FileId]) -> Option<&PathBuf> {
        self.ids.iter().find(|(id, _)| chain.contains(id)).map(|(_, p)| p)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    use std::path::Path;

    use super::*;

    fn process(pid: u32, uid: u32, name: &str) -> Process {
        Process {
            pid,
            ppid: 1,
            pgid: pid,
            start_time: 1_700_000_000_123_456,
            name: name.into(),
            cmdline: Vec::new(),
            exe: None,
            cwd: None,
            started_at: None,
            stopped: false,
            uid: Some(uid),
        }
    }

    fn named(kind: HandleKind, path: &str, id: Option<(u64, u64)>, fd: Option<u32>) -> Held {
        let id = id.map(|(dev, ino)| FileId { dev, ino });
        Held::named(kind, PathBuf::from(path), id, fd).unwrap()
    }

    // Unix-shaped data: such paths are not absolute on Windows.
    #[cfg(unix)]
    const TARGET: &str = "/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T/w/target";
    // Unix-shaped data: such paths are not absolute on Windows.
    #[cfg(unix)]
    const REAL: &str = "/private/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T/w/target";
    // Unix-shaped data: such paths are not absolute on Windows.
    #[cfg(unix)]
    /// The target dir's device and inode, as `vinfo_stat` reports them (an APFS data volume).
    const TARGET_ID: FileId = FileId { dev: 0x0100_0010, ino: 4_242 };

    // Unix-shaped data: such paths are not absolute on Windows.
    #[cfg(unix)]
    /// The roots as `Places::of` makes them on a Mac: the spelling given, the kernel's spelling, the identity.
    fn mac_places() -> Places {
        Places::new(Roots::exact([PathBuf::from(TARGET), PathBuf::from(REAL)]), vec![(TARGET_ID, TARGET.into())])
    }

    // Unix-shaped data: such paths are not absolute on Windows.
    #[cfg(unix)]
    /// What libproc gives for a `cargo build` (recorded shape: `PROC_PIDLISTFDS` with vnode paths, the cwd from
    /// `PROC_PIDVNODEPATHINFO`, the exe from `proc_pidpath`, mapped files from `PROC_PIDREGIONPATHINFO`), a shell
    /// whose cwd is the target dir under another spelling, an editor holding nothing there, and a process of
    /// another user that denies inspection.
    fn mac_snapshot(uid: u32) -> Snapshot {
        let mut s = Snapshot::new(uid);
        s.add(
            process(812, 501, "cargo"),
            Holds::Read(vec![
                named(
                    HandleKind::Exe,
                    "/Users/me/.rustup/toolchains/stable-aarch64-apple-darwin/bin/cargo",
                    None,
                    None,
                ),
                named(HandleKind::Cwd, "/Users/me/w", Some((0x0100_0010, 17)), None),
                named(HandleKind::Fd, "/dev/ttys001", Some((0x1000_0001, 601)), Some(1)),
                named(HandleKind::Fd, &format!("{REAL}/debug/.cargo-lock"), Some((0x0100_0010, 4_300)), Some(3)),
                named(HandleKind::Fd, "/Users/me/.cargo/registry/.package-cache", Some((0x0100_0010, 90)), Some(4)),
                named(HandleKind::Mmap, "/usr/lib/dyld", Some((0x0100_0004, 1_152_921_500_311_880_000)), None),
                named(HandleKind::Mmap, &format!("{REAL}/debug/deps/libserde_derive-1a2b3c.dylib"), None, None),
            ]),
        );
        s.add(
            process(900, 501, "zsh"),
            Holds::Read(vec![
                named(HandleKind::Exe, "/bin/zsh", None, None),
                // Through the data volume's firmlinked spelling: the same dir by device and inode.
                named(HandleKind::Cwd, &format!("/System/Volumes/Data{REAL}"), Some((0x0100_0010, 4_242)), None),
            ]),
        );
        s.add(
            process(901, 501, "vim"),
            Holds::Read(vec![named(HandleKind::Fd, "/Users/me/w/src/main.rs", Some((0x0100_0010, 77)), Some(5))]),
        );
        s.add(process(88, 0, "mds_stores"), Holds::Denied);
        s.add(process(902, 501, "Finder"), Holds::Denied);
        s.add(process(903, 501, "zombie"), Holds::NotRead);
        s
    }

    #[cfg(unix)]
    #[test]
    fn macos_shaped_data_gives_the_holders_under_the_kernels_spelling_and_by_identity() {
        let mut asked = Vec::new();
        let scanned = mac_snapshot(501).holders(&mac_places(), |pid, fd| {
            asked.push((pid, fd));
            None
        });
        let got: Vec<(u32, Vec<(HandleKind, &Path)>)> = scanned
            .found
            .iter()
            .map(|f| (f.process.pid, f.handles.iter().map(|h| (h.kind, h.path.as_path())).collect()))
            .collect();
        let lock = format!("{REAL}/debug/.cargo-lock");
        let dylib = format!("{REAL}/debug/deps/libserde_derive-1a2b3c.dylib");
        assert_eq!(
            got,
            vec![
                (812, vec![(HandleKind::Fd, Path::new(&lock)), (HandleKind::Mmap, Path::new(&dylib))]),
                (900, vec![(HandleKind::Cwd, Path::new(TARGET))]),
            ]
        );
        assert_eq!(asked, [(812, 3)], "only the fd under a root is asked for its lock state");
        assert_eq!(scanned.table.procs.len(), 6, "the table keeps every process, inspected or not");
        let u = &scanned.uninspectable;
        assert_eq!((u.other_users, &u.own[..]), (1, &[(902, "Finder".to_string())][..]));
        assert!(u.unnamed.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn root_counts_every_denial_as_a_surprise() {
        let u = mac_snapshot(0).holders(&mac_places(), |_, _| None).uninspectable;
        assert_eq!(u.other_users, 0);
        let mut own = u.own;
        own.sort_unstable();
        assert_eq!(own, [(88, "mds_stores".to_string()), (902, "Finder".to_string())]);
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_the_platform_sees_makes_the_fd_a_lock() {
        let found = mac_snapshot(501).holders(&mac_places(), |_, _| Some(Hold::Exclusive)).found;
        let lock = &found[0].handles[0];
        assert_eq!((lock.kind, lock.hold), (HandleKind::Lock, Some(Hold::Exclusive)));
        let waiting = mac_snapshot(501).holders(&mac_places(), |_, _| Some(Hold::Waiting)).found;
        assert_eq!(waiting[0].handles[0].kind, HandleKind::Fd, "a waiter only has the file open");
    }

    #[cfg(unix)]
    #[test]
    fn what_has_no_name_is_placed_by_identity_or_reported() {
        let mut s = Snapshot::new(501);
        let unnamed = |chain: &[(u64, u64)], complete| Held {
            kind: HandleKind::Cwd,
            place: Place::Unnamed {
                chain: chain.iter().map(|&(dev, ino)| FileId { dev, ino }).collect(),
                complete,
                why: "holds a file whose path cannot be read",
            },
            fd: None,
        };
        // A dir deep in the target dir, walked up to the filesystem's root.
        s.add(
            process(10, 501, "deep"),
            Holds::Read(vec![unnamed(&[(1, 9), (1, 8), (0x0100_0010, 4_242), (1, 2)], true)]),
        );
        // A dir elsewhere, walked up just as far: outside every root, for sure.
        s.add(process(11, 501, "elsewhere"), Holds::Read(vec![unnamed(&[(1, 5), (1, 2)], true)]));
        // A file with no name and nothing above it known: it may lie in a root.
        s.add(process(12, 501, "unsure"), Holds::Read(vec![unnamed(&[(1, 6)], false), unnamed(&[(1, 7)], false)]));
        let scanned = s.holders(&mac_places(), |_, _| None);
        let got: Vec<(u32, PathBuf)> =
            scanned.found.iter().map(|f| (f.process.pid, f.handles[0].path.clone())).collect();
        assert_eq!(got, [(10, Path::new(TARGET).join("…"))]);
        let why = "holds a file whose path cannot be read".to_string();
        assert_eq!(scanned.uninspectable.unnamed, [(12, "unsure".into(), why)], "named once");
    }

    #[cfg(unix)]
    #[test]
    fn linux_shaped_data_is_matched_by_path_alone() {
        let mut s = Snapshot::new(1000);
        s.add(
            process(4242, 1000, "rustc"),
            Holds::Read(vec![
                named(HandleKind::Exe, "/home/me/.rustup/toolchains/stable/bin/rustc", None, None),
                named(HandleKind::Fd, "/home/me/w/target/debug/deps/libfoo.rmeta", None, Some(7)),
                named(HandleKind::Mmap, "/home/me/w/target/debug/deps/libmacro.so", None, None),
            ]),
        );
        let places = Places::new(Roots::exact([PathBuf::from("/home/me/w/target")]), Vec::new());
        let found = s.holders(&places, |_, _| None).found;
        let kinds: Vec<HandleKind> = found[0].handles.iter().map(|h| h.kind).collect();
        assert_eq!(kinds, [HandleKind::Fd, HandleKind::Mmap]);
        assert!(Held::named(HandleKind::Fd, PathBuf::from("pipe:[123]"), None, Some(0)).is_none());
    }

    #[cfg(unix)]
    #[test]
    fn places_of_a_real_dir_know_its_identity_and_spelling() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("target");
        std::fs::create_dir(&dir).unwrap();
        // A spelling through a symlinked parent, as `/var` is on a Mac.
        let link = tmp.path().join("var");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        let given = link.join("target");
        let places = Places::of(&Roots::exact([given.clone()]));
        let real = dir.canonicalize().unwrap();
        assert!(places.roots.contains(&real.join("debug/x")), "{places:?}");
        let id = crate::platform::file_id(&rustix::fs::stat(&dir).unwrap());
        assert_eq!(places.place(Path::new("/elsewhere"), Some(id)), Some(given));
        let once = Places::of(&Roots::exact([real.clone()]));
        assert_eq!(once.roots.paths(), [real], "a root already in the kernel's spelling is compared once");
    }

    /// What the Windows scan reads: the handle table's names (true case, `\\?\` taken off), a cwd as a dir handle,
    /// images from the module snapshot, and a process that could not be opened. The roots are given in another
    /// case, as a user types them; NTFS compares names case-insensitively, and so does the match.
    #[cfg(windows)]
    #[test]
    fn windows_shaped_data_is_matched_case_insensitively() {
        let mut snap = Snapshot::new(u32::MAX);
        let h = |kind, p: &str| named(kind, p, None, None);
        snap.add(
            process(10, 7, "cargo.exe"),
            Holds::Read(vec![
                h(HandleKind::Fd, r"C:\W\Target\debug\.cargo-lock"),
                h(HandleKind::Fd, r"C:\W\Target2\x"),
                h(HandleKind::Cwd, r"C:\W"),
            ]),
        );
        snap.add(
            process(11, 7, "app.exe"),
            Holds::Read(vec![
                h(HandleKind::Exe, r"C:\W\Target\debug\app.exe"),
                h(HandleKind::Mmap, r"C:\W\Target\debug\deps\serde_derive-1.dll"),
                h(HandleKind::Mmap, r"C:\Windows\System32\kernel32.dll"),
            ]),
        );
        snap.add(process(12, 7, "editor.exe"), Holds::Read(vec![h(HandleKind::Cwd, r"C:\W\target\debug")]));
        snap.add(process(13, 0, "svchost.exe"), Holds::Denied);
        let places = Places::new(Roots::exact([PathBuf::from(r"c:\w\target")]), Vec::new());
        let Scanned { found, uninspectable, .. } = snap.holders(&places, |_, _| None);
        let mut got: Vec<(u32, Vec<(HandleKind, String)>)> = found
            .iter()
            .map(|f| (f.process.pid, f.handles.iter().map(|h| (h.kind, h.path.display().to_string())).collect()))
            .collect();
        got.sort_by_key(|(pid, _)| *pid);
        assert_eq!(
            got,
            vec![
                (10, vec![(HandleKind::Fd, r"C:\W\Target\debug\.cargo-lock".into())]),
                (
                    11,
                    vec![
                        (HandleKind::Exe, r"C:\W\Target\debug\app.exe".into()),
                        (HandleKind::Mmap, r"C:\W\Target\debug\deps\serde_derive-1.dll".into()),
                    ]
                ),
                (12, vec![(HandleKind::Cwd, r"C:\W\target\debug".into())]),
            ]
        );
        assert_eq!(uninspectable.other_users, 1, "a process that cannot be opened is counted, not named");
    }
}
