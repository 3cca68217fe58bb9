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
/// `target_dir` overrides what cargo reports; relative paths are taken from the current dir.
pub fn resolve(manifest_path: Option<&Path>, target_dir: Option<&Path>) -> Result<Dirs> {
    let cargo = cargo_program();
    let mut cmd = Command::new(&cargo);
    cmd.args(["metadata", "--no-deps", "--format-version", "1"]);
    if let Some(m) = manifest_path {
        cmd.arg("--manifest-path").arg(m);
    }
    let out = cmd.stdin(Stdio::null()).stderr(Stdio::piped()).output().map_err(|e| {
        Error::Workspace(format!(
            "failed to run `{} metadata`: {e}; install cargo or set CARGO to its path",
            Path::new(&cargo).display()
        ))
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Workspace(format!(
            "`cargo metadata` failed ({}): {}\nrun this inside a cargo workspace or pass --manifest-path",
            out.status,
            stderr.trim()
        )));
    }
    let meta: Metadata = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Workspace(format!("could not read the output of `cargo metadata`: {e}")))?;
    let cwd = std::env::current_dir().map_err(|e| Error::Workspace(format!("cannot read the current dir: {e}")))?;
    let target_dir = match target_dir {
        Some(t) => cwd.join(t),
        None => meta.target_directory,
    };
    // The default build dir is the target dir itself; one inside the target dir is cleaned with it.
    let build_dir = meta.build_directory.filter(|b| !b.starts_with(&target_dir));
    Ok(Dirs {
        workspace_root: meta.workspace_root,
        manifest_path: manifest_path.map(|m| cwd.join(m)),
        target_dir,
        build_dir,
    })
}
