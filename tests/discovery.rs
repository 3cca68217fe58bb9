//! Holder discovery: every handle kind, both scan backends, process relations, build dirs, symlinked targets,
//! processes that cannot be inspected, and naming the holder of a lock cargo waits for.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// (pid → set of (handle kind, path)) from a dry run's summary.
fn handles_by_pid(out: &std::process::Output) -> std::collections::BTreeMap<u64, BTreeSet<(String, String)>> {
    let s = summary(out);
    s["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let set = h["handles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| (x["kind"].as_str().unwrap().to_string(), x["path"].as_str().unwrap().to_string()))
                .collect();
            (h["pid"].as_u64().unwrap(), set)
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root"]
fn every_handle_kind_is_found_by_both_backends() {
    assert!(is_root(), "this test chroots a holder into target/ and must run as root (CI does)");
    let ws = Ws::new(false);
    ws.build();
    let t = ws.target();
    let bin = tempfile::tempdir().unwrap();
    let exe = holder_named(bin.path(), "plain");
    let mut rv = Rendezvous::new();
    let p = |rel: &str| t.join(rel).to_str().unwrap().to_string();
    let fd = rv.holder(&exe, &["--open", &p("debug/held.txt")]);
    let mmap = rv.holder(&exe, &["--mmap", &p("debug/mapped.bin")]);
    let cwd = rv.holder(&exe, &["--cwd", &p("debug")]);
    let lock = rv.holder(&exe, &["--lock", &p("debug/.cargo-lock")]);
    let root = rv.holder(&exe, &["--chroot", &p("debug")]);
    let in_target = ws.install_holder("target/debug/server");
    let exe_holder = rv.holder(&in_target, &[]);

    let proc_out = ws.run(&["--dry-run", "--message-format", "json"]);
    assert_eq!(proc_out.status.code(), Some(0), "{}", stderr(&proc_out));
    let by_proc = handles_by_pid(&proc_out);
    let kinds = |pid: u32| -> BTreeSet<String> { by_proc[&u64::from(pid)].iter().map(|(k, _)| k.clone()).collect() };
    assert!(kinds(fd.pid).contains("fd"), "{by_proc:?}");
    assert!(kinds(mmap.pid).contains("mmap"));
    assert!(kinds(cwd.pid).contains("cwd"));
    assert_eq!(kinds(lock.pid), ["lock".to_string()].into());
    assert!(kinds(root.pid).contains("root"));
    assert!(kinds(exe_holder.pid).contains("exe"));
    let human = ws.run(&["--dry-run", "-v"]);
    assert!(
        stderr(&human).contains(&format!("holds the build-dir lock {}", p("debug/.cargo-lock"))),
        "{}",
        stderr(&human)
    );

    let lsof_out =
        ws.safeclean(&["--dry-run", "--message-format", "json"]).env("SAFECLEAN_SCAN_BACKEND", "lsof").output_bounded();
    assert_eq!(lsof_out.status.code(), Some(0), "{}", stderr(&lsof_out));
    assert_eq!(handles_by_pid(&lsof_out), by_proc, "lsof and /proc disagree");
    let kinds_of = |out: &std::process::Output| -> Vec<(u64, String)> {
        summary(out)["holders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["pid"].as_u64().unwrap(), h["kind"].to_string()))
            .collect()
    };
    assert_eq!(kinds_of(&lsof_out), kinds_of(&proc_out));
}

/// Runs only on a Mac: libproc and lsof find the same holders by the same handles. Neither shows lock state on
/// macOS, so the holder of cargo's lock file is reported as having it open.
#[cfg(target_os = "macos")]
#[test]
fn libproc_and_lsof_find_the_same_handles() {
    let ws = Ws::new(false);
    ws.build();
    let t = ws.target();
    let bin = tempfile::tempdir().unwrap();
    let exe = holder_named(bin.path(), "plain");
    let mut rv = Rendezvous::new();
    let p = |rel: &str| t.join(rel).to_str().unwrap().to_string();
    let fd = rv.holder(&exe, &["--open", &p("debug/held.txt")]);
    let mmap = rv.holder(&exe, &["--mmap", &p("debug/mapped.bin")]);
    let cwd = rv.holder(&exe, &["--cwd", &p("debug")]);
    let lock = rv.holder(&exe, &["--lock", &p("debug/.cargo-lock")]);
    let exe_holder = rv.holder(&ws.install_holder("target/debug/server"), &[]);
    let dry_run = |backend: &str| {
        let out = ws
            .safeclean(&["--dry-run", "--message-format", "json"])
            .env("SAFECLEAN_SCAN_BACKEND", backend)
            .output_bounded();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        handles_by_pid(&out)
    };
    let by_libproc = dry_run("libproc");
    let kinds = |pid: u32| -> BTreeSet<String> { by_libproc[&u64::from(pid)].iter().map(|(k, _)| k.clone()).collect() };
    assert!(kinds(fd.pid).contains("fd"), "{by_libproc:?}");
    assert!(kinds(mmap.pid).contains("mmap"));
    assert!(kinds(cwd.pid).contains("cwd"));
    assert_eq!(kinds(lock.pid), ["fd".to_string()].into());
    assert!(kinds(exe_holder.pid).contains("exe"));
    assert_eq!(dry_run("lsof"), by_libproc, "lsof and libproc disagree");
}

#[test]
fn relations_build_children_and_orphans_are_explained() {
    let ws = Ws::new(true);
    ws.build();
    let mut rv = Rendezvous::new();
    let script = rv.spawn(ws.cargo(&["build"]).env(HANG, &rv.path).env(HANG_CHILD, "1"));
    let child = script.child.unwrap();
    // An orphan: its parent shell exits at once, and it is reparented.
    let bin = tempfile::tempdir().unwrap();
    let exe = holder_named(bin.path(), "orphan");
    let orphan = rv.orphan_holder(&exe, &["--cwd", ws.target().to_str().unwrap()]);

    let out = ws.run(&["--dry-run", "-v"]);
    let text = stderr(&out);
    // A holder's line and, under -v, the lines under it.
    let line = |pid: u32| {
        let mut lines = text.lines().skip_while(|l| !l.contains(&format!("(pid {pid}):")));
        let first = lines.next().unwrap_or_else(|| panic!("{text}"));
        std::iter::once(first)
            .chain(lines.take_while(|l| l.starts_with("             ")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let c = line(child);
    assert!(
        c.contains("build-child process") && c.contains(&format!("child of build-script-build (pid {})", script.pid)),
        "{c}"
    );
    assert!(c.trim_start().starts_with("Would stop"), "{c}");
    assert!(line(script.pid).contains("child of cargo (pid"), "{}", line(script.pid));
    assert!(line(orphan.pid).contains("orphaned"), "{}", line(orphan.pid));
}

#[test]
fn a_separate_build_dir_is_scanned_and_cleaned() {
    let ws = Ws::new(true);
    std::fs::create_dir_all(ws.root().join(".cargo")).unwrap();
    std::fs::write(ws.root().join(".cargo/config.toml"), "[build]\nbuild-dir = \"build-out\"\n").unwrap();
    ws.build();
    let build_dir = ws.root().join("build-out");
    assert!(build_dir.is_dir(), "cargo used the build dir");
    let mut rv = Rendezvous::new();
    let mut script = rv.spawn(ws.cargo(&["build"]).env(HANG, &rv.path));
    let out = output_within(&mut ws.safeclean(&["--message-format", "json", "--grace", "2s"]), PATIENCE);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(script.dies_within(Duration::from_secs(5)));
    let s = summary(&out);
    assert_eq!(s["build_dir"], build_dir.to_str().unwrap());
    let holder = s["holders"].as_array().unwrap().iter().find(|h| h["pid"] == script.pid).unwrap().clone();
    assert_eq!(holder["kind"], "build-script");
    assert!(holder["handles"][0]["path"].as_str().unwrap().starts_with(build_dir.to_str().unwrap()), "{holder}");
    for dir in [&ws.target(), &build_dir] {
        assert!(dir.join("CACHEDIR.TAG").is_file(), "{} recreated", dir.display());
        assert!(!tree(dir).iter().any(|p| p.to_string_lossy().contains("safeclean")), "{:?}", tree(dir));
    }
}

#[test]
fn a_symlinked_target_is_matched_by_both_paths_and_kept() {
    let ws = Ws::new(false);
    let cache = tempfile::tempdir().unwrap();
    let real = cache.path().join("real-target");
    std::fs::create_dir_all(&real).unwrap();
    symlink(&real, ws.target()).unwrap();
    ws.build();
    let mut rv = Rendezvous::new();
    let bin = tempfile::tempdir().unwrap();
    let exe = holder_named(bin.path(), "plain");
    let via_real = rv.holder(&exe, &["--open", real.join("debug/a.txt").to_str().unwrap()]);
    let via_link = rv.holder(&exe, &["--cwd", ws.target().join("debug").to_str().unwrap()]);
    let dry = handles_by_pid(&ws.run(&["--dry-run", "--message-format", "json"]));
    assert!(dry.contains_key(&u64::from(via_real.pid)) && dry.contains_key(&u64::from(via_link.pid)), "{dry:?}");

    let out = ws.run(&["--all-holders", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(ws.target()).unwrap().file_type().is_symlink(), "the link is kept");
    assert!(real.join("CACHEDIR.TAG").is_file());
    assert!(!real.join("debug").exists());
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root"]
fn processes_of_other_users_are_counted() {
    assert!(is_root(), "this test runs the tool as nobody next to root's processes and must run as root (CI does)");
    let ws = Ws::new(false);
    let mut rv = Rendezvous::new();
    let _root_holder = ws.root_holder_nobody_cannot_inspect(&mut rv);
    let out = ws.safeclean_as_nobody(&["--dry-run", "--no-verify"]).output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("Summary dry run") && text.contains("could not be inspected"), "counted: {text}");
    let verbose = ws.safeclean_as_nobody(&["--dry-run", "--no-verify", "-v"]).output_bounded();
    let text = stderr(&verbose);
    assert!(text.contains("note: ") && text.contains("of other users could not be inspected"), "{text}");
}

#[test]
fn the_holder_of_a_lock_cargo_waits_for_is_named() {
    let ws = Ws::new(false);
    ws.build();
    let home = tempfile::tempdir().unwrap();
    let mut rv = Rendezvous::new();
    let bin = tempfile::tempdir().unwrap();
    let exe = holder_named(bin.path(), "cache-hog");
    let hog = rv.holder(&exe, &["--lock", home.path().join(".package-cache").to_str().unwrap()]);
    let (pid, _, stderr) = rv.start(ws.safeclean(&["--no-kill"]).env("CARGO_HOME", home.path()).stderr(Stdio::piped()));
    let named = Lines::of(stderr.unwrap()).find(|l| l.contains("waiting for the package cache lock"));
    assert!(named.contains(&format!("held by pid {} cache-hog", hog.pid)), "{named}");
    // Not named like a build tool: `--unlock` spares it unless told `--all-holders`, and the advice says so.
    assert!(named.contains("`cargo safeclean --unlock --all-holders` would stop it"), "{named}");
    assert!(named.contains(&format!("in {}", std::env::current_dir().unwrap().display())), "{named}");
    // Freeing the lock lets the check, and the run, finish.
    send(hog.pid, rustix::process::Signal::KILL);
    assert!(exits_within(pid, PATIENCE));
}

#[test]
fn rust_analyzer_is_an_ide_holder_and_is_spared() {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    let bin = tempfile::tempdir().unwrap();
    let ra = holder_named(bin.path(), "rust-analyzer-proc-macro-srv");
    let mut srv = rv.holder(&ra, &["--mmap", ws.target().join("debug/libproc_macro.so").to_str().unwrap()]);
    let out = ws.run(&["--message-format", "json", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    let h = &s["holders"][0];
    assert_eq!(
        (h["kind"].as_str(), h["verdict"].as_str(), h["outcome"].as_str()),
        (Some("ide"), Some("spare"), Some("spared"))
    );
    assert!(!srv.dies_within(Duration::from_millis(50)), "rust-analyzer was stopped");
}

#[test]
fn a_lock_file_open_but_not_locked_is_reported_as_open_not_held() {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    let bin = tempfile::tempdir().unwrap();
    let exe = holder_named(bin.path(), "reader");
    let lock = ws.target().join("debug/.cargo-lock");
    let _reader = rv.holder(&exe, &["--open", lock.to_str().unwrap()]);
    let out = ws.run(&["--dry-run", "-v"]);
    let text = stderr(&out);
    assert!(text.contains(&format!("has the build-dir lock file open {}", lock.display())), "{text}");
    assert!(!text.contains("holds the build-dir lock"), "{text}");
}

/// A holder whose cwd inside target/ is longer than `PATH_MAX`: the kernel will not spell the path out, so it is
/// placed by identity (walking up from its cwd), found, and stopped.
#[cfg(target_os = "linux")]
#[test]
fn a_holder_deeper_than_path_max_is_found_by_identity() {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    let outside = tempfile::tempdir().unwrap();
    // Its exe lies outside: the cwd alone ties it to the target dir.
    let exe = holder_named(outside.path(), "deep-shell");
    let mut h = rv.holder(&exe, &["--cwd-deep", ws.target().join("debug").to_str().unwrap()]);
    let mut bystander =
        rv.holder(&holder_named(outside.path(), "bystander"), &["--cwd-deep", outside.path().to_str().unwrap()]);
    let out = ws.run(&["--dry-run", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    // A Linux-only test: the native holder source is /proc.
    if platform().holders != cargo_safeclean::platform::Holders::Native {
        // lsof names no such cwd and gives nothing to place it by: counted as not known, never as "nothing holds".
        assert!(s["uninspectable"].as_u64().unwrap() >= 1, "{s}");
        let human = ws.run(&["--dry-run"]);
        assert!(stderr(&human).contains(&format!("pid {}", h.pid)), "{}", stderr(&human));
        assert!(!stderr(&human).contains("no process holds"), "{}", stderr(&human));
        return;
    }
    let holder = s["holders"].as_array().unwrap().iter().find(|x| x["pid"] == h.pid).unwrap_or_else(|| panic!("{s}"));
    assert!(holder["handles"].as_array().unwrap().iter().any(|x| x["kind"] == "cwd"), "{holder}");
    assert!(!s["holders"].as_array().unwrap().iter().any(|x| x["pid"] == bystander.pid), "{s}");
    let out = ws.run(&["--no-verify", "--all-holders"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(h.dies_within(PATIENCE));
    assert!(!bystander.dies_within(std::time::Duration::from_millis(100)));
}

/// lsof prints a control byte in a name as `^A`, the same as a `^` and an `A`. Two workspaces named alike that way:
/// the one whose name really has the control byte has a rustc working in its target dir. Cleaning the other never
/// touches that rustc, and the dry run of the right one finds it: names are confirmed by inode, never guessed.
#[test]
#[ignore = "needs lsof; CI runs it with --include-ignored"]
fn lsof_names_that_print_alike_are_told_apart_by_inode() {
    let parent = tempfile::tempdir().unwrap();
    let make = |name: &[u8]| {
        let root = parent.path().join(OsStr::from_bytes(name));
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("target/debug")).unwrap();
        std::fs::write(
            root.join("Cargo.toml"),
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
        )
        .unwrap();
        std::fs::write(root.join("src/lib.rs"), "").unwrap();
        std::fs::write(root.join("target/.rustc_info.json"), "{}").unwrap();
        root
    };
    let (control, caret) = (make(b"w\x01s"), make(b"w^As"));
    let mut rv = Rendezvous::new();
    let rustc = holder_named(parent.path(), "rustc");
    let mut working = rv.holder_os(&rustc, &[OsStr::new("--cwd"), control.join("target/debug").as_os_str()]);
    let run = |root: &Path, args: &[&str]| {
        let mut cmd = std::process::Command::new(safeclean_exe());
        clean_env(&mut cmd).arg("safeclean").args(args).current_dir(root).env("SAFECLEAN_PLATFORM", "portable");
        cmd.output_bounded()
    };
    let out = run(&caret, &["--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!working.dies_within(std::time::Duration::from_millis(200)), "a rustc of the other workspace was stopped");
    let out = run(&control, &["--dry-run", "--message-format", "json"]);
    let s = summary(&out);
    assert!(s["holders"].as_array().unwrap().iter().any(|h| h["pid"] == working.pid), "not found: {s}");
}
