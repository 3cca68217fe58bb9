//! `--detach`: the run returns once the old tree is swapped out; a detached deleter, at idle priority, deletes it.

// The fixtures and the pipeline these tests drive are Unix only so far (see the README's Platforms).
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use cargo_safeclean::model::Sig;
use cargo_safeclean::platform::Identity;
use common::*;

/// `dirs` dirs of 1,000 names each: one empty file and 999 hard links to it. The purge unlinks each name alike;
/// creating 100,000 inodes instead takes 40 s on a slow virtual disk, and tests nothing more here.
fn fill(target: &Path, dirs: usize) {
    for d in 0..dirs {
        let dir = target.join(format!("debug/deps/d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        let first = dir.join("f0.rlib");
        std::fs::File::create(&first).unwrap();
        for f in 1..1000 {
            std::fs::hard_link(&first, dir.join(format!("f{f}.rlib"))).unwrap();
        }
    }
}

/// A built workspace whose target dir holds `thousands` thousand files.
fn workspace(thousands: usize) -> Ws {
    let ws = Ws::new(false);
    ws.build();
    fill(&ws.target(), thousands);
    ws
}

/// Anything of this tool's beside or inside target/: trash, logs, dirs set aside.
fn leftovers(ws: &Ws) -> Vec<PathBuf> {
    let beside = std::fs::read_dir(ws.root()).unwrap().flatten().map(|e| e.path());
    let inside = std::fs::read_dir(ws.target()).into_iter().flatten().flatten().map(|e| e.path());
    beside.chain(inside).filter(|p| p.file_name().unwrap().to_string_lossy().contains("safeclean-")).collect()
}

/// The deleter a `--detach` JSON run handed the purge to, remembered for killing at the end of the test.
struct Deleter {
    id: Identity,
    trash: Vec<PathBuf>,
    log: PathBuf,
}

fn detached(out: &Output, rv: &mut Rendezvous) -> Deleter {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    let s = summary(out);
    let d = &s["purge_detached"];
    let pid = u32::try_from(d["pid"].as_u64().unwrap_or_else(|| panic!("no detached pid in {s}"))).unwrap();
    rv.remember(pid);
    assert!(s["removed"].is_null(), "a detached run removes nothing itself: {s}");
    let event = json_lines(out).into_iter().find(|l| l["reason"] == "purge_detached").expect("a purge_detached line");
    assert_eq!(&event["pid"], &d["pid"]);
    let trash: Vec<PathBuf> = d["trash"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().into()).collect();
    // Alive when the run returned: a 40,000-file tree takes its deleter longer than the run takes to exit, even on a
    // machine busy with the other tests (10,000 files once did not).
    let id = identity(pid).unwrap_or_else(|| panic!("deleter {pid} is gone already"));
    Deleter { id, trash, log: d["log"].as_str().unwrap().into() }
}

/// A 40,000-file target dir handed to a deleter, which is stopped (SIGSTOP) at once: mid-way, however fast it is.
fn stopped_mid_way() -> (Ws, Rendezvous, Deleter) {
    let ws = workspace(40);
    let mut rv = Rendezvous::new();
    let d = detached(&ws.run(&["--detach", "--no-verify", "--message-format", "json"]), &mut rv);
    send(d.id.pid, rustix::process::Signal::STOP);
    (ws, rv, d)
}

/// Waits for the deleter to end (woken by its exit) and says whether it did.
fn ends(d: &Deleter) -> bool {
    gone_within(&d.id, PATIENCE)
}

fn signal(d: &Deleter, sig: Sig) {
    let platform = platform();
    let handle = platform.open_process(&d.id).expect("the deleter is alive");
    platform.signal(&handle, sig).unwrap();
}

/// Per thread: (IO priority as `ionice` prints it, nice value).
#[cfg(target_os = "linux")]
fn priorities(pid: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let tid = task.file_name().into_string().unwrap();
        let io = std::process::Command::new("ionice").args(["-p", &tid]).output_bounded();
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        // The fields after the command name (which may hold spaces): nice is field 19, the 17th after `) `.
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        out.push((String::from_utf8_lossy(&io.stdout).trim().to_owned(), fields[16].to_owned()));
    }
    out
}

/// A 100,000-file target dir handed to a deleter: the run has returned, the deleter still works.
#[cfg(target_os = "linux")]
fn detached_from_a_big_tree() -> (Ws, Rendezvous, Deleter) {
    let ws = workspace(100);
    let mut rv = Rendezvous::new();
    let out = ws.run(&["--detach", "--no-verify", "--message-format", "json"]);
    let d = detached(&out, &mut rv);
    assert!(d.trash.iter().all(|t| t.starts_with(ws.target())), "{:?}", d.trash);
    assert!(d.trash.iter().any(|t| t.exists()), "the old tree is deleted after the run returns");
    assert!(ws.target().join("CACHEDIR.TAG").is_file(), "target/ is back before the old tree is gone");
    (ws, rv, d)
}

/// The deleter ends by itself, and leaves nothing but the new target dir.
#[cfg(target_os = "linux")]
fn ends_well(ws: &Ws, d: &Deleter) {
    assert!(ends(d), "deleter {} still runs after {PATIENCE:?}", d.id.pid);
    assert!(d.trash.iter().all(|t| !t.exists()));
    assert_eq!(leftovers(ws), Vec::<PathBuf>::new(), "a deleter that ends well removes its log too");
    assert_eq!(tree(&ws.target()), [PathBuf::from("CACHEDIR.TAG")]);
}

#[cfg(target_os = "linux")]
#[test]
fn the_run_returns_first_and_the_deleter_runs_in_a_session_of_its_own() {
    let (ws, _rv, d) = detached_from_a_big_tree();
    // Its own session, stdio off the terminal, stderr on the log.
    let pid = d.id.pid;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    assert_eq!(fields[3], pid.to_string(), "session id (field 6) is its pid");
    for fd in [0, 1] {
        assert_eq!(std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap(), Path::new("/dev/null"), "fd {fd}");
    }
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/fd/2")).unwrap(), d.log);
    let log = std::fs::read_to_string(&d.log).unwrap();
    for t in &d.trash {
        assert!(log.contains(&format!("deleting {}", t.display())), "the log says what it deletes: {log}");
    }
    ends_well(&ws, &d);
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs ionice (util-linux); CI runs it with --include-ignored"]
fn every_deleter_thread_runs_at_idle_priority() {
    let (ws, _rv, d) = detached_from_a_big_tree();
    // Every thread, the workers included (seen once they run): idle IO class, nice 19.
    let pid = d.id.pid;
    let mut seen = priorities(pid);
    let deadline = std::time::Instant::now() + PATIENCE;
    while seen.len() < 3 && std::time::Instant::now() < deadline && alive(pid) {
        seen = priorities(pid);
    }
    assert!(seen.len() >= 3, "the deleter ended before its workers were seen: {seen:?}");
    for (io, nice) in &seen {
        assert_eq!((io.as_str(), nice.as_str()), ("idle", "19"), "{seen:?}");
    }
    ends_well(&ws, &d);
}

#[test]
fn the_deleter_holds_nothing_and_a_killed_one_is_finished_by_the_next_run() {
    let (ws, _rv, d) = stopped_mid_way();
    // Stopped, it holds its trash open and locked, and nothing else.
    assert!(d.trash.iter().all(|t| t.exists()));

    let out = ws.run(&["--only-if-held", "--no-verify", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["holders"], serde_json::json!([]), "the deleter is no holder of the target dir: {s}");
    assert!(s["removed"].is_null(), "--only-if-held cleaned because of the deleter: {s}");
    assert!(alive(d.id.pid) && d.trash.iter().all(|t| t.exists()));

    signal(&d, Sig::Kill);
    assert!(ends(&d));
    assert!(d.trash.iter().all(|t| t.exists()), "killed, it left its trash");
    assert!(d.log.exists(), "killed, it left its log");

    let out = ws.run(&["--no-verify", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // How much the deleter removed before it was stopped depends on the machine; what is left, the run removes.
    assert!(summary(&out)["removed"]["files"].as_u64().is_some(), "the next run finishes the job");
    assert!(d.trash.iter().all(|t| !t.exists()));
    assert_eq!(leftovers(&ws), Vec::<PathBuf>::new());
}

#[test]
fn two_detached_runs_in_a_row_leave_nothing_behind() {
    // The first is stopped, so that the second run comes while the first deletion is under way.
    let (ws, mut rv, first) = stopped_mid_way();
    std::fs::write(ws.target().join("new-build-output"), "x").unwrap();
    let out = ws.run(&["--detach", "--no-verify", "--message-format", "json"]);
    let second = detached(&out, &mut rv);
    assert_eq!(summary(&out)["holders"], serde_json::json!([]), "the first deleter was no holder");
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_ne!(first.id, second.id);
    assert!(first.trash.iter().all(|t| !t.exists()), "the first trash went into the second");
    send(first.id.pid, rustix::process::Signal::CONT);

    // The second's trash holds the first's, which it leaves to the first and finishes once that one ends.
    assert!(ends(&first) && ends(&second));
    assert_eq!(leftovers(&ws), Vec::<PathBuf>::new());
    assert_eq!(tree(&ws.target()), [PathBuf::from("CACHEDIR.TAG")]);
}

#[test]
fn too_little_free_space_purges_in_the_foreground_and_says_why() {
    let ws = Ws::new(false);
    ws.build();
    let out = ws.run(&["--detach", "--detach-min-free", "1000TiB", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("deleting in the foreground to get the space back now"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("Detached"), "{}", stderr(&out));
    assert_eq!(leftovers(&ws), Vec::<PathBuf>::new(), "nothing is left for later");

    ws.build();
    let out = ws.run(&["--detach", "--detach-min-free", "1000TiB", "--no-verify", "--message-format", "json"]);
    let s = summary(&out);
    assert!(s["purge_detached"].is_null() && s["removed"]["files"].as_u64().unwrap() > 0, "{s}");
}

#[test]
fn detach_options_are_checked() {
    let ws = Ws::new(false);
    for (args, says) in [
        (&["--detach-min-free", "1GiB"][..], "--detach"),
        (&["--detach", "--detach-min-free", "lots"][..], "write it like 5GiB"),
        (&["--detach", "--unlock"][..], "cannot be used with"),
    ] {
        let out = ws.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn the_deleter_deletes_nothing_but_trash() {
    let ws = Ws::new(false);
    ws.build();
    let src = ws.root().join("src");
    let named_like_trash = ws.root().join(".safeclean-trash-backup");
    std::fs::create_dir(&named_like_trash).unwrap();
    for path in [&src, &named_like_trash, &PathBuf::from("target/.safeclean-trash-1-ab")] {
        let out = std::process::Command::new(safeclean_exe()).arg("--purge-detached").arg(path).output_bounded();
        assert_eq!(out.status.code(), Some(2), "{}: {}", path.display(), stderr(&out));
        assert!(stderr(&out).contains("is not a trash path of this tool"), "{}", stderr(&out));
    }
    assert!(src.join("lib.rs").is_file() && named_like_trash.is_dir());
}

#[test]
fn a_foreground_run_during_a_detached_purge_leaves_its_trash_to_it() {
    let (ws, _rv, first) = stopped_mid_way();
    let out = ws.run(&["--no-verify", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("a detached purge of this tool is deleting it"), "{}", stderr(&out));
    let s = summary(&out);
    assert!(s["holders"].as_array().unwrap().is_empty(), "the deleter was no holder");
    let left = s["left"].as_array().unwrap_or_else(|| panic!("the summary says what was left: {s}"));
    assert!(left[0]["reason"].as_str().unwrap().contains(&format!("pid {}", first.id.pid)), "{s}");
    assert!(alive(first.id.pid), "the foreground run left the deleter alone");
    let left = leftovers(&ws);
    assert!(
        matches!(&left[..], [t] if t.parent() == Some(&*ws.target())),
        "one trash dir inside target/, holding the busy one, and nothing beside: {left:?}"
    );
    assert!(first.trash.iter().all(|t| !t.exists()), "the busy trash went with the old tree");

    send(first.id.pid, rustix::process::Signal::CONT);
    assert!(ends(&first));
    let out = ws.run(&["--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(leftovers(&ws), Vec::<PathBuf>::new(), "the next run removes what remains");
    assert_eq!(tree(&ws.target()), [PathBuf::from("CACHEDIR.TAG")]);
}

#[test]
fn a_deleter_waits_for_a_trash_dir_another_purge_holds_only_as_long_as_told() {
    // The first deleter is stopped while it holds its trash; the second meets it inside its own trash.
    let (ws, mut rv, first) = stopped_mid_way();
    let out = ws.run(&["--detach", "--no-verify", "--lock-timeout", "1s", "--message-format", "json"]);
    let second = detached(&out, &mut rv);
    assert!(ends(&second), "the second deleter gave up on the held trash after --lock-timeout");
    let log = std::fs::read_to_string(&second.log).expect("a deleter that left something keeps its log");
    assert!(log.contains("held its lock past --lock-timeout"), "{log}");
    send(first.id.pid, rustix::process::Signal::CONT);
    assert!(ends(&first));
    let out = ws.run(&["--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(leftovers(&ws), Vec::<PathBuf>::new(), "the next run removes what remains");
}
