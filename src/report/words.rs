//! The words of the human report, as pure functions of what a run found: numbers and sizes, a process as a person
//! would name it, what a holder holds, and the closing summary. No I/O, so each is tested on its own.

use std::path::Path;

use crate::event::Summary;
use crate::layout::{LockName, lock_name};
use crate::model::{
    CheckResult, Criterion, FreeSpace, Handle, HandleKind, Hold, Holder, KeptReason, Kind, Mode, Outcome, Process,
    Relation, Settled, SpareReason, Verdict,
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
    let base = program.rsplit(['/', std::path::MAIN_SEPARATOR]).next().filter(|b| !b.is_empty());
    let mut out = crate::policy::program(base.unwrap_or(p.display_name())).to_string();
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

/// `text` with its control characters escaped (`\n`, `\u{1b}`): a file name with a newline or an escape sequence
/// cannot fake a line of the report or steer the terminal.
#[must_use]
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
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
    let sep = std::path::MAIN_SEPARATOR;
    let shown = format!("{}{sep}", path_in(path, dirs).trim_end_matches(sep));
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

/// `path`, its middle left out to fit a short line: its first component, then as many of its last ones as fit
/// (`target/…/app-1d2f/out/bindings.rs`), so that the package's dir stays in view where it can.
fn elide(path: String) -> String {
    if path.chars().count() <= PATH_WIDTH {
        return path;
    }
    let sep = std::path::MAIN_SEPARATOR;
    let parts: Vec<&str> = path.split(sep).collect();
    let [first, middle @ .., last] = parts.as_slice() else { return path };
    if middle.is_empty() {
        return path;
    }
    let mut tail = vec![*last];
    let mut width = first.chars().count() + format!("{sep}…{sep}").len() + last.chars().count();
    for part in middle.iter().rev().take(middle.len() - 1) {
        width += part.chars().count() + 1;
        if width > PATH_WIDTH {
            break;
        }
        tail.push(part);
    }
    tail.reverse();
    format!("{first}{sep}…{sep}{}", tail.join(std::path::MAIN_SEPARATOR_STR))
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
        // "waits for the lock" says it already.
        Some(SpareReason::NotOwner) if !parts.iter().any(|p| p.starts_with("waits for")) => {
            parts.push("not the lock's owner".into());
        }
        Some(SpareReason::Protected) => parts.push("never signalled".into()),
        Some(SpareReason::NotOwner | SpareReason::Policy) | None => {}
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
pub fn running_for(started: u64) -> Option<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    let s = now.checked_sub(started)?;
    Some(match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m {sec}s"),
        (h, min, _) => format!("{h}h {min}m"),
    })
}

/// `text` in lines of at most `width` columns, broken after its `; ` where it must, and inside a part that is still
/// too long after its `, ` (never inside quotes): a long status line goes on under its first.
#[must_use]
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    let fits = |line: &str, more: &str| line.chars().count() + 1 + more.chars().count() <= width;
    for (i, part) in text.split("; ").enumerate() {
        let line = lines.last_mut().expect("never empty");
        if i > 0 {
            line.push(';');
        }
        let whole = part.chars().count() <= width;
        if line.is_empty() && whole {
            line.push_str(part);
            continue;
        }
        if !line.is_empty() && fits(line, part) {
            line.push(' ');
            line.push_str(part);
            continue;
        }
        if whole {
            lines.push(part.to_string());
            continue;
        }
        // Too long for a line of its own: it goes on after its `, `.
        if !line.is_empty() {
            lines.push(String::new());
        }
        for (j, piece) in split_outside_quotes(part, ", ").into_iter().enumerate() {
            let line = lines.last_mut().expect("never empty");
            if j > 0 {
                line.push(',');
            }
            if line.is_empty() {
                line.push_str(piece);
            } else if fits(line, piece) {
                line.push(' ');
                line.push_str(piece);
            } else {
                lines.push(piece.to_string());
            }
        }
    }
    lines
}

