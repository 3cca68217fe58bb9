//! The lock that serialises runs on one target dir: concurrent runs would otherwise stop each other's verifying
//! `cargo check` and sweep each other's trash.

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

/// Why the run lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum RunLockError {
    #[error("interrupted while waiting for another cargo-safeclean run on {}; nothing was changed", dir.display())]
    Interrupted { dir: PathBuf },
    #[error("failed to lock {} (to keep other runs out of its target dir): {source}", parent.display())]
    Io {
        parent: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Takes the run lock for `target_dir`: an `flock` on its parent directory, which survives the target dir being
/// renamed and leaves no file behind. `on_wait` is called once if another run holds it.
pub fn take(target_dir: &Path, interrupt: &Interrupt, on_wait: impl FnOnce()) -> Result<Option<RunLock>, RunLockError> {
    let Some(parent) = target_dir.parent() else { return Ok(None) };
    let io_error = |source| RunLockError::Io { parent: parent.to_path_buf(), source };
    let dir = match File::open(parent) {
        Ok(d) => d,
        // No parent to lock (it will be created by cargo later): nothing can race on it either.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e)),
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
                    return Err(RunLockError::Interrupted { dir: target_dir.to_path_buf() });
                }
                // Short naps: a blocking flock would not notice Ctrl-C (signal-hook restarts syscalls).
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(io_error(e.into())),
        }
    }
}
