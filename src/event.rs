//! Everything that happens in a run, as one [`Event`] type, and the [`Summary`] built once at its end. Their
//! serialisation is the JSON lines of `--message-format json`, a public contract.
//!
//! Every line is an object with a `reason`. Field names and values follow the README; change them only with a new
//! field, never by renaming one. Events a person needs but the contract does not list (progress, cargo's output,
//! warnings) are not JSON lines: [`Event::is_json_line`] says which are. A path is a string, with U+FFFD where its
//! bytes are not UTF-8; such a path also gets a `…_bytes` field beside it with its exact bytes as an array of
//! numbers, so nothing is lost.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::ser::Error as _;
use serde::{Serialize, Serializer};

use crate::layout::{LockName, lock_name};
use crate::model::{
    CheckResult, Checked, Detached, DirSize, FreeSpace, Handle, Hold, Holder, Kept, Left, Mode, Outcome, Progress,
    Removed, Repaired, Settled, Sig, SweepPlan, Swept, Tally, Uninspectable, Verified,
};
use crate::workspace::Dirs;

/// Something that happened, in the order it happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// The dirs were resolved and passed the guard.
    Dirs(Dirs),
    /// Another process (another run, usually) holds the run lock of this target dir; this one waits for it, at most
    /// `timeout`.
    WaitingForOtherRun { dir: PathBuf, holder: String, timeout: std::time::Duration },
    /// A holder, with the policy's decision (and, in a dry run, the outcome it would have). JSON: `holder`.
    Holder { holder: Holder, outcome: Option<Outcome> },
    /// The scan is complete: how many holders it reported, and what it could not inspect. What was scanned is the
    /// target and build dirs for a clean, cargo's lock files for `--unlock`.
    Scanned { mode: Mode, holders: usize, uninspectable: Uninspectable },
    /// The stop waits for `pids` to exit after `after` (SIGTERM: the grace period; SIGKILL: the kill timeout), at
    /// most `within`: what a countdown shows.
    Waiting { pids: Vec<u32>, after: Sig, within: std::time::Duration },
    /// A signal went out. JSON: `signal`.
    Signal { pid: u32, signal: Sig },
    /// A holder is gone. JSON: `exited`.
    Exited { pid: u32, outcome: Outcome, after_ms: u64 },
    /// A holder outlived everything sent to it; the summary's outcome says `survived`.
    Survived { pid: u32, note: String, after_ms: u64 },
    /// A dry run measured what the run would remove, dir by dir.
    Measured(Vec<DirSize>),
    /// The purge started; the counters move while it runs.
    PurgeStarted(Arc<Progress>),
    /// The purge finished. JSON: `removed`.
    Removed(Removed),
    /// A detached deleter took the purge over. JSON: `purge_detached`, instead of `removed`.
    PurgeDetached(Detached),
    /// The check of `--if-broken` starts, as a person would type it.
    CheckStarted { command: String },
    /// The check of `--if-broken` ended. JSON: `check`.
    Checked(Checked),
    /// A dry run's repair: the units it would remove (and how many entries), before checking again.
    RepairPlanned { units: Vec<String>, entries: usize },
    /// The smallest repair was done, and checked. JSON: `repaired`.
    Repaired(Repaired),
    /// The verifying `cargo check` starts, as a person would type it.
    VerifyStarted { command: String },
    /// A line cargo wrote while verifying.
    CargoLine(String),
    /// The verifying `cargo check` finished. JSON: `verify`.
    Verified(Verified),
    /// Something worth telling that does not stop the run.
    Warning(String),
    /// A sweep waits for one of cargo's locks of a profile, held by `holder` (if it could be seen), at most `timeout`.
    WaitingForCargoLock { lock: PathBuf, holder: Option<crate::model::Process>, timeout: std::time::Duration },
    /// `--if-free-below`: the free space found, and the floor asked for.
    FreeSpace(FreeSpace),
    /// What a sweep chose, under cargo's locks, before it moves anything (in a dry run: what it would remove).
    SweepPlanned { plan: SweepPlan, dry_run: bool },
    /// The sweep is done (or, in a dry run, planned). JSON: `swept`, the last line before the summary.
    Swept(Swept),
}

