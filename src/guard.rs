//! The safety rails: which directories the tool refuses to clean, and why.
//!
//! Never, whatever the flags: `/`, a top-level system dir, a home dir (from `$HOME`, the passwd entry of the
//! invoking user and of `SUDO_USER`) or cargo's home, the workspace root, or an ancestor of any of them. A
//! `--target-dir` must exist. A dir that exists must look like a cargo target dir — cargo's own `CACHEDIR.TAG`
//! text or cargo's layout — and hold nothing cargo never writes there (a VCS dir, `.ssh`, a `Cargo.toml`), and must
//! not lie inside cargo's home; `--force` overrides only these last rules.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::anchor::{self, AnchorError, Anchored, Kind, Opened};
use crate::layout::looks_like_target;
use crate::model::FileId;
use crate::platform::{self, Dir, Files};
use crate::workspace::Dirs;

/// Top-level dirs of the system (Linux and macOS), refused whatever the flags. Windows' are where its environment
/// says ([`Protected::for_user`]).
#[cfg(unix)]
const SYSTEM_DIRS: &[&str] = &[
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/nix",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/snap",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/local",
    "/var",
    "/var/tmp",
    "/var/cache",
    "/var/lib",
    "/Applications",
    "/Library",
    "/System",
    "/Users",
    "/Volumes",
    "/cores",
    "/private",
    "/private/tmp",
    "/private/var",
];

#[cfg(windows)]
const SYSTEM_DIRS: &[&str] = &[];

/// Entries cargo never writes at the top of a target dir, but people keep in dirs that matter to them.
const FOREIGN: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".jj",
    ".bzr",
    "_darcs",
    ".pijul",
    ".fossil",
    "CVS",
    ".ssh",
    ".gnupg",
    ".bashrc",
    ".profile",
    ".zshrc",
    "Cargo.toml",
];

/// Why a directory was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    FilesystemRoot,
    SystemDir,
    Home {
        home: PathBuf,
    },
    CargoHome {
        cargo_home: PathBuf,
    },
    InsideCargoHome {
        cargo_home: PathBuf,
    },
    WorkspaceOrAncestor {
        workspace_root: PathBuf,
    },
    /// A `--target-dir` that does not exist: most likely a typo.
    Missing,
    NotADirectory,
    /// A symlink that leads nowhere: cleaning it would create whatever it names.
    DanglingSymlink,
    /// A root run, and a symlink that another user controls leading to a dir of `owner`'s.
    ForeignLink {
        by: String,
        owner: u32,
    },
    /// Its name led elsewhere after the check than at the check.
    Changed {
        what: String,
    },
    NotACargoTarget,
    /// It holds `entry`, which cargo never writes at the top of a target dir.
    Foreign {
        entry: String,
    },
    Unreadable(String),
}

/// A directory the guard will not let the tool touch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refusal {
    pub path: PathBuf,
    pub reason: Reason,
}

impl Refusal {
    /// Whether `--force` would let this through.
    #[must_use]
    pub fn overridable(&self) -> bool {
        matches!(self.reason, Reason::NotACargoTarget | Reason::Foreign { .. } | Reason::InsideCargoHome { .. })
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.reason {
            Reason::FilesystemRoot => write!(f, "refusing to clean {p}: it is the filesystem root"),
            Reason::SystemDir => write!(f, "refusing to clean {p}: it is a system directory"),
            Reason::Home { home } => {
                write!(f, "refusing to clean {p}: it is the home directory {} or one of its parents", home.display())
            }
            Reason::CargoHome { cargo_home } => {
                write!(f, "refusing to clean {p}: it is cargo's home {} or one of its parents", cargo_home.display())
            }
            Reason::InsideCargoHome { cargo_home } => write!(
                f,
                "refusing to clean {p}: it lies inside cargo's home {} (the registry, git checkouts, installed \
                 binaries), not a target dir",
                cargo_home.display()
            ),
            Reason::WorkspaceOrAncestor { workspace_root } => write!(
                f,
                "refusing to clean {p}: it is the workspace root {} or one of its parents",
                workspace_root.display()
            ),
            Reason::Missing => write!(f, "refusing to clean {p}: the --target-dir does not exist (a typo?)"),
            Reason::NotADirectory => write!(f, "refusing to clean {p}: it is not a directory"),
            Reason::DanglingSymlink => write!(f, "refusing to clean {p}: it is a symlink to nothing"),
            Reason::ForeignLink { by, owner } => write!(
                f,
                "refusing to clean {p}: it is a symlink that {by} can point anywhere, and it leads to a dir of uid \
                 {owner}"
            ),
            Reason::Changed { what } => write!(f, "refusing to clean {p}: it changed after it was checked ({what})"),
            Reason::NotACargoTarget => write!(
                f,
                "refusing to clean {p}: it does not look like a cargo target dir (no CACHEDIR.TAG written by cargo, \
                 no .rustc_info.json, no <profile>/.cargo-lock)"
            ),
            Reason::Foreign { entry } => write!(
                f,
                "refusing to clean {p}: it holds {entry}, which cargo never writes in a target dir, so it is more \
                 than a target dir"
            ),
            Reason::Unreadable(e) => write!(f, "refusing to clean {p}: cannot inspect it: {e}"),
        }
    }
}

