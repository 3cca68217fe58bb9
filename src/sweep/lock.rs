//! Cargo's own locks of each profile dir, taken exclusively for the sweep: every lock file a cargo of any version
//! takes there (`.cargo-lock`, `.cargo-build-lock`, `.cargo-artifact-lock`; made if missing, as cargo makes them),
//! in the build dir's and the artifact dir's profile dir. While they are held no cargo builds there, so what the
//! sweep sees while it decides and moves stays true.
//!
//! All or nothing, and never holding while waiting: a cargo that holds one profile's lock may be waiting for
//! another's (a `--target` build locks the host's profile too). A busy lock is named once, then all are tried again
//! until `--lock-timeout`; then the free profiles are locked and the busy ones skipped.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::interrupt::Interrupt;
use crate::layout::PROFILE_LOCKS;
use crate::model::Owner;
use crate::platform::Acting;

/// A profile (`debug`, `<triple>/release`) and its dirs: the build dir's, and the artifact dir's if it is another.
#[derive(Debug)]
pub struct ProfileDirs {
    pub profile: PathBuf,
    /// Each dir's path and handle.
    pub dirs: Vec<(PathBuf, OwnedFd)>,
}

/// The locks of one profile, held until dropped.
#[derive(Debug)]
pub struct Held {
    pub profile: PathBuf,
    _locks: Vec<OwnedFd>,
}

/// A profile whose lock a build held past the bound, or that cannot be locked as cargo locks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    pub profile: PathBuf,
    pub lock: PathBuf,
    /// Why no wait would help (`None`: a build holds it): a lock file that is a link or no regular file (cargo
    /// would lock what it leads to, so locking it proves nothing), or a profile dir with none of cargo's lock files
    /// (no cargo built there: making them would make any dir look like a target dir to the guard).
    pub unlockable: Option<&'static str>,
}

/// Locks every lock file of `p` (made if missing and `create`), or says which one is taken.
fn try_lock(p: &ProfileDirs, owner: Option<Owner>, create: bool) -> Result<Vec<OwnedFd>, Busy> {
    let busy = |lock: PathBuf, unlockable| Busy { profile: p.profile.clone(), lock, unlockable };
    let exists = |dir: &OwnedFd, name: &str| {
        rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .map(|st| FileType::from_raw_mode(st.st_mode))
    };
    if let Some((path, _)) = p.dirs.first()
        && !p.dirs.iter().any(|(_, dir)| PROFILE_LOCKS.iter().any(|name| exists(dir, name).is_ok()))
    {
        return Err(busy(
            path.join(PROFILE_LOCKS[0]),
            Some("none of cargo's lock files is there: no cargo built in it"),
        ));
    }
    // Lock files a cargo would make are made with the tree owner's rights, so that its cargo can open them (`None`:
    // with the rights the caller acts with).
    let _acting = owner.and_then(|o| Acting::as_owner(Some(o)).ok());
    let mut held = Vec::new();
    for (path, dir) in &p.dirs {
        for name in PROFILE_LOCKS {
            match exists(dir, name) {
                Ok(FileType::RegularFile) | Err(Errno::NOENT) => {}
                Ok(_) => return Err(busy(path.join(name), Some("it is a link or no regular file"))),
                Err(_) => return Err(busy(path.join(name), Some("it cannot be inspected"))),
            }
            let flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            let flags = if create { flags | OFlags::CREATE } else { flags };
            let fd = match rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o644)) {
                Ok(fd) => fd,
                // Not ours to make or write: lock what is there, read-only.
                Err(Errno::ACCESS | Errno::PERM | Errno::ROFS) => {
                    let ro = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
                    match rustix::fs::openat(dir, name, ro, Mode::empty()) {
                        Ok(fd) => fd,
                        Err(Errno::NOENT) => continue,
                        Err(_) => return Err(busy(path.join(name), Some("it cannot be opened"))),
                    }
                }
                // A dry run makes none; a missing one is no build's.
                Err(Errno::NOENT) => continue,
                Err(_) => return Err(busy(path.join(name), Some("it cannot be opened"))),
            };
            match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => held.push(fd),
                Err(Errno::WOULDBLOCK) => return Err(busy(path.join(name), None)),
                // A filesystem without locks (NFS, as cargo finds it): cargo takes none there either.
                Err(_) => {}
            }
        }
    }
    Ok(held)
}

