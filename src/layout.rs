//! What cargo leaves on disk, in one place: its lock files (build and artifact dirs, the package cache), the
//! `CACHEDIR.TAG` it writes, what a target dir looks like, and whether one of its locks is taken right now.
//!
//! Cargo 1.95 takes `<profile>/.cargo-lock` in the build and artifact dir; from 1.96 also `.cargo-build-lock` and
//! `.cargo-artifact-lock`, with `.cargo-lock` kept as a shared compatibility lock (cargo's
//! `core/compiler/layout.rs`). The package cache locks are `$CARGO_HOME/.package-cache` and
//! `.package-cache-mutate`.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, Stat, flock};
use rustix::io::Errno;

pub mod unit;

/// The first line of a cache directory tag (<https://bford.info/cachedir/>): the same for every tool.
pub const CACHEDIR_SIGNATURE: &str = "Signature: 8a477f597d28d172789f06886806bc55";

/// The `CACHEDIR.TAG` cargo writes, byte for byte, so tools that look for cargo's tag find ours.
pub const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55
# This file is a cache directory tag created by cargo.
# For information about cache directory tags see https://bford.info/cachedir/
";

/// The extended attribute that keeps a dir out of Time Machine backups on macOS, as cargo sets it on a target dir it
/// creates (`NSURLIsExcludedFromBackupKey`; `tmutil addexclusion` writes the same): the name, and the value, a
/// binary property list holding the string `com.apple.backupd`.
pub const BACKUP_EXCLUSION: (&str, &[u8]) = (
    "com.apple.metadata:com_apple_backup_excludeItem",
    b"bplist00\x5f\x10\x11com.apple.backupd\x08\
      \0\0\0\0\0\0\x01\x01\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x1c",
);

/// What only cargo's own tag says: the signature line alone is shared by every tool that writes a tag.
const CARGO_TAG_COMMENT: &str = "# This file is a cache directory tag created by cargo.";

/// The name prefix of this tool's trash dirs inside a target dir (`.safeclean-trash-PID-HEX`): ours, not cargo's,
/// but on disk beside cargo's files, and never a holding.
pub const TRASH_PREFIX: &str = ".safeclean-trash-";

/// The suffix of the dir a run prepares beside the target dir before it swaps it in: `target.safeclean-ID-new`.
pub const NEW_SUFFIX: &str = "-new";

/// A detached deleter's log, in the runner's runtime dir: `deleter-ID.log`.
pub const DELETER_LOG_PREFIX: &str = "deleter-";
pub const LOG_SUFFIX: &str = ".log";

/// Whether `name` is a detached deleter's log as this tool names it.
#[must_use]
pub fn is_deleter_log(name: &[u8]) -> bool {
    name.strip_prefix(DELETER_LOG_PREFIX.as_bytes())
        .and_then(|rest| rest.strip_suffix(LOG_SUFFIX.as_bytes()))
        .is_some_and(is_run_id)
}

/// Whether `id` is a run id as this tool makes them (`PID-HEX`, or `PID-HEX-new`): never take a name a user chose
/// alike for ours.
#[must_use]
pub fn is_run_id(id: &[u8]) -> bool {
    let id = id.strip_suffix(NEW_SUFFIX.as_bytes()).unwrap_or(id);
    let mut parts = id.splitn(2, |b| *b == b'-');
    let pid = parts.next().unwrap_or_default();
    let time = parts.next().unwrap_or_default();
    !pid.is_empty() && pid.iter().all(u8::is_ascii_digit) && !time.is_empty() && time.iter().all(u8::is_ascii_hexdigit)
}

/// Whether `name` is one this tool gives its trash: `.safeclean-trash-ID` (an older version also put its deleter's
/// log there as `.safeclean-trash-ID.log`).
#[must_use]
pub fn is_trash_name(name: &[u8]) -> bool {
    let Some(id) = name.strip_prefix(TRASH_PREFIX.as_bytes()) else { return false };
    is_run_id(id.strip_suffix(LOG_SUFFIX.as_bytes()).unwrap_or(id))
}

/// The lock files cargo keeps in each profile dir.
pub const PROFILE_LOCKS: [&str; 3] = [".cargo-lock", ".cargo-build-lock", ".cargo-artifact-lock"];

