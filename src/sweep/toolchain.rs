//! Which toolchains there are: the current one (the rustc cargo runs in this workspace: `$RUSTC`, else `rustc` as
//! run from the current dir, as cargo's rustup proxy picks its own: `rust-toolchain.toml` applies) and every installed one (rustup's
//! toolchains, and each rustc on `PATH` and in the usual system places). Each is named by the first line of its
//! `rustc -vV`, which is what a unit's metadata and rustc's incremental sessions record.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where to look.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The rustc cargo runs (`$RUSTC`, or `rustc`).
    pub rustc: &'a OsStr,
    /// rustup, to list its toolchains (where it is: its proxies, `rustc` among them, are the same file).
    pub rustup: &'a OsStr,
    /// Other rustc executables that may exist (`PATH`'s, `/usr/bin/rustc`).
    pub candidates: &'a [PathBuf],
    /// Where cargo runs: the workspace root.
    pub cwd: &'a Path,
}

/// What was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Toolchains {
    /// The current toolchain's version line, if its rustc could be run.
    pub current: Option<String>,
    /// Every installed toolchain's version line; `None` when not even the current one is known, and nothing may be
    /// judged as not installed.
    pub installed: Option<HashSet<String>>,
}

/// The first line of `rustc -vV`.
fn version(rustc: &OsStr, cwd: &Path) -> Option<String> {
    // A `rust-toolchain.toml` naming a toolchain that is not installed must not make rustup fetch it.
    let out = Command::new(rustc)
        .arg("-vV")
        .env("RUSTUP_AUTO_INSTALL", "0")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().next()?.trim().to_string();
    (out.status.success() && line.starts_with("rustc ")).then_some(line)
}

/// The toolchain dirs `rustup toolchain list -v` names (`NAME [(active, default)] PATH`).
fn rustup_toolchains(rustup: &OsStr, cwd: &Path) -> Vec<PathBuf> {
    let Ok(out) = Command::new(rustup)
        .args(["toolchain", "list", "-v"])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .collect()
}

/// Finds the current and the installed toolchains, running their rustc side by side.
#[must_use]
pub fn probe(req: &Request<'_>) -> Toolchains {
    let mut programs: Vec<PathBuf> =
        rustup_toolchains(req.rustup, req.cwd).into_iter().map(|t| t.join("bin").join("rustc")).collect();
    programs.extend(req.candidates.iter().cloned());
    // Each rustc once (`/bin/rustc` is `/usr/bin/rustc` on a merged /usr), and no rustup proxy: it runs one of
    // rustup's toolchains, each of which is asked already.
    let proxy = std::fs::metadata(req.rustup).ok().map(|m| (m.dev(), m.ino()));
    let mut seen = HashSet::new();
    programs.retain(|p| {
        std::fs::metadata(p)
            .is_ok_and(|m| m.is_file() && Some((m.dev(), m.ino())) != proxy && seen.insert((m.dev(), m.ino())))
    });
    let programs: Vec<OsString> = programs.into_iter().map(PathBuf::into_os_string).collect();
    std::thread::scope(|s| {
        let current = s.spawn(|| version(req.rustc, req.cwd));
        let others: Vec<_> = programs.iter().map(|p| s.spawn(move || version(p, req.cwd))).collect();
        let current = current.join().ok().flatten();
        let mut installed: HashSet<String> = others.into_iter().filter_map(|h| h.join().ok().flatten()).collect();
        let installed = current.clone().map(|c| {
            installed.insert(c);
            installed
        });
        Toolchains { current, installed }
    })
}
