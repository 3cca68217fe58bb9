//! What a person sees on a terminal: the tool run inside tmux on a 100-column pane, its screen read as it runs.
//! tmux runs on a socket of the test's own, and its server is ended by that socket when the test ends.

// The fixtures and the pipeline these tests drive are Unix only so far (see the README's Platforms).
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// A tmux server of this test's own, ended when the test ends.
struct Tmux {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmux {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Tmux { socket: dir.path().join("tmux.sock"), _dir: dir }
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket).env_remove("TMUX");
        cmd
    }

    /// Starts `argv` in a detached 100×30 pane in `cwd`, with only the environment a person's shell would give it.
    fn start(&self, cwd: &Path, argv: &[String]) {
        let mut cmd = self.cmd();
        cmd.args(["-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "30", "-c"]).arg(cwd).arg("--");
        cmd.args(["env", "-i", "TERM=xterm-256color"]);
        for var in ["PATH", "HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
            if let Some(v) = std::env::var_os(var) {
                cmd.arg(format!("{var}={}", v.to_string_lossy()));
            }
        }
        cmd.arg(format!("CARGO={}", env!("CARGO"))).args(argv);
        let out = cmd.output().expect("tmux is installed (.ci/run installs it)");
        assert!(out.status.success(), "tmux: {}", String::from_utf8_lossy(&out.stderr));
        // Keep the pane, and what it shows, after the tool exits.
        let set = self.cmd().args(["set-option", "-g", "remain-on-exit", "on"]).output().unwrap();
        assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    }

    /// The screen as it is now.
    fn screen(&self) -> String {
        let out = self.cmd().args(["capture-pane", "-p"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Reads the screen until `done` says it shows what was awaited, at most `limit`; every screen read goes to
    /// `seen`.
    fn watch(&self, limit: Duration, seen: &mut Vec<String>, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            seen.push(screen.clone());
            if done(&screen) || Instant::now() > deadline {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

/// The number of seconds a countdown line shows (`SIGKILL in 3s`), if the screen has one.
fn countdown(screen: &str) -> Option<u64> {
    let rest = &screen[screen.find("SIGKILL in ")? + "SIGKILL in ".len()..];
    rest.split('s').next()?.parse().ok()
}

#[test]
fn the_grace_period_counts_down_on_a_terminal() {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    // A test binary that ignores SIGTERM, running from target/.
    let mut held = rv.holder(&ws.install_holder("target/debug/stubborn"), &["--ignore-term"]);
    let tmux = Tmux::new();
    let argv = ["safeclean", "--grace", "3s", "--no-verify"].map(String::from);
    let argv: Vec<String> = std::iter::once(safeclean_exe().display().to_string()).chain(argv).collect();
    tmux.start(ws.root(), &argv);

    let mut seen = Vec::new();
    let end = tmux.watch(Duration::from_mins(1), &mut seen, |s| s.contains("Summary"));
    assert!(held.dies_within(Duration::from_secs(5)), "the holder that ignores SIGTERM was not killed:\n{end}");
    let counts: Vec<u64> = seen.iter().filter_map(|s| countdown(s)).collect();
    assert!(counts.contains(&3), "the countdown starts at the grace period: {counts:?}\n{end}");
    assert!(counts.iter().any(|&c| c < 3), "the countdown counts down: {counts:?}\n{end}");
    let counting = seen.iter().find(|s| countdown(s).is_some()).unwrap();
    assert!(counting.contains("Waiting") && counting.contains("unless stubborn"), "says for what:\n{counting}");
    assert!(end.contains("Killed") && end.contains("Summary stopped 1 process (1 killed)"), "{end}");
    assert!(countdown(&end).is_none(), "the countdown is gone once it is over:\n{end}");
    for line in end.lines() {
        assert!(line.chars().count() <= 100, "wider than the pane: {line}");
    }
}
