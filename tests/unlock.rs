//! `--unlock`: the owners of cargo's locks (package cache, build and artifact dirs) are stopped, their waiters and
//! mere openers are not, and nothing is deleted.

mod common;

// Only the Linux tests read what a lock waiter says.
#[cfg(target_os = "linux")]
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// A private cargo home with its package cache lock file.
fn cargo_home() -> (tempfile::TempDir, PathBuf) {
    let home = tempfile::Builder::new().prefix("safeclean-cargo-home-").tempdir().unwrap();
    let lock = home.path().join(".package-cache");
    std::fs::write(&lock, "").unwrap();
    (home, lock)
}

/// A file in target/ whose inode proves the target dir was not touched.
fn marker(ws: &Ws) -> (PathBuf, u64) {
    let m = ws.target().join("debug/marker");
    std::fs::write(&m, "warm cache").unwrap();
    let inode = std::fs::metadata(&m).unwrap().ino();
    (m, inode)
}

fn still_there(marker: &(PathBuf, u64)) -> bool {
    std::fs::metadata(&marker.0).is_ok_and(|m| m.ino() == marker.1)
}

/// The holder fixture renamed `cargo`, as the processes that hold cargo's locks are.
fn fake_cargo(dir: &Path) -> PathBuf {
    holder_named(dir, "cargo")
}

#[test]
fn the_owner_of_the_package_cache_is_killed_and_nothing_is_deleted() {
    let ws = Ws::new(false);
    ws.build();
    let marker = marker(&ws);
    let (home, lock) = cargo_home();
    let bin = tempfile::tempdir().unwrap();
    let mut rv = Rendezvous::new();
    let mut owner = rv.holder(&fake_cargo(bin.path()), &["--lock", lock.to_str().unwrap(), "--ignore-term"]);

    let out = ws
        .safeclean(&["--unlock", "--grace", "1s", "--message-format", "json"])
        .env("CARGO_HOME", home.path())
        .output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(owner.dies_within(Duration::from_secs(5)), "the owner survived");
    let s = summary(&out);
    assert_eq!(s["mode"], "unlock");
    let h = &s["holders"][0];
    assert_eq!((h["pid"].as_u64(), h["kind"].as_str()), (Some(u64::from(owner.pid)), Some("cargo")), "{s}");
    assert_eq!(h["handles"][0]["lock"], "package-cache");
    assert_eq!(h["outcome"], "killed", "it ignored SIGTERM, so SIGKILL after the grace period");
    assert_eq!(s["removed"], serde_json::Value::Null);
    assert_eq!(s["verify"]["exit_code"], 0);
    assert!(!stderr(&out).contains("Blocking waiting for file lock"), "{}", stderr(&out));
    assert!(still_there(&marker), "--unlock deleted something");
}

#[test]
fn a_process_with_a_registry_file_open_holds_no_lock() {
    let ws = Ws::new(false);
    ws.build();
    let (home, _lock) = cargo_home();
    let crate_file = home.path().join("registry/cache/index.crates.io/x-1.0.0.crate");
    std::fs::create_dir_all(crate_file.parent().unwrap()).unwrap();
    let bin = tempfile::tempdir().unwrap();
    let mut rv = Rendezvous::new();
    let mut reader = rv.holder(&fake_cargo(bin.path()), &["--open", crate_file.to_str().unwrap()]);
    let out = ws
        .safeclean(&["--unlock", "--no-verify", "--message-format", "json"])
        .env("CARGO_HOME", home.path())
        .output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(summary(&out)["holders"].as_array().unwrap().len(), 0);
    assert!(!reader.dies_within(Duration::from_millis(100)), "a reader of the registry was stopped");
}

#[test]
fn a_hung_build_is_stopped_and_the_target_keeps_its_contents() {
    let ws = Ws::new(true);
    ws.build();
    let marker = marker(&ws);
    // A private cargo home, so that `--unlock` reaches no cargo of the other tests.
    let (home, _) = cargo_home();
    let mut rv = Rendezvous::new();
    let mut script = rv.spawn(ws.cargo(&["build"]).env(HANG, &rv.path).env("CARGO_HOME", home.path()));
    let mut tool = ws.safeclean(&["--unlock", "--grace", "5s", "--message-format", "json"]);
    let out = output_within(tool.env("CARGO_HOME", home.path()), PATIENCE);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(script.dies_within(Duration::from_secs(5)), "the build script survived");
    let s = summary(&out);
    let kinds: Vec<&str> = s["holders"].as_array().unwrap().iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"cargo") && kinds.contains(&"build-child"), "{kinds:?}");
    let cargo = s["holders"].as_array().unwrap().iter().find(|h| h["kind"] == "cargo").unwrap();
    let locks: Vec<&str> = cargo["handles"].as_array().unwrap().iter().filter_map(|h| h["lock"].as_str()).collect();
    assert!(locks.contains(&"build-directory"), "{cargo}");
    assert!(still_there(&marker), "--unlock deleted something");
    assert_eq!(s["verify"]["exit_code"], 0);
}

