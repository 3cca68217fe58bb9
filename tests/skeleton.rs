//! The walking skeleton end to end: a real cargo, real processes, real target dirs.

// The fixtures and the pipeline these tests drive are Unix only so far (see the README's Platforms).
#![cfg(unix)]

mod common;

use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn hung_build_is_stopped_target_recreated_and_verified() {
    let ws = Ws::new(true);
    ws.build();
    std::fs::write(ws.target().join("debug/marker"), "old").unwrap();
    let mut rv = Rendezvous::new();
    let mut build_script = rv.spawn(ws.cargo(&["build"]).env(HANG, &rv.path));

    let out = output_within(&mut ws.safeclean(&["--message-format", "json", "--grace", "10s"]), PATIENCE);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(build_script.dies_within(Duration::from_secs(5)), "the build script survived");

    let s = summary(&out);
    let kinds: Vec<&str> = s["holders"].as_array().unwrap().iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"cargo") && kinds.contains(&"build-script"), "{kinds:?}");
    for h in s["holders"].as_array().unwrap() {
        assert!(matches!(h["outcome"].as_str(), Some("exited-after-sigterm" | "killed")), "{h}");
        assert_eq!(h["verdict"], "terminate");
        for field in ["pid", "name", "kind", "cmdline", "handles"] {
            assert!(!h[field].is_null(), "holder lacks {field}: {h}");
        }
    }
    let cargo_holder = s["holders"].as_array().unwrap().iter().find(|h| h["kind"] == "cargo").unwrap();
    assert!(
        cargo_holder["handles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["path"].as_str().unwrap().ends_with(".cargo-lock")),
        "cargo is found by its lock file: {cargo_holder}"
    );
    assert!(!alive(build_script.pid));
    assert!(ws.target().join("CACHEDIR.TAG").is_file());
    assert!(!ws.target().join("debug/marker").exists());
    assert_eq!(s["verify"]["exit_code"], 0);
    assert_eq!(s["exit_code"], 0);
    assert_eq!(s["target_dir"], ws.target().to_str().unwrap());
    assert!(s["removed"]["files"].as_u64().unwrap() > 0);
    assert!(!tree(&ws.target()).iter().any(|p| p.to_string_lossy().contains("safeclean-trash")));

    // Every line is JSON with a reason; events come before the summary.
    let reasons: Vec<String> = json_lines(&out).iter().map(|l| l["reason"].as_str().unwrap().to_string()).collect();
    for r in ["holder", "signal", "exited", "removed", "verify"] {
        assert!(reasons.iter().any(|x| x == r), "no {r} event in {reasons:?}");
    }
    // The lock is free again: a normal build finishes.
    let next = output_within(&mut ws.cargo(&["build"]), PATIENCE);
    assert!(next.status.success(), "{}", stderr(&next));
}

#[test]
fn stubborn_holder_is_killed_after_grace_and_stopped_one_dies_at_once() {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    let stubborn = ws.install_holder("target/debug/stubborn");
    let mut s1 = rv.holder(&stubborn, &["--ignore-term"]);
    let sleeper = ws.install_holder("target/debug/sleeper");
    let mut s2 = rv.holder(&sleeper, &[]);
    send(s2.pid, rustix::process::Signal::STOP);

    let start = Instant::now();
    let out = output_within(&mut ws.safeclean(&["--message-format", "json", "--grace", "2s", "--no-verify"]), PATIENCE);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(start.elapsed() >= Duration::from_secs(2));
    assert!(s1.dies_within(Duration::from_secs(5)) && s2.dies_within(Duration::from_secs(5)));
    let lines = json_lines(&out);
    let exited = |pid: u32| lines.iter().find(|l| l["reason"] == "exited" && l["pid"] == pid).unwrap().clone();
    assert_eq!(exited(s1.pid)["outcome"], "killed");
    assert!(exited(s1.pid)["after_ms"].as_u64().unwrap() >= 2000);
    assert_eq!(exited(s2.pid)["outcome"], "exited-after-sigterm");
    assert!(exited(s2.pid)["after_ms"].as_u64().unwrap() < 1000, "SIGCONT woke the stopped process at once");
    let s = summary(&out);
    let kinds: Vec<&str> = s["holders"].as_array().unwrap().iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["target-binary", "target-binary"]);
}

