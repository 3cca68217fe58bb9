//! What cargo leaves on disk, in one place: its lock files (build and artifact dirs, the package cache), the
//! `CACHEDIR.TAG` it writes, what a target dir looks like, and whether one of its locks is taken right now.
//!
//! Cargo 1.95 takes `<profile>/.cargo-lock` in the build and artifact dir; from 1.96 also `.cargo-build-lock` and
//! `.cargo-artifact-lock`, with `.cargo-lock` kept as a shared compatibility lock (cargo's
//! `core/compiler/layout.rs`). The package cache locks are `$CARGO_HOME/.package-cache` and
//! `.package-cache-mutate`.

use std::path::{Path, PathBuf};

// Reading a target dir through open fds.
#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::{cargo_locks, cargo_locks_at, is_held, is_held_at, looks_like_target};
// Windows: through open handles, names read without following a reparse point, and `LockFileEx` (cargo's lock
// there) to probe.
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::{cargo_locks, cargo_locks_at, is_held, looks_like_target};

// A unit of cargo's build, read through open fds: Unix only so far, as the sweep and the repair that use it.
#[cfg(unix)]
pub mod unit;

/// What only cargo's own tag says: the signature line alone is shared by every tool that writes a tag.
const CARGO_TAG_COMMENT: &str = "# This file is a cache directory tag created by cargo.";

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

/// The package cache locks of cargo's home `cargo_home`.
#[must_use]
pub fn package_cache_locks(cargo_home: &Path) -> Vec<PathBuf> {
    PACKAGE_CACHE_LOCKS.iter().map(|n| cargo_home.join(n)).collect()
}

/// `x86_64-unknown-linux-gnu`, `wasm32-unknown-unknown`, `aarch64-apple-darwin`: at least three parts.
pub(crate) fn looks_like_triple(name: &str) -> bool {
    name.split('-').filter(|p| !p.is_empty()).count() >= 3
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
}