impl Event {
    /// Whether this event is one of the documented JSON lines.
    #[must_use]
    pub fn is_json_line(&self) -> bool {
        self.line().is_some()
    }

    fn line(&self) -> Option<Line<'_>> {
        Some(match self {
            Event::Holder { holder, outcome } => Line::Holder(HolderLine::new(holder, *outcome)),
            Event::Signal { pid, signal } => Line::Signal { pid: *pid, signal: signal.name() },
            Event::Exited { pid, outcome, after_ms } => {
                Line::Exited { pid: *pid, outcome: outcome.as_str(), after_ms: *after_ms }
            }
            Event::Removed(r) => Line::Removed { files: r.files, bytes: r.bytes, duration_ms: r.duration_ms },
            Event::Verified(v) => Line::Verify { exit_code: v.exit_code, duration_ms: v.duration_ms },
            Event::Checked(c) => Line::Check(CheckLine::from(c)),
            Event::PurgeDetached(d) => Line::PurgeDetached(DetachedLine::from(d)),
            Event::Repaired(r) => Line::Repaired(RepairedLine::from(r)),
            Event::Swept(s) => Line::Swept(SweptLine::from(s)),
            _ => return None,
        })
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.line() {
            Some(line) => line.serialize(s),
            None => Err(S::Error::custom("this event is not a JSON line")),
        }
    }
}

/// The wire form of the events that are JSON lines.
#[derive(Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
enum Line<'a> {
    Holder(HolderLine<'a>),
    Signal {
        pid: u32,
        signal: &'static str,
    },
    Exited {
        pid: u32,
        outcome: &'static str,
        after_ms: u64,
    },
    Removed {
        files: u64,
        bytes: u64,
        duration_ms: u64,
    },
    Verify {
        exit_code: Option<i32>,
        duration_ms: u64,
    },
    Check(CheckLine),
    #[serde(rename = "purge_detached")]
    PurgeDetached(DetachedLine),
    Repaired(RepairedLine),
    Swept(SweptLine),
}

/// A sweep: units, files and bytes removed, per criterion, and the units kept because a process held them or a
/// build held their profile's lock.
#[derive(Debug, Serialize)]
struct SweptLine {
    units: u64,
    files: u64,
    bytes: u64,
    by_criterion: serde_json::Map<String, serde_json::Value>,
    kept: Vec<KeptLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    free_space: Option<FreeSpaceLine>,
}

#[derive(Debug, Serialize)]
struct TallyLine<'a> {
    units: u64,
    files: u64,
    bytes: u64,
    names: &'a [String],
}

