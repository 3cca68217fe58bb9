//! The library without the command line: a plan built by hand, run with a reporter that records every event.

// The fixtures and the pipeline these tests drive are Unix only so far (see the README's Platforms).
#![cfg(unix)]

mod common;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use cargo_safeclean::event::{Event, Summary};
use cargo_safeclean::guard::Protected;
use cargo_safeclean::interrupt::Interrupt;
use cargo_safeclean::model::{Kind, Mode, Outcome, Sig};
use cargo_safeclean::plan::Plan;
use cargo_safeclean::report::{Format, Output, Reporter, Style};
use cargo_safeclean::swap::SwapMethod;
use cargo_safeclean::{purge, terminate};
use common::*;

/// Keeps every event, to look at after the run.
#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl Reporter for Recorder {
    fn event(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }

    fn finish(&self, _: &Summary) -> std::io::Result<()> {
        Ok(())
    }
}

fn plan_for(ws: &Ws) -> Plan {
    Plan {
        mode: Mode::Clean,
        dry_run: false,
        cwd: ws.root().to_path_buf(),
        manifest_path: None,
        // Given, so that no CARGO_TARGET_DIR of the environment running the tests can move it.
        target_dir: Some(ws.target()),
        cargo: env!("CARGO").into(),
        cargo_home: None,
        force: false,
        protected: Protected::default(),
        no_kill: false,
        all_holders: false,
        only_if_held: false,
        verify: true,
        if_broken: false,
        full: false,
        check_with: "check",
        check_args: vec!["--quiet".into()],
        detach: None,
        stop: terminate::Settings { grace: Duration::from_secs(5), kill_timeout: Duration::from_secs(5) },
        platform: platform(),
        purge: purge::Settings {
            workers: 4,
            files: platform().files,
            busy: purge::Busy::Skip,
            lock_timeout: Duration::from_mins(1),
        },
        swap: SwapMethod::Exchange,
        runtime_bases: vec![std::env::temp_dir()],
        lock_timeout: Duration::from_mins(1),
        output: Output {
            format: Format::Human,
            style: Style { color: false, progress: false, quiet: true, verbose: 0, width: 100 },
        },
        sweep: None,
        if_free_below: None,
        toolchains: cargo_safeclean::plan::Toolchains::default(),
    }
}

#[test]
fn a_plan_built_by_hand_runs_the_whole_pipeline() {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    let exe = ws.install_holder("target/debug/server");
    // Not the test's child: the run is this process, and its own family is never a holder.
    let mut held = rv.orphan_holder(&exe, &[]);
    let recorder = Recorder::default();
    let (summary, result) = cargo_safeclean::run(&plan_for(&ws), &recorder, &Interrupt::manual().unwrap());
    result.unwrap();
    assert!(held.dies_within(Duration::from_secs(5)));

    assert_eq!(summary.exit_code, 0);
    assert_eq!(summary.error, None);
    assert_eq!(summary.holders.len(), 1);
    let settled = &summary.holders[0];
    assert_eq!((settled.holder.process.pid, settled.holder.kind), (held.pid, Kind::TargetBinary));
    assert_eq!(settled.outcome, Some(Outcome::ExitedAfterSigterm));
    assert!(summary.removed.unwrap().files > 0);
    assert!(summary.verify.unwrap().success());
    assert!(tree(&ws.target()).contains(&PathBuf::from("CACHEDIR.TAG")));

    let events = recorder.0.into_inner().unwrap();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            Event::Dirs(_) => "dirs",
            Event::Holder { .. } => "holder",
            Event::Scanned { .. } => "scanned",
            Event::Signal { .. } => "signal",
            Event::Exited { .. } => "exited",
            Event::PurgeStarted(_) => "purge",
            Event::Removed(_) => "removed",
            Event::VerifyStarted { .. } => "verify",
            Event::Verified(_) => "verified",
            _ => "other",
        })
        .filter(|k| *k != "other" && *k != "signal")
        .collect();
    assert_eq!(kinds, ["dirs", "holder", "scanned", "exited", "purge", "verify", "removed", "verified"]);
    // SIGTERM, then SIGCONT unless the process was already gone: kill(2) checks the identity first, and only a
    // pidfd reaches a zombie.
    let signals: Vec<Sig> =
        events.iter().filter_map(|e| if let Event::Signal { signal, .. } = e { Some(*signal) } else { None }).collect();
    assert!(matches!(signals[..], [Sig::Term] | [Sig::Term, Sig::Cont]), "{signals:?}");
}