/// Said of a dir whose name led elsewhere at the act than at the check, by the guard and by the swap.
pub const CHANGED_HELP: &str =
    "someone else can rename or replace it: check who can write its parent dir, then run again";

impl Refusal {
    /// What the user can do: the flag that overrides it, or what to fix.
    #[must_use]
    pub fn help(&self) -> Option<String> {
        Some(match &self.reason {
            Reason::InsideCargoHome { .. } | Reason::NotACargoTarget => "pass --force if it is one".into(),
            Reason::WorkspaceOrAncestor { .. } => "pass the target dir itself with --target-dir".into(),
            Reason::Missing => {
                "pass an existing target dir, or leave out --target-dir to clean the one cargo uses".into()
            }
            Reason::DanglingSymlink => "remove the link or create what it points to".into(),
            Reason::ForeignLink { owner, .. } => {
                format!("run as uid {owner}, or pass the dir it leads to with --target-dir")
            }
            Reason::Changed { .. } => CHANGED_HELP.into(),
            Reason::Foreign { entry } => format!("move {entry} out, or pass --force if it may go"),
            Reason::FilesystemRoot
            | Reason::SystemDir
            | Reason::Home { .. }
            | Reason::CargoHome { .. }
            | Reason::NotADirectory
            | Reason::Unreadable(_) => return None,
        })
    }

    /// Why no flag helps, where none does; that nothing was changed, where the run had got further than a look.
    #[must_use]
    pub fn note(&self) -> Option<String> {
        match &self.reason {
            Reason::FilesystemRoot
            | Reason::SystemDir
            | Reason::Home { .. }
            | Reason::CargoHome { .. }
            | Reason::WorkspaceOrAncestor { .. } => Some("no flag overrides this".into()),
            Reason::ForeignLink { .. } => {
                Some("a root run does not follow another user's link; no flag overrides this".into())
            }
            Reason::Missing | Reason::Changed { .. } => Some("nothing was changed".into()),
            _ => None,
        }
    }
}

/// The places a run must never clean, whatever the flags, besides `/` and the system dirs.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    /// `$HOME`, and the passwd home of the invoking user and of `SUDO_USER`.
    pub homes: Vec<PathBuf>,
    /// `$CARGO_HOME`, or `.cargo` in each home.
    pub cargo_homes: Vec<PathBuf>,
    /// Windows' own dirs (`%SystemRoot%`, `%ProgramFiles%`, `%ProgramData%`…): neither they nor an ancestor of one.
    /// Empty on Unix, whose system dirs do not move.
    pub system: Vec<PathBuf>,
}

impl Protected {
    /// What this process must protect: `home` (`$HOME`), the passwd entries of this process's users and of
    /// `sudo_user`, and `cargo_home` (`$CARGO_HOME`) or `.cargo` in each of those homes.
    #[cfg(unix)]
    #[must_use]
    pub fn for_user(home: Option<PathBuf>, sudo_user: Option<&str>, cargo_home: Option<PathBuf>) -> Self {
        let mut homes: Vec<PathBuf> = home.into_iter().collect();
        let uids = [nix::unistd::geteuid(), nix::unistd::getuid()];
        homes.extend(uids.into_iter().filter_map(|u| nix::unistd::User::from_uid(u).ok().flatten()).map(|u| u.dir));
        if let Some(Ok(Some(entry))) = sudo_user.map(nix::unistd::User::from_name) {
            homes.push(entry.dir);
        }
        Self::with_homes(homes, cargo_home, Vec::new())
    }