#[derive(Debug, Serialize)]
struct KeptLine {
    /// `null` for a profile skipped whole.
    unit: Option<String>,
    profile: String,
    reason: &'static str,
    pid: Option<u32>,
    path: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct FreeSpaceLine {
    free: u64,
    below: u64,
}

impl From<&FreeSpace> for FreeSpaceLine {
    fn from(f: &FreeSpace) -> Self {
        FreeSpaceLine { free: f.free, below: f.below }
    }
}

impl From<&Kept> for KeptLine {
    fn from(k: &Kept) -> Self {
        KeptLine {
            unit: k.unit.clone(),
            profile: wire_path(&k.profile).0,
            reason: k.reason.as_str(),
            pid: k.pid,
            path: k.path.as_deref().map(|p| wire_path(p).0),
        }
    }
}

impl From<&Swept> for SweptLine {
    fn from(s: &Swept) -> Self {
        let by_criterion = s
            .plan
            .by_criterion
            .iter()
            .map(|(c, t, names): &(crate::model::Criterion, Tally, Vec<String>)| {
                let line = TallyLine { units: t.units, files: t.files, bytes: t.bytes, names };
                (c.as_str().to_string(), serde_json::to_value(line).unwrap_or_default())
            })
            .collect();
        SweptLine {
            units: s.units,
            files: s.files,
            bytes: s.bytes,
            by_criterion,
            kept: s.plan.kept.iter().map(KeptLine::from).collect(),
            free_space: s.free_space.as_ref().map(FreeSpaceLine::from),
        }
    }
}

/// The smallest repair: the units removed, what that freed, and the check after it.
#[derive(Debug, Serialize)]
struct RepairedLine {
    units: Vec<String>,
    rebuilt: Vec<String>,
    files: u64,
    bytes: u64,
    healed: bool,
    check_ms: u64,
}

impl From<&Repaired> for RepairedLine {
    fn from(r: &Repaired) -> Self {
        RepairedLine {
            units: r.units.clone(),
            rebuilt: r.rebuilt.clone(),
            files: r.files,
            bytes: r.bytes,
            healed: r.healed,
            check_ms: r.check_ms,
        }
    }
}

/// The detached deleter: its pid, the trash dirs it deletes, its log.
#[derive(Debug, Serialize)]
struct DetachedLine {
    pid: u32,
    trash: Vec<String>,
    log: String,
}

impl From<&Detached> for DetachedLine {
    fn from(d: &Detached) -> Self {
        DetachedLine { pid: d.pid, trash: d.trash.iter().map(|t| wire_path(t).0).collect(), log: wire_path(&d.log).0 }
    }
}

/// The check's result: `result`, then what it found (`signature` and `path`, or the `lock` and its `holder_pid`).
#[derive(Debug, Serialize)]
struct CheckLine {
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lock: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    holder_pid: Option<u32>,
    exit_code: Option<i32>,
    duration_ms: u64,
}

impl From<&Checked> for CheckLine {
    fn from(c: &Checked) -> Self {
        let (mut signature, mut path, mut lock, mut holder_pid) = (None, None, None, None);
        match &c.result {
            CheckResult::Corrupt { signature: s, path: p } => (signature, path) = (Some(*s), Some(wire_path(p).0)),
            CheckResult::Blocked { lock: l, holder } => (lock, holder_pid) = (Some(wire_path(l).0), *holder),
            CheckResult::Unknown { path: p } => path = Some(wire_path(p).0),
            CheckResult::Healthy | CheckResult::CodeError => {}
        }
        CheckLine {
            result: c.result.as_str(),
            signature,
            path,
            lock,
            holder_pid,
            exit_code: c.exit_code,
            duration_ms: c.duration_ms,
        }
    }
}

/// A path's text, and its bytes when the text had to replace some.
fn wire_path(path: &Path) -> (String, Option<Raw>) {
    match path.to_str() {
        Some(text) => (text.to_string(), None),
        None => (path.to_string_lossy().into_owned(), Some(raw(path))),
    }
}

/// A name exactly as the OS spells it: bytes on Unix (`path_bytes`), UTF-16 code units on Windows (`path_wide`).
#[cfg(unix)]
type Raw = Vec<u8>;
#[cfg(windows)]
type Raw = Vec<u16>;

#[cfg(unix)]
fn raw(path: &Path) -> Raw {
    std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec()
}

#[cfg(windows)]
fn raw(path: &Path) -> Raw {
    std::os::windows::ffi::OsStrExt::encode_wide(path.as_os_str()).collect()
}

#[derive(Debug, Serialize)]
struct HandleLine {
    kind: &'static str,
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(windows, serde(rename = "path_wide"))]
    path_bytes: Option<Raw>,
    /// Which of cargo's locks the file is, when the handle holds or waits for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    lock: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    shared: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    waiting: bool,
}

impl From<&Handle> for HandleLine {
    fn from(h: &Handle) -> Self {
        let (path, path_bytes) = wire_path(&h.path);
        let lock = h.hold.and_then(|_| lock_name(&h.path)).map(LockName::as_str);
        let (shared, waiting) = (h.hold == Some(Hold::Shared), h.hold == Some(Hold::Waiting));
        HandleLine { kind: h.kind.as_str(), path, path_bytes, lock, shared, waiting }
    }
}

#[derive(Debug, Serialize)]
struct HolderLine<'a> {
    pid: u32,
    name: &'a str,
    kind: &'static str,
    cmdline: &'a [String],
    handles: Vec<HandleLine>,
    verdict: &'static str,
    outcome: Option<&'static str>,
}

impl<'a> HolderLine<'a> {
    fn new(h: &'a Holder, outcome: Option<Outcome>) -> Self {
        HolderLine {
            pid: h.process.pid,
            name: h.process.display_name(),
            kind: h.kind.as_str(),
            cmdline: &h.process.cmdline,
            handles: h.handles.iter().map(HandleLine::from).collect(),
            verdict: h.verdict.as_str(),
            outcome: outcome.map(Outcome::as_str),
        }
    }
}

