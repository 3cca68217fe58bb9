//! Finding the processes that hold something inside the target or build dir, by what they hold.
//!
//! Two backends behind one seam: `/proc` (Linux) and `lsof -F` (the portable path, used on macOS). Both produce
//! the same [`Scan`]; process metadata always comes from [`crate::process`].

mod locks;
mod lsof;
mod proc;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::cli::ScanBackend;
use crate::model::{Handle, Process};
use crate::process::Table;

pub use locks::{LockedFile, parse_locks};

/// The directories whose holders we look for, each under its given and its resolved path.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    paths: Vec<PathBuf>,
}

impl Roots {
    /// Every dir under both its spelling and what it resolves to (a target dir that is a symlink is matched both
    /// by its own path and by what it points to).
    #[must_use]
    pub fn new<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Self {
        let mut paths = Vec::new();
        for d in dirs {
            paths.push(d.to_path_buf());
            if let Ok(real) = d.canonicalize()
                && real != d
            {
                paths.push(real);
            }
        }
        Roots { paths }
    }

    /// Whether `path` is one of the roots or lies under one, compared by whole components.
    #[must_use]
    pub fn contains(&self, path: &Path) -> bool {
        self.paths.iter().any(|r| path.starts_with(r))
    }

    #[must_use]
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

/// A process and what it holds under the roots.
#[derive(Debug, Clone)]
pub struct Found {
    pub process: Process,
    pub handles: Vec<Handle>,
}

/// Processes that exist but could not be inspected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uninspectable {
    /// Owned by other users (not root, or `hidepid`).
    pub other_users: usize,
    /// Our own (or any, as root), but access was denied anyway: a sandbox, `ptrace` restrictions, a setuid
    /// program. By pid and name, since there are few and each is a surprise.
    pub own: Vec<(u32, String)>,
}

/// The result of one scan.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub found: Vec<Found>,
    pub table: Table,
    pub uninspectable: Uninspectable,
}

/// A scan started before the roots are known (while `cargo metadata` runs); [`Background::finish`] narrows it.
#[derive(Debug)]
pub struct Background {
    raw: std::thread::JoinHandle<anyhow::Result<proc::Raw>>,
    use_lsof: bool,
    exclude: u32,
}

/// Starts scanning with the backend asked for (`auto`: `/proc` on Linux, `lsof` elsewhere). `exclude` (this
/// process), its ancestors and its descendants are never reported: their handles are not a reason to stop anything.
#[must_use]
pub fn start(backend: ScanBackend, exclude: u32) -> Background {
    let use_lsof = backend == ScanBackend::Lsof || (backend == ScanBackend::Auto && !cfg!(target_os = "linux"));
    // The process table always comes from the platform; lsof only says who holds what.
    let raw = std::thread::spawn(move || proc::raw(exclude, !use_lsof));
    Background { raw, use_lsof, exclude }
}

impl Background {
    /// What is held under `roots`.
    pub fn finish(self, roots: &Roots) -> anyhow::Result<Scan> {
        let raw = self.raw.join().map_err(|_| anyhow::anyhow!("the scan thread panicked"))??;
        let mut scan = raw.filter(roots);
        if self.use_lsof {
            scan.found = lsof::scan(roots, self.exclude, &scan.table)?;
        }
        // This run, its ancestors and its children (its `cargo metadata` and that one's `rustc -vV`, started
        // from a cwd inside the target dir) hold nothing that should stop anything.
        let family = scan.table.family(self.exclude);
        scan.found.retain(|f| !family.contains(&f.process.pid));
        for f in &mut scan.found {
            crate::process::fill_details(&mut f.process);
            f.handles = dedup(std::mem::take(&mut f.handles), f.process.exe.as_deref());
        }
        scan.found.sort_by_key(|f| f.process.pid);
        Ok(scan)
    }
}

/// Scans now, with the backend asked for.
pub fn scan(roots: &Roots, backend: ScanBackend, exclude: u32) -> anyhow::Result<Scan> {
    start(backend, exclude).finish(roots)
}

/// Sorted, unique handles; a mapping of the process's own exe is not reported twice.
fn dedup(handles: Vec<Handle>, exe: Option<&Path>) -> Vec<Handle> {
    let set: BTreeSet<Handle> = handles.into_iter().collect();
    let exe_handle = set.iter().find(|h| h.kind == crate::model::HandleKind::Exe).map(|h| h.path.clone());
    set.into_iter()
        .filter(|h| {
            h.kind != crate::model::HandleKind::Mmap
                || (Some(h.path.as_path()) != exe_handle.as_deref() && Some(h.path.as_path()) != exe)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_whole_components() {
        let roots = Roots { paths: vec![PathBuf::from("/x/target")] };
        assert!(roots.contains(Path::new("/x/target")));
        assert!(roots.contains(Path::new("/x/target/debug/a")));
        assert!(!roots.contains(Path::new("/x/target2/debug")));
        assert!(!roots.contains(Path::new("/x")));
    }
}
