//! The words of the human report, as pure functions of what a run found: numbers and sizes, a process as a person
//! would name it, what a holder holds, and the closing summary. No I/O, so each is tested on its own.

use std::fmt::Write as _;
use std::path::Path;

use crate::event::Summary;
use crate::layout::{LockName, lock_name};
use crate::model::{
    CheckResult, Handle, HandleKind, Hold, Holder, Kind, Mode, Outcome, Process, Relation, SpareReason, Verdict,
};
use crate::workspace::Dirs;

/// A count with thousands separators: `1,751`.
#[must_use]
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 file` or `1,751 files`: a count of something, in the right number.
#[must_use]
pub fn things(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// `1,751 files, 715.6 MiB`.
#[must_use]
pub fn files_and_bytes(files: u64, bytes: u64) -> String {
    format!("{}, {}", things(files, "file", "files"), super::human_bytes(bytes))
}

/// A duration as cargo prints one: `340ms`, `1.25s`, `3m 05s`.
#[must_use]
pub fn duration_ms(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => {
            #[expect(clippy::cast_precision_loss, reason = "a duration for display")]
            let secs = ms as f64 / 1000.0;
            format!("{secs:.2}s")
        }
        _ => format!("{}m {:02}s", ms / 60_000, ms / 1000 % 60),
    }
}

/// The most a holder's command takes on its line before it is cut.
const COMMAND_WIDTH: usize = 40;

/// A process as a person would name it: its program's file name and its arguments, cut to fit a line
/// (`cargo build`, not the toolchain's path to cargo). `full`: every argument, the program as started.
#[must_use]
pub fn command(p: &Process, full: bool) -> String {
    let Some((program, args)) = p.cmdline.split_first() else { return p.display_name().to_string() };
    if full {
        return shell_words::join(&p.cmdline);
    }
    let base = program.rsplit('/').next().filter(|b| !b.is_empty()).unwrap_or(p.display_name());
    let mut out = base.to_string();
    for arg in args {
        let word = shell_words::quote(arg);
        if out.chars().count() + 1 + word.chars().count() > COMMAND_WIDTH {
            out.push_str(" …");
            break;
        }
        out.push(' ');
        out.push_str(&word);
    }
    out
}

/// `cargo build (pid 8293)`.
#[must_use]
pub fn process(p: &Process) -> String {
    format!("{} (pid {})", command(p, false), p.pid)
}

/// `path` as the user knows it: relative to the workspace when inside it (`target/debug/x`), else whole.
#[must_use]
pub fn path_in(path: &Path, dirs: Option<&Dirs>) -> String {
    let Some(rest) = dirs.and_then(|d| path.strip_prefix(&d.workspace_root).ok()) else {
        return path.display().to_string();
    };
    if rest.as_os_str().is_empty() { ".".into() } else { rest.display().to_string() }
}

/// A dir the run removes, as the user knows it: `target/`, `build dir /fast/b/`.
#[must_use]
pub fn dir_in(path: &Path, dirs: Option<&Dirs>) -> String {
    let shown = format!("{}/", path_in(path, dirs).trim_end_matches('/'));
    match dirs.and_then(|d| d.build_dir.as_deref()) {
        Some(build) if build == path => format!("build dir {shown}"),
        _ => shown,
    }
}

fn lock_words(lock: LockName) -> &'static str {
    match lock {
        LockName::PackageCache => "package-cache",
        LockName::BuildDirectory => "build-dir",
        LockName::ArtifactDirectory => "artifact-dir",
    }
}

/// The most a path takes on a short line before its middle is left out.
const PATH_WIDTH: usize = 48;

/// `path`, its middle left out to fit a short line: `target/debug/…/libmacros.so`.
fn elide(path: String) -> String {
    if path.chars().count() <= PATH_WIDTH {
        return path;
    }
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        [first @ .., last] if first.len() > 2 => format!("{}/…/{last}", first[..2].join("/")),
        _ => path,
    }
}

/// What a handle is, in words: `holds the build-dir lock`, `runs target/debug/x`. `full`: with whole paths.
#[must_use]
pub fn handle(h: &Handle, dirs: Option<&Dirs>, full: bool) -> String {
    let path = if full { h.path.display().to_string() } else { elide(path_in(&h.path, dirs)) };
    let lock = lock_name(&h.path).map(lock_words);
    let held = match (h.hold, lock) {
        (Some(Hold::Exclusive), Some(lock)) => Some(format!("holds the {lock} lock")),
        (Some(Hold::Shared), Some(lock)) => Some(format!("shares the {lock} lock")),
        (Some(Hold::Waiting), Some(lock)) => Some(format!("waits for the {lock} lock")),
        // Where the holder source cannot see lock state (lsof on macOS), an open lock file says only that.
        (None, Some(lock)) => Some(format!("has the {lock} lock file open")),
        _ => None,
    };
    match held {
        Some(text) if full => format!("{text} {path}"),
        Some(text) => text,
        None => match h.kind {
            HandleKind::Exe => format!("runs {path}"),
            HandleKind::Cwd => format!("works in {path}"),
            HandleKind::Root => format!("has its root in {path}"),
            HandleKind::Mmap => format!("maps {path}"),
            HandleKind::Lock | HandleKind::Fd => format!("has {path} open"),
        },
    }
}

/// The handle that says most about why a process holds the dir: a lock, then what it runs, where it works, what
/// it maps, what it has open.
fn telling(h: &Holder) -> Option<&Handle> {
    let rank = |x: &Handle| match (x.hold, x.kind) {
        (Some(Hold::Exclusive), _) => 0,
        (Some(_), _) => 1,
        (_, HandleKind::Exe) => 2,
        (_, HandleKind::Cwd | HandleKind::Root) => 3,
        (_, HandleKind::Mmap) => 4,
        _ => 5,
    };
    h.handles.iter().min_by_key(|x| rank(x))
}

/// The status word of a holder's line: what the run does to it.
#[must_use]
pub fn holder_word(h: &Holder, outcome: Option<Outcome>) -> &'static str {
    match (outcome, h.verdict) {
        (Some(Outcome::WouldTerminate), _) => "Would stop",
        (Some(Outcome::WouldSpare), _) => "Would spare",
        (_, Verdict::Terminate) => "Stopping",
        (_, Verdict::Spare) => "Sparing",
    }
}

/// One short line about a holder, after its status word: `cargo build (pid 8293): holds the build-dir lock;
/// stopped; orphaned`.
#[must_use]
pub fn holder_line(h: &Holder, dirs: Option<&Dirs>) -> String {
    let mut parts: Vec<String> = telling(h).map(|x| handle(x, dirs, false)).into_iter().collect();
    if h.process.stopped {
        parts.push("stopped".into());
    }
    match &h.relation {
        Some(Relation::Orphaned) => parts.push("orphaned".into()),
        Some(Relation::ChildOf { pid, .. }) => parts.push(format!("child of pid {pid}")),
        None => {}
    }
    // Spared by the policy needs no word here: a `help:` line at the end says what stops them.
    match h.spare_reason {
        Some(SpareReason::NotOwner) => parts.push("not the lock's owner".into()),
        Some(SpareReason::Protected) => parts.push("never signalled".into()),
        Some(SpareReason::Policy) | None => {}
    }
    format!("{}: {}", process(&h.process), parts.join("; "))
}

