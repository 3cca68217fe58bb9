//! The walk behind a purge on Windows: a pool of workers sharing a stack of tasks (open and list a dir, delete a
//! chunk of its files), each dir reference-counted by the tasks that still need it and deleted by its own handle
//! when the last one ends.
//!
//! Every name is opened relative to its parent's handle and as itself (see `platform::windows::fs`): a junction, a
//! symlink or a mount point is deleted as the link it is, never descended into. What is deleted is the file the
//! handle holds, so a name swapped meanwhile is never the one removed. A dir's handle is closed as soon as it is
//! deleted: where deletes are classic (not POSIX), a dir is not empty while a deleted child is still open.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use windows_sys::Win32::Foundation::ERROR_DIR_NOT_EMPTY;

use super::queue::Queue;
use super::{Busy, Problems, Progress, TrashRoot};
use crate::interrupt::Interrupt;
use crate::layout::TRASH_PREFIX;
use crate::model::FileId;
use crate::platform::windows::fs::{self, Access, Follow, Want};
use crate::platform::{Dir, Files};
use crate::runlock::TrashLocks;

/// How many names one delete task takes, so that one huge directory is shared among all workers.
const CHUNK: usize = 256;

/// An open directory being emptied.
struct Open {
    /// Taken (and so closed) once the dir is deleted.
    handle: Mutex<Option<Dir>>,
    path: PathBuf,
    /// The dir this one is in, to release when this one is done; `None` for a root.
    parent: Option<Arc<Open>>,
    /// Tasks that still refer to this dir, plus one for its own listing.
    pending: AtomicUsize,
    /// An error below: this dir cannot become empty, so do not try to delete it.
    blocked: AtomicBool,
    /// Its volume's serial number: a dir on another volume is never entered.
    volume: u64,
    /// For a trash dir: its lock, held while this purge works on it.
    _lock: Option<File>,
}

impl Open {
    fn with<T>(&self, f: impl FnOnce(&Dir) -> T) -> Option<T> {
        self.handle.lock().expect("purge dir poisoned").as_ref().map(f)
    }
}

enum Task {
    /// Open the dir `name` in `parent` and list it.
    Open { parent: Arc<Open>, name: OsString },
    /// List a dir already open (a root).
    List { dir: Arc<Open> },
    /// Delete these entries of `dir` (files, links; a dir found among them is queued).
    Delete { dir: Arc<Open>, names: Vec<OsString> },
}

pub(in crate::purge) struct Pool {
    queue: Queue<Task>,
    problems: Mutex<Problems>,
    busy: Busy,
    lock_timeout: Duration,
    locks: Option<TrashLocks>,
    count_only: bool,
}

impl Pool {
    pub(in crate::purge) fn new(
        _files: Files,
        _probe: &Path,
        busy: Busy,
        lock_timeout: Duration,
        locks: Option<TrashLocks>,
    ) -> Self {
        Pool::with(busy, lock_timeout, locks, false)
    }

    /// A pool that only counts what is below the dirs it is given ([`Pool::start_count`]).
    pub(in crate::purge) fn counting(_files: Files, _probe: &Path) -> Self {
        Pool::with(Busy::Skip, Duration::ZERO, None, true)
    }

    fn with(busy: Busy, lock_timeout: Duration, locks: Option<TrashLocks>, count_only: bool) -> Self {
        Pool { queue: Queue::new(), problems: Mutex::default(), busy, lock_timeout, locks, count_only }
    }

    /// Counts everything below the open dir `dir` (at `path`, for messages).
    pub(in crate::purge) fn start_count(&self, dir: Dir, path: PathBuf) {
        self.push(Task::List { dir: Arc::new(open(dir, path, None, None)) });
    }

    pub(in crate::purge) fn into_problems(self) -> Problems {
        self.problems.into_inner().unwrap_or_default()
    }

    fn push(&self, task: Task) {
        self.queue.push(task);
    }

    fn error(&self, path: PathBuf, e: std::io::Error) {
        self.problems.lock().expect("purge problems poisoned").errors.push((path, e));
    }