    /// What this process must protect on Windows: `home` (`%USERPROFILE%`) and the profile the shell knows,
    /// `cargo_home` (`%CARGO_HOME%`) or `.cargo` in each home, and the system's dirs as the environment names them
    /// (`%SystemRoot%`, `%ProgramFiles%`, `%ProgramFiles(x86)%`, `%ProgramW6432%`, `%ProgramData%`, `%PUBLIC%`) and as
    /// the shell knows them: the environment is the caller's to change. A drive's root is refused as every
    /// filesystem root is. There is no `sudo` to ask about.
    #[cfg(windows)]
    #[must_use]
    pub fn for_user(home: Option<PathBuf>, _sudo_user: Option<&str>, cargo_home: Option<PathBuf>) -> Self {
        use crate::platform::windows::places;
        let vars =
            ["SystemRoot", "windir", "ProgramFiles", "ProgramFiles(x86)", "ProgramW6432", "ProgramData", "PUBLIC"];
        let mut system: Vec<PathBuf> = vars.iter().filter_map(std::env::var_os).map(PathBuf::from).collect();
        system.extend(places::system());
        let homes = home.into_iter().chain(places::profile()).collect();
        Self::with_homes(homes, cargo_home, system)
    }

    fn with_homes(mut homes: Vec<PathBuf>, cargo_home: Option<PathBuf>, mut system: Vec<PathBuf>) -> Self {
        system.retain(|s| s.is_absolute());
        homes.retain(|h| h.is_absolute() && h.parent().is_some());
        // `$HOME` stays first: it is where cargo looks for its home.
        let mut unique: Vec<PathBuf> = Vec::new();
        for h in homes {
            if !unique.contains(&h) {
                unique.push(h);
            }
        }
        let homes = unique;
        let cargo_homes = match cargo_home {
            Some(c) => vec![c],
            None => homes.iter().map(|h| h.join(".cargo")).collect(),
        };
        Protected { homes, cargo_homes, system }
    }
}

/// Opens every dir the run would clean and checks it as opened: the dirs it may clean, each held by its handle.
pub fn approve(dirs: &Dirs, protected: &Protected, force: bool, files: Files) -> Result<Vec<Anchored>, Refusal> {
    let mut approved = Vec::new();
    for dir in dirs.roots() {
        let explicit = dirs.explicit_target_dir && dir == dirs.target_dir;
        if let Some(a) = anchor_dir(dir, explicit, files, &dirs.workspace_root, protected)? {
            check(&a, &dirs.workspace_root, protected, explicit, force)?;
            approved.push(a);
        }
    }
    Ok(approved)
}

/// After the run lock: each name still leads to the dir that was approved, and that dir still passes. Whatever
/// changed in between (a symlink swapped in, a rename, a new mount), the run refuses rather than act on it.
pub fn confirm(
    approved: &[Anchored],
    dirs: &Dirs,
    protected: &Protected,
    force: bool,
    files: Files,
) -> Result<(), Refusal> {
    for a in approved {
        if let Some(what) = a.changed(files) {
            return Err(Refusal { path: a.path.clone(), reason: Reason::Changed { what } });
        }
        let explicit = dirs.explicit_target_dir && a.path == dirs.target_dir;
        check(a, &dirs.workspace_root, protected, explicit, force)?;
    }
    Ok(())
}

/// Opens and checks one dir by its path, as [`approve`] does (for tests and library callers).
pub fn check_dir(
    dir: &Path,
    workspace_root: &Path,
    protected: &Protected,
    explicit: bool,
    force: bool,
) -> Result<(), Refusal> {
    let files = crate::platform::Platform::native().files;
    match anchor_dir(dir, explicit, files, workspace_root, protected)? {
        Some(a) => check(&a, workspace_root, protected, explicit, force),
        None => Ok(()),
    }
}

