//! The walk behind a purge: a pool of workers sharing a stack of tasks (open and list a dir, unlink a chunk of its
//! names), each dir reference-counted by the tasks that still need it and removed from its parent by the last one.
//! Every step is relative to an open directory fd; descents go through [`Mounts`], which refuses symlinks and mount
//! points; a trash dir is locked before it is worked on, and a root is worked on only if it is the one it was given.
//!
//! In a root process, each dir's entries are changed with the rights of that dir's owner (`platform::act_as`), who
//! alone controls its names: a tree another user owns is deleted with that user's rights, a dir root made in it
//! with root's.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::queue::Queue;
use super::{Busy, Problems, Progress, TrashRoot};
use crate::interrupt::Interrupt;
use crate::layout::TRASH_PREFIX;
use crate::model::{FileId, Owner};
use crate::platform::{self, Files, Mounts, OpenDirError};
use crate::runlock::TrashLocks;

/// How many names one unlink task takes, so that one huge directory is shared among all workers.
const CHUNK: usize = 256;

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
    /// Whose rights its entries are changed with (only in a root process).
    owner: Option<Owner>,
    /// For a trash dir: its lock, held while this purge works on it.
    _lock: Option<std::fs::File>,
}

/// Where an empty dir is removed from.
enum Parent {
    /// A dir of this purge.
    Dir(Arc<Dir>, CString),
    /// A root's parent, opened again by path once the root is empty: while it works the purge holds nothing outside
    /// its roots (a detached deleter holding the target dir would look like one of its holders). The root's name is
    /// this tool's, unique, it is removed only if it still leads to the root, and only an empty dir is removed: if
    /// the parent was swapped meanwhile, the root moved with it, and what is left is the next purge's.
    Path(PathBuf, CString, FileId),
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
    /// Open `name` in `parent` and list it; for a root, only if it is still `root`.
    Open { parent: Arc<Dir>, name: CString, root: Option<FileId> },
    /// List a dir already open (a root).
    List { dir: Arc<Dir> },
    /// Unlink these non-directory entries of `dir`.
    Unlink { dir: Arc<Dir>, names: Vec<CString> },
}

pub(in crate::purge) struct Pool {
    queue: Queue<Task>,
    problems: Mutex<Problems>,
    mounts: Mounts,
    busy: Busy,
    lock_timeout: Duration,
    /// Where trash dirs are locked; without it, nothing is locked (a purge nobody else can run at the same time).
    locks: Option<TrashLocks>,
    /// This is a root process: each dir is worked on with its owner's rights.
    borrow_rights: bool,
    /// Walk and count, change nothing: a dry run's measure of what a purge would remove.
    count_only: bool,
}

impl Pool {
    /// `probe`: a dir on the filesystem to be walked, where mount points are looked up.
    pub(in crate::purge) fn new(
        files: Files,
        probe: &Path,
        busy: Busy,
        lock_timeout: Duration,
        locks: Option<TrashLocks>,
    ) -> Self {
        Pool::with(files.mounts(probe), busy, lock_timeout, locks, false)
    }

    /// A pool that only counts what is below the dirs it is given ([`Pool::start_count`]).
    pub(in crate::purge) fn counting(files: Files, probe: &Path) -> Self {
        Pool::with(files.mounts(probe), Busy::Skip, Duration::ZERO, None, true)
    }

    fn with(mounts: Mounts, busy: Busy, lock_timeout: Duration, locks: Option<TrashLocks>, count_only: bool) -> Self {
        Pool {
            queue: Queue::new(),
            problems: Mutex::default(),
            mounts,
            busy,
            lock_timeout,
            locks,
            borrow_rights: rustix::process::geteuid().is_root() && !count_only,
            count_only,
        }
    }

    /// Counts everything below the open dir `fd` (at `path`, for messages).
    pub(in crate::purge) fn start_count(&self, fd: OwnedFd, path: PathBuf) {
        let dir = Arc::new(Dir {
            owner: None,
            _lock: None,
            fd,
            path,
            parent: None,
            pending: AtomicUsize::new(1),
            blocked: AtomicBool::new(false),
            made_writable: AtomicBool::new(false),
        });
        self.push(Task::List { dir });
    }

    /// Uses `owner`'s rights on files from here on (in a root process); false, with the error recorded, if it
    /// cannot.
    fn act(&self, owner: Option<Owner>, path: &Path) -> bool {
        if !self.borrow_rights {
            return true;
        }
        match platform::act_as(owner) {
            Ok(_) => true,
            Err(e) => {
                self.error(path.to_path_buf(), e);
                false
            }
        }
    }

    /// The owner of the open dir `fd`, when rights are borrowed.
    fn owner_of(&self, fd: &OwnedFd) -> Option<Owner> {
        self.borrow_rights.then(|| rustix::fs::fstat(fd).ok().map(|st| platform::owner(&st))).flatten()
    }

