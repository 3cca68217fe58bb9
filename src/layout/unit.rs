//! How cargo lays out a build *unit* (one compiled crate, a build script, or a build script's run, with everything
//! cargo keeps for it), in both layouts, and what each unit says about itself: the hash of the rustc that built it,
//! the fingerprints of the units it depends on, when it was built and last used, and its size.
//!
//! The flat layout (cargo up to 1.99, and `__CARGO_TEMPORARY_BUILD_DIR_NEW_LAYOUT_OPT_OUT`), in a profile dir:
//! `.fingerprint/<package>-<hash>/` (the unit's fingerprint: a file of 16 hex digits named for the target
//! (`lib-app`, `bin-app`, `run-build-script-build-script-build`), its JSON beside it, `dep-*` dep-info and
//! `invoked.timestamp`), `deps/<crate>-<hash>*` and `deps/lib<crate>-<hash>.*`, and `build/<package>-<hash>/` (a
//! build script's executable, or its run's `out/` and output). The new build-dir layout (the default from cargo
//! 1.100, `-Zbuild-dir-new-layout` before): one dir per unit, `build/<package>/<hash>/{fingerprint,out,run}`.
//! Either way, `incremental/<crate>-<id>/` holds rustc's sessions, named by rustc: `<id>` is not the unit's hash,
//! and a session says which rustc wrote it in its `dep-graph.bin`. Final artifacts are *uplifted* into the artifact
//! dir's profile dir as hard links of the unit's files (`debug/app`, `debug/libapp.rlib`), with a `.d` beside them.
//!
//! Everything is read relative to open dir handles, never through a link. Times are taken from `stat` before any
//! file is read, and files are read with `O_NOATIME` where the kernel allows it: on a `relatime` mount, reading a
//! file whose access time is old sets it to now, and the evidence of when a unit was last used would be gone.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::model::FileId;

/// The dirs of a flat profile dir that hold units.
pub const FINGERPRINT: &str = ".fingerprint";
pub const DEPS: &str = "deps";
pub const BUILD: &str = "build";
pub const INCREMENTAL: &str = "incremental";
pub const EXAMPLES: &str = "examples";

/// `name-0123456789abcdef` (and `libname-…`, with an extension): the crate or package and the unit's hash.
#[must_use]
pub fn split_unit(file: &str) -> Option<(&str, &str)> {
    let (stem, ext) = file.split_once('.').unwrap_or((file, ""));
    let (name, hash) = stem.rsplit_once('-')?;
    // Libraries carry `lib` before the crate's name; a `.d` file or a binary does not (`libc-….d` is crate `libc`).
    let library = matches!(ext, "rlib" | "rmeta" | "so" | "dylib" | "a" | "dll");
    let name = name.strip_prefix("lib").filter(|_| library).unwrap_or(name);
    is_hash(hash).then_some((name, hash))
}

/// A unit's hash as cargo writes it in names: 16 hex digits.
#[must_use]
pub fn is_hash(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `name` in `deps/` is one of the crate's unit's files: `lib<crate>-<hash>.*` or `<crate>-<hash>[.*]`.
#[must_use]
pub fn deps_entry_of(name: &str, krate: &str, hash: &str) -> bool {
    let unit = format!("{krate}-{hash}");
    let rest = name.strip_prefix("lib").filter(|r| r.starts_with(&unit)).unwrap_or(name);
    rest.strip_prefix(&unit).is_some_and(|tail| tail.is_empty() || tail.starts_with('.'))
}

/// The unit hash a file in `deps/` carries: `libdep-<hash>.rlib`, `app-<hash>`, `app-<hash>.app.x-cgu.0.rcgu.o`.
#[must_use]
pub fn deps_hash(name: &str) -> Option<&str> {
    let stem = name.split_once('.').map_or(name, |(s, _)| s);
    let (_, hash) = stem.rsplit_once('-')?;
    is_hash(hash).then_some(hash)
}

/// An object file rustc leaves beside a unit's output with `split-debuginfo=unpacked` (macOS's default since Rust
/// 1.88): `<crate>-<hash>.<cgu name>.rcgu.o`. Every rebuild writes new ones under new names and nothing removes
/// the old (rust-lang/rust#161824).
#[must_use]
pub fn is_rcgu_object(name: &str) -> bool {
    name.ends_with(".rcgu.o")
}

/// The fingerprint hash as cargo writes it in a unit's hash file: the u64's little-endian bytes in hex.
#[must_use]
pub fn parse_fingerprint_hash(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.len() != 16 {
        return None;
    }
    let mut bytes = [0u8; 8];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(u64::from_le_bytes(bytes))
}

/// What a unit's fingerprint JSON says that a sweep needs: the hash of the rustc that built it, and the
/// fingerprints of the units it depends on (`deps: [[package id hash, name, public, fingerprint], …]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FingerprintJson {
    pub rustc: Option<u64>,
    pub deps: Vec<u64>,
}

