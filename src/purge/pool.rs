//! The walk behind a purge: a pool of workers sharing a stack of tasks (open and list a dir, unlink a chunk of its
//! names), each dir reference-counted by the tasks that still need it and removed from its parent by the last one.
//! Every step is relative to an open directory fd; descents go through [`Mounts`], which refuses symlinks and mount
//! points; a trash dir is locked before it is worked on.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use super::{Busy, Problems, Progress};
use crate::interrupt::Interrupt;
use crate::layout::TRASH_PREFIX;
use crate::platform::{Mounts, OpenDirError};

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

pub(super) struct Pool {
    /// The task stack (LIFO keeps the number of open dirs near the tree depth) and the count of tasks in flight.
    queue: Mutex<(Vec<Task>, usize)>,
    ready: Condvar,
    problems: Mutex<Problems>,
    mounts: Mounts,
    busy: Busy,
}

impl Pool {
    pub(super) fn new(mounts: Mounts, busy: Busy) -> Self {
        Pool { queue: Mutex::new((Vec::new(), 0)), ready: Condvar::new(), problems: Mutex::default(), mounts, busy }
    }

    pub(super) fn into_problems(self) -> Problems {
        self.problems.into_inner().unwrap_or_default()
    }

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

    pub(super) fn start_root(&self, root: &Path) {
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

    pub(super) fn work(&self, progress: &Progress, interrupt: &Interrupt, stop: &AtomicBool) {
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
pub(super) fn raise_fd_limit() {
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
