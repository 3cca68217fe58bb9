//! The removal engine through the binary: hostile trees, crashes at any moment, concurrent runs, mount points.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
// Only the Linux tests (another user's tree, mount points) change modes and run commands of their own.
#[cfg(target_os = "linux")]
use std::{os::unix::fs::PermissionsExt, process::Command};

use common::*;
use rustix::fs::{Mode, OFlags};

/// Files in many dirs under target/, so a run has something to chew on.
fn fill(target: &Path, dirs: usize, files: usize) {
    for d in 0..dirs {
        let dir = target.join(format!("debug/deps/d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..files {
            std::fs::write(dir.join(format!("f{f}.rlib")), [0u8; 64]).unwrap();
        }
    }
}

/// Leftovers of any run: trash inside, aside or new dirs beside.
fn leftovers(ws: &Ws) -> Vec<PathBuf> {
    let beside = std::fs::read_dir(ws.root()).unwrap().flatten().map(|e| e.path());
    let inside = std::fs::read_dir(ws.target()).into_iter().flatten().flatten().map(|e| e.path());
    beside.chain(inside).filter(|p| p.file_name().unwrap().to_string_lossy().contains("safeclean-")).collect()
}

#[test]
fn hostile_trees_non_utf8_deep_and_symlinked_are_removed() {
    let ws = Ws::new(false);
    ws.build();
    let t = ws.target();
    std::fs::write(t.join(OsStr::from_bytes(b"debug/not-\xff\xfe-utf8")), "x").unwrap();
    // Deeper than PATH_MAX: made with relative mkdirat from inside.
    let mut fd = rustix::fs::open(&t, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    let name = "n".repeat(250);
    for _ in 0..20 {
        rustix::fs::mkdirat(&fd, name.as_str(), Mode::RWXU).unwrap();
        fd = rustix::fs::openat(&fd, name.as_str(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    }
    drop(rustix::fs::openat(&fd, "leaf", OFlags::CREATE | OFlags::WRONLY, Mode::RUSR).unwrap());
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep"), "keep").unwrap();
    std::os::unix::fs::symlink(outside.path(), t.join("debug/escape")).unwrap();

    let out = ws.run(&["--no-verify", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tree(&t), [PathBuf::from("CACHEDIR.TAG")]);
    assert!(outside.path().join("keep").exists());
    assert!(summary(&out)["removed"]["files"].as_u64().unwrap() >= 3);
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root"]
fn a_read_only_tree_is_removed_by_its_owner() {
    assert!(is_root(), "this test runs the tool as nobody on nobody's tree and must run as root (CI does)");
    let ws = Ws::new(false);
    let t = ws.target();
    std::fs::create_dir_all(t.join("debug/ro/inner")).unwrap();
    std::fs::write(t.join(".rustc_info.json"), "{}").unwrap();
    std::fs::write(t.join("debug/ro/inner/file"), "x").unwrap();
    let mut cmd = ws.safeclean_as_nobody(&["--no-verify"]);
    let chown = Command::new("chown").args(["-R", "65534:65534"]).arg(ws.root()).status().unwrap();
    assert!(chown.success());
    std::fs::set_permissions(t.join("debug/ro/inner"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(t.join("debug/ro"), std::fs::Permissions::from_mode(0o500)).unwrap();
    std::fs::set_permissions(t.join("debug"), std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = cmd.output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tree(&t), [PathBuf::from("CACHEDIR.TAG")]);
}

#[test]
fn a_run_killed_at_any_moment_is_finished_by_the_next() {
    let ws = Ws::new(false);
    ws.build();
    // How long a whole run takes here: the kills are spread evenly over it.
    fill(&ws.target(), 40, 50);
    let start = std::time::Instant::now();
    assert!(ws.run(&["--no-verify", "-q"]).status.success());
    let whole = start.elapsed();
    let mut interrupted_mid_work = 0;
    for round in 0..24u32 {
        fill(&ws.target(), 40, 50);
        let mut rv = Rendezvous::new();
        let (pid, _, _) = rv.start(ws.safeclean(&["--no-verify", "-q"]).stdout(Stdio::null()).stderr(Stdio::null()));
        // The moment is the variable under test: from before the scan to the middle of the purge.
        std::thread::sleep(whole * round / 24);
        send(pid, rustix::process::Signal::KILL);
        rv.finish_adopted(pid);
        if !leftovers(&ws).is_empty() {
            interrupted_mid_work += 1;
        }
        let t = ws.target();
        if t.exists() {
            assert!(t.join("CACHEDIR.TAG").is_file(), "round {round}: a target dir without its tag: {:?}", tree(&t));
        }
        let out = output_within(&mut ws.safeclean(&["--no-verify"]), PATIENCE);
        assert_eq!(out.status.code(), Some(0), "round {round}: {}", stderr(&out));
        assert!(leftovers(&ws).is_empty(), "round {round}: {:?}", leftovers(&ws));
        assert_eq!(tree(&ws.target()), [PathBuf::from("CACHEDIR.TAG")], "round {round}");
    }
    assert!(interrupted_mid_work > 0, "no kill landed while the tree was being swapped or purged");
    let check = output_within(&mut ws.cargo(&["check"]), PATIENCE);
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn three_concurrent_runs_all_succeed() {
    let ws = Ws::new(false);
    ws.build();
    fill(&ws.target(), 30, 100);
    let mut rv = Rendezvous::new();
    let runs: Vec<u32> = (0..3)
        .map(|_| {
            let tool = ws.safeclean(&[]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
            let pid = tool.id();
            rv.adopt(tool);
            pid
        })
        .collect();
    for pid in runs {
        let out = rv.finish_adopted(pid);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert!(leftovers(&ws).is_empty(), "{:?}", leftovers(&ws));
    assert!(ws.target().join("CACHEDIR.TAG").is_file() && ws.target().join("debug").is_dir());
    let check = output_within(&mut ws.cargo(&["check"]), PATIENCE);
    assert!(check.status.success(), "{}", stderr(&check));
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root"]
fn a_mounted_target_keeps_its_mount_and_inner_mounts_are_left_alone() {
    assert!(is_root(), "this test mounts tmpfs and must run as root (CI does)");
    let ws = Ws::new(false);
    let mounts = MountGuard::under(ws.root());
    mounts.tmpfs(&ws.target());
    ws.build();
    let inner = ws.target().join("debug/cache");
    mounts.tmpfs(&inner);
    std::fs::write(inner.join("precious"), "other filesystem").unwrap();

    let out = ws.run(&["--no-verify"]);
    // The inner mount is left, so the old tree is not all gone: exit 5, saying how to release it.
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(says(&out, "help", "umount"), "{}", stderr(&out));
    let is_mount = Command::new("mountpoint").arg("-q").arg(ws.target()).status().unwrap();
    assert!(is_mount.success(), "the target dir is still a mount point");
    assert!(ws.target().join("CACHEDIR.TAG").is_file());
    assert!(stderr(&out).contains("left mount point"), "{}", stderr(&out));
    let kept: Vec<PathBuf> = tree(&ws.target()).into_iter().filter(|p| p.ends_with("precious")).collect();
    assert_eq!(kept.len(), 1, "what is under an inner mount survives: {:?}", tree(&ws.target()));
    assert!(!ws.target().join("debug").exists(), "the rest was removed");

    // Released, the next run finishes the job.
    let inner_now = ws.target().join(kept[0].parent().unwrap());
    assert!(Command::new("umount").arg(&inner_now).status().unwrap().success());
    let out = ws.run(&["--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tree(&ws.target()), [PathBuf::from("CACHEDIR.TAG")]);
}
