//! Deleting a trash tree fast and safely.
//!
//! Every operation is relative to an open directory fd (`openat`/`unlinkat` with `O_NOFOLLOW`), so no path is
//! trusted twice and no symlink is ever followed — the class of bug behind CVE-2022-21658. Work is split into
//! tasks (list a dir, unlink a chunk of its files) on a bounded pool; a dir is removed from its parent when its
//! last task ends. It never crosses into another filesystem, makes read-only dirs writable, handles names that are
//! not UTF-8 and trees deeper than `PATH_MAX`, and tolerates entries that vanish underneath it.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::interrupt::Interrupt;
use crate::layout::TRASH_PREFIX;
use crate::model::Removed;
use crate::platform::{Files, Mounts, OpenDirError};

/// How many names one unlink task takes, so that one huge directory is shared among all workers.
const CHUNK: usize = 256;

/// Counters that the reporter reads while the purge runs.
#[derive(Debug, Default)]
pub struct Progress {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
}

/// A removal that failed, with the path and what the user can do about it.
#[derive(Debug, thiserror::Error)]
#[error("failed to {action} {}: {source}; {}", path.display(), hint(source))]
pub struct RemoveError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl RemoveError {
    pub fn new(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RemoveError { action, path: path.into(), source }
    }
}

/// The usual way out of a failed removal. EPERM, unlike EACCES, survives the owner's own chmod: an immutable or
/// append-only file, usually.
fn hint(e: &std::io::Error) -> &'static str {
    match (e.raw_os_error(), e.kind()) {
        (Some(code), _) if code == Errno::PERM.raw_os_error() => {
            "it may be immutable or append-only (`lsattr` shows an `i` or `a`): clear that with `chattr -i -a` as \
             root, or it belongs to another user in a sticky dir; then run cargo safeclean again"
        }
        (_, std::io::ErrorKind::PermissionDenied) => "check the owner and permissions, or run as the owner",
        _ => "fix the cause and run cargo safeclean again; it finishes what this run left",
    }
}

/// Why the old tree is not all gone (exit 5).
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error(transparent)]
    Remove(#[from] RemoveError),
    #[error(
        "left {} inside the old tree mounted and untouched: {}; the rest was removed. Release {} with `umount PATH` \
         (as root) and run cargo safeclean again: it removes what is left",
        if mounts.len() == 1 { "a mount point" } else { "mount points" },
        mounts.iter().map(|m| m.display().to_string()).collect::<Vec<_>>().join(", "),
        if mounts.len() == 1 { "it" } else { "them" }
    )]
    MountsLeft { mounts: Vec<PathBuf> },
}

/// What a purge could not do.
#[derive(Debug, Default)]
pub struct Problems {
    /// Mount points found inside the trash and left alone.
    pub skipped_mounts: Vec<PathBuf>,
    /// Entries that could not be removed, with why.
    pub errors: Vec<(PathBuf, std::io::Error)>,
    /// Trash dirs another purge is deleting, left to it.
    pub busy: Vec<PathBuf>,
}

/// The purge's result.
#[derive(Debug, Default)]
pub struct Purged {
    pub removed: Removed,
    pub problems: Problems,
    pub interrupted: bool,
}

/// The number of workers for `cores` cores. Unlinks wait on the disk (one discard request per freed file on a
/// disk mounted with `discard`), not on the CPU, so more in flight than cores pays: on 2 cores, 300,000 files took
/// 20.8 s with 2 workers, 11.4 s with 8, 8.8 s with 16 and 9.4 s with 32 (BENCHMARKS.md).
#[must_use]
pub fn default_workers(cores: usize) -> usize {
    (cores * 8).clamp(8, 64)
}

/// How to purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub workers: usize,
    /// How the tree is walked: which implementation recognises mount points and makes dirs accessible.
    pub files: Files,
    /// What to do with a trash dir another purge is deleting.
    pub busy: Busy,
}

/// What to do with a trash dir whose lock another purge holds (a detached deleter): two never work on one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// Leave it to that purge (a run the user waits for).
    Skip,
    /// Wait for that purge to end, then finish what it left (a detached deleter, which nobody waits for).
    Wait,
}

/// Removes each of `roots` (trash dirs, or files; a symlink is removed, not followed) and everything below it,
/// except mount points, which are left mounted and untouched.
pub fn purge(roots: &[PathBuf], settings: Settings, progress: &Progress, interrupt: &Interrupt) -> Purged {
    Purge::lock(roots, settings).run(progress, interrupt)
}

/// A purge whose roots are open and locked, its workers not started yet.
pub struct Purge {
    pool: Pool,
    workers: usize,
    start: Instant,
}

