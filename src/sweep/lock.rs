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

use rustix::fs::{FlockOperation, Mode, OFlags};
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

/// A profile whose lock a build held past the bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    pub profile: PathBuf,
    pub lock: PathBuf,
}

/// Locks every lock file of `p` (made if missing and `create`), or says which one is taken.
fn try_lock(p: &ProfileDirs, owner: Option<Owner>, create: bool) -> Result<Vec<OwnedFd>, PathBuf> {
    // Lock files a cargo would make are made with the tree owner's rights, so that its cargo can open them (`None`:
    // with the rights the caller acts with).
    let _acting = owner.and_then(|o| Acting::as_owner(Some(o)).ok());
    let mut held = Vec::new();
    for (path, dir) in &p.dirs {
        for name in PROFILE_LOCKS {
            let flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            let flags = if create { flags | OFlags::CREATE } else { flags };
            let fd = match rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o644)) {
                Ok(fd) => fd,
                // Not ours to make or write: lock what is there, read-only.
                Err(Errno::ACCESS | Errno::PERM | Errno::ROFS) => {
                    let ro = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
                    match rustix::fs::openat(dir, name, ro, Mode::empty()) {
                        Ok(fd) => fd,
                        Err(_) => continue,
                    }
                }
                Err(_) => continue,
            };
            match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => held.push(fd),
                Err(Errno::WOULDBLOCK) => return Err(path.join(name)),
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
                Err(lock) => busy.push(Busy { profile: p.profile.clone(), lock }),
            }
        }
        if busy.is_empty() || Instant::now() >= deadline || interrupt.is_some_and(Interrupt::is_set) {
            return (held, busy);
        }
        drop(held);
        for b in &busy {
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
        assert_eq!(busy, [Busy { profile: "release".into(), lock: b.join(".cargo-lock") }]);
        assert_eq!(named, [b.join(".cargo-lock")], "named once");
        for name in PROFILE_LOCKS {
            assert!(crate::layout::is_held(&a.join(name)), "{name} is made and held");
        }
        drop(held);
        assert!(!crate::layout::is_held(&a.join(".cargo-lock")));
    }
}
