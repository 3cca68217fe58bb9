//! The whole run on Windows (under Wine here, natively in the `windows-latest` job): real Windows processes hold a
//! temporary workspace's target dir, the tool stops them by what they hold, swaps the tree out, deletes it and runs
//! the verify. Cargo cannot run under Wine, so `CARGO` is the fixture `tests/support/windows.rs`, which answers
//! `cargo metadata` and `cargo check` for the workspace and plays the holders. Readiness is the holder's `ready`
//! line on its stdout; every process a test starts is killed by pid when it ends.
#![cfg(windows)]
#![expect(unsafe_code, reason = "the test watches and kills processes by pid with OpenProcess")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use cargo_safeclean::platform::windows::wine_version;

/// The tool under test.
fn safeclean() -> PathBuf {
    native(Path::new(env!("CARGO_BIN_EXE_cargo-safeclean")))
}

/// The fixture, built by `cargo build --examples` (scripts/wine-test does) beside the tool.
fn fixture() -> PathBuf {
    let path = safeclean().parent().unwrap().join(r"examples\safeclean-test-windows.exe");
    assert!(path.is_file(), "{} is missing: run `cargo build --examples` for this target first", path.display());
    path
}

/// A path as Windows spells it: under Wine, cargo hands over the Unix path of a cross-built exe, which is the
/// `Z:` drive there.
fn native(p: &Path) -> PathBuf {
    let text = p.to_string_lossy();
    if text.starts_with('/') { PathBuf::from(format!("Z:{}", text.replace('/', "\\"))) } else { p.to_path_buf() }
}

/// Kills every process it holds, by pid, when the test ends, pass or fail.
#[derive(Default)]
struct Reaper(Vec<u32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_TERMINATE, TerminateProcess};
        for &pid in &self.0 {
            // SAFETY: no pointers; the handle, if any, is closed right after.
            unsafe {
                let h = OpenProcess(PROCESS_TERMINATE, 0, pid);
                if !h.is_null() {
                    TerminateProcess(h, 1);
                    windows_sys::Win32::Foundation::CloseHandle(h);
                }
            }
        }
    }
}