impl Purge {
    /// Opens and locks each root, before any worker starts: from here on no other purge works on them.
    #[must_use]
    pub fn lock(roots: &[PathBuf], settings: Settings) -> Self {
        raise_fd_limit();
        let probe = roots.first().and_then(|r| r.parent()).unwrap_or(Path::new("/"));
        let pool = Pool {
            queue: Mutex::new((Vec::new(), 0)),
            ready: Condvar::new(),
            problems: Mutex::default(),
            mounts: settings.files.mounts(probe),
            busy: settings.busy,
        };
        for root in roots {
            pool.start_root(root);
        }
        Purge { pool, workers: settings.workers, start: Instant::now() }
    }

    /// Deletes what was locked.
    pub fn run(self, progress: &Progress, interrupt: &Interrupt) -> Purged {
        let pool = self.pool;
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..self.workers.max(1) {
                s.spawn(|| pool.work(progress, interrupt, &stop));
            }
        });
        Purged {
            removed: Removed {
                files: progress.files.load(Ordering::Relaxed),
                bytes: progress.bytes.load(Ordering::Relaxed),
                duration_ms: u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX),
            },
            problems: pool.problems.into_inner().unwrap_or_default(),
            interrupted: stop.load(Ordering::Relaxed),
        }
    }
}

/// An open directory being emptied.
struct Dir {
    fd: OwnedFd,
    path: PathBuf,
    /// Where to remove this one from when it is empty; `None` for a dir we only empty (a root's parent, held only
    /// while its root is opened).
    parent: Option<Parent>,
    /// Tasks that still refer to this dir, plus one for its own listing.
    pending: AtomicUsize,
    /// A mount point or an error below: this dir cannot become empty, so do not try to remove it.
    blocked: AtomicBool,
    made_writable: AtomicBool,
}

/// Where an empty dir is removed from.
enum Parent {
    /// A dir of this purge.
    Dir(Arc<Dir>, CString),
    /// A root's parent, opened again by path once the root is empty: while it works the purge holds nothing outside
    /// its roots (a detached deleter holding the target dir would look like one of its holders). The root's name is
    /// this tool's, unique, and only an empty dir is removed: if the parent was swapped meanwhile, the root moved
    /// with it, and what is left is the next purge's.
    Path(PathBuf, CString),
}

/// What [`Pool::open_child`] made of a name.
enum Opened {
    /// An open (and, for trash, locked) directory.
    Dir(Arc<Dir>),
    /// A trash dir another purge holds, not waited for yet.
    Busy,
    /// Nothing left to do with it.
    Done,
}

enum Task {
    /// Open `name` in `parent` and list it.
    Open { parent: Arc<Dir>, name: CString },
    /// List a dir already open (a root).
    List { dir: Arc<Dir> },
    /// Unlink these non-directory entries of `dir`.
    Unlink { dir: Arc<Dir>, names: Vec<CString> },
}

struct Pool {
    /// The task stack (LIFO keeps the number of open dirs near the tree depth) and the count of tasks in flight.
    queue: Mutex<(Vec<Task>, usize)>,
    ready: Condvar,
    problems: Mutex<Problems>,
    mounts: Mounts,
    busy: Busy,
}

impl Pool {
    fn push(&self, task: Task) {
        let mut q = self.queue.lock().expect("purge queue poisoned");
        q.0.push(task);
        q.1 += 1;
        drop(q);
        self.ready.notify_one();
    }

    fn error(&self, path: PathBuf, e: impl Into<std::io::Error>) {
        self.problems.lock().expect("purge problems poisoned").errors.push((path, e.into()));
    }

    fn start_root(&self, root: &Path) {
        let (Some(parent), Some(name)) = (root.parent(), root.file_name()) else {
            self.error(root.to_path_buf(), std::io::Error::other("not a removable path"));
            return;
        };
        let fd = match rustix::fs::open(parent, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return,
            Err(e) => return self.error(parent.to_path_buf(), e),
        };
        let holder = Arc::new(Dir {
            fd,
            path: parent.to_path_buf(),
            parent: None,
            pending: AtomicUsize::new(1),
            blocked: AtomicBool::new(false),
            made_writable: AtomicBool::new(false),
        });
        // Opened (and locked) here, before any worker runs; listed by a worker. A root another purge holds is
        // waited for by a worker, later, if this purge waits at all.
        match self.open_child(&holder, &cstring(name), &Progress::default(), false) {
            Opened::Dir(mut dir) => {
                if let Some(d) = Arc::get_mut(&mut dir) {
                    d.parent = Some(Parent::Path(parent.to_path_buf(), cstring(name)));
                }
                self.push(Task::List { dir });
            }
            Opened::Busy => self.push(Task::Open { parent: holder, name: cstring(name) }),
            Opened::Done => {}
        }
    }

