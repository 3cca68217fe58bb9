//! Walking a tree to delete it: never into a mount point (bind mounts of the same filesystem included), never
//! through a symlink, and making a mode-000 directory accessible without following anything.
//!
//! A bind mount shares `st_dev` with its parent, so the device number proves nothing; what differs is the mount.
//! Three ways to see it, best first: `openat2` with `RESOLVE_NO_XDEV` refuses to cross any mount in the very call
//! that opens the directory (Linux ≥ 5.6), so there is no gap between a check and the open; `statx` with
//! `STATX_MNT_ID` compares the opened directory's mount with its parent's (Linux ≥ 5.8); and on older kernels
//! `/proc/self/mountinfo` lists every mount point by path. The purge and the swap ask this module, and never
//! descend into what it calls a mount.
//!
//! [`Mounts::chmod_dir_rwx`] changes a directory through `/proc/self/fd` on an `O_PATH` handle: `fchmod` refuses
//! `O_PATH` handles, and `fchmodat` cannot refuse to follow a symlink on Linux (`AT_SYMLINK_NOFOLLOW` is
//! `ENOTSUP` there), so a check-then-chmod by path would race with a symlink swapped in.

use std::collections::HashSet;
use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, StatxFlags};
use rustix::io::Errno;

use crate::platform::{MountCheck, OpenDirError};

/// Every check a walk can be forced to use here.
pub const MOUNT_CHECKS: &[MountCheck] = &[MountCheck::Openat2, MountCheck::Statx, MountCheck::Mountinfo];

/// The walk's mount knowledge: `forced` replaces detection on `probe`.
#[must_use]
pub fn mounts(forced: Option<MountCheck>, probe: &Path) -> Mounts {
    Mounts::new(forced, probe)
}

impl MountCheck {
    /// The best check this kernel supports, found by trying each on `probe` (a directory that exists).
    #[must_use]
    pub fn detect(probe: &Path) -> Self {
        let Ok(dir) = rustix::fs::open(probe, dir_flags(), Mode::empty()) else { return MountCheck::Mountinfo };
        if !matches!(rustix::fs::openat2(&dir, ".", dir_flags(), Mode::empty(), no_xdev()), Err(Errno::NOSYS)) {
            return MountCheck::Openat2;
        }
        if mount_id(dir.as_fd(), c"", AtFlags::EMPTY_PATH).is_some() {
            return MountCheck::Statx;
        }
        MountCheck::Mountinfo
    }
}

/// Flags for opening a directory to walk: never through a symlink.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn no_xdev() -> ResolveFlags {
    ResolveFlags::NO_XDEV | ResolveFlags::NO_SYMLINKS
}

/// The mount id of `name` in `dir` (or of `dir` itself with `AT_EMPTY_PATH`), when the kernel reports one.
fn mount_id(dir: BorrowedFd<'_>, name: &CStr, flags: AtFlags) -> Option<u64> {
    let st = rustix::fs::statx(dir, name, flags | AtFlags::SYMLINK_NOFOLLOW, StatxFlags::MNT_ID).ok()?;
    StatxFlags::from_bits_retain(st.stx_mask).contains(StatxFlags::MNT_ID).then_some(st.stx_mnt_id)
}

/// The mount knowledge of one walk: the check in use and, for [`MountCheck::Mountinfo`], the mount points and the
/// open mountinfo, which `poll` reports changed (`POLLPRI`) when anything is mounted or unmounted: a bind mount made
/// while the walk runs is seen before the walk descends into it.
#[derive(Debug)]
pub struct Mounts {
    check: MountCheck,
    points: Mutex<HashSet<PathBuf>>,
    mountinfo: Option<std::fs::File>,
}

impl Mounts {
    /// `forced` replaces detection (a hidden switch, so that tests reach the fallbacks this kernel never needs).
    #[must_use]
    pub fn new(forced: Option<MountCheck>, probe: &Path) -> Self {
        let check = forced.unwrap_or_else(|| MountCheck::detect(probe));
        let mountinfo =
            (check == MountCheck::Mountinfo).then(|| std::fs::File::open("/proc/self/mountinfo").ok()).flatten();
        // Polled once before the set is read, so that only changes from then on are reported.
        let _ = mountinfo.as_ref().map(changed);
        let points = if check == MountCheck::Mountinfo { mount_points() } else { HashSet::new() };
        Mounts { check, points: Mutex::new(points), mountinfo }
    }

