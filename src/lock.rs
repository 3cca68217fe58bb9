//! Advisory locks: the lock that serialises runs on one target dir, and probing cargo's own build locks.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;

use crate::interrupt::Interrupt;

/// Held for a whole run; released on drop or when the process dies (even by SIGKILL).
#[derive(Debug)]
pub struct RunLock {
    _dir: File,
}

/// Takes the run lock for `target_dir`: an `flock` on its parent directory, which survives the target dir being
/// renamed and leaves no file behind. Concurrent runs on one target dir would otherwise stop each other's
/// verifying `cargo check` and sweep each other's trash. `on_wait` is called once if another run holds it.
pub fn run_lock(target_dir: &Path, interrupt: &Interrupt, on_wait: impl FnOnce()) -> io::Result<Option<RunLock>> {
    let Some(parent) = target_dir.parent() else { return Ok(None) };
    let dir = match File::open(parent) {
        Ok(d) => d,
        // No parent to lock (it will be created by cargo later): nothing can race on it either.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut on_wait = Some(on_wait);
    loop {
        match flock(&dir, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(Some(RunLock { _dir: dir })),
            Err(Errno::WOULDBLOCK) => {
                if let Some(f) = on_wait.take() {
                    f();
                }
                if interrupt.is_set() {
                    return Err(io::Error::from(io::ErrorKind::Interrupted));
                }
                // Short naps: a blocking flock would not notice Ctrl-C (signal-hook restarts syscalls).
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The lock files cargo keeps in each profile dir (`.cargo-lock`; cargo 1.96 adds the other two).
const LOCK_NAMES: [&str; 3] = [".cargo-lock", ".cargo-build-lock", ".cargo-artifact-lock"];

/// Cargo's lock files in `dir`: `<profile>/<lock>`, and `<triple>/<profile>/<lock>` under dirs named like a target
/// triple. Only those dirs are listed: a target dir's `deps/`, `build/` and `doc/` hold thousands of entries, and
/// this runs between stopping the holders and the swap, while the user waits.
#[must_use]
pub fn cargo_locks(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in subdirs(dir) {
        push_locks(&sub, &mut out);
        if sub.file_name().is_some_and(|n| looks_like_triple(&n.to_string_lossy())) {
            for profile in subdirs(&sub) {
                push_locks(&profile, &mut out);
            }
        }
    }
    out.sort();
    out
}

fn subdirs(dir: &Path) -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()) && !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
}

fn push_locks(profile: &Path, out: &mut Vec<PathBuf>) {
    out.extend(LOCK_NAMES.iter().map(|n| profile.join(n)).filter(|p| p.is_file()));
}

/// `x86_64-unknown-linux-gnu`, `wasm32-unknown-unknown`, `aarch64-apple-darwin`: at least three parts.
fn looks_like_triple(name: &str) -> bool {
    name.split('-').filter(|p| !p.is_empty()).count() >= 3
}

/// Whether some process holds `lock` right now: a non-blocking exclusive `flock`, released at once.
#[must_use]
pub fn is_held(lock: &Path) -> bool {
    let Ok(file) = File::open(lock) else { return false };
    matches!(flock(&file, FlockOperation::NonBlockingLockExclusive), Err(Errno::WOULDBLOCK))
}

/// Which of cargo's locks a `Blocking waiting for file lock on …` line names, and the files that lock lives in.
#[must_use]
pub fn blocked_on(line: &str, dirs: &crate::workspace::Dirs) -> Option<(&'static str, Vec<PathBuf>)> {
    let what = line.trim().strip_prefix("Blocking waiting for file lock on ")?;
    let build_dir = dirs.build_dir.as_deref().unwrap_or(&dirs.target_dir);
    Some(match what.trim() {
        "package cache" => {
            let home = std::env::var_os("CARGO_HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
            ("package cache", vec![home.join(".package-cache"), home.join(".package-cache-mutate")])
        }
        "build directory" => ("build directory", cargo_locks(build_dir)),
        "artifact directory" => ("artifact directory", cargo_locks(&dirs.target_dir)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_which_lock_cargo_waits_for() {
        let dirs = crate::workspace::Dirs {
            workspace_root: "/w".into(),
            manifest_path: None,
            target_dir: "/w/target".into(),
            build_dir: None,
            explicit_target_dir: false,
        };
        assert_eq!(
            blocked_on("    Blocking waiting for file lock on build directory", &dirs).unwrap().0,
            "build directory"
        );
        assert_eq!(
            blocked_on("Blocking waiting for file lock on artifact directory", &dirs).unwrap().0,
            "artifact directory"
        );
        assert!(blocked_on("   Compiling foo", &dirs).is_none());
    }

    #[test]
    fn probes_locks() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("debug")).unwrap();
        std::fs::create_dir_all(d.join("x86_64-unknown-linux-gnu/release")).unwrap();
        std::fs::write(d.join("debug/.cargo-lock"), "").unwrap();
        std::fs::write(d.join("x86_64-unknown-linux-gnu/release/.cargo-lock"), "").unwrap();
        let locks = cargo_locks(d);
        assert_eq!(locks.len(), 2);
        assert!(!is_held(&locks[0]));
        let held = File::open(&locks[0]).unwrap();
        flock(&held, FlockOperation::LockExclusive).unwrap();
        assert!(is_held(&locks[0]));
        drop(held);
        assert!(!is_held(&locks[0]));
    }
}
