//! Snapshots of what people and scripts read: `--help`, and the human report, the JSON lines and the GitHub
//! Actions output of one fixed run (the events a run emits, replayed with fixed pids, paths and durations), and of
//! the same run with `--detach`.
//!
//! A change to any of them shows as a diff here; accept it with `INSTA_UPDATE=always cargo test --test snapshots`
//! (or `cargo insta review`) when it is meant, and say so in the CHANGELOG.

// The fixtures and the pipeline these tests drive are Unix only so far (see the README's Platforms).
#![cfg(unix)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cargo_safeclean::Error;
use cargo_safeclean::detach::Detached;
use cargo_safeclean::event::{Event, Summary};
use cargo_safeclean::model::{
    CheckResult, Checked, DirSize, Handle, HandleKind, Hold, Holder, Kind, Left, Mode, Outcome, Process, Relation,
    Removed, Repaired, Settled, Sig, SpareReason, Uninspectable, Verdict, Verified,
};
use cargo_safeclean::purge::{Progress, PurgeError};
use cargo_safeclean::report::{Format, Output, Style, to_writers};
use cargo_safeclean::verify::VerifyError;
use cargo_safeclean::workspace::Dirs;
use common::*;

/// A writer the test reads back.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn process(pid: u32, parent: u32, exe: &str, cmdline: &[&str]) -> Process {
    Process {
        pid,
        ppid: parent,
        pgid: 4100,
        start_time: 1,
        name: exe.rsplit('/').next().unwrap().chars().take(15).collect(),
        cmdline: cmdline.iter().map(|s| (*s).to_string()).collect(),
        exe: Some(exe.into()),
        cwd: None,
        started_at: None,
        stopped: false,
        uid: None,
    }
}

fn holders() -> Vec<Holder> {
    let cargo = Holder {
        process: process(4100, 1, "/usr/bin/cargo", &["cargo", "build"]),
        handles: vec![
            Handle { kind: HandleKind::Lock, path: "/w/target/debug/.cargo-lock".into(), hold: Some(Hold::Exclusive) },
            Handle::new(HandleKind::Cwd, "/w/target/debug"),
        ],
        kind: Kind::Cargo,
        verdict: Verdict::Terminate,
        spare_reason: None,
        relation: Some(Relation::Orphaned),
        via: None,
    };
    let script = Holder {
        process: process(4101, 4100, "/w/target/debug/build/app-1/build-script-build", &["build-script-build"]),
        handles: vec![Handle::new(HandleKind::Exe, "/w/target/debug/build/app-1/build-script-build")],
        kind: Kind::BuildScript,
        verdict: Verdict::Terminate,
        spare_reason: None,
        relation: Some(Relation::ChildOf { pid: 4100, name: "cargo".into() }),
        via: None,
    };
    let ide = Holder {
        process: process(4200, 1, "/opt/rust-analyzer-proc-macro-srv", &["rust-analyzer-proc-macro-srv"]),
        handles: vec![Handle::new(HandleKind::Mmap, "/w/target/debug/deps/libmacros.so")],
        kind: Kind::Ide,
        verdict: Verdict::Spare,
        spare_reason: Some(SpareReason::Policy),
        relation: Some(Relation::Orphaned),
        via: None,
    };
    vec![cargo, script, ide]
}

/// The events of one run: three holders, one stopped at once, one killed after the grace, a spared one, a
/// mount left in the trash, the removal and a passing check.
fn events() -> Vec<Event> {
    let dirs = Dirs {
        workspace_root: "/w".into(),
        manifest_path: None,
        target_dir: "/w/target".into(),
        build_dir: None,
        explicit_target_dir: false,
    };
    let mut out = vec![Event::Dirs(dirs)];
    out.extend(holders().into_iter().map(|holder| Event::Holder { holder, outcome: None }));
    out.extend([
        Event::Scanned {
            mode: Mode::Clean,
            holders: 3,
            uninspectable: Uninspectable { other_users: 2, own: vec![], unnamed: vec![] },
        },
        Event::Signal { pid: 4100, signal: Sig::Term },
        Event::Signal { pid: 4100, signal: Sig::Cont },
        Event::Signal { pid: 4101, signal: Sig::Term },
        Event::Signal { pid: 4101, signal: Sig::Cont },
        Event::Waiting { pids: vec![4100, 4101], after: Sig::Term, within: Duration::from_secs(5) },
        Event::Exited { pid: 4100, outcome: Outcome::ExitedAfterSigterm, after_ms: 3 },
        Event::Signal { pid: 4101, signal: Sig::Kill },
        Event::Waiting { pids: vec![4101], after: Sig::Kill, within: Duration::from_secs(5) },
        Event::Exited { pid: 4101, outcome: Outcome::Killed, after_ms: 5001 },
        Event::PurgeStarted(Arc::new(Progress::default())),
        Event::VerifyStarted { command: "cargo check --features 'a b'".into() },
        Event::CargoLine("    Checking app v0.1.0 (/w)".into()),
        Event::CargoLine("    Finished `dev` profile [unoptimized + debuginfo] target(s) in 0.31s".into()),
        Event::Warning("left mount point /w/target/.safeclean-trash-1-a/debug/cache and what is under it alone".into()),
        Event::Removed(Removed { files: 32586, bytes: 1_503_238_553, duration_ms: 2100 }),
        Event::Verified(Verified { exit_code: Some(0), duration_ms: 1250, interrupted: false }),
    ]);
    out
}

