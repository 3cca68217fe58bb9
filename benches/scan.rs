//! Holder scan speed: 500 background processes each holding a few files, ten of them inside the target dir.
//! Times the scan stage of `cargo safeclean --dry-run` (the library's `scan`, as the dry run calls it), the whole
//! `cargo safeclean --dry-run` command, and `lsof -n -F pcfn`, in one run, and prints medians and ratios. Two parts
//! of the native scan are also timed alone: reading every process (the system calls: `/proc` on Linux, libproc on
//! macOS) and placing what was read under the roots (`platform/held.rs`, the logic every OS shares). The rest of the
//! stage is asking for the lock states of the few files under the roots, describing the holders, and joining.
//!
//! Run with `bench/scan.sh` (it builds the holder fixture and the release binary first).

//!
//! On Windows (`bench/scan-wine.sh` runs it under Wine here) it times the native scan's parts instead, with
//! [`win::PROCESSES`] holders of the Windows fixture: the system handle table, the module snapshots, the process
//! table alone, and the whole stage that reads them all.

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

#[cfg(unix)]
fn main() {
    imp::main();
}

#[cfg(windows)]
fn main() {
    win::main();
}

#[cfg(unix)]
#[path = "../tests/common/mod.rs"]
mod common;

#[cfg(unix)]
mod imp {
    use super::common;

    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use cargo_safeclean::model::Roots;
    use cargo_safeclean::platform::held::Places;
    use cargo_safeclean::platform::{self, Platform};
    use cargo_safeclean::scan::scan;
    use common::{Bounded, Rendezvous, Ws, holder_exe};

    const PROCESSES: usize = 500;
    const INSIDE: usize = 10;
    const RUNS: usize = 15;
    /// The pid the scan leaves out with its family. The holders are this benchmark's children, which a scan as
    /// `std::process::id()` would leave out: the scan runs here as a bystander, as the tool is to them.
    const NOT_A_PID: u32 = u32::MAX;

    pub fn main() {
        let ws = Ws::new(false);
        ws.build();
        let outside = tempfile::tempdir().unwrap();
        let mut rv = Rendezvous::new();
        let exe = holder_exe();
        for i in 0..PROCESSES {
            let dir = if i < INSIDE { ws.target().join("debug") } else { outside.path().to_path_buf() };
            let files: Vec<String> = (0..3).map(|j| dir.join(format!("held-{i}-{j}")).display().to_string()).collect();
            rv.holder(&exe, &["--open", &files[0], "--open", &files[1], "--open", &files[2]]);
        }
        let roots = Roots::new([ws.target().as_path()]);
        let native = Platform::native();
        let portable = Platform::portable("lsof".into());
        let lsof_holders = Platform { holders: portable.holders.clone(), ..native.clone() };
        for platform in [&native, &portable] {
            let found = scan(platform, &roots, NOT_A_PID).unwrap().found.len();
            assert_eq!(found, INSIDE, "the scan finds exactly the holders inside target/");
        }

        let stage = |p: &Platform| median(|| drop(scan(p, &roots, NOT_A_PID).unwrap()));
        let read = median(|| drop(platform::native::snapshot(NOT_A_PID, true).unwrap()));
        // Each placing needs a fresh read: only the placing is timed, and its result is dropped after the clock stops
        // (freeing what the read allocated is the read's cost, and it takes longer than the placing itself). No lock
        // states are asked for: those are system calls (`/proc/locks`, `fdinfo`), timed with the whole stage.
        let place = median_of(|| {
            let snapshot = platform::native::snapshot(NOT_A_PID, true).unwrap();
            let places = Places::of(&roots);
            let start = Instant::now();
            let scanned = snapshot.holders(&places, |_, _| None);
            let took = start.elapsed();
            assert_eq!(scanned.found.len(), INSIDE);
            drop(scanned);
            took
        });
        let table = |p: &Platform| median(|| drop(p.snapshot(NOT_A_PID).unwrap()));
        let (native_stage, lsof_stage, portable_stage) = (stage(&native), stage(&lsof_holders), stage(&portable));
        let (proc_table, sysinfo_table) = (table(&lsof_holders), table(&portable));
        let ps_table = median(|| {
            let out = Command::new("ps")
                .args(["-axo", "pid=,ppid=,pgid=,stat=,lstart=,comm=,args="])
                .stderr(Stdio::null())
                .output()
                .expect("ps is installed");
            assert!(!out.stdout.is_empty());
        });
        let lsof = median(|| {
            let out = Command::new("lsof")
                .args(["-n", "-F", "pcfn"])
                .stderr(Stdio::null())
                .output()
                .expect("lsof is installed");
            assert!(!out.stdout.is_empty());
        });
        let dry_run = median(|| {
            let out = ws.run(&["--dry-run", "-q"]);
            assert!(out.status.success());
        });
        let portable_dry_run = median(|| {
            let out = ws.safeclean(&["--dry-run", "-q"]).env("SAFECLEAN_PLATFORM", "portable").output_bounded();
            assert!(out.status.success());
        });
        println!(
            "holder scan, {PROCESSES} processes holding 3 files each, {INSIDE} inside target/; medians of {RUNS} runs"
        );
        // The native implementation's name here: the figures from a Mac say which one they are.
        let native_name = if cfg!(target_os = "macos") { "libproc" } else { "/proc" };
        println!(
            "  scan stage, native ({native_name}):{:>width$.2} ms",
            ms(native_stage),
            width = 29 - native_name.len()
        );
        println!("    reading every process (system calls):    {:>8.2} ms", ms(read));
        println!("    placing it under the roots (held.rs):    {:>8.2} ms", ms(place));
        println!("  scan stage, native table + lsof holders:   {:>8.2} ms", ms(lsof_stage));
        println!("  scan stage, portable (sysinfo + lsof):     {:>8.2} ms", ms(portable_stage));
        println!("  process table alone, native:               {:>8.2} ms", ms(proc_table));
        println!("  process table alone, sysinfo + getpgid:    {:>8.2} ms", ms(sysinfo_table));
        println!("  ps -axo pid,ppid,pgid,stat,lstart,comm,args: {:>6.2} ms", ms(ps_table));
        println!("  lsof -n -F pcfn:                           {:>8.2} ms", ms(lsof));
        println!("  cargo safeclean --dry-run (whole):         {:>8.2} ms  (includes `cargo metadata`)", ms(dry_run));
        println!("  ... with SAFECLEAN_PLATFORM=portable:      {:>8.2} ms", ms(portable_dry_run));
        println!(
            "  ratio native scan stage / lsof:            {:>8.3}  (goal: at most 0.25)",
            ms(native_stage) / ms(lsof)
        );
        println!("  ratio portable scan stage / lsof:          {:>8.3}", ms(portable_stage) / ms(lsof));
        println!("  ratio whole dry run / lsof:                {:>8.3}", ms(dry_run) / ms(lsof));
    }