#[must_use]
pub fn parse_fingerprint_json(text: &str) -> Option<FingerprintJson> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let rustc = v.get("rustc").and_then(serde_json::Value::as_u64);
    let deps = v
        .get("deps")
        .and_then(serde_json::Value::as_array)
        .map(|deps| deps.iter().filter_map(|d| d.as_array()?.get(3)?.as_u64()).collect())
        .unwrap_or_default();
    Some(FingerprintJson { rustc, deps })
}

/// The version of the rustc that wrote crate metadata (`.rmeta`, or the `lib.rmeta` member of an `.rlib`), as
/// `rustc -vV` prints it on its first line: `rustc 1.95.0 (59807616e 2026-04-14)`. The metadata starts with
/// `rust\0\0\0`, a format byte, the 8-byte position of its root, then the version as a LEB128-prefixed string.
#[must_use]
pub fn metadata_version(bytes: &[u8]) -> Option<String> {
    const MAGIC: &[u8] = b"rust\0\0\0";
    let at = bytes.windows(MAGIC.len()).position(|w| w == MAGIC)?;
    let rest = bytes.get(at + MAGIC.len() + 1 + 8..)?;
    let (len, skip) = leb128(rest)?;
    let text = std::str::from_utf8(rest.get(skip..skip + len)?).ok()?;
    text.starts_with("rustc ").then(|| text.to_string())
}

/// The version of the rustc that wrote an incremental session's `dep-graph.bin`: `RSIC`, a u16 format version, then
/// the version (without `rustc `) as a byte-prefixed string.
#[must_use]
pub fn incremental_version(bytes: &[u8]) -> Option<String> {
    let rest = bytes.strip_prefix(b"RSIC")?.get(2..)?;
    let len = usize::from(*rest.first()?);
    let text = std::str::from_utf8(rest.get(1..=len)?).ok()?;
    Some(format!("rustc {text}"))
}

fn leb128(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, b) in bytes.iter().enumerate().take(5) {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Where an entry of a unit lies: in the profile dir of the build dir (its own files), or of the artifact dir (what
/// was uplifted there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    Build,
    Artifact,
}

/// One name to move out, relative to its profile dir: a dir (moved whole) or a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    pub area: Area,
    pub path: PathBuf,
}

/// What kind of thing a unit is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitKind {
    /// A unit with a fingerprint, in either layout.
    Built,
    /// An incremental dir of rustc's (`incremental/<crate>-<id>`), with its sessions.
    Incremental,
    /// Files that belong to no unit cargo knows: what the macOS leak left (`*.rcgu.o` older than its unit's last
    /// build), outputs without a fingerprint, stale incremental sessions, units of the flat layout once the same
    /// toolchain writes the new one.
    Orphan(&'static str),
}