fn summary(events: &[Event]) -> Summary {
    let dirs = events.iter().find_map(|e| if let Event::Dirs(d) = e { Some(d.clone()) } else { None });
    let outcome = |pid| match pid {
        4100 => Outcome::ExitedAfterSigterm,
        4101 => Outcome::Killed,
        _ => Outcome::Spared,
    };
    Summary {
        mode: Mode::Clean,
        dry_run: false,
        check: None,
        purge_detached: None,
        dirs,
        holders: holders()
            .into_iter()
            .map(|holder| Settled { outcome: Some(outcome(holder.process.pid)), holder, note: None, gone: false })
            .collect(),
        uninspectable: Uninspectable { other_users: 2, own: vec![], unnamed: vec![] },
        removed: Some(Removed { files: 32586, bytes: 1_503_238_553, duration_ms: 2100 }),
        left: vec![Left {
            path: "/w/target/.safeclean-trash-1-a/.safeclean-trash-0-f".into(),
            reason: "its lock is held by pid 4400 flock (flock -s .safeclean-trash-0-f sleep 1d)".into(),
        }],
        repaired: None,
        verify: Some(Verified { exit_code: Some(0), duration_ms: 1250, interrupted: false }),
        swept: None,
        free_space: None,
        exit_code: 5,
        // The run's own error, as `run` builds it: a message, a note and a help line.
        error: Some(
            Error::from(PurgeError::MountsLeft { mounts: vec!["/w/target/.safeclean-trash-1-a/debug/cache".into()] })
                .failure(),
        ),
    }
}

/// The same run with `--detach`: a deleter takes the purge over, and no mount is left.
fn detached_run() -> (Vec<Event>, Summary) {
    let detached = Detached {
        pid: 4300,
        trash: vec!["/w/target/.safeclean-trash-1-a".into()],
        log: "/run/user/1000/cargo-safeclean-1000/deleter-1-a.log".into(),
    };
    // Handed over right after the swap, before the check starts.
    let mut events: Vec<Event> = events()
        .into_iter()
        .filter(|e| !matches!(e, Event::PurgeStarted(_) | Event::Warning(_) | Event::Removed(_)))
        .collect();
    let verify = events.iter().position(|e| matches!(e, Event::VerifyStarted { .. })).unwrap();
    events.insert(verify, Event::PurgeDetached(detached.clone()));
    let summary = Summary {
        removed: None,
        left: vec![],
        purge_detached: Some(detached),
        exit_code: 0,
        error: None,
        ..summary(&events)
    };
    (events, summary)
}

/// Replays the fixed run through the reporter for `format`; returns (stdout, stderr).
fn replay(format: Format, style: Style) -> (String, String) {
    let events = events();
    replay_run(format, style, &events, &summary(&events))
}

/// The style of a log: no colour, no progress line.
const PLAIN: Style = Style { color: false, progress: false, quiet: false, verbose: 0, width: 100 };

fn replay_run(format: Format, style: Style, events: &[Event], summary: &Summary) -> (String, String) {
    let (out, err) = (Buf::default(), Buf::default());
    let output = Output { format, style };
    let reporter = to_writers(&output, Box::new(out.clone()), Box::new(err.clone()));
    for e in events {
        reporter.event(e);
    }
    reporter.finish(summary).unwrap();
    (out.text(), err.text())
}

#[test]
fn human_report() {
    let (stdout, stderr) = replay(Format::Human, PLAIN);
    assert_eq!(stdout, "");
    insta::assert_snapshot!("human", stderr);
    insta::assert_snapshot!("human_verbose", replay(Format::Human, Style { verbose: 1, ..PLAIN }).1);
    let quiet = replay(Format::Human, Style { quiet: true, ..PLAIN }).1;
    insta::assert_snapshot!("human_quiet", quiet);
}

