//! Unattended use: GitHub Actions annotations and step summary, and the real cargo-make running the task.

// The fixtures and the pipeline these tests drive are Unix only so far (see the README's Platforms).
#![cfg(unix)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

#[test]
fn github_actions_annotations_groups_and_step_summary() {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    // Spared: its exe lives outside target/, and its name and command line carry `%`, `:` and `,`.
    let bin = tempfile::tempdir().unwrap();
    let odd = holder_named(bin.path(), "odd,name:50%");
    let spared = rv.holder(&odd, &["--cwd", ws.target().to_str().unwrap(), "--tag", "rate=50%,mode:fast"]);
    let exe = ws.install_holder("target/debug/server");
    let mut stopped = rv.holder(&exe, &[]);
    let step_summary = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(step_summary.path(), "earlier step\n").unwrap();

    let out = ws
        .safeclean(&[])
        .env("GITHUB_ACTIONS", "true")
        .env("CI", "true")
        .env("GITHUB_STEP_SUMMARY", step_summary.path())
        .output_bounded();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stopped.dies_within(Duration::from_secs(5)));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let warning = stdout.lines().find(|l| l.starts_with("::warning ")).unwrap_or_else(|| panic!("{stdout}"));
    let title = format!("title=cargo-safeclean%3A other pid {} (odd%2Cname%3A50%25)::", spared.pid);
    assert!(warning.contains(&title), "property escaping: {warning}");
    assert!(warning.contains("rate=50%25,mode:fast"), "message escaping: {warning}");
    assert!(!warning.contains("50%,"), "{warning}");
    let group = stdout.lines().position(|l| l.starts_with("::group::")).expect("a group around cargo check");
    let end = stdout.lines().position(|l| l == "::endgroup::").expect("the group ends");
    assert!(group < end);
    assert!(!stdout.contains("::error"), "{stdout}");
    assert!(!stderr(&out).contains('\x1b'), "no colour in CI");

    let md = std::fs::read_to_string(step_summary.path()).unwrap();
    assert!(md.starts_with("earlier step\n### cargo safeclean"), "appended: {md}");
    assert!(md.contains(&format!("| {} | target-binary |", stopped.pid)), "{md}");
    assert!(md.contains(&format!("| {} | other |", spared.pid)) && md.contains("| spared |"), "{md}");
    assert!(md.contains("Removed ") && md.contains("`cargo check`: passed"), "{md}");
}