/// `text` split at `sep` where it is outside a quoted (`'…'`, `"…"`) or backquoted span.
fn split_outside_quotes<'a>(text: &'a str, sep: &str) -> Vec<&'a str> {
    let (mut pieces, mut start, mut quote) = (Vec::new(), 0, None);
    let mut after_space = true;
    for (i, c) in text.char_indices() {
        let opens = after_space || c != '\'';
        after_space = c.is_whitespace();
        match (quote, c) {
            // An apostrophe in a word (`can't`) opens nothing.
            (None, '\'' | '"' | '`') if opens => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, _) if text[i..].starts_with(sep) && i >= start => {
                pieces.push(&text[start..i]);
                start = i + sep.len();
            }
            _ => {}
        }
    }
    pieces.push(&text[start..]);
    pieces
}

/// A damage signature's name (`corrupt-metadata`, as JSON has it) in words: `damaged crate metadata`.
#[must_use]
pub fn damage(signature: &str) -> &str {
    match signature {
        "corrupt-metadata" => "damaged crate metadata",
        "corrupt-rlib" => "a damaged .rlib",
        "missing-rlib" => "a missing or damaged .rlib",
        "invalid-metadata-version" => "metadata from another rustc",
        "missing-extern" => "a missing dependency file",
        "dep-info" => "a damaged dep-info file",
        "archive" | "truncated-archive" => "a truncated archive",
        "missing-file" => "a missing build file",
        "incremental-ice" => "a damaged incremental cache",
        other => other,
    }
}

/// The cargo command of a shown command line: `cargo check`, without the arguments the run added.
#[must_use]
pub fn cargo_command(shown: &str) -> String {
    let words: Vec<&str> = shown.split_whitespace().take(2).collect();
    let program = words.first().map_or("cargo", |p| p.rsplit(['/', std::path::MAIN_SEPARATOR]).next().unwrap_or(p));
    match words.get(1) {
        Some(sub) => format!("{program} {sub}"),
        None => program.to_string(),
    }
}

/// What a dry run foresaw that the summary does not carry: what it would remove or repair.
#[derive(Debug, Clone, Default)]
pub struct Foreseen {
    /// Files and bytes in all, measured.
    pub removes: Option<(u64, u64)>,
    /// The units a repair would remove.
    pub repairs: Option<Vec<String>>,
    /// The units a sweep would remove.
    pub sweeps: Option<u64>,
}

/// What the closing `Summary` line says, from the run's summary; `checked`: the cargo command of the check or the
/// verify (`cargo check`).
#[must_use]
pub fn summary_line(s: &Summary, foreseen: &Foreseen, checked: &str) -> String {
    if s.mode == Mode::Sweep {
        return sweep_summary(s, checked);
    }
    if let Some(f) = s.free_space.filter(|f| !f.wanted()) {
        return plenty(f);
    }
    let mut parts = Vec::new();
    let outcome = |o: Outcome| s.holders.iter().filter(move |h| h.outcome == Some(o)).map(|h| &h.holder);
    let held = match (s.mode, &s.dirs) {
        (Mode::Unlock, _) => "cargo's locks".to_string(),
        (Mode::Clean, Some(d)) => d.roots().map(|r| dir_in(r, Some(d))).collect::<Vec<_>>().join(" or "),
        (Mode::Clean | Mode::Sweep, None) => "the target dir".to_string(),
        (Mode::Sweep, Some(d)) => d.roots().map(|r| dir_in(r, Some(d))).collect::<Vec<_>>().join(" or "),
    };
    // Never "nothing held it" when some processes could not be looked at.
    let none_held = match s.uninspectable.count() {
        0 => format!("no process held {held}"),
        n => format!("no process held {held} ({} could not be inspected)", things(n as u64, "process", "processes")),
    };
    if s.dry_run {
        let (stop, spare) = (outcome(Outcome::WouldTerminate).count(), outcome(Outcome::WouldSpare).count());
        let plan = match (stop, spare) {
            (0, 0) => none_held,
            (stop, 0) => format!("would stop {}", things(stop as u64, "process", "processes")),
            (0, spare) => format!("would spare {}", things(spare as u64, "process", "processes")),
            (stop, spare) => format!("would stop {stop} and spare {spare}"),
        };
        parts.push(format!("dry run: {plan}"));
        if let Some(units) = &foreseen.repairs {
            parts.push(format!("would repair {}", units.join(", ")));
        } else if let Some((files, bytes)) = foreseen.removes {
            parts.push(format!("would remove {}", files_and_bytes(files, bytes)));
        }
        parts.push("nothing was signalled or deleted".into());
        return parts.join("; ");
    }
    let holders = settled_words(s);
    let held = if holders.is_empty() { none_held } else { holders.join(", ") };
    match s.check.as_ref().map(|c| &c.result) {
        Some(CheckResult::Healthy) => {
            let what = if s.holders.is_empty() { String::new() } else { format!("{held}; ") };
            return format!("{what}`{checked}` passed; nothing was cleaned");
        }
        // The check failed, and not for damage: the run ends there.
        Some(CheckResult::CodeError | CheckResult::Unknown { .. }) if s.holders.is_empty() => {
            return format!("`{checked}` failed; nothing was cleaned");
        }
        _ => {}
    }
    parts.push(held);
    if let Some(r) = &s.repaired {
        let what = files_and_bytes(r.files, r.bytes);
        parts.push(format!("repaired {} ({what})", r.units.join(", ")));
        // The verify, if any, says whether the check passed; else the repair's own check does.
        if s.verify.is_none() {
            parts.push(if r.healed {
                format!("`{checked}` passed after rebuilding them")
            } else {
                format!("`{checked}` still failed after it")
            });
        }
    }
    match (&s.removed, &s.purge_detached) {
        (Some(r), _) => {
            parts.push(format!("removed {} in {}", files_and_bytes(r.files, r.bytes), duration_ms(r.duration_ms)));
        }
        (None, Some(d)) => parts.push(format!("deleting the old tree in the background (pid {})", d.pid)),
        (None, None) if s.mode == Mode::Clean && s.repaired.is_none() && s.error.is_none() => {
            parts.push("nothing was cleaned".into());
        }
        (None, None) => {}
    }
    parts.extend(s.verify.as_ref().map(|v| verified(v, checked)));
    parts.join("; ")
}

