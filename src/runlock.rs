//! Where this tool keeps what is its own, and the lock that serialises runs on one target dir.
//!
//! The runtime dir is the runner's own: `cargo-safeclean-UID` in `$XDG_RUNTIME_DIR`, else in `$TMPDIR`, else in
//! `/tmp`, made with mode 0700 and used only if it is a dir owned by the runner that nobody else may enter; on
//! Windows `cargo-safeclean` in `%LOCALAPPDATA%` (else `%TEMP%`), the user's own by Windows' rules, never a reparse
//! point. Nothing
//! there can be replaced, opened or locked by another user. The run lock is a file there named by the target dir's
//! identity (device and inode, not its name), so every spelling of one target dir serialises, and the workspace
//! and the dir beside the target stay as they were. The detached deleter's logs live there too.
//!
//! Waiting is bounded: a run waits for the lock at most `--lock-timeout`, naming the process that holds it. The
//! locks are std's (`flock` on Unix, `LockFileEx` on Windows), released when the process dies; how a lock file is
//! opened, and how an old one is removed without taking it from a run that holds it, is each OS's (`unix.rs`,
//! `windows.rs`).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::interrupt::Interrupt;
use crate::model::FileId;
use crate::platform::Dir;

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;
#[cfg(unix)]
use unix as sys;
#[cfg(unix)]
pub use unix::id_of;
#[cfg(windows)]
use windows as sys;

/// The runner's own dir for locks and logs, open.
#[derive(Debug)]
pub struct RuntimeDir {
    fd: Dir,
    pub path: PathBuf,
}

/// Held for a whole run, but for the key of a dir the run swapped out ([`RunLock::release`]); released on drop or when
/// the process dies (even by SIGKILL).
#[derive(Debug)]
pub struct RunLock {
    /// Each key's lock file, open and locked.
    files: Vec<(Key, File)>,
    /// Another process held one of the locks when it was asked for (another run, most likely): what it found may
    /// have changed meanwhile.
    pub waited: bool,
}

impl RunLock {
    /// Lets go of the lock of `key`. A dir swapped out is trash, and its inode is free for any new dir once the purge
    /// has removed it: a run that kept its key would hold the lock of another run's new dir, which could not claim it.
    pub fn release(&mut self, key: &Key) {
        self.files.retain(|(k, _)| k != key);
    }
}

/// Why the run lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum RunLockError {
    #[error("interrupted while waiting for another cargo-safeclean run on {}", dir.display())]
    Interrupted { dir: PathBuf },
    #[error(
        "gave up after {:.1}s waiting for the lock of {} ({}), held by {holder}",
        waited.as_secs_f64(), dir.display(), lock.display()
    )]
    Timeout { dir: PathBuf, lock: PathBuf, holder: String, waited: Duration },
    #[error("no private dir for this tool's locks and logs: {0}")]
    NoRuntimeDir(String),
    #[error("failed to lock {} (to keep other runs out of {}): {source}", lock.display(), dir.display())]
    Io {
        dir: PathBuf,
        lock: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl RunLockError {
    /// What to do about it.
    #[must_use]
    pub fn help(&self) -> Option<String> {
        match self {
            RunLockError::Timeout { .. } => Some("let that run finish, or pass a longer --lock-timeout".into()),
            RunLockError::NoRuntimeDir(_) => Some("set XDG_RUNTIME_DIR or TMPDIR to a dir of your own".into()),
            RunLockError::Interrupted { .. } | RunLockError::Io { .. } => None,
        }
    }

    /// What was done: nothing, whenever the lock was waited for.
    #[must_use]
    pub fn note(&self) -> Option<String> {
        match self {
            RunLockError::Interrupted { .. } | RunLockError::Timeout { .. } => Some("nothing was changed".into()),
            RunLockError::NoRuntimeDir(_) | RunLockError::Io { .. } => None,
        }
    }
}

impl RuntimeDir {
    /// The first of `bases` that holds (or can hold) a private dir of this user's: see the module docs.
    pub fn open(bases: &[PathBuf]) -> Result<Self, RunLockError> {
        let name = sys::dir_name();
        let mut why = vec![];
        for base in bases {
            match sys::private_dir(base, &name) {
                Ok(fd) => return Ok(RuntimeDir { fd, path: base.join(&name) }),
                Err(e) => why.push(format!("{}: {e}", base.join(&name).display())),
            }
        }
        Err(RunLockError::NoRuntimeDir(why.join("; ")))
    }

    /// Creates the file `name` here for writing; it must not exist yet.
    pub fn create(&self, name: &str) -> io::Result<File> {
        sys::create(&self.fd, &self.path, name)
    }

    /// Removes the files whose names start with `prefix`, untouched for a minute, that no live process holds
    /// (logs of deleters that are gone, locks of dirs that are gone), without ever taking a lock from a run that
    /// holds it or is about to.
    pub fn remove_unlocked(&self, prefix: &str) {
        sys::remove_unlocked(&self.fd, &self.path, prefix, std::time::SystemTime::now() - Duration::from_mins(1));
    }
}

/// How long a lock that seems held is tried again before it counts as held: the cleanup of old lock files takes one
/// for a moment.
pub const QUIET: Duration = Duration::from_millis(200);

/// The locks of trash dirs: a purge holds the lock of each trash dir it works on, so that two purges of one user
/// never work on one (a run during a detached purge leaves that deleter's trash to it). They live in the runtime
/// dir, keyed by the trash dir's identity: nobody else can take them, whatever they hold open.
#[derive(Debug)]
pub struct TrashLocks {
    fd: Dir,
    path: PathBuf,
}

impl RuntimeDir {
    pub fn trash_locks(&self) -> io::Result<TrashLocks> {
        Ok(TrashLocks { fd: self.fd.try_clone()?, path: self.path.clone() })
    }
}

impl TrashLocks {
    /// The lock of the trash dir `id`, waiting at most `wait` while another purge holds it (`Ok(None)` then).
    pub fn lock(&self, id: FileId, wait: Duration) -> io::Result<Option<File>> {
        let name = format!("{TRASH_LOCK_PREFIX}{}-{}.lock", id.dev, id.ino);
        let deadline = Instant::now() + wait.max(QUIET);
        loop {
            match sys::open_locked(&self.fd, &self.path, &name)? {
                Some(file) => return Ok(Some(file)),
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                None => return Ok(None),
            }
        }
    }

    /// Whether a purge holds the lock of the trash dir `id` now.
    #[must_use]
    pub fn is_busy(&self, id: FileId) -> bool {
        matches!(self.lock(id, Duration::ZERO), Ok(None))
    }
}

/// The name prefix of the run locks in the runtime dir.
pub const RUN_LOCK_PREFIX: &str = "run-";

/// The name prefix of the trash locks in the runtime dir.
pub const TRASH_LOCK_PREFIX: &str = "trash-";

/// What a run lock is keyed on: a dir's identity, or, for a dir that does not exist yet, its parent's and its
/// name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Dir(FileId),
    Missing(FileId, Vec<u8>),
}

