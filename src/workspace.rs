//! Finding the workspace's target dir and build dir, exactly as cargo resolves them.
//!
//! `cargo metadata` is the one source of truth: it already honours `CARGO_TARGET_DIR`, `build.target-dir`,
//! `build.build-dir` and config files, and it works while a build holds the lock.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::error::{Error, Result};

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

#[derive(Deserialize)]
struct Metadata {
    workspace_root: PathBuf,
    target_directory: PathBuf,
    #[serde(default)]
    build_directory: Option<PathBuf>,
}

/// The cargo to run: `$CARGO` (set by cargo for its subcommands) or `cargo` from `PATH`.
#[must_use]
pub fn cargo_program() -> OsString {
    std::env::var_os("CARGO").filter(|c| !c.is_empty()).unwrap_or_else(|| "cargo".into())
}

/// Resolves the dirs of the workspace that `manifest_path` (or the current dir) belongs to.
///
/// `target_dir` replaces the target dir cargo would use, as `cargo build --target-dir` does: `cargo metadata` runs
/// with `CARGO_TARGET_DIR` set to it, so the build dir follows it unless `build.build-dir` is set explicitly.
/// Relative paths are taken from the current dir.
pub fn resolve(manifest_path: Option<&Path>, target_dir: Option<&Path>) -> Result<Dirs> {
    let cwd = std::env::current_dir().map_err(|e| Error::Workspace(format!("cannot read the current dir: {e}")))?;
    if let Some(m) = manifest_path {
        check_manifest(&cwd.join(m))?;
    }
    let target_dir = target_dir.map(|t| cwd.join(t));
    let cargo = cargo_program();
    let mut cmd = Command::new(&cargo);
    cmd.args(["metadata", "--no-deps", "--format-version", "1"]);
    if let Some(m) = manifest_path {
        cmd.arg("--manifest-path").arg(m);
    }
    if let Some(t) = &target_dir {
        cmd.env("CARGO_TARGET_DIR", t);
    }
    let out = cmd.stdin(Stdio::null()).stderr(Stdio::piped()).output().map_err(|e| {
        Error::Workspace(format!(
            "failed to run `{} metadata`: {e}; install cargo or set CARGO to its path",
            Path::new(&cargo).display()
        ))
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim();
        return Err(Error::Workspace(match manifest_path {
            Some(m) => format!("cargo cannot read the workspace of --manifest-path {}: {stderr}", m.display()),
            None => format!(
                "`cargo metadata` failed ({}): {stderr}\nrun this inside a cargo workspace or pass --manifest-path",
                out.status
            ),
        }));
    }
    let meta: Metadata = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Workspace(format!("could not read the output of `cargo metadata`: {e}")))?;
    let explicit_target_dir = target_dir.is_some();
    let target_dir = target_dir.unwrap_or(meta.target_directory);
    // The default build dir is the target dir itself; one inside the target dir is cleaned with it.
    let build_dir = meta.build_directory.filter(|b| !b.starts_with(&target_dir));
    Ok(Dirs {
        workspace_root: meta.workspace_root,
        manifest_path: manifest_path.map(|m| cwd.join(m)),
        target_dir,
        build_dir,
        explicit_target_dir,
    })
}

/// Says what is wrong with a `--manifest-path` before cargo gives a vaguer answer.
fn check_manifest(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::Workspace(format!(
            "--manifest-path {} is a directory; pass the path of its Cargo.toml",
            path.display()
        ))),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::Workspace(format!("--manifest-path {} does not exist", path.display())))
        }
        Err(e) => Err(Error::Workspace(format!("cannot read --manifest-path {}: {e}", path.display()))),
    }
}