    fn median(mut f: impl FnMut()) -> Duration {
        median_of(|| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
    }

    /// The median of what `f` measured itself.
    fn median_of(mut f: impl FnMut() -> Duration) -> Duration {
        f(); // warm-up
        let mut times: Vec<Duration> = (0..RUNS).map(|_| f()).collect();
        times.sort();
        times[RUNS / 2]
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }
}

#[cfg(windows)]
mod win {
    use std::io::{BufRead, BufReader};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use cargo_safeclean::model::Roots;
    use cargo_safeclean::platform::Platform;
    use cargo_safeclean::platform::windows::{handles, modules};
    use cargo_safeclean::scan::scan;

    /// Holders started; each holds [`FILES`] files, [`INSIDE`] of them inside the target dir.
    pub const PROCESSES: usize = 60;
    const FILES: usize = 4;
    const INSIDE: usize = 10;
    const RUNS: usize = 9;
    const NOT_A_PID: u32 = u32::MAX;

    /// Stops the holders by pid when the benchmark ends.
    struct Holders(Vec<Child>);

    impl Drop for Holders {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// The Windows fixture, beside this benchmark's exe (`target/<triple>/release/examples/`).
    fn fixture() -> PathBuf {
        let me = std::env::current_exe().unwrap();
        let dir = me.parent().unwrap().parent().unwrap();
        let path = dir.join(r"examples\safeclean-test-windows.exe");
        assert!(path.is_file(), "{} is missing: build the examples first", path.display());
        path
    }

    pub fn main() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(target.join("debug")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let exe = fixture();
        let mut holders = Holders(Vec::new());
        for i in 0..PROCESSES {
            let dir = if i < INSIDE { target.join("debug") } else { outside.clone() };
            let mut cmd = Command::new(&exe);
            cmd.arg("hold").arg("--forever");
            for j in 0..FILES {
                let f = dir.join(format!("held-{i}-{j}"));
                std::fs::write(&f, "x").unwrap();
                cmd.arg("--open").arg(&f);
            }
            let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).spawn().unwrap();
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
            assert!(line.starts_with("ready"), "holder {i} did not start: {line:?}");
            holders.0.push(child);
        }
        let roots = Roots::new([target.as_path()]);
        let native = Platform::native();
        let found = scan(&native, &roots, NOT_A_PID).unwrap().found;
        assert_eq!(found.len(), INSIDE, "the scan finds exactly the holders inside target");

        let pids: Vec<u32> = holders.0.iter().map(Child::id).collect();
        let handle_count = handles::table().unwrap().len();
        let stage = median(|| drop(scan(&native, &roots, NOT_A_PID).unwrap()));
        let table = median(|| drop(Platform { holders: false, ..native.clone() }.snapshot(NOT_A_PID).unwrap()));
        let handle_table = median(|| {
            let mut namer = handles::Namer::start();
            let entries = handles::table().unwrap();
            for &pid in &pids {
                let mine: Vec<handles::Entry> = entries.iter().filter(|e| e.pid == pid).copied().collect();
                drop(handles::held_by(pid, &mine, None, &mut namer));
            }
        });
        let module_snapshots = median(|| {
            for &pid in &pids {
                drop(modules::images(pid));
            }
        });
        println!(
            "holder scan on Windows UNDER WINE 8.0 (not Windows): {PROCESSES} processes holding {FILES} files each, \
             {INSIDE} inside target; {handle_count} handles in the system table; medians of {RUNS} runs"
        );
        println!("  scan stage, whole (table + handles + modules): {:>8.2} ms", ms(stage));
        println!("  process table alone (sysinfo):                 {:>8.2} ms", ms(table));
        println!("  handle table, the holders' handles named:      {:>8.2} ms", ms(handle_table));
        println!("  module snapshots of the holders:               {:>8.2} ms", ms(module_snapshots));
    }

    fn median(mut f: impl FnMut()) -> Duration {
        f();
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect();
        times.sort();
        times[RUNS / 2]
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }
}
