//! The smallest repair (`--if-broken`): damage is usually one unit's (one crate's `.rmeta`, one incremental
//! session), so only the units the damage points at are removed, under cargo's own locks, and the check runs again.
//! Cargo rebuilds what is missing, and what depends on it.
//!
//! A unit is everything cargo keeps for one compiled crate: in a profile dir, `deps/lib<crate>-<hash>.*` and
//! `deps/<crate>-<hash>*`, `.fingerprint/<package>-<hash>/`, and `incremental/<crate>-*/` (its sessions: rustc
//! names them by crate, not by the unit's hash); a build script's run is `build/<package>-<hash>/`. In cargo's new
//! build-dir layout (the default from 1.100) a unit is one dir, `build/<package>/<hash>/`. Everything is found and
//! moved relative to the approved target dir's handle, never through a link, into a trash dir of this run, as a sweep moves them (`sweep::trash`).

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::layout::unit::{deps_entry_of, is_hash, open_dir, split_unit};
use crate::purge::{RemoveError, TrashRoot};
use crate::sweep::lock::{self, ProfileDirs};
use crate::sweep::trash::Trash;

/// The units a damaged file belongs to, in one profile dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Units {
    /// The profile dir, relative to the target (or build) dir: `debug`, `x86_64-unknown-linux-gnu/release`.
    pub profile: PathBuf,
    /// Each unit as reports name it: `dep-5dac34883177448e`, `incremental/app-1xyz`.
    pub names: Vec<String>,
    /// The entries to remove, relative to the profile dir.
    pub entries: Vec<PathBuf>,
}

/// The units the damaged `path` belongs to, if it lies in a profile dir of `root` and names a unit.
#[must_use]
pub fn units_of(path: &Path, root: &Path, root_fd: &OwnedFd) -> Option<Units> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<&OsStr> =
        rel.components().filter_map(|c| if let Component::Normal(n) = c { Some(n) } else { None }).collect();
    // `<profile>/<area>/…` or `<triple>/<profile>/<area>/…`.
    let areas = ["deps", "build", "incremental", ".fingerprint"];
    let area_at = parts.iter().position(|p| p.to_str().is_some_and(|p| areas.contains(&p)))?;
    let profile: PathBuf = parts[..area_at].iter().collect();
    if profile.as_os_str().is_empty() || area_at > 2 {
        return None;
    }
    let area = parts[area_at].to_str()?;
    let first = parts.get(area_at + 1)?.to_str()?;
    let profile_fd = open_dir(root_fd, &profile)?;
    let (names, entries) = match area {
        "deps" => {
            let (krate, hash) = split_unit(first)?;
            let mut entries = list(&profile_fd, "deps", |n| deps_entry_of(n, krate, hash));
            entries.extend(list(&profile_fd, ".fingerprint", |n| n.ends_with(&format!("-{hash}"))));
            entries.extend(list(&profile_fd, "incremental", |n| n.starts_with(&format!("{krate}-"))));
            (vec![format!("{krate}-{hash}")], entries)
        }
        "incremental" => (vec![format!("incremental/{first}")], vec![Path::new("incremental").join(first)]),
        "build" => {
            let second = parts.get(area_at + 2).and_then(|s| s.to_str());
            if let Some(hash) = second.filter(|s| is_hash(s)) {
                // The new layout: `build/<package>/<hash>/`.
                (vec![format!("{first}-{hash}")], vec![Path::new("build").join(first).join(hash)])
            } else {
                let (_, hash) = split_unit(first)?;
                let mut entries = vec![Path::new("build").join(first)];
                entries.extend(list(&profile_fd, ".fingerprint", |n| n.ends_with(&format!("-{hash}"))));
                (vec![first.to_string()], entries)
            }
        }
        _ => return None,
    };
    let mut entries = entries;
    entries.sort();
    entries.dedup();
    (!entries.is_empty()).then_some(Units { profile, names, entries })
}

/// The entries of `area` (in `profile`) whose names `keep` picks, as `area/name`.
fn list(profile: &OwnedFd, area: &str, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Some(dir) = open_dir(profile, Path::new(area)) else { return Vec::new() };
    let Ok(listing) = rustix::fs::Dir::read_from(&dir) else { return Vec::new() };
    listing
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str().ok()?.to_owned();
            (name != "." && name != ".." && keep(&name)).then(|| Path::new(area).join(name))
        })
        .collect()
}