    fn work(&self, progress: &Progress, interrupt: &Interrupt, stop: &AtomicBool) {
        loop {
            let task = {
                let mut q = self.queue.lock().expect("purge queue poisoned");
                loop {
                    if interrupt.is_set() || stop.load(Ordering::Relaxed) {
                        stop.store(true, Ordering::Relaxed);
                        self.ready.notify_all();
                        return;
                    }
                    if let Some(t) = q.0.pop() {
                        break t;
                    }
                    if q.1 == 0 {
                        self.ready.notify_all();
                        return;
                    }
                    q = self.ready.wait(q).expect("purge queue poisoned");
                }
            };
            match task {
                Task::Open { parent, name } => self.open_and_list(&parent, &name, progress),
                Task::List { dir } => {
                    self.list(&dir, progress);
                    self.release(&dir);
                }
                Task::Unlink { dir, names } => {
                    for name in &names {
                        self.unlink(&dir, name, progress);
                    }
                    self.release(&dir);
                }
            }
            let mut q = self.queue.lock().expect("purge queue poisoned");
            q.1 -= 1;
            if q.1 == 0 {
                self.ready.notify_all();
            }
        }
    }

    fn open_and_list(&self, parent: &Arc<Dir>, name: &CStr, progress: &Progress) {
        if let Opened::Dir(dir) = self.open_child(parent, name, progress, true) {
            self.list(&dir, progress);
            self.release(&dir);
        }
    }

