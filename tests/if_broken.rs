//! `--if-broken`: check first; clean only a damaged build dir, never broken code, and never for a stuck build.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use common::*;

/// A workspace whose package `app` (a library and a binary) depends on a path dependency `dep`, checked once.
fn with_dependency() -> Ws {
    let ws = Ws::new(false);
    add_dependency(&ws, "dep", "pub fn answer() -> u32 { 42 }\n");
    std::fs::write(ws.root().join("src/lib.rs"), "pub fn answer() -> u32 { dep::answer() }\n").unwrap();
    // A binary too: only linking reads the dependency's `.rlib`.
    std::fs::write(ws.root().join("src/main.rs"), "fn main() { println!(\"{}\", app::answer()); }\n").unwrap();
    let out = ws.cargo(&["check", "-q"]).output_bounded();
    assert!(out.status.success(), "{}", stderr(&out));
    ws
}

/// Adds the path dependency `name` (its `src/lib.rs` is `lib`) to `app`.
fn add_dependency(ws: &Ws, name: &str, lib: &str) {
    let dir = ws.root().join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n");
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/lib.rs"), lib).unwrap();
    let app = ws.root().join("Cargo.toml");
    let text = std::fs::read_to_string(&app).unwrap();
    let entry = format!("{name} = {{ path = \"{name}\" }}\n");
    let text = match text.find("[dependencies]\n") {
        Some(at) => format!("{}{entry}{}", &text[..at + 15], &text[at + 15..]),
        None => text.replace("\n[workspace]\n", &format!("\n[dependencies]\n{entry}\n[workspace]\n")),
    };
    std::fs::write(&app, text).unwrap();
}

/// A file in target/ whose inode proves the target dir was not touched.
fn marker(ws: &Ws) -> (PathBuf, u64) {
    let m = ws.target().join("debug/marker");
    std::fs::write(&m, "warm cache").unwrap();
    (m.clone(), std::fs::metadata(&m).unwrap().ino())
}

fn untouched(marker: &(PathBuf, u64)) -> bool {
    std::fs::metadata(&marker.0).is_ok_and(|m| m.ino() == marker.1)
}

/// Overwrites the dependency's `ext` output (`rmeta` or `rlib`) with garbage, as a crash mid-write leaves it.
fn corrupt(ws: &Ws, ext: &str) -> PathBuf {
    let deps = ws.target().join("debug/deps");
    let file = std::fs::read_dir(&deps)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with("libdep-") && p.extension().is_some_and(|e| e == ext)
        })
        .unwrap_or_else(|| panic!("no libdep-*.{ext} in {}", deps.display()));
    std::fs::write(&file, "garbage").unwrap();
    file
}

fn check_events(out: &std::process::Output) -> Vec<serde_json::Value> {
    json_lines(out).into_iter().filter(|l| l["reason"] == "check").collect()
}