/// The long form of a holder (`-v`), as lines under its short one: the whole command, every handle with its full
/// path, and where it came from.
#[must_use]
pub fn holder_details(h: &Holder) -> Vec<String> {
    let p = &h.process;
    let mut lines = vec![format!("command: {}", command(p, true))];
    lines.extend(h.handles.iter().map(|x| handle(x, None, true)));
    let mut origin = vec![format!("{} process", h.kind.as_str())];
    match &h.relation {
        Some(Relation::Orphaned) => origin.push("orphaned: the process that started it is gone".to_string()),
        Some(Relation::ChildOf { pid, name }) => origin.push(format!("child of {name} (pid {pid})")),
        None => origin.push(format!("parent pid {}", p.ppid)),
    }
    if let Some(via) = h.via {
        origin.push(format!("in the process group of pid {via}"));
    }
    if let Some(cwd) = &p.cwd {
        origin.push(format!("in {}", cwd.display()));
    }
    if let Some(age) = p.started_at.and_then(running_for) {
        origin.push(format!("running for {age}"));
    }
    if p.stopped {
        origin.push("stopped (Ctrl-Z or a debugger)".into());
    }
    lines.push(origin.join(", "));
    lines
}

/// How long a process started at `started` (seconds since the epoch) has been running: `3h 12m`, `5m 3s`, `4s`.
fn running_for(started: u64) -> Option<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    let s = now.checked_sub(started)?;
    Some(match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m {sec}s"),
        (h, min, _) => format!("{h}h {min}m"),
    })
}