/// The package cache locks in cargo's home.
pub const PACKAGE_CACHE_LOCKS: [&str; 2] = [".package-cache", ".package-cache-mutate"];

/// Which of cargo's locks a lock file is, as `--unlock` and the JSON name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockName {
    /// `$CARGO_HOME/.package-cache` and `.package-cache-mutate` ("package cache", "shared package cache",
    /// "package cache mutation" in cargo's messages).
    PackageCache,
    /// `.cargo-build-lock`, and `.cargo-lock` (which cargo 1.95 takes for the build dir, and for the artifact dir
    /// when both are one dir).
    BuildDirectory,
    /// `.cargo-artifact-lock`.
    ArtifactDirectory,
}

impl LockName {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            LockName::PackageCache => "package-cache",
            LockName::BuildDirectory => "build-directory",
            LockName::ArtifactDirectory => "artifact-directory",
        }
    }

    /// As cargo says it: "Blocking waiting for file lock on build directory".
    #[must_use]
    pub fn in_words(self) -> &'static str {
        match self {
            LockName::PackageCache => "package cache",
            LockName::BuildDirectory => "build directory",
            LockName::ArtifactDirectory => "artifact directory",
        }
    }
}

/// Which of cargo's locks the file `path` is, by its name.
#[must_use]
pub fn lock_name(path: &Path) -> Option<LockName> {
    let name = path.file_name()?;
    if PACKAGE_CACHE_LOCKS.iter().any(|l| name == *l) {
        Some(LockName::PackageCache)
    } else if name == ".cargo-artifact-lock" {
        Some(LockName::ArtifactDirectory)
    } else if name == ".cargo-build-lock" || name == ".cargo-lock" {
        Some(LockName::BuildDirectory)
    } else {
        None
    }
}

/// Whether `path` names one of cargo's build or artifact dir locks.
#[must_use]
pub fn is_profile_lock(path: &Path) -> bool {
    path.file_name().is_some_and(|n| PROFILE_LOCKS.iter().any(|l| n == *l))
}

/// Cargo's lock files in `dir`: `<profile>/<lock>`, and `<triple>/<profile>/<lock>` under dirs named like a target
/// triple. Only those dirs are listed: a target dir's `deps/`, `build/` and `doc/` hold thousands of entries, and
/// this runs between stopping the holders and the swap, while the user waits.
#[must_use]
pub fn cargo_locks(dir: &Path) -> Vec<PathBuf> {
    match rustix::fs::open(dir, dir_flags(), Mode::empty()) {
        Ok(fd) => cargo_locks_at(&fd, dir),
        Err(_) => Vec::new(),
    }
}

/// [`cargo_locks`] of the open dir `fd`, named under `dir`. Nothing is followed: a symlink named like a profile dir
/// or a lock file is no lock of cargo's.
#[must_use]
pub fn cargo_locks_at(fd: &OwnedFd, dir: &Path) -> Vec<PathBuf> {
    locks_where(fd, dir, &|_| true)
}

/// [`cargo_locks_at`], keeping only lock files whose stat passes `keep`.
fn locks_where(fd: &OwnedFd, dir: &Path, keep: &dyn Fn(&Stat) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (sub, name) in subdirs(fd) {
        push_locks(&sub, &dir.join(&name), keep, &mut out);
        if looks_like_triple(&name.to_string_lossy()) {
            for (profile, profile_name) in subdirs(&sub) {
                push_locks(&profile, &dir.join(&name).join(profile_name), keep, &mut out);
            }
        }
    }
    out.sort();
    out
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// The dirs directly in `fd` whose names do not start with a dot, opened without following a symlink.
fn subdirs(fd: &OwnedFd) -> Vec<(OwnedFd, OsString)> {
    let Ok(listing) = rustix::fs::Dir::read_from(fd) else { return Vec::new() };
    listing
        .flatten()
        .filter(|e| e.file_type() == FileType::Directory && !e.file_name().to_bytes().starts_with(b"."))
        .filter_map(|e| {
            let sub = rustix::fs::openat(fd, e.file_name(), dir_flags(), Mode::empty()).ok()?;
            Some((sub, OsStr::from_bytes(e.file_name().to_bytes()).to_os_string()))
        })
        .collect()
}

fn push_locks(profile: &OwnedFd, path: &Path, keep: &dyn Fn(&Stat) -> bool, out: &mut Vec<PathBuf>) {
    out.extend(PROFILE_LOCKS.iter().filter(|n| is_regular_at(profile, n, keep)).map(|n| path.join(n)));
}

/// Whether `name` in `dir` is a regular file itself (not a symlink to one) whose stat passes `keep`.
fn is_regular_at(dir: &OwnedFd, name: &str, keep: &dyn Fn(&Stat) -> bool) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && keep(&st))
}