/// Everything a run did, built once when it ends; the last JSON line.
#[derive(Debug, Clone)]
pub struct Summary {
    pub mode: Mode,
    pub dry_run: bool,
    /// What the check of `--if-broken` found.
    pub check: Option<Checked>,
    /// The deleter a `--detach` handed the purge to.
    pub purge_detached: Option<Detached>,
    pub dirs: Option<Dirs>,
    pub holders: Vec<Settled>,
    pub uninspectable: Uninspectable,
    pub removed: Option<Removed>,
    /// What the purge left, and why.
    pub left: Vec<Left>,
    /// The smallest repair of `--if-broken`, when it was tried.
    pub repaired: Option<Repaired>,
    pub verify: Option<Verified>,
    /// What a sweep removed (or would).
    pub swept: Option<Swept>,
    /// `--if-free-below`: the free space found.
    pub free_space: Option<FreeSpace>,
    pub exit_code: i32,
    /// Why the run failed; `None` when it did not.
    pub error: Option<Failure>,
}

/// A failed run's error as the user reads it: one message, what to do about it, and what was (not) done. Built
/// once from [`crate::error::Error`], so every reporter says the same; JSON: the summary's `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A stable name for the class of failure (`refused`, `holders-remain`, …); each kind has one exit code.
    pub kind: &'static str,
    /// What went wrong, naming the path or pid: cargo's `error:` line.
    pub message: String,
    /// What the user can do: cargo's `help:` line.
    pub help: Option<String>,
    /// What was or was not done (`nothing was deleted`): cargo's `note:` line.
    pub note: Option<String>,
}

impl Summary {
    /// The summary of a run that ended before it learned anything.
    #[must_use]
    pub fn empty(mode: Mode, dry_run: bool, exit_code: i32) -> Self {
        Summary {
            mode,
            dry_run,
            check: None,
            purge_detached: None,
            dirs: None,
            holders: Vec::new(),
            uninspectable: Uninspectable::default(),
            removed: None,
            left: Vec::new(),
            repaired: None,
            verify: None,
            swept: None,
            free_space: None,
            exit_code,
            error: None,
        }
    }
}

/// The version of the summary line's shape: raised when a field changes meaning or goes away, never for a new
/// field.
pub const SCHEMA: u32 = 1;

#[derive(Serialize)]
struct SummaryLine<'a> {
    reason: &'static str,
    schema: u32,
    mode: &'static str,
    target_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(windows, serde(rename = "target_dir_wide"))]
    target_dir_bytes: Option<Raw>,
    build_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(windows, serde(rename = "build_dir_wide"))]
    build_dir_bytes: Option<Raw>,
    dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<CheckLine>,
    holders: Vec<HolderLine<'a>>,
    /// Processes that could not be inspected (other users', or access denied): what they hold is not known.
    uninspectable: usize,
    removed: Option<RemovedLine>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    left: Vec<LeftLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repaired: Option<RepairedLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purge_detached: Option<DetachedLine>,
    verify: Option<VerifyLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    swept: Option<SweptLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    free_space: Option<FreeSpaceLine>,
    exit_code: i32,
    /// `null` when the run succeeded.
    error: Option<ErrorLine<'a>>,
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    kind: &'static str,
    message: &'a str,
    help: Option<&'a str>,
    note: Option<&'a str>,
}

impl<'a> From<&'a Failure> for ErrorLine<'a> {
    fn from(f: &'a Failure) -> Self {
        ErrorLine { kind: f.kind, message: &f.message, help: f.help.as_deref(), note: f.note.as_deref() }
    }
}

#[derive(Serialize)]
struct RemovedLine {
    files: u64,
    bytes: u64,
    duration_ms: u64,
}

/// A trash dir the purge left, and why.
#[derive(Serialize)]
struct LeftLine {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(windows, serde(rename = "path_wide"))]
    path_bytes: Option<Raw>,
    reason: String,
}

#[derive(Serialize)]
struct VerifyLine {
    exit_code: Option<i32>,
    duration_ms: u64,
}

