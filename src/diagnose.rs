//! Telling a damaged build dir from broken code, on evidence: rustc's own structured diagnostics, checked against
//! the files on disk. The signatures are data, here.
//!
//! A signature counts only when it comes from the compiler itself (a diagnostic of the workspace's code — its span
//! in a source file and no error code, as `compile_error!` makes — says whatever its author wrote, and is the
//! code's own), when the file it names lies inside the target or build dir, and when that file's state on disk
//! agrees (missing where it is said to be missing, not readable as metadata or as an archive where it is said to
//! be corrupt). A file that a build script of the check should have written (in its `OUT_DIR`) is the code's
//! problem. An error that names a file in the target or build dir and matches no signature is unknown: never taken
//! for damage, never for broken code either.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use crate::model::Roots;

/// One diagnostic as the compiler reported it: what it says, and how far its words can be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostic {
    /// Its level: `error`, `warning`, `note`…
    pub level: String,
    pub message: String,
    pub code: Option<String>,
    /// The messages of its notes and help (a linker's output comes as one).
    pub children: Vec<String>,
    /// Its primary span is in a source file and it has no error code: its own message is the code's words
    /// (`compile_error!`, a proc macro), not the compiler's.
    pub from_source: bool,
}

impl Diagnostic {
    /// A `compiler-message` line of cargo's JSON output; `None` for any other line.
    #[must_use]
    pub fn from_json(line: &str) -> Option<(Self, Option<String>)> {
        let v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
        if v["reason"] != "compiler-message" {
            return None;
        }
        let m = &v["message"];
        let code = m["code"]["code"].as_str().map(str::to_owned);
        let spans = m["spans"].as_array().map(Vec::as_slice).unwrap_or_default();
        let in_source = spans.iter().any(|s| s["is_primary"].as_bool() == Some(true));
        let children = m["children"]
            .as_array()
            .map(|c| c.iter().filter_map(|c| c["message"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let d = Diagnostic {
            level: m["level"].as_str().unwrap_or_default().to_owned(),
            message: m["message"].as_str().unwrap_or_default().to_owned(),
            code: code.clone(),
            children,
            from_source: in_source && code.is_none(),
        };
        Some((d, m["rendered"].as_str().map(str::to_owned)))
    }

    /// A line of human-format output, where the check's format was chosen so (`--message-format=human`): judged by
    /// its text, less strictly; a source line rustc echoes (`12 |     …`) is never read as a message.
    #[must_use]
    pub fn from_text(line: &str) -> Option<Self> {
        let plain = anstream::adapter::strip_str(line).to_string();
        let t = plain.trim_start();
        let echo = t.split_once('|').is_some_and(|(before, _)| before.trim().chars().all(|c| c.is_ascii_digit()));
        if echo || t.starts_with("-->") || t.is_empty() {
            return None;
        }
        let level = if t.starts_with("error") { "error" } else { "note" };
        Some(Diagnostic { level: level.into(), message: plain, ..Diagnostic::default() })
    }

    /// The lines whose words are the compiler's: its message unless the code wrote it, and its notes.
    fn trusted_lines(&self) -> impl Iterator<Item = &str> {
        let own = (!self.from_source).then_some(self.message.as_str());
        own.into_iter().chain(self.children.iter().map(String::as_str)).flat_map(str::lines)
    }
}

/// What identifies one kind of damage: a phrase the compiler says, where the damaged file's path is, and what the
/// file on disk must look like for the words to be true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// The name reports use.
    pub name: &'static str,
    /// The text that must appear on a line.
    pub phrase: &'static str,
    pub path: Where,
    pub state: State,
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
    /// In no path: the crate's name is in backquotes, and its file with this extension (`rlib`, `rmeta`) is looked
    /// for in the build dir: one that is there and damaged.
    Crate(&'static str),
}

/// What the file must be on disk for the signature to be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Missing.
    Missing,
    /// Missing, or not whole rustc metadata (no `rust\0\0\0` header, or no `rust-end-file` footer: cut short).
    NotMetadata,
    /// Missing, or not a whole `ar` archive (bad magic, or members running past the end).
    NotArchive,
    /// Whatever it is: the compiler's words about writing it are enough.
    Any,
}

/// Damage a clean fixes, as rustc and cargo report it (rustc 1.95 and cargo 1.95, measured where they could be
/// produced; the rest as the incident behind this tool and the linkers print them).
pub const SIGNATURES: &[Signature] = &[
    // E0786's note, a garbage `.rmeta` under `cargo check` (measured).
    Signature {
        name: "corrupt-metadata",
        phrase: "corrupt metadata encountered in ",
        path: Where::Follows,
        state: State::NotMetadata,
    },
    // E0786, a garbage `.rlib` under `cargo build`, linked straight into a binary (measured).
    Signature {
        name: "corrupt-rlib",
        phrase: "failed to parse rlib '",
        path: Where::Follows,
        state: State::NotArchive,
    },
    // The same garbage `.rlib`, linked through the package's own library (measured).
    Signature {
        name: "missing-rlib",
        phrase: "required to be available in rlib format, but was not found in this form",
        path: Where::Crate("rlib"),
        state: State::NotArchive,
    },
    // E0463 for a crate whose `.rmeta` is there but empty or cut short (measured: `truncate -s 0`). A crate that
    // is not there at all is the code's error (an undeclared dependency): only a damaged file on disk counts.
    Signature {
        name: "corrupt-metadata",
        phrase: "can't find crate for `",
        path: Where::Crate("rmeta"),
        state: State::NotMetadata,
    },
    Signature {
        name: "invalid-metadata-version",
        phrase: "invalid metadata version found: ",
        path: Where::Follows,
        state: State::NotMetadata,
    },
    Signature {
        name: "missing-extern",
        phrase: "extern location for ",
        path: Where::After(" does not exist: "),
        state: State::Missing,
    },
    Signature {
        name: "dep-info",
        phrase: "could not parse/generate dep info at: ",
        path: Where::Follows,
        state: State::Any,
    },
    Signature { name: "archive", phrase: "failed to build archive", path: Where::After(" at `"), state: State::Any },
    // A truncated `.rlib` as the linkers say it: rust-lld, GNU ld (measured with a truncated archive).
    Signature {
        name: "truncated-archive",
        phrase: "truncated or malformed archive",
        path: Where::OnTheLine,
        state: State::NotArchive,
    },
    Signature { name: "truncated-archive", phrase: "file too short", path: Where::OnTheLine, state: State::NotArchive },
    Signature {
        name: "truncated-archive",
        phrase: "malformed archive",
        path: Where::OnTheLine,
        state: State::NotArchive,
    },
    Signature {
        name: "missing-file",
        phrase: "No such file or directory",
        path: Where::OnTheLine,
        state: State::Missing,
    },
];

/// The name of the incremental-cache ICE signature: "internal compiler error" with an incremental or dep-graph
/// path inside the target dir in the same diagnostic.
pub const INCREMENTAL_ICE: &str = "incremental-ice";

/// What the check's diagnostics say about the build dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnosis {
    /// A signature of damage, with the damaged file (or the incremental dir).
    Damage { signature: &'static str, path: PathBuf },
    /// An error names a file in the target or build dir, and no signature explains it: not known to be damage,
    /// not known to be the code's.
    Unknown { path: PathBuf },
    /// Nothing points at the build dir: the code is broken.
    CodeError,
}

/// The diagnosis of `diagnostics` for the dirs `roots`.
#[must_use]
pub fn diagnose(diagnostics: &[Diagnostic], roots: &Roots) -> Diagnosis {
    for d in diagnostics {
        for line in d.trusted_lines() {
            for sig in SIGNATURES {
                if let Some(path) = path_of(line, sig, roots).filter(|p| believed(sig, p, roots)) {
                    return Diagnosis::Damage { signature: sig.name, path };
                }
            }
        }
        if d.message.contains("internal compiler error") {
            let incremental = d.trusted_lines().filter_map(absolute_path_in).find(|p| {
                roots.contains(p)
                    && p.components().any(|c| {
                        let c = c.as_os_str();
                        c == "incremental" || c.to_string_lossy().contains("dep-graph")
                    })
            });
            if let Some(path) = incremental {
                return Diagnosis::Damage { signature: INCREMENTAL_ICE, path };
            }
        }
    }
    let unknown = diagnostics
        .iter()
        .filter(|d| d.level == "error")
        .flat_map(Diagnostic::trusted_lines)
        .filter_map(absolute_path_in)
        .find(|p| roots.contains(p) && !in_out_dir(p))
        // An ICE with no path in the dirs may still come from their caches: rustc's bug, not the code's, so it is
        // not called the code's error. It is not called damage either; the error names the target dir.
        .or_else(|| {
            let ice = diagnostics.iter().any(|d| d.message.contains("internal compiler error"));
            ice.then(|| roots.paths().first().cloned()).flatten()
        });
    match unknown {
        Some(path) => Diagnosis::Unknown { path },
        None => Diagnosis::CodeError,
    }
}

/// Whether the file `path` that `sig` names is in the dirs and on disk as the signature says.
fn believed(sig: &Signature, path: &Path, roots: &Roots) -> bool {
    if !roots.contains(path) || (sig.state == State::Missing && in_out_dir(path)) {
        return false;
    }
    match sig.state {
        State::Missing => std::fs::symlink_metadata(path).is_err(),
        State::NotMetadata => !is_metadata(path),
        State::NotArchive => !is_whole_archive(path),
        State::Any => true,
    }
}

/// `…/build/<pkg>-<hash>/out/…` (or the new layout's `build/<pkg>/<hash>/out/…`): a build script's `OUT_DIR`,
/// whose files the build script writes; one missing there is the build script's doing, not damage.
fn in_out_dir(path: &Path) -> bool {
    let parts: Vec<_> = path.components().map(std::path::Component::as_os_str).collect();
    parts.windows(3).any(|w| w[0] == "build" && w[2] == "out")
        || parts.windows(4).any(|w| w[0] == "build" && w[3] == "out")
}

/// Whether `path` is whole rustc metadata: it starts with the header (`rust\0\0\0` and a version) and ends with the
/// footer rustc writes last (`rust-end-file`), so a file cut short is not. A missing file is not either.
fn is_metadata(path: &Path) -> bool {
    const FOOTER: &[u8; 13] = b"rust-end-file";
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    let mut head = [0u8; 8];
    let mut tail = [0u8; 13];
    f.read_exact(&mut head).is_ok()
        && head.starts_with(b"rust\0\0\0")
        && f.seek(std::io::SeekFrom::End(-13)).is_ok()
        && f.read_exact(&mut tail).is_ok()
        && &tail == FOOTER
}

/// Whether `path` is an `ar` archive whose members all end within it. A missing file is not.
fn is_whole_archive(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else { return false };
    let Some(mut rest) = bytes.strip_prefix(b"!<arch>\n") else { return false };
    while !rest.is_empty() {
        // A member: a 60-byte header whose bytes 48..58 are its size in decimal, the data, and a pad to even.
        let Some(size) = rest.get(48..58).and_then(|s| std::str::from_utf8(s).ok()?.trim().parse::<usize>().ok())
        else {
            return false;
        };
        let end = 60 + size;
        if rest.len() < end {
            return false;
        }
        rest = &rest[(end + size % 2).min(rest.len())..];
    }
    true
}

/// The path a signature points at on `line`, if the line carries the signature.
fn path_of(line: &str, sig: &Signature, roots: &Roots) -> Option<PathBuf> {
    let at = line.find(sig.phrase)?;
    let rest = &line[at + sig.phrase.len()..];
    let rest = match sig.path {
        Where::Follows => rest,
        Where::After(marker) => &rest[rest.find(marker)? + marker.len()..],
        // `No such file or directory` and the linkers' words follow or precede the path.
        Where::OnTheLine => return absolute_path_in(line),
        Where::Crate(ext) => return crate_file(line, roots, ext),
    };
    let end = rest.find(['\'', '`', '"']).unwrap_or(rest.len());
    let path = rest[..end].trim().trim_end_matches([':', ',', '.', ')']);
    Some(PathBuf::from(path)).filter(|p| p.is_absolute())
}

/// For "crate `dep` required to be available in rlib format" (or "can't find crate for `dep`"): the crate's file
/// with extension `ext` in a profile's `deps/` of the build dir that is there and damaged. (A `.rmeta` without an
/// `.rlib` proves nothing: `cargo check` writes only metadata.)
fn crate_file(line: &str, roots: &Roots, ext: &str) -> Option<PathBuf> {
    let name = line.split('`').nth(1)?;
    let prefix = format!("lib{name}-");
    let damaged = |p: &Path| if ext == "rlib" { !is_whole_archive(p) } else { !is_metadata(p) };
    for root in roots.paths() {
        for profile in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let deps = profile.path().join("deps");
            for entry in std::fs::read_dir(&deps).into_iter().flatten().flatten() {
                let path = entry.path();
                let named = entry.file_name().to_string_lossy().starts_with(&prefix);
                if named && path.extension().is_some_and(|e| e == ext) && damaged(&path) {
                    return Some(path);
                }
            }
        }
    }
    None
}

/// The first absolute path on a line: from the root of a path at the start of a word to the end of the word.
fn absolute_path_in(line: &str) -> Option<PathBuf> {
    let boundary = |i: usize| i == 0 || line[..i].ends_with([' ', '`', '\'', '"', '(', '=']);
    let start = line.char_indices().map(|(i, _)| i).find(|&i| boundary(i) && root_len(&line[i..]).is_some())?;
    let rest = &line[start..];
    // The root is never the end: a drive's colon is no separator.
    let skip = root_len(rest)?;
    let end = rest[skip..].find([' ', '`', '\'', '"', ')', ',', ':']).map_or(rest.len(), |e| e + skip);
    Some(Path::new(&rest[..end]).to_path_buf())
}

/// How long the root of an absolute path at the start of `s` is: `/` on Unix.
#[cfg(unix)]
fn root_len(s: &str) -> Option<usize> {
    s.starts_with('/').then_some(1)
}

/// How long the root of an absolute path at the start of `s` is: `C:\` (or `C:/`), or the `\\` of a UNC or
/// verbatim path, on Windows.
#[cfg(windows)]
fn root_len(s: &str) -> Option<usize> {
    match s.as_bytes() {
        [drive, b':', b'\\' | b'/', ..] if drive.is_ascii_alphabetic() => Some(3),
        [b'\\', b'\\', ..] => Some(2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(dir: &Path) -> Roots {
        Roots::exact([dir.to_path_buf()])
    }

    /// A diagnostic from the compiler (no span in the code), saying `lines` as its note.
    fn note(lines: &str) -> Diagnostic {
        Diagnostic {
            level: "error".into(),
            message: "error".into(),
            children: vec![lines.into()],
            ..Diagnostic::default()
        }
    }

    fn sig(d: &Diagnosis) -> Option<&'static str> {
        if let Diagnosis::Damage { signature, .. } = d { Some(signature) } else { None }
    }

    #[test]
    fn a_signature_counts_only_where_the_file_agrees() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        std::fs::create_dir_all(t.join("debug/deps")).unwrap();
        let rmeta = t.join("debug/deps/libdep-1.rmeta");
        let r = roots(t);
        let corrupt = note(&format!("corrupt metadata encountered in {}", rmeta.display()));
        std::fs::write(&rmeta, b"rust\0\0\0\x0aintact rust-end-file").unwrap();
        assert_eq!(sig(&diagnose(std::slice::from_ref(&corrupt), &r)), None, "intact metadata: not damage");
        std::fs::write(&rmeta, b"rust\0\0\0\x0aintact but cut sh").unwrap();
        assert_eq!(sig(&diagnose(std::slice::from_ref(&corrupt), &r)), Some("corrupt-metadata"), "cut short");
        let cant_find = note("error[E0463]: can't find crate for `dep`");
        assert_eq!(sig(&diagnose(std::slice::from_ref(&cant_find), &r)), Some("corrupt-metadata"), "E0463, cut short");
        std::fs::write(&rmeta, b"rust\0\0\0\x0aintact rust-end-file").unwrap();
        assert_eq!(sig(&diagnose(std::slice::from_ref(&cant_find), &r)), None, "E0463 with whole metadata: the code's");
        let undeclared = note("error[E0463]: can't find crate for `nosuch`");
        assert_eq!(sig(&diagnose(&[undeclared], &r)), None, "E0463 for a crate not built: the code's");
        std::fs::write(&rmeta, "garbage").unwrap();
        assert_eq!(sig(&diagnose(std::slice::from_ref(&corrupt), &r)), Some("corrupt-metadata"));
        let missing = note(&format!("extern location for dep does not exist: {}", rmeta.display()));
        assert_eq!(sig(&diagnose(std::slice::from_ref(&missing), &r)), None, "it exists");
        std::fs::remove_file(&rmeta).unwrap();
        assert_eq!(sig(&diagnose(&[missing], &r)), Some("missing-extern"));
        let rlib = t.join("debug/deps/libz-1.rlib");
        std::fs::write(&rlib, b"!<arch>\n").unwrap();
        let lld = note(&format!(
            "rust-lld: error: {}: Archive::children failed: truncated or malformed archive",
            rlib.display()
        ));
        assert_eq!(sig(&diagnose(std::slice::from_ref(&lld), &r)), None, "a whole (empty) archive");
        std::fs::write(&rlib, b"!<arch>\nmember.o/       0           0     0     644     1000      `\nshort").unwrap();
        assert_eq!(sig(&diagnose(&[lld], &r)), Some("truncated-archive"));
    }

    #[test]
    fn the_codes_own_words_and_its_build_scripts_files_are_not_damage() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let r = roots(t);
        let gone = t.join("debug/deps/libgone-1.rmeta");
        let text = format!("corrupt metadata encountered in {}", gone.display());
        let compile_error =
            Diagnostic { level: "error".into(), message: text, from_source: true, ..Diagnostic::default() };
        assert_eq!(diagnose(&[compile_error], &r), Diagnosis::CodeError, "compile_error! says what its author wrote");
        let out_dir = t.join("debug/build/app-1/out/gen.rs");
        let include = note(&format!("couldn't read `{}`: No such file or directory (os error 2)", out_dir.display()));
        assert!(!matches!(diagnose(&[include], &r), Diagnosis::Damage { .. }), "OUT_DIR is the build script's");
        let type_error = Diagnostic {
            level: "error".into(),
            message: "mismatched types".into(),
            code: Some("E0308".into()),
            from_source: false,
            ..Diagnostic::default()
        };
        assert_eq!(diagnose(&[type_error], &r), Diagnosis::CodeError);
        let toolchain = note("corrupt metadata encountered in /home/u/.rustup/toolchains/x/lib/libstd.rmeta");
        assert_eq!(diagnose(&[toolchain], &r), Diagnosis::CodeError, "a corrupt toolchain is not fixed by a clean");
    }

