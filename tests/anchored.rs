//! The anchored invariant, tried as an attacker would: every byte the tool writes, removes, renames, chmods or
//! chowns lies in the tree the guard approved, whatever anyone else does to names meanwhile. Each test keeps a
//! precious tree outside the target dir and checks that its bytes, modes and owners are unchanged.
//!
//! The other user is `nobody` (uid 65534): those tests need root and are ignored otherwise (CI runs them). Races
//! are tried by repetition, a bounded number of runs in a bounded time, against an attacker looping as fast as it
//! can (`tests/support/attacker.rs`).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
// Only the Linux tests (another user racing a root run) pace themselves and pipe their children.
#[cfg(target_os = "linux")]
use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use common::*;

/// Everything under `dir` as it is: each entry's path, type, mode, owner and, for a file, its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, u32, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let bytes = if m.is_file() { std::fs::read(&p).unwrap() } else { Vec::new() };
        if m.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
        out.push((p, m.mode(), m.uid(), m.gid(), bytes));
    }
    out.sort();
    out
}

/// Another user's part in the tests: on Linux a root run borrows the rights of a tree's owner (`setfsuid`), and
/// these helpers set up trees and racing processes as `nobody`; macOS keeps the run's own rights, and the tests
/// that use them run on Linux only.
#[cfg(target_os = "linux")]
mod other_user {
    use super::*;

    pub const NOBODY: u32 = 65534;

    /// A root-owned dir outside any workspace that looks like a cargo target dir (so that only the tool's handling of
    /// names, not the guard's judgement of content, stands between it and a run), with a file in it.
    pub fn precious_target() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::Builder::new().prefix("safeclean-precious-").tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = tmp.path().join("target");
        std::fs::create_dir_all(dir.join("debug/deps")).unwrap();
        std::fs::write(dir.join(".rustc_info.json"), "{}").unwrap();
        std::fs::write(dir.join("debug/.cargo-lock"), "").unwrap();
        std::fs::write(dir.join("debug/deps/libprecious.rlib"), "precious").unwrap();
        std::fs::write(tmp.path().join("file"), "precious").unwrap();
        (tmp, dir)
    }

    /// Hands the workspace (its dir and everything in it) to `nobody`.
    pub fn give_to_nobody(ws: &Ws) {
        let ok = Command::new("chown").args(["-R", "65534:65534"]).arg(ws.dir.path()).status().unwrap();
        assert!(ok.success());
        std::fs::set_permissions(ws.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Starts the attacker fixture as `nobody` with `args`; it is killed when `rv` is dropped.
    pub fn attacker(rv: &mut Rendezvous, args: &[&std::ffi::OsStr]) -> Ready {
        rv.open_to_others();
        let exe = attacker_exe();
        let mut cmd = Command::new(exe);
        cmd.arg("--notify").arg(&rv.path).args(args).stdin(Stdio::null());
        std::os::unix::process::CommandExt::uid(&mut cmd, NOBODY);
        std::os::unix::process::CommandExt::gid(&mut cmd, NOBODY);
        rv.spawn(&mut cmd)
    }

    /// Runs the tool (as root, on a fake cargo so that each run is quick) again and again for at most `limit` or
    /// `runs` runs, and returns how many ended with each exit code. `after` checks the workspace after each run.
    pub fn hammer(
        ws: &Ws,
        runs: usize,
        limit: Duration,
        after: impl Fn(i32),
    ) -> std::collections::BTreeMap<i32, usize> {
        let cargo = ws.fake_cargo();
        let mut codes = std::collections::BTreeMap::new();
        let start = Instant::now();
        for _ in 0..runs {
            if start.elapsed() > limit {
                break;
            }
            let out = ws.safeclean(&["--no-verify", "--lock-timeout", "5s"]).env("CARGO", &cargo).output_bounded();
            let code = out.status.code().unwrap_or(-1);
            *codes.entry(code).or_default() += 1;
            let err = stderr(&out);
            assert!(!err.contains("panicked"), "{err}");
            after(code);
        }
        codes
    }
}
#[cfg(target_os = "linux")]
use other_user::*;

#[test]
#[ignore = "needs git; CI runs it with --include-ignored"]
fn a_cloned_repository_cannot_point_the_run_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().canonicalize().unwrap();
    let precious = d.join("precious");
    std::fs::create_dir_all(precious.join("keep")).unwrap();
    std::fs::write(precious.join("file"), "precious").unwrap();
    std::fs::write(precious.join("keep/inner"), "precious").unwrap();
    // A repository that carries `target -> cache`, a tag that is a link to a file outside, and a link named like
    // this tool's trash that points outside too.
    let origin = d.join("origin");
    std::fs::create_dir_all(origin.join("src")).unwrap();
    std::fs::create_dir_all(origin.join("cache/debug")).unwrap();
    std::fs::write(origin.join("Cargo.toml"), "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")
        .unwrap();
    std::fs::write(origin.join("src/lib.rs"), "").unwrap();
    std::fs::write(origin.join("cache/.rustc_info.json"), "{}").unwrap();
    std::fs::write(origin.join("cache/debug/dep-info"), "x").unwrap();
    symlink("cache", origin.join("target")).unwrap();
    symlink("../../precious/file", origin.join("cache/CACHEDIR.TAG")).unwrap();
    symlink("../../precious", origin.join("cache/.safeclean-trash-1-a")).unwrap();
    symlink("../../precious", origin.join("cache/debug/escape")).unwrap();
    let git = |dir: &Path, args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(dir)
            .output_bounded();
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    };
    git(&origin, &["init", "-q"]);
    git(&origin, &["add", "-A"]);
    git(&origin, &["commit", "-q", "-m", "hostile"]);
    git(&d, &["clone", "-q", "origin", "clone"]);
    let clone = d.join("clone");
    assert!(std::fs::symlink_metadata(clone.join("cache/CACHEDIR.TAG")).unwrap().is_symlink(), "git kept the link");

    let before = snapshot(&precious);
    let mut cmd = Command::new(safeclean_exe());
    clean_env(&mut cmd).args(["safeclean", "--no-verify"]).current_dir(&clone);
    let out = cmd.output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(snapshot(&precious), before, "nothing outside the target dir changed");
    assert!(std::fs::symlink_metadata(clone.join("target")).unwrap().is_symlink(), "the link stays");
    let tag = clone.join("cache/CACHEDIR.TAG");
    assert!(std::fs::symlink_metadata(&tag).unwrap().is_file(), "the tag is a file of its own now");
    assert!(std::fs::read_to_string(&tag).unwrap().contains("created by cargo"));
    assert_eq!(tree(&clone.join("cache")), [PathBuf::from("CACHEDIR.TAG")], "the links were removed, not followed");
}

