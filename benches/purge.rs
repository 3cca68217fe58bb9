//! Removal speed: `cargo safeclean` against `rmz`, `rm -rf` and `cargo clean` on two corpora — a real target dir
//! (debug, release and doc of a project with 150+ dependencies) and a synthetic tree of 300,000 small files in
//! 1,500 dirs — measuring the median time, the time until target/ is usable again, the time until the old tree is
//! gone (later than the command's exit only with `--detach`), and peak memory. Every run gets a fresh copy of the
//! corpus (`cp -a`), so every run frees real blocks.
//!
//! Run with `bench/purge.sh`, which builds the real corpus and installs rmz. Environment:
//! `SAFECLEAN_BENCH_REAL_TARGET` (the real corpus), `SAFECLEAN_BENCH_RUNS` (default 5),
//! `SAFECLEAN_BENCH_THREADS` (also compare these purge worker counts, e.g. `2,4,8,16,32`),
//! `SAFECLEAN_BENCH_DETACH_THREADS` (also compare these detached deleter worker counts, e.g. `2,16`),
//! `SAFECLEAN_BENCH_ONLY` (run only these tools, by name, e.g. `cargo safeclean`), `SAFECLEAN_BENCH_BASELINE` (another
//! `cargo-safeclean` binary, e.g. of an earlier commit, measured in the same run as `cargo safeclean (baseline)`).