#[test]
fn a_healthy_cache_is_left_alone() {
    let ws = with_dependency();
    let marker = marker(&ws);
    let out = ws.run(&["--if-broken", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines[0]["reason"], "check", "the check comes before anything else");
    assert_eq!(lines[0]["result"], "healthy");
    let s = summary(&out);
    assert_eq!(s["check"]["result"], "healthy");
    assert_eq!(s["removed"], serde_json::Value::Null);
    assert!(untouched(&marker), "a healthy cache was cleaned");
}

#[test]
fn a_corrupt_rmeta_is_healed_through_colour_and_json_diagnostics() {
    for check_args in [&["--color=always"][..], &["--message-format=json"]] {
        let ws = with_dependency();
        let damaged = corrupt(&ws, "rmeta");
        let mut args = vec!["--if-broken", "--message-format", "json", "--"];
        args.extend_from_slice(check_args);
        let out = ws.run(&args);
        assert_eq!(out.status.code(), Some(0), "{check_args:?}: {}", stderr(&out));
        let check = &check_events(&out)[0];
        assert_eq!(check["result"], "corrupt", "{check_args:?}: {check}");
        assert_eq!(check["signature"], "corrupt-metadata");
        assert_eq!(check["path"], damaged.to_str().unwrap());
        let s = summary(&out);
        // The smallest repair: the dependency's unit only, then the check again.
        assert_eq!(s["repaired"]["healed"], true, "{s}");
        assert!(s["repaired"]["units"][0].as_str().unwrap().starts_with("dep-"), "{s}");
        assert!(s["removed"].is_null(), "the rest of the build dir was kept: {s}");
        assert_eq!(s["verify"]["exit_code"], 0);
        let build = ws.cargo(&["build", "-q"]).output_bounded();
        assert!(build.status.success(), "{}", stderr(&build));
    }
}

#[test]
fn with_full_the_whole_tree_is_cleaned() {
    let ws = with_dependency();
    corrupt(&ws, "rmeta");
    let out = ws.run(&["--if-broken", "--full", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    assert!(s["repaired"].is_null() && s["removed"]["files"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["verify"]["exit_code"], 0);
}

/// `app` depends on `dep` and `other`: a corrupt `dep` is repaired by rebuilding `dep` and `app`, and `other` is
/// left as it was; two damaged dependencies are more than the repair of one fixes, and the whole tree is cleaned.
#[test]
fn the_repair_rebuilds_only_the_damaged_unit_and_its_dependents_or_escalates() {
    let ws = with_dependency();
    add_dependency(&ws, "other", "pub fn two() -> u32 { 2 }\n");
    std::fs::write(ws.root().join("src/lib.rs"), "pub fn answer() -> u32 { dep::answer() + other::two() }\n").unwrap();
    assert!(ws.cargo(&["check", "-q"]).output_bounded().status.success());

    corrupt(&ws, "rmeta");
    let out = ws.run(&["--if-broken", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let repaired = &summary(&out)["repaired"];
    assert_eq!(repaired["healed"], true, "{repaired}");
    assert_eq!(repaired["rebuilt"], serde_json::json!(["app", "dep"]), "only dep and what depends on it: {repaired}");

    corrupt(&ws, "rmeta");
    let deps = ws.target().join("debug/deps");
    let other_rmeta = std::fs::read_dir(&deps).unwrap().flatten().map(|e| e.path()).find(|p| {
        p.file_name().unwrap().to_string_lossy().starts_with("libother-") && p.extension().is_some_and(|e| e == "rmeta")
    });
    std::fs::write(other_rmeta.unwrap(), "garbage").unwrap();
    let out = ws.run(&["--if-broken", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["repaired"]["healed"], false, "{s}");
    assert!(s["removed"]["files"].as_u64().unwrap() > 0, "escalated to the whole tree: {s}");
    assert_eq!(s["verify"]["exit_code"], 0);
}

#[test]
fn a_corrupt_rlib_shows_in_a_build_and_is_healed() {
    let ws = with_dependency();
    let built = ws.cargo(&["build", "-q"]).output_bounded();
    assert!(built.status.success(), "{}", stderr(&built));
    let damaged = corrupt(&ws, "rlib");
    let out = ws.run(&["--if-broken", "--check-with", "build", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let check = &check_events(&out)[0];
    // Linked through the package's own library, the garbage rlib is "not found in rlib format": no path is named;
    // the crate's rlib is found beside its rmeta, and is what the report names.
    assert_eq!((check["signature"].as_str(), check["path"].as_str()), (Some("missing-rlib"), damaged.to_str()));
    assert_eq!(summary(&out)["verify"]["exit_code"], 0);
    // The verify was a build too: the binary is there, and the rlib is whole again.
    assert!(ws.target().join("debug/app").is_file(), "{:?}", tree(&ws.target().join("debug")));
    assert_ne!(std::fs::read(&damaged).unwrap(), b"garbage");
}

#[test]
fn a_type_error_is_the_codes_fault_and_nothing_is_deleted() {
    let ws = with_dependency();
    let marker = marker(&ws);
    std::fs::write(ws.root().join("src/lib.rs"), "pub fn answer() -> u32 { \"no\" }\n").unwrap();
    let out = ws.run(&["--if-broken", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert_eq!(check_events(&out)[0]["result"], "code-error");
    assert!(stderr(&out).contains("the code, not the build dir, is broken"), "{}", stderr(&out));
    assert!(untouched(&marker));
}

#[test]
fn a_dry_run_checks_and_deletes_nothing() {
    let ws = with_dependency();
    let damaged = corrupt(&ws, "rmeta");
    let out = ws.run(&["--if-broken", "--dry-run", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(check_events(&out)[0]["result"], "corrupt");
    assert_eq!(std::fs::read_to_string(&damaged).unwrap(), "garbage", "a dry run deleted something");
    assert_eq!(summary(&out)["dry_run"], true);
}

#[test]
fn without_the_check_it_is_a_usage_error() {
    let ws = Ws::new(false);
    let out = ws.run(&["--if-broken", "--no-verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// A hung `cargo build` holds the build dir lock: the check waits on it, the build is stopped, the check runs
/// again and passes, and nothing is deleted (a stuck build is not a broken cache).
fn a_hung_build_is_stopped_and_the_cache_kept(check_args: &[&str]) {
    let ws = Ws::new(true);
    ws.build();
    let marker = marker(&ws);
    let mut rv = Rendezvous::new();
    let mut script = rv.spawn(ws.cargo(&["build"]).env(HANG, &rv.path));
    let mut args = vec!["--if-broken", "--grace", "5s", "--message-format", "json", "--"];
    args.extend_from_slice(check_args);
    let out = ws.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(script.dies_within(Duration::from_secs(5)), "the hung build script survived");
    let results: Vec<String> = check_events(&out).iter().map(|c| c["result"].as_str().unwrap().to_string()).collect();
    assert_eq!(results, ["blocked", "healthy"]);
    assert!(untouched(&marker), "the cache was deleted for a stuck build");
    assert!(summary(&out)["holders"].as_array().unwrap().iter().any(|h| h["kind"] == "cargo"));
}

#[test]
fn a_hung_build_holding_the_build_lock_is_stopped_and_checked_again() {
    a_hung_build_is_stopped_and_the_cache_kept(&[]);
}

/// With `-q` cargo prints no "Blocking waiting for file lock" line: the lock itself shows the wait. Only `/proc`
/// shows waiters; lsof does not, and there the check would wait for the build as cargo does.
#[test]
fn a_quiet_check_blocked_on_the_build_lock_is_seen_by_the_lock() {
    if platform().sees_lock_waiters() {
        a_hung_build_is_stopped_and_the_cache_kept(&["-q"]);
    }
}

#[test]
fn a_spared_owner_of_the_build_lock_is_named_and_nothing_is_deleted() {
    let ws = Ws::new(false);
    ws.build();
    let marker = marker(&ws);
    let mut rv = Rendezvous::new();
    let bin = tempfile::tempdir().unwrap();
    let exe = holder_named(bin.path(), "locker");
    let lock = ws.target().join("debug/.cargo-lock");
    let mut locker = rv.holder(&exe, &["--lock", lock.to_str().unwrap()]);
    let out = ws.run(&["--if-broken", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let check = &check_events(&out)[0];
    assert_eq!(
        (check["result"].as_str(), check["holder_pid"].as_u64()),
        (Some("blocked"), Some(u64::from(locker.pid)))
    );
    assert!(stderr(&out).contains(&format!("locked by pid {} locker", locker.pid)), "{}", stderr(&out));
    assert!(untouched(&marker));
    assert!(!locker.dies_within(Duration::from_millis(50)), "a spared owner was stopped");
}

/// Item 4: a `compile_error!` that quotes every signature, naming files in the target dir (some missing), is the
/// code's own words: nothing is deleted, exit 6.
#[test]
fn the_codes_own_words_are_never_damage() {
    let ws = with_dependency();
    let marker = marker(&ws);
    let deps = ws.target().join("debug/deps");
    let quoted = [
        format!("corrupt metadata encountered in {}/libdep-0.rmeta", deps.display()),
        format!("failed to parse rlib '{}/libdep-0.rlib': x", deps.display()),
        "crate `dep` required to be available in rlib format, but was not found in this form".to_string(),
        format!("extern location for dep does not exist: {}/libgone-0.rmeta", deps.display()),
        format!("could not parse/generate dep info at: {}/app-0.d", deps.display()),
        format!("{}/libdep-0.rlib: truncated or malformed archive", deps.display()),
        format!("couldn't read `{}/gone.rs`: No such file or directory", deps.display()),
    ]
    .join("\\n");
    std::fs::write(ws.root().join("src/lib.rs"), format!("compile_error!(\"{quoted}\");\n")).unwrap();
    let out = ws.run(&["--if-broken", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert_eq!(check_events(&out)[0]["result"], "code-error");
    assert!(untouched(&marker), "the code's words deleted the target dir");
}

/// Item 4: a build script that does not write the file `include!` reads from its `OUT_DIR` is the code's problem,
/// and a source line rustc echoes is not a message.
#[test]
fn a_missing_out_dir_file_and_an_echoed_source_line_are_the_codes() {
    let ws = with_dependency();
    std::fs::write(ws.root().join("build.rs"), "fn main() {}\n").unwrap();
    let marker = marker(&ws);
    std::fs::write(ws.root().join("src/lib.rs"), "include!(concat!(env!(\"OUT_DIR\"), \"/generated.rs\"));\n").unwrap();
    let out = ws.run(&["--if-broken", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert_eq!(check_events(&out)[0]["result"], "code-error", "{}", stderr(&out));
    let echoed = format!(
        "pub fn f() -> u32 {{ \"x\" }} // corrupt metadata encountered in {}/debug/deps/libdep-0.rmeta\n",
        ws.target().display()
    );
    std::fs::write(ws.root().join("src/lib.rs"), echoed).unwrap();
    let out = ws.run(&["--if-broken", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(untouched(&marker));
}

/// Item 9: a truncated `.rlib` (a build killed mid-write, a full disk) under `--check-with build` is damage, and
/// healed.
#[test]
fn a_truncated_rlib_is_damage_under_a_build() {
    let ws = with_dependency();
    let built = ws.cargo(&["build", "-q"]).output_bounded();
    assert!(built.status.success(), "{}", stderr(&built));
    let deps = ws.target().join("debug/deps");
    let rlib = std::fs::read_dir(&deps)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with("libdep-")
                && p.extension().is_some_and(|e| e == "rlib")
        })
        .unwrap();
    let bytes = std::fs::read(&rlib).unwrap();
    std::fs::write(&rlib, &bytes[..bytes.len() / 2]).unwrap();
    let out = ws.run(&["--if-broken", "--check-with", "build", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(check_events(&out)[0]["result"], "corrupt", "{}", stderr(&out));
    assert_eq!(summary(&out)["verify"]["exit_code"], 0);
}

/// Item 5: a test that prints cargo's "Blocking waiting" words is a test's output, not cargo waiting.
#[test]
fn a_test_printing_cargos_blocking_line_is_not_a_lock_wait() {
    let ws = Ws::new(false);
    std::fs::write(
        ws.root().join("src/lib.rs"),
        "#[test]\nfn noisy() { eprintln!(\"    Blocking waiting for file lock on build directory\"); }\n",
    )
    .unwrap();
    ws.build();
    let out = ws.run(&["--if-broken", "--check-with", "test", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(check_events(&out)[0]["result"], "healthy", "{}", stderr(&out));
}

/// Item 10: check arguments cargo rejects are found before anything is signalled or deleted (exit 2), and cargo's
/// exit 1 is not called a build error.
#[test]
fn arguments_cargo_rejects_change_nothing() {
    let ws = with_dependency();
    let marker = marker(&ws);
    for args in [&["--", "--bogus-flag"][..], &["--if-broken", "--", "--bogus-flag"]] {
        let out = ws.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(says(&out, "error", "--bogus-flag"), "{}", stderr(&out));
        assert!(says(&out, "note", "nothing was signalled or deleted"), "{}", stderr(&out));
        assert_eq!(stderr(&out).matches("error:").count(), 1, "cargo's own `error:` is not repeated: {}", stderr(&out));
        assert!(untouched(&marker), "{args:?} deleted the target dir");
    }
}
