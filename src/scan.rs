//! Finding the processes that hold something inside the target or build dir, by what they hold.
//!
//! The platform reads the process table (and, with `/proc`, what every process holds) on a thread started before
//! the dirs are known, while `cargo metadata` runs; [`Background::finish`] narrows it to the roots. The run's own
//! family (this process, its ancestors and descendants) is never reported. Only the processes a report may name
//! are described (command line, exe): the holders, their parents, and what descends from them or is in a
//! process group they lead, so that the policy decides on complete data without reading anything itself.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use crate::layout::TRASH_PREFIX;
use crate::model::{Found, Handle, HandleKind, Roots, Table, Uninspectable};
pub use crate::platform::ScanError;
use crate::platform::{Platform, Snapshot};

/// The result of one scan.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub found: Vec<Found>,
    pub table: Table,
    pub uninspectable: Uninspectable,
}

/// A scan started before the roots are known; [`Background::finish`] narrows it.
#[derive(Debug)]
pub struct Background {
    snapshot: std::thread::JoinHandle<Result<Snapshot, ScanError>>,
    platform: Platform,
    me: u32,
}

/// Starts scanning. `me` (this process), its ancestors and its descendants are never reported: their handles are
/// not a reason to stop anything (its `cargo metadata`, run from a cwd inside the target dir, holds that cwd).
#[must_use]
pub fn start(platform: &Platform, me: u32) -> Background {
    let p = platform.clone();
    Background { snapshot: std::thread::spawn(move || p.snapshot(me)), platform: platform.clone(), me }
}

/// Scans now.
pub fn scan(platform: &Platform, roots: &Roots, me: u32) -> Result<Scan, ScanError> {
    start(platform, me).finish(roots)
}

impl Background {
    /// What is held under `roots`.
    pub fn finish(self, roots: &Roots) -> Result<Scan, ScanError> {
        let snapshot = self.snapshot.join().expect("the scan thread panicked")?;
        let (mut found, mut table, uninspectable) = snapshot.holders(roots, self.me)?;
        let family = table.family(self.me);
        found.retain(|f| !family.contains(&f.process.pid));
        let wanted = worth_describing(&found, &table);
        self.platform.describe(&mut table, &wanted);
        // What lies in this tool's trash is held by no build: a detached deleter working there holds nothing.
        for f in &mut found {
            f.handles.retain(|h| !in_trash(roots, &h.path));
        }
        found.retain(|f| !f.handles.is_empty());
        for f in &mut found {
            if let Some(p) = table.procs.get(&f.process.pid) {
                f.process = p.clone();
            }
            f.handles = dedup(std::mem::take(&mut f.handles), f.process.exe.as_deref());
        }
        found.sort_by_key(|f| f.process.pid);
        Ok(Scan { found, table, uninspectable })
    }
}

/// The holders, their parents, their descendants and the members of the groups they lead.
fn worth_describing(found: &[Found], table: &Table) -> HashSet<u32> {
    let groups = table.groups();
    let mut out = HashSet::new();
    for f in found {
        let p = &f.process;
        out.extend([p.pid, p.ppid]);
        out.extend(table.descendants(p.pid));
        if p.pgid == p.pid {
            for &member in groups.get(&p.pid).into_iter().flatten() {
                out.insert(member);
                out.extend(table.descendants(member));
            }
        }
    }
    // Their parents too: a build child is shown as its parent's child.
    let parents: Vec<u32> = out.iter().filter_map(|pid| table.procs.get(pid).map(|p| p.ppid)).collect();
    out.extend(parents);
    out
}

/// Whether `path` lies inside one of this tool's trash dirs, which lie right under a root.
fn in_trash(roots: &Roots, path: &Path) -> bool {
    roots.paths().iter().filter_map(|r| path.strip_prefix(r).ok()).any(|rest| {
        rest.components().next().is_some_and(|c| c.as_os_str().as_encoded_bytes().starts_with(TRASH_PREFIX.as_bytes()))
    })
}

/// Sorted, unique handles; a mapping of the process's own exe is not reported twice. An "exe" that is not the
/// process's exe is a mapping: macOS's lsof reports mapped files (a proc-macro `.so`) as `txt`, like the exe.
fn dedup(handles: Vec<Handle>, exe: Option<&Path>) -> Vec<Handle> {
    let set: BTreeSet<Handle> = handles
        .into_iter()
        .map(|h| match h.kind {
            HandleKind::Exe if exe.is_some_and(|e| e != h.path) => Handle::new(HandleKind::Mmap, h.path),
            _ => h,
        })
        .collect();
    let exe_handle = set.iter().find(|h| h.kind == HandleKind::Exe).map(|h| h.path.clone());
    set.into_iter()
        .filter(|h| {
            h.kind != HandleKind::Mmap
                || (Some(h.path.as_path()) != exe_handle.as_deref() && Some(h.path.as_path()) != exe)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_lies_in_a_trash_dir_right_under_a_root_is_trash() {
        let roots = Roots::new([Path::new("/w/target")]);
        assert!(in_trash(&roots, Path::new("/w/target/.safeclean-trash-1-ab/debug/app")));
        assert!(in_trash(&roots, Path::new("/w/target/.safeclean-trash-1-ab.log")));
        assert!(!in_trash(&roots, Path::new("/w/target/debug/.safeclean-trash-1-ab")));
        assert!(!in_trash(&roots, Path::new("/w/target/debug/app")));
        assert!(!in_trash(
            &Roots::new([Path::new("/w/.safeclean-trash-1/target")]),
            Path::new("/w/.safeclean-trash-1/target/x")
        ));
    }
}