    /// Opens the root as it was handed over (its parent held, or opened by path), checks it is still the one it
    /// was, locks it, and queues it; a file or a link named like trash is deleted here.
    pub(in crate::purge) fn start_root(&self, root: &TrashRoot) {
        let (Some(parent_path), Some(name)) = (root.path.parent(), root.path.file_name()) else {
            self.error(root.path.clone(), std::io::Error::other("not a removable path"));
            return;
        };
        let parent = match &root.parent {
            Some(h) => h.try_clone(),
            None => fs::open_dir(parent_path, Access::Read),
        };
        let parent = match parent {
            Ok(h) => h,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => return self.error(parent_path.to_path_buf(), e),
        };
        let h = match fs::open_at(&parent, name, Access::ReadDelete, Want::Any, Follow::No) {
            Ok(h) => h,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => return self.error(root.path.clone(), e),
        };
        let info = match fs::info(&h) {
            Ok(i) if i.id == root.id => i,
            Ok(_) => return self.replaced(&root.path),
            Err(e) => return self.error(root.path.clone(), e),
        };
        if !info.is_dir() || info.is_reparse_point() {
            // A file or a link named like trash: gone now, before the workers count (it is not counted).
            self.delete_file(&h, info.size, &root.path, &Progress::default());
            return;
        }
        if let Ok(lock) = self.trash_lock(name, info.id, &root.path) {
            self.push(Task::List { dir: Arc::new(open(h, root.path.clone(), None, lock)) });
        }
    }

    fn replaced(&self, path: &Path) {
        let e = std::io::Error::other("it was replaced since it was set aside as trash; left it alone");
        self.error(path.to_path_buf(), e);
    }

    /// The lock of a trash dir (`Ok(None)` for any other dir, or where there are no locks); `Err` when another
    /// purge holds it and this one leaves it (recorded as busy).
    fn trash_lock(&self, name: &OsStr, id: FileId, path: &Path) -> Result<Option<File>, ()> {
        let Some(locks) = &self.locks else { return Ok(None) };
        if self.count_only || !name.to_string_lossy().starts_with(TRASH_PREFIX) {
            return Ok(None);
        }
        let wait = if self.busy == Busy::Wait { self.lock_timeout } else { Duration::ZERO };
        match locks.lock(id, wait) {
            Ok(Some(held)) => Ok(Some(held)),
            Ok(None) => {
                self.problems.lock().expect("purge problems poisoned").busy.push(path.to_path_buf());
                Err(())
            }
            // No lock to be had (a runtime dir gone): nothing to respect, nothing to hold.
            Err(_) => Ok(None),
        }
    }

    pub(in crate::purge) fn work(&self, progress: &Progress, interrupt: &Interrupt, stop: &AtomicBool) {
        while let Some(task) = self.queue.next(interrupt, stop) {
            match task {
                Task::Open { parent, name } => {
                    if let Some(dir) = self.open_child(&parent, &name) {
                        self.list(&dir, progress);
                        self.release(dir);
                    }
                    self.release(parent);
                }
                Task::List { dir } => {
                    self.list(&dir, progress);
                    self.release(dir);
                }
                Task::Delete { dir, names } => {
                    for name in &names {
                        self.delete_entry(&dir, name, progress);
                    }
                    self.release(dir);
                }
            }
            self.queue.done();
        }
    }