/// Takes the locks of every profile in `profiles`, waiting at most `timeout` for busy ones (`on_busy` is told of
/// each busy lock once, to name its holder). Returns the profiles held and the ones skipped. A dry run (`create`
/// false) makes no lock file.
pub fn acquire(
    profiles: &[ProfileDirs],
    owner: Option<Owner>,
    create: bool,
    timeout: Duration,
    interrupt: Option<&Interrupt>,
    on_busy: &mut dyn FnMut(&Path),
) -> (Vec<Held>, Vec<Busy>) {
    let deadline = Instant::now() + timeout;
    let mut told: Vec<PathBuf> = Vec::new();
    loop {
        let mut held = Vec::new();
        let mut busy = Vec::new();
        for p in profiles {
            match try_lock(p, owner, create) {
                Ok(locks) => held.push(Held { profile: p.profile.clone(), _locks: locks }),
                Err(b) => busy.push(b),
            }
        }
        // Only a lock a build holds is worth waiting for.
        let waiting = busy.iter().any(|b| b.unlockable.is_none());
        if !waiting || Instant::now() >= deadline || interrupt.is_some_and(Interrupt::is_set) {
            return (held, busy);
        }
        drop(held);
        for b in busy.iter().filter(|b| b.unlockable.is_none()) {
            if !told.contains(&b.lock) {
                told.push(b.lock.clone());
                on_busy(&b.lock);
            }
        }
        std::thread::sleep(Duration::from_millis(20).min(deadline.saturating_duration_since(Instant::now())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(dir: &Path) -> ProfileDirs {
        let fd = rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        ProfileDirs { profile: "debug".into(), dirs: vec![(dir.to_path_buf(), fd)] }
    }

    #[test]
    fn every_lock_is_made_and_taken_and_a_busy_one_skips_its_profile() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join(".cargo-lock"), "").unwrap();
        std::fs::write(b.join(".cargo-lock"), "").unwrap();
        let other = std::fs::File::open(b.join(".cargo-lock")).unwrap();
        rustix::fs::flock(&other, FlockOperation::LockExclusive).unwrap();
        let interrupt = Interrupt::manual().unwrap();
        let mut named = Vec::new();
        let mut pb = profile(&b);
        pb.profile = "release".into();
        let (held, busy) =
            acquire(&[profile(&a), pb], None, true, Duration::from_millis(60), Some(&interrupt), &mut |l| {
                named.push(l.to_path_buf());
            });
        assert_eq!(held.len(), 1);
        assert_eq!(busy, [Busy { profile: "release".into(), lock: b.join(".cargo-lock"), unlockable: None }]);
        assert_eq!(named, [b.join(".cargo-lock")], "named once");
        for name in PROFILE_LOCKS {
            assert!(crate::layout::is_held(&a.join(name)), "{name} is made and held");
        }
        drop(held);
        assert!(!crate::layout::is_held(&a.join(".cargo-lock")));
    }

    #[test]
    fn a_linked_lock_file_or_a_dir_no_cargo_built_in_is_never_locked_nor_waited_for() {
        let tmp = tempfile::tempdir().unwrap();
        let (linked, bare, elsewhere) = (tmp.path().join("l"), tmp.path().join("n"), tmp.path().join("lock"));
        for d in [&linked, &bare] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&elsewhere, "").unwrap();
        std::os::unix::fs::symlink(&elsewhere, linked.join(".cargo-lock")).unwrap();
        // A build holds the lock through the link, as cargo follows it: a wait would be for the whole bound.
        let build = std::fs::File::open(&elsewhere).unwrap();
        rustix::fs::flock(&build, FlockOperation::LockExclusive).unwrap();
        let started = Instant::now();
        let (held, busy) =
            acquire(&[profile(&linked), profile(&bare)], None, true, Duration::from_mins(1), None, &mut |_| {
                panic!("nothing to wait for")
            });
        assert!(started.elapsed() < Duration::from_secs(5), "no wait");
        assert!(held.is_empty(), "neither is locked");
        assert_eq!(busy.len(), 2);
        assert!(busy.iter().all(|b| b.unlockable.is_some()), "{busy:?}");
        for name in PROFILE_LOCKS {
            assert!(!bare.join(name).exists(), "{name} is not made where no cargo built");
        }
    }
}