#[test]
fn other_workspaces_and_processes_named_cargo_are_left_alone() {
    let ws = Ws::new(false);
    ws.build();
    let other = Ws::new(true);
    other.build();
    let mut rv = Rendezvous::new();
    let mut other_script = rv.spawn(other.cargo(&["build"]).env(HANG, &rv.path));
    // A process named cargo, holding nothing under ws's target.
    let bin = tempfile::tempdir().unwrap();
    let fake_cargo = holder_named(bin.path(), "cargo");
    let mut named_cargo = rv.holder(&fake_cargo, &["--cwd", bin.path().to_str().unwrap()]);
    let holder = ws.install_holder("target/debug/holder");
    let mut mine = rv.holder(&holder, &[]);

    let out = output_within(&mut ws.safeclean(&["--grace", "5s", "--no-verify"]), PATIENCE);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(mine.dies_within(Duration::from_secs(5)));
    assert!(!other_script.dies_within(Duration::from_millis(200)), "a hung build of another workspace was stopped");
    assert!(alive(other_script.pid));
    assert!(!named_cargo.dies_within(Duration::from_millis(50)));
    assert!(alive(named_cargo.pid), "a process was stopped for its name");
}

#[test]
fn symlinks_inside_target_are_removed_not_followed() {
    let ws = Ws::new(false);
    ws.build();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(outside.path().join("dir")).unwrap();
    std::fs::write(outside.path().join("dir/precious"), "keep me").unwrap();
    std::fs::write(outside.path().join("file"), "keep me too").unwrap();
    symlink(outside.path().join("dir"), ws.target().join("debug/link-to-dir")).unwrap();
    symlink(outside.path().join("file"), ws.target().join("link-to-file")).unwrap();
    let out = ws.run(&["--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(outside.path().join("dir/precious")).unwrap(), "keep me");
    assert_eq!(std::fs::read_to_string(outside.path().join("file")).unwrap(), "keep me too");
    assert!(!ws.target().join("debug").exists());
}

#[test]
fn dry_run_and_no_kill_change_nothing() {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    let exe = ws.install_holder("target/debug/holder");
    let mut h = rv.holder(&exe, &["--open", ws.target().join("debug/held.txt").to_str().unwrap()]);
    let before = tree(&ws.target());

    let dry = ws.run(&["--dry-run", "--message-format", "json"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let s = summary(&dry);
    assert_eq!(s["dry_run"], true);
    assert_eq!(s["holders"][0]["outcome"], "would-terminate");
    assert_eq!(s["removed"], serde_json::Value::Null);
    assert_eq!(tree(&ws.target()), before);
    assert!(!h.dies_within(Duration::from_millis(50)));

    // The human dry run names the dir it would remove, with what is in it.
    let human = ws.run(&["--dry-run"]);
    let files = tree(&ws.target()).iter().filter(|p| !ws.target().join(p).symlink_metadata().unwrap().is_dir()).count();
    let text = stderr(&human);
    let files = if files == 1 { "1 file, ".to_string() } else { format!("{files} files, ") };
    assert!(text.contains(&format!("Would remove target/ ({files}")), "{files}: {text}");
    assert!(
        text.lines().any(|l| l.contains("Would stop holder ") && l.contains(&format!("(pid {})", h.pid))),
        "{text}"
    );

    let no_kill = ws.run(&["--no-kill"]);
    assert_eq!(no_kill.status.code(), Some(4), "{}", stderr(&no_kill));
    assert!(stderr(&no_kill).contains("--no-kill"), "{}", stderr(&no_kill));
    assert!(stderr(&no_kill).contains("Would stop holder"), "not `Stopping`: {}", stderr(&no_kill));
    assert_eq!(tree(&ws.target()), before);
    assert!(alive(h.pid));
}

#[test]
fn guard_refuses_what_is_not_a_target_home_and_the_workspace() {
    let ws = Ws::new(false);
    ws.build();
    let not_target = tempfile::tempdir().unwrap();
    std::fs::write(not_target.path().join("notes.txt"), "mine").unwrap();
    let out = ws.run(&["--target-dir", not_target.path().to_str().unwrap(), "--no-verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        says(&out, "error", "does not look like a cargo target") && says(&out, "help", "--force"),
        "{}",
        stderr(&out)
    );
    assert!(not_target.path().join("notes.txt").exists());

    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("CACHEDIR.TAG"), "Signature: 8a477f597d28d172789f06886806bc55\n").unwrap();
    let out = ws
        .safeclean(&["--target-dir", home.path().to_str().unwrap(), "--force"])
        .env("HOME", home.path())
        .output_bounded();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("home directory"));
    assert!(home.path().join("CACHEDIR.TAG").exists());

    for dir in [".", ".."] {
        let out = ws.run(&["--target-dir", dir, "--force"]);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(stderr(&out).contains("workspace root"), "{}", stderr(&out));
    }
    assert!(ws.root().join("Cargo.toml").exists() && ws.target().join("debug").exists());
}

#[test]
fn only_if_held_keeps_an_unheld_target() {
    let ws = Ws::new(false);
    ws.build();
    std::fs::write(ws.target().join("debug/marker"), "cache").unwrap();
    let out = ws.run(&["--only-if-held"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(ws.target().join("debug/marker").exists());

    let mut rv = Rendezvous::new();
    let exe = ws.install_holder("target/debug/holder");
    let mut h = rv.holder(&exe, &[]);
    let out = ws.run(&["--only-if-held", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(h.dies_within(Duration::from_secs(5)));
    assert!(!ws.target().join("debug/marker").exists());
}

#[test]
fn missing_target_is_created_and_verified() {
    let ws = Ws::new(false);
    let out = ws.run(&["--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(summary(&out)["verify"]["exit_code"], 0);
    assert!(ws.target().join("CACHEDIR.TAG").is_file());
    assert!(ws.target().join("debug").is_dir(), "cargo check ran into the new target dir");
}

#[test]
fn failing_check_exits_6_and_pass_through_arguments_reach_cargo() {
    let ws = Ws::new(false);
    ws.build();
    std::fs::write(ws.root().join("src/lib.rs"), "pub fn broken() -> u32 { \"no\" }\n").unwrap();
    let out = ws.run(&[]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("mismatched types"), "cargo's output is shown: {}", stderr(&out));
    let out = ws.run(&["--", "--package", "no-such-package"]);
    assert_eq!(out.status.code(), Some(6));
    assert!(stderr(&out).contains("no-such-package"), "{}", stderr(&out));
}

#[test]
fn version_help_and_usage_errors() {
    let ws = Ws::new(false);
    let v = ws.run(&["--version"]);
    assert_eq!(v.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&v.stdout).contains(env!("CARGO_PKG_VERSION")));
    let help = String::from_utf8_lossy(&ws.run(&["--help"]).stdout).into_owned();
    for flag in [
        "--manifest-path",
        "--target-dir",
        "--dry-run",
        "--grace",
        "--kill-timeout",
        "--no-kill",
        "--all-holders",
        "--only-if-held",
        "--no-verify",
        "--force",
        "--message-format",
        "--color",
        "--quiet",
        "--verbose",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    assert_eq!(ws.run(&["--grace", "soon"]).status.code(), Some(2));
    // Run directly, without the word cargo passes.
    let direct = std::process::Command::new(safeclean_exe()).arg("--version").output_bounded();
    assert_eq!(direct.status.code(), Some(0));
}

#[test]
fn honours_manifest_path_and_cargo_target_dir() {
    let ws = Ws::new(false);
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("shared-target");
    let out = ws
        .safeclean(&["--message-format", "json", "--manifest-path", ws.root().join("Cargo.toml").to_str().unwrap()])
        .current_dir(elsewhere.path())
        .env("CARGO_TARGET_DIR", &target)
        .output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(summary(&out)["target_dir"], target.to_str().unwrap());
    assert!(target.join("CACHEDIR.TAG").is_file() && target.join("debug").is_dir());
    assert!(!ws.target().exists());
}

#[test]
fn outside_a_workspace_the_error_says_what_to_do() {
    let empty = tempfile::tempdir().unwrap();
    let out = Ws::new(false).safeclean(&[]).current_dir(empty.path()).output_bounded();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(says(&out, "help", "--manifest-path"), "{}", stderr(&out));
    assert_eq!(stderr(&out).matches("error:").count(), 1, "cargo's own `error:` is not repeated: {}", stderr(&out));
}

#[test]
fn a_spared_process_holding_cargos_lock_blocks_the_clean_and_is_named() {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    let bin = tempfile::tempdir().unwrap();
    let exe = holder_named(bin.path(), "locker");
    let lock = ws.target().join("debug/.cargo-lock");
    let mut h = rv.holder(&exe, &["--lock", lock.to_str().unwrap()]);
    let before = tree(&ws.target());
    let out = ws.run(&["--no-verify"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains(&format!("locked by pid {} locker, spared as other (--all-holders stops it)", h.pid)),
        "{text}"
    );
    assert_eq!(tree(&ws.target()), before);
    let out = ws.run(&["--no-verify", "--all-holders"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(h.dies_within(Duration::from_secs(5)));
}