impl Key {
    fn file_name(&self) -> String {
        match self {
            Key::Dir(id) => format!("{RUN_LOCK_PREFIX}{}-{}.lock", id.dev, id.ino),
            Key::Missing(parent, name) => {
                let hex: String = name.iter().fold(String::new(), |mut hex, b| {
                    let _ = std::fmt::Write::write_fmt(&mut hex, format_args!("{b:02x}"));
                    hex
                });
                format!("{RUN_LOCK_PREFIX}{}-{}-{hex}.lock", parent.dev, parent.ino)
            }
        }
    }
}

/// Takes the run lock of every one of `keys` (`dir` names them in messages), waiting at most `timeout` for each.
/// `on_wait` is called once per lock someone holds, with the lock file; it says who holds it, for the error if the
/// wait runs out.
pub fn take(
    runtime: &RuntimeDir,
    dir: &Path,
    keys: &[Key],
    timeout: Duration,
    interrupt: &Interrupt,
    mut on_wait: impl FnMut(&Path) -> String,
) -> Result<RunLock, RunLockError> {
    let mut keys = keys.to_vec();
    // One order for every run, so that two runs never each hold one lock the other waits for.
    keys.sort();
    keys.dedup();
    let mut files = Vec::new();
    let mut waited = false;
    for key in keys {
        let name = key.file_name();
        let lock = runtime.path.join(&name);
        let start = Instant::now();
        let mut holder = None;
        let file = loop {
            match sys::open_locked(&runtime.fd, &runtime.path, &name) {
                Ok(Some(file)) => break file,
                Ok(None) => waited = true,
                Err(source) => return Err(RunLockError::Io { dir: dir.to_path_buf(), lock, source }),
            }
            // Held for longer than a cleanup's glance: somebody waits on it, and is told who.
            if start.elapsed() < QUIET {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let holder = holder.get_or_insert_with(|| on_wait(&lock));
            if interrupt.is_set() {
                return Err(RunLockError::Interrupted { dir: dir.to_path_buf() });
            }
            if start.elapsed() >= timeout.max(QUIET) {
                let (holder, waited) = (holder.clone(), start.elapsed());
                return Err(RunLockError::Timeout { dir: dir.to_path_buf(), lock, holder, waited });
            }
            // Short naps: a blocking lock would notice neither Ctrl-C (signal-hook restarts syscalls) nor the time.
            std::thread::sleep(Duration::from_millis(20));
        };
        files.push((key, file));
    }
    Ok(RunLock { files, waited })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_runtime_dir_is_private_or_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let rt = RuntimeDir::open(std::slice::from_ref(&base)).unwrap();
        assert_eq!(std::fs::metadata(&rt.path).unwrap().permissions().mode() & 0o777, 0o700);
        std::fs::set_permissions(&rt.path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = RuntimeDir::open(std::slice::from_ref(&base)).unwrap_err();
        assert!(e.to_string().contains("not a private dir"), "{e}");
        std::fs::remove_dir(&rt.path).unwrap();
        std::os::unix::fs::symlink(tmp.path(), &rt.path).unwrap();
        assert!(RuntimeDir::open(std::slice::from_ref(&base)).is_err(), "a symlink in its place is not followed");
        let other = tempfile::tempdir().unwrap();
        assert!(RuntimeDir::open(&[base, other.path().to_path_buf()]).is_ok(), "the next base is tried");
    }

    #[test]
    fn a_held_lock_is_waited_for_within_the_bound_and_named() {
        let tmp = tempfile::tempdir().unwrap();
        let rt = RuntimeDir::open(&[tmp.path().to_path_buf()]).unwrap();
        let interrupt = Interrupt::manual().unwrap();
        let key = [Key::Dir(FileId { dev: 1, ino: 2 })];
        let held = take(&rt, Path::new("w/target"), &key, Duration::ZERO, &interrupt, |_| unreachable!()).unwrap();
        let mut asked = 0;
        let e = take(&rt, Path::new("w/target"), &key, Duration::from_millis(50), &interrupt, |lock| {
            asked += 1;
            format!("pid 1 ({})", lock.display())
        })
        .unwrap_err();
        assert_eq!(asked, 1);
        assert!(matches!(&e, RunLockError::Timeout { holder, .. } if holder.starts_with("pid 1")), "{e}");
        drop(held);
        assert!(take(&rt, Path::new("w/target"), &key, Duration::ZERO, &interrupt, |_| unreachable!()).is_ok());
    }
}
