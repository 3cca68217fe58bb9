//! `--sweep`: whole units removed by criteria under cargo's locks, with real cargo builds of a workspace with a
//! build script, a proc-macro and a path dependency; every unit kept stays fresh, every unit removed is rebuilt.

// The fixtures and the pipeline these tests drive are Unix only so far (see the README's Platforms).
#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// Debian's cargo and rustc (1.96, `cargo-web`): a second toolchain beside rustup's.
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";

/// With a socket path, the build script says `ready PID` there and waits for a line (or EOF) before it goes on.
const HANG_ENV: &str = "SAFECLEAN_TEST_HANG";
/// With a socket path, the library's `hold` test says `ready PID` there and waits for EOF: a live test binary.
const HOLD_ENV: &str = "SAFECLEAN_TEST_HOLD";

const BUILD_RS: &str = r#"
use std::io::{BufRead, Write};
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SAFECLEAN_TEST_HANG");
    println!("cargo:rustc-env=GENERATED=yes");
    if let Ok(sock) = std::env::var("SAFECLEAN_TEST_HANG") {
        let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connect");
        writeln!(s, "ready {}", std::process::id()).expect("notify");
        let mut line = String::new();
        let _ = std::io::BufReader::new(s).read_line(&mut line);
    }
}
"#;

const LIB_RS: &str = r#"
mac::answer!();
pub fn total() -> u32 { answer() + dep::one() + env!("GENERATED").len() as u32 }

#[cfg(test)]
mod tests {
    #[test]
    fn hold() {
        use std::io::{Read, Write};
        if let Ok(sock) = std::env::var("SAFECLEAN_TEST_HOLD") {
            let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connect");
            writeln!(s, "ready {}", std::process::id()).expect("notify");
            let _ = s.read(&mut [0u8; 1]);
        }
        assert_eq!(super::total(), 46);
    }
}
"#;

/// A workspace: `app` (a library, a binary and a build script) depends on the path dependency `dep` and the
/// proc-macro `mac`.
fn workspace() -> Ws {
    let ws = Ws::new(false);
    let root = ws.root();
    let write = |rel: &str, text: &str| {
        std::fs::create_dir_all(root.join(rel).parent().unwrap()).unwrap();
        std::fs::write(root.join(rel), text).unwrap();
    };
    write(
        "Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nmac = { path = \"mac\" }\n\
         dep = { path = \"dep\" }\n\n[workspace]\n",
    );
    write("build.rs", BUILD_RS);
    write("src/lib.rs", LIB_RS);
    write("src/main.rs", "fn main() { println!(\"{}\", app::total()); }\n");
    write("examples/ex.rs", "fn main() { println!(\"{}\", app::total()); }\n");
    write(
        "mac/Cargo.toml",
        "[package]\nname = \"mac\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\nproc-macro = true\n",
    );
    write(
        "mac/src/lib.rs",
        "use proc_macro::TokenStream;\n#[proc_macro]\npub fn answer(_: TokenStream) -> TokenStream {\n    \
         \"pub fn answer() -> u32 { 42 }\".parse().unwrap()\n}\n",
    );
    write("dep/Cargo.toml", "[package]\nname = \"dep\"\nversion = \"0.1.0\"\nedition = \"2021\"\n");
    write("dep/src/lib.rs", "pub fn one() -> u32 { 1 }\n");
    ws
}

/// Which cargo builds.
#[derive(Clone, Copy)]
enum Toolchain {
    /// The cargo the tests run with (rustup's stable).
    Current,
    /// Debian's 1.96.
    Debian,
}

fn cargo_of(ws: &Ws, toolchain: Toolchain, args: &[&str]) -> Command {
    match toolchain {
        Toolchain::Current => ws.cargo(args),
        Toolchain::Debian => {
            let mut debian = Command::new(DEBIAN_CARGO);
            clean_env(&mut debian).args(args).current_dir(ws.root()).stdin(Stdio::null());
            debian.env("CARGO", DEBIAN_CARGO).env("RUSTC", DEBIAN_RUSTC).env("RUSTDOC", "/usr/bin/rustdoc");
            debian
        }
    }
}

fn build(ws: &Ws, toolchain: Toolchain, args: &[&str]) {
    let mut all = vec!["build", "-q"];
    all.extend_from_slice(args);
    let out = cargo_of(ws, toolchain, &all).output_bounded();
    assert!(out.status.success(), "cargo build failed: {}", stderr(&out));
}

