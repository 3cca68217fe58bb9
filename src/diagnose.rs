//! Telling a damaged build dir from broken code, by what cargo and rustc print: the signatures are data, here.
//!
//! A signature counts only when the file it points at lies inside the target or build dir: an error about a file
//! elsewhere (a corrupt toolchain, a missing source file) is not something a clean fixes. Anything unknown is
//! treated as a code error, never as damage. Colour codes are stripped (`CARGO_TERM_COLOR=always` is common in
//! CI) and `--message-format=json` diagnostics are read through their `rendered` text.

use std::path::{Path, PathBuf};

use crate::model::Roots;

/// What identifies one kind of damage: a phrase in the output, and where the damaged file's path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// The name reports use.
    pub name: &'static str,
    /// The text that must appear on a line.
    pub phrase: &'static str,
    pub path: Where,
}

/// Where a signature's path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    /// Right after the phrase.
    Follows,
    /// After this further text on the same line.
    After(&'static str),
    /// Anywhere on the line.
    OnTheLine,
    /// Nowhere: the message is about the build dir's artifacts as a whole (reported as the target dir).
    BuildDir,
}

/// Damage a clean fixes, as rustc and cargo report it (rustc 1.95 and cargo 1.95, measured where they could be
/// produced; the rest as the incident behind this tool printed them).
pub const SIGNATURES: &[Signature] = &[
    // E0786, a garbage `.rmeta` under `cargo check` (measured).
    Signature { name: "corrupt-metadata", phrase: "corrupt metadata encountered in ", path: Where::Follows },
    // E0786, a garbage `.rlib` under `cargo build`, linked straight into a binary (measured).
    Signature { name: "corrupt-rlib", phrase: "failed to parse rlib '", path: Where::Follows },
    // The same garbage `.rlib`, linked through the package's own library (measured).
    Signature {
        name: "missing-rlib",
        phrase: "required to be available in rlib format, but was not found in this form",
        path: Where::BuildDir,
    },
    Signature { name: "invalid-metadata-version", phrase: "invalid metadata version found: ", path: Where::Follows },
    Signature { name: "missing-extern", phrase: "extern location for ", path: Where::After(" does not exist: ") },
    Signature { name: "dep-info", phrase: "could not parse/generate dep info at: ", path: Where::Follows },
    Signature { name: "archive", phrase: "failed to build archive", path: Where::After(" at `") },
    Signature { name: "missing-file", phrase: "No such file or directory", path: Where::OnTheLine },
];

/// The name of the incremental-cache ICE signature: "internal compiler error" with an incremental or dep-graph
/// path inside the target dir on another line.
pub const INCREMENTAL_ICE: &str = "incremental-ice";

/// What the check's output says about the build dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub signature: &'static str,
    /// The damaged file (or the incremental dir).
    pub path: PathBuf,
}

/// One line as a person reads it: colour codes stripped, and a JSON diagnostic replaced by its rendered text.
#[must_use]
pub fn readable(line: &str) -> Vec<String> {
    let plain = anstream::adapter::strip_str(line).to_string();
    if plain.starts_with('{')
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&plain)
    {
        let rendered = v["message"]["rendered"].as_str().or_else(|| v["rendered"].as_str());
        return rendered
            .map(|r| r.lines().map(|l| anstream::adapter::strip_str(l).to_string()).collect())
            .unwrap_or_default();
    }
    vec![plain]
}

/// The first damage that `lines` (as [`readable`] gives them) show inside `roots`.
#[must_use]
pub fn diagnose(lines: &[String], roots: &Roots) -> Option<Damage> {
    for line in lines {
        for sig in SIGNATURES {
            if let Some(path) = path_of(line, sig, roots).filter(|p| roots.contains(p)) {
                return Some(Damage { signature: sig.name, path });
            }
        }
    }
    if lines.iter().any(|l| l.contains("internal compiler error")) {
        let incremental = lines.iter().filter_map(|l| absolute_path_in(l)).find(|p| {
            roots.contains(p)
                && p.components().any(|c| {
                    let c = c.as_os_str();
                    c == "incremental" || c.to_string_lossy().contains("dep-graph")
                })
        });
        if let Some(path) = incremental {
            return Some(Damage { signature: INCREMENTAL_ICE, path });
        }
    }
    None
}

/// The path a signature points at on `line`, if the line carries the signature.
fn path_of(line: &str, sig: &Signature, roots: &Roots) -> Option<PathBuf> {
    let at = line.find(sig.phrase)?;
    let rest = &line[at + sig.phrase.len()..];
    let rest = match sig.path {
        Where::Follows => rest,
        Where::After(marker) => &rest[rest.find(marker)? + marker.len()..],
        // `No such file or directory` follows or precedes the path.
        Where::OnTheLine => return absolute_path_in(line),
        Where::BuildDir => return roots.paths().first().cloned(),
    };
    let end = rest.find(['\'', '`', '"']).unwrap_or(rest.len());
    let path = rest[..end].trim().trim_end_matches([':', ',', '.', ')']);
    Some(PathBuf::from(path)).filter(|p| p.is_absolute())
}