/// `x86_64-unknown-linux-gnu`, `wasm32-unknown-unknown`, `aarch64-apple-darwin`: at least three parts.
pub(crate) fn looks_like_triple(name: &str) -> bool {
    name.split('-').filter(|p| !p.is_empty()).count() >= 3
}

/// The package cache locks of cargo's home `cargo_home`.
#[must_use]
pub fn package_cache_locks(cargo_home: &Path) -> Vec<PathBuf> {
    PACKAGE_CACHE_LOCKS.iter().map(|n| cargo_home.join(n)).collect()
}

/// Whether the open dir `dir` carries one of the marks only cargo leaves in a target or build dir: cargo's own tag
/// text, or its layout (`.rustc_info.json`, a profile dir with cargo's lock file). None of them is followed if it
/// is a symlink: a mark is what cargo wrote there, not what a link in a cloned repository points to. And a mark
/// counts only if the dir's owner, root or this process's user wrote it: anyone may write a tag into a dir open to
/// all (`/dev/shm`, a shared cache), and that does not make it a target dir for a root run.
#[must_use]
pub fn looks_like_target(dir: &OwnedFd) -> bool {
    let Ok(owner) = rustix::fs::fstat(dir).map(|st| st.st_uid) else { return false };
    let me = rustix::process::geteuid().as_raw();
    let theirs = |st: &Stat| st.st_uid == owner || st.st_uid == 0 || st.st_uid == me;
    has_cargo_tag(dir, &theirs)
        || is_regular_at(dir, ".rustc_info.json", &theirs)
        || !locks_where(dir, Path::new(""), &theirs).is_empty()
}

/// `CACHEDIR.TAG` with the signature and the comment cargo writes (read no further than a tag is long).
fn has_cargo_tag(dir: &OwnedFd, keep: &dyn Fn(&Stat) -> bool) -> bool {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::openat(dir, "CACHEDIR.TAG", flags, Mode::empty()) else { return false };
    if !rustix::fs::fstat(&fd).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && keep(&st))
    {
        return false;
    }
    let mut text = String::new();
    let read = File::from(fd).take(4096).read_to_string(&mut text);
    read.is_ok() && text.starts_with(CACHEDIR_SIGNATURE) && text.lines().any(|l| l.trim_end() == CARGO_TAG_COMMENT)
}

/// Whether some process holds `lock` right now: a non-blocking exclusive `flock`, released at once.
#[must_use]
pub fn is_held(lock: &Path) -> bool {
    // Never through a link, never waiting on whatever a name was swapped for (a FIFO blocks an open).
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    rustix::fs::open(lock, flags, Mode::empty()).is_ok_and(|file| held(&file))
}

/// [`is_held`] for the lock file `name` in the open dir `dir`.
#[must_use]
pub fn is_held_at(dir: &OwnedFd, name: &str) -> bool {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    rustix::fs::openat(dir, name, flags, Mode::empty()).is_ok_and(|file| held(&file))
}

