//! Moving the old tree out of the way and recreating an empty target dir, crash-safely, on the handles the guard
//! approved (see `anchor`): no name is looked up again to find what to act on. Each OS's way is its own file:
//!
//! - `unix.rs`: the new dir is made complete in a private stage beside the old one and exchanged with it in one
//!   step (`renameat2(RENAME_EXCHANGE)`), so `target/` never stops existing; what was swapped out must be the
//!   approved dir (device and inode), or the exchange is undone and the run refuses. Details there.
//! - `windows.rs`: NTFS has no exchange; the old tree is moved by its own handle into the stage, and the complete new
//!   dir by its handle into its place: an instant without `target\`, never one without its tag.
//!
//! Either way the old tree then moves into the new dir as `.safeclean-trash-ID`, where the purge finds it. A target
//! dir that is a link the user made (a symlink, a junction), or a mount point, is kept: its entries move into a
//! trash dir inside it. Each run collects what a crashed or failed run left (`.safeclean-trash-*` inside, also
//! nested in older trash, and `NAME.safeclean-*` beside), so the next run finishes the job and trash never nests.

use std::io;
use std::path::{Path, PathBuf};

use crate::anchor::Anchored;
use crate::guard::CHANGED_HELP;
use crate::purge::{RemoveError, TrashRoot};

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;
#[cfg(unix)]
pub use unix::{swap, trash_inside};
#[cfg(windows)]
pub use windows::{swap, trash_inside};

pub use crate::layout::TRASH_PREFIX;
/// The infix of the dir a crash may leave beside the target dir: `target.safeclean-ID`.
pub const ASIDE_INFIX: &str = ".safeclean-";

/// A name unique to this run: pid and time, so concurrent and successive runs never collide.
#[must_use]
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{nanos:x}", std::process::id())
}

/// How the old tree is swapped for the new dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapMethod {
    /// `renameat2(RENAME_EXCHANGE)`, falling back to two renames where the filesystem cannot exchange.
    Exchange,
    /// Always two renames (a hidden switch, so that tests reach the fallback).
    Rename,
}

/// Why the swap did not happen, or not whole.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// What the name led to changed after the guard's check: refused (exit 3), and undone where it was started.
    #[error("refusing to clean {}: {what}", path.display())]
    Changed { path: PathBuf, what: String },
    #[error(transparent)]
    Io(#[from] RemoveError),
}

impl SwapError {
    /// What to do about it.
    #[must_use]
    pub fn help(&self) -> Option<String> {
        match self {
            SwapError::Changed { .. } => Some(CHANGED_HELP.into()),
            SwapError::Io(e) => e.help(),
        }
    }

    /// What was left: the dir as it was, when the exchange was refused.
    #[must_use]
    pub fn note(&self) -> Option<String> {
        match self {
            SwapError::Changed { .. } => Some("it was left as it is".into()),
            SwapError::Io(_) => None,
        }
    }
}

type Result<T> = std::result::Result<T, SwapError>;

/// What a swap left to purge.
#[derive(Debug, Default)]
pub struct Swapped {
    /// The trash inside the target dir, this run's and earlier runs' leftovers.
    pub trash: Vec<TrashRoot>,
    /// Mount points directly inside a target dir that is itself a symlink or a mount: left where they are.
    pub mounts: Vec<PathBuf>,
}

fn io_error(action: &'static str, path: &Path, e: impl Into<io::Error>) -> SwapError {
    SwapError::Io(RemoveError::new(action, path, e.into()))
}

fn changed(a: &Anchored, what: impl Into<String>) -> SwapError {
    SwapError::Changed { path: a.path.clone(), what: what.into() }
}
