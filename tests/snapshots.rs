//! Snapshots of what people and scripts read: `--help`, and the human report, the JSON lines and the GitHub
//! Actions output of one fixed run (the events a run emits, replayed with fixed pids, paths and durations), and of
//! the same run with `--detach`.
//!
//! A change to any of them shows as a diff here; accept it with `INSTA_UPDATE=always cargo test --test snapshots`
//! (or `cargo insta review`) when it is meant, and say so in the CHANGELOG.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use cargo_safeclean::detach::Detached;
use cargo_safeclean::event::{Event, Summary};
use cargo_safeclean::model::{
    Handle, HandleKind, Hold, Holder, Kind, Left, Mode, Outcome, Process, Relation, Removed, Settled, Sig, SpareReason,
    Uninspectable, Verdict, Verified,
};
use cargo_safeclean::purge::Progress;
use cargo_safeclean::report::{Format, Output, Style, to_writers};
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
        Event::Exited { pid: 4100, outcome: Outcome::ExitedAfterSigterm, after_ms: 3 },
        Event::Signal { pid: 4101, signal: Sig::Kill },
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
            .map(|holder| Settled { outcome: Some(outcome(holder.process.pid)), holder, note: None })
            .collect(),
        uninspectable: Uninspectable { other_users: 2, own: vec![], unnamed: vec![] },
        removed: Some(Removed { files: 32586, bytes: 1_503_238_553, duration_ms: 2100 }),
        left: vec![Left {
            path: "/w/target/.safeclean-trash-1-a/.safeclean-trash-0-f".into(),
            reason: "its lock is held by pid 4400 flock (flock -s .safeclean-trash-0-f sleep 1d)".into(),
        }],
        repaired: None,
        verify: Some(Verified { exit_code: Some(0), duration_ms: 1250, interrupted: false }),
        exit_code: 5,
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
    let summary =
        Summary { removed: None, left: vec![], purge_detached: Some(detached), exit_code: 0, ..summary(&events) };
    (events, summary)
}

/// Replays the fixed run through the reporter for `format`; returns (stdout, stderr).
fn replay(format: Format, verbose: bool) -> (String, String) {
    let events = events();
    let error =
        "left a mount point inside the old tree mounted and untouched: /w/target/.safeclean-trash-1-a/debug/cache";
    replay_run(format, verbose, &events, &summary(&events), Some(&error))
}

fn replay_run(
    format: Format,
    verbose: bool,
    events: &[Event],
    summary: &Summary,
    error: Option<&dyn std::fmt::Display>,
) -> (String, String) {
    let (out, err) = (Buf::default(), Buf::default());
    let output = Output { format, style: Style { color: false, progress: false, quiet: false, verbose } };
    let reporter = to_writers(&output, Box::new(out.clone()), Box::new(err.clone()));
    for e in events {
        reporter.event(e);
    }
    reporter.finish(summary, error).unwrap();
    (out.text(), err.text())
}

#[test]
fn human_report() {
    let (stdout, stderr) = replay(Format::Human, false);
    assert_eq!(stdout, "");
    insta::assert_snapshot!("human", stderr);
    insta::assert_snapshot!("human_verbose", replay(Format::Human, true).1);
}

#[test]
fn json_lines() {
    let (stdout, stderr) = replay(Format::Json, false);
    for line in stdout.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    insta::assert_snapshot!("json_stdout", stdout);
    insta::assert_snapshot!("json_stderr", stderr);
}

#[test]
fn github_actions() {
    let step = tempfile::NamedTempFile::new().unwrap();
    let (stdout, _) = replay(Format::Github { step_summary: Some(step.path().to_path_buf()) }, false);
    insta::assert_snapshot!("github_stdout", stdout);
    insta::assert_snapshot!("github_step_summary", std::fs::read_to_string(step.path()).unwrap());
}

#[test]
fn a_detached_run() {
    let (events, summary) = detached_run();
    let (stdout, stderr) = replay_run(Format::Human, false, &events, &summary, None);
    assert_eq!(stdout, "");
    insta::assert_snapshot!("detached_human", stderr);
    let (stdout, _) = replay_run(Format::Json, false, &events, &summary, None);
    insta::assert_snapshot!("detached_json_stdout", stdout);
    let step = tempfile::NamedTempFile::new().unwrap();
    let github = Format::Github { step_summary: Some(step.path().to_path_buf()) };
    replay_run(github, false, &events, &summary, None);
    insta::assert_snapshot!("detached_github_step_summary", std::fs::read_to_string(step.path()).unwrap());
}

#[test]
fn help() {
    let out = std::process::Command::new(safeclean_exe()).arg("--help").output_bounded();
    assert!(out.status.success());
    insta::assert_snapshot!("help", String::from_utf8(out.stdout).unwrap());
}