fn anchor_dir(
    dir: &Path,
    explicit: bool,
    files: Files,
    workspace_root: &Path,
    protected: &Protected,
) -> Result<Option<Anchored>, Refusal> {
    let refuse = |reason| Err(Refusal { path: dir.to_path_buf(), reason });
    let opened = anchor::open(dir, files);
    if opened.is_err() {
        // What the path names is refused first, even where it cannot be opened (another user's home).
        check_names(dir, &resolve(dir), workspace_root, protected)?;
    }
    match opened {
        Ok(None) if explicit => refuse(Reason::Missing),
        Ok(a) => Ok(a),
        Err(AnchorError::FilesystemRoot) => refuse(Reason::FilesystemRoot),
        Err(AnchorError::NotADirectory) => refuse(Reason::NotADirectory),
        Err(AnchorError::DanglingSymlink) => refuse(Reason::DanglingSymlink),
        Err(AnchorError::Io(e)) => refuse(Reason::Unreadable(e.to_string())),
    }
}

/// Checks one opened dir against the rules of the module docs; `explicit` when it was given with `--target-dir`.
fn check(
    a: &Anchored,
    workspace_root: &Path,
    protected: &Protected,
    explicit: bool,
    force: bool,
) -> Result<(), Refusal> {
    let refuse = |reason| Err(Refusal { path: a.path.clone(), reason });
    let real = resolve(&a.real);
    let lex = lexical(&a.path);
    check_names(&a.path, &real, workspace_root, protected)?;
    let Some(dir) = &a.dir else {
        return if explicit { refuse(Reason::Missing) } else { Ok(()) };
    };
    check_identity(&a.path, dir.id, workspace_root, protected)?;
    if dir.kind == Kind::Symlink
        && let Some((by, owner)) = foreign_link(a, dir)
    {
        return refuse(Reason::ForeignLink { by, owner });
    }
    if force {
        return Ok(());
    }
    // By name, and by identity: a dir above the opened one (as Windows or the kernel names it) that is cargo's home.
    let above: Vec<FileId> = a.real.ancestors().skip(1).filter_map(platform::id_of_path).collect();
    let inside = protected.cargo_homes.iter().find(|c| {
        real.starts_with(resolve(c))
            || lex.starts_with(lexical(c))
            || platform::id_of_path(c).is_some_and(|id| above.contains(&id))
    });
    if let Some(cargo_home) = inside {
        return refuse(Reason::InsideCargoHome { cargo_home: cargo_home.clone() });
    }
    if let Some(entry) = foreign_entry(&dir.fd) {
        return refuse(Reason::Foreign { entry });
    }
    if looks_like_target(&dir.fd) { Ok(()) } else { refuse(Reason::NotACargoTarget) }
}

