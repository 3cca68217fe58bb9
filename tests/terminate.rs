//! The termination engine with real processes, through both process-handle backends: the platform's own (a pidfd
//! on Linux), and the forced fallback (identity check, `kill(2)`, polling).

// The fixtures and the pipeline these tests drive are Unix only so far (see the README's Platforms).
#![cfg(unix)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use cargo_safeclean::interrupt::Interrupt;
use cargo_safeclean::model::Outcome;
use cargo_safeclean::platform::{Identity, Platform, Signals};
use cargo_safeclean::terminate::{Settings, terminate};
use common::*;
use rustix::process::Signal;

/// Runs each scenario once per backend.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod platform_signals {
            $(#[test] fn $name() { super::$name(None) })*
        }
        mod kill_fallback {
            $(#[test] fn $name() { super::$name(Some("kill")) })*
        }
    };
}

both_backends!(
    whole_tree_of_a_hung_build_dies,
    a_build_childs_own_holding_never_spares_it,
    stubborn_holders_are_killed_together,
    polite_holders_are_noticed_at_once,
    ctrl_c_during_grace_deletes_nothing,
    reused_pid_is_left_alone,
);

fn cmd_with(ws: &Ws, backend: Option<&str>, args: &[&str]) -> std::process::Command {
    let mut cmd = ws.safeclean(args);
    if let Some(b) = backend {
        cmd.env("SAFECLEAN_SIGNAL_BACKEND", b);
    }
    cmd
}

fn whole_tree_of_a_hung_build_dies(backend: Option<&str>) {
    let ws = Ws::new(true);
    ws.build();
    let mut rv = Rendezvous::new();
    let mut script = rv.spawn(ws.cargo(&["build"]).env(HANG, &rv.path).env(HANG_CHILD, "1"));
    let child = script.child.expect("the build script started a child");
    let out = output_within(&mut cmd_with(&ws, backend, &["--message-format", "json", "--grace", "1s"]), PATIENCE);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(script.dies_within(Duration::from_secs(5)));
    assert!(!alive(child), "the SIGTERM-ignoring child of the build script survived");
    let s = summary(&out);
    let by_pid = |pid: u32| s["holders"].as_array().unwrap().iter().find(|h| h["pid"] == pid).cloned();
    let c = by_pid(child).expect("the child is reported");
    assert_eq!(c["kind"], "build-child");
    assert_eq!(c["handles"].as_array().unwrap().len(), 0, "it holds nothing itself");
    assert_eq!(c["outcome"], "killed");
    assert_eq!(by_pid(script.pid).unwrap()["kind"], "build-script");
}

/// A hung build stopped with Ctrl-Z (the whole process group), whose build script's child keeps a file in
/// `OUT_DIR` open: that child is the build's, not a bystander, and goes with it.
fn a_build_childs_own_holding_never_spares_it(backend: Option<&str>) {
    let ws = Ws::new(true);
    ws.build();
    let mut rv = Rendezvous::new();
    let mut cargo = ws.cargo(&["build"]);
    let (cargo_pid, _, _) = rv.start(cargo.env(HANG, &rv.path).env(HANG_CHILD, "out").stderr(Stdio::null()));
    let mut script = rv.accept(Some(cargo_pid));
    let child = script.child.expect("the build script started a child");
    rustix::process::kill_process_group(pid_of(cargo_pid), rustix::process::Signal::STOP).unwrap();
    let out = output_within(&mut cmd_with(&ws, backend, &["--message-format", "json", "--grace", "1s"]), PATIENCE);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(script.dies_within(Duration::from_secs(5)));
    assert!(!alive(child), "the child holding a file in OUT_DIR survived");
    let s = summary(&out);
    let c = s["holders"].as_array().unwrap().iter().find(|h| h["pid"] == child).cloned().expect("reported");
    assert_eq!(c["kind"], "build-child", "{c}");
    assert!(c["handles"].as_array().unwrap().iter().any(|h| h["path"].as_str().unwrap().ends_with("held.o")), "{c}");
    assert_eq!(c["outcome"], "killed", "{c}");
}

fn stubborn_holders_are_killed_together(backend: Option<&str>) {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    let mut holders: Vec<Ready> = (0..5)
        .map(|i| {
            let exe = ws.install_holder(&format!("target/debug/stubborn-{i}"));
            rv.holder(&exe, &["--ignore-term"])
        })
        .collect();
    let start = Instant::now();
    let out = output_within(
        &mut cmd_with(&ws, backend, &["--message-format", "json", "--grace", "1s", "--no-verify"]),
        PATIENCE,
    );
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(took < Duration::from_secs(3), "five holders took {took:?}: they must be waited on together");
    for h in &mut holders {
        assert!(h.dies_within(Duration::from_secs(1)));
    }
    let s = summary(&out);
    assert!(s["holders"].as_array().unwrap().iter().all(|h| h["outcome"] == "killed"), "{s}");
}