/// The first absolute path on a line: from a `/` at the start of a word to the end of the word.
fn absolute_path_in(line: &str) -> Option<PathBuf> {
    let start = line
        .match_indices('/')
        .map(|(i, _)| i)
        .find(|&i| i == 0 || line[..i].ends_with([' ', '`', '\'', '"', '(', '=']))?;
    let rest = &line[start..];
    let end = rest.find([' ', '`', '\'', '"', ')', ',', ':']).unwrap_or(rest.len());
    Some(Path::new(&rest[..end]).to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Roots {
        Roots::new([Path::new("/w/target")])
    }

    fn first(lines: &[&str]) -> Option<(&'static str, String)> {
        let lines: Vec<String> = lines.iter().flat_map(|l| readable(l)).collect();
        diagnose(&lines, &roots()).map(|d| (d.signature, d.path.display().to_string()))
    }

    #[test]
    fn knows_the_incidents_signatures() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "  = note: corrupt metadata encountered in /w/target/debug/deps/libdep-5dac.rmeta",
                "corrupt-metadata",
                "/w/target/debug/deps/libdep-5dac.rmeta",
            ),
            (
                "  = note: failed to parse rlib '/w/target/debug/deps/libdep-95.rlib': Unsupported archive identifier",
                "corrupt-rlib",
                "/w/target/debug/deps/libdep-95.rlib",
            ),
            (
                "error: extern location for rand_core does not exist: /w/target/debug/deps/librand_core-1.rmeta",
                "missing-extern",
                "/w/target/debug/deps/librand_core-1.rmeta",
            ),
            (
                "error: could not parse/generate dep info at: /w/target/debug/deps/app-1.d",
                "dep-info",
                "/w/target/debug/deps/app-1.d",
            ),
            (
                "error: failed to build archive at `/w/target/debug/deps/libx-1.rlib`: failed to open object file: No such file or directory (os error 2)",
                "archive",
                "/w/target/debug/deps/libx-1.rlib",
            ),
            (
                "error: crate `dep` required to be available in rlib format, but was not found in this form",
                "missing-rlib",
                "/w/target",
            ),
            (
                "error: invalid metadata version found: /w/target/debug/deps/libdep-1.rmeta",
                "invalid-metadata-version",
                "/w/target/debug/deps/libdep-1.rmeta",
            ),
            (
                "error: couldn't read `/w/target/debug/build/app-1/out/gen.rs`: No such file or directory (os error 2)",
                "missing-file",
                "/w/target/debug/build/app-1/out/gen.rs",
            ),
        ];
        for (line, sig, path) in cases {
            assert_eq!(first(&[line]), Some((*sig, (*path).to_string())), "{line}");
        }
    }

    #[test]
    fn an_incremental_ice_is_damage_an_ice_elsewhere_is_not() {
        let ice = [
            "error: internal compiler error: compiler/rustc_middle/src/query/on_disk_cache.rs: unexpected",
            "note: session directory: /w/target/debug/incremental/app-1xyz/s-h2-abc",
        ];
        assert_eq!(first(&ice).map(|d| d.0), Some(INCREMENTAL_ICE));
        assert_eq!(first(&ice[..1]), None, "an ICE without the incremental cache is rustc's bug, not the cache's");
    }

    #[test]
    fn code_errors_and_files_outside_the_target_are_not_damage() {
        assert_eq!(first(&["error[E0308]: mismatched types", "  --> src/lib.rs:1:26"]), None);
        assert_eq!(first(&["error: couldn't read `/w/src/gen.rs`: No such file or directory (os error 2)"]), None);
        let sysroot = "  = note: corrupt metadata encountered in /home/u/.rustup/toolchains/x/lib/libstd.rmeta";
        assert_eq!(first(&[sysroot]), None, "a corrupt toolchain is not fixed by a clean");
    }

    #[test]
    fn reads_through_colour_and_json_diagnostics() {
        let coloured = "\u{1b}[0m\u{1b}[1m\u{1b}[38;5;12m  = \u{1b}[0m\u{1b}[1mnote\u{1b}[0m: corrupt metadata encountered in /w/target/debug/deps/libd-1.rmeta";
        assert_eq!(first(&[coloured]).map(|d| d.0), Some("corrupt-metadata"));
        let json = serde_json::json!({"reason": "compiler-message", "message": {"rendered":
            "error[E0786]: found invalid metadata files for crate `dep`\n  = note: corrupt metadata encountered in /w/target/debug/deps/libdep-1.rmeta\n"}})
        .to_string();
        assert_eq!(first(&[&json]).map(|d| d.1), Some("/w/target/debug/deps/libdep-1.rmeta".into()));
        let artifact = serde_json::json!({"reason": "compiler-artifact", "filenames": ["/w/target/x"]}).to_string();
        assert_eq!(first(&[&artifact]), None);
    }
}