fn held(file: &OwnedFd) -> bool {
    rustix::fs::fstat(file).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
        && matches!(flock(file, FlockOperation::NonBlockingLockExclusive), Err(Errno::WOULDBLOCK))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exclusion's value is the property list it claims to be: header, one ASCII string object (marker `0x5f`,
    /// its length as a one-byte int), an offset table pointing at it, and a trailer that points at the table.
    #[test]
    fn the_backup_exclusion_is_a_binary_plist_of_one_string() {
        let v = BACKUP_EXCLUSION.1;
        assert_eq!(v.len(), 61);
        assert_eq!(&v[..8], b"bplist00");
        let trailer = &v[v.len() - 32..];
        let be = |b: &[u8]| b.iter().fold(0usize, |n, x| n << 8 | usize::from(*x));
        assert_eq!((trailer[6], trailer[7]), (1, 1), "one-byte offsets and object refs");
        assert_eq!((be(&trailer[8..16]), be(&trailer[16..24])), (1, 0), "one object, the top one");
        let table = be(&trailer[24..32]);
        let object = usize::from(v[table]);
        assert_eq!(&v[object..object + 3], &[0x5f, 0x10, 17]);
        assert_eq!(&v[object + 3..object + 3 + 17], b"com.apple.backupd");
        assert_eq!(object + 3 + 17, table, "the table follows the object");
    }

    #[test]
    fn trash_names_are_only_the_ones_this_tool_makes() {
        assert!(is_trash_name(b".safeclean-trash-12-ab09"));
        assert!(is_trash_name(b".safeclean-trash-12-ab09.log"));
        assert!(is_trash_name(b".safeclean-trash-12-ab09-new"));
        assert!(is_deleter_log(b"deleter-12-ab09.log"));
        assert!(!is_deleter_log(b"deleter-12-ab09") && !is_deleter_log(b"deleter-x.log"));
        for other in [&b".safeclean-trash-"[..], b".safeclean-trash-x", b".safeclean-trash-12-zz", b"target", b"12-ab"]
        {
            assert!(!is_trash_name(other), "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn finds_and_probes_profile_locks() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("debug")).unwrap();
        std::fs::create_dir_all(d.join("x86_64-unknown-linux-gnu/release")).unwrap();
        std::fs::write(d.join("debug/.cargo-lock"), "").unwrap();
        std::fs::write(d.join("x86_64-unknown-linux-gnu/release/.cargo-build-lock"), "").unwrap();
        let locks = cargo_locks(d);
        assert_eq!(locks.len(), 2);
        assert!(locks.iter().all(|l| is_profile_lock(l)));
        assert!(!is_held(&locks[0]));
        let held = File::open(&locks[0]).unwrap();
        flock(&held, FlockOperation::LockExclusive).unwrap();
        assert!(is_held(&locks[0]));
        drop(held);
        assert!(!is_held(&locks[0]));
        assert!(looks_like_target(&open(d)));
    }

    fn open(d: &Path) -> OwnedFd {
        rustix::fs::open(d, dir_flags(), Mode::empty()).unwrap()
    }

    #[test]
    fn only_cargos_own_tag_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("CACHEDIR.TAG"), format!("{CACHEDIR_SIGNATURE}\n# made by another tool\n")).unwrap();
        assert!(!looks_like_target(&open(d)));
        std::fs::write(d.join("CACHEDIR.TAG"), CACHEDIR_TAG).unwrap();
        assert!(looks_like_target(&open(d)));
    }

    #[test]
    fn marks_that_are_symlinks_do_not_count() {
        let tmp = tempfile::tempdir().unwrap();
        let (d, outside) = (tmp.path().join("t"), tmp.path().join("o"));
        std::fs::create_dir_all(outside.join("debug")).unwrap();
        std::fs::create_dir_all(d.join("release")).unwrap();
        std::fs::write(outside.join("CACHEDIR.TAG"), CACHEDIR_TAG).unwrap();
        std::fs::write(outside.join(".rustc_info.json"), "{}").unwrap();
        std::fs::write(outside.join("debug/.cargo-lock"), "").unwrap();
        for name in ["CACHEDIR.TAG", ".rustc_info.json", "debug"] {
            std::os::unix::fs::symlink(outside.join(name), d.join(name)).unwrap();
        }
        std::os::unix::fs::symlink(outside.join("debug/.cargo-lock"), d.join("release/.cargo-lock")).unwrap();
        assert!(looks_like_target(&open(&outside)));
        let fifo = d.join("release/.cargo-build-lock");
        // nix's mkfifo, not rustix's mknodat: macOS has no mknodat.
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR).unwrap();
        assert!(!is_held(&fifo), "a FIFO is no lock, and probing it does not wait");
        assert!(!looks_like_target(&open(&d)), "a mark behind a symlink is not cargo's");
        assert!(cargo_locks(&d).is_empty());
    }
}