/// `--if-free-below` found enough space.
fn plenty(f: FreeSpace) -> String {
    format!("nothing to do: {} free, not below {}", super::human_bytes(f.free), super::human_bytes(f.below))
}

/// A criterion as the summary counts by it: `3 orphans`, `9 of another toolchain`.
#[must_use]
pub fn by_criterion(c: Criterion, units: u64) -> String {
    match c {
        Criterion::Orphan => things(units, "orphan", "orphans"),
        Criterion::UninstalledToolchain => format!("{} of a toolchain no longer installed", count(units)),
        Criterion::OtherToolchain => format!("{} of another toolchain", count(units)),
        Criterion::OlderThan => format!("{} unused for longer than --older-than", count(units)),
        Criterion::MaxSize => format!("{} least recently used over --max-size", count(units)),
    }
}

/// What a criterion removes, for the plan's lines.
#[must_use]
pub fn criterion(c: Criterion) -> &'static str {
    match c {
        Criterion::Orphan => "orphans that no build uses",
        Criterion::UninstalledToolchain => "built by a toolchain no longer installed",
        Criterion::OtherToolchain => "built by another toolchain (--other-toolchains)",
        Criterion::OlderThan => "unused for longer than --older-than",
        Criterion::MaxSize => "least recently used over --max-size",
    }
}

/// The summary of a sweep.
fn sweep_summary(s: &Summary, checked: &str) -> String {
    if let Some(f) = s.free_space.filter(|f| !f.wanted()) {
        return plenty(f);
    }
    let Some(w) = &s.swept else { return "nothing was swept".into() };
    let mut parts = Vec::new();
    let by: Vec<String> =
        w.plan.by_criterion.iter().filter(|(_, t, _)| t.units > 0).map(|(c, t, _)| by_criterion(*c, t.units)).collect();
    let by = if by.is_empty() { String::new() } else { format!(": {}", by.join(", ")) };
    let units = things(w.units, "unit", "units");
    parts.push(match (s.dry_run, w.units) {
        (_, 0) => "nothing to sweep".to_string(),
        (true, _) => format!("dry run: would sweep {units} ({}){by}", files_and_bytes(w.files, w.bytes)),
        (false, _) => format!("swept {units} ({}){by}", files_and_bytes(w.files, w.bytes)),
    });
    let held = w.plan.kept.iter().filter(|k| k.unit.is_some() && k.reason == KeptReason::Held).count();
    if held > 0 {
        parts.push(format!("kept {} that live processes hold or need", things(held as u64, "unit", "units")));
    }
    let skipped = w.plan.kept.iter().filter(|k| k.unit.is_none()).count();
    if skipped > 0 {
        parts.push(format!("skipped {} a build held", things(skipped as u64, "profile", "profiles")));
    }
    if s.dry_run {
        parts.push("nothing was deleted".into());
    }
    if let Some(d) = &s.purge_detached {
        parts.push(format!("deleting them in the background (pid {})", d.pid));
    }
    parts.extend(s.verify.as_ref().map(|v| verified(v, checked)));
    parts.join("; ")
}

