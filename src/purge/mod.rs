//! Deleting a trash tree fast and safely.
//!
//! Every operation is relative to an open directory fd (`openat`/`unlinkat` with `O_NOFOLLOW`), so no path is
//! trusted twice and no symlink is ever followed — the class of bug behind CVE-2022-21658. Work is split into
//! tasks (list a dir, unlink a chunk of its files) on a bounded pool; a dir is removed from its parent when its
//! last task ends. It never crosses into another filesystem, makes read-only dirs writable, handles names that are
//! not UTF-8 and trees deeper than `PATH_MAX`, and tolerates entries that vanish underneath it.

// The walk, on each OS's calls: `openat`/`unlinkat` on Unix, handle-relative `NtCreateFile` and deletes by handle
// on Windows (reparse points deleted as themselves, read-only attributes ignored).
#[cfg_attr(unix, path = "pool/unix.rs")]
#[cfg_attr(windows, path = "pool/windows.rs")]
mod pool;
mod queue;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::interrupt::Interrupt;
pub use crate::model::Progress;
use crate::model::{FileId, Removed};
use crate::platform::{Dir, Files};
use crate::runlock::TrashLocks;
use pool::Pool;

/// A removal that failed, with the path; [`RemoveError::help`] says what the user can do about it.
#[derive(Debug, thiserror::Error)]
#[error("failed to {action} {}: {source}", path.display())]
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

    /// The usual way out of it.
    #[must_use]
    pub fn help(&self) -> Option<String> {
        Some(hint(&self.source).into())
    }
}

/// The usual way out of a failed removal. EPERM, unlike EACCES, survives the owner's own chmod: an immutable or
/// append-only file, usually.
fn hint(e: &std::io::Error) -> &'static str {
    match (e.raw_os_error(), e.kind()) {
        #[cfg(unix)]
        (Some(code), _) if code == rustix::io::Errno::PERM.raw_os_error() => {
            "it may be immutable or append-only (`lsattr` shows an `i` or `a`): clear that with `chattr -i -a` as \
             root, or it belongs to another user in a sticky dir; then run cargo safeclean again"
        }
        // A sharing violation (32), or a running image or a file open without share-delete (5).
        #[cfg(windows)]
        (Some(32 | 5), _) => {
            "a process still has it open or runs it: stop it (cargo safeclean names the holders it finds), then run \
             cargo safeclean again; it finishes what this run left"
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
        "left {} inside the old tree mounted and untouched: {}",
        if mounts.len() == 1 { "a mount point" } else { "mount points" },
        mounts.iter().map(|m| m.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    MountsLeft { mounts: Vec<PathBuf> },
    #[error(
        "left {} of the old tree: another process holds {} lock (named above)",
        left.iter().map(|m| m.display().to_string()).collect::<Vec<_>>().join(", "),
        if left.len() == 1 { "its" } else { "their" }
    )]
    LeftLocked { left: Vec<PathBuf> },
}

impl PurgeError {
    /// What to do so that the next run removes what is left.
    #[must_use]
    pub fn help(&self) -> Option<String> {
        match self {
            PurgeError::Remove(e) => e.help(),
            PurgeError::MountsLeft { mounts } => Some(format!(
                "release {} with `umount PATH` (as root) and run cargo safeclean again: it removes what is left",
                if mounts.len() == 1 { "it" } else { "them" }
            )),
            PurgeError::LeftLocked { .. } => {
                Some("once it lets go, run cargo safeclean again: it removes what is left".into())
            }
        }
    }

    /// What is in place despite the failure.
    #[must_use]
    pub fn note(&self) -> Option<String> {
        match self {
            PurgeError::Remove(_) => None,
            PurgeError::MountsLeft { .. } => Some("the rest was removed".into()),
            PurgeError::LeftLocked { .. } => Some("the new target dir is in place".into()),
        }
    }
}

/// What a purge could not do.
#[derive(Debug, Default)]
pub struct Problems {
    /// Mount points found inside the trash and left alone.
    pub skipped_mounts: Vec<PathBuf>,
    /// Entries that could not be removed, with why.
    pub errors: Vec<(PathBuf, std::io::Error)>,
    /// Trash dirs another purge is deleting (or another process holds locked), left to it.
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
    /// How long [`Busy::Wait`] waits for such a dir before leaving it to that purge.
    pub lock_timeout: Duration,
}

/// A trash dir (or a file named like one) to remove, and what it is: a purge removes it only if its name in its
/// parent still leads to that.
#[derive(Debug)]
pub struct TrashRoot {
    /// Where it is: for messages, and for a purge that opens its parent by this path.
    pub path: PathBuf,
    /// Its parent, open, when the caller holds it (the swap does); otherwise the parent of `path` is opened.
    pub parent: Option<Dir>,
    pub id: FileId,
}

/// What to do with a trash dir whose lock another purge holds (a detached deleter): two never work on one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// Leave it to that purge (a run the user waits for).
    Skip,
    /// Wait for that purge to end (at most `lock_timeout`), then finish what it left (a detached deleter, which
    /// nobody waits for).
    Wait,
}