#[test]
fn a_dangling_target_link_is_refused_and_nothing_is_created() {
    let ws = Ws::new(false);
    let nowhere = ws.root().join("nowhere");
    symlink(&nowhere, ws.target()).unwrap();
    let out = ws.run(&["--no-verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("a symlink to nothing"), "{}", stderr(&out));
    assert!(!nowhere.exists());
}

/// nobody owns a built workspace and runs the attacker in `mode` on `name` in it, aiming at a precious root-owned
/// target dir outside, while root runs the tool a few hundred times; nothing outside may change. Returns the exit
/// codes; `after` checks the workspace after each run.
#[cfg(target_os = "linux")]
fn race(mode: &str, name: &str, after: impl Fn(&Ws, i32)) -> std::collections::BTreeMap<i32, usize> {
    assert!(is_root(), "this test runs an attacker as nobody against a root run and must run as root (CI does)");
    let ws = Ws::new(false);
    ws.build();
    give_to_nobody(&ws);
    let (keep, precious) = precious_target();
    let before = snapshot(keep.path());
    let mut rv = Rendezvous::new();
    let _attacker = attacker(&mut rv, &[mode.as_ref(), ws.root().as_os_str(), name.as_ref(), precious.as_os_str()]);
    let codes = hammer(&ws, 300, Duration::from_secs(45), |code| after(&ws, code));
    assert_eq!(snapshot(keep.path()), before, "nothing outside the target dir changed; runs: {codes:?}");
    assert!(codes.values().sum::<usize>() >= 50, "enough runs met the attacker: {codes:?}");
    codes
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root"]
fn another_user_swapping_the_target_for_a_link_never_leads_a_root_run_outside() {
    let codes = race("swap", "target", |_, _| {});
    assert!(codes.keys().all(|c| [0, 3, 5].contains(c)), "{codes:?}");
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root"]
fn another_user_planting_links_where_the_new_dir_goes_changes_nothing_outside() {
    race("plant", "-new", |ws, code| {
        let target = std::fs::symlink_metadata(ws.target()).unwrap();
        assert!(code != 0 || target.is_dir(), "a run that succeeded put a real dir in place, not what was planted");
    });
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root"]
fn a_root_run_never_follows_a_link_another_user_controls() {
    assert!(is_root(), "this test runs the tool as root in nobody's workspace and must run as root (CI does)");
    let ws = Ws::new(false);
    give_to_nobody(&ws);
    let (_keep, precious) = precious_target();
    let before = snapshot(precious.parent().unwrap());
    symlink(&precious, ws.target()).unwrap();
    rustix::fs::chownat(
        rustix::fs::CWD,
        ws.target(),
        Some(rustix::fs::Uid::from_raw(NOBODY)),
        Some(rustix::fs::Gid::from_raw(NOBODY)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
    let out = ws.safeclean(&["--no-verify"]).env("CARGO", ws.fake_cargo()).output_bounded();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(says(&out, "note", "does not follow another user's link"), "{}", stderr(&out));
    assert_eq!(snapshot(precious.parent().unwrap()), before);
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root"]
fn a_root_run_on_another_users_tree_keeps_it_theirs() {
    assert!(is_root(), "this test runs the tool as root on nobody's tree and must run as root (CI does)");
    let ws = Ws::new(false);
    ws.build();
    give_to_nobody(&ws);
    // A group nobody is not in, and the setgid bit: only root may give the new dir both.
    rustix::fs::chown(ws.target().as_path(), None, Some(rustix::fs::Gid::from_raw(100))).unwrap();
    std::fs::set_permissions(ws.target(), std::fs::Permissions::from_mode(0o2750)).unwrap();
    // Something root built in it once (`sudo cargo build`): root's own dir, removed with root's rights.
    std::fs::create_dir_all(ws.target().join("debug/by-root")).unwrap();
    std::fs::write(ws.target().join("debug/by-root/f"), "x").unwrap();
    let out = ws.safeclean(&[]).env("CARGO", ws.fake_cargo()).output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = std::fs::metadata(ws.target()).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (NOBODY, 100, 0o2750), "owner, group and mode are kept");
    assert_eq!(std::fs::metadata(ws.target().join("CACHEDIR.TAG")).unwrap().uid(), NOBODY);
    let checked_by = std::fs::read_to_string(ws.target().join("debug/checked-by")).unwrap();
    assert_eq!(checked_by.trim(), NOBODY.to_string(), "the verify runs as the owner");
    assert_eq!(std::fs::metadata(ws.target().join("debug")).unwrap().uid(), NOBODY, "what it builds is theirs");
    assert!(!ws.target().join("debug/by-root").exists(), "root's leftovers went with the old tree");
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root"]
fn foreign_shared_locks_block_nothing() {
    assert!(is_root(), "this test takes locks as nobody against a root run and must run as root (CI does)");
    let ws = Ws::new(false);
    ws.build();
    // A trash dir an older version (or a crash) left open to all: another user can lock it.
    let old = ws.target().join(".safeclean-trash-1-ab");
    std::fs::create_dir_all(old.join("d")).unwrap();
    std::fs::write(old.join("d/f"), "x").unwrap();
    for dir in [ws.dir.path(), ws.root(), &ws.target(), &old, &old.join("d")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut rv = Rendezvous::new();
    rv.open_to_others();
    let holder = holder_named(rv.path.parent().unwrap(), "foreign-locker");
    for path in [ws.root(), &ws.target(), &old] {
        let mut cmd = Command::new(&holder);
        cmd.arg("--flock-shared").arg(path).arg("--notify").arg(&rv.path).stdin(Stdio::null());
        std::os::unix::process::CommandExt::uid(&mut cmd, NOBODY);
        std::os::unix::process::CommandExt::gid(&mut cmd, NOBODY);
        rv.spawn(&mut cmd);
    }
    // The tool's own locks are all in the runner's private runtime dir: none of these is one of them.
    let start = Instant::now();
    let out = ws.run(&["--no-verify", "--lock-timeout", "1s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(30), "no lock of another user's held the run");
    assert_eq!(tree(&ws.target()), [PathBuf::from("CACHEDIR.TAG")], "the locked leftover went too");
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root"]
fn a_runtime_dir_another_user_prepared_is_never_used() {
    assert!(is_root(), "this test prepares a runtime dir as nobody for a root run and must run as root (CI does)");
    let ws = Ws::new(false);
    ws.build();
    let (_keep, precious) = precious_target();
    let before = snapshot(precious.parent().unwrap());
    // nobody's own dir, named as the runtime base, with the runtime dir's name pointing at the precious tree.
    let base = tempfile::Builder::new().prefix("safeclean-base-").tempdir().unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    symlink(&precious, base.path().join("cargo-safeclean-0")).unwrap();
    let ok = Command::new("chown").args(["-R", "-h", "65534:65534"]).arg(base.path()).status().unwrap();
    assert!(ok.success());
    let out = ws
        .safeclean(&["--detach", "--no-verify", "--message-format", "json"])
        .env("XDG_RUNTIME_DIR", base.path())
        .env("TMPDIR", base.path())
        .output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = PathBuf::from(summary(&out)["purge_detached"]["log"].as_str().unwrap());
    assert!(!log.starts_with(base.path()), "{}", log.display());
    let runtime = std::fs::symlink_metadata(log.parent().unwrap()).unwrap();
    assert!(runtime.is_dir() && runtime.uid() == 0 && runtime.mode().trailing_zeros() >= 6, "{}", log.display());
    let pid = u32::try_from(summary(&out)["purge_detached"]["pid"].as_u64().unwrap()).unwrap();
    assert!(identity(pid).is_none_or(|id| gone_within(&id, PATIENCE)));
    assert_eq!(snapshot(precious.parent().unwrap()), before);
}

#[cfg(target_os = "linux")]
#[test]
fn two_spellings_of_one_target_are_one_run_at_a_time() {
    let ws = Ws::new(false);
    ws.build();
    let real = ws.root().join("real-target");
    std::fs::rename(ws.target(), &real).unwrap();
    symlink(&real, ws.target()).unwrap();
    let mut rv = Rendezvous::new();
    // A holder that ignores SIGTERM keeps the first run in its grace period, holding the run lock.
    let exe = ws.install_holder("real-target/debug/server");
    let mut h = rv.holder(&exe, &["--ignore-term"]);
    let mut first = ws.safeclean(&["--grace", "3s", "--no-verify", "--message-format", "json"]);
    let (first_pid, stdout, _) = rv.start(first.stdout(Stdio::piped()).stderr(Stdio::piped()));
    let lines = Lines::of(stdout.unwrap());
    // Its first holder line comes after it holds the lock.
    lines.find(|l| l.contains("\"reason\":\"holder\""));
    let spelled = real.to_str().unwrap();
    let out = ws.run(&["--target-dir", spelled, "--no-verify", "--lock-timeout", "100ms"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("pid {first_pid}")), "the holder is named: {}", stderr(&out));
    let second = ws.run(&["--target-dir", spelled, "--no-verify"]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert!(stderr(&second).contains("waiting for the run lock"), "{}", stderr(&second));
    assert!(has_exited(first_pid), "the second ran only once the first had finished");
    assert_eq!(rv.finish_adopted(first_pid).status.code(), Some(0));
    assert!(h.dies_within(PATIENCE));
}

/// While its check runs, a run holds the run lock of its new target dir, and no longer that of the dir it swapped
/// out: that dir's inode is free once the purge has removed it, and the new dir another run makes may get it. A run
/// that still held the old key then made that other run fail to lock its new dir ("gave up after 0.2s waiting").
#[cfg(target_os = "linux")]
#[test]
fn a_run_keeps_the_lock_of_its_new_dir_and_lets_go_of_the_one_it_swapped_out() {
    let ws = Ws::new(false);
    ws.build();
    let old = std::fs::metadata(ws.target()).unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let mut rv = Rendezvous::new();
    // A cargo whose `check` hangs until its process is killed, and then passes; everything else is the real cargo.
    let wrapper = ws.root().join("cargo-wrapper.sh");
    let cargo = env!("CARGO");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --help ] && exec '{cargo}' \"$@\"; done\n\
             if [ \"$1\" = check ]; then '{}' --notify '{}'; exit 0; fi\nexec '{cargo}' \"$@\"\n",
            holder_exe().display(),
            rv.path.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut tool = ws.safeclean(&[]);
    tool.env("CARGO", &wrapper).env("XDG_RUNTIME_DIR", runtime.path()).stdout(Stdio::null()).stderr(Stdio::piped());
    let (pid, _, _) = rv.start(&mut tool);
    let check = rv.accept(Some(pid));

    let new = std::fs::metadata(ws.target()).unwrap();
    assert_ne!((new.dev(), new.ino()), (old.dev(), old.ino()), "the target dir was swapped");
    let locks = runtime.path().join(format!("cargo-safeclean-{}", rustix::process::geteuid().as_raw()));
    let held = |dir: &std::fs::Metadata| match std::fs::File::open(locks.join(format!(
        "run-{}-{}.lock",
        dir.dev(),
        dir.ino()
    ))) {
        Ok(f) => rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => panic!("{e}"),
    };
    assert!(held(&new), "the new dir is this run's until it ends");
    assert!(!held(&old), "the dir it swapped out is still locked by this run");
    send(check.pid, rustix::process::Signal::KILL);
    let out = rv.finish_adopted(pid);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_detached_run_writes_its_log_only_in_its_own_runtime_dir() {
    let ws = Ws::new(false);
    ws.build();
    let keep = tempfile::tempdir().unwrap();
    let precious = keep.path().join("file");
    std::fs::write(&precious, "precious").unwrap();
    // Where an earlier version put the deleter's log, open to all, with links planted at log-like names.
    std::fs::set_permissions(ws.target(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for name in [".safeclean-trash-1-a.log", "deleter-1-a.log"] {
        symlink(&precious, ws.target().join(name)).unwrap();
    }
    let runtime = tempfile::tempdir().unwrap();
    let out = ws
        .safeclean(&["--detach", "--no-verify", "--message-format", "json"])
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    let log = PathBuf::from(s["purge_detached"]["log"].as_str().unwrap());
    assert!(log.starts_with(runtime.path()), "{}", log.display());
    let pid = u32::try_from(s["purge_detached"]["pid"].as_u64().unwrap()).unwrap();
    let mut rv = Rendezvous::new();
    rv.remember(pid);
    assert!(identity(pid).is_none_or(|id| gone_within(&id, PATIENCE)));
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious");
    assert_eq!(tree(&ws.target()), [PathBuf::from("CACHEDIR.TAG")], "the planted links went with the old tree");
    assert!(!log.exists(), "a deleter that removed everything removes its log");
}

/// Runs in a PID namespace of its own (`unshare --pid --mount-proc`): the only processes the tool can see, and so
/// stop, are the bystander and the attacker, whatever it gets wrong.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root"]
fn a_name_swapped_for_a_link_to_the_root_never_makes_every_process_a_holder() {
    assert!(is_root(), "this test runs an attacker as nobody against a root run and must run as root (CI does)");
    let ws = Ws::new(false);
    ws.build();
    give_to_nobody(&ws);
    let mut rv = Rendezvous::new();
    rv.open_to_others();
    // A process of root's that holds nothing in the workspace: its exe lies under `/`, like every process's.
    let bystander = holder_named(rv.path.parent().unwrap(), "bystander");
    let go = rv.path.with_file_name("go");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &go,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .unwrap();
    let script = r#"
        "$BYSTANDER" --notify "$SOCK" & bystander=$!
        setpriv --reuid=65534 --regid=65534 --clear-groups "$ATTACKER" --notify "$SOCK" exchange "$WS" target / &
        read -r _ < "$GO"
        cd "$WS" || exit 9
        i=0
        while [ $i -lt 200 ]; do
            "$TOOL" safeclean --no-verify --lock-timeout 5s >/dev/null 2>&1
            echo "code $?"
            i=$((i + 1))
        done
        if kill -0 $bystander; then echo "bystander alive"; else echo "bystander stopped"; fi
    "#;
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", script])
        .env("BYSTANDER", &bystander)
        .env("ATTACKER", attacker_exe())
        .env("SOCK", &rv.path)
        .env("GO", &go)
        .env("WS", ws.root())
        .env("TOOL", safeclean_exe())
        .env("CARGO", ws.fake_cargo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    clean_env(&mut cmd).env("CARGO", ws.fake_cargo());
    let (pid, stdout, _) = rv.start(&mut cmd);
    let lines = Lines::of(stdout.unwrap());
    // Both said ready: the run may begin.
    rv.accept(Some(pid));
    rv.accept(Some(pid));
    std::fs::write(&go, "go\n").unwrap();
    let out = lines.rest();
    let runs = out.iter().filter(|l| l.starts_with("code ")).count();
    assert_eq!(runs, 200, "{out:?}");
    assert_eq!(out.last().map(String::as_str), Some("bystander alive"), "a process that holds nothing was stopped");
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root"]
fn a_root_run_in_another_users_workspace_runs_their_code_as_them() {
    assert!(is_root(), "this test runs the tool as root in nobody's workspace and must run as root (CI does)");
    let ws = Ws::new(false);
    give_to_nobody(&ws);
    // No target dir yet: the one made belongs to the workspace's owner, and so does what the check builds.
    let out = ws.safeclean(&[]).env("CARGO", ws.fake_cargo()).output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::metadata(ws.target()).unwrap().uid(), NOBODY);
    let checked_by = std::fs::read_to_string(ws.target().join("debug/checked-by")).unwrap();
    assert_eq!(checked_by.trim(), NOBODY.to_string(), "the workspace's code never runs as root");
    // A target dir `sudo cargo build` made there, root's: the new one is given back to the workspace's owner.
    let ok = Command::new("chown").args(["-R", "0:0"]).arg(ws.target()).status().unwrap();
    assert!(ok.success());
    let out = ws.safeclean(&[]).env("CARGO", ws.fake_cargo()).output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::metadata(ws.target()).unwrap().uid(), NOBODY);
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root"]
fn a_tag_another_user_planted_never_makes_a_target_dir() {
    assert!(is_root(), "this test plants a tag as nobody for a root run and must run as root (CI does)");
    let ws = Ws::new(false);
    let keep = tempfile::tempdir().unwrap();
    let shared = keep.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(shared.join("root-file"), "root's").unwrap();
    let planted = |dir: &Path| {
        std::fs::write(dir.join("CACHEDIR.TAG"), cargo_safeclean::layout::CACHEDIR_TAG).unwrap();
        std::fs::write(dir.join(".rustc_info.json"), "{}").unwrap();
        for name in ["CACHEDIR.TAG", ".rustc_info.json"] {
            rustix::fs::chown(dir.join(name).as_path(), Some(rustix::fs::Uid::from_raw(NOBODY)), None).unwrap();
        }
    };
    planted(&shared);
    let before = snapshot(&shared);
    let out = ws.run(&["--target-dir", shared.to_str().unwrap(), "--no-verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not look like a cargo target dir"), "{}", stderr(&out));
    // Not shared, but root's, with the marks of another user: not a target dir of root's either.
    let roots = keep.path().join("roots");
    std::fs::create_dir(&roots).unwrap();
    std::fs::write(roots.join("root-file"), "root's").unwrap();
    planted(&roots);
    let out = ws.run(&["--target-dir", roots.to_str().unwrap(), "--no-verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not look like a cargo target dir"), "{}", stderr(&out));
    assert_eq!(snapshot(&shared), before);
    assert!(roots.join("root-file").is_file());
}
