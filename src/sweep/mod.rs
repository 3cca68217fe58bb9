//! The sweep (`--sweep`): a partial clean that removes whole build units chosen by criteria and keeps the rest of
//! the build usable as it is, beside the clean's swap. Under cargo's own locks of each profile ([`lock`]), it takes
//! stock of the units ([`crate::layout::unit`], the one place that knows how cargo lays a unit out), learns the
//! toolchains ([`toolchain`]) and which units live processes hold (the scan), chooses ([`choose`], pure), and
//! moves the chosen units into a trash dir ([`trash`]); once the locks are let go, the purge deletes the trash.

pub mod choose;
pub mod lock;
pub mod toolchain;
pub mod trash;

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::layout::unit::{self, Area, Unit, UnitKind};
use crate::model::{Found, HandleKind};
use crate::purge::{RemoveError, TrashRoot};

pub use choose::{Choice, Criteria, Facts};
pub use lock::ProfileDirs;

/// A dir a sweep works in, opened and approved by the guard.
#[derive(Debug)]
pub struct Root {
    /// Where it really is (the scan names what processes hold by real paths).
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// The build dir (where units are) and the artifact dir (where they are uplifted to), when they are two.
#[derive(Debug)]
pub struct Roots {
    pub build: Root,
    pub artifact: Option<Root>,
}

impl Roots {
    fn artifact(&self) -> &Root {
        self.artifact.as_ref().unwrap_or(&self.build)
    }
}

/// Every profile dir of the build and artifact dirs, opened, with the dirs whose locks it takes.
#[must_use]
pub fn profiles(roots: &Roots) -> Vec<ProfileDirs> {
    let mut names = unit::profiles(&roots.build.fd);
    if let Some(a) = &roots.artifact {
        names.extend(unit::profiles(&a.fd));
    }
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|profile| {
            let mut dirs = Vec::new();
            for root in std::iter::once(&roots.build).chain(roots.artifact.as_ref()) {
                if let Some(fd) = unit::open_dir(&root.fd, &profile) {
                    dirs.push((root.path.join(&profile), fd));
                }
            }
            ProfileDirs { profile, dirs }
        })
        .collect()
}

/// The units of every profile, and the toolchain version each rustc hash stands for, read from the metadata of
/// every unit with that hash. A hash whose units disagree (a planted unit whose `.rmeta` names another rustc) stands
/// for no known version: its units are never removed for their toolchain.
#[must_use]
pub fn inventory(roots: &Roots, profiles: &[ProfileDirs]) -> (Vec<Unit>, HashMap<u64, String>) {
    let mut units = Vec::new();
    // Per hash: the version all its units' metadata agree on so far, or `None` once two disagree.
    let mut said: HashMap<u64, Option<String>> = HashMap::new();
    for p in profiles {
        let Some(build) = unit::open_dir(&roots.build.fd, &p.profile) else { continue };
        let artifact =
            roots.artifact.as_ref().map_or_else(|| build.try_clone().ok(), |a| unit::open_dir(&a.fd, &p.profile));
        for u in unit::units_in(&build, artifact.as_ref(), &p.profile) {
            if let (Some(rustc), Some(m)) = (u.rustc, &u.metadata)
                && let Some(version) = unit::version_of(&build, m)
            {
                said.entry(rustc)
                    .and_modify(|agreed| {
                        if agreed.as_ref() != Some(&version) {
                            *agreed = None;
                        }
                    })
                    .or_insert(Some(version));
            }
            units.push(u);
        }
    }
    let versions = said.into_iter().filter_map(|(rustc, version)| Some((rustc, version?))).collect();
    (units, versions)
}

/// The units that what the scan found holds: by the unit's entries, and what lies below them. A lock on one of
/// cargo's lock files is no unit's; a rustc holding an incremental session's lock holds that session's dir.
#[must_use]
pub fn held_units(units: &[Unit], roots: &Roots, found: &[Found]) -> HashMap<usize, (u32, PathBuf)> {
    let mut places: HashMap<PathBuf, usize> = HashMap::new();
    for (i, u) in units.iter().enumerate() {
        for e in &u.entries {
            let root = match e.area {
                Area::Build => &roots.build,
                Area::Artifact => roots.artifact(),
            };
            places.insert(root.path.join(&u.profile).join(&e.path), i);
        }
    }
    let mut held = HashMap::new();
    for f in found {
        for h in &f.handles {
            if h.kind == HandleKind::Lock && crate::layout::is_profile_lock(&h.path) {
                continue;
            }
            let at = h.path.ancestors().find_map(|p| places.get(p).copied());
            if let Some(i) = at {
                held.entry(i).or_insert_with(|| (f.process.pid, h.path.clone()));
            }
            // An incremental session's lock file sits beside its session: the whole crate dir is in use.
            if at.is_none()
                && let Some(dir) = h.path.parent()
                && let Some(&i) = places.get(dir)
                && units[i].kind == UnitKind::Incremental
            {
                held.entry(i).or_insert_with(|| (f.process.pid, h.path.clone()));
            }
        }
    }
    held
}

/// What moving out did: the trash dirs made, and how many units went.
#[derive(Debug, Default)]
pub struct Moved {
    pub trash: Vec<TrashRoot>,
    pub units: u64,
    /// Units left in place, with why (a rename that failed; the unit was put back whole).
    pub left: Vec<(String, RemoveError)>,
}

/// Moves the units `remove` (indices into `units`) into a trash dir of run `id` in each root, each unit whole or not
/// at all. `made_by`: whose rights the files are moved with (the trash dir is checked to be theirs).
#[must_use]
pub fn move_out(
    units: &[Unit],
    remove: &[(usize, crate::model::Criterion)],
    roots: &Roots,
    id: &str,
    made_by: u32,
) -> Moved {
    let mut moved = Moved::default();
    let mut build_trash: Option<trash::Trash> = None;
    let mut artifact_trash: Option<trash::Trash> = None;
    for &(i, _) in remove {
        let u = &units[i];
        // Its own files first, fingerprint first: once they are out, the unit is gone (cargo rebuilds it). What was
        // uplifted follows; if that fails, the next build overwrites it.
        for area in [Area::Build, Area::Artifact] {
            let entries: Vec<&Path> = u.entries.iter().filter(|e| e.area == area).map(|e| e.path.as_path()).collect();
            if entries.is_empty() {
                continue;
            }
            let (root, slot) = match (area, &roots.artifact) {
                (Area::Artifact, Some(a)) => (a, &mut artifact_trash),
                _ => (&roots.build, &mut build_trash),
            };
            let taken = unit::open_dir(&root.fd, &u.profile)
                .ok_or_else(|| RemoveError::new("open", root.path.join(&u.profile), std::io::Error::other("not a dir")))
                .and_then(|profile| {
                    if slot.is_none() {
                        *slot = Some(trash::Trash::make(&root.fd, &root.path, id, made_by)?);
                    }
                    let t = slot.as_mut().expect("made just above");
                    t.take(&profile, &root.path.join(&u.profile), &entries)
                });
            match (taken, area) {
                (Ok(_), Area::Build) => moved.units += 1,
                (Ok(_), Area::Artifact) => {}
                (Err(e), Area::Build) => {
                    moved.left.push((u.name.clone(), e));
                    break;
                }
                (Err(e), Area::Artifact) => moved.left.push((format!("what {} uplifted", u.name), e)),
            }
        }
    }
    moved.trash.extend(build_trash.map(trash::Trash::into_root));
    moved.trash.extend(artifact_trash.map(trash::Trash::into_root));
    moved
}