/// A unit as found on disk.
#[derive(Debug, Clone)]
pub struct Unit {
    /// As reports name it, relative to the build (or target) dir: `debug/dep-4228aab28fd8e3f4`,
    /// `debug/build/dep/6e751ec8141f1a56`, `debug/incremental/app-0900iezskw9bc`, `debug/deps/x.rcgu.o`.
    pub name: String,
    /// The profile dir, relative: `debug`, `x86_64-unknown-linux-gnu/release`.
    pub profile: PathBuf,
    pub kind: UnitKind,
    /// The crate (or package, with `-` as `_`) it is of, where its name says: what an incremental dir is matched by.
    pub krate: Option<String>,
    /// What moves out with it, fingerprint first (a unit without its fingerprint is rebuilt, whatever else is left).
    pub entries: Vec<Entry>,
    /// The unit's own fingerprint hash, and those of the units it depends on.
    pub fingerprint: Option<u64>,
    pub deps: Vec<u64>,
    /// The hash cargo records for the rustc that built it (the same for every unit of one toolchain).
    pub rustc: Option<u64>,
    /// The rustc that built it, as `rustc -vV` says it, where the unit itself says (metadata, incremental session).
    pub version: Option<String>,
    /// A file whose metadata tells the version, relative to the build profile dir.
    pub metadata: Option<PathBuf>,
    pub files: u64,
    pub bytes: u64,
    /// When it was last built or used: the latest access or change time of its files, in seconds since the epoch.
    pub used: i64,
    /// When cargo last started building it (`invoked.timestamp`), if it says.
    pub built: Option<i64>,
}

impl Unit {
    fn new(name: String, profile: &Path, kind: UnitKind) -> Self {
        Unit {
            name,
            profile: profile.to_path_buf(),
            kind,
            krate: None,
            entries: Vec::new(),
            fingerprint: None,
            deps: Vec::new(),
            rustc: None,
            version: None,
            metadata: None,
            files: 0,
            bytes: 0,
            used: 0,
            built: None,
        }
    }

    fn add(&mut self, t: &Tally, area: Area, path: PathBuf) {
        self.files += t.files;
        self.bytes += t.bytes;
        self.used = self.used.max(t.used);
        self.entries.push(Entry { area, path });
    }
}

/// Files, bytes (as the purge counts them: every non-dir entry, by its size) and the latest time of a tree.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub files: u64,
    pub bytes: u64,
    pub used: i64,
    /// Device and inode of a single file (for matching uplifted hard links).
    pub id: Option<FileId>,
    pub mtime: i64,
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// `O_NOATIME`: Linux only (macOS has no such flag; its reads set access times as `relatime` does).
fn no_atime() -> OFlags {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = OFlags::NOATIME;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = OFlags::empty();
    flags
}

