//! The detached purge (`--detach`): once the old tree is swapped out, a process of its own deletes it while the user
//! goes on. It runs this binary again (`--purge-detached DEV:INO:TRASH…`) in a session of its own (it survives the
//! terminal closing and the parent's exit), with stdin and stdout away from the terminal and stderr on a log in the
//! runner's own runtime dir (made there with `O_EXCL|O_NOFOLLOW`, so no name another user controls is ever
//! written), at the idle IO class and nice 19, with fewer workers than a purge someone waits for. On Windows: no
//! console and a console group of its own, out of the run's job where the job allows it, in background mode (the
//! lowest CPU and IO priority), its log made in the runtime dir by its handle (see `platform::detached`).
//!
//! It is given each trash dir with its identity (device and inode) and deletes only a dir that still is what it was
//! given. It holds no run lock, only the lock of each trash dir it deletes (so two purges never work on one) and of
//! its log (so no run removes a live deleter's log), and says it holds them before the parent returns. If it is
//! killed, the next run (or the next detached purge) finishes the job, as with any leftover trash.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use crate::interrupt::Interrupt;
use crate::layout::{DELETER_LOG_PREFIX, LOG_SUFFIX};
pub use crate::model::Detached;
use crate::model::FileId;
use crate::platform;
use crate::purge::{self, Progress, Purge, Purged, TrashRoot};
use crate::runlock::{RuntimeDir, TrashLocks};

/// The default free-space floor: the smaller of 10% of the filesystem and 5 GiB.
const FLOOR_SHARE: u64 = 10;
const FLOOR_MAX: u64 = 5 << 30;

/// How long the parent waits for the deleter to hold its locks.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// Too little free space to wait for a detached deleter: the purge stays in the foreground.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowSpace {
    /// Bytes free for unprivileged users on the target's filesystem.
    pub free: u64,
    /// The floor it is under: `--detach-min-free`, or the smaller of 10% of the filesystem and 5 GiB.
    pub floor: u64,
}

/// Whether `dir`'s filesystem has less free space than `min_free` (default: the smaller of 10% of the filesystem
/// and 5 GiB), so that the space is wanted back now. A filesystem that cannot be measured is not too full.
#[must_use]
pub fn too_full(dir: &Path, min_free: Option<u64>) -> Option<LowSpace> {
    let (free, total) = platform::disk_space(dir)?;
    let floor = min_free.unwrap_or_else(|| (total / FLOOR_SHARE).min(FLOOR_MAX));
    (free < floor).then_some(LowSpace { free, floor })
}

/// Bytes free for unprivileged users on `dir`'s filesystem (what `df` shows as available).
#[must_use]
pub fn free_bytes(dir: &Path) -> Option<u64> {
    platform::disk_space(dir).map(|(free, _)| free)
}

/// Starts the deleter for `trash` (run `id`'s), its log in `runtime`, with `workers` workers; returns once it holds
/// the locks of the trash dirs and of its log, so that no other purge starts on them.
pub fn spawn(
    trash: &[TrashRoot],
    runtime: &RuntimeDir,
    id: &str,
    workers: usize,
    lock_timeout: Duration,
) -> std::io::Result<Detached> {
    let exe = std::env::current_exe()?;
    let name = format!("{DELETER_LOG_PREFIX}{id}{LOG_SUFFIX}");
    let log_file = runtime.create(&name)?;
    // Locked before the deleter exists, and by it through the same open file: a run removes only logs nobody holds.
    #[cfg(unix)]
    log_file.try_lock().map_err(std::io::Error::from)?;
    let log = runtime.path.join(&name);
    let mut cmd = Command::new(&exe);
    cmd.arg("--purge-log").arg(&log).arg("--lock-timeout").arg(format!("{}ms", lock_timeout.as_millis()));
    cmd.arg("--purge-detached").args(trash.iter().map(|t| {
        let mut arg = OsString::from(format!("{}:", t.id));
        arg.push(&t.path);
        arg
    }));
    cmd.env("SAFECLEAN_PURGE_THREADS", workers.to_string()).stdin(Stdio::null()).stdout(Stdio::piped());
    platform::detached(&mut cmd, true);
    let mut child = match cmd.stderr(log_file.try_clone()?).spawn() {
        Ok(child) => child,
        // A job that forbids breaking away (Windows): started inside it, as the purge would have run anyway.
        Err(e) if cfg!(windows) && e.kind() == std::io::ErrorKind::PermissionDenied => {
            platform::detached(&mut cmd, false);
            cmd.stderr(log_file).spawn()?
        }
        Err(e) => return Err(e),
    };
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let paths = trash.iter().map(|t| t.path.clone()).collect();
    match rx.recv_timeout(READY_WITHIN) {
        Ok(line) if line.trim() == "ready" => Ok(Detached { pid: child.id(), trash: paths, log }),
        other => {
            // Our own child, not reaped: its pid is still its own.
            let _ = child.kill();
            let _ = child.wait();
            Err(std::io::Error::other(format!("the detached deleter did not start ({other:?}); see {}", log.display())))
        }
    }
}

