//! Where this tool keeps what is its own, and the lock that serialises runs on one target dir.
//!
//! The runtime dir is the runner's own: `cargo-safeclean-UID` in `$XDG_RUNTIME_DIR`, else in `$TMPDIR`, else in
//! `/tmp`, made with mode 0700 and used only if it is a dir owned by the runner that nobody else may enter. Nothing
//! there can be replaced, opened or locked by another user. The run lock is a file there named by the target dir's
//! identity (device and inode, not its name), so every spelling of one target dir serialises, and the workspace
//! and the dir beside the target stay as they were. The detached deleter's logs live there too.
//!
//! Waiting is bounded: a run waits for the lock at most `--lock-timeout`, naming the process that holds it.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, flock};
use rustix::io::Errno;

use crate::interrupt::Interrupt;
use crate::model::FileId;
use crate::platform;

/// The runner's own dir for locks and logs, open.
#[derive(Debug)]
pub struct RuntimeDir {
    fd: OwnedFd,
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
        let me = rustix::process::geteuid().as_raw();
        let name = format!("cargo-safeclean-{me}");
        let mut why = vec![];
        for base in bases {
            match private_dir(base, &name, me) {
                Ok(fd) => return Ok(RuntimeDir { fd, path: base.join(&name) }),
                Err(e) => why.push(format!("{}: {e}", base.join(&name).display())),
            }
        }
        Err(RunLockError::NoRuntimeDir(why.join("; ")))
    }

    /// Creates the file `name` here for writing; it must not exist yet.
    pub fn create(&self, name: &str) -> io::Result<File> {
        let flags = OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(File::from(rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o600))?))
    }

    /// Removes the files whose names start with `prefix`, untouched for a minute, that no live process holds
    /// locked (logs of deleters that are gone, locks of dirs that are gone). A lock file in use is either held or
    /// new; one taken here for the moment of the check makes a locker retry ([`QUIET`]).
    pub fn remove_unlocked(&self, prefix: &str) {
        let Ok(listing) = rustix::fs::Dir::read_from(&self.fd) else { return };
        let a_minute_ago = std::time::SystemTime::now() - Duration::from_mins(1);
        for entry in listing.flatten() {
            let name = entry.file_name();
            if !name.to_bytes().starts_with(prefix.as_bytes()) {
                continue;
            }
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            let Ok(fd) = rustix::fs::openat(&self.fd, name, flags, Mode::empty()) else { continue };
            let old = File::from(fd);
            if old.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < a_minute_ago)
                && flock(&old, FlockOperation::NonBlockingLockExclusive).is_ok()
            {
                let _ = rustix::fs::unlinkat(&self.fd, name, AtFlags::empty());
            }
        }
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
    fd: OwnedFd,
}

impl RuntimeDir {
    pub fn trash_locks(&self) -> io::Result<TrashLocks> {
        Ok(TrashLocks { fd: self.fd.try_clone()? })
    }
}