#[test]
fn a_dry_run_says_who_blocks_and_changes_nothing() {
    let ws = Ws::new(false);
    ws.build();
    let (home, lock) = cargo_home();
    let bin = tempfile::tempdir().unwrap();
    let mut rv = Rendezvous::new();
    let mut owner =
        rv.holder(&fake_cargo(bin.path()), &["--lock", lock.to_str().unwrap(), "--cwd", bin.path().to_str().unwrap()]);
    let out = ws.safeclean(&["--unlock", "--dry-run", "-v"]).env("CARGO_HOME", home.path()).output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stderr(&out);
    // The holder's line, and the long form under it.
    let mut lines = text.lines().skip_while(|l| !l.contains(&format!("(pid {}):", owner.pid)));
    let first = lines.next().unwrap_or_else(|| panic!("{text}"));
    let line = std::iter::once(first).chain(lines.take_while(|l| l.starts_with("             "))).collect::<Vec<_>>();
    let line = line.join("\n");
    assert!(first.trim_start().starts_with("Would stop") && first.contains("holds the package-cache lock"), "{line}");
    assert!(line.contains(&format!("holds the package-cache lock {}", lock.display())), "{line}");
    assert!(line.contains(&format!("in {}", bin.path().canonicalize().unwrap().display())), "where it runs: {line}");
    assert!(line.contains("running for"), "{line}");
    assert!(!owner.dies_within(Duration::from_millis(100)));
}

/// Waits (bounded) until `/proc/locks` shows `pid` blocked waiting for a lock.
#[cfg(target_os = "linux")]
fn blocked_in_flock(pid: u32) {
    let deadline = std::time::Instant::now() + PATIENCE;
    let waits = || {
        std::fs::read_to_string("/proc/locks")
            .unwrap()
            .lines()
            .any(|l| l.contains(" -> ") && l.split_whitespace().nth(5) == Some(&pid.to_string()))
    };
    while !waits() {
        assert!(std::time::Instant::now() < deadline, "pid {pid} never blocked in flock");
        std::thread::yield_now();
    }
}

/// An owner of the package cache lock that ignores SIGTERM, and a process blocked waiting for it (`waiter_args`
/// added), then `--unlock`: the owner is gone, and the waiter was never signalled. Returns the run's output and the
/// waiter.
#[cfg(target_os = "linux")]
fn unlock_with_a_waiter(waiter_args: &[&str]) -> (Ws, Rendezvous, std::process::Output, Ready) {
    let ws = Ws::new(false);
    ws.build();
    let (rv, out, waiter) = owner_and_waiter(waiter_args, |home| {
        let mut tool = ws.safeclean(&["--unlock", "--grace", "1s", "--no-verify", "--message-format", "json"]);
        tool.env("CARGO_HOME", home).output_bounded()
    });
    (ws, rv, out, waiter)
}

