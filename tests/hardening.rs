//! Regression tests for the hardening issue: each test guards one way the tool once deleted, signalled or claimed
//! more than it was asked to. Tests that mount, change attributes or run the tool as `nobody` need root and say so.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Stdio;
// Only the Linux tests (mounts, attributes) name paths and commands of their own.
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
#[cfg(target_os = "linux")]
use std::{path::Path, process::Command};

use cargo_safeclean::model::Roots;
use cargo_safeclean::platform::Platform;
use cargo_safeclean::scan::scan;
use common::*;

#[cfg(target_os = "linux")]
/// Paths under `dir` that contain `.safeclean-trash-` more than once.
fn nested_trash(dir: &Path) -> Vec<PathBuf> {
    tree(dir).into_iter().filter(|p| p.to_string_lossy().matches(".safeclean-trash-").count() > 1).collect()
}

#[cfg(target_os = "linux")]
/// A dir outside any workspace, on the same filesystem as the workspaces (both under the temp dir), holding a
/// precious file: what a bind mount inside target/ exposes.
fn precious_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let outside = tempfile::Builder::new().prefix("safeclean-outside-").tempdir().unwrap();
    let dir = outside.path().join(name);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/precious"), "keep me").unwrap();
    (outside, dir)
}

#[cfg(target_os = "linux")]
macro_rules! each_mount_check {
    ($($check:ident),*) => {
        mod bind_mounts_inside_target_are_never_entered {
            $(
                #[test]
                #[ignore = "needs root"]
                fn $check() {
                    super::bind_mounts_inside_target_are_never_entered(stringify!($check))
                }
            )*
        }
    };
}

#[cfg(target_os = "linux")]
each_mount_check!(openat2, statx, mountinfo, portable);

#[cfg(target_os = "linux")]
/// Item 1: a directory bind mount right under target/, a deep one and a bind-mounted file, all on the same
/// filesystem, are left mounted and untouched; the rest is removed; exit 5 says how to release them; the next run
/// finishes. Once per way of recognising a mount (the fallbacks are forced by the hidden switch), and once with the
/// portable walk (device and, on Linux, mount id).
fn bind_mounts_inside_target_are_never_entered(check: &str) {
    assert!(is_root(), "this test bind-mounts dirs and files and must run as root (CI does)");
    let ws = Ws::new(false);
    ws.build();
    let mounts = MountGuard::under(ws.root());
    let (_outside, top) = precious_dir("top");
    let (_outside2, deep) = precious_dir("deep");
    let file_src = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file_src.path(), "file content").unwrap();
    mounts.bind(&top, &ws.target().join("bm"));
    mounts.bind(&deep, &ws.target().join("debug/deps/a/b/deep"));
    mounts.bind(file_src.path(), &ws.target().join("debug/held.txt"));
    assert_eq!(std::fs::metadata(&top).unwrap().dev(), std::fs::metadata(ws.target()).unwrap().dev());

    let out = with_check(ws.safeclean(&["--no-verify"]), check).output_bounded();
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{text}");
    for name in ["/bm", "/deep", "/held.txt"] {
        assert!(text.lines().any(|l| l.starts_with("error:") && l.contains(name)), "{name} not named: {text}");
    }
    assert!(says(&out, "help", "umount"), "{text}");
    for dir in [&top, &deep] {
        assert_eq!(std::fs::read_to_string(dir.join("sub/precious")).unwrap(), "keep me", "{check}: entered");
    }
    assert_eq!(std::fs::read_to_string(file_src.path()).unwrap(), "file content");
    assert_eq!(mounts.points().len(), 3, "every mount is still mounted");
    // The rest is gone: what is left of the old tree is the mounts and the dirs that lead to them.
    let left: Vec<PathBuf> = tree(&ws.target())
        .into_iter()
        .filter(|p| !mounts.points().iter().any(|m| ws.target().join(p).starts_with(m)))
        .collect();
    assert!(left.iter().all(|p| ws.target().join(p).is_dir() || p == Path::new("CACHEDIR.TAG")), "{left:?}");
    assert!(!left.iter().any(|p| p.ends_with(".rustc_info.json")), "{left:?}");

    mounts.unmount_all();
    let out = with_check(ws.safeclean(&["--no-verify"]), check).output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tree(&ws.target()), [PathBuf::from("CACHEDIR.TAG")]);
    assert_eq!(std::fs::read_to_string(top.join("sub/precious")).unwrap(), "keep me");
}

