//! Finding the workspace's target dir and build dir, exactly as cargo resolves them.
//!
//! `cargo metadata` is the one source of truth: it already honours `CARGO_TARGET_DIR`, `build.target-dir`,
//! `build.build-dir` and config files, and it works while a build holds the lock.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

/// The directories a run works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    pub workspace_root: PathBuf,
    pub manifest_path: Option<PathBuf>,
    pub target_dir: PathBuf,
    /// Only when it lies outside the target dir; `None` when cargo puts intermediate artifacts in the target dir.
    pub build_dir: Option<PathBuf>,
    /// The target dir was given with `--target-dir` (it must exist, and `cargo check` is pointed at it).
    pub explicit_target_dir: bool,
}

impl Dirs {
    /// The dirs to scan and clean: the target dir, then the build dir when it is separate.
    pub fn roots(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.target_dir.as_path()).chain(self.build_dir.as_deref())
    }
}

/// What to resolve.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The cargo to run.
    pub cargo: &'a OsString,
    /// Absolute, or relative to the current dir.
    pub manifest_path: Option<&'a Path>,
    /// Absolute: replaces the target dir cargo would use.
    pub target_dir: Option<&'a Path>,
    pub cwd: &'a Path,
}

/// Why the workspace could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("failed to run `{} metadata`: {source}; install cargo or set CARGO to its path", program.to_string_lossy())]
    Spawn {
        program: OsString,
        #[source]
        source: std::io::Error,
    },
    #[error("--manifest-path {} does not exist", path.display())]
    ManifestMissing { path: PathBuf },
    #[error("--manifest-path {} is a directory; pass the path of its Cargo.toml", path.display())]
    ManifestIsDir { path: PathBuf },
    #[error("cannot read --manifest-path {}: {source}", path.display())]
    ManifestUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cargo cannot read the workspace of --manifest-path {}: {stderr}", path.display())]
    ManifestRejected { path: PathBuf, stderr: String },
    #[error("`cargo metadata` failed ({status}): {stderr}\nrun this inside a cargo workspace or pass --manifest-path")]
    NotAWorkspace { status: std::process::ExitStatus, stderr: String },
    #[error("could not read the output of `cargo metadata`: {0}")]
    BadMetadata(#[source] serde_json::Error),
}

#[derive(Deserialize)]
struct Metadata {
    workspace_root: PathBuf,
    target_directory: PathBuf,
    #[serde(default)]
    build_directory: Option<PathBuf>,
}

/// Resolves the dirs of the workspace that the manifest path (or the current dir) belongs to.
///
/// A target dir replaces the one cargo would use, as `cargo build --target-dir` does: `cargo metadata` runs with
/// `CARGO_TARGET_DIR` set to it, so the build dir follows it unless `build.build-dir` is set explicitly.
pub fn resolve(req: &Request<'_>) -> Result<Dirs, WorkspaceError> {
    let manifest_path = req.manifest_path.map(|m| req.cwd.join(m));
    if let Some(m) = &manifest_path {
        check_manifest(m)?;
    }
    let mut cmd = Command::new(req.cargo);
    cmd.args(["metadata", "--no-deps", "--format-version", "1"]).current_dir(req.cwd);
    if let Some(m) = &manifest_path {
        cmd.arg("--manifest-path").arg(m);
    }
    if let Some(t) = req.target_dir {
        cmd.env("CARGO_TARGET_DIR", t);
    }
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| WorkspaceError::Spawn { program: req.cargo.clone(), source })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(match manifest_path {
            Some(path) => WorkspaceError::ManifestRejected { path, stderr },
            None => WorkspaceError::NotAWorkspace { status: out.status, stderr },
        });
    }
    let meta: Metadata = serde_json::from_slice(&out.stdout).map_err(WorkspaceError::BadMetadata)?;
    let target_dir = req.target_dir.map_or(meta.target_directory, Path::to_path_buf);
    // The default build dir is the target dir itself; one inside the target dir is cleaned with it.
    let build_dir = meta.build_directory.filter(|b| !b.starts_with(&target_dir));
    Ok(Dirs {
        workspace_root: meta.workspace_root,
        manifest_path,
        target_dir,
        build_dir,
        explicit_target_dir: req.target_dir.is_some(),
    })
}

/// The Cargo.toml cargo finds from `dir` when no `--manifest-path` is given: in `dir` or the nearest ancestor that
/// has one. A name that cannot be looked at counts as found: only a sure absence means "no workspace here".
#[must_use]
pub fn manifest_above(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().map(|d| d.join("Cargo.toml")).find(|m| m.try_exists().unwrap_or(true))
}

/// Says what is wrong with a `--manifest-path` before cargo gives a vaguer answer.
fn check_manifest(path: &Path) -> Result<(), WorkspaceError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(WorkspaceError::ManifestIsDir { path: path.to_path_buf() }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(WorkspaceError::ManifestMissing { path: path.to_path_buf() })
        }
        Err(source) => Err(WorkspaceError::ManifestUnreadable { path: path.to_path_buf(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_is_found_in_the_dir_or_above_it() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("ws/src/bin");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(manifest_above(&deep), None, "no Cargo.toml above {}", deep.display());
        std::fs::write(tmp.path().join("ws/Cargo.toml"), "").unwrap();
        assert_eq!(manifest_above(&deep), Some(tmp.path().join("ws/Cargo.toml")));
        assert_eq!(manifest_above(&tmp.path().join("ws")), Some(tmp.path().join("ws/Cargo.toml")));
    }
}