/// A build's compiled targets (`app lib`, `dep lib`, `build-script-build custom-build`) and whether each was fresh.
fn fresh(ws: &Ws, toolchain: Toolchain) -> BTreeMap<String, bool> {
    let out = cargo_of(ws, toolchain, &["build", "--message-format", "json"]).output_bounded();
    assert!(out.status.success(), "cargo build failed: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .map(|m| (format!("{} {}", m["target"]["name"].as_str().unwrap(), m["target"]["kind"][0]), m["fresh"] == true))
        .collect()
}

fn all_fresh(ws: &Ws, toolchain: Toolchain) {
    let built = fresh(ws, toolchain);
    assert!(built.len() >= 5, "{built:?}");
    let compiled: Vec<&String> = built.iter().filter(|(_, f)| !**f).map(|(n, _)| n).collect();
    assert!(compiled.is_empty(), "kept units were compiled again: {compiled:?}");
}

/// The entries of `target/debug/.fingerprint`: one per unit of the flat layout.
fn fingerprints(ws: &Ws) -> BTreeSet<String> {
    std::fs::read_dir(ws.target().join("debug/.fingerprint"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Runs a sweep with JSON lines: the output, its `swept` line, its summary.
fn sweep(ws: &Ws, args: &[&str]) -> (Output, serde_json::Value, serde_json::Value) {
    let mut all = vec!["--sweep", "--message-format", "json"];
    all.extend_from_slice(args);
    let out = ws.run(&all);
    let lines = json_lines(&out);
    let s = summary(&out);
    assert_eq!(s["mode"], "sweep", "{s}");
    let swept = lines.iter().rev().nth(1).cloned().unwrap_or_default();
    assert_eq!(swept["reason"], "swept", "the swept line comes right before the summary: {lines:?}");
    (out, swept, s)
}

fn units(swept: &serde_json::Value, criterion: &str) -> Vec<String> {
    swept["by_criterion"][criterion]["names"]
        .as_array()
        .map(|a| a.iter().map(|n| n.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Sets the access and modification times of everything under `path` to `days` ago (one instant for all: cargo
/// compares them), as a tree untouched that long has.
fn age(path: &Path, days: u32) {
    touch(path, days, "-h");
}

/// Sets only the access times under `path` to `days` ago: when it was last read, which cargo's freshness ignores.
fn used(path: &Path, days: u32) {
    touch(path, days, "-ha");
}

fn touch(path: &Path, days: u32, how: &str) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let when = format!("@{}", now - u64::from(days) * 86400);
    let ok = Command::new("find").arg(path).args(["-exec", "touch", how, "-d", &when, "{}", "+"]).status().unwrap();
    assert!(ok.success());
}

/// The unit dirs of package `name` under `.fingerprint` (`dep-…`).
fn units_of(ws: &Ws, name: &str) -> Vec<PathBuf> {
    let prefix = format!("{name}-");
    let fp = ws.target().join("debug/.fingerprint");
    fingerprints(ws).into_iter().filter(|f| f.starts_with(&prefix)).map(|f| fp.join(f)).collect()
}

/// Sets when every file of package `name`'s units (fingerprints, `deps/` and `build/` files, incremental sessions)
/// was last read.
fn used_package(ws: &Ws, name: &str, days: u32) {
    let debug = ws.target().join("debug");
    let crate_name = name.replace('-', "_");
    for area in ["deps", "build", "incremental"] {
        for e in std::fs::read_dir(debug.join(area)).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let krate = n.strip_prefix("lib").unwrap_or(&n);
            if krate.starts_with(&format!("{crate_name}-")) || n.starts_with(&format!("{name}-")) {
                used(&e.path(), days);
            }
        }
    }
    for u in units_of(ws, name) {
        used(&u, days);
    }
}

#[test]
#[ignore = "needs Debian's cargo 1.96 at /usr/bin/cargo (cargo-web); CI runs it with --include-ignored"]
fn sweeping_another_toolchain_keeps_every_unit_of_the_current_one_fresh() {
    assert!(
        Path::new(DEBIAN_CARGO).is_file() && Path::new(DEBIAN_RUSTC).is_file(),
        "needs Debian's cargo and rustc 1.96 (apt-get install cargo-web rustc-web), as .ci/run installs them"
    );
    let ws = workspace();
    build(&ws, Toolchain::Current, &["--bins", "--examples"]);
    let current = fingerprints(&ws);
    // Built last: the uplifted `target/debug/app` is 1.96's.
    build(&ws, Toolchain::Debian, &["--bins", "--examples"]);
    let examples = || {
        let dir = ws.target().join("debug/examples");
        std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("ex-")).count()
    };
    assert_eq!(examples(), 4, "each toolchain's example and its .d");
    let both = fingerprints(&ws);
    let other: BTreeSet<String> = both.difference(&current).cloned().collect();
    assert!(other.len() >= 5, "1.96 adds its own units beside 1.95's: {other:?}");

    let (dry, planned, _) = sweep(&ws, &["--other-toolchains", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    assert_eq!(fingerprints(&ws), both, "a dry run removes nothing");
    assert!(!units(&planned, "other-toolchain").is_empty(), "{planned}");

    let (out, swept, s) = sweep(&ws, &["--other-toolchains", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(swept["by_criterion"], planned["by_criterion"], "the run does what the dry run said");
    assert_eq!(fingerprints(&ws), current, "every 1.96 unit went, every 1.95 unit stayed");
    let names = units(&swept, "other-toolchain");
    assert!(other.iter().all(|o| names.contains(&format!("debug/{o}"))), "{names:?} {other:?}");
    assert!(names.iter().any(|n| n.starts_with("debug/incremental/")), "1.96's incremental sessions go too");
    assert!(swept["files"].as_u64().unwrap() > 0 && swept["bytes"].as_u64().unwrap() > 0, "{swept}");
    assert_eq!(s["removed"]["files"], swept["files"], "{s}");
    assert!(!ws.target().join("debug/app").exists(), "the uplifted binary went with its 1.96 unit");
    assert_eq!(examples(), 2, "1.96's example went with its unit, 1.95's stayed");
    assert!(
        std::fs::read_dir(ws.target()).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().contains("trash"))
    );

    // The current toolchain compiles nothing, and uplifts its own binary again; 1.96 rebuilds what it lost.
    all_fresh(&ws, Toolchain::Current);
    let run = Command::new(ws.target().join("debug/app")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "46");
    let rebuilt = fresh(&ws, Toolchain::Debian);
    assert!(rebuilt.values().all(|f| !f), "1.96 rebuilds every unit it lost: {rebuilt:?}");
}

#[test]
fn alone_it_removes_units_of_toolchains_no_longer_installed_and_orphans() {
    let ws = workspace();
    build(&ws, Toolchain::Current, &[]);
    let debug = ws.target().join("debug");
    // A unit of a rustc that is not installed: its fingerprint names a rustc hash of its own, and its metadata says
    // which rustc wrote it.
    let gone = "0123456789abcdef";
    let fp = debug.join(format!(".fingerprint/ghost-{gone}"));
    std::fs::create_dir_all(&fp).unwrap();
    std::fs::write(fp.join("lib-ghost"), "0100000000000000").unwrap();
    std::fs::write(fp.join("lib-ghost.json"), r#"{"rustc":42,"deps":[],"local":[]}"#).unwrap();
    let version = b"rustc 1.80.0 (051478957 2024-07-21)";
    let mut rmeta = b"rust\0\0\0\x09\0\0\0\0\0\0\0\0".to_vec();
    rmeta.push(u8::try_from(version.len()).unwrap());
    rmeta.extend_from_slice(version);
    std::fs::write(debug.join(format!("deps/libghost-{gone}.rmeta")), &rmeta).unwrap();
    std::fs::write(debug.join(format!("deps/libghost-{gone}.rlib")), "!<arch>\n").unwrap();
    // Outputs no fingerprint names, and what the macOS leak leaves: objects of a unit's earlier builds, under new
    // random names each time. One written after the unit's last build started is the current build's and stays.
    std::fs::write(debug.join("deps/libnobody-fedcba9876543210.rlib"), "x").unwrap();
    let app = units_of(&ws, "app").into_iter().find(|u| u.join("lib-app").is_file()).unwrap();
    let hash = app.file_name().unwrap().to_string_lossy().rsplit('-').next().unwrap().to_string();
    let stale = debug.join(format!("deps/app-{hash}.app.3ub6k5r8fw1v2o1m-cgu.0.rcgu.o"));
    let current = debug.join(format!("deps/app-{hash}.app.9zz0ab12cd34ef56-cgu.1.rcgu.o"));
    for o in [&stale, &current] {
        std::fs::write(o, vec![0u8; 4096]).unwrap();
    }
    age(&stale, 3);
    // And what a run that crashed left in the trash.
    let old_trash = ws.target().join(".safeclean-trash-1-ab");
    std::fs::create_dir_all(old_trash.join("debug/deps")).unwrap();
    std::fs::write(old_trash.join("debug/deps/libold-0000000000000000.rlib"), "x").unwrap();
    let before = fingerprints(&ws);

    let (out, swept, s) = sweep(&ws, &["--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(units(&swept, "uninstalled-toolchain"), [format!("debug/ghost-{gone}")], "{swept}");
    let orphans = units(&swept, "orphan");
    assert!(orphans.contains(&"debug/deps/libnobody-fedcba9876543210.rlib".to_string()), "{orphans:?}");
    assert!(orphans.iter().any(|o| o.ends_with("3ub6k5r8fw1v2o1m-cgu.0.rcgu.o")), "{orphans:?}");
    assert!(!orphans.iter().any(|o| o.contains("9zz0ab12cd34ef56")), "the current build's object stays");
    assert!(swept["by_criterion"].get("other-toolchain").is_none(), "only asked-for criteria: {swept}");
    assert!(!stale.exists() && current.exists() && !fp.exists() && !old_trash.exists());
    assert!(!debug.join(format!("deps/libghost-{gone}.rmeta")).exists());
    let mut expected = before.clone();
    expected.remove(&format!("ghost-{gone}"));
    assert_eq!(fingerprints(&ws), expected);
    assert_eq!(s["exit_code"], 0);
    all_fresh(&ws, Toolchain::Current);

    // Nothing left to sweep: a second run removes nothing, and says so.
    let again = ws.run(&["--sweep", "--no-verify"]);
    assert!(stderr(&again).contains("nothing to sweep"), "{}", stderr(&again));
}

#[test]
fn older_than_goes_by_last_use_which_a_fresh_build_renews_and_the_sweep_does_not() {
    let ws = workspace();
    build(&ws, Toolchain::Current, &[]);
    let before = fingerprints(&ws);
    age(ws.root(), 30);
    let probe = units_of(&ws, "dep")[0].join("lib-dep");
    let atime = || std::fs::metadata(&probe).unwrap().atime();
    let aged = atime();

    let (_, planned, _) = sweep(&ws, &["--older-than", "14d", "--dry-run"]);
    let old = units(&planned, "older-than");
    assert!(old.len() >= before.len(), "every unit is unused for 30 days: {old:?}");
    assert!(units(&sweep(&ws, &["--older-than", "60d", "--dry-run"]).1, "older-than").is_empty());
    assert_eq!(atime(), aged, "taking stock reads fingerprints without touching their access time");

    // A build that finds everything fresh reads the fingerprints: on a relatime mount that is a use.
    all_fresh(&ws, Toolchain::Current);
    assert!(atime() > aged, "cargo's read renewed the access time (is the mount noatime?)");
    let (_, planned, _) = sweep(&ws, &["--older-than", "14d", "--dry-run"]);
    let still: Vec<String> =
        units(&planned, "older-than").into_iter().filter(|u| !u.starts_with("debug/incremental/")).collect();
    assert!(still.is_empty(), "units a fresh build used are not old: {still:?}");

    // Unused again: every unit goes, whole, and the next build rebuilds them all without an error.
    age(ws.root(), 30);
    let (out, swept, _) = sweep(&ws, &["--older-than", "14d", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(units(&swept, "older-than").len() >= before.len(), "{swept}");
    assert!(fingerprints(&ws).is_empty(), "{:?}", fingerprints(&ws));
    let rebuilt = fresh(&ws, Toolchain::Current);
    assert!(rebuilt.values().all(|f| !f), "{rebuilt:?}");
}

#[test]
fn a_size_budget_removes_the_least_recently_used_first() {
    let ws = workspace();
    build(&ws, Toolchain::Current, &[]);
    // Built 60 days ago; app's units last used 50 days ago, dep's 40, mac's 20: app goes first, then dep, mac last.
    age(ws.root(), 60);
    used_package(&ws, "app", 50);
    used_package(&ws, "build_script_build", 50);
    used_package(&ws, "dep", 40);
    used_package(&ws, "mac", 20);
    let total: u64 = tree(&ws.target())
        .iter()
        .filter_map(|p| std::fs::symlink_metadata(ws.target().join(p)).ok())
        .filter(|m| !m.is_dir())
        .map(|m| m.len())
        .sum();
    let budget = (total - 1).to_string();
    let (out, swept, _) = sweep(&ws, &["--max-size", &budget, "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let gone = units(&swept, "max-size");
    assert!(
        !gone.is_empty() && gone.iter().all(|u| u.contains("app-") || u.contains("build_script_build-")),
        "{gone:?}"
    );
    assert!(!units_of(&ws, "dep").is_empty() && !units_of(&ws, "mac").is_empty(), "the more recent stay");
    let rebuilt = fresh(&ws, Toolchain::Current);
    assert_eq!(rebuilt.get("dep \"lib\""), Some(&true), "{rebuilt:?}");
    assert_eq!(rebuilt.get("mac \"proc-macro\""), Some(&true), "{rebuilt:?}");

    // A budget nothing fits in: every unit goes, and the build still works.
    let (out, swept, _) = sweep(&ws, &["--max-size", "1", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(units(&swept, "max-size").iter().any(|u| u.contains("mac-")), "{swept}");
    assert!(fingerprints(&ws).is_empty());
    assert!(fresh(&ws, Toolchain::Current).values().all(|f| !f));
}

#[test]
fn a_live_test_binary_and_a_mapped_proc_macro_keep_their_units_whole() {
    let ws = workspace();
    build(&ws, Toolchain::Current, &[]);
    let out = ws.cargo(&["test", "--no-run", "--message-format", "json", "-q"]).output_bounded();
    assert!(out.status.success(), "{}", stderr(&out));
    let test_exe: PathBuf = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["target"]["kind"][0] == "lib")
        .find_map(|m| Some(PathBuf::from(m["executable"].as_str()?)))
        .unwrap();
    assert!(test_exe.starts_with(ws.target().join("debug/deps")), "{}", test_exe.display());
    let mut rv = Rendezvous::new();
    let test = rv.spawn(Command::new(&test_exe).args(["tests::hold", "--exact"]).env(HOLD_ENV, &rv.path));
    let so = std::fs::read_dir(ws.target().join("debug/deps"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "so"))
        .unwrap();
    let bin = tempfile::tempdir().unwrap();
    let ra = holder_named(bin.path(), "rust-analyzer-proc-macro-srv");
    let srv = rv.holder(&ra, &["--mmap", so.to_str().unwrap()]);
    age(ws.root(), 30);

    let (out, swept, _) = sweep(&ws, &["--older-than", "14d", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let kept = swept["kept"].as_array().unwrap();
    let by = |pid: u32| kept.iter().filter(|k| k["pid"] == pid && k["reason"] == "held").count();
    assert!(by(test.pid) >= 3, "the test unit and what it needs (dep, mac, the build script's run): {kept:?}");
    assert!(by(srv.pid) >= 1, "the mapped proc-macro's unit: {kept:?}");
    assert!(test_exe.is_file() && so.is_file(), "held files stay where they are");
    let test_unit = format!("app-{}", test_exe.file_name().unwrap().to_string_lossy().rsplit('-').next().unwrap());
    assert!(fingerprints(&ws).contains(&test_unit), "the test unit stays whole: {:?}", fingerprints(&ws));
    assert!(!units(&swept, "older-than").is_empty(), "what nothing holds goes: {swept}");
    assert!(stderr(&out).is_empty() || !stderr(&out).contains("error"), "{}", stderr(&out));
    // The held test binary is still the one cargo knows: `cargo test` finds its unit fresh.
    let again = ws.cargo(&["test", "--no-run", "--message-format", "json", "-q"]).output_bounded();
    let test_fresh = String::from_utf8_lossy(&again.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| m["executable"].as_str() == test_exe.to_str())
        .map(|m| m["fresh"] == true);
    assert_eq!(test_fresh, Some(true), "{}", String::from_utf8_lossy(&again.stdout));
    drop(test);
    drop(srv);
}

#[test]
fn a_build_that_holds_the_lock_past_the_bound_makes_the_sweep_skip_its_profile() {
    let ws = workspace();
    build(&ws, Toolchain::Current, &[]);
    age(ws.root(), 30);
    let before = fingerprints(&ws);
    let mut rv = Rendezvous::new();
    let mut cmd = ws.cargo(&["build"]);
    cmd.env(HANG_ENV, &rv.path);
    let script = rv.spawn(&mut cmd);

    let (out, swept, s) = sweep(&ws, &["--older-than", "14d", "--lock-timeout", "300ms", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(swept["units"], 0, "{swept}");
    let locked: Vec<&serde_json::Value> =
        swept["kept"].as_array().unwrap().iter().filter(|k| k["unit"].is_null()).collect();
    assert_eq!(locked.len(), 1, "{swept}");
    assert_eq!((&locked[0]["profile"], &locked[0]["reason"]), (&"debug".into(), &"locked".into()));
    assert!(locked[0]["path"].as_str().unwrap().ends_with("lock"), "{swept}");
    assert!(says(&out, "warning", "skipped the profile debug"), "{}", stderr(&out));
    assert!(stderr(&out).contains("cargo build"), "the build is named: {}", stderr(&out));
    assert!(s["removed"].is_null(), "{s}");
    assert!(fingerprints(&ws).is_superset(&before), "nothing was removed under the build");
    drop(script);
}

#[test]
fn a_build_that_lets_go_in_time_is_waited_for_and_finishes_first() {
    let ws = workspace();
    build(&ws, Toolchain::Current, &[]);
    let mut rv = Rendezvous::new();
    let mut cmd = ws.cargo(&["build"]);
    cmd.env(HANG_ENV, &rv.path).stdout(Stdio::null()).stderr(Stdio::piped());
    let (build_pid, _, build_err) = rv.start(&mut cmd);
    let script = rv.accept(Some(build_pid));

    // The sweep waits for the build's lock, and says who holds it.
    let mut sweep_cmd = ws.safeclean(&["--sweep", "--other-toolchains", "--lock-timeout", "2m", "--no-verify"]);
    sweep_cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let (sweep_pid, _, sweep_err) = rv.start(&mut sweep_cmd);
    let lines = Lines::of(sweep_err.unwrap());
    let blocking = lines.find(|l| l.contains("Blocking") && l.contains("target/debug/.cargo-lock"));
    if !blocking.contains("cargo build (pid") {
        lines.find(|l| l.contains("cargo build (pid"));
    }

    // The build goes on and ends; only then does the sweep run.
    let mut stream = script.into_stream();
    writeln!(stream, "go").unwrap();
    drop(stream);
    let built = rv.finish_adopted(build_pid);
    assert!(built.status.success(), "the build was never disturbed: {}", stderr(&built));
    drop(build_err);
    let swept = rv.finish_adopted(sweep_pid);
    assert_eq!(swept.status.code(), Some(0));
    let rest = lines.rest();
    assert!(rest.iter().any(|l| l.contains("Summary")), "{rest:?}");
    // The build script reruns once its environment is gone; what the sweep kept is fresh.
    let rebuilt = fresh(&ws, Toolchain::Current);
    assert_eq!((rebuilt.get("dep \"lib\""), rebuilt.get("mac \"proc-macro\"")), (Some(&true), Some(&true)));
}

#[test]
fn a_dry_run_tells_the_plan_per_criterion_and_if_free_below_decides_whether_to_act() {
    let ws = workspace();
    build(&ws, Toolchain::Current, &[]);
    age(ws.root(), 30);
    let out = ws.run(&["--sweep", "--older-than", "14d", "--dry-run", "-v"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Would sweep") && err.contains("unused for longer than --older-than"), "{err}");
    assert!(err.contains("debug/dep-"), "-v names each unit: {err}");
    assert!(err.contains("dry run: would sweep"), "{err}");
    assert!(says(&out, "help", "without --dry-run"), "{err}");

    // Plenty of space: nothing to do, for a sweep and for a clean.
    let tag = std::fs::metadata(ws.target()).unwrap().ino();
    let (out, swept, s) = sweep(&ws, &["--older-than", "14d", "--if-free-below", "1B"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(swept["units"], 0);
    assert!(swept["free_space"]["free"].as_u64().unwrap() > 1, "{swept}");
    assert!(s["verify"].is_null(), "nothing done, nothing to verify: {s}");
    let human = ws.run(&["--sweep", "--if-free-below", "1B"]);
    assert!(stderr(&human).contains("nothing to do"), "{}", stderr(&human));
    let clean = ws.run(&["--if-free-below", "1B", "--message-format", "json"]);
    let cs = summary(&clean);
    assert!(cs["removed"].is_null() && cs["free_space"]["below"] == 1, "{cs}");
    assert_eq!(std::fs::metadata(ws.target()).unwrap().ino(), tag, "the target dir was not swapped");
    // Too little space (a floor above any disk): the sweep runs, and the verifying check after it passes.
    let (out, swept, s) = sweep(&ws, &["--older-than", "14d", "--if-free-below", "1000000TiB"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(swept["units"].as_u64().unwrap() > 0, "{swept}");
    assert_eq!(s["verify"]["exit_code"], 0, "{s}");
}

/// `rustup run nightly cargo ARGS` in the workspace.
fn nightly(ws: &Ws, args: &[&str]) -> Command {
    let mut cmd = Command::new("rustup");
    clean_env(&mut cmd).args(["run", "nightly", "cargo"]).args(args).current_dir(ws.root()).stdin(Stdio::null());
    cmd.env_remove("CARGO").env_remove("RUSTUP_TOOLCHAIN");
    cmd
}

#[test]
#[ignore = "needs rustup's nightly toolchain; CI runs it with --include-ignored"]
fn the_new_build_dir_layout_is_swept_by_whole_unit_dirs_and_outgrows_the_flat_one() {
    let has_nightly =
        Command::new("rustup").args(["run", "nightly", "rustc", "-V"]).output().is_ok_and(|o| o.status.success());
    assert!(has_nightly, "needs a nightly toolchain (rustup toolchain install nightly)");
    let ws = workspace();
    let run = |cmd: &mut Command| {
        let out = cmd.output_bounded();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    // The nightly first writes the flat layout, then the new one; the current stable writes its flat units too.
    run(&mut nightly(&ws, &["build", "-q"]));
    let flat_nightly = fingerprints(&ws);
    run(&mut nightly(&ws, &["build", "-q", "-Zbuild-dir-new-layout"]));
    build(&ws, Toolchain::Current, &[]);
    let stable_units: BTreeSet<String> = fingerprints(&ws).difference(&flat_nightly).cloned().collect();
    let new_layout = ws.target().join("debug/build/dep");
    let unit_dirs = || std::fs::read_dir(&new_layout).map_or(0, Iterator::count);
    assert_eq!(unit_dirs(), 1, "the new layout: build/<package>/<hash>/");
    // The macOS leak's stale objects lie in the unit's `out/` in this layout.
    let out_dir = std::fs::read_dir(&new_layout).unwrap().next().unwrap().unwrap().path().join("out");
    let stale = out_dir.join("dep-0123456789abcdef.dep.5k2x9-cgu.0.rcgu.o");
    std::fs::write(&stale, "x").unwrap();
    age(&stale, 3);

    // With the nightly current: its flat units are orphans now, stable's are another toolchain's.
    let mut cmd = ws.safeclean(&["--sweep", "--other-toolchains", "--no-verify", "--message-format", "json"]);
    let out = cmd.env("RUSTUP_TOOLCHAIN", "nightly").output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let swept = &lines[lines.len() - 2];
    let orphans = units(swept, "orphan");
    assert!(flat_nightly.iter().all(|f| orphans.contains(&format!("debug/{f}"))), "{orphans:?} {flat_nightly:?}");
    let others = units(swept, "other-toolchain");
    assert!(stable_units.iter().all(|f| others.contains(&format!("debug/{f}"))), "{others:?} {stable_units:?}");
    assert!(!others.iter().any(|u| u.starts_with("debug/build/dep/")), "{swept}");
    let dep_orphans: Vec<&String> = orphans.iter().filter(|u| u.starts_with("debug/build/dep/")).collect();
    assert!(dep_orphans.len() == 1 && dep_orphans[0].ends_with(".rcgu.o"), "{dep_orphans:?}");
    assert!(!stale.exists() && out_dir.is_dir());
    assert!(fingerprints(&ws).is_empty(), "no flat unit is left: {:?}", fingerprints(&ws));
    assert_eq!(unit_dirs(), 1, "the nightly's new-layout unit stays");

    let out = nightly(&ws, &["build", "-Zbuild-dir-new-layout", "--message-format", "json"]).output_bounded();
    assert!(out.status.success(), "{}", stderr(&out));
    let stale: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["fresh"] != true)
        .map(|m| m["target"]["name"].to_string())
        .collect();
    assert!(stale.is_empty(), "the kept new-layout units are fresh: {stale:?}");
    // And the stable toolchain rebuilds what it lost, without an error.
    assert!(fresh(&ws, Toolchain::Current).values().all(|f| !f));
}

#[test]
fn with_detach_a_deleter_deletes_the_swept_units_and_the_build_stays_fresh() {
    let ws = workspace();
    build(&ws, Toolchain::Current, &[]);
    let deps = ws.target().join("debug/deps");
    for i in 0..200 {
        std::fs::write(deps.join(format!("liborphan{i}-fedcba987654{i:04x}.rlib")), vec![0u8; 1024]).unwrap();
    }
    let (out, swept, s) = sweep(&ws, &["--detach", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(units(&swept, "orphan").len(), 200, "{swept}");
    let pid =
        u32::try_from(s["purge_detached"]["pid"].as_u64().unwrap_or_else(|| panic!("not detached: {s}"))).unwrap();
    assert!(s["removed"].is_null(), "the deleter removes, not the run: {s}");
    let mut rv = Rendezvous::new();
    rv.remember(pid);
    if let Some(id) = identity(pid) {
        assert!(gone_within(&id, PATIENCE), "the deleter ends");
    }
    let left: Vec<String> = std::fs::read_dir(ws.target())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("safeclean"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        std::fs::read_dir(&deps)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("orphan"))
            .count(),
        0
    );
    all_fresh(&ws, Toolchain::Current);
}

/// Whether some process holds the lock file `path`.
fn lock_busy(path: &Path) -> bool {
    use rustix::fs::{FlockOperation, flock};
    let Ok(f) = std::fs::File::open(path) else { return false };
    flock(&f, FlockOperation::NonBlockingLockExclusive).is_err()
}

#[test]
fn a_build_started_during_the_sweep_waits_behind_it() {
    use std::os::unix::fs::PermissionsExt;
    let ws = workspace();
    build(&ws, Toolchain::Current, &[]);
    age(ws.root(), 30);
    // The sweep asks `$RUSTC -vV` which toolchain is current, and waits for the answer once it holds cargo's locks:
    // a rustc that answers only when told keeps the sweep inside its locked window for as long as the test needs.
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    assert!(Command::new("mkfifo").arg(&go).status().unwrap().success());
    let rustc = dir.path().join("rustc");
    std::fs::write(&rustc, format!("#!/bin/sh\nread -r _ < '{}'\nexec rustc \"$@\"\n", go.display())).unwrap();
    std::fs::set_permissions(&rustc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut rv = Rendezvous::new();
    let mut sweep_cmd = ws.safeclean(&["--sweep", "--older-than", "14d", "--no-verify", "--message-format", "json"]);
    sweep_cmd.env("RUSTC", &rustc).stdout(Stdio::piped()).stderr(Stdio::null());
    let (sweep_pid, sweep_out, _) = rv.start(&mut sweep_cmd);
    let lock = ws.target().join("debug/.cargo-lock");
    assert!(holds_within(|| lock_busy(&lock), PATIENCE), "the sweep takes cargo's lock");

    // A build now waits for the sweep, as cargo says.
    let mut build_cmd = ws.cargo(&["build"]);
    build_cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let (build_pid, _, build_err) = rv.start(&mut build_cmd);
    let lines = Lines::of(build_err.unwrap());
    lines.find(|l| l.contains("Blocking waiting for file lock"));
    assert!(!has_exited(build_pid) && !has_exited(sweep_pid));

    // The sweep goes on, removes what it chose, and lets go; then the build rebuilds it, and succeeds.
    std::fs::OpenOptions::new().write(true).open(&go).unwrap().write_all(b"go\n").unwrap();
    let swept = rv.finish_adopted(sweep_pid);
    assert_eq!(swept.status.code(), Some(0));
    let text = String::from_utf8_lossy(
        &sweep_out
            .map(|mut o| {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut o, &mut v).unwrap();
                v
            })
            .unwrap_or_default(),
    )
    .into_owned();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(last["swept"]["units"].as_u64().unwrap() > 0, "{last}");
    let rest = lines.rest();
    assert!(rest.iter().any(|l| l.contains("Compiling app")), "the build ran after the sweep, and rebuilt: {rest:?}");
    let built = rv.finish_adopted(build_pid);
    assert!(built.status.success(), "{rest:?}");
    all_fresh(&ws, Toolchain::Current);
}

/// Whether `cond` holds within `limit`, checked every millisecond (a state that is waited for, with a deadline).
fn holds_within(cond: impl Fn() -> bool, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    false
}

/// A `cargo test` of the workspace, killed with its process group when dropped.
struct CargoTest(std::process::Child);

impl Drop for CargoTest {
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.0);
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        let _ = self.0.wait();
    }
}

#[test]
fn a_running_cargo_test_keeps_its_whole_profile() {
    // Cargo lets go of its locks before it runs the test binaries, and runs the others next: a sweep that kept only
    // the running one would pull the next one from under it.
    let ws = workspace();
    build(&ws, Toolchain::Current, &[]);
    let mut rv = Rendezvous::new();
    let mut cmd = ws.cargo(&["test", "-q", "--lib", "tests::hold", "--", "--exact"]);
    cmd.env(HOLD_ENV, &rv.path).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut cargo = CargoTest(spawn_retrying(&mut cmd));
    let test = rv.accept(Some(cargo.0.id()));

    let (out, swept, _) = sweep(&ws, &["--max-size", "0", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("skipped the profile debug: cargo (pid"), "{}", stderr(&out));
    assert_eq!(swept["units"], 0, "{swept}");
    // The test goes on, and cargo test ends well.
    drop(test);
    let status = cargo.0.wait().unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(cargo.0.stderr.as_mut().unwrap(), &mut said).unwrap();
    assert!(status.success(), "{said}");
}

#[test]
fn a_planted_unit_that_lies_about_its_rustc_cannot_make_the_current_one_look_uninstalled() {
    let ws = workspace();
    build(&ws, Toolchain::Current, &[]);
    let debug = ws.target().join("debug");
    let real = std::fs::read_dir(debug.join(".fingerprint"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .find(|f| f.path().extension().is_some_and(|e| e == "json"))
        .map(|f| serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(f.path()).unwrap()).unwrap())
        .unwrap()["rustc"]
        .clone();
    // A profile that sorts before `debug`, with a unit of the current rustc's hash whose metadata names a rustc
    // that was never installed.
    let planted = ws.target().join("a");
    let hash = "00000000deadbeef";
    let fp = planted.join(format!(".fingerprint/z-{hash}"));
    std::fs::create_dir_all(&fp).unwrap();
    std::fs::create_dir_all(planted.join("deps")).unwrap();
    std::fs::write(planted.join(".cargo-lock"), "").unwrap();
    std::fs::write(fp.join("lib-z"), "0100000000000000").unwrap();
    std::fs::write(fp.join("lib-z.json"), format!(r#"{{"rustc":{real},"deps":[],"local":[]}}"#)).unwrap();
    let version = b"rustc 0.0.1 (deadbeef 2001-01-01)";
    let mut rmeta = b"rust\0\0\0\x09\0\0\0\0\0\0\0\0".to_vec();
    rmeta.push(u8::try_from(version.len()).unwrap());
    rmeta.extend_from_slice(version);
    std::fs::write(planted.join(format!("deps/libz-{hash}.rmeta")), &rmeta).unwrap();
    let before = fingerprints(&ws);

    let (out, swept, _) = sweep(&ws, &["--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(units(&swept, "uninstalled-toolchain").is_empty(), "{swept}");
    assert_eq!(fingerprints(&ws), before, "no unit of the current rustc went");
    all_fresh(&ws, Toolchain::Current);
}
