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
    #[error("failed to run `{} metadata`: {source}", program.to_string_lossy())]
    Spawn {
        program: OsString,
        #[source]
        source: std::io::Error,
    },
    #[error("--manifest-path {} does not exist", path.display())]
    ManifestMissing { path: PathBuf },
    #[error("--manifest-path {} is a directory", path.display())]
    ManifestIsDir { path: PathBuf },
    #[error("cannot read --manifest-path {}: {source}", path.display())]
    ManifestUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `reason` is what cargo said, in one line ([`CargoSaid`]).
    #[error("cargo cannot read the workspace of --manifest-path {}: {reason}", path.display())]
    ManifestRejected { path: PathBuf, reason: String, tip: Option<String> },
    /// `manifest` says whether a `Cargo.toml` lies in `dir` or above it: then cargo found a workspace it cannot read.
    #[error("`cargo metadata` failed in {}: {reason}", dir.display())]
    NotAWorkspace { dir: PathBuf, reason: String, tip: Option<String>, manifest: bool },
    #[error("could not read the output of `cargo metadata`: {0}")]
    BadMetadata(#[source] serde_json::Error),
}

impl WorkspaceError {
    /// What to do about it; cargo's own advice first, where it gave some.
    #[must_use]
    pub fn help(&self) -> Option<String> {
        match self {
            WorkspaceError::Spawn { .. } => Some("install cargo or set CARGO to its path".into()),
            WorkspaceError::ManifestIsDir { .. } => Some("pass the path of its Cargo.toml".into()),
            WorkspaceError::ManifestRejected { tip: Some(tip), .. }
            | WorkspaceError::NotAWorkspace { tip: Some(tip), .. } => Some(tip.clone()),
            WorkspaceError::NotAWorkspace { tip: None, manifest: false, .. } => {
                Some("run this inside a cargo workspace or pass --manifest-path".into())
            }
            WorkspaceError::NotAWorkspace { tip: None, manifest: true, .. } => {
                Some("fix what cargo names, or pass --manifest-path to clean another workspace".into())
            }
            WorkspaceError::ManifestMissing { .. }
            | WorkspaceError::ManifestUnreadable { .. }
            | WorkspaceError::ManifestRejected { tip: None, .. }
            | WorkspaceError::BadMetadata(_) => None,
        }
    }
}

/// What cargo's stderr says went wrong, for one line of ours: cargo's first `error:` line without its `error: ` (so
/// that the user reads `error:` once), the lines that continue it, the place it points at (`--> Cargo.toml:1:9`),
/// and the last two of its `Caused by:` causes (the innermost is often an OS error that names nothing, the one
/// before it names the file). Cargo's `help:` (or clap's `tip:`) becomes the tip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CargoSaid {
    /// `None` when cargo said nothing that reads as an error.
    pub error: Option<String>,
    pub tip: Option<String>,
}

impl CargoSaid {
    #[must_use]
    pub fn parse(stderr: &str) -> Self {
        let lines: Vec<&str> = stderr.lines().map(str::trim_end).collect();
        // Warnings and progress lines may come first; without an `error:` line, the first line that says anything.
        let Some(first) = lines
            .iter()
            .position(|l| l.starts_with("error: "))
            .or_else(|| lines.iter().position(|l| !l.trim().is_empty()))
        else {
            return CargoSaid::default();
        };
        let mut head = lines[first].strip_prefix("error: ").unwrap_or(lines[first]).trim().to_string();
        let (mut place, mut causes, mut tip) = (None, Vec::new(), None);
        let mut in_head = true;
        let mut rest = lines[first + 1..].iter().peekable();
        while let Some(line) = rest.next() {
            let text = line.trim();
            if text.is_empty() {
                in_head = false;
            } else if let Some(at) = text.strip_prefix("--> ") {
                in_head = false;
                place.get_or_insert(at.to_string());
            } else if let Some(advice) = text.strip_prefix("help: ").or_else(|| text.strip_prefix("tip: ")) {
                tip.get_or_insert(advice.to_string());
            } else if text == "Caused by:" {
                // A cause is the first line after its heading; what follows it (a snippet) is left to cargo.
                if let Some(cause) = rest.peek() {
                    causes.push(cause.trim().to_string());
                }
            } else if is_snippet(text) || line.starts_with(' ') {
                // A quoted source line, or an indented detail: the end of the sentence.
                in_head = false;
            } else if in_head {
                // `referenced by workspace at …`: the same sentence on cargo's next line.
                head.push(' ');
                head.push_str(text);
            }
        }
        if let Some(place) = place {
            head = format!("{head} (at {place})");
        }
        for cause in causes.iter().skip(causes.len().saturating_sub(2)) {
            head = format!("{head}: {cause}");
        }
        CargoSaid { error: Some(head), tip }
    }
}

/// A line of a quoted snippet: `|`, `1 | [package`, `  |         ^`.
fn is_snippet(text: &str) -> bool {
    text.split_once('|').is_some_and(|(gutter, _)| gutter.trim().chars().all(|c| c.is_ascii_digit()))
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
        let said = CargoSaid::parse(&String::from_utf8_lossy(&out.stderr));
        let reason = said.error.unwrap_or_else(|| format!("it exits with {}, and says nothing", out.status));
        return Err(match manifest_path {
            Some(path) => WorkspaceError::ManifestRejected { path, reason, tip: said.tip },
            None => WorkspaceError::NotAWorkspace {
                dir: req.cwd.to_path_buf(),
                reason,
                tip: said.tip,
                manifest: req.cwd.ancestors().any(|d| d.join("Cargo.toml").is_file()),
            },
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

    fn said(stderr: &str) -> (String, Option<String>) {
        let s = CargoSaid::parse(stderr);
        (s.error.unwrap(), s.tip)
    }

    /// Cargo's own `error: ` goes, so that the user reads `error:` once; what it said stays, in one line.
    #[test]
    fn cargo_says_it_in_one_line() {
        let (error, tip) = said("error: could not find `Cargo.toml` in `/tmp/x` or any parent directory\n");
        assert_eq!(error, "could not find `Cargo.toml` in `/tmp/x` or any parent directory");
        assert_eq!(tip, None);
        let toml =
            "error: unclosed table, expected `]`\n --> broken/Cargo.toml:1:9\n  |\n1 | [package\n  |         ^\n";
        assert_eq!(said(toml).0, "unclosed table, expected `]` (at broken/Cargo.toml:1:9)");
        let member = "warning: unused manifest key: package.foo\n\
            error: failed to load manifest for workspace member `/w/m`\n\
            referenced by workspace at `/w/Cargo.toml`\n\n\
            Caused by:\n  failed to load source for dependency `nope`\n\n\
            Caused by:\n  failed to read `/w/m/Cargo.toml`\n\n\
            Caused by:\n  No such file or directory (os error 2)\n";
        assert_eq!(
            said(member).0,
            "failed to load manifest for workspace member `/w/m` referenced by workspace at `/w/Cargo.toml`: failed \
             to read `/w/m/Cargo.toml`: No such file or directory (os error 2)"
        );
        let clap = "error: unexpected argument '--bogus-flag' found\n\n  \
            tip: a similar argument exists: '--bins'\n\nUsage: cargo check [OPTIONS]\n\n\
            For more information, try '--help'.\n";
        assert_eq!(
            said(clap),
            ("unexpected argument '--bogus-flag' found".into(), Some("a similar argument exists: '--bins'".into()))
        );
        assert_eq!(said("Killed\n").0, "Killed", "no `error:` line: the first line that says anything");
        assert_eq!(CargoSaid::parse("\n \n"), CargoSaid::default());
    }

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