impl TrashLocks {
    /// The lock of the trash dir `id`, waiting at most `wait` while another purge holds it (`Ok(None)` then).
    pub fn lock(&self, id: FileId, wait: Duration) -> io::Result<Option<File>> {
        let name = format!("{TRASH_LOCK_PREFIX}{}-{}.lock", id.dev, id.ino);
        let deadline = Instant::now() + wait.max(QUIET);
        loop {
            let flags = OFlags::CREATE | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let file = File::from(rustix::fs::openat(&self.fd, name.as_str(), flags, Mode::from_raw_mode(0o600))?);
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                // A run removes the lock files nobody holds: one removed between the open and the lock is no lock.
                Ok(()) if still_named(&self.fd, &name, &file) => return Ok(Some(file)),
                Ok(()) => {}
                Err(Errno::WOULDBLOCK) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Err(Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Whether a purge holds the lock of the trash dir `id` now.
    #[must_use]
    pub fn is_busy(&self, id: FileId) -> bool {
        matches!(self.lock(id, Duration::ZERO), Ok(None))
    }
}

/// Whether `name` in `dir` is still the file `file`.
fn still_named(dir: &OwnedFd, name: &str, file: &File) -> bool {
    let there = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map(|st| platform::file_id(&st));
    there.is_ok() && there.ok() == id_of_file(file)
}

fn id_of_file(file: &File) -> Option<FileId> {
    rustix::fs::fstat(file).ok().map(|st| platform::file_id(&st))
}

/// The name prefix of the run locks in the runtime dir.
pub const RUN_LOCK_PREFIX: &str = "run-";

/// The name prefix of the trash locks in the runtime dir.
pub const TRASH_LOCK_PREFIX: &str = "trash-";

/// Opens (making it if need be) the dir `name` in `base`, and checks that it is this user's alone.
fn private_dir(base: &Path, name: &str, me: u32) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let base_fd = rustix::fs::open(base, flags, Mode::empty())?;
    let st = rustix::fs::fstat(&base_fd)?;
    // A base someone else may write could have the name taken by them: only if its sticky bit stops that.
    let shared_unsafely = st.st_mode & 0o022 != 0 && st.st_mode & 0o1000 == 0;
    if (st.st_uid != me && st.st_uid != 0) || shared_unsafely {
        return Err(io::Error::other("others may write the dir it would be in"));
    }
    match rustix::fs::mkdirat(&base_fd, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = rustix::fs::openat(&base_fd, name, flags | OFlags::NOFOLLOW, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory || st.st_uid != me || st.st_mode & 0o077 != 0 {
        return Err(io::Error::other(format!(
            "it is not a private dir of uid {me} (owner {}, mode {:o}); remove it",
            st.st_uid,
            st.st_mode & 0o7777
        )));
    }
    Ok(fd)
}

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
        let io_error = |e: Errno| RunLockError::Io { dir: dir.to_path_buf(), lock: lock.clone(), source: e.into() };
        let flags = OFlags::CREATE | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let file = File::from(
            rustix::fs::openat(&runtime.fd, name.as_str(), flags, Mode::from_raw_mode(0o600)).map_err(io_error)?,
        );
        let start = Instant::now();
        let mut holder = None;
        let mut file = file;
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                // A run removes the lock files nobody holds: one removed between the open and the lock is no lock.
                Ok(()) if still_named(&runtime.fd, &name, &file) => break,
                Ok(()) => {
                    file = File::from(
                        rustix::fs::openat(&runtime.fd, name.as_str(), flags, Mode::from_raw_mode(0o600))
                            .map_err(io_error)?,
                    );
                    continue;
                }
                Err(Errno::WOULDBLOCK) => waited = true,
                Err(e) => return Err(io_error(e)),
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
            // Short naps: a blocking flock would notice neither Ctrl-C (signal-hook restarts syscalls) nor the time.
            std::thread::sleep(Duration::from_millis(20));
        }
        files.push((key, file));
    }
    Ok(RunLock { files, waited })
}

/// The identity the open dir or file `fd` has, for keys and for telling a dir from its replacement.
pub fn id_of(fd: &OwnedFd) -> io::Result<FileId> {
    Ok(platform::file_id(&rustix::fs::fstat(fd)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_runtime_dir_is_private_or_not_used() {
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
        let held = take(&rt, Path::new("/w/target"), &key, Duration::ZERO, &interrupt, |_| unreachable!()).unwrap();
        let mut asked = 0;
        let e = take(&rt, Path::new("/w/target"), &key, Duration::from_millis(50), &interrupt, |lock| {
            asked += 1;
            format!("pid 1 ({})", lock.display())
        })
        .unwrap_err();
        assert_eq!(asked, 1);
        assert!(matches!(&e, RunLockError::Timeout { holder, .. } if holder.starts_with("pid 1")), "{e}");
        drop(held);
        assert!(take(&rt, Path::new("/w/target"), &key, Duration::ZERO, &interrupt, |_| unreachable!()).is_ok());
    }
}
