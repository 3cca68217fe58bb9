//! The JSON lines of `--message-format json`: a public contract, kept apart from the internal types.
//!
//! Every line is an object with a `reason`. Field names and values follow `DESIGN.md`; change them only with a
//! new field, never by renaming one. A path is a string, with U+FFFD where its bytes are not UTF-8; such a path
//! also gets a `…_bytes` field beside it with its exact bytes as an array of numbers, so nothing is lost.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::Serialize;

use super::Summary;
use crate::model::{Handle, HandleKind, Holder, Outcome, Removed, Verdict};

/// A path's text, and its bytes when the text had to replace some.
fn wire_path(path: &Path) -> (String, Option<Vec<u8>>) {
    match path.to_str() {
        Some(text) => (text.to_string(), None),
        None => (path.to_string_lossy().into_owned(), Some(path.as_os_str().as_bytes().to_vec())),
    }
}

#[derive(Debug, Serialize)]
pub struct HandleLine {
    pub kind: HandleKind,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<Vec<u8>>,
}

impl From<&Handle> for HandleLine {
    fn from(h: &Handle) -> Self {
        let (path, path_bytes) = wire_path(&h.path);
        HandleLine { kind: h.kind, path, path_bytes }
    }
}
use crate::terminate::{Ended, Sig};
use crate::verify::Verified;

#[derive(Debug, Serialize)]
pub struct HolderLine<'a> {
    pub pid: u32,
    pub name: &'a str,
    pub kind: &'static str,
    pub cmdline: &'a [String],
    pub handles: Vec<HandleLine>,
    pub verdict: Verdict,
    pub outcome: Option<&'static str>,
}

impl<'a> From<&'a Holder> for HolderLine<'a> {
    fn from(h: &'a Holder) -> Self {
        HolderLine {
            pid: h.process.pid,
            name: h.process.display_name(),
            kind: h.kind.as_str(),
            cmdline: &h.process.cmdline,
            handles: h.handles.iter().map(HandleLine::from).collect(),
            verdict: h.verdict,
            outcome: h.outcome.as_ref().map(Outcome::as_str),
        }
    }
}

/// One event line.
#[derive(Debug, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Event<'a> {
    Holder(HolderLine<'a>),
    Signal { pid: u32, signal: &'static str },
    Exited { pid: u32, outcome: &'static str, after_ms: u64 },
    Removed(Removed),
    Verify { exit_code: Option<i32>, duration_ms: u64 },
}

impl Event<'_> {
    #[must_use]
    pub fn signal(holder: &Holder, sig: Sig) -> Self {
        Event::Signal { pid: holder.process.pid, signal: sig.name() }
    }

    #[must_use]
    pub fn exited(holder: &Holder, ended: &Ended) -> Self {
        Event::Exited {
            pid: holder.process.pid,
            outcome: ended.outcome.as_str(),
            after_ms: u64::try_from(ended.at.as_millis()).unwrap_or(u64::MAX),
        }
    }

    #[must_use]
    pub fn verify(v: &Verified) -> Self {
        Event::Verify { exit_code: v.exit_code, duration_ms: v.duration_ms }
    }
}

#[derive(Debug, Serialize)]
pub struct VerifyLine {
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
}

/// The last line.
#[derive(Debug, Serialize)]
pub struct SummaryLine<'a> {
    pub reason: &'static str,
    pub target_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_dir_bytes: Option<Vec<u8>>,
    pub build_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_dir_bytes: Option<Vec<u8>>,
    pub dry_run: bool,
    pub holders: Vec<HolderLine<'a>>,
    /// Processes that could not be inspected (other users', or access denied): what they hold is not known.
    pub uninspectable: usize,
    pub removed: Option<Removed>,
    pub verify: Option<VerifyLine>,
    pub exit_code: i32,
}

#[must_use]
pub fn summary_line(s: &Summary) -> SummaryLine<'_> {
    let (target_dir, target_dir_bytes) = s.dirs.as_ref().map(|d| wire_path(&d.target_dir)).unzip();
    let (build_dir, build_dir_bytes) = s.dirs.as_ref().and_then(|d| d.build_dir.as_deref()).map(wire_path).unzip();
    SummaryLine {
        reason: "summary",
        target_dir,
        target_dir_bytes: target_dir_bytes.flatten(),
        build_dir,
        build_dir_bytes: build_dir_bytes.flatten(),
        dry_run: s.dry_run,
        holders: s.holders.iter().map(HolderLine::from).collect(),
        uninspectable: s.uninspectable.other_users + s.uninspectable.own.len(),
        removed: s.removed,
        verify: s.verify.map(|v| VerifyLine { exit_code: v.exit_code, duration_ms: v.duration_ms }),
        exit_code: s.exit_code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HandleKind, Kind, Process};

    #[test]
    fn lines_have_the_documented_shape() {
        let h = Holder {
            process: Process {
                pid: 4242,
                ppid: 1,
                pgid: 4242,
                start_time: 9,
                name: "cargo".into(),
                cmdline: vec!["cargo".into(), "build".into()],
                exe: None,
                uid: None,
            },
            handles: vec![Handle { kind: HandleKind::Lock, path: "/t/debug/.cargo-lock".into() }],
            kind: Kind::Cargo,
            verdict: Verdict::Terminate,
            spare_reason: None,
            relation: None,
            via: None,
            outcome: Some(Outcome::ExitedAfterSigterm),
            note: None,
        };
        let line = serde_json::to_value(Event::Holder(HolderLine::from(&h))).unwrap();
        assert_eq!(
            line,
            serde_json::json!({"reason":"holder","pid":4242,"name":"cargo","kind":"cargo","cmdline":["cargo","build"],
                "handles":[{"kind":"lock","path":"/t/debug/.cargo-lock"}],"verdict":"terminate",
                "outcome":"exited-after-sigterm"})
        );
        let s = Summary { holders: vec![h], exit_code: 4, ..Summary::default() };
        let v = serde_json::to_value(summary_line(&s)).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "build_dir",
                "dry_run",
                "exit_code",
                "holders",
                "reason",
                "removed",
                "target_dir",
                "uninspectable",
                "verify"
            ]
        );
        assert_eq!(serde_json::to_value(Event::Signal { pid: 1, signal: "SIGTERM" }).unwrap()["reason"], "signal");
    }

    #[test]
    fn a_path_that_is_not_utf8_keeps_its_bytes() {
        let raw = std::ffi::OsStr::from_bytes(b"/t/bad\xff/x");
        let h = Handle { kind: HandleKind::Fd, path: raw.into() };
        let v = serde_json::to_value(HandleLine::from(&h)).unwrap();
        assert_eq!(v["path"], "/t/bad\u{fffd}/x");
        let bytes: Vec<u8> = serde_json::from_value(v["path_bytes"].clone()).unwrap();
        assert_eq!(bytes, b"/t/bad\xff/x");
        let plain = serde_json::to_value(HandleLine::from(&Handle { kind: HandleKind::Fd, path: "/t/ok".into() }));
        assert!(plain.unwrap().get("path_bytes").is_none());
    }
}