    /// Whether `path` is a mount point now: the set is read again if the mount table changed since.
    fn is_point(&self, path: &Path) -> bool {
        let mut points = self.points.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.mountinfo.as_ref().is_some_and(changed) {
            *points = mount_points();
        }
        points.contains(path)
    }

    #[must_use]
    pub fn check(&self) -> MountCheck {
        self.check
    }

    /// Opens the directory `name` in `parent` to list it: never through a symlink, never into a mount.
    pub fn open_dir(&self, parent: &OwnedFd, name: &CStr) -> Result<OwnedFd, OpenDirError> {
        self.open_within(parent, name, dir_flags())
    }

    /// An `O_PATH` handle on `name` in `parent` (a symlink itself, not its target), unless it is a mount point.
    pub fn open_path(&self, parent: &OwnedFd, name: &CStr) -> Result<OwnedFd, OpenDirError> {
        self.open_within(parent, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC)
    }

    /// Gives the owner rwx on the directory `name` in `parent`, never through a symlink and never on a mount's
    /// root: the `O_PATH` handle is opened as every descent is (see the module docs for why `/proc/self/fd`).
    pub fn chmod_dir_rwx(&self, parent: &OwnedFd, name: &CStr) -> Result<(), OpenDirError> {
        chmod_through_fd(&self.open_path(parent, name)?).map_err(OpenDirError::Errno)
    }

    /// Whether `name` in `parent` (a file or a directory, not followed if a symlink) is a mount point. Asked when
    /// an unlink fails with `EBUSY`, which is what a mount point (or an NFS client's busy file) answers.
    #[must_use]
    pub fn is_mount_at(&self, parent: &OwnedFd, name: &CStr) -> bool {
        matches!(self.open_path(parent, name), Err(OpenDirError::Mount))
    }

    fn open_within(&self, parent: &OwnedFd, name: &CStr, flags: OFlags) -> Result<OwnedFd, OpenDirError> {
        if self.check == MountCheck::Openat2 {
            return rustix::fs::openat2(parent, name, flags, Mode::empty(), no_xdev()).map_err(|e| match e {
                Errno::XDEV => OpenDirError::Mount,
                e => OpenDirError::Errno(e),
            });
        }
        let fd = rustix::fs::openat(parent, name, flags, Mode::empty()).map_err(OpenDirError::Errno)?;
        // Opened, but nothing done through it yet: if it is a mount, closing it leaves the mount untouched.
        if self.crosses(parent.as_fd(), fd.as_fd()) { Err(OpenDirError::Mount) } else { Ok(fd) }
    }

    /// Whether the opened `child` lies on another mount than `parent`.
    #[must_use]
    pub fn crosses(&self, parent: BorrowedFd<'_>, child: BorrowedFd<'_>) -> bool {
        let dev = |fd| rustix::fs::fstat(fd).map(|s| s.st_dev).ok();
        if dev(parent) != dev(child) {
            return true;
        }
        match self.check {
            MountCheck::Openat2 | MountCheck::Statx => {
                mount_id(parent, c"", AtFlags::EMPTY_PATH) != mount_id(child, c"", AtFlags::EMPTY_PATH)
            }
            // `/proc/self/fd/N` names exactly the inode that was opened, as mountinfo spells it; read after the open,
            // so a mount made before it is in the set.
            MountCheck::Mountinfo => {
                std::fs::read_link(format!("/proc/self/fd/{}", child.as_raw_fd())).is_ok_and(|p| self.is_point(&p))
            }
        }
    }
}

/// Gives the owner rwx on the inode an `O_PATH` handle names, through `/proc/self/fd`: `fchmod` refuses `O_PATH`
/// handles, and the link names exactly that inode, whatever happens to its name meanwhile.
fn chmod_through_fd(fd: &OwnedFd) -> Result<(), Errno> {
    rustix::fs::chmod(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(), Mode::RWXU)
}