/// Removes each of `roots` (trash dirs, or files; a symlink is removed, not followed) and everything below it,
/// except mount points, which are left mounted and untouched, and a root whose name leads elsewhere by now.
/// `locks`: where trash dirs are locked (the runner's runtime dir), so that no other purge works on them.
pub fn purge(
    roots: &[TrashRoot],
    settings: Settings,
    locks: Option<TrashLocks>,
    progress: &Progress,
    interrupt: &Interrupt,
) -> Purged {
    Purge::lock(roots, settings, locks).run(progress, interrupt)
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
    pub fn lock(roots: &[TrashRoot], settings: Settings, locks: Option<TrashLocks>) -> Self {
        pool::raise_fd_limit();
        let probe = roots.first().and_then(|r| r.path.parent()).unwrap_or(Path::new("/"));
        let pool = Pool::new(settings.files, probe, settings.busy, settings.lock_timeout, locks);
        for root in roots {
            pool.start_root(root);
        }
        // The workers start from this thread: with its own rights, which they inherit.
        #[cfg(unix)]
        let _ = crate::platform::act_as(None);
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
            problems: pool.into_problems(),
            interrupted: stop.load(Ordering::Relaxed),
        }
    }
}

/// What purging the open dir `fd` (at `path`) would remove: its files and bytes, mount points left out as a purge
/// leaves them. The purge's own walk, on `workers` threads, changing nothing; a dir it cannot read is not counted.
pub fn count(fd: &Dir, path: &Path, files: Files, workers: usize, interrupt: &Interrupt) -> Removed {
    let start = Instant::now();
    let pool = Pool::counting(files, path);
    match fd.try_clone() {
        Ok(fd) => pool.start_count(fd, path.to_path_buf()),
        Err(_) => return Removed::default(),
    }
    let (progress, stop) = (Progress::default(), AtomicBool::new(false));
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| pool.work(&progress, interrupt, &stop));
        }
    });
    Removed {
        files: progress.files.load(Ordering::Relaxed),
        bytes: progress.bytes.load(Ordering::Relaxed),
        duration_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use rustix::fs::{Mode, OFlags};
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn settings(workers: usize) -> Settings {
        let files = crate::platform::Platform::native().files;
        Settings { workers, files, busy: Busy::Skip, lock_timeout: Duration::from_secs(1) }
    }

    /// `root` as a trash root, by what it is now (a missing one gets an identity nothing has).
    pub(crate) fn root(root: &Path) -> TrashRoot {
        let id = std::fs::symlink_metadata(root).map_or(FileId { dev: 0, ino: 0 }, |m| {
            use std::os::unix::fs::MetadataExt;
            FileId { dev: m.dev(), ino: m.ino() }
        });
        TrashRoot { path: root.to_path_buf(), parent: None, id }
    }

    fn run(path: &Path) -> Purged {
        let interrupt = Interrupt::manual().unwrap();
        purge(&[root(path)], settings(4), None, &Progress::default(), &interrupt)
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
    fn a_count_says_what_the_purge_then_removes_and_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (t, outside) = (tmp.path().join("trash"), tmp.path().join("outside"));
        std::fs::create_dir_all(outside.join("big")).unwrap();
        std::fs::write(outside.join("big/file"), vec![0u8; 1 << 20]).unwrap();
        for i in 0..4 {
            std::fs::create_dir_all(t.join(format!("d{i}/e"))).unwrap();
            for j in 0..600 {
                std::fs::write(t.join(format!("d{i}/e/f{j}")), "12345").unwrap();
            }
        }
        symlink(&outside, t.join("link-dir")).unwrap();
        std::fs::set_permissions(t.join("d3"), std::fs::Permissions::from_mode(0o500)).unwrap();
        let fd = rustix::fs::open(&t, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let interrupt = Interrupt::manual().unwrap();
        let counted = count(&fd, &t, settings(4).files, 4, &interrupt);
        assert_eq!(counted.files, 2401, "every file and the link, nothing behind the link");
        assert!(counted.bytes >= 12_000 && counted.bytes < 1 << 20, "{counted:?}");
        let mode = std::fs::metadata(t.join("d3")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o500, "a count opens nothing up");
        let purged = run(&t);
        assert_eq!((purged.removed.files, purged.removed.bytes), (counted.files, counted.bytes));
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
        let p = purge(&[root(&t)], settings(2), None, &Progress::default(), &interrupt);
        assert!(p.interrupted);
        assert!(t.join("a/f").exists());
    }

    #[test]
    fn a_root_whose_name_leads_elsewhere_now_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let t = d.join("trash");
        std::fs::create_dir_all(t.join("a")).unwrap();
        let checked = root(&t);
        std::fs::rename(&t, d.join("moved")).unwrap();
        std::fs::create_dir_all(t.join("precious")).unwrap();
        let interrupt = Interrupt::manual().unwrap();
        let p = purge(&[checked], settings(2), None, &Progress::default(), &interrupt);
        assert_eq!(p.problems.errors.len(), 1, "{:?}", p.problems.errors);
        assert!(t.join("precious").is_dir() && d.join("moved/a").is_dir());
    }
}