//!
//! On Windows (`bench/purge-wine.sh` runs it under Wine here) it times the library's purge against what `cargo
//! clean` does there (std's `remove_dir_all`) and `cmd /c rd /s /q`, on a synthetic tree with read-only files.

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]
#![cfg_attr(unix, expect(clippy::cast_precision_loss, reason = "sizes for display"))]

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

    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use common::{Ws, clean_env, safeclean_exe};

    struct Tool {
        name: String,
        /// The program and its arguments, run in the workspace root.
        argv: Vec<String>,
        env: Vec<(String, String)>,
    }

    struct Sample {
        total: Duration,
        usable: Duration,
        /// Until nothing of the old tree is left: no trash inside target/, nothing set aside beside it.
        gone: Duration,
        rss_kib: u64,
    }

    pub fn main() {
        let runs: usize = std::env::var("SAFECLEAN_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
        let scratch = tempfile::Builder::new().prefix("safeclean-bench-").tempdir_in(bench_dir()).unwrap();
        let synthetic = scratch.path().join("synthetic");
        make_synthetic(&synthetic, 1500, 200);
        let mut corpora = vec![("synthetic: 300,000 files in 1,500 dirs".to_string(), synthetic)];
        if let Some(real) = std::env::var_os("SAFECLEAN_BENCH_REAL_TARGET") {
            let real = PathBuf::from(real);
            let (files, bytes) = count(&real);
            corpora.insert(
                0,
                (format!("real target dir: {files} files, {:.1} GiB", bytes as f64 / 1_073_741_824.0), real),
            );
        } else {
            println!("(SAFECLEAN_BENCH_REAL_TARGET not set: the real corpus is skipped)");
        }
        let mut tools = vec![
            tool("cargo safeclean", &[&safeclean_exe().display().to_string(), "safeclean", "--no-verify", "-q"], &[]),
            tool(
                "cargo safeclean --detach",
                &[&safeclean_exe().display().to_string(), "safeclean", "--detach", "--no-verify", "-q"],
                &[],
            ),
            tool("rmz", &["rmz", "target"], &[]),
            tool("rm -rf", &["rm", "-rf", "target"], &[]),
            tool("cargo clean", &[env!("CARGO"), "clean", "-q"], &[]),
        ];
        if let Ok(list) = std::env::var("SAFECLEAN_BENCH_THREADS") {
            for n in list.split(',').filter(|n| !n.is_empty()) {
                let exe = safeclean_exe().display().to_string();
                tools.push(tool(
                    &format!("safeclean, {n} workers"),
                    &[&exe, "safeclean", "--no-verify", "-q"],
                    &[("SAFECLEAN_PURGE_THREADS", n)],
                ));
            }
        }
        if let Ok(list) = std::env::var("SAFECLEAN_BENCH_DETACH_THREADS") {
            for n in list.split(',').filter(|n| !n.is_empty()) {
                let exe = safeclean_exe().display().to_string();
                tools.push(tool(
                    &format!("--detach ({n} workers)"),
                    &[&exe, "safeclean", "--detach", "--no-verify", "-q"],
                    &[("SAFECLEAN_DETACH_THREADS", n)],
                ));
            }
        }
        if let Ok(baseline) = std::env::var("SAFECLEAN_BENCH_BASELINE") {
            tools.insert(1, tool("cargo safeclean (baseline)", &[&baseline, "safeclean", "--no-verify", "-q"], &[]));
        }
        if let Ok(only) = std::env::var("SAFECLEAN_BENCH_ONLY") {
            let keep: Vec<&str> = only.split(',').collect();
            tools.retain(|t| keep.contains(&t.name.as_str()));
        }
        for (label, source) in &corpora {
            println!("\n## {label}, median of {runs} runs\n");
            println!(
                "| tool | median time | target usable after | old tree gone after | peak RSS | time vs rmz | time vs rm -rf |"
            );
            println!("|---|---|---|---|---|---|---|");
            let mut results: Vec<(String, Vec<Sample>)> = tools.iter().map(|t| (t.name.clone(), Vec::new())).collect();
            for _ in 0..runs {
                // Interleaved, so that a slow phase of the disk hurts every tool alike.
                for (t, (_, samples)) in tools.iter().zip(results.iter_mut()) {
                    samples.push(run_once(t, source, scratch.path()));
                }
            }
            let median_of = |name: &str| {
                results.iter().find(|(n, _)| n == name).map_or(Duration::ZERO, |(_, s)| median(s, |s| s.total))
            };
            let (rmz, rm) = (median_of("rmz"), median_of("rm -rf"));
            for (name, samples) in &results {
                let total = median(samples, |s| s.total);
                let usable = median(samples, |s| s.usable);
                let gone = median(samples, |s| s.gone);
                let rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
                println!(
                    "| {name} | {:.3} s | {:.1} ms | {:.3} s | {:.1} MiB | {:.2}× | {:.2}× |",
                    total.as_secs_f64(),
                    usable.as_secs_f64() * 1000.0,
                    gone.as_secs_f64(),
                    rss as f64 / 1024.0,
                    total.as_secs_f64() / rmz.as_secs_f64(),
                    total.as_secs_f64() / rm.as_secs_f64(),
                );
            }
        }
    }

    fn tool(name: &str, argv: &[&str], env: &[(&str, &str)]) -> Tool {
        Tool {
            name: name.to_string(),
            argv: argv.iter().map(ToString::to_string).collect(),
            env: env.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect(),
        }
    }

    /// The disk the project lives on: /tmp may be another filesystem, and the corpus must sit on the measured disk.
    fn bench_dir() -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-scratch");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// One fresh copy of `source` as `target/` of a new workspace, then one timed run of `tool`.
    fn run_once(tool: &Tool, source: &Path, scratch: &Path) -> Sample {
        let ws = Ws::new_in(scratch);
        let target = ws.target();
        let copied = Command::new("cp").arg("-a").arg(source).arg(&target).status().unwrap();
        assert!(copied.success(), "cp -a {}", source.display());
        // The copy's writeback must not be billed to the tool.
        let _ = Command::new("sync").status();
        let old_inode = std::fs::metadata(&target).unwrap().ino();
        let rss_file = scratch.join("rss");
        let mut cmd = Command::new("/usr/bin/time");
        clean_env(&mut cmd).arg("-o").arg(&rss_file).args(["-f", "%M"]).args(&tool.argv).current_dir(ws.root());
        cmd.envs(tool.env.iter().map(|(k, v)| (k, v))).stdout(Stdio::null()).stderr(Stdio::null());
        let start = Instant::now();
        let mut child = cmd.spawn().unwrap();
        // Usable: a target dir other than the old one exists (ours), or the old one is gone (the others: cargo
        // recreates it at the next build). Polled, since only the outside can see it for every tool alike.
        let mut usable = None;
        let status = loop {
            if usable.is_none() {
                let now_ok = match std::fs::symlink_metadata(&target) {
                    Ok(m) => m.ino() != old_inode,
                    Err(_) => true,
                };
                if now_ok {
                    usable = Some(start.elapsed());
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        let total = start.elapsed();
        assert!(status.success(), "{} failed", tool.name);
        // A detached deleter goes on after the exit; it is not our child, so only the tree tells when it is done.
        let deadline = Instant::now() + Duration::from_hours(1);
        while old_tree_left(ws.root()) {
            assert!(Instant::now() < deadline, "{}: the old tree is still there after an hour", tool.name);
            std::thread::sleep(Duration::from_millis(1));
        }
        let gone = start.elapsed();
        let rss_kib =
            std::fs::read_to_string(&rss_file).unwrap().lines().last().unwrap_or("0").trim().parse().unwrap_or(0);
        let _ = std::fs::remove_dir_all(ws.root());
        Sample { total, usable: usable.unwrap_or(total), gone, rss_kib }
    }

    /// Whether anything of the old tree is left in or beside the workspace's target/.
    fn old_tree_left(root: &Path) -> bool {
        let names = |dir: &Path| -> Vec<String> {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into())
                .collect()
        };
        names(&root.join("target")).iter().any(|n| n.starts_with(cargo_safeclean::layout::TRASH_PREFIX))
            || names(root).iter().any(|n| n.contains(".safeclean-"))
    }

    fn make_synthetic(dir: &Path, dirs: usize, files: usize) {
        for d in 0..dirs {
            let sub = dir.join(format!("debug/deps/crate-{:04}/{}", d, d % 7));
            std::fs::create_dir_all(&sub).unwrap();
            for f in 0..files {
                std::fs::write(sub.join(format!("obj-{f}.o")), [b'x'; 200]).unwrap();
            }
        }
        std::fs::write(dir.join("CACHEDIR.TAG"), cargo_safeclean::layout::CACHEDIR_TAG).unwrap();
    }

    fn count(dir: &Path) -> (u64, u64) {
        let (mut files, mut bytes) = (0, 0);
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let m = e.metadata().unwrap();
                if m.is_dir() {
                    stack.push(e.path());
                } else {
                    files += 1;
                    bytes += m.len();
                }
            }
        }
        (files, bytes)
    }

    fn median(samples: &[Sample], key: impl Fn(&Sample) -> Duration) -> Duration {
        let mut v: Vec<Duration> = samples.iter().map(key).collect();
        v.sort();
        v[v.len() / 2]
    }
}