/// [`unlock_with_a_waiter`] with the run made by `run`, given the cargo home.
#[cfg(target_os = "linux")]
fn owner_and_waiter(
    waiter_args: &[&str],
    run: impl FnOnce(&Path) -> std::process::Output,
) -> (Rendezvous, std::process::Output, Ready) {
    let (home, lock) = cargo_home();
    let bin = tempfile::tempdir().unwrap();
    let exe = fake_cargo(bin.path());
    let mut rv = Rendezvous::new();
    let mut owner = rv.holder(&exe, &["--lock", lock.to_str().unwrap(), "--ignore-term"]);
    let waiter = rv.holder(&exe, &[&["--wait-lock", lock.to_str().unwrap()][..], waiter_args].concat());
    blocked_in_flock(waiter.pid);
    let out = run(home.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(owner.dies_within(Duration::from_secs(5)));
    let lines = json_lines(&out);
    assert!(!lines.iter().any(|l| l["reason"] == "signal" && l["pid"] == waiter.pid), "the waiter was signalled");
    (rv, out, waiter)
}

#[cfg(target_os = "linux")]
#[test]
fn a_waiter_is_not_signalled_and_gets_the_lock_when_the_owner_dies() {
    let (_ws, _rv, out, waiter) = unlock_with_a_waiter(&[]);
    let s = summary(&out);
    let w = s["holders"].as_array().unwrap().iter().find(|h| h["pid"] == waiter.pid).expect("the waiter is listed");
    assert_eq!((w["verdict"].as_str(), w["outcome"].as_str()), (Some("spare"), Some("spared")));
    // `/proc/locks` shows who waits; lsof shows a waiter as one more process with the file open.
    let sees_waiters = platform().sees_lock_waiters();
    assert_eq!(w["handles"][0]["waiting"].as_bool(), sees_waiters.then_some(true), "{w}");
    // It gets the lock and exits by itself.
    let mut said = String::new();
    BufReader::new(waiter.into_stream()).read_line(&mut said).unwrap();
    assert_eq!(said.trim(), "locked");
}

#[cfg(target_os = "linux")]
#[test]
fn a_waiter_that_takes_the_lock_once_the_owner_is_stopped_is_left_alone() {
    // A build that was waiting, and goes on with the lock once it has it.
    let (_ws, _rv, out, mut waiter) = unlock_with_a_waiter(&["--keep"]);
    let s = summary(&out);
    let entries: Vec<_> = s["holders"].as_array().unwrap().iter().filter(|h| h["pid"] == waiter.pid).collect();
    assert_eq!(entries.len(), 1, "each pid once: {s}");
    assert_eq!((entries[0]["verdict"].as_str(), entries[0]["outcome"].as_str()), (Some("spare"), Some("spared")));
    assert!(!waiter.dies_within(Duration::from_millis(200)), "the build that took the lock goes on");
}

#[test]
fn a_posix_lock_on_the_package_cache_blocks_no_cargo_and_is_left_alone() {
    let ws = Ws::new(false);
    ws.build();
    let (home, lock) = cargo_home();
    let bin = tempfile::tempdir().unwrap();
    let mut rv = Rendezvous::new();
    let mut posix = rv.holder(&fake_cargo(bin.path()), &["--posix-lock", lock.to_str().unwrap()]);
    let out = ws
        .safeclean(&["--unlock", "--no-verify", "--message-format", "json"])
        .env("CARGO_HOME", home.path())
        .output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!json_lines(&out).iter().any(|l| l["reason"] == "signal"), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(!posix.dies_within(Duration::from_millis(200)), "a POSIX lock holder was stopped");
}

#[test]
fn a_shared_holder_is_named_with_advice_that_is_true() {
    let ws = Ws::new(false);
    ws.build();
    let (home, lock) = cargo_home();
    let bin = tempfile::tempdir().unwrap();
    let mut rv = Rendezvous::new();
    let mut sharer = rv.holder(&fake_cargo(bin.path()), &["--flock-shared", lock.to_str().unwrap()]);
    for extra in [&[][..], &["--all-holders"]] {
        let out = ws
            .safeclean(&[&["--unlock", "--no-verify"][..], extra].concat())
            .env("CARGO_HOME", home.path())
            .output_bounded();
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{text}");
        assert!(text.contains(&format!("kill {}", sharer.pid)), "{text}");
        assert!(!text.contains("--all-holders stops it"), "advice that is not true for a sharer: {text}");
    }
    assert!(!sharer.dies_within(Duration::from_millis(100)));
}

/// A temporary dir with no Cargo.toml in it or above it: no workspace.
fn nowhere() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("safeclean-nowhere-").tempdir().unwrap();
    let above = dir.path().ancestors().map(|d| d.join("Cargo.toml")).find(|m| m.exists());
    assert_eq!(above, None, "the temp dir lies in a workspace; set TMPDIR to a dir outside any");
    dir
}

/// `cargo safeclean ARGS` in `dir`, with `home` as cargo's home.
fn safeclean_in(dir: &Path, home: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(safeclean_exe());
    clean_env(&mut cmd).arg("safeclean").args(args).current_dir(dir).env("CARGO_HOME", home);
    cmd.stdin(std::process::Stdio::null());
    cmd
}