#[test]
fn json_lines() {
    let (stdout, stderr) = replay(Format::Json, PLAIN);
    for line in stdout.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    insta::assert_snapshot!("json_stdout", stdout);
    insta::assert_snapshot!("json_stderr", stderr);
}

#[test]
fn github_actions() {
    let step = tempfile::NamedTempFile::new().unwrap();
    let (stdout, _) = replay(Format::Github { step_summary: Some(step.path().to_path_buf()) }, PLAIN);
    insta::assert_snapshot!("github_stdout", stdout);
    insta::assert_snapshot!("github_step_summary", std::fs::read_to_string(step.path()).unwrap());
}

#[test]
fn a_detached_run() {
    let (events, summary) = detached_run();
    let (stdout, stderr) = replay_run(Format::Human, PLAIN, &events, &summary);
    assert_eq!(stdout, "");
    insta::assert_snapshot!("detached_human", stderr);
    let (stdout, _) = replay_run(Format::Json, PLAIN, &events, &summary);
    insta::assert_snapshot!("detached_json_stdout", stdout);
    let step = tempfile::NamedTempFile::new().unwrap();
    let github = Format::Github { step_summary: Some(step.path().to_path_buf()) };
    replay_run(github, PLAIN, &events, &summary);
    insta::assert_snapshot!("detached_github_step_summary", std::fs::read_to_string(step.path()).unwrap());
}

#[test]
fn help() {
    let out = std::process::Command::new(safeclean_exe()).arg("--help").output_bounded();
    assert!(out.status.success());
    insta::assert_snapshot!("help", String::from_utf8(out.stdout).unwrap());
}

fn dirs(build_dir: Option<&str>) -> Dirs {
    Dirs {
        workspace_root: "/w".into(),
        manifest_path: None,
        target_dir: "/w/target".into(),
        build_dir: build_dir.map(Into::into),
        explicit_target_dir: false,
    }
}

fn settled(holders: Vec<Holder>, outcome: impl Fn(&Holder) -> Outcome) -> Vec<Settled> {
    holders
        .into_iter()
        .map(|holder| Settled { outcome: Some(outcome(&holder)), holder, note: None, gone: false })
        .collect()
}

/// The human text of `events` and `summary`, plain, and quiet.
fn human(events: &[Event], summary: &Summary) -> (String, String) {
    let (stdout, text) = replay_run(Format::Human, PLAIN, events, summary);
    assert_eq!(stdout, "", "human text goes to stderr only");
    let quiet = replay_run(Format::Human, Style { quiet: true, ..PLAIN }, events, summary).1;
    (text, quiet)
}

#[test]
fn a_dry_run_names_what_it_would_stop_and_remove() {
    let foreseen =
        |h: &Holder| if h.verdict == Verdict::Terminate { Outcome::WouldTerminate } else { Outcome::WouldSpare };
    let mut events = vec![Event::Dirs(dirs(Some("/fast/b")))];
    events.extend(holders().into_iter().map(|h| Event::Holder { outcome: Some(foreseen(&h)), holder: h }));
    events.extend([
        Event::Scanned {
            mode: Mode::Clean,
            holders: 3,
            uninspectable: Uninspectable { other_users: 2, own: vec![], unnamed: vec![] },
        },
        Event::Measured(vec![
            DirSize { path: "/w/target".into(), files: 1751, bytes: 750_314_291 },
            DirSize { path: "/fast/b".into(), files: 12, bytes: 4096 },
        ]),
    ]);
    let summary = Summary {
        dirs: Some(dirs(Some("/fast/b"))),
        holders: settled(holders(), foreseen),
        uninspectable: Uninspectable { other_users: 2, own: vec![], unnamed: vec![] },
        ..Summary::empty(Mode::Clean, true, 0)
    };
    let (text, quiet) = human(&events, &summary);
    insta::assert_snapshot!("dry_run_human", text);
    assert_eq!(quiet, "", "a quiet dry run without warnings says nothing");
}