/// A temporary workspace with a built-looking target dir.
struct Ws {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Ws {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("ws");
        let debug = root.join(r"target\debug");
        std::fs::create_dir_all(debug.join("deps")).unwrap();
        std::fs::create_dir_all(debug.join(r"build\dep-1\out")).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[package]\nname = \"app\"\n").unwrap();
        std::fs::write(root.join(r"target\CACHEDIR.TAG"), cargo_safeclean::layout::CACHEDIR_TAG).unwrap();
        std::fs::write(debug.join(".cargo-lock"), "").unwrap();
        std::fs::write(debug.join(r"deps\libdep-1.rlib"), vec![7u8; 4096]).unwrap();
        std::fs::write(debug.join(r"build\dep-1\out\gen.rs"), "// generated").unwrap();
        let ro = debug.join("read-only.txt");
        std::fs::write(&ro, "x").unwrap();
        let mut perms = std::fs::metadata(&ro).unwrap().permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&ro, perms).unwrap();
        Ws { _tmp: tmp, root }
    }

    fn target(&self) -> PathBuf {
        self.root.join("target")
    }

    /// The fixture copied to `rel` (under the workspace) and started there as a holder with `args`; returns once it
    /// says ready, with the pids it named (its own, then its child's).
    fn hold(&self, reaper: &mut Reaper, rel: &str, args: &[&str]) -> (Child, Vec<u32>) {
        let exe = self.root.join(rel);
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        std::fs::copy(fixture(), &exe).unwrap();
        let mut child = Command::new(&exe)
            .arg("hold")
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", exe.display()));
        reaper.0.push(child.id());
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let pids: Vec<u32> = line
            .strip_prefix("ready ")
            .expect("the holder says ready")
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        reaper.0.extend(&pids);
        (child, pids)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(safeclean())
            .args(["--message-format", "json", "--grace", "2s"])
            .args(args)
            .current_dir(&self.root)
            .env("CARGO", fixture())
            .env_remove("CARGO_TARGET_DIR")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The names directly in the target dir.
    fn entries(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn summary(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_else(|| panic!("no JSON; stderr: {}", stderr(out)));
    let s: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(s["reason"], "summary", "{s}");
    s
}

/// What the run said: its stderr, and its stdout when that is not the JSON the test reads.
fn stderr(out: &Output) -> String {
    format!("{}\nstdout:\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout))
}

/// Waits (at most two minutes: a bound, not a guess) for the process `pid` to exit; false if it did not.
fn exits(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, WAIT_OBJECT_0};
    use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_SYNCHRONIZE, WaitForSingleObject};
    // SAFETY: no pointers; the handle, if any, is closed right after.
    unsafe {
        let h = OpenProcess(PROCESS_SYNCHRONIZE, 0, pid);
        if h.is_null() {
            return true;
        }
        let exited = WaitForSingleObject(h, 120_000) == WAIT_OBJECT_0;
        CloseHandle(h);
        exited
    }
}

/// Whether the process `pid` is still running: it can be opened and waiting on it would block.
fn alive(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, WAIT_TIMEOUT};
    use windows_sys::Win32::System::Threading::{
        OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE, WaitForSingleObject,
    };
    // SAFETY: no pointers; the handle, if any, is closed right after.
    unsafe {
        let h = OpenProcess(PROCESS_SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if h.is_null() {
            return false;
        }
        let running = WaitForSingleObject(h, 0) == WAIT_TIMEOUT;
        CloseHandle(h);
        running
    }
}

#[test]
fn stops_what_holds_the_target_dir_and_recreates_it() {
    let ws = Ws::new();
    let mut reaper = Reaper::default();
    // A test binary running from target\debug, holding a dependency open, its cwd inside target.
    let (_test, test_pids) = ws.hold(
        &mut reaper,
        r"target\debug\app.exe",
        &["--open", r"target\debug\deps\libdep-1.rlib", "--cwd", r"target\debug"],
    );
    // A build script that started a child and exited: the child, an orphan, holds the generated file.
    let (_script, script_pids) = ws.hold(
        &mut reaper,
        r"target\debug\build\dep-1\build-script-build.exe",
        &["--child", "--exit", "--open", r"target\debug\build\dep-1\out\gen.rs"],
    );
    let orphan = script_pids[1];

    let out = ws.run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    let reported = |pid: u32| s["holders"].as_array().unwrap().iter().find(|h| h["pid"] == pid).cloned();
    let test = reported(test_pids[0]).unwrap_or_else(|| panic!("the test binary is reported: {s}"));
    assert_eq!(test["kind"], "target-binary", "{test}");
    assert!(reported(orphan).is_some(), "the orphaned child is found by what it holds: {s}");
    assert!(!alive(test_pids[0]) && !alive(orphan), "both holders were stopped");
    // The old tree is gone, the read-only file with it; the new dir has cargo's tag and what the check made.
    assert_eq!(ws.entries("target"), ["CACHEDIR.TAG", "debug"]);
    assert_eq!(ws.entries(r"target\debug"), [".fingerprint"]);
    assert_eq!(
        std::fs::read_to_string(ws.target().join("CACHEDIR.TAG")).unwrap(),
        cargo_safeclean::layout::CACHEDIR_TAG
    );
    assert!(s["removed"]["files"].as_u64().unwrap() >= 5, "{s}");
    assert_eq!(s["verify"]["exit_code"], 0, "{s}");
}

#[test]
fn a_spared_holder_keeps_its_file_and_the_run_says_so() {
    let ws = Ws::new();
    let mut reaper = Reaper::default();
    // rust-analyzer's proc-macro server, outside the target dir, holding a file in it: spared, never stopped.
    let (_ide, pids) =
        ws.hold(&mut reaper, r"ide\rust-analyzer-proc-macro-srv.exe", &["--open", r"target\debug\deps\libdep-1.rlib"]);
    let out = ws.run(&[]);
    // NTFS refuses to move a dir holding a file open without share-delete (the swap fails); Wine moves it and the
    // delete of that one file fails. Either way: exit 5, the file named, the process running, the file kept.
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let s = summary(&out);
    let ide = s["holders"].as_array().unwrap().iter().find(|h| h["pid"] == pids[0]).cloned();
    assert_eq!(ide.unwrap_or_else(|| panic!("the spared holder is reported: {s}"))["verdict"], "spare");
    assert!(alive(pids[0]), "a spared process is never stopped");
    let message = s["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("target"), "the error names what it could not remove: {message}");
    let kept = std::fs::read_dir(ws.target()).unwrap().count();
    assert!(kept >= 1, "the held file is still there somewhere under target");
}

#[test]
fn a_dry_run_changes_nothing_and_says_what_it_would_do() {
    let ws = Ws::new();
    let mut reaper = Reaper::default();
    let (_test, pids) = ws.hold(&mut reaper, r"target\debug\app.exe", &["--open", r"target\debug\deps\libdep-1.rlib"]);
    let out = ws.run(&["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["dry_run"], true);
    assert!(s["holders"].as_array().unwrap().iter().any(|h| h["pid"] == pids[0]), "{s}");
    assert!(alive(pids[0]), "a dry run stops nothing");
    assert!(ws.target().join(r"debug\read-only.txt").is_file(), "a dry run removes nothing");
}

#[test]
fn what_a_crashed_run_left_is_finished() {
    let ws = Ws::new();
    let beside = ws.root.join(r"target.safeclean-12-ab\debug");
    std::fs::create_dir_all(&beside).unwrap();
    std::fs::write(beside.join("x.rlib"), "x").unwrap();
    let inside = ws.target().join(r".safeclean-trash-13-cd\deps");
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::write(inside.join("y.rlib"), "y").unwrap();
    let out = ws.run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!ws.root.join("target.safeclean-12-ab").exists(), "the tree left beside is gone");
    assert_eq!(ws.entries("target"), ["CACHEDIR.TAG", "debug"], "the trash left inside is gone");
    let names: Vec<String> =
        std::fs::read_dir(&ws.root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.contains(".safeclean-")), "nothing of the run is left beside: {names:?}");
}

#[test]
fn a_detached_deleter_finishes_the_purge_after_the_run() {
    let ws = Ws::new();
    let out = ws.run(&["--detach"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    let detached = &s["purge_detached"];
    let pid = u32::try_from(detached["pid"].as_u64().unwrap_or_else(|| panic!("no deleter: {s}"))).unwrap();
    let _reaper = Reaper(vec![pid]);
    assert!(exits(pid), "the deleter finished");
    assert_eq!(ws.entries("target"), ["CACHEDIR.TAG", "debug"], "the trash is gone");
    let log = PathBuf::from(detached["log"].as_str().unwrap());
    assert!(!log.exists(), "a deleter that removed everything removes its log: {}", log.display());
}

#[test]
fn a_run_during_a_detached_purge_and_the_next_leave_nothing_behind() {
    let ws = Ws::new();
    // A trash big enough that the deleter is still at it when the next run starts.
    for d in 0..40 {
        let dir = ws.target().join(format!(r"debug\deps\d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..50 {
            std::fs::write(dir.join(format!("f{f}.rlib")), [1u8; 100]).unwrap();
        }
    }
    let out = ws.run(&["--detach"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pid = u32::try_from(summary(&out)["purge_detached"]["pid"].as_u64().unwrap()).unwrap();
    let _reaper = Reaper(vec![pid]);
    // Whatever the deleter has done by now, the run in the foreground succeeds, and leaves its trash to it or
    // removes it (Wine invalidates the deleter's handles when their dir is moved; Windows does not).
    let out = ws.run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(exits(pid), "the deleter finished");
    let out = ws.run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ws.entries("target"), ["CACHEDIR.TAG", "debug"], "the next run removes what remains");
    assert_eq!(ws.entries(r"target\debug"), [".fingerprint"]);
    let beside: Vec<String> = ws.entries(".").into_iter().filter(|n| n.contains(".safeclean-")).collect();
    assert!(beside.is_empty(), "nothing of the runs is left beside: {beside:?}");
}

#[test]
fn unlock_names_who_has_a_locked_lock_open_and_stops_nobody() {
    let ws = Ws::new();
    let mut reaper = Reaper::default();
    let (_cargo, pids) = ws.hold(&mut reaper, r"bin\cargo.exe", &["--lock", r"target\debug\.cargo-lock"]);
    let out = ws.run(&["--unlock"]);
    // Windows shows who has the file open, never who holds the lock (a waiter has it open too, and the owner may be
    // a process the scan cannot see): nobody is stopped, and the error says who has it open.
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let s = summary(&out);
    let holder = s["holders"].as_array().unwrap().iter().find(|h| h["pid"] == pids[0]).cloned();
    let holder = holder.unwrap_or_else(|| panic!("the process with the lock file open is reported: {s}"));
    assert_eq!((holder["kind"].as_str(), holder["verdict"].as_str()), (Some("cargo"), Some("spare")), "{holder}");
    assert!(alive(pids[0]), "nobody is stopped on a guess");
    let message = s["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("pid {}", pids[0])), "the error names it: {message}");
    assert!(ws.target().join(r"debug\read-only.txt").is_file(), "--unlock removes nothing");
}

#[test]
fn if_broken_leaves_a_healthy_cache_and_sweep_is_refused() {
    let ws = Ws::new();
    let out = ws.run(&["--if-broken"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(ws.target().join(r"debug\read-only.txt").is_file(), "a healthy cache is kept");
    let out = ws.run(&["--sweep"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--sweep is not available on this OS yet"),
        "{}",
        stderr(&out)
    );
    assert!(ws.target().join(r"debug\read-only.txt").is_file(), "nothing is changed");
}

#[test]
fn a_refused_dir_is_left_as_it_is() {
    let ws = Ws::new();
    std::fs::create_dir(ws.target().join(".git")).unwrap();
    let out = ws.run(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(ws.target().join(r"debug\read-only.txt").is_file());
    // The drive's root, whatever the flags.
    let out = ws.run(&["--target-dir", r"C:\", "--force"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
#[expect(clippy::print_stderr, reason = "a test says why it did not run")]
fn a_junction_inside_the_target_dir_is_removed_and_what_it_points_to_is_left() {
    if let Some(wine) = wine_version() {
        // Wine 8.0 cannot make a junction (FSCTL_SET_REPARSE_POINT is not supported there).
        eprintln!("skipped under Wine {wine}: it cannot make a junction; the Windows job runs this");
        return;
    }
    let ws = Ws::new();
    let outside = ws.root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep.txt"), "keep").unwrap();
    let link = ws.target().join(r"debug\linked");
    let made = Command::new("cmd").args(["/C", "mklink", "/J"]).arg(&link).arg(&outside).output().unwrap();
    assert!(made.status.success(), "mklink /J: {}", String::from_utf8_lossy(&made.stderr));
    let out = ws.run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!link.exists());
    assert_eq!(std::fs::read_to_string(outside.join("keep.txt")).unwrap(), "keep", "the outside is untouched");
}