/// How the verify went: `` `cargo check` passed in 1.25s ``.
#[must_use]
pub fn verified(v: &crate::model::Verified, checked: &str) -> String {
    let took = duration_ms(v.duration_ms);
    match (v.success(), v.exit_code) {
        (true, _) => format!("`{checked}` passed in {took}"),
        (false, Some(code)) => format!("`{checked}` failed (exit code {code}) after {took}"),
        (false, None) => format!("`{checked}` was killed after {took}"),
    }
}

/// What became of the holders of a run, in words: `stopped 2 processes (1 killed)`, `spared 1 still running: …`.
fn settled_words(s: &Summary) -> Vec<String> {
    let count = |o: Outcome| s.holders.iter().filter(|h| h.outcome == Some(o)).count();
    let stopped: usize = [Outcome::ExitedAfterSigterm, Outcome::Killed, Outcome::AlreadyGone].map(count).iter().sum();
    let killed = count(Outcome::Killed);
    let mut holders = Vec::new();
    if stopped > 0 {
        let killed = if killed > 0 { format!(" ({killed} killed)") } else { String::new() };
        holders.push(format!("stopped {}{killed}", things(stopped as u64, "process", "processes")));
    }
    let spared = |gone: bool| {
        s.holders.iter().filter(move |h| h.outcome == Some(Outcome::Spared) && h.gone == gone).map(|h| &h.holder)
    };
    let running: Vec<String> = spared(false).map(|h| process(&h.process)).collect();
    if !running.is_empty() {
        let shown = running.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        let more = running.len().saturating_sub(3);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        holders.push(format!("spared {} still running: {shown}{more}", running.len()));
    }
    let exited = spared(true).count();
    if exited > 0 {
        holders.push(format!("spared {exited} that exited since"));
    }
    let survived: Vec<&Settled> = s.holders.iter().filter(|h| h.outcome == Some(Outcome::Survived)).collect();
    if !survived.is_empty() {
        // Interrupted before its SIGKILL is not the same as surviving one.
        let interrupted = survived.iter().all(|h| h.note.as_deref() == Some(crate::model::INTERRUPTED));
        holders.push(if interrupted {
            format!("left {} running (interrupted)", survived.len())
        } else {
            format!("{} survived", survived.len())
        });
    }
    holders
}