    pub(in crate::purge) fn into_problems(self) -> Problems {
        self.problems.into_inner().unwrap_or_default()
    }

    fn push(&self, task: Task) {
        self.queue.push(task);
    }

    fn error(&self, path: PathBuf, e: impl Into<std::io::Error>) {
        self.problems.lock().expect("purge problems poisoned").errors.push((path, e.into()));
    }

    pub(in crate::purge) fn start_root(&self, root: &TrashRoot) {
        let (Some(parent_path), Some(name)) = (root.path.parent(), root.path.file_name()) else {
            self.error(root.path.clone(), std::io::Error::other("not a removable path"));
            return;
        };
        let fd = match &root.parent {
            Some(fd) => fd.try_clone().map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::BADF)),
            None => rustix::fs::open(parent_path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()),
        };
        let fd = match fd {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return,
            Err(e) => return self.error(parent_path.to_path_buf(), e),
        };
        let holder = Arc::new(Dir {
            owner: self.owner_of(&fd),
            _lock: None,
            fd,
            path: parent_path.to_path_buf(),
            parent: None,
            pending: AtomicUsize::new(1),
            blocked: AtomicBool::new(false),
            made_writable: AtomicBool::new(false),
        });
        let name = cstring(name);
        // It must still be what it was when it was handed over: a name swapped since is someone else's.
        match rustix::fs::statat(&holder.fd, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if platform::file_id(&st) == root.id => {}
            Ok(_) => return self.replaced(&root.path),
            Err(Errno::NOENT) => return,
            Err(e) => return self.error(root.path.clone(), e),
        }
        // Opened (and locked) here, before any worker runs; listed by a worker. A root another purge holds is
        // waited for by a worker, later, if this purge waits at all.
        match self.open_child(&holder, &name, &Progress::default(), false) {
            Opened::Dir(mut dir) => {
                if fd_id(&dir.fd) != Some(root.id) {
                    return self.replaced(&root.path);
                }
                if let Some(d) = Arc::get_mut(&mut dir) {
                    d.parent = Some(Parent::Path(parent_path.to_path_buf(), name, root.id));
                }
                self.push(Task::List { dir });
            }
            Opened::Busy => self.push(Task::Open { parent: holder, name, root: Some(root.id) }),
            Opened::Done => {}
        }
    }

    fn replaced(&self, path: &Path) {
        let e = std::io::Error::other("it was replaced since it was set aside as trash; left it alone");
        self.error(path.to_path_buf(), e);
    }

    pub(in crate::purge) fn work(&self, progress: &Progress, interrupt: &Interrupt, stop: &AtomicBool) {
        while let Some(task) = self.queue.next(interrupt, stop) {
            match task {
                Task::Open { parent, name, root } => self.open_and_list(&parent, &name, root, progress),
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
            self.queue.done();
        }
    }

    fn open_and_list(&self, parent: &Arc<Dir>, name: &CStr, root: Option<FileId>, progress: &Progress) {
        if let Opened::Dir(dir) = self.open_child(parent, name, progress, true) {
            if root.is_some_and(|id| fd_id(&dir.fd) != Some(id)) {
                // Dropping it releases its reference to the parent, which is then left as it is.
                dir.blocked.store(true, Ordering::Relaxed);
                self.replaced(&dir.path);
            } else {
                self.list(&dir, progress);
            }
            self.release(&dir);
        }
    }

    /// Opens the directory `name` in `parent`, holding one reference to `parent` until it is released: by the
    /// child, which then holds it; by a file, a mount, a busy trash dir or an error, dealt with here; or, for
    /// [`Opened::Busy`], by the caller. `may_block`: wait here for a trash dir another purge holds.
    fn open_child(&self, parent: &Arc<Dir>, name: &CStr, progress: &Progress, may_block: bool) -> Opened {
        let path = parent.path.join(OsStr::from_bytes(name.to_bytes()));
        let opened = if self.act(parent.owner, &path) {
            self.open_dir(parent, name)
        } else {
            Err(OpenDirError::Errno(Errno::PERM))
        };
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
        let mut lock = None;
        if !self.count_only
            && name.to_bytes().starts_with(TRASH_PREFIX.as_bytes())
            && let Some(locks) = &self.locks
            && let Some(id) = fd_id(&fd)
        {
            match locks.lock(id, Duration::ZERO) {
                Ok(Some(held)) => lock = Some(held),
                Ok(None) if self.busy == Busy::Wait && !may_block => return Opened::Busy,
                Ok(None)
                    if self.busy == Busy::Wait
                        && let Ok(Some(held)) = locks.lock(id, self.lock_timeout) =>
                {
                    lock = Some(held);
                }
                Ok(None) => {
                    self.problems.lock().expect("purge problems poisoned").busy.push(path);
                    parent.blocked.store(true, Ordering::Relaxed);
                    self.release(parent);
                    return Opened::Done;
                }
                // No lock to be had (a runtime dir gone): nothing to respect, nothing to hold.
                Err(_) => {}
            }
        }
        Opened::Dir(Arc::new(Dir {
            owner: self.owner_of(&fd),
            _lock: lock,
            fd,
            path,
            parent: Some(Parent::Dir(Arc::clone(parent), name.to_owned())),
            pending: AtomicUsize::new(1),
            blocked: AtomicBool::new(false),
            made_writable: AtomicBool::new(false),
        }))
    }

    /// Opens the dir `name` in `parent` (with the parent's owner's rights). A dir its owner closed to itself
    /// (mode 000) is opened up, by its own owner, and opened as them.
    fn open_dir(&self, parent: &Dir, name: &CStr) -> Result<OwnedFd, OpenDirError> {
        let opened = self.mounts.open_dir(&parent.fd, name);
        // A count opens nothing up: what it cannot read, it does not count.
        if self.count_only || !matches!(opened, Err(OpenDirError::Errno(Errno::ACCESS | Errno::PERM))) {
            return opened;
        }
        let owner = rustix::fs::statat(&parent.fd, name, AtFlags::SYMLINK_NOFOLLOW).map(|st| platform::owner(&st));
        let as_owner = owner.ok().filter(|_| self.borrow_rights);
        if as_owner.is_some() && platform::act_as(as_owner).is_err() {
            return opened;
        }
        let again = match self.mounts.chmod_dir_rwx(&parent.fd, name) {
            Ok(()) => self.mounts.open_dir(&parent.fd, name),
            Err(_) => opened,
        };
        if as_owner.is_some() {
            let _ = platform::act_as(parent.owner);
        }
        again
    }

    /// A mount point inside the trash: it stays mounted and untouched, and so do the dirs above it.
    fn skip_mount(&self, parent: &Dir, path: PathBuf) {
        self.problems.lock().expect("purge problems poisoned").skipped_mounts.push(path);
        parent.blocked.store(true, Ordering::Relaxed);
    }

    fn list(&self, dir: &Arc<Dir>, progress: &Progress) {
        if !self.act(dir.owner, &dir.path) {
            dir.blocked.store(true, Ordering::Relaxed);
            return;
        }
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
                    self.push(Task::Open { parent: Arc::clone(dir), name: name.to_owned(), root: None });
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
        if !self.act(dir.owner, &dir.path) {
            dir.blocked.store(true, Ordering::Relaxed);
            return;
        }
        let stat = rustix::fs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW);
        if let Ok(st) = &stat
            && FileType::from_raw_mode(st.st_mode) == FileType::Directory
        {
            dir.pending.fetch_add(1, Ordering::AcqRel);
            return self.push(Task::Open { parent: Arc::clone(dir), name: name.to_owned(), root: None });
        }
        if self.count_only {
            if let Ok(st) = stat {
                progress.files.fetch_add(1, Ordering::Relaxed);
                progress.bytes.fetch_add(u64::try_from(st.st_size).unwrap_or(0), Ordering::Relaxed);
            }
            return;
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
                self.push(Task::Open { parent: Arc::clone(dir), name: name.to_owned(), root: None });
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
        if dir.pending.fetch_sub(1, Ordering::AcqRel) != 1 || self.count_only {
            return;
        }
        let (parent, name) = match &dir.parent {
            None => return,
            Some(Parent::Path(path, name, id)) => {
                if !dir.blocked.load(Ordering::Relaxed) {
                    self.remove_root(path, name, *id, &dir.path);
                }
                return;
            }
            Some(Parent::Dir(parent, name)) => (parent, name),
        };
        if dir.blocked.load(Ordering::Relaxed) || !self.act(parent.owner, &parent.path) {
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

impl Pool {
    /// Removes the emptied root `name` from its parent at `path`, opened again by path as at the start (a target
    /// dir may be a symlink the guard accepted), if the name still leads to the root `id`.
    fn remove_root(&self, path: &Path, name: &CStr, id: FileId, root: &Path) {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return,
            Err(e) => return self.error(root.to_path_buf(), e),
        };
        if !self.act(self.owner_of(&fd), root) {
            return;
        }
        match rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if platform::file_id(&st) == id => {}
            // Moved on with its parent, or another entry by now: the next purge's.
            _ => return,
        }
        match rustix::fs::unlinkat(&fd, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => self.error(root.to_path_buf(), e),
        }
    }
}

/// The identity of the open file `fd`.
fn fd_id(fd: &OwnedFd) -> Option<FileId> {
    rustix::fs::fstat(fd).ok().map(|st| platform::file_id(&st))
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
pub(in crate::purge) fn raise_fd_limit() {
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