/// Cargo's lock files of the profile dir, locked (non-blocking, as a sweep locks them, with the rights the caller
/// acts with) while the units are moved out: no build of any cargo version works in it meanwhile. `None` when one is
/// taken (a build started): the repair gives way.
#[must_use]
pub fn lock_profile(root_fd: &OwnedFd, profile: &Path) -> Option<Vec<lock::Held>> {
    let dir = open_dir(root_fd, profile)?;
    let dirs = vec![(profile.to_path_buf(), dir)];
    let (held, busy) = lock::acquire(
        &[ProfileDirs { profile: profile.to_path_buf(), dirs }],
        None,
        false,
        Duration::ZERO,
        None,
        &mut |_| {},
    );
    busy.is_empty().then_some(held)
}

/// Moves the units' entries from the profile dir of `root` (held as `root_fd`, at `root`) into a new trash dir of
/// this run inside it (checked to be `made_by`'s, whose rights the move is made with), all or none, and returns that
/// trash dir for the purge.
pub fn move_out(
    units: &Units,
    root: &Path,
    root_fd: &OwnedFd,
    id: &str,
    made_by: u32,
) -> Result<TrashRoot, RemoveError> {
    let mut trash = Trash::make(root_fd, root, id, made_by)?;
    let profile = open_dir(root_fd, &units.profile)
        .ok_or_else(|| RemoveError::new("open", root.join(&units.profile), std::io::Error::other("not a dir")))?;
    let entries: Vec<&Path> = units.entries.iter().map(PathBuf::as_path).collect();
    trash.take(&profile, &root.join(&units.profile), &entries)?;
    Ok(trash.into_root())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{Mode, OFlags};

    fn flags() -> OFlags {
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
    }

    #[test]
    fn a_damaged_rmeta_is_one_units_files_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let (h1, h2) = ("5dac34883177448e", "9517d73897b5767e");
        for f in [
            format!("debug/deps/libdep-{h1}.rmeta"),
            format!("debug/deps/libdep-{h1}.rlib"),
            format!("debug/deps/dep-{h1}.d"),
            format!("debug/deps/libdep-{h2}.rmeta"),
            format!("debug/deps/libdepx-{h1}.rmeta"),
            format!("debug/.fingerprint/dep-{h1}/lib-dep"),
            format!("debug/.fingerprint/other-{h2}/lib-other"),
            "debug/incremental/dep-1abc/s-x/dep-graph.bin".to_string(),
            "debug/incremental/depx-1abc/s-x/dep-graph.bin".to_string(),
            // A profile cargo built in has its lock files: a dir without them is never locked.
            "debug/.cargo-lock".to_string(),
        ] {
            std::fs::create_dir_all(t.join(&f).parent().unwrap()).unwrap();
            std::fs::write(t.join(f), "x").unwrap();
        }
        let fd = rustix::fs::open(t, flags(), Mode::empty()).unwrap();
        let units = units_of(&t.join(format!("debug/deps/libdep-{h1}.rmeta")), t, &fd).unwrap();
        assert_eq!(units.profile, Path::new("debug"));
        assert_eq!(units.names, [format!("dep-{h1}")]);
        let got: Vec<String> = units.entries.iter().map(|e| e.display().to_string()).collect();
        assert_eq!(
            got,
            [
                format!(".fingerprint/dep-{h1}"),
                format!("deps/dep-{h1}.d"),
                format!("deps/libdep-{h1}.rlib"),
                format!("deps/libdep-{h1}.rmeta"),
                "incremental/dep-1abc".to_string(),
            ]
        );
        let trash = move_out(&units, t, &fd, "1-a", rustix::process::geteuid().as_raw()).unwrap();
        assert!(
            t.join(format!("debug/deps/libdep-{h2}.rmeta")).is_file()
                && t.join(format!("debug/deps/libdepx-{h1}.rmeta")).is_file()
        );
        assert!(!t.join(format!("debug/deps/libdep-{h1}.rmeta")).exists());
        assert_eq!(std::fs::read_dir(&trash.path).unwrap().count(), 5);
        assert!(units_of(&t.join("elsewhere/x"), t, &fd).is_none());
        assert!(lock_profile(&fd, Path::new("debug")).is_some());
    }

    #[test]
    fn the_new_layout_and_build_script_runs_are_whole_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let h = "0123456789abcdef";
        std::fs::create_dir_all(t.join(format!("debug/build/zstd-sys/{h}/out"))).unwrap();
        std::fs::create_dir_all(t.join(format!("debug/build/app-{h}/out"))).unwrap();
        let fd = rustix::fs::open(t, flags(), Mode::empty()).unwrap();
        let new = units_of(&t.join(format!("debug/build/zstd-sys/{h}/out/x.o")), t, &fd).unwrap();
        assert_eq!(new.entries, [PathBuf::from(format!("build/zstd-sys/{h}"))]);
        let old = units_of(&t.join(format!("debug/build/app-{h}/out/gen.rs")), t, &fd).unwrap();
        assert_eq!(old.entries, [PathBuf::from(format!("build/app-{h}"))]);
    }
}