/// What the deleter tells: its parent that it holds its locks, and its log what it does. The report layer
/// implements it; the deleter itself prints nothing.
pub trait Log: Sync {
    /// It holds the lock of every trash dir: tell the parent, through `parent`, that it may return.
    fn ready(&self, parent: &mut dyn Write);
    /// It starts deleting `trash`; `not_lowered` says which priority could not be lowered, and why.
    fn started(&self, trash: &[PathBuf], not_lowered: &[String]);
    /// How far it got, every [`PROGRESS_EVERY`], so that a person following the log sees it move.
    fn progress(&self, files: u64, bytes: u64);
    /// What it did and what it could not do.
    fn finished(&self, purged: &Purged);
}

/// How often the deleter writes how far it got.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// The deleter (`--purge-detached`): leaves the parent's session, lowers its priority before any other thread
/// starts (IO priority and nice are per thread on Linux, and inherited), locks its log (stderr) and the trash, says
/// it is ready, and deletes. Its log is removed if all went well (one that stays is removed by the next run).
/// Returns whether all went well: everything removed, nothing left to another process.
pub fn deleter(
    trash: &[(FileId, PathBuf)],
    log_path: Option<&Path>,
    settings: purge::Settings,
    locks: Option<TrashLocks>,
    log: &dyn Log,
) -> bool {
    platform::leave_session();
    let not_lowered = platform::lower_priority();
    // Held until it exits: a run removes only logs nobody holds.
    platform::hold_log();
    let roots: Vec<TrashRoot> =
        trash.iter().map(|(id, path)| TrashRoot { path: path.clone(), parent: None, id: *id }).collect();
    let purge = Purge::lock(&roots, purge::Settings { busy: purge::Busy::Wait, ..settings }, locks);
    let paths: Vec<PathBuf> = trash.iter().map(|(_, p)| p.clone()).collect();
    let trash = &paths[..];
    log.started(trash, &not_lowered);
    platform::say_ready(|pipe| log.ready(pipe));
    // Nobody interrupts it: a killed deleter leaves trash the next run finishes.
    let interrupt = Interrupt::manual().expect("a socket pair");
    let progress = Progress::default();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let purged = std::thread::scope(|s| {
        let progress = &progress;
        s.spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(PROGRESS_EVERY) {
                log.progress(progress.files.load(Ordering::Relaxed), progress.bytes.load(Ordering::Relaxed));
            }
        });
        let purged = purge.run(progress, &interrupt);
        drop(done);
        purged
    });
    log.finished(&purged);
    let p = &purged.problems;
    let clean = p.errors.is_empty() && p.skipped_mounts.is_empty() && p.busy.is_empty();
    if clean && let Some(log_path) = log_path {
        // Only if that name still leads to this process's stderr.
        platform::remove_own_stderr(log_path);
    }
    clean
}