    /// Opens the dir `name` in `parent` as itself; `None` (with `parent` blocked where that is an error) when it is
    /// gone, busy or cannot be opened.
    fn open_child(&self, parent: &Arc<Open>, name: &OsStr) -> Option<Arc<Open>> {
        let path = parent.path.join(name);
        let opened = parent.with(|p| fs::open_at(p, name, Access::ReadDelete, Want::Dir, Follow::No))?;
        let h = match opened {
            Ok(h) => h,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                self.error(path, e);
                parent.blocked.store(true, Ordering::Relaxed);
                return None;
            }
        };
        let Ok(info) = fs::info(&h) else { return None };
        // Another volume under a plain dir name (a mount reached without its reparse point, a share's server-side
        // link): never entered, left as it is, as a Unix purge never leaves its filesystem.
        if info.id.dev != parent.volume {
            self.problems.lock().expect("purge problems poisoned").skipped_mounts.push(path);
            parent.blocked.store(true, Ordering::Relaxed);
            return None;
        }
        let Ok(lock) = self.trash_lock(name, info.id, &path) else {
            parent.blocked.store(true, Ordering::Relaxed);
            return None;
        };
        parent.pending.fetch_add(1, Ordering::AcqRel);
        Some(Arc::new(open(h, path, Some(Arc::clone(parent)), lock)))
    }

    fn list(&self, dir: &Arc<Open>, progress: &Progress) {
        let Some(listing) = dir.with(fs::list) else { return };
        let entries = match listing {
            Ok(entries) => entries,
            Err(e) => {
                self.error(dir.path.clone(), e);
                dir.blocked.store(true, Ordering::Relaxed);
                return;
            }
        };
        let mut files = Vec::new();
        for entry in entries {
            if entry.is_plain_dir() {
                dir.pending.fetch_add(1, Ordering::AcqRel);
                self.push(Task::Open { parent: Arc::clone(dir), name: entry.name });
            } else if self.count_only {
                progress.files.fetch_add(1, Ordering::Relaxed);
                progress.bytes.fetch_add(entry.size, Ordering::Relaxed);
            } else {
                files.push(entry.name);
            }
            if files.len() == CHUNK {
                dir.pending.fetch_add(1, Ordering::AcqRel);
                self.push(Task::Delete { dir: Arc::clone(dir), names: std::mem::take(&mut files) });
            }
        }
        for name in &files {
            self.delete_entry(dir, name, progress);
        }
    }

    /// Deletes one entry that is not a plain dir (a file, or a link as itself); a dir found there is queued.
    fn delete_entry(&self, dir: &Arc<Open>, name: &OsStr, progress: &Progress) {
        let path = dir.path.join(name);
        let Some(opened) = dir.with(|d| fs::open_at(d, name, Access::Delete, Want::Any, Follow::No)) else { return };
        let h = match opened {
            Ok(h) => h,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                self.error(path, e);
                dir.blocked.store(true, Ordering::Relaxed);
                return;
            }
        };
        match fs::info(&h) {
            Ok(info) if info.is_dir() && !info.is_reparse_point() => {
                drop(h);
                dir.pending.fetch_add(1, Ordering::AcqRel);
                self.push(Task::Open { parent: Arc::clone(dir), name: name.to_os_string() });
            }
            Ok(info) => {
                if !self.delete_file(&h, info.size, &path, progress) {
                    dir.blocked.store(true, Ordering::Relaxed);
                }
            }
            Err(e) => {
                self.error(path, e);
                dir.blocked.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Deletes the open file or link `h`; false (recorded) if it cannot be.
    fn delete_file(&self, h: &Dir, size: u64, path: &Path, progress: &Progress) -> bool {
        match fs::delete(h) {
            Ok(()) => {
                progress.files.fetch_add(1, Ordering::Relaxed);
                progress.bytes.fetch_add(size, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.error(path.to_path_buf(), e);
                false
            }
        }
    }

    /// A dir that could not be deleted: where it is not empty, what is left in it is named, each entry a file that was
    /// deleted while another process has it open (with share-delete, where deletes are classic): it goes when that
    /// process closes it.
    fn not_empty(&self, path: &Path, h: &Dir, e: std::io::Error) {
        let left = match e.raw_os_error() {
            Some(code) if code == ERROR_DIR_NOT_EMPTY.cast_signed() => fs::list(h).unwrap_or_default(),
            _ => Vec::new(),
        };
        if left.is_empty() {
            return self.error(path.to_path_buf(), e);
        }
        for entry in left {
            let why = "deleted, but another process still has it open: it goes when that process closes it";
            self.error(path.join(&entry.name), std::io::Error::other(why));
        }
    }

    /// Drops one reference to `dir`; the last one deletes it (and closes it), then releases its parent.
    fn release(&self, dir: Arc<Open>) {
        if dir.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        if !self.count_only {
            let handle = dir.handle.lock().expect("purge dir poisoned").take();
            if dir.blocked.load(Ordering::Relaxed) {
                if let Some(parent) = &dir.parent {
                    parent.blocked.store(true, Ordering::Relaxed);
                }
            } else if let Some(h) = handle
                && let Err(e) = fs::delete(&h)
            {
                self.not_empty(&dir.path, &h, e);
                if let Some(parent) = &dir.parent {
                    parent.blocked.store(true, Ordering::Relaxed);
                }
            }
        }
        if let Some(parent) = dir.parent.clone() {
            drop(dir);
            self.release(parent);
        }
    }
}

fn open(h: Dir, path: PathBuf, parent: Option<Arc<Open>>, lock: Option<File>) -> Open {
    let volume = fs::info(&h).map_or(0, |i| i.id.dev);
    Open {
        handle: Mutex::new(Some(h)),
        path,
        parent,
        pending: AtomicUsize::new(1),
        blocked: AtomicBool::new(false),
        volume,
        _lock: lock,
    }
}

/// Nothing to raise: Windows has no per-process limit on open handles that a deep tree could reach.
pub(in crate::purge) fn raise_fd_limit() {}