#[cfg(target_os = "linux")]
/// The run with mount points recognised by `check`: a forced native check, or the portable walk.
fn with_check(mut cmd: Command, check: &str) -> Command {
    match check {
        "portable" => cmd.env("SAFECLEAN_PLATFORM", "portable").env_remove("SAFECLEAN_MOUNT_CHECK"),
        check => cmd.env("SAFECLEAN_MOUNT_CHECK", check),
    };
    cmd
}

#[cfg(target_os = "linux")]
/// Item 1: a target dir that is itself a bind mount of the same filesystem keeps its mount (its entries go).
#[test]
#[ignore = "needs root"]
fn a_target_dir_bind_mounted_from_the_same_filesystem_keeps_its_mount() {
    assert!(is_root(), "this test bind-mounts the target dir and must run as root (CI does)");
    let ws = Ws::new(false);
    let mounts = MountGuard::under(ws.root());
    let (_outside, cache) = precious_dir("cache");
    mounts.bind(&cache, &ws.target());
    ws.build();
    let out = ws.run(&["--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mounts.points(), [ws.target()], "the target dir is still the mount");
    assert_eq!(tree(&cache), [PathBuf::from("CACHEDIR.TAG")], "its contents were the target dir's");
}

/// Item 2: `--target-dir` replaces the default target dir, its build dir with it: the workspace's own target
/// and its holders are not touched; a `--target-dir` that does not exist is refused, not a no-op.
#[test]
fn target_dir_replaces_the_default_target_and_build_dir() {
    let a = Ws::new(false);
    a.build();
    let marker = a.target().join("debug/marker");
    std::fs::write(&marker, "A's cache").unwrap();
    let inode = std::fs::metadata(&marker).unwrap().ino();
    let b = Ws::new(false);
    b.build();
    let mut rv = Rendezvous::new();
    let exe = a.install_holder("target/debug/server");
    let mut a_holder = rv.holder(&exe, &[]);

    let out = a.run(&["--target-dir", b.target().to_str().unwrap(), "--no-verify", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["target_dir"], b.target().to_str().unwrap());
    assert_eq!(s["build_dir"], serde_json::Value::Null, "the build dir followed --target-dir");
    assert_eq!(s["holders"].as_array().unwrap().len(), 0, "{s}");
    assert_eq!(std::fs::metadata(&marker).unwrap().ino(), inode, "A's target dir was touched");
    assert!(!a_holder.dies_within(Duration::from_millis(100)), "A's holder was signalled");
    assert!(!b.target().join("debug").exists() && b.target().join("CACHEDIR.TAG").is_file());

    let typo = a.root().join("targte");
    let out = a.run(&["--target-dir", typo.to_str().unwrap(), "--no-verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(!typo.exists() && std::fs::metadata(&marker).unwrap().ino() == inode);
    assert!(alive(a_holder.pid));
}

/// Item 2: an explicit `build.build-dir` stays where it is when `--target-dir` is given.
#[test]
fn an_explicit_build_dir_stays_with_a_target_dir() {
    let ws = Ws::new(false);
    std::fs::create_dir_all(ws.root().join(".cargo")).unwrap();
    std::fs::write(ws.root().join(".cargo/config.toml"), "[build]\nbuild-dir = \"build-out\"\n").unwrap();
    ws.build();
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("CACHEDIR.TAG"), cargo_safeclean::layout::CACHEDIR_TAG).unwrap();
    let out = ws.run(&["--target-dir", other.path().to_str().unwrap(), "--dry-run", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["target_dir"], other.path().to_str().unwrap());
    assert_eq!(s["build_dir"], ws.root().join("build-out").to_str().unwrap());
}

/// Item 3: the generic cache-tag signature is not cargo's; a dir holding what cargo never writes, or lying in
/// cargo's home, is refused even with cargo's own tag; `--force` is the way out.
#[test]
fn a_dir_with_a_generic_cache_tag_or_private_files_is_refused() {
    let ws = Ws::new(false);
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("CACHEDIR.TAG"), "Signature: 8a477f597d28d172789f06886806bc55\n# man-db\n").unwrap();
    std::fs::write(d.path().join("important.txt"), "mine").unwrap();
    let out = ws.run(&["--target-dir", d.path().to_str().unwrap(), "--no-verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not look like a cargo target"), "{}", stderr(&out));
    std::fs::create_dir(d.path().join(".ssh")).unwrap();
    std::fs::write(d.path().join(".ssh/id_rsa"), "secret").unwrap();
    let before = tree(d.path());
    let out = ws.run(&["--target-dir", d.path().to_str().unwrap(), "--no-verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains(".ssh"), "{}", stderr(&out));

    std::fs::write(d.path().join("CACHEDIR.TAG"), cargo_safeclean::layout::CACHEDIR_TAG).unwrap();
    let out = ws.run(&["--target-dir", d.path().to_str().unwrap(), "--no-verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(says(&out, "error", ".ssh") && says(&out, "help", "--force"), "{}", stderr(&out));
    assert_eq!(tree(d.path()), before);

    let cargo_home = tempfile::tempdir().unwrap();
    let registry = cargo_home.path().join("registry");
    std::fs::create_dir_all(registry.join("index")).unwrap();
    std::fs::write(registry.join("CACHEDIR.TAG"), cargo_safeclean::layout::CACHEDIR_TAG).unwrap();
    let out = ws
        .safeclean(&["--target-dir", registry.to_str().unwrap(), "--no-verify"])
        .env("CARGO_HOME", cargo_home.path())
        .output_bounded();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("inside cargo's home"), "{}", stderr(&out));
    assert!(registry.join("index").is_dir());

    let out = ws.run(&["--target-dir", d.path().to_str().unwrap(), "--no-verify", "--force"]);
    assert_eq!(out.status.code(), Some(0), "--force is the way out: {}", stderr(&out));
}

/// Item 4: the home dir comes from the passwd entry too, so an unset, empty or wrong `HOME` does not open it up;
/// top-level system dirs are refused the same way.
#[test]
fn the_home_dir_is_refused_even_when_home_is_unset_or_wrong() {
    let ws = Ws::new(false);
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid()).unwrap().expect("a passwd entry");
    let home = me.dir.to_str().unwrap().to_string();
    for value in [None, Some(""), Some("/nonexistent")] {
        let mut cmd = ws.safeclean(&["--force", "--target-dir", &home, "--no-verify"]);
        match value {
            Some(v) => cmd.env("HOME", v),
            None => cmd.env_remove("HOME"),
        };
        let out = cmd.output_bounded();
        assert_eq!(out.status.code(), Some(3), "HOME={value:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(&format!("the home directory {home}")), "{}", stderr(&out));
    }
    for sys in ["/usr", "/etc", "/var", "/opt", "/srv"] {
        let out = ws.run(&["--force", "--target-dir", sys, "--no-verify"]);
        assert_eq!(out.status.code(), Some(3), "{sys}: {}", stderr(&out));
        assert!(stderr(&out).contains("system directory"), "{}", stderr(&out));
    }
}

#[cfg(target_os = "linux")]
/// Item 4: under sudo, the invoking user's home is refused too.
#[test]
#[ignore = "needs root"]
fn the_home_of_sudo_user_is_refused() {
    assert!(is_root(), "this test runs the tool as nobody with SUDO_USER=root and must run as root (CI does)");
    let ws = Ws::new(false);
    let out = ws
        .safeclean_as_nobody(&["--force", "--target-dir", "/root", "--no-verify"])
        .env("SUDO_USER", "root")
        .output_bounded();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("the home directory /root"), "{}", stderr(&out));
}

#[cfg(target_os = "linux")]
/// Item 5: run as an ordinary user next to another user's holder, the report never says that nothing holds the
/// target dir, and the JSON summary counts what could not be inspected.
#[test]
#[ignore = "needs root"]
fn a_run_that_cannot_inspect_every_process_never_says_nothing_holds_the_target() {
    assert!(is_root(), "this test runs the tool as nobody next to root's processes and must run as root (CI does)");
    let ws = Ws::new(false);
    let mut rv = Rendezvous::new();
    let _root_holder = ws.root_holder_nobody_cannot_inspect(&mut rv);
    let out = ws.safeclean_as_nobody(&["--dry-run", "--message-format", "json"]).output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    assert!(s["uninspectable"].as_u64().unwrap() >= 1, "{s}");
    let human = ws.safeclean_as_nobody(&["--dry-run"]).output_bounded();
    let text = stderr(&human);
    assert!(text.contains("no process held target/ (") && text.contains("could not be inspected)"), "{text}");
}

/// Item 6: a held path that is not UTF-8 keeps every JSON line whole and valid, with its exact bytes.
#[test]
fn a_path_that_is_not_utf8_keeps_every_json_line_valid() {
    let ws = Ws::new(false);
    ws.build();
    let bad = ws.target().join(OsStr::from_bytes(b"debug/bad\xff"));
    std::fs::create_dir_all(&bad).unwrap();
    let held = bad.join("x");
    let mut rv = Rendezvous::new();
    let exe = ws.install_holder("target/debug/server");
    let mut h = rv.holder_os(&exe, &[OsStr::new("--open"), held.as_os_str()]);
    for args in [&["--dry-run", "--message-format", "json"][..], &["--no-verify", "--message-format", "json"]] {
        let out = ws.run(args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let s = summary(&out); // every line parses, the summary is last
        let handles = s["holders"][0]["handles"].as_array().unwrap();
        let fd = handles.iter().find(|x| x["kind"] == "fd").unwrap_or_else(|| panic!("{s}"));
        let bytes: Vec<u8> = serde_json::from_value(fd["path_bytes"].clone()).unwrap();
        assert_eq!(bytes, held.as_os_str().as_bytes());
        assert!(fd["path"].as_str().unwrap().contains('\u{fffd}'));
    }
    assert!(h.dies_within(Duration::from_secs(5)));
}

#[cfg(target_os = "linux")]
/// Item 6: a JSON stream that cannot be written is an error, not a silent success.
#[test]
fn a_json_stream_that_cannot_be_written_is_an_error() {
    let ws = Ws::new(false);
    ws.build();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut rv = Rendezvous::new();
    let tool =
        spawn_retrying(ws.safeclean(&["--dry-run", "--message-format", "json"]).stdout(full).stderr(Stdio::piped()));
    let pid = tool.id();
    rv.adopt(tool);
    let out = rv.finish_adopted(pid);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("could not write the JSON lines to stdout"), "{}", stderr(&out));
}

/// Item 7: durations that cannot be waited for, or are negative, are usage errors before anything is signalled.
#[test]
fn durations_out_of_range_are_usage_errors_before_any_signal() {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    let exe = ws.install_holder("target/debug/stubborn");
    let mut h = rv.holder(&exe, &["--ignore-term"]);
    for (flag, value, says) in [
        ("--grace", "9223372036854775807s", "24h"),
        ("--kill-timeout", "9223372036854775807s", "24h"),
        ("--grace", "-1s", "negative"),
    ] {
        let out = ws.run(&[flag, value, "--no-verify"]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {}", stderr(&out));
        assert!(stderr(&out).contains(says) && !stderr(&out).contains("unexpected argument"), "{}", stderr(&out));
    }
    assert!(!h.dies_within(Duration::from_millis(50)));
}

/// Item 8: the tool's own children are never holders: not its `cargo metadata` run from inside target/, not any
/// child the scanning process has. The scan is called here from the library, with this test as "the tool", so the
/// child is certainly alive while it scans; an orphan holding the same dir is found (the control). Returns the
/// workspace, with the holders stopped.
fn own_children_are_never_holders(platform: &Platform) -> Ws {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    let bin = tempfile::tempdir().unwrap();
    let exe = holder_named(bin.path(), "plain");
    let debug = ws.target().join("debug");
    let child = rv.holder(&exe, &["--cwd", debug.to_str().unwrap()]);
    let orphan = rv.orphan_holder(&exe, &["--cwd", debug.to_str().unwrap()]);
    let roots = Roots::new([ws.target().as_path()]);
    let backend = &platform.holders;
    let found: Vec<u32> =
        scan(platform, &roots, std::process::id()).unwrap().found.iter().map(|f| f.process.pid).collect();
    assert!(!found.contains(&child.pid), "{backend:?}: our own child is a holder: {found:?}");
    assert!(found.contains(&orphan.pid), "{backend:?}: {found:?}");
    ws
}

#[test]
fn the_tools_own_children_are_never_holders() {
    let ws = own_children_are_never_holders(&Platform::native());
    let debug = ws.target().join("debug");
    let out =
        ws.safeclean(&["--no-kill", "--no-verify", "--message-format", "json"]).current_dir(&debug).output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(summary(&out)["holders"].as_array().unwrap().len(), 0);
}

#[test]
#[ignore = "needs lsof; CI runs it with --include-ignored"]
fn the_tools_own_children_are_never_holders_through_lsof() {
    own_children_are_never_holders(&Platform::portable("lsof".into()));
}

#[cfg(target_os = "linux")]
/// Item 9: runs that keep failing (a mount left inside) adopt the trash instead of nesting it ever deeper.
#[test]
#[ignore = "needs root"]
fn repeated_failed_runs_do_not_nest_the_trash() {
    assert!(is_root(), "this test bind-mounts a dir inside target/ and must run as root (CI does)");
    let ws = Ws::new(false);
    ws.build();
    let mounts = MountGuard::under(ws.root());
    let (_outside, src) = precious_dir("src");
    mounts.bind(&src, &ws.target().join("debug/bm"));
    let mut depth = None;
    for _ in 0..3 {
        let out = ws.run(&["--no-verify"]);
        assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
        assert!(nested_trash(&ws.target()).is_empty(), "{:?}", nested_trash(&ws.target()));
        let point = mounts.points().pop().unwrap();
        let d = point.components().count();
        assert!(depth.is_none_or(|prev| prev == d), "the mount moved deeper: {}", point.display());
        depth = Some(d);
    }
    mounts.unmount_all();
    let out = ws.run(&["--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tree(&ws.target()), [PathBuf::from("CACHEDIR.TAG")]);
}

/// Clears the immutable flag of every file named `name` under `dir` when the test ends.
#[cfg(target_os = "linux")]
struct Mutable<'a>(&'a Path, &'static str);

#[cfg(target_os = "linux")]
impl Drop for Mutable<'_> {
    fn drop(&mut self) {
        for p in tree(self.0).into_iter().filter(|p| p.ends_with(self.1)) {
            let _ = Command::new("chattr").arg("-i").arg(self.0.join(p)).status();
        }
    }
}

#[cfg(target_os = "linux")]
/// Item 10: EPERM on an immutable file says how to clear the flag.
#[test]
#[ignore = "needs root"]
fn an_immutable_file_says_how_to_clear_the_flag() {
    assert!(is_root(), "this test sets the immutable attribute and must run as root (CI does)");
    let ws = Ws::new(false);
    ws.build();
    let file = ws.target().join("debug/pinned");
    std::fs::write(&file, "x").unwrap();
    let _mutable = Mutable(ws.root(), "pinned");
    assert!(Command::new("chattr").arg("+i").arg(&file).status().unwrap().success(), "chattr +i (ext4?)");
    let out = ws.run(&["--no-verify"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(says(&out, "help", "chattr -i"), "{}", stderr(&out));
}

/// Item 10: a missing, non-file or broken `--manifest-path` is named with what is wrong with it.
#[test]
fn a_bad_manifest_path_says_what_is_wrong_with_it() {
    let ws = Ws::new(false);
    let broken = ws.root().join("broken/Cargo.toml");
    std::fs::create_dir_all(broken.parent().unwrap()).unwrap();
    std::fs::write(&broken, "[package\nname = ").unwrap();
    let missing = ws.root().join("nope/Cargo.toml");
    for (path, says) in [
        (missing.as_path(), "does not exist"),
        (ws.root(), "is a directory"),
        (broken.as_path(), "cargo cannot read the workspace of --manifest-path"),
    ] {
        let out = ws.run(&["--manifest-path", path.to_str().unwrap(), "--no-verify"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
        assert!(!stderr(&out).contains("run this inside a cargo workspace"), "{}", stderr(&out));
    }
}

/// Item 10: Ctrl-C once the old tree is gone does not claim that the rest stays in the trash.
#[test]
fn an_interrupt_after_the_purge_does_not_mention_trash() {
    let ws = Ws::new(true);
    ws.build();
    let mut rv = Rendezvous::new();
    let tool = ws.safeclean(&[]).env(HANG, &rv.path).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = tool.id();
    rv.adopt(tool); // killed when the test ends; its output is read by `finish_adopted`, with a deadline
    // The verifying check's build script is running; wait (bounded) until the purge beside it has finished.
    let _script = rv.accept(Some(pid));
    let trash_gone = || !tree(&ws.target()).iter().any(|p| p.to_string_lossy().contains("safeclean-trash"));
    let deadline = std::time::Instant::now() + PATIENCE;
    while !trash_gone() {
        assert!(std::time::Instant::now() < deadline, "the purge did not finish");
        std::thread::yield_now();
    }
    send(pid, rustix::process::Signal::INT);
    let out = rv.finish_adopted(pid);
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(says(&out, "error", "interrupted while verifying"), "{}", stderr(&out));
    assert!(
        says(&out, "note", "the old tree was already removed") && !stderr(&out).contains("stays in the trash"),
        "{}",
        stderr(&out)
    );
}

/// Item 11: with `RENAME_EXCHANGE`, target/ never stops existing while runs swap it; the two-rename fallback,
/// forced, still leaves a complete target dir.
#[test]
fn the_swap_never_leaves_the_target_dir_missing() {
    let ws = Ws::new(false);
    ws.build();
    let target = ws.target();
    let stop = AtomicBool::new(false);
    let missing = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut missing = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if std::fs::symlink_metadata(&target).is_err() {
                    missing += 1;
                }
            }
            missing
        });
        for _ in 0..10 {
            std::fs::create_dir_all(target.join("debug")).unwrap();
            let out = ws.run(&["--no-verify", "-q"]);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        }
        stop.store(true, Ordering::Relaxed);
        watcher.join().unwrap()
    });
    assert_eq!(missing, 0, "target/ was seen missing {missing} times");

    std::fs::create_dir_all(target.join("debug/deps")).unwrap();
    let out = ws.safeclean(&["--no-verify"]).env("SAFECLEAN_SWAP", "rename").output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tree(&target), [PathBuf::from("CACHEDIR.TAG")]);
    let leftovers = std::fs::read_dir(ws.root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("safeclean-"));
    assert_eq!(leftovers.count(), 0);
}