/// `text` in lines of at most `width` columns, broken after its `; ` where it must: a long status line goes on
/// under its first.
#[must_use]
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for (i, part) in text.split("; ").enumerate() {
        let line = lines.last_mut().expect("never empty");
        if i > 0 {
            line.push(';');
            if line.chars().count() + 1 + part.chars().count() > width {
                lines.push(part.to_string());
                continue;
            }
            line.push(' ');
        }
        line.push_str(part);
    }
    lines
}

/// The cargo command of a shown command line: `cargo check`, without the arguments the run added.
#[must_use]
pub fn cargo_command(shown: &str) -> String {
    let words: Vec<&str> = shown.split_whitespace().take(2).collect();
    let program = words.first().map_or("cargo", |p| p.rsplit('/').next().unwrap_or(p));
    match words.get(1) {
        Some(sub) => format!("{program} {sub}"),
        None => program.to_string(),
    }
}

/// What the closing `Summary` line says, from the run's summary; `checked`: the cargo command of the check or the
/// verify (`cargo check`).
#[must_use]
pub fn summary_line(s: &Summary, sized: Option<(u64, u64)>, checked: &str) -> String {
    let mut parts = Vec::new();
    let outcome = |o: Outcome| s.holders.iter().filter(move |h| h.outcome == Some(o)).map(|h| &h.holder);
    let held = match (s.mode, &s.dirs) {
        (Mode::Unlock, _) => "cargo's locks".to_string(),
        (Mode::Clean, Some(d)) => d.roots().map(|r| dir_in(r, Some(d))).collect::<Vec<_>>().join(" or "),
        (Mode::Clean, None) => "the target dir".to_string(),
    };
    // Never "nothing held it" when some processes could not be looked at.
    let none_held = match s.uninspectable.count() {
        0 => format!("no process held {held}"),
        n => format!("no process held {held} ({} could not be inspected)", things(n as u64, "process", "processes")),
    };
    if s.dry_run {
        let (stop, spare) = (outcome(Outcome::WouldTerminate).count(), outcome(Outcome::WouldSpare).count());
        let mut plan =
            if s.holders.is_empty() { format!("dry run: {none_held}") } else { format!("dry run: would stop {stop}") };
        if spare > 0 {
            let _ = write!(plan, " and spare {spare}");
        }
        parts.push(plan);
        if let Some((files, bytes)) = sized {
            parts.push(format!("would remove {}", files_and_bytes(files, bytes)));
        }
        parts.push("nothing was signalled or deleted".into());
        return parts.join("; ");
    }
    match s.check.as_ref().map(|c| &c.result) {
        Some(CheckResult::Healthy) => return format!("`{checked}` passed; nothing was cleaned"),
        // The check failed, and not for damage: the run ends there.
        Some(CheckResult::CodeError | CheckResult::Unknown { .. }) if s.holders.is_empty() => {
            return format!("`{checked}` failed; nothing was cleaned");
        }
        _ => {}
    }
    let stopped = [Outcome::ExitedAfterSigterm, Outcome::Killed, Outcome::AlreadyGone]
        .into_iter()
        .map(|o| outcome(o).count())
        .sum::<usize>();
    let killed = outcome(Outcome::Killed).count();
    let mut holders = if s.holders.is_empty() { none_held } else { format!("stopped {stopped}") };
    if killed > 0 {
        let _ = write!(holders, " ({killed} killed)");
    }
    let spared: Vec<String> = outcome(Outcome::Spared).map(|h| process(&h.process)).collect();
    if !spared.is_empty() {
        let shown = spared.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        let more = spared.len().saturating_sub(3);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        let _ = write!(holders, ", spared {} still running: {shown}{more}", spared.len());
    }
    let survived = outcome(Outcome::Survived).count();
    if survived > 0 {
        let _ = write!(holders, ", {survived} survived");
    }
    parts.push(holders);
    if let Some(r) = &s.repaired {
        let then = if r.healed { format!(", and `{checked}` passed") } else { String::new() };
        parts.push(format!("repaired {}{then}", r.units.join(", ")));
    }
    match (&s.removed, &s.purge_detached) {
        (Some(r), _) => {
            parts.push(format!("removed {} in {}", files_and_bytes(r.files, r.bytes), duration_ms(r.duration_ms)));
        }
        (None, Some(d)) => parts.push(format!("deleting the old tree in the background (pid {})", d.pid)),
        (None, None) => {}
    }
    if let Some(v) = &s.verify {
        let took = duration_ms(v.duration_ms);
        parts.push(match (v.success(), v.exit_code) {
            (true, _) => format!("`{checked}` passed in {took}"),
            (false, Some(code)) => format!("`{checked}` failed (exit code {code}) after {took}"),
            (false, None) => format!("`{checked}` was killed after {took}"),
        });
    }
    parts.join("; ")
}