/// The `help:` lines for the next step a finished run leaves, if any.
#[must_use]
pub fn helps(summary: &Summary, foreseen: &Foreseen) -> Vec<String> {
    let would_remove = foreseen.removes.is_some_and(|(files, _)| files > 0)
        || foreseen.repairs.is_some()
        || foreseen.sweeps.is_some_and(|units| units > 0);
    let mut helps = Vec::new();
    // Only a spared holder that still runs is worth stopping.
    let spared = |reason| summary.holders.iter().any(|h| h.holder.spare_reason == Some(reason) && !h.gone);
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

    /// `path` with this OS's separator.
    fn native(path: &str) -> String {
        path.replace('/', std::path::MAIN_SEPARATOR_STR)
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
        assert_eq!(dir_in(Path::new("/w/target"), Some(&dirs)), native("target/"));
        assert_eq!(
            dir_in(Path::new("/fast/b"), Some(&dirs)),
            format!("build dir /fast/b{}", std::path::MAIN_SEPARATOR)
        );
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
        assert_eq!(wrap("x; aaaa, bbbb, cc; d", 11), ["x;", "aaaa, bbbb,", "cc; d"], "then at a comma");
        assert_eq!(wrap("x; aaaa, bb", 10), ["x;", "aaaa, bb"], "only a part too long for a line is cut");
        assert_eq!(wrap("`a, b` c", 3), ["`a, b` c"], "never inside quotes");
        assert_eq!(wrap("can't, aaaa", 6), ["can't,", "aaaa"], "an apostrophe is no quote");
        assert_eq!(
            elide(native("target/debug/build/app-1d2f3a4b5c6d7e8f/out/generated/bindings.rs")),
            native("target/…/out/generated/bindings.rs")
        );
        assert_eq!(
            elide(native(&format!("target/{}/x", "d".repeat(60)))),
            native("target/…/x"),
            "the last always stays"
        );
    }

    fn settled(pid: u32, outcome: Outcome, note: Option<&str>, gone: bool) -> Settled {
        let verdict = if outcome == Outcome::Spared || outcome == Outcome::WouldSpare {
            Verdict::Spare
        } else {
            Verdict::Terminate
        };
        let holder = Holder {
            process: Process { pid, ..proc(&["tail", "-f", "log"]) },
            handles: vec![],
            kind: Kind::Other,
            verdict,
            spare_reason: (verdict == Verdict::Spare).then_some(SpareReason::Policy),
            relation: None,
            via: None,
        };
        Settled { holder, outcome: Some(outcome), note: note.map(str::to_string), gone }
    }

    fn line(holders: Vec<Settled>, dry_run: bool, edit: impl FnOnce(&mut Summary)) -> String {
        let mut s = Summary { holders, ..Summary::empty(Mode::Clean, dry_run, 0) };
        edit(&mut s);
        summary_line(&s, &Foreseen::default(), "cargo check")
    }

    #[test]
    fn the_summary_counts_only_what_there_is() {
        let spare = settled(2, Outcome::WouldSpare, None, false);
        assert_eq!(
            line(vec![spare], true, |_| ()),
            "dry run: would spare 1 process; nothing was signalled or deleted",
            "no `would stop 0`"
        );
        let (stopped, gone) = (settled(1, Outcome::Killed, None, false), settled(2, Outcome::Spared, None, true));
        let summary = Summary { holders: vec![stopped.clone(), gone], ..Summary::empty(Mode::Clean, false, 0) };
        assert_eq!(
            summary_line(&summary, &Foreseen::default(), "cargo check"),
            "stopped 1 process (1 killed), spared 1 that exited since; nothing was cleaned"
        );
        assert!(helps(&summary, &Foreseen::default()).is_empty(), "no advice to stop what is gone");
        let left = settled(3, Outcome::Survived, Some(crate::model::INTERRUPTED), false);
        assert_eq!(line(vec![left], false, |_| ()), "left 1 running (interrupted); nothing was cleaned");
        let healthy = crate::model::Checked { result: CheckResult::Healthy, exit_code: Some(0), duration_ms: 5 };
        assert_eq!(
            line(vec![stopped], false, |s| s.check = Some(healthy)),
            "stopped 1 process (1 killed); `cargo check` passed; nothing was cleaned",
            "what was stopped to run the check is said"
        );
        assert_eq!(line(vec![], false, |_| ()), "no process held the target dir; nothing was cleaned");
    }

    #[test]
    fn names_cannot_fake_lines() {
        assert_eq!(printable("a\n     Summary x\u{1b}[2J"), "a\\n     Summary x\\u{1b}[2J");
        assert_eq!(printable("plain"), "plain");
    }

    #[test]
    fn every_damage_has_words() {
        let names = crate::diagnose::SIGNATURES.iter().map(|s| s.name).chain([crate::diagnose::INCREMENTAL_ICE]);
        for name in names {
            assert_ne!(damage(name), name, "{name}");
        }
    }

    #[test]
    fn cargo_commands_lose_their_added_arguments() {
        assert_eq!(cargo_command("cargo check --manifest-path /w/Cargo.toml"), "cargo check");
        assert_eq!(cargo_command("/opt/bin/cargo build"), "cargo build");
    }
}