fn is_dir(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

fn latest(st: &Stat) -> i64 {
    #[allow(clippy::useless_conversion, reason = "the time fields' types differ between platforms")]
    i64::from(st.st_mtime).max(i64::from(st.st_atime))
}

fn mtime(st: &Stat) -> i64 {
    #[allow(clippy::useless_conversion, reason = "the time fields' types differ between platforms")]
    i64::from(st.st_mtime)
}

/// Opens `rel` below `dir`, one component at a time, never through a link.
#[must_use]
pub fn open_dir(dir: &OwnedFd, rel: &Path) -> Option<OwnedFd> {
    let mut cur = dir.try_clone().ok()?;
    for c in rel.components() {
        let name = CString::new(c.as_os_str().as_bytes()).ok()?;
        cur = open_at(&cur, &name)?;
    }
    Some(cur)
}

/// Opens the dir `name` in `dir`, never through a link, and where allowed so that listing it leaves its access
/// time alone.
fn open_at(dir: &OwnedFd, name: &CStr) -> Option<OwnedFd> {
    match rustix::fs::openat(dir, name, dir_flags() | no_atime(), Mode::empty()) {
        Err(Errno::PERM) => rustix::fs::openat(dir, name, dir_flags(), Mode::empty()).ok(),
        other => other.ok(),
    }
}

/// The names in `dir` (not `.` and `..`) with their stats, not following links.
fn listing(dir: &OwnedFd) -> Vec<(CString, Stat)> {
    let Ok(entries) = rustix::fs::Dir::read_from(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| ![&b"."[..], b".."].contains(&e.file_name().to_bytes()))
        .filter_map(|e| {
            let st = rustix::fs::statat(dir, e.file_name(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
            Some((e.file_name().to_owned(), st))
        })
        .collect()
}

/// The tally of `name` in `dir` (a file, or a tree walked without following links or leaving the dir's filesystem).
fn tally(dir: &OwnedFd, name: &CStr, st: &Stat) -> Tally {
    if !is_dir(st) {
        let id = crate::platform::file_id(st);
        return Tally {
            files: 1,
            bytes: u64::try_from(st.st_size).unwrap_or(0),
            used: latest(st),
            id: Some(id),
            mtime: mtime(st),
        };
    }
    // A dir's access time says only that someone listed it (`ls`, a backup, this walk): its change time says an
    // entry was made or removed.
    let mut t = Tally { used: mtime(st), mtime: mtime(st), ..Tally::default() };
    let Some(sub) = open_at(dir, name) else { return t };
    for (child, cst) in listing(&sub) {
        if is_dir(&cst) && cst.st_dev != st.st_dev {
            continue;
        }
        let c = tally(&sub, &child, &cst);
        t.files += c.files;
        t.bytes += c.bytes;
        t.used = t.used.max(c.used);
    }
    t
}

/// Reads at most `limit` bytes of `name` in `dir`, without following a link and, where allowed, without touching
/// its access time.
fn read_head(dir: &OwnedFd, name: &Path, limit: u64) -> Option<Vec<u8>> {
    let (parent, file) = match (name.parent(), name.file_name()) {
        (Some(p), Some(f)) if !p.as_os_str().is_empty() => (open_dir(dir, p)?, f),
        (_, Some(f)) => (dir.try_clone().ok()?, f),
        _ => return None,
    };
    let file = CString::new(file.as_bytes()).ok()?;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(&parent, &file, flags | no_atime(), Mode::empty()) {
        Err(Errno::PERM) => rustix::fs::openat(&parent, &file, flags, Mode::empty()).ok()?,
        other => other.ok()?,
    };
    if !rustix::fs::fstat(&fd).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile) {
        return None;
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd).take(limit).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

fn text(name: &CStr) -> Option<&str> {
    name.to_str().ok()
}

/// Every unit in the profile dir `build` (of the build dir), with what was uplifted from it into `artifact` (the
/// artifact dir's profile dir of the same name; the same dir when the build dir is the target dir). `profile`: the
/// profile dir's path relative to its root, `prefix`: how reports name the root (`debug`, or a path).
#[must_use]
pub fn units_in(build: &OwnedFd, artifact: Option<&OwnedFd>, profile: &Path) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    let mut by_hash: HashMap<String, usize> = HashMap::new();
    let named = |rel: &str| format!("{}/{rel}", profile.display());
    // The flat layout's fingerprints: one unit each.
    if let Some(fp) = open_dir(build, Path::new(FINGERPRINT)) {
        for (name, st) in listing(&fp) {
            let Some(n) = text(&name) else { continue };
            let Some((package, hash)) = n.rsplit_once('-').filter(|(_, h)| is_hash(h)) else { continue };
            if !is_dir(&st) {
                continue;
            }
            let mut unit = Unit::new(named(n), profile, UnitKind::Built);
            unit.krate = Some(package.replace('-', "_"));
            let rel = Path::new(FINGERPRINT).join(n);
            read_fingerprint(build, &rel, &mut unit);
            unit.add(&tally(&fp, &name, &st), Area::Build, rel);
            by_hash.insert(hash.to_string(), units.len());
            units.push(unit);
        }
    }
    let mut objects: Vec<(usize, Entry, Tally)> = Vec::new();
    let mut ids: HashMap<FileId, usize> = HashMap::new();
    // `deps/`, and `examples/` where examples are built (`<example>-<hash>`, uplifted beside as `<example>`).
    for area in [DEPS, EXAMPLES] {
        let Some(deps) = open_dir(build, Path::new(area)) else { continue };
        for (name, st) in listing(&deps) {
            let Some(n) = text(&name) else { continue };
            let Some(hash) = deps_hash(n) else { continue };
            let t = tally(&deps, &name, &st);
            let rel = Path::new(area).join(n);
            match by_hash.get(hash) {
                Some(&i) if is_rcgu_object(n) => objects.push((i, Entry { area: Area::Build, path: rel }, t)),
                Some(&i) => {
                    if is_rmeta(n) {
                        units[i].metadata = Some(rel.clone());
                    }
                    if let Some(id) = t.id {
                        ids.insert(id, i);
                    }
                    units[i].add(&t, Area::Build, rel);
                }
                None => {
                    let mut orphan = Unit::new(named(&rel.display().to_string()), profile, orphan_kind(n));
                    orphan.add(&t, Area::Build, rel);
                    units.push(orphan);
                }
            }
        }
    }
    // `*.rcgu.o` written before the unit's last build started are left from earlier builds.
    for (i, entry, t) in objects {
        let stale = units[i].built.is_some_and(|built| t.mtime < built);
        if stale {
            let mut orphan = Unit::new(named(&entry.path.display().to_string()), profile, UnitKind::Orphan("rcgu"));
            orphan.add(&t, entry.area, entry.path);
            units.push(orphan);
        } else {
            units[i].add(&t, entry.area, entry.path);
        }
    }
    build_dir_units(build, profile, &by_hash, &mut units, &mut ids);
    units.extend(incremental_units(build, profile));
    if let Some(artifact) = artifact {
        uplifts(artifact, &ids, &mut units);
    }
    flat_units_outlived(&mut units);
    units
}

/// The units of `build/`: a flat unit's build script or its run (`build/<package>-<hash>/`, added to the unit of its
/// hash, or an orphan), or a unit of the new layout (`build/<package>/<hash>/`).
fn build_dir_units(
    build: &OwnedFd,
    profile: &Path,
    by_hash: &HashMap<String, usize>,
    units: &mut Vec<Unit>,
    ids: &mut HashMap<FileId, usize>,
) {
    let named = |rel: &str| format!("{}/{rel}", profile.display());
    if let Some(dir) = open_dir(build, Path::new(BUILD)) {
        for (name, st) in listing(&dir) {
            let Some(n) = text(&name) else { continue };
            if !is_dir(&st) {
                continue;
            }
            // Flat: `build/<package>-<hash>/`, a build script or its run.
            if let Some((_, hash)) = n.rsplit_once('-').filter(|(_, h)| is_hash(h)) {
                let rel = Path::new(BUILD).join(n);
                let t = tally(&dir, &name, &st);
                if let Some(&i) = by_hash.get(hash) {
                    units[i].add(&t, Area::Build, rel);
                } else {
                    let mut orphan = Unit::new(named(&rel.display().to_string()), profile, orphan_kind(n));
                    orphan.add(&t, Area::Build, rel);
                    units.push(orphan);
                }
                continue;
            }
            // New layout: `build/<package>/<hash>/`.
            let Some(pkg) = open_at(&dir, &name) else { continue };
            for (h, hst) in listing(&pkg) {
                let Some(hash) = text(&h).filter(|h| is_hash(h)) else { continue };
                if !is_dir(&hst) {
                    continue;
                }
                let rel = Path::new(BUILD).join(n).join(hash);
                let mut unit = Unit::new(named(&rel.display().to_string()), profile, UnitKind::Built);
                unit.krate = Some(n.replace('-', "_"));
                read_fingerprint(build, &rel.join("fingerprint"), &mut unit);
                let stale = new_layout_outputs(&pkg, &h, &rel, &mut unit, units.len(), ids);
                unit.add(&tally(&pkg, &h, &hst), Area::Build, rel);
                for o in &stale {
                    unit.files = unit.files.saturating_sub(o.files);
                    unit.bytes = unit.bytes.saturating_sub(o.bytes);
                }
                units.push(unit);
                units.extend(stale);
            }
        }
    }
}

fn is_rmeta(name: &str) -> bool {
    Path::new(name).extension().is_some_and(|e| e == "rmeta")
}

/// What an output without a fingerprint is called in reports.
fn orphan_kind(name: &str) -> UnitKind {
    UnitKind::Orphan(if is_rcgu_object(name) { "rcgu" } else { "no-fingerprint" })
}

/// Reads a unit's fingerprint dir `rel` (in `build`): its hash file, JSON and `invoked.timestamp`.
fn read_fingerprint(build: &OwnedFd, rel: &Path, unit: &mut Unit) {
    let Some(fp) = open_dir(build, rel) else { return };
    let files = listing(&fp);
    for (name, st) in &files {
        let Some(n) = text(name) else { continue };
        if n == "invoked.timestamp" {
            unit.built = Some(mtime(st));
        }
        let Some(stem) = n.strip_suffix(".json") else { continue };
        if let Some(json) =
            read_head(&fp, Path::new(n), 1 << 20).and_then(|b| parse_fingerprint_json(&String::from_utf8_lossy(&b)))
        {
            unit.rustc = json.rustc;
            unit.deps = json.deps;
        }
        if let Some(hash) =
            read_head(&fp, Path::new(stem), 64).and_then(|b| parse_fingerprint_hash(&String::from_utf8_lossy(&b)))
        {
            unit.fingerprint = Some(hash);
        }
    }
    if unit.built.is_none() {
        // A build script's run in the new layout keeps its timestamp under `run/`; the flat one under `build/`.
        unit.built = files.iter().map(|(_, st)| mtime(st)).max();
    }
}

/// The files of a new-layout unit's `out/` that may be uplifted, and the one that tells its rustc; returns the
/// `*.rcgu.o` its earlier builds left there, as orphans.
fn new_layout_outputs(
    pkg: &OwnedFd,
    hash: &CStr,
    rel: &Path,
    unit: &mut Unit,
    index: usize,
    ids: &mut HashMap<FileId, usize>,
) -> Vec<Unit> {
    let mut stale = Vec::new();
    let Some(dir) = open_at(pkg, hash) else { return stale };
    let Some(out) = open_dir(&dir, Path::new("out")) else { return stale };
    for (name, st) in listing(&out) {
        if is_dir(&st) {
            continue;
        }
        let path = rel.join("out").join(OsStr::from_bytes(name.to_bytes()));
        let n = text(&name).unwrap_or_default();
        if is_rmeta(n) {
            unit.metadata = Some(path.clone());
        }
        if is_rcgu_object(n) && unit.built.is_some_and(|built| mtime(&st) < built) {
            let mut orphan = Unit::new(
                format!("{}/{}", unit.profile.display(), path.display()),
                &unit.profile,
                UnitKind::Orphan("rcgu"),
            );
            orphan.add(&tally(&out, &name, &st), Area::Build, path);
            stale.push(orphan);
            continue;
        }
        ids.insert(crate::platform::file_id(&st), index);
    }
    stale
}

/// Each `incremental/<crate>-<id>/` as a unit of its own, its rustc read from its newest session; sessions older
/// than the newest finished one (rustc keeps one) that no rustc holds are orphans.
fn incremental_units(build: &OwnedFd, profile: &Path) -> Vec<Unit> {
    let mut out = Vec::new();
    let Some(inc) = open_dir(build, Path::new(INCREMENTAL)) else { return out };
    for (name, st) in listing(&inc) {
        let Some(n) = text(&name) else { continue };
        if !is_dir(&st) {
            continue;
        }
        let rel = Path::new(INCREMENTAL).join(n);
        let Some(dir) = open_at(&inc, &name) else { continue };
        let sessions = listing(&dir);
        // Finished sessions: `s-<time>-<random>-<svh>`; `-working` ones are being written (or a crash left them).
        let mut finished: Vec<(&CString, &Stat)> = sessions
            .iter()
            .filter(|(s, st)| is_dir(st) && text(s).is_some_and(|s| s.starts_with("s-") && !s.ends_with("-working")))
            .map(|(s, st)| (s, st))
            .collect();
        finished.sort_by_key(|(s, st)| (mtime(st), (*s).clone()));
        let newest = finished.last().map(|(s, _)| (*s).clone());
        let mut unit = Unit::new(format!("{}/{}", profile.display(), rel.display()), profile, UnitKind::Incremental);
        unit.krate = n.rsplit_once('-').map(|(k, _)| k.to_string());
        if let Some(s) = &newest {
            let graph = Path::new(OsStr::from_bytes(s.to_bytes())).join("dep-graph.bin");
            unit.version = read_head(&dir, &graph, 256).and_then(|b| incremental_version(&b));
        }
        for (s, _) in finished.iter().rev().skip(1) {
            let Some(session) = text(s) else { continue };
            // `s-<time>-<random>` names the session's lock file too; one a rustc holds is in use.
            let stem: String = session.splitn(4, '-').take(3).collect::<Vec<_>>().join("-");
            let lock = format!("{stem}.lock");
            if crate::layout::is_held_at(&dir, &lock) {
                continue;
            }
            let mut orphan = Unit::new(
                format!("{}/{}/{session}", profile.display(), rel.display()),
                profile,
                UnitKind::Orphan("incremental-session"),
            );
            for part in [session.to_string(), lock] {
                let Ok(c) = CString::new(part.clone()) else { continue };
                if let Ok(pst) = rustix::fs::statat(&dir, &c, AtFlags::SYMLINK_NOFOLLOW) {
                    orphan.add(&tally(&dir, &c, &pst), Area::Build, rel.join(part));
                }
            }
            out.push(orphan);
        }
        unit.add(&tally(&inc, &name, &st), Area::Build, rel);
        out.push(unit);
    }
    out
}

/// Final artifacts in the artifact profile dir (and its `examples/`) that are hard links of a unit's files belong
/// to that unit, with the `.d` file cargo writes beside them.
fn uplifts(artifact: &OwnedFd, ids: &HashMap<FileId, usize>, units: &mut [Unit]) {
    for sub in [None, Some(EXAMPLES)] {
        let dir = match sub {
            None => artifact.try_clone().ok(),
            Some(s) => open_dir(artifact, Path::new(s)),
        };
        let Some(dir) = dir else { continue };
        let files = listing(&dir);
        for (name, st) in &files {
            if is_dir(st) {
                continue;
            }
            let Some(&i) = ids.get(&crate::platform::file_id(st)) else { continue };
            let Some(n) = text(name) else { continue };
            // A unit's own file (`examples/<example>-<hash>`, when the build dir is the target dir) is no uplift.
            if sub.is_some() && deps_hash(n).is_some() {
                continue;
            }
            let rel = sub.map_or_else(|| PathBuf::from(n), |s| Path::new(s).join(n));
            let t = tally(&dir, name, st);
            units[i].add(&t, Area::Artifact, rel.clone());
            let stem = n.split_once('.').map_or(n, |(s, _)| s);
            let dep_info = format!("{stem}.d");
            if dep_info != n
                && let Some((d, dst)) = files.iter().find(|(f, _)| text(f) == Some(dep_info.as_str()))
            {
                let rel = sub.map_or_else(|| PathBuf::from(&dep_info), |s| Path::new(s).join(&dep_info));
                units[i].add(&tally(&dir, d, dst), Area::Artifact, rel);
            }
        }
    }
}

/// Once a toolchain writes the new layout in a profile, its units of the flat layout there are never used again.
fn flat_units_outlived(units: &mut [Unit]) {
    let new_layout: Vec<u64> = units
        .iter()
        .filter(|u| u.kind == UnitKind::Built && u.entries.first().is_some_and(|e| e.path.starts_with(BUILD)))
        .filter_map(|u| u.rustc)
        .collect();
    for u in units.iter_mut() {
        let flat = u.entries.first().is_some_and(|e| e.path.starts_with(FINGERPRINT));
        if u.kind == UnitKind::Built && flat && u.rustc.is_some_and(|r| new_layout.contains(&r)) {
            u.kind = UnitKind::Orphan("old-layout");
        }
    }
}

/// The profile dirs under `root` that hold units or cargo's locks (`debug`, `release`, `<triple>/debug`), relative.
#[must_use]
pub fn profiles(root: &OwnedFd) -> Vec<PathBuf> {
    let markers = [FINGERPRINT, DEPS, BUILD, INCREMENTAL].iter().chain(super::PROFILE_LOCKS.iter());
    let markers: Vec<&str> = markers.copied().collect();
    let is_profile =
        |fd: &OwnedFd| markers.iter().any(|m| rustix::fs::statat(fd, *m, AtFlags::SYMLINK_NOFOLLOW).is_ok());
    let mut out = Vec::new();
    for (name, st) in listing(root) {
        let Some(n) = text(&name) else { continue };
        if n.starts_with('.') || !is_dir(&st) {
            continue;
        }
        let Some(sub) = open_at(root, &name) else { continue };
        if is_profile(&sub) {
            out.push(PathBuf::from(n));
        } else if super::looks_like_triple(n) {
            for (p, pst) in listing(&sub) {
                let Some(pn) = text(&p).filter(|p| !p.starts_with('.')) else { continue };
                if !is_dir(&pst) {
                    continue;
                }
                if open_at(&sub, &p).is_some_and(|fd| is_profile(&fd)) {
                    out.push(Path::new(n).join(pn));
                }
            }
        }
    }
    out.sort();
    out
}

/// The rustc version a unit's metadata file (relative to the build profile dir) says.
#[must_use]
pub fn version_of(build: &OwnedFd, metadata: &Path) -> Option<String> {
    metadata_version(&read_head(build, metadata, 4096)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hashes() {
        assert_eq!(split_unit("libdep-5dac34883177448e.rmeta"), Some(("dep", "5dac34883177448e")));
        assert_eq!(split_unit("libc-5dac34883177448e.d"), Some(("libc", "5dac34883177448e")));
        assert_eq!(deps_hash("app-8a22746a4af656dd.app.1x2-cgu.0.rcgu.o"), Some("8a22746a4af656dd"));
        assert_eq!(deps_hash("libmac-89b2e29bbdf17f63.so"), Some("89b2e29bbdf17f63"));
        assert_eq!(deps_hash("notes.txt"), None);
        assert!(is_rcgu_object("app-8a22746a4af656dd.app.1x2-cgu.0.rcgu.o"));
        assert!(deps_entry_of("libdep-5dac34883177448e.rlib", "dep", "5dac34883177448e"));
        assert!(!deps_entry_of("libdepx-5dac34883177448e.rlib", "dep", "5dac34883177448e"));
    }

    #[test]
    fn what_cargo_and_rustc_write() {
        // `lib-dep` holds the fingerprint's little-endian bytes; the dependent's JSON names it as a number.
        assert_eq!(parse_fingerprint_hash("ffb38232246bbd7d\n"), Some(0x7dbd_6b24_3282_b3ff));
        assert_eq!(parse_fingerprint_hash("xyz"), None);
        let json = r#"{"rustc":5820213461839856997,"features":"[]","deps":[[1,"build_script_build",false,7],[2,"dep",false,9060515828549727231]],"local":[]}"#;
        let parsed = parse_fingerprint_json(json).unwrap();
        assert_eq!(parsed.rustc, Some(5_820_213_461_839_856_997));
        assert_eq!(parsed.deps, [7, 9_060_515_828_549_727_231]);
        let version = b"rustc 1.95.0 (59807616e 2026-04-14)";
        let mut rmeta = b"rust\0\0\0\n\xb3\x06\0\0\0\0\0\0".to_vec();
        rmeta.push(u8::try_from(version.len()).unwrap());
        rmeta.extend_from_slice(version);
        rmeta.extend_from_slice(b"\xc1\x02rest");
        assert_eq!(metadata_version(&rmeta).as_deref(), Some("rustc 1.95.0 (59807616e 2026-04-14)"));
        let mut rlib = b"!<arch>\nlib.rmeta/      0           0     0     644     9999      `\n".to_vec();
        rlib.extend_from_slice(&rmeta);
        assert_eq!(metadata_version(&rlib), metadata_version(&rmeta));
        let mut graph = b"RSIC\0\0".to_vec();
        let v = b"1.97.0-nightly (e50aa6fba 2026-05-19)";
        graph.push(u8::try_from(v.len()).unwrap());
        graph.extend_from_slice(v);
        assert_eq!(incremental_version(&graph).as_deref(), Some("rustc 1.97.0-nightly (e50aa6fba 2026-05-19)"));
        assert_eq!(incremental_version(b"RSIC"), None);
    }
}