    #[test]
    fn an_error_naming_the_target_dir_that_no_signature_explains_is_unknown() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let odd = note(&format!("ld: {}/debug/deps/libq-1.rlib: something new went wrong", t.display()));
        assert!(matches!(diagnose(&[odd], &roots(t)), Diagnosis::Unknown { .. }));
    }

    #[test]
    fn an_incremental_ice_is_damage_an_ice_elsewhere_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let session = t.join("debug/incremental/app-1xyz/s-h2-abc");
        let ice = Diagnostic {
            level: "error".into(),
            message: "internal compiler error: compiler/rustc_middle/src/query/on_disk_cache.rs: unexpected".into(),
            children: vec![format!("session directory: {}", session.display())],
            ..Diagnostic::default()
        };
        assert_eq!(sig(&diagnose(std::slice::from_ref(&ice), &roots(t))), Some(INCREMENTAL_ICE));
        let bare = Diagnostic { children: vec![], ..ice };
        let unknown = diagnose(&[bare], &roots(t));
        assert!(matches!(unknown, Diagnosis::Unknown { .. }), "rustc's bug: not damage, not the code's: {unknown:?}");
    }

    #[test]
    fn reads_cargos_json() {
        let json = serde_json::json!({"reason": "compiler-message", "message": {
            "message": "found invalid metadata files for crate `dep`", "code": {"code": "E0786"}, "level": "error",
            "spans": [{"file_name": "src/lib.rs", "is_primary": true}],
            "children": [{"message": "corrupt metadata encountered in /w/target/debug/deps/libdep-1.rmeta"}],
            "rendered": "error[E0786]: found invalid metadata files\n"}})
        .to_string();
        let (d, rendered) = Diagnostic::from_json(&json).unwrap();
        assert!(!d.from_source, "an error code is the compiler's");
        assert_eq!(d.children.len(), 1);
        assert!(rendered.unwrap().starts_with("error[E0786]"));
        assert!(Diagnostic::from_json(r#"{"reason":"compiler-artifact"}"#).is_none());
    }
}