/// `--if-broken`'s three answers: healthy, damaged and repaired, a code error.
#[test]
fn if_broken_says_what_the_check_found() {
    let check = |result: CheckResult, exit_code| Checked { result, exit_code, duration_ms: 40 };
    let started = Event::CheckStarted { command: "cargo check --message-format=json".into() };
    let healthy = check(CheckResult::Healthy, Some(0));
    let events = [Event::Dirs(dirs(None)), started.clone(), Event::Checked(healthy.clone())];
    let summary = Summary { dirs: Some(dirs(None)), check: Some(healthy), ..Summary::empty(Mode::Clean, false, 0) };
    insta::assert_snapshot!("if_broken_healthy_human", human(&events, &summary).0);

    let damaged = check(
        CheckResult::Corrupt { signature: "truncated metadata", path: "/w/target/debug/deps/libserde-1.rmeta".into() },
        Some(101),
    );
    let repaired = Repaired {
        units: vec!["serde".into()],
        rebuilt: vec!["serde".into(), "app".into()],
        files: 9,
        bytes: 3_500_000,
        healed: true,
        check_ms: 2100,
    };
    let events = [
        Event::Dirs(dirs(None)),
        started.clone(),
        Event::Checked(damaged.clone()),
        Event::Scanned { mode: Mode::Clean, holders: 0, uninspectable: Uninspectable::default() },
        Event::Repaired(repaired.clone()),
    ];
    let summary = Summary {
        dirs: Some(dirs(None)),
        check: Some(damaged),
        repaired: Some(repaired),
        ..Summary::empty(Mode::Clean, false, 0)
    };
    insta::assert_snapshot!("if_broken_damaged_human", human(&events, &summary).0);

    let code = check(CheckResult::CodeError, Some(101));
    let events = [Event::Dirs(dirs(None)), started, Event::Checked(code.clone())];
    let broken = VerifyError::CodeBroken { command: "cargo check".into(), exit_code: Some(101) };
    let summary = Summary {
        dirs: Some(dirs(None)),
        check: Some(code),
        error: Some(Error::from(broken).failure()),
        ..Summary::empty(Mode::Clean, false, 6)
    };
    let (text, quiet) = human(&events, &summary);
    insta::assert_snapshot!("if_broken_code_error_human", text);
    assert!(quiet.starts_with("error:") && !quiet.contains("Summary"), "quiet keeps the error only: {quiet}");
}

/// `--unlock`: the owner of the package-cache lock is stopped, a cargo waiting for it spared.
#[test]
fn unlock_stops_the_owner_and_spares_the_waiter() {
    let lock = "/home/me/.cargo/.package-cache";
    let holder = |pid, cmd: &[&str], hold, verdict, spare_reason| Holder {
        process: Process { stopped: pid == 5100, ..process(pid, 1, "/usr/bin/cargo", cmd) },
        handles: vec![Handle { kind: HandleKind::Lock, path: lock.into(), hold: Some(hold) }],
        kind: Kind::Cargo,
        verdict,
        spare_reason,
        relation: None,
        via: None,
    };
    let owner = holder(5100, &["cargo", "install", "ripgrep"], Hold::Exclusive, Verdict::Terminate, None);
    let waiter = holder(5200, &["cargo", "fetch"], Hold::Waiting, Verdict::Spare, Some(SpareReason::NotOwner));
    let events = [
        Event::Dirs(dirs(None)),
        Event::Holder { holder: owner.clone(), outcome: None },
        Event::Holder { holder: waiter.clone(), outcome: None },
        Event::Scanned { mode: Mode::Unlock, holders: 2, uninspectable: Uninspectable::default() },
        Event::Waiting { pids: vec![5100], after: Sig::Term, within: Duration::from_secs(5) },
        Event::Exited { pid: 5100, outcome: Outcome::ExitedAfterSigterm, after_ms: 12 },
        Event::VerifyStarted { command: "cargo check".into() },
        Event::CargoLine("    Finished `dev` profile [unoptimized + debuginfo] target(s) in 0.02s".into()),
        Event::Verified(Verified { exit_code: Some(0), duration_ms: 200, interrupted: false }),
    ];
    let outcome = |h: &Holder| if h.process.pid == 5100 { Outcome::ExitedAfterSigterm } else { Outcome::Spared };
    let summary = Summary {
        dirs: Some(dirs(None)),
        holders: settled(vec![owner, waiter], outcome),
        verify: Some(Verified { exit_code: Some(0), duration_ms: 200, interrupted: false }),
        ..Summary::empty(Mode::Unlock, false, 0)
    };
    insta::assert_snapshot!("unlock_human", human(&events, &summary).0);
}

/// No line of the common reports is wider than 100 columns.
#[test]
fn lines_fit_a_hundred_columns() {
    let (_, text) = replay(Format::Human, PLAIN);
    for line in text.lines().filter(|l| !l.starts_with("error:") && !l.starts_with("warning:")) {
        assert!(line.chars().count() <= 100, "{} columns: {line}", line.chars().count());
    }
}

