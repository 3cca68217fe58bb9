//! The safety rails: which directories the tool refuses to clean, and why.
//!
//! Never `/`, `$HOME`, the workspace root or any of its ancestors, whatever the flags; a directory that exists must
//! look like a cargo target dir unless `--force`.

use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::workspace::Dirs;

/// The first line of a cache directory tag (<https://bford.info/cachedir/>), as cargo writes it.
pub const CACHEDIR_SIGNATURE: &str = "Signature: 8a477f597d28d172789f06886806bc55";

/// The `CACHEDIR.TAG` cargo writes, byte for byte, so tools that look for cargo's tag find ours.
pub const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55
# This file is a cache directory tag created by cargo.
# For information about cache directory tags see https://bford.info/cachedir/
";

/// Why a directory was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    FilesystemRoot,
    Home,
    WorkspaceOrAncestor { workspace_root: PathBuf },
    NotADirectory,
    NotACargoTarget,
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
        self.reason == Reason::NotACargoTarget
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.reason {
            Reason::FilesystemRoot => {
                write!(f, "refusing to clean {p}: it is the filesystem root (no flag overrides this)")
            }
            Reason::Home => write!(f, "refusing to clean {p}: it is your home directory (no flag overrides this)"),
            Reason::WorkspaceOrAncestor { workspace_root } => write!(
                f,
                "refusing to clean {p}: it is the workspace root {} or one of its parents (no flag overrides this); \
                 pass the target dir itself with --target-dir",
                workspace_root.display()
            ),
            Reason::NotADirectory => write!(f, "refusing to clean {p}: it is not a directory"),
            Reason::NotACargoTarget => write!(
                f,
                "refusing to clean {p}: it does not look like a cargo target dir (no CACHEDIR.TAG with cargo's \
                 signature, no .rustc_info.json, no <profile>/.cargo-lock); pass --force if it is one"
            ),
            Reason::Unreadable(e) => write!(f, "refusing to clean {p}: cannot inspect it: {e}"),
        }
    }
}

/// Checks every dir the run would clean.
pub fn check(dirs: &Dirs, force: bool) -> Result<(), Refusal> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    for dir in dirs.roots() {
        check_dir(dir, &dirs.workspace_root, home.as_deref(), force)?;
    }
    Ok(())
}

/// Checks one dir against the rules of the module docs.
pub fn check_dir(dir: &Path, workspace_root: &Path, home: Option<&Path>, force: bool) -> Result<(), Refusal> {
    let refuse = |reason| Err(Refusal { path: dir.to_path_buf(), reason });
    let real = resolve(dir);
    if real.parent().is_none() || lexical(dir).parent().is_none() {
        return refuse(Reason::FilesystemRoot);
    }
    if let Some(home) = home {
        let home_real = resolve(home);
        if real == home_real || lexical(dir) == lexical(home) {
            return refuse(Reason::Home);
        }
    }
    let ws_real = resolve(workspace_root);
    if ws_real.starts_with(&real) || lexical(workspace_root).starts_with(lexical(dir)) {
        return refuse(Reason::WorkspaceOrAncestor { workspace_root: workspace_root.to_path_buf() });
    }
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => refuse(Reason::Unreadable(e.to_string())),
        Ok(m) if !m.is_dir() => refuse(Reason::NotADirectory),
        Ok(_) if force || looks_like_target(dir) => Ok(()),
        Ok(_) => refuse(Reason::NotACargoTarget),
    }
}

/// Whether `dir` carries one of the marks cargo leaves in a target or build dir.
#[must_use]
pub fn looks_like_target(dir: &Path) -> bool {
    let tagged = std::fs::read_to_string(dir.join("CACHEDIR.TAG")).is_ok_and(|t| t.starts_with(CACHEDIR_SIGNATURE));
    tagged || dir.join(".rustc_info.json").is_file() || !crate::lock::cargo_locks(dir).is_empty()
}

/// The canonical path, or for a path that does not exist, its canonical parent joined with the rest.
fn resolve(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => resolve(parent).join(name),
        _ => lexical(path),
    }
}

/// `.` and `..` folded away without touching the filesystem.
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_root_home_and_workspace() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().canonicalize().unwrap();
        let ws = d.join("ws");
        std::fs::create_dir_all(ws.join("target")).unwrap();
        let r = |dir: &Path| check_dir(dir, &ws, Some(&d), true).map_err(|e| e.reason);
        assert_eq!(r(Path::new("/")), Err(Reason::FilesystemRoot));
        assert_eq!(r(&d), Err(Reason::Home));
        assert!(matches!(r(&ws), Err(Reason::WorkspaceOrAncestor { .. })));
        assert!(matches!(r(&ws.join("target/..")), Err(Reason::WorkspaceOrAncestor { .. })));
        assert!(r(&ws.join("target")).is_ok());
        assert!(r(&ws.join("missing")).is_ok());
    }

    #[test]
    fn requires_a_cargo_mark_unless_forced() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().canonicalize().unwrap();
        let t = d.join("t");
        std::fs::create_dir_all(t.join("debug")).unwrap();
        let ws = d.join("ws");
        assert_eq!(check_dir(&t, &ws, None, false).unwrap_err().reason, Reason::NotACargoTarget);
        assert!(check_dir(&t, &ws, None, true).is_ok());
        std::fs::write(t.join("debug/.cargo-lock"), "").unwrap();
        assert!(check_dir(&t, &ws, None, false).is_ok());
        std::fs::remove_file(t.join("debug/.cargo-lock")).unwrap();
        std::fs::write(t.join("CACHEDIR.TAG"), "Signature: nope").unwrap();
        assert!(check_dir(&t, &ws, None, false).is_err());
        std::fs::write(t.join("CACHEDIR.TAG"), CACHEDIR_TAG).unwrap();
        assert!(check_dir(&t, &ws, None, false).is_ok());
        std::fs::write(d.join("file"), "").unwrap();
        assert_eq!(check_dir(&d.join("file"), &ws, None, true).unwrap_err().reason, Reason::NotADirectory);
    }
}