impl Serialize for Summary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (target_dir, target_dir_bytes) = self.dirs.as_ref().map(|d| wire_path(&d.target_dir)).unzip();
        let (build_dir, build_dir_bytes) =
            self.dirs.as_ref().and_then(|d| d.build_dir.as_deref()).map(wire_path).unzip();
        SummaryLine {
            reason: "summary",
            schema: SCHEMA,
            mode: self.mode.as_str(),
            target_dir,
            target_dir_bytes: target_dir_bytes.flatten(),
            build_dir,
            build_dir_bytes: build_dir_bytes.flatten(),
            dry_run: self.dry_run,
            check: self.check.as_ref().map(CheckLine::from),
            holders: self.holders.iter().map(|h| HolderLine::new(&h.holder, h.outcome)).collect(),
            uninspectable: self.uninspectable.count(),
            removed: self.removed.map(|r| RemovedLine { files: r.files, bytes: r.bytes, duration_ms: r.duration_ms }),
            left: self
                .left
                .iter()
                .map(|l| {
                    let (path, path_bytes) = wire_path(&l.path);
                    LeftLine { path, path_bytes, reason: l.reason.clone() }
                })
                .collect(),
            repaired: self.repaired.as_ref().map(RepairedLine::from),
            purge_detached: self.purge_detached.as_ref().map(DetachedLine::from),
            verify: self.verify.map(|v| VerifyLine { exit_code: v.exit_code, duration_ms: v.duration_ms }),
            swept: self.swept.as_ref().map(SweptLine::from),
            free_space: self.free_space.as_ref().map(FreeSpaceLine::from),
            exit_code: self.exit_code,
            error: self.error.as_ref().map(ErrorLine::from),
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HandleKind, Kind, Process, Verdict};

    pub(crate) fn cargo_holder() -> Holder {
        Holder {
            process: Process {
                pid: 4242,
                ppid: 1,
                pgid: 4242,
                start_time: 9,
                name: "cargo".into(),
                cmdline: vec!["cargo".into(), "build".into()],
                exe: None,
                cwd: None,
                started_at: None,
                stopped: false,
                uid: None,
            },
            handles: vec![Handle {
                kind: HandleKind::Lock,
                path: "/t/debug/.cargo-lock".into(),
                hold: Some(Hold::Exclusive),
            }],
            kind: Kind::Cargo,
            verdict: Verdict::Terminate,
            spare_reason: None,
            relation: None,
            via: None,
        }
    }

    #[test]
    fn lines_have_the_documented_shape() {
        let h = cargo_holder();
        let event = Event::Holder { holder: h.clone(), outcome: Some(Outcome::ExitedAfterSigterm) };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"reason":"holder","pid":4242,"name":"cargo","kind":"cargo","cmdline":["cargo","build"],
                "handles":[{"kind":"lock","path":"/t/debug/.cargo-lock","lock":"build-directory"}],"verdict":"terminate",
                "outcome":"exited-after-sigterm"})
        );
        let settled = Settled { holder: h, outcome: Some(Outcome::Killed), note: None, gone: false };
        let s = Summary { holders: vec![settled], ..Summary::empty(Mode::Clean, false, 4) };
        let v = serde_json::to_value(&s).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let expected = [
            "build_dir",
            "dry_run",
            "error",
            "exit_code",
            "holders",
            "mode",
            "reason",
            "removed",
            "schema",
            "target_dir",
            "uninspectable",
            "verify",
        ];
        assert_eq!(keys, expected);
        assert_eq!(v["schema"], 1);
        assert!(v["error"].is_null(), "a run that did not fail has error: null");
        let signal = Event::Signal { pid: 1, signal: Sig::Term };
        assert_eq!(
            serde_json::to_value(&signal).unwrap(),
            serde_json::json!({"reason":"signal","pid":1,"signal":"SIGTERM"})
        );
        assert!(!Event::Warning("x".into()).is_json_line());
        assert!(serde_json::to_value(Event::CargoLine("x".into())).is_err());
    }

    /// A failed run's summary says why, in the words and kind the user and a script read. (`Error` is the Unix
    /// conductor's.)
    #[cfg(unix)]
    #[test]
    fn a_failed_run_says_why() {
        let error =
            crate::Error::from(crate::terminate::HoldersRemain::NoKill { dir: "/w/target".into(), pids: vec![7] });
        let s = Summary { error: Some(error.failure()), ..Summary::empty(Mode::Clean, false, error.exit_code()) };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["error"],
            serde_json::json!({
                "kind": "holders-remain",
                "message": "--no-kill was given and a process holds /w/target (pid 7)",
                "help": "stop them, or run without --no-kill",
                "note": "nothing was changed",
            })
        );
        assert_eq!(v["exit_code"], 4);
        let bare = Failure { kind: "signals", message: "x".into(), help: None, note: None };
        let v = serde_json::to_value(Summary { error: Some(bare), ..Summary::empty(Mode::Clean, false, 1) }).unwrap();
        assert!(v["error"]["help"].is_null() && v["error"]["note"].is_null(), "{v}");
    }

    #[test]
    fn a_sweep_says_what_it_removed_per_criterion_and_what_it_kept() {
        use crate::model::{Criterion, FreeSpace, KeptReason};
        let swept = Swept {
            units: 2,
            files: 9,
            bytes: 900,
            plan: SweepPlan {
                by_criterion: vec![
                    (Criterion::Orphan, Tally { units: 1, files: 1, bytes: 100 }, vec!["debug/deps/x.rcgu.o".into()]),
                    (Criterion::OtherToolchain, Tally { units: 1, files: 8, bytes: 800 }, vec!["debug/dep-1".into()]),
                ],
                kept: vec![Kept {
                    unit: None,
                    profile: "release".into(),
                    reason: KeptReason::Locked,
                    pid: Some(7),
                    path: Some("/t/release/.cargo-lock".into()),
                }],
            },
            free_space: Some(FreeSpace { free: 5, below: 10 }),
        };
        assert_eq!(
            serde_json::to_value(Event::Swept(swept.clone())).unwrap(),
            serde_json::json!({"reason":"swept","units":2,"files":9,"bytes":900,
                "by_criterion":{
                    "orphan":{"units":1,"files":1,"bytes":100,"names":["debug/deps/x.rcgu.o"]},
                    "other-toolchain":{"units":1,"files":8,"bytes":800,"names":["debug/dep-1"]}},
                "kept":[{"unit":null,"profile":"release","reason":"locked","pid":7,"path":"/t/release/.cargo-lock"}],
                "free_space":{"free":5,"below":10}})
        );
        let s = Summary { swept: Some(swept), ..Summary::empty(Mode::Sweep, false, 0) };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!((&v["mode"], &v["swept"]["units"]), (&"sweep".into(), &2.into()));
    }

    #[cfg(unix)]
    #[test]
    fn a_path_that_is_not_utf8_keeps_its_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let raw = std::ffi::OsStr::from_bytes(b"/t/bad\xff/x");
        let v = serde_json::to_value(HandleLine::from(&Handle::new(HandleKind::Fd, raw))).unwrap();
        assert_eq!(v["path"], "/t/bad\u{fffd}/x");
        let bytes: Vec<u8> = serde_json::from_value(v["path_bytes"].clone()).unwrap();
        assert_eq!(bytes, b"/t/bad\xff/x");
        let plain = serde_json::to_value(HandleLine::from(&Handle::new(HandleKind::Fd, "/t/ok")));
        assert!(plain.unwrap().get("path_bytes").is_none());
    }

    /// A Windows name is UTF-16 that need not be valid (a lone surrogate): its exact code units go to `path_wide`.
    #[cfg(windows)]
    #[test]
    fn a_name_that_is_not_unicode_keeps_its_code_units() {
        use std::os::windows::ffi::OsStringExt;
        let units = [u16::from(b'C'), u16::from(b':'), u16::from(b'\\'), 0xD800, u16::from(b'x')];
        let raw = std::ffi::OsString::from_wide(&units);
        let v = serde_json::to_value(HandleLine::from(&Handle::new(HandleKind::Fd, raw))).unwrap();
        assert_eq!(v["path"], "C:\\\u{fffd}x");
        let wide: Vec<u16> = serde_json::from_value(v["path_wide"].clone()).unwrap();
        assert_eq!(wide, units);
        assert!(v.get("path_bytes").is_none());
        let plain = serde_json::to_value(HandleLine::from(&Handle::new(HandleKind::Fd, r"C:\t\ok")));
        assert!(plain.unwrap().get("path_wide").is_none());
    }
}