#[test]
fn github_actions_error_names_the_failure_and_exit_code() {
    let ws = Ws::new(false);
    ws.build();
    let mut rv = Rendezvous::new();
    let exe = ws.install_holder("target/debug/server");
    let _held = rv.holder(&exe, &[]);
    let step_summary = tempfile::NamedTempFile::new().unwrap();
    let out = ws
        .safeclean(&["--no-kill"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", step_summary.path())
        .output_bounded();
    assert_eq!(out.status.code(), Some(4));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let error = stdout.lines().find(|l| l.starts_with("::error ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(error.starts_with("::error title=cargo-safeclean failed::"), "{error}");
    // The message and exit code first, then the advice on lines of their own (`%0A` is the runner's newline).
    let lines: Vec<&str> = error.split("%0A").collect();
    assert!(lines[0].contains("--no-kill") && lines[0].ends_with("(exit code 4)"), "{error}");
    assert_eq!(lines[1..], ["note: nothing was changed", "help: stop them, or run without --no-kill"], "{error}");
    let md = std::fs::read_to_string(step_summary.path()).unwrap();
    assert!(md.contains("**Failed with exit code 4:**") && md.contains("would-terminate"), "{md}");
}

/// The `[tasks.NAME]` tables in `toml`, each as its name and its text up to the next table or blank line.
fn tasks(toml: &str) -> Vec<(String, String)> {
    format!("\n{toml}")
        .split("\n[tasks.")
        .skip(1)
        .map(|t| {
            let (name, _) = t.split_once(']').unwrap();
            let table = t.split("\n\n").next().unwrap().trim_end();
            (name.to_string(), format!("[tasks.{table}"))
        })
        .collect()
}

/// The cargo-make tasks users copy, from the README and from `Makefile.toml`: each one that runs the tool installs
/// it with `cargo install --locked` (cargo-make adds `install_crate_args` to its `cargo install`), and the README's
/// copies of `Makefile.toml`'s tasks are the same, word for word.
#[test]
fn copyable_cargo_make_tasks_install_the_tool_locked() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let makefile = std::fs::read_to_string(root.join("Makefile.toml")).unwrap();
    let ours = tasks(makefile.split("# --- this project").next().unwrap());
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let copied: Vec<(String, String)> =
        readme.split("```toml\n").skip(1).flat_map(|b| tasks(b.split("```").next().unwrap())).collect();
    assert!(ours.len() >= 2 && copied.len() > ours.len(), "{ours:?} {copied:?}");
    for (name, table) in ours.iter().chain(&copied) {
        if table.contains("args = [\"safeclean\"") {
            assert!(table.contains("\ninstall_crate = { crate_name = \"cargo-safeclean\""), "{name}: {table}");
            assert!(table.contains("\ninstall_crate_args = [\"--locked\"]\n"), "{name}: {table}");
        }
    }
    for (name, table) in &copied {
        if let Some((_, original)) = ours.iter().find(|(n, _)| n == name) {
            assert_eq!(table, original, "the README's {name} differs from Makefile.toml's");
        }
    }
}

/// A workspace of three members, one of which has a build script that hangs on demand.
fn three_member_workspace() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("safeclean-make-").tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = [\"a\", \"b\", \"c\"]\nresolver = \"2\"\n")
        .unwrap();
    for m in ["a", "b", "c"] {
        let single = Ws::new(m == "b");
        copy_tree(single.root(), &root.join(m));
        let manifest = root.join(m).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap().replace("name = \"app\"", &format!("name = \"{m}\""));
        std::fs::write(&manifest, text.replace("\n[workspace]\n", "\n")).unwrap();
    }
    let ours = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Makefile.toml")).unwrap();
    let user_part = ours.split("# --- this project").next().unwrap();
    std::fs::write(root.join("Makefile.toml"), user_part).unwrap();
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
#[ignore = "needs cargo-make (cargo install --locked cargo-make); CI runs it with --include-ignored"]
fn cargo_make_task_runs_once_recovers_a_hung_build_and_detaches_the_purge() {
    let dir = three_member_workspace();
    let root = dir.path();
    let cargo = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO"));
        clean_env(&mut cmd).args(args).current_dir(root);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd
    };
    let built = cargo(&["build", "-q"]).output_bounded();
    assert!(built.status.success(), "{}", stderr(&built));
    let mut rv = Rendezvous::new();
    let mut hung = rv.spawn(cargo(&["build"]).env(HANG, &rv.path));

    // `cargo safeclean` must resolve to the binary under test.
    let path = format!("{}:{}", safeclean_exe().parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let out = output_within(
        cargo(&["make", "safeclean", "--message-format", "json", "--grace", "2s"])
            .env("PATH", path)
            .env("CARGO_MAKE_DISABLE_UPDATE_CHECK", "true"),
        PATIENCE,
    );
    assert!(out.status.success(), "cargo make failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(hung.dies_within(Duration::from_secs(5)), "the hung build script survived");
    let summaries: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "summary")
        .collect();
    assert_eq!(summaries.len(), 1, "the task ran once, not once per member");
    let s = &summaries[0];
    assert_eq!(s["exit_code"], 0);
    assert_eq!(s["verify"]["exit_code"], 0);
    assert!(s["holders"].as_array().unwrap().iter().any(|h| h["kind"] == "build-script"));
    assert!(root.join("target/CACHEDIR.TAG").is_file());
    // The task detaches the purge: its leftovers are gone once its deleter is.
    let pid = s["purge_detached"]["pid"].as_u64().unwrap_or_else(|| panic!("the task did not detach: {s}"));
    if let Some(deleter) = identity(u32::try_from(pid).unwrap()) {
        rv.remember(deleter.pid);
        assert!(gone_within(&deleter, PATIENCE), "deleter {pid} still runs");
    }
    let leftovers: Vec<_> =
        tree(&root.join("target")).into_iter().filter(|p| p.to_string_lossy().contains("safeclean")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