/// For a root run on a target dir that is a symlink: who else, besides root and the owner `owner` of the dir it leads
/// to, can change where it leads (the owner of the dir the link is in, the link's owner in a sticky dir, anybody in
/// a dir anybody may write). A root run never follows such a link: it would let that user point root at a tree
/// they could not touch themselves. Returns who, and the owner.
#[cfg(unix)]
fn foreign_link(a: &Anchored, dir: &Opened) -> Option<(String, u32)> {
    use rustix::fs::AtFlags;
    let owner = dir.owner.uid;
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let trusted = |uid: u32| uid == 0 || uid == owner;
    let Ok(parent) = rustix::fs::fstat(&a.parent) else {
        return Some(("a dir that cannot be inspected".into(), owner));
    };
    let sticky = parent.st_mode & 0o1000 != 0;
    if parent.st_mode & 0o002 != 0 && !sticky {
        return Some(("anybody (its dir may be written by all)".into(), owner));
    }
    if !trusted(parent.st_uid) {
        return Some((format!("uid {}, the owner of the dir it is in", parent.st_uid), owner));
    }
    let link = rustix::fs::statat(&a.parent, &a.name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
    (sticky && !trusted(link.st_uid)).then(|| (format!("uid {}, the owner of the link", link.st_uid), owner))
}

/// The rules that need no more than what `path` names, `real` being where it really is: never `/`, the workspace, a
/// home, cargo's home, a system dir, or an ancestor of these.
fn check_names(path: &Path, real: &Path, workspace_root: &Path, protected: &Protected) -> Result<(), Refusal> {
    let refuse = |reason| Err(Refusal { path: path.to_path_buf(), reason });
    let lex = lexical(path);
    // Each test against both spellings: a symlink must not hide what a dir is, nor `..` what it names.
    let is = |p: &Path| real == resolve(p) || lex == lexical(p);
    let within = |p: &Path| resolve(p).starts_with(real) || lexical(p).starts_with(&lex);
    if real.parent().is_none() || lex.parent().is_none() {
        return refuse(Reason::FilesystemRoot);
    }
    if within(workspace_root) {
        return refuse(Reason::WorkspaceOrAncestor { workspace_root: workspace_root.to_path_buf() });
    }
    if let Some(home) = protected.homes.iter().find(|h| within(h)) {
        return refuse(Reason::Home { home: home.clone() });
    }
    if let Some(cargo_home) = protected.cargo_homes.iter().find(|c| within(c)) {
        return refuse(Reason::CargoHome { cargo_home: cargo_home.clone() });
    }
    if SYSTEM_DIRS.iter().any(|s| is(Path::new(s))) || protected.system.iter().any(|s| within(s)) {
        return refuse(Reason::SystemDir);
    }
    Ok(())
}

/// A junction on Windows: nobody but the user can change where it leads in the user's own dirs, and a run there has
/// no root to steer.
#[cfg(windows)]
fn foreign_link(_a: &Anchored, _dir: &Opened) -> Option<(String, u32)> {
    None
}

/// The rules of [`check_names`] by identity: the opened dir must not be the workspace, a home, cargo's home or a
/// system dir, nor an ancestor of one, whatever spelling led to it (another case, a short name, a UNC path to a local
/// share, a link or a mount). Each protected path and its ancestors are looked up as they are now.
fn check_identity(path: &Path, id: FileId, workspace_root: &Path, protected: &Protected) -> Result<(), Refusal> {
    let refuse = |reason| Err(Refusal { path: path.to_path_buf(), reason });
    let holds = |p: &Path| p.ancestors().filter_map(platform::id_of_path).any(|a| a == id);
    if holds(workspace_root) {
        return refuse(Reason::WorkspaceOrAncestor { workspace_root: workspace_root.to_path_buf() });
    }
    if let Some(home) = protected.homes.iter().find(|h| holds(h)) {
        return refuse(Reason::Home { home: home.clone() });
    }
    if let Some(cargo_home) = protected.cargo_homes.iter().find(|c| holds(c)) {
        return refuse(Reason::CargoHome { cargo_home: cargo_home.clone() });
    }
    if protected.system.iter().any(|s| holds(s)) {
        return refuse(Reason::SystemDir);
    }
    Ok(())
}

/// The first entry of [`FOREIGN`] that the open dir `dir` holds (a symlink by that name counts too).
#[cfg(unix)]
fn foreign_entry(dir: &Dir) -> Option<String> {
    let exists = |name: &&&str| rustix::fs::statat(dir, **name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok();
    FOREIGN.iter().find(exists).map(|n| (*n).to_string())
}

/// On Windows from the dir's listing, case-insensitively as NTFS names are: a name that cannot be opened (held
/// without sharing, closed by its ACL) is still there. A dir that cannot be listed is refused as holding what it
/// may hide.
#[cfg(windows)]
fn foreign_entry(dir: &Dir) -> Option<String> {
    let Ok(entries) = crate::platform::windows::fs::list(dir) else {
        return Some("entries that cannot be listed".into());
    };
    FOREIGN
        .iter()
        .find(|f| entries.iter().any(|e| e.name.to_string_lossy().eq_ignore_ascii_case(f)))
        .map(|n| (*n).to_string())
}

/// The canonical path, or for a path that does not exist, its canonical parent joined with the rest. On Windows in
/// one spelling (no `\\?\`, lower case: NTFS names are case-insensitive), so that comparisons mean the same dir.
fn resolve(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return fold(p);
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => resolve(parent).join(name),
        _ => lexical(path),
    }
}

#[cfg(unix)]
fn fold(path: PathBuf) -> PathBuf {
    path
}

#[cfg(windows)]
#[expect(clippy::needless_pass_by_value, reason = "one signature with Unix's, which hands it back as it is")]
fn fold(path: PathBuf) -> PathBuf {
    PathBuf::from(crate::platform::windows::normalise(&path).to_string_lossy().to_lowercase())
}

/// `.` and `..` folded away without touching the filesystem (and the case, on Windows).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    fold(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protect(home: &Path) -> Protected {
        Protected { homes: vec![home.to_path_buf()], cargo_homes: vec![home.join(".cargo")], system: Vec::new() }
    }

    #[test]
    fn refuses_root_system_dirs_homes_and_workspace() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().canonicalize().unwrap();
        let ws = d.join("ws");
        std::fs::create_dir_all(ws.join("target")).unwrap();
        let home = d.join("home/me");
        std::fs::create_dir_all(home.join(".cargo/registry")).unwrap();
        let r = |dir: &Path| check_dir(dir, &ws, &protect(&home), false, true).map_err(|e| e.reason);
        #[cfg(unix)]
        {
            assert_eq!(r(Path::new("/")), Err(Reason::FilesystemRoot));
            for sys in ["/usr", "/etc", "/var", "/proc", "/home", "/opt", "/srv", "/boot", "/dev", "/sys"] {
                assert_eq!(r(Path::new(sys)), Err(Reason::SystemDir), "{sys}");
            }
        }
        #[cfg(windows)]
        {
            assert_eq!(r(Path::new(r"C:\")), Err(Reason::FilesystemRoot));
            let system = d.join("Windows");
            std::fs::create_dir_all(system.join("System32")).unwrap();
            let protected = Protected { system: vec![system.clone()], ..protect(&home) };
            let r = |dir: &Path| check_dir(dir, &ws, &protected, false, true).map_err(|e| e.reason);
            assert_eq!(r(&system), Err(Reason::SystemDir));
            assert_eq!(r(&PathBuf::from(system.to_string_lossy().to_uppercase())), Err(Reason::SystemDir), "any case");
            assert!(r(&system.join("System32")).is_ok(), "inside a system dir is not the system dir");
        }
        assert!(matches!(r(&home), Err(Reason::Home { .. })));
        assert!(matches!(r(&d.join("home")), Err(Reason::Home { .. })), "an ancestor of a home");
        assert!(matches!(r(&home.join(".cargo")), Err(Reason::CargoHome { .. })));
        assert!(r(&home.join(".cargo/registry")).is_ok(), "--force lets a dir inside cargo's home through");
        assert!(matches!(r(&ws), Err(Reason::WorkspaceOrAncestor { .. })));
        assert!(matches!(r(&ws.join("target/..")), Err(Reason::WorkspaceOrAncestor { .. })));
        assert!(r(&ws.join("target")).is_ok());
        assert!(r(&ws.join("missing")).is_ok());
        let explicit = check_dir(&ws.join("missing"), &ws, &protect(&home), true, true);
        assert_eq!(explicit.unwrap_err().reason, Reason::Missing, "a --target-dir must exist, even with --force");
    }

    #[test]
    fn requires_cargos_own_mark_unless_forced() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().canonicalize().unwrap();
        let t = d.join("t");
        std::fs::create_dir_all(t.join("debug")).unwrap();
        let ws = d.join("ws");
        let p = protect(&d.join("home"));
        let check = |force| check_dir(&t, &ws, &p, false, force).map_err(|e| e.reason);
        assert_eq!(check(false), Err(Reason::NotACargoTarget));
        assert!(check(true).is_ok());
        std::fs::write(t.join("debug/.cargo-lock"), "").unwrap();
        assert!(check(false).is_ok());
        std::fs::remove_file(t.join("debug/.cargo-lock")).unwrap();
        std::fs::write(t.join("CACHEDIR.TAG"), "Signature: nope").unwrap();
        assert!(check(false).is_err());
        std::fs::write(
            t.join("CACHEDIR.TAG"),
            format!("{}\n# made by another tool\n", crate::layout::CACHEDIR_SIGNATURE),
        )
        .unwrap();
        assert_eq!(check(false), Err(Reason::NotACargoTarget), "the generic signature alone is not cargo's");
        std::fs::write(t.join("CACHEDIR.TAG"), crate::layout::CACHEDIR_TAG).unwrap();
        assert!(check(false).is_ok());
        std::fs::write(d.join("file"), "").unwrap();
        assert_eq!(check_dir(&d.join("file"), &ws, &p, false, true).unwrap_err().reason, Reason::NotADirectory);
    }

    #[test]
    fn refuses_a_tagged_dir_that_holds_what_cargo_never_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().canonicalize().unwrap();
        let t = d.join("t");
        std::fs::create_dir_all(t.join(".ssh")).unwrap();
        std::fs::write(t.join("CACHEDIR.TAG"), crate::layout::CACHEDIR_TAG).unwrap();
        let p = protect(&d.join("home"));
        let r = check_dir(&t, &d.join("ws"), &p, false, false).unwrap_err();
        assert_eq!(r.reason, Reason::Foreign { entry: ".ssh".into() });
        assert!(r.overridable() && r.help().unwrap().contains("--force"));
        assert!(check_dir(&t, &d.join("ws"), &p, false, true).is_ok());
    }

    /// Finder drops `.DS_Store` into any dir a person opens in it, target/ and its profile dirs included: that is no
    /// sign of a dir that matters, and the guard lets a target dir holding them through without `--force`.
    #[test]
    fn finders_ds_store_is_no_reason_to_refuse() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().canonicalize().unwrap();
        let t = d.join("t");
        std::fs::create_dir_all(t.join("debug")).unwrap();
        std::fs::write(t.join("CACHEDIR.TAG"), crate::layout::CACHEDIR_TAG).unwrap();
        for dir in [&t, &t.join("debug")] {
            std::fs::write(dir.join(".DS_Store"), b"\0\0\0\x01Bud1").unwrap();
        }
        let p = protect(&d.join("home"));
        assert!(check_dir(&t, &d.join("ws"), &p, false, false).is_ok());
        // Nor does it make an untagged dir with cargo's layout look like anything else.
        std::fs::remove_file(t.join("CACHEDIR.TAG")).unwrap();
        std::fs::write(t.join("debug/.cargo-lock"), "").unwrap();
        assert!(check_dir(&t, &d.join("ws"), &p, false, false).is_ok());
    }

    /// The advice to pass --force is given exactly where --force would let the dir through, and the message itself
    /// only says what is wrong.
    #[test]
    fn help_offers_force_only_where_it_works() {
        let reasons = [
            Reason::FilesystemRoot,
            Reason::SystemDir,
            Reason::Home { home: "/h".into() },
            Reason::CargoHome { cargo_home: "/h/.cargo".into() },
            Reason::InsideCargoHome { cargo_home: "/h/.cargo".into() },
            Reason::WorkspaceOrAncestor { workspace_root: "/w".into() },
            Reason::Missing,
            Reason::NotADirectory,
            Reason::DanglingSymlink,
            Reason::ForeignLink { by: "uid 1001".into(), owner: 1000 },
            Reason::Changed { what: "it is a symlink now".into() },
            Reason::NotACargoTarget,
            Reason::Foreign { entry: ".git".into() },
            Reason::Unreadable("permission denied".into()),
        ];
        for reason in reasons {
            let r = Refusal { path: "/w/target".into(), reason };
            let help = r.help().unwrap_or_default();
            assert_eq!(help.contains("--force"), r.overridable(), "{r}: help: {help}");
            let message = r.to_string();
            assert!(message.starts_with("refusing to clean /w/target: "), "{message}");
            assert!(!message.contains("--force") && !message.contains("overrides"), "{message}");
            let no_flag = r.note().is_some_and(|n| n.contains("no flag overrides this"));
            assert!(!(no_flag && r.overridable()), "{r}");
        }
    }

    #[test]
    fn refuses_cargos_registry_even_with_cargos_tag() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().canonicalize().unwrap();
        let home = d.join("home");
        let registry = home.join(".cargo/registry");
        std::fs::create_dir_all(registry.join("index")).unwrap();
        std::fs::write(registry.join("CACHEDIR.TAG"), crate::layout::CACHEDIR_TAG).unwrap();
        let r = check_dir(&registry, &d.join("ws"), &protect(&home), false, false).unwrap_err();
        assert!(matches!(r.reason, Reason::InsideCargoHome { .. }), "{r}");
    }
}