fn polite_holders_are_noticed_at_once(backend: Option<&str>) {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    for i in 0..5 {
        let exe = ws.install_holder(&format!("target/debug/polite-{i}"));
        rv.holder(&exe, &[]);
    }
    let start = Instant::now();
    let out = output_within(
        &mut cmd_with(&ws, backend, &["--message-format", "json", "--grace", "30s", "--no-verify"]),
        PATIENCE,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(10), "the tool waited for the grace period");
    let lines = json_lines(&out);
    let exits: Vec<u64> =
        lines.iter().filter(|l| l["reason"] == "exited").map(|l| l["after_ms"].as_u64().unwrap()).collect();
    assert_eq!(exits.len(), 5);
    assert!(exits.iter().all(|ms| *ms < 1000), "exits noticed after {exits:?} ms");
    assert!(lines.iter().all(|l| l["signal"] != "SIGKILL"));
}

fn ctrl_c_during_grace_deletes_nothing(backend: Option<&str>) {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    let exe = ws.install_holder("target/debug/stubborn");
    let mut h = rv.holder(&exe, &["--ignore-term"]);
    let before = tree(&ws.target());
    let (pid, stdout, _) = rv.start(
        cmd_with(&ws, backend, &["--message-format", "json", "--grace", "60s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let lines = Lines::of(stdout.unwrap());
    // The SIGCONT event follows SIGTERM: the grace period has begun.
    lines.find(|l| l.contains("\"SIGCONT\""));
    let start = Instant::now();
    send(pid, Signal::INT);
    let rest = lines.rest();
    let status = rv.finish_adopted(pid).status;
    assert_eq!(status.code(), Some(130));
    assert!(start.elapsed() < Duration::from_secs(5), "Ctrl-C did not stop the wait");
    assert_eq!(tree(&ws.target()), before, "an interrupted run deleted something");
    assert!(!h.dies_within(Duration::from_millis(100)), "escalation went on after Ctrl-C");
    let last: serde_json::Value = serde_json::from_str(rest.last().unwrap()).unwrap();
    assert_eq!(last["exit_code"], 130);
}

fn reused_pid_is_left_alone(backend: Option<&str>) {
    let ws = Ws::new(false);
    let mut rv = Rendezvous::new();
    let exe = ws.install_holder("bin/holder");
    let mut h = rv.holder(&exe, &[]);
    let real = identity(h.pid).unwrap();
    let interrupt = Interrupt::manual().unwrap();
    let settings = Settings { grace: Duration::from_secs(1), kill_timeout: Duration::from_secs(1) };
    let default = platform();
    let platform = Platform { signals: if backend.is_some() { Signals::Kill } else { default.signals }, ..default };
    // The same pid with another start time, or another name: what the scan saw is gone and this is a stranger.
    for stranger in [
        Identity { start_time: real.start_time + 1, ..real.clone() },
        Identity { name: "someone-else".into(), ..real.clone() },
    ] {
        let done = terminate(&[stranger], settings, &platform, &interrupt, &|_| {});
        assert_eq!(done.ended[0].outcome, Outcome::AlreadyGone);
        assert!(!h.dies_within(Duration::from_millis(50)));
    }
    // With the right identity it is stopped.
    let done = terminate(&[real], settings, &platform, &interrupt, &|_| {});
    assert_eq!(done.ended[0].outcome, Outcome::ExitedAfterSigterm);
    assert!(h.dies_within(Duration::from_secs(1)));
}

#[test]
fn ctrl_c_during_verify_stops_cargo_and_a_second_one_exits_at_once() {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    // A cargo whose `check` ignores SIGINT and hangs; everything else is the real cargo.
    let wrapper = ws.root().join("cargo-wrapper.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ \"$1\" = check ]; then exec '{}' --ignore-int --notify '{}'; fi\nexec '{}' \"$@\"\n",
            holder_exe().display(),
            rv.path.display(),
            env!("CARGO")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let tool = ws.safeclean(&[]).env("CARGO", &wrapper).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = tool.id();
    rv.adopt(tool);
    let mut check = rv.accept(Some(pid));
    send(pid, Signal::INT);
    assert!(!exits_within(pid, Duration::from_millis(300)), "the tool must wait for cargo to stop");
    assert!(!check.dies_within(Duration::from_millis(10)));
    send(pid, Signal::INT);
    assert!(exits_within(pid, Duration::from_secs(5)), "a second Ctrl-C exits at once");
}

#[test]
fn ctrl_c_during_verify_lets_cargo_stop_and_the_next_run_finishes() {
    let ws = Ws::new(true);
    ws.build();
    let mut rv = Rendezvous::new();
    let (pid, _, _) = rv.start(
        ws.safeclean(&["--message-format", "json"]).env(HANG, &rv.path).stdout(Stdio::null()).stderr(Stdio::null()),
    );
    // The build script of the verifying `cargo check` says it is running.
    let mut script = rv.accept(Some(pid));
    send(pid, Signal::INT);
    assert_eq!(rv.finish_adopted(pid).status.code(), Some(130));
    assert!(script.dies_within(Duration::from_secs(5)), "cargo's build script outlived the interrupted check");
    let out = output_within(&mut ws.safeclean(&["--no-verify"]), PATIENCE);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let leftovers: Vec<_> =
        tree(&ws.target()).into_iter().filter(|p| p.to_string_lossy().contains("safeclean")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