/// A sweep: waiting for a build's lock, the plan per criterion (a dry run, then the run), a held unit kept, a
/// skipped profile, the purge and the verify; human, JSON and GitHub's step summary.
#[test]
fn a_sweep_says_per_criterion_what_it_removes_and_what_it_keeps() {
    use cargo_safeclean::model::{Criterion, Kept, KeptReason, SweepPlan, Swept, Tally};
    let cargo = process(4300, 1, "/usr/bin/cargo", &["cargo", "build", "--release"]);
    let plan = SweepPlan {
        by_criterion: vec![
            (
                Criterion::Orphan,
                Tally { units: 2, files: 2, bytes: 81_920 },
                vec![
                    "debug/deps/app-1d2f3a4b5c6d7e8f.app.3ub6-cgu.0.rcgu.o".into(),
                    "debug/deps/libold-0a1b2c3d4e5f6a7b.rlib".into(),
                ],
            ),
            (Criterion::UninstalledToolchain, Tally::default(), vec![]),
            (
                Criterion::OtherToolchain,
                Tally { units: 6, files: 47, bytes: 43_576_398 },
                (1..=6).map(|i| format!("debug/dep{i}-5dac3488317744{i:02}")).collect(),
            ),
            (
                Criterion::OlderThan,
                Tally { units: 1, files: 9, bytes: 1_048_576 },
                vec!["debug/incremental/app-0itxg373mx06j".into()],
            ),
        ],
        kept: vec![
            Kept {
                unit: Some("debug/app-9517d73897b5767e".into()),
                profile: "debug".into(),
                reason: KeptReason::Held,
                pid: Some(4242),
                path: Some("/w/target/debug/deps/app-9517d73897b5767e".into()),
            },
            Kept {
                unit: None,
                profile: "release".into(),
                reason: KeptReason::Locked,
                pid: Some(4300),
                path: Some("/w/target/release/.cargo-lock".into()),
            },
        ],
    };
    let swept = Swept { units: 9, files: 58, bytes: 44_706_894, plan: plan.clone(), free_space: None };
    let run = |dry_run: bool| {
        let mut events = vec![
            Event::Dirs(dirs(None)),
            Event::WaitingForCargoLock {
                lock: "/w/target/release/.cargo-lock".into(),
                holder: Some(cargo.clone()),
                timeout: Duration::from_secs(30),
            },
            Event::Warning(
                "skipped the profile release: /w/target/release/.cargo-lock was still held after 30s \
                 (--lock-timeout), by pid 4300 cargo (cargo build --release)"
                    .into(),
            ),
            Event::SweepPlanned { plan: plan.clone(), dry_run },
        ];
        let mut summary =
            Summary { dirs: Some(dirs(None)), swept: Some(swept.clone()), ..Summary::empty(Mode::Sweep, dry_run, 0) };
        if !dry_run {
            let removed = Removed { files: 58, bytes: 44_706_894, duration_ms: 41 };
            let verified = Verified { exit_code: Some(0), duration_ms: 310, interrupted: false };
            events.extend([
                Event::VerifyStarted { command: "cargo check".into() },
                Event::Removed(removed),
                Event::Verified(verified),
            ]);
            summary.removed = Some(removed);
            summary.verify = Some(verified);
        }
        events.push(Event::Swept(swept.clone()));
        (events, summary)
    };
    let (events, summary) = run(true);
    insta::assert_snapshot!("sweep_dry_run_human", human(&events, &summary).0);
    let verbose = replay_run(Format::Human, Style { verbose: 1, ..PLAIN }, &events, &summary).1;
    assert!(verbose.contains("debug/dep3-5dac348831774403"), "-v names each unit: {verbose}");
    let (events, summary) = run(false);
    let (text, quiet) = human(&events, &summary);
    insta::assert_snapshot!("sweep_human", text);
    assert!(quiet.starts_with("warning: skipped the profile release"), "{quiet}");
    let (stdout, _) = replay_run(Format::Json, PLAIN, &events, &summary);
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[lines.len() - 2]["reason"], "swept", "the swept line comes right before the summary");
    insta::assert_snapshot!("sweep_json_stdout", stdout);
    let step = tempfile::NamedTempFile::new().unwrap();
    replay_run(Format::Github { step_summary: Some(step.path().to_path_buf()) }, PLAIN, &events, &summary);
    insta::assert_snapshot!("sweep_github_step_summary", std::fs::read_to_string(step.path()).unwrap());
    for line in text.lines().filter(|l| !l.starts_with("warning:")) {
        assert!(line.chars().count() <= 100, "{} columns: {line}", line.chars().count());
    }
}