/// The `help:` lines for the next step a finished run leaves, if any.
#[must_use]
pub fn helps(summary: &Summary, would_remove: bool) -> Vec<String> {
    let mut helps = Vec::new();
    let spared = |reason| summary.holders.iter().any(|h| h.holder.spare_reason == Some(reason));
    if spared(SpareReason::Policy) {
        helps.push("`--all-holders` stops the spared holders too".to_string());
    }
    if summary.holders.iter().any(|h| h.holder.kind == Kind::Ide && h.holder.verdict == Verdict::Spare) {
        helps.push("set rust-analyzer.cargo.targetDir, and rust-analyzer builds in a dir of its own".into());
    }
    let would_stop = summary.holders.iter().any(|h| h.outcome == Some(Outcome::WouldTerminate));
    if summary.dry_run && summary.exit_code == 0 && (would_stop || would_remove) {
        helps.push("run it again without --dry-run to do this".into());
    }
    helps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(cmdline: &[&str]) -> Process {
        Process {
            pid: 8293,
            ppid: 1,
            pgid: 8293,
            start_time: 1,
            name: "cargo".into(),
            cmdline: cmdline.iter().map(|s| (*s).to_string()).collect(),
            exe: None,
            cwd: None,
            started_at: None,
            stopped: false,
            uid: None,
        }
    }

    #[test]
    fn numbers_read_like_cargo() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1751), "1,751");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(things(1, "file", "files"), "1 file");
        assert_eq!(files_and_bytes(1751, 750_314_291), "1,751 files, 715.6 MiB");
        assert_eq!(duration_ms(340), "340ms");
        assert_eq!(duration_ms(1250), "1.25s");
        assert_eq!(duration_ms(185_000), "3m 05s");
    }

    #[test]
    fn a_command_is_what_a_person_typed() {
        let cargo = proc(&["/home/me/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/cargo", "build"]);
        assert_eq!(command(&cargo, false), "cargo build");
        assert!(command(&cargo, true).starts_with("/home/me/.rustup/"));
        let rustc = proc(&["rustc", "--crate-name", "serde", "--edition=2021", "src/lib.rs", "--crate-type", "lib"]);
        assert_eq!(command(&rustc, false), "rustc --crate-name serde …");
        assert_eq!(command(&proc(&["tail", "-f", "my log"]), false), "tail -f 'my log'");
        assert_eq!(command(&proc(&[]), false), "cargo", "a process without a command line goes by its name");
    }

    #[test]
    fn paths_are_relative_to_the_workspace() {
        let dirs = Dirs {
            workspace_root: "/w".into(),
            manifest_path: None,
            target_dir: "/w/target".into(),
            build_dir: Some("/fast/b".into()),
            explicit_target_dir: false,
        };
        assert_eq!(path_in(Path::new("/w/target/debug/x"), Some(&dirs)), "target/debug/x");
        assert_eq!(path_in(Path::new("/elsewhere/x"), Some(&dirs)), "/elsewhere/x");
        assert_eq!(dir_in(Path::new("/w/target"), Some(&dirs)), "target/");
        assert_eq!(dir_in(Path::new("/fast/b"), Some(&dirs)), "build dir /fast/b/");
        let lock =
            Handle { kind: HandleKind::Lock, path: "/w/target/debug/.cargo-lock".into(), hold: Some(Hold::Exclusive) };
        assert_eq!(handle(&lock, Some(&dirs), false), "holds the build-dir lock");
        assert_eq!(handle(&lock, Some(&dirs), true), "holds the build-dir lock /w/target/debug/.cargo-lock");
    }

    #[test]
    fn long_lines_break_after_a_semicolon() {
        assert_eq!(wrap("a; b; c", 100), ["a; b; c"]);
        assert_eq!(wrap("aaaa; bbbb; cc", 9), ["aaaa;", "bbbb; cc"]);
        assert_eq!(wrap("one long part", 4), ["one long part"], "a part is never cut");
        assert_eq!(
            elide("target/debug/build/app-1d2f3a4b5c6d7e8f/out/generated/bindings.rs".into()),
            "target/debug/…/bindings.rs"
        );
    }

    #[test]
    fn cargo_commands_lose_their_added_arguments() {
        assert_eq!(cargo_command("cargo check --manifest-path /w/Cargo.toml"), "cargo check");
        assert_eq!(cargo_command("/opt/bin/cargo build"), "cargo build");
    }
}