/// A `cargo install` stuck on "Blocking waiting for file lock on package cache" in a dir that is no workspace:
/// `--unlock` frees cargo's home all the same. It guesses no target dir, and has no workspace to check.
#[cfg(target_os = "linux")]
#[test]
fn outside_any_workspace_the_package_cache_owner_is_stopped_and_its_waiter_spared() {
    let dir = nowhere();
    let (_rv, out, waiter) = owner_and_waiter(&[], |home| {
        safeclean_in(dir.path(), home, &["--unlock", "--grace", "1s", "--message-format", "json"]).output_bounded()
    });
    let s = summary(&out);
    assert_eq!((s["mode"].as_str(), s["exit_code"].as_i64()), (Some("unlock"), Some(0)), "{s}");
    assert!(s["target_dir"].is_null() && s["build_dir"].is_null(), "no target dir is guessed: {s}");
    let owner = s["holders"].as_array().unwrap().iter().find(|h| h["verdict"] == "terminate").expect("the owner");
    assert_eq!((owner["kind"].as_str(), owner["outcome"].as_str()), (Some("cargo"), Some("killed")), "{owner}");
    assert_eq!(owner["handles"][0]["lock"], "package-cache");
    let w = s["holders"].as_array().unwrap().iter().find(|h| h["pid"] == waiter.pid).expect("the waiter is listed");
    assert_eq!((w["verdict"].as_str(), w["outcome"].as_str()), (Some("spare"), Some("spared")));
    assert!(s["verify"].is_null(), "nothing to verify outside a workspace: {s}");
    let text = stderr(&out);
    assert!(text.contains(&format!("no Cargo.toml in {}", dir.path().display())), "{text}");
    assert!(text.contains("nothing to verify, `cargo check` skipped"), "the skipped check is said: {text}");
    assert!(!text.contains("Blocking waiting"), "{text}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "something was made where the run was");
    let mut said = String::new();
    BufReader::new(waiter.into_stream()).read_line(&mut said).unwrap();
    assert_eq!(said.trim(), "locked", "the waiter gets the lock");
}

#[test]
fn outside_any_workspace_a_dry_run_says_who_holds_the_package_cache_and_changes_nothing() {
    let dir = nowhere();
    let (home, lock) = cargo_home();
    let bin = tempfile::tempdir().unwrap();
    let mut rv = Rendezvous::new();
    let mut owner = rv.holder(&fake_cargo(bin.path()), &["--lock", lock.to_str().unwrap()]);
    let out = safeclean_in(dir.path(), home.path(), &["--unlock", "--dry-run"]).output_bounded();
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = text.lines().find(|l| l.contains(&format!("(pid {}):", owner.pid))).unwrap_or_else(|| panic!("{text}"));
    assert!(line.trim_start().starts_with("Would stop cargo"), "{line}");
    assert!(line.contains("holds the package-cache lock"), "{line}");
    assert!(!text.contains("nothing to verify"), "a dry run verifies nothing anyway: {text}");
    let json =
        safeclean_in(dir.path(), home.path(), &["--unlock", "--dry-run", "--message-format", "json"]).output_bounded();
    let s = summary(&json);
    assert!(s["target_dir"].is_null() && s["dry_run"] == true, "{s}");
    assert_eq!(s["holders"][0]["outcome"], "would-terminate", "{s}");
    assert!(!owner.dies_within(Duration::from_millis(100)), "a dry run stopped the owner");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Only a sure absence of any workspace makes `--unlock` free cargo's home alone: a workspace named and missing, a
/// `--target-dir` without a workspace, or a Cargo.toml cargo cannot read are errors, and no one is signalled.
#[test]
fn outside_any_workspace_a_named_workspace_that_is_not_there_is_still_an_error() {
    let dir = nowhere();
    let (home, lock) = cargo_home();
    let bin = tempfile::tempdir().unwrap();
    let mut rv = Rendezvous::new();
    let mut owner = rv.holder(&fake_cargo(bin.path()), &["--lock", lock.to_str().unwrap()]);
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("Cargo.toml"), "this is no manifest").unwrap();
    let missing = dir.path().join("gone/Cargo.toml");
    for (at, args, says) in [
        (dir.path(), &["--manifest-path", missing.to_str().unwrap()][..], missing.to_str().unwrap()),
        (dir.path(), &["--target-dir", "."][..], "run this inside a cargo workspace"),
        (broken.path(), &[][..], "Cargo.toml"),
    ] {
        let out = safeclean_in(at, home.path(), &[&["--unlock", "--no-verify"][..], args].concat()).output_bounded();
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
        assert!(!text.contains("looks only at"), "{args:?}: {text}");
    }
    assert!(!owner.dies_within(Duration::from_millis(100)), "a run that failed stopped the owner");
}