    /// Opens the directory `name` in `parent`, holding one reference to `parent` until it is released: by the
    /// child, which then holds it; by a file, a mount, a busy trash dir or an error, dealt with here; or, for
    /// [`Opened::Busy`], by the caller. `may_block`: wait here for a trash dir another purge holds.
    fn open_child(&self, parent: &Arc<Dir>, name: &CStr, progress: &Progress, may_block: bool) -> Opened {
        let path = parent.path.join(OsStr::from_bytes(name.to_bytes()));
        let mut opened = self.mounts.open_dir(&parent.fd, name);
        if matches!(opened, Err(OpenDirError::Errno(Errno::ACCESS | Errno::PERM)))
            && self.mounts.chmod_dir_rwx(&parent.fd, name).is_ok()
        {
            opened = self.mounts.open_dir(&parent.fd, name);
        }
        let fd = match opened {
            Ok(fd) => fd,
            Err(OpenDirError::Mount) => {
                self.skip_mount(parent, path);
                self.release(parent);
                return Opened::Done;
            }
            Err(OpenDirError::Errno(Errno::NOENT)) => {
                self.release(parent);
                return Opened::Done;
            }
            // It turned out not to be a directory (a symlink, a file, or swapped under us): unlink it as a file.
            Err(OpenDirError::Errno(Errno::NOTDIR | Errno::LOOP)) => {
                self.unlink(parent, name, progress);
                self.release(parent);
                return Opened::Done;
            }
            Err(OpenDirError::Errno(e)) => {
                self.error(path, e);
                parent.blocked.store(true, Ordering::Relaxed);
                self.release(parent);
                return Opened::Done;
            }
        };
        // Another purge's trash (a detached deleter's): it holds the lock as long as it works on it.
        if name.to_bytes().starts_with(TRASH_PREFIX.as_bytes()) {
            match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Err(Errno::WOULDBLOCK) if self.busy == Busy::Wait && !may_block => return Opened::Busy,
                Err(Errno::WOULDBLOCK) if self.busy == Busy::Wait => {
                    let _ = rustix::fs::flock(&fd, FlockOperation::LockExclusive);
                }
                Err(Errno::WOULDBLOCK) => {
                    self.problems.lock().expect("purge problems poisoned").busy.push(path);
                    parent.blocked.store(true, Ordering::Relaxed);
                    self.release(parent);
                    return Opened::Done;
                }
                // Locked; or a filesystem without locks: nothing to respect, nothing to hold.
                Ok(()) | Err(_) => {}
            }
        }
        Opened::Dir(Arc::new(Dir {
            fd,
            path,
            parent: Some(Parent::Dir(Arc::clone(parent), name.to_owned())),
            pending: AtomicUsize::new(1),
            blocked: AtomicBool::new(false),
            made_writable: AtomicBool::new(false),
        }))
    }

    /// A mount point inside the trash: it stays mounted and untouched, and so do the dirs above it.
    fn skip_mount(&self, parent: &Dir, path: PathBuf) {
        self.problems.lock().expect("purge problems poisoned").skipped_mounts.push(path);
        parent.blocked.store(true, Ordering::Relaxed);
    }

    fn list(&self, dir: &Arc<Dir>, progress: &Progress) {
        let listing = match rustix::fs::Dir::read_from(&dir.fd) {
            Ok(d) => d,
            Err(e) => {
                self.error(dir.path.clone(), e);
                dir.blocked.store(true, Ordering::Relaxed);
                return;
            }
        };
        let mut files = Vec::new();
        for entry in listing {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.error(dir.path.clone(), e);
                    dir.blocked.store(true, Ordering::Relaxed);
                    break;
                }
            };
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            match entry.file_type() {
                FileType::Directory => {
                    dir.pending.fetch_add(1, Ordering::AcqRel);
                    self.push(Task::Open { parent: Arc::clone(dir), name: name.to_owned() });
                }
                _ => files.push(name.to_owned()),
            }
            if files.len() == CHUNK {
                dir.pending.fetch_add(1, Ordering::AcqRel);
                self.push(Task::Unlink { dir: Arc::clone(dir), names: std::mem::take(&mut files) });
            }
        }
        for name in &files {
            self.unlink(dir, name, progress);
        }
    }

    /// Unlinks one non-directory entry (or, if it turns out to be a directory, queues it).
    fn unlink(&self, dir: &Arc<Dir>, name: &CStr, progress: &Progress) {
        let stat = rustix::fs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW);
        if let Ok(st) = &stat
            && FileType::from_raw_mode(st.st_mode) == FileType::Directory
        {
            dir.pending.fetch_add(1, Ordering::AcqRel);
            return self.push(Task::Open { parent: Arc::clone(dir), name: name.to_owned() });
        }
        let mut result = rustix::fs::unlinkat(&dir.fd, name, AtFlags::empty());
        if matches!(result, Err(Errno::ACCESS | Errno::PERM)) && make_writable(dir) {
            result = rustix::fs::unlinkat(&dir.fd, name, AtFlags::empty());
        }
        match result {
            Ok(()) => {
                progress.files.fetch_add(1, Ordering::Relaxed);
                let size = stat.map_or(0, |s| u64::try_from(s.st_size).unwrap_or(0));
                progress.bytes.fetch_add(size, Ordering::Relaxed);
            }
            Err(Errno::NOENT) => {}
            Err(Errno::ISDIR) => {
                dir.pending.fetch_add(1, Ordering::AcqRel);
                self.push(Task::Open { parent: Arc::clone(dir), name: name.to_owned() });
            }
            // A bind-mounted file answers EBUSY: it is a mount, not a failure.
            Err(Errno::BUSY) if self.mounts.is_mount_at(&dir.fd, name) => {
                self.skip_mount(dir, dir.path.join(OsStr::from_bytes(name.to_bytes())));
            }
            Err(e) => {
                self.error(dir.path.join(OsStr::from_bytes(name.to_bytes())), e);
                dir.blocked.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Drops one reference to `dir`; the last one removes it from its parent, and so on upwards.
    fn release(&self, dir: &Arc<Dir>) {
        if dir.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let (parent, name) = match &dir.parent {
            None => return,
            Some(Parent::Path(path, name)) => {
                if !dir.blocked.load(Ordering::Relaxed) {
                    // Opened as at the start: a target dir may be a symlink the guard accepted.
                    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
                    let removed = rustix::fs::open(path, flags, Mode::empty())
                        .and_then(|fd| rustix::fs::unlinkat(&fd, name.as_c_str(), AtFlags::REMOVEDIR));
                    match removed {
                        Ok(()) | Err(Errno::NOENT) => {}
                        Err(e) => self.error(dir.path.clone(), e),
                    }
                }
                return;
            }
            Some(Parent::Dir(parent, name)) => (parent, name),
        };
        if dir.blocked.load(Ordering::Relaxed) {
            parent.blocked.store(true, Ordering::Relaxed);
        } else {
            let mut result = rustix::fs::unlinkat(&parent.fd, name.as_c_str(), AtFlags::REMOVEDIR);
            if matches!(result, Err(Errno::ACCESS | Errno::PERM)) && make_writable(parent) {
                result = rustix::fs::unlinkat(&parent.fd, name.as_c_str(), AtFlags::REMOVEDIR);
            }
            match result {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => {
                    self.error(dir.path.clone(), e);
                    parent.blocked.store(true, Ordering::Relaxed);
                }
            }
        }
        self.release(parent);
    }
}

/// Gives the owner rwx on `dir` so its entries can be unlinked; true if it changed something.
fn make_writable(dir: &Dir) -> bool {
    !dir.made_writable.swap(true, Ordering::AcqRel) && rustix::fs::fchmod(&dir.fd, Mode::RWXU).is_ok()
}

fn cstring(name: &OsStr) -> CString {
    CString::new(name.as_bytes()).unwrap_or_default()
}

/// Deep trees keep one fd per level open; lift the soft limit to the hard one. macOS refuses an unlimited soft
/// limit (its hard limit often is), so there the most a process may have, `OPEN_MAX`, is asked for instead.
fn raise_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    const OPEN_MAX: u64 = 10_240;
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|c| limit.maximum.is_none_or(|m| c < m)) {
        let raised = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum });
        if raised.is_err() {
            let current = Some(limit.maximum.map_or(OPEN_MAX, |m| m.min(OPEN_MAX)));
            let _ = setrlimit(Resource::Nofile, Rlimit { current, maximum: limit.maximum });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn run(root: &Path) -> Purged {
        let interrupt = Interrupt::manual().unwrap();
        purge(
            &[root.to_path_buf()],
            Settings { workers: 4, files: crate::platform::Platform::native().files, busy: Busy::Skip },
            &Progress::default(),
            &interrupt,
        )
    }

    #[test]
    fn removes_a_tree_counting_files_and_bytes_and_keeps_symlink_targets() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let outside = d.join("outside");
        std::fs::create_dir_all(outside.join("keep")).unwrap();
        std::fs::write(outside.join("keep/file"), "precious").unwrap();
        let t = d.join("trash");
        for i in 0..10 {
            std::fs::create_dir_all(t.join(format!("d{i}/e"))).unwrap();
            for j in 0..300 {
                std::fs::write(t.join(format!("d{i}/e/f{j}")), "12345").unwrap();
            }
        }
        symlink(&outside, t.join("link-dir")).unwrap();
        symlink(outside.join("keep/file"), t.join("d0/link-file")).unwrap();
        let p = run(&t);
        assert!(p.problems.errors.is_empty(), "{:?}", p.problems.errors);
        assert!(!t.exists());
        assert_eq!(p.removed.files, 3002);
        assert!(p.removed.bytes >= 15_000);
        assert_eq!(std::fs::read_to_string(outside.join("keep/file")).unwrap(), "precious");
    }

    #[test]
    fn removes_read_only_and_unreadable_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let t = d.join("trash");
        std::fs::create_dir_all(t.join("ro/inner")).unwrap();
        std::fs::write(t.join("ro/inner/f"), "x").unwrap();
        std::fs::set_permissions(t.join("ro/inner"), std::fs::Permissions::from_mode(0o000)).unwrap();
        std::fs::set_permissions(t.join("ro"), std::fs::Permissions::from_mode(0o500)).unwrap();
        let p = run(&t);
        assert!(p.problems.errors.is_empty(), "{:?}", p.problems.errors);
        assert!(!t.exists());
    }

    #[test]
    fn removes_non_utf8_names_and_very_deep_trees() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let t = d.join("trash");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join(OsStr::from_bytes(b"bad-\xff-name")), "x").unwrap();
        // Deeper than PATH_MAX (4096): built with relative mkdirs from inside the tree.
        let mut fd = rustix::fs::open(&t, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let name = "d".repeat(200);
        for _ in 0..30 {
            rustix::fs::mkdirat(&fd, name.as_str(), Mode::RWXU).unwrap();
            fd = rustix::fs::openat(&fd, name.as_str(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        }
        drop(rustix::fs::openat(&fd, "leaf", OFlags::CREATE | OFlags::WRONLY, Mode::RUSR).unwrap());
        let p = run(&t);
        assert!(p.problems.errors.is_empty(), "{:?}", p.problems.errors);
        assert!(!t.exists());
        assert_eq!(p.removed.files, 2);
    }

    #[test]
    fn a_missing_root_is_nothing_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let p = run(&d.join("nope"));
        assert!(p.problems.errors.is_empty());
        assert_eq!(p.removed.files, 0);
    }

    #[test]
    fn an_interrupted_purge_stops_and_leaves_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let t = d.join("trash");
        std::fs::create_dir_all(t.join("a")).unwrap();
        std::fs::write(t.join("a/f"), "x").unwrap();
        let interrupt = Interrupt::manual().unwrap();
        interrupt.trigger();
        let settings = Settings { workers: 2, files: crate::platform::Platform::native().files, busy: Busy::Skip };
        let p = purge(std::slice::from_ref(&t), settings, &Progress::default(), &interrupt);
        assert!(p.interrupted);
        assert!(t.join("a/f").exists());
    }
}
