//! Holder scan speed: 500 background processes each holding a few files, ten of them inside the target dir.
//! Times the scan stage of `cargo safeclean --dry-run` (the library's `scan`, as the dry run calls it), the whole
//! `cargo safeclean --dry-run` command, and `lsof -n -F pcfn`, in one run, and prints medians and ratios.
//!
//! Run with `bench/scan.sh` (it builds the holder fixture and the release binary first).

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cargo_safeclean::model::Roots;
use cargo_safeclean::platform::Platform;
use cargo_safeclean::scan::scan;
use common::{Rendezvous, Ws, holder_exe};

const PROCESSES: usize = 500;
const INSIDE: usize = 10;
const RUNS: usize = 15;
/// The pid the scan leaves out with its family. The holders are this benchmark's children, which a scan as
/// `std::process::id()` would leave out: the scan runs here as a bystander, as the tool is to them.
const NOT_A_PID: u32 = u32::MAX;

fn main() {
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
    let found = scan(&Platform::native(), &roots, NOT_A_PID).unwrap().found.len();
    assert_eq!(found, INSIDE, "the scan finds exactly the holders inside target/");

    let lib = median(|| {
        scan(&Platform::native(), &roots, NOT_A_PID).unwrap();
    });
    let lsof = median(|| {
        let out =
            Command::new("lsof").args(["-n", "-F", "pcfn"]).stderr(Stdio::null()).output().expect("lsof is installed");
        assert!(!out.stdout.is_empty());
    });
    let dry_run = median(|| {
        let out = ws.run(&["--dry-run", "-q"]);
        assert!(out.status.success());
    });
    let lsof_backend = median(|| {
        scan(&Platform::portable("lsof".into()), &roots, NOT_A_PID).unwrap();
    });
    println!(
        "holder scan, {PROCESSES} processes holding 3 files each, {INSIDE} inside target/; medians of {RUNS} runs"
    );
    println!("  scan stage (/proc backend):        {:>8.2} ms", ms(lib));
    println!("  scan stage (lsof backend):         {:>8.2} ms", ms(lsof_backend));
    println!("  lsof -n -F pcfn:                   {:>8.2} ms", ms(lsof));
    println!("  cargo safeclean --dry-run (whole): {:>8.2} ms  (includes `cargo metadata`)", ms(dry_run));
    println!("  ratio scan stage / lsof:           {:>8.3}  (goal: at most 0.5)", ms(lib) / ms(lsof));
    println!("  ratio whole dry run / lsof:        {:>8.3}", ms(dry_run) / ms(lsof));
}

fn median(mut f: impl FnMut()) -> Duration {
    f(); // warm-up
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