#[cfg(windows)]
mod win {
    use std::path::Path;
    use std::process::Command;
    use std::time::{Duration, Instant};

    use cargo_safeclean::interrupt::Interrupt;
    use cargo_safeclean::platform::Files;
    use cargo_safeclean::platform::windows::fs;
    use cargo_safeclean::purge::{self, Busy, Progress, Settings, TrashRoot};

    const DIRS: usize = 100;
    const FILES: usize = 50;
    const RUNS: usize = 3;

    /// `DIRS` dirs of `FILES` files of 200 bytes, every tenth file read-only (cargo's `.git` objects in a
    /// dependency's checkout are).
    fn corpus(root: &Path) {
        for d in 0..DIRS {
            let dir = root.join(format!("deps-{d}")).join("out");
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..FILES {
                let file = dir.join(format!("f-{f}.rlib"));
                std::fs::write(&file, [7u8; 200]).unwrap();
                if f % 10 == 0 {
                    let mut perms = std::fs::metadata(&file).unwrap().permissions();
                    perms.set_readonly(true);
                    std::fs::set_permissions(&file, perms).unwrap();
                }
            }
        }
    }

    fn time(name: &str, mut remove: impl FnMut(&Path)) -> Duration {
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("trash");
            corpus(&root);
            let start = Instant::now();
            remove(&root);
            times.push(start.elapsed());
            assert!(!root.exists(), "{name} left {}", root.display());
        }
        times.sort();
        times[RUNS / 2]
    }

    pub fn main() {
        let workers = purge::default_workers(std::thread::available_parallelism().map_or(2, usize::from));
        let settings = Settings { workers, files: Files, busy: Busy::Skip, lock_timeout: Duration::ZERO };
        let interrupt = Interrupt::manual().unwrap();
        let ours = time("the purge", |root| {
            let h = fs::open_dir(root, fs::Access::Read).unwrap();
            let id = fs::info(&h).unwrap().id;
            drop(h);
            let roots = [TrashRoot { path: root.to_path_buf(), parent: None, id }];
            let purged = purge::purge(&roots, settings, None, &Progress::default(), &interrupt);
            assert!(purged.problems.errors.is_empty(), "{:?}", purged.problems.errors);
        });
        let std_all = time("remove_dir_all", |root| {
            // std refuses read-only files on Windows before 1.86's POSIX delete falls back: clear them as cargo does.
            std::fs::remove_dir_all(root).or_else(|_| clear_and_remove(root)).unwrap();
        });
        let rd = time("rd /s /q", |root| {
            let out = Command::new("cmd").arg("/c").arg("rd").arg("/s").arg("/q").arg(root).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        });
        let total = DIRS * FILES;
        println!(
            "removal on Windows UNDER WINE 8.0 (not Windows): {total} files of 200 bytes in {DIRS} dirs, every tenth \
             read-only; medians of {RUNS} runs"
        );
        println!("  cargo safeclean's purge ({workers} workers): {:>9.1} ms  {:.2}x", ms(ours), ms(ours) / ms(std_all));
        println!("  std::fs::remove_dir_all (cargo clean):   {:>9.1} ms  1.00x", ms(std_all));
        println!("  cmd /c rd /s /q:                         {:>9.1} ms  {:.2}x", ms(rd), ms(rd) / ms(std_all));
    }

    /// What `cargo clean` does when a read-only file stops `remove_dir_all`: clear the attribute and try again.
    fn clear_and_remove(root: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(root)? {
            let path = entry?.path();
            if path.is_dir() {
                clear_and_remove(&path)?;
            } else {
                let mut perms = std::fs::metadata(&path)?.permissions();
                #[expect(clippy::permissions_set_readonly_false, reason = "Windows: the read-only attribute")]
                perms.set_readonly(false);
                std::fs::set_permissions(&path, perms)?;
            }
        }
        std::fs::remove_dir_all(root)
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }
}