/// The portable walk's chmod where `fchmodat(AT_SYMLINK_NOFOLLOW)` is not supported (Linux): the directory
/// `name` in `parent`, opened without following a symlink, changed through its handle.
pub fn chmod_dir_rwx_nofollow(parent: &OwnedFd, name: &CStr) -> Result<(), Errno> {
    let fd = rustix::fs::openat(
        parent,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    chmod_through_fd(&fd)
}

/// Whether two open files are on the same mount, by mount id (`true` where the kernel does not say): what the
/// portable walk adds on Linux to the device comparison, which a bind mount of the same filesystem passes.
#[must_use]
pub fn same_mount(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    mount_id(a, c"", AtFlags::EMPTY_PATH) == mount_id(b, c"", AtFlags::EMPTY_PATH)
}

/// Whether the mount table changed since the open mountinfo `file` was last polled (the poll resets it).
fn changed(file: &std::fs::File) -> bool {
    let mut fds = [PollFd::new(file, PollFlags::PRI)];
    matches!(poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(n) if n > 0)
        && fds[0].revents().contains(PollFlags::PRI)
}

/// Every mount point of this process's namespace, from `/proc/self/mountinfo`.
fn mount_points() -> HashSet<PathBuf> {
    std::fs::read("/proc/self/mountinfo").map(|t| parse_mountinfo(&t)).unwrap_or_default()
}

/// The mount points (fifth field) of mountinfo text, with the kernel's octal escapes (`\040` for a space) undone.
#[must_use]
pub fn parse_mountinfo(text: &[u8]) -> HashSet<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    text.split(|b| *b == b'\n')
        .filter_map(|line| line.split(|b| *b == b' ').nth(4))
        .map(|field| PathBuf::from(std::ffi::OsString::from_vec(unescape(field))))
        .collect()
}

fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal =
            field.get(i + 1..i + 4).filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let Some(d) = octal {
            out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
            i += 4;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_with_escapes() {
        let text = b"22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                     40 27 254:0 /src /w/target/with\\040space rw - ext4 /dev/vda rw\n";
        let points = parse_mountinfo(text);
        assert!(points.contains(Path::new("/proc")));
        assert!(points.contains(Path::new("/w/target/with space")));
        assert_eq!(points.len(), 2);
    }

    #[test]
    fn every_check_sees_no_mount_in_a_plain_tree() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        std::fs::write(tmp.path().join("f"), "").unwrap();
        let parent = rustix::fs::open(tmp.path(), dir_flags(), Mode::empty()).unwrap();
        for check in [MountCheck::Openat2, MountCheck::Statx, MountCheck::Mountinfo] {
            let m = Mounts::new(Some(check), tmp.path());
            assert!(m.open_dir(&parent, c"d").is_ok(), "{check:?}");
            assert!(!m.is_mount_at(&parent, c"d") && !m.is_mount_at(&parent, c"f"), "{check:?}");
            let root = rustix::fs::open("/", dir_flags(), Mode::empty()).unwrap();
            assert!(m.is_mount_at(&root, c"proc"), "{check:?}");
        }
        assert_eq!(MountCheck::detect(tmp.path()), MountCheck::Openat2, "this kernel has openat2");
    }

    #[test]
    #[ignore = "needs root"]
    fn a_bind_mount_made_during_the_walk_is_seen_by_every_check() {
        let tmp = tempfile::tempdir().unwrap();
        let (inside, source) = (tmp.path().join("walked"), tmp.path().join("source"));
        std::fs::create_dir_all(inside.join("later")).unwrap();
        std::fs::create_dir_all(&source).unwrap();
        let parent = rustix::fs::open(&inside, dir_flags(), Mode::empty()).unwrap();
        for check in [MountCheck::Openat2, MountCheck::Statx, MountCheck::Mountinfo] {
            // Made before the mount, as a walk's `Mounts` is.
            let m = Mounts::new(Some(check), tmp.path());
            let bind = |args: &[&std::ffi::OsStr]| std::process::Command::new("mount").args(args).status().unwrap();
            assert!(bind(&["--bind".as_ref(), source.as_os_str(), inside.join("later").as_os_str()]).success());
            let seen = m.open_dir(&parent, c"later");
            let _ = std::process::Command::new("umount").arg("-l").arg(inside.join("later")).status();
            assert_eq!(seen.err(), Some(OpenDirError::Mount), "{check:?}");
        }
    }
}
