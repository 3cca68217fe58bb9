//! Human text on stderr, in cargo's voice: a right-aligned status word, then what happened.

use std::collections::HashMap;
use std::fmt::Display;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Reporter, Style, human_bytes};
use crate::event::{Event, Summary};
use crate::layout::lock_name;
use crate::model::{
    CheckResult, Checked, Hold, Holder, Kind, Mode, Outcome, Relation, SpareReason, Uninspectable, Verdict, Verified,
};
use crate::purge::Progress;

#[derive(Clone, Copy)]
enum Tone {
    Good,
    Warn,
    Bad,
}

pub struct HumanReporter {
    style: Style,
    out: Mutex<Box<dyn Write + Send>>,
    bar: Mutex<Option<(ProgressBar, Arc<AtomicBool>)>>,
    /// The holders reported so far, by pid: later events name a holder by pid only.
    holders: Mutex<HashMap<u32, Holder>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl HumanReporter {
    pub fn new(style: Style, out: Box<dyn Write + Send>) -> Self {
        HumanReporter { style, out: Mutex::new(out), bar: Mutex::new(None), holders: Mutex::default() }
    }

    fn paint(&self, text: &str, tone: Tone) -> String {
        if !self.style.color {
            return text.to_string();
        }
        let code = match tone {
            Tone::Good => "1;32",
            Tone::Warn => "1;33",
            Tone::Bad => "1;31",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// Prints one line above the progress bar, if one is showing.
    fn print(&self, line: &str) {
        let write = || {
            let mut out = lock(&self.out);
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        };
        match lock(&self.bar).as_ref() {
            Some((bar, _)) => bar.suspend(write),
            None => write(),
        }
    }

    /// Flushes what was written, so that another stream's output lands after it.
    pub fn flush(&self) {
        let _ = lock(&self.out).flush();
    }

    fn status(&self, word: &str, tone: Tone, rest: &str) {
        if !self.style.quiet || matches!(tone, Tone::Bad | Tone::Warn) {
            self.print(&format!("{} {rest}", self.paint(&format!("{word:>12}"), tone)));
        }
    }

    fn warning(&self, message: &str) {
        self.print(&format!("{}: {message}", self.paint("warning", Tone::Warn)));
    }

    /// `pid N name (command line) [kind]`, or just `pid N` for a process that was never reported.
    fn describe(&self, pid: u32) -> String {
        match lock(&self.holders).get(&pid) {
            Some(h) => self.describe_holder(h),
            None => format!("pid {pid}"),
        }
    }

    fn describe_holder(&self, h: &Holder) -> String {
        let p = &h.process;
        let mut s = format!("pid {} {}", p.pid, p.display_name());
        if !p.cmdline.is_empty() {
            let cmd = shell_words::join(&p.cmdline);
            let cmd = if cmd.chars().count() > 80 && !self.style.verbose {
                format!("{}…", cmd.chars().take(79).collect::<String>())
            } else {
                cmd
            };
            let _ = write!(s, " ({cmd})");
        }
        let _ = write!(s, " [{}]", h.kind.as_str());
        s
    }

    fn handles(&self, h: &Holder) -> String {
        let mut parts: Vec<String> = Vec::new();
        for handle in &h.handles {
            let path = handle.path.display();
            // Where the holder source cannot see lock state (lsof on macOS), an fd on a lock file only says that.
            let text = match (handle.hold, lock_name(&handle.path)) {
                (Some(Hold::Exclusive), Some(lock)) => format!("holds the {} lock {path}", lock.in_words()),
                (Some(Hold::Shared), Some(lock)) => format!("shares the {} lock {path}", lock.in_words()),
                (Some(Hold::Waiting), Some(lock)) => format!("waits for the {} lock {path}", lock.in_words()),
                (None, Some(_)) => format!("has the lock file open {path}"),
                _ => format!("{} {path}", handle.kind.as_str()),
            };
            parts.push(text);
        }
        let limit = if self.style.verbose { usize::MAX } else { 3 };
        let extra = parts.len().saturating_sub(limit);
        parts.truncate(limit);
        if extra > 0 {
            parts.push(format!("{extra} more (-v shows them)"));
        }
        let child_of_via =
            matches!((&h.relation, h.via), (Some(Relation::ChildOf { pid, .. }), Some(via)) if *pid == via);
        if let (Some(via), false) = (h.via, child_of_via) {
            parts.push(format!("in the process group of pid {via}"));
        }
        match &h.relation {
            Some(Relation::Orphaned) => parts.push("orphaned (the process that started it is gone)".into()),
            Some(Relation::ChildOf { pid, name }) => parts.push(format!("child of {name} pid {pid}")),
            None => {}
        }
        // A lock's holder is seldom in this workspace: where it runs and for how long tell what it is.
        let p = &h.process;
        if h.handles.iter().any(|x| x.hold.is_some()) {
            if let Some(cwd) = &p.cwd {
                parts.push(format!("in {}", cwd.display()));
            }
            if let Some(age) = p.started_at.and_then(running_for) {
                parts.push(format!("running for {age}"));
            }
        }
        if p.stopped {
            parts.push("stopped (Ctrl-Z or a debugger)".into());
        }
        if h.kind == Kind::Ide && h.verdict == Verdict::Spare {
            parts.push("rust-analyzer can be given its own target dir (rust-analyzer.cargo.targetDir)".into());
        }
        parts.join(", ")
    }

    fn holder(&self, h: &Holder, outcome: Option<Outcome>) {
        lock(&self.holders).insert(h.process.pid, h.clone());
        let tone = if h.verdict == Verdict::Terminate { Tone::Warn } else { Tone::Good };
        let line = format!("{}: {} — {}", self.describe_holder(h), self.handles(h), plan(h, outcome));
        self.status("Holder", tone, &line);
    }

    fn scanned(&self, mode: Mode, holders: usize, uninspectable: &Uninspectable) {
        let held = match mode {
            Mode::Clean => "the target dir",
            Mode::Unlock => "cargo's locks",
        };
        if holders == 0 {
            // Never "nothing holds it" when some processes could not be looked at.
            let what = if uninspectable.count() == 0 {
                format!("no process holds {held}")
            } else {
                format!("no process that could be inspected holds {held}")
            };
            self.status("Scanned", Tone::Good, &what);
        }
        if uninspectable.other_users > 0 {
            self.warning(&format!(
                "{} processes of other users could not be inspected; run as root to see them",
                uninspectable.other_users
            ));
        }
        if !uninspectable.own.is_empty() {
            let mut named: Vec<String> =
                uninspectable.own.iter().take(3).map(|(pid, name)| format!("pid {pid} ({name})")).collect();
            if uninspectable.own.len() > 3 {
                named.push(format!("{} more", uninspectable.own.len() - 3));
            }
            self.warning(&format!(
                "could not inspect {}: access denied even though they are yours (a sandbox, ptrace restrictions \
                 or a setuid program); whatever they hold is not known",
                named.join(", ")
            ));
        }
        for (pid, name, what) in &uninspectable.unnamed {
            self.warning(&format!("pid {pid} ({name}) {what}: whether it holds {held} is not known"));
        }
    }

    fn ended(&self, pid: u32, outcome: Outcome, after_ms: u64, note: Option<&str>) {
        let (word, tone) = match outcome {
            Outcome::ExitedAfterSigterm => ("Stopped", Tone::Good),
            Outcome::Killed => ("Killed", Tone::Warn),
            Outcome::AlreadyGone => ("Gone", Tone::Good),
            _ => ("Survived", Tone::Bad),
        };
        let note = note.map(|n| format!(": {n}")).unwrap_or_default();
        self.status(word, tone, &format!("{} {outcome} after {after_ms} ms{note}", self.describe(pid)));
    }

    fn purge_started(&self, progress: &Arc<Progress>) {
        if !self.style.progress {
            return;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12.cyan.bold} {spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix("Removing");
        let done = Arc::new(AtomicBool::new(false));
        let (b, d, p) = (bar.clone(), Arc::clone(&done), Arc::clone(progress));
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            while !d.load(Ordering::Relaxed) {
                let files = p.files.load(Ordering::Relaxed);
                let bytes = p.bytes.load(Ordering::Relaxed);
                #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
                let rate = files as f64 / start.elapsed().as_secs_f64().max(0.001);
                b.set_message(format!("{files} files, {} ({rate:.0} files/s)", human_bytes(bytes)));
                b.tick();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        *lock(&self.bar) = Some((bar, done));
    }

    fn removed(&self, files: u64, bytes: u64) {
        if let Some((bar, done)) = lock(&self.bar).take() {
            done.store(true, Ordering::Relaxed);
            bar.finish_and_clear();
        }
        let noun = if files == 1 { "file" } else { "files" };
        self.status("Removed", Tone::Good, &format!("{files} {noun}, {} total", human_bytes(bytes)));
    }

    fn checked(&self, c: &Checked) {
        let secs = Duration::from_millis(c.duration_ms).as_secs_f64();
        match &c.result {
            CheckResult::Healthy => {
                self.status("Healthy", Tone::Good, &format!("the check passed in {secs:.2}s; nothing to clean"));
            }
            CheckResult::Corrupt { signature, path } => self.status(
                "Damaged",
                Tone::Warn,
                &format!("build dir: {signature} in {}; cleaning it", path.display()),
            ),
            CheckResult::CodeError => self.status(
                "Failed",
                Tone::Bad,
                "the check failed with errors no clean fixes: the code, not the build dir, is broken",
            ),
            CheckResult::Unknown { path } => self.status(
                "Failed",
                Tone::Bad,
                &format!(
                    "the check failed with an error about {} that this tool does not know as damage; nothing was \
                     cleaned (`cargo safeclean` without --if-broken cleans anyway)",
                    path.display()
                ),
            ),
            CheckResult::Blocked { lock, holder } => {
                let by = holder.map_or_else(|| "a process that could not be inspected".into(), |p| self.describe(p));
                self.status("Blocked", Tone::Warn, &format!("the check waits for {}, held by {by}", lock.display()));
            }
        }
    }

    fn verified(&self, v: &Verified) {
        let secs = Duration::from_millis(v.duration_ms).as_secs_f64();
        let (word, tone, text) = match (v.success(), v.exit_code) {
            (true, _) => ("Verified", Tone::Good, format!("cargo check passed in {secs:.2}s")),
            (false, Some(code)) => ("Failed", Tone::Bad, format!("cargo check exited with {code} after {secs:.2}s")),
            (false, None) => ("Failed", Tone::Bad, format!("cargo check was killed by a signal after {secs:.2}s")),
        };
        self.status(word, tone, &text);
    }
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

/// What happens to a holder, in words.
fn plan(h: &Holder, outcome: Option<Outcome>) -> &'static str {
    match (h.verdict, h.spare_reason, outcome) {
        (_, _, Some(Outcome::WouldTerminate)) => "would terminate",
        (_, Some(SpareReason::Protected), _) => "spared: init, or this run's own family",
        (_, Some(SpareReason::NotOwner), _) => "spared: it does not own the lock, and is never signalled for it",
        (_, Some(SpareReason::Policy), Some(Outcome::WouldSpare)) => "would spare (--all-holders stops it)",
        (_, Some(SpareReason::Policy), _) => "spared (--all-holders stops it)",
        (Verdict::Terminate, _, _) => "to terminate",
        (Verdict::Spare, _, _) => "spared",
    }
}

impl Reporter for HumanReporter {
    fn event(&self, event: &Event) {
        match event {
            Event::Dirs(dirs) if self.style.verbose => {
                let build = dirs.build_dir.as_ref().map(|b| format!(" and {}", b.display())).unwrap_or_default();
                self.status("Scanning", Tone::Good, &format!("{}{build} for holders", dirs.target_dir.display()));
            }
            Event::WaitingForOtherRun { dir, holder, timeout } => self.status(
                "Blocking",
                Tone::Warn,
                &format!(
                    "waiting for the run lock of {}, held by {holder} (at most {}s, --lock-timeout)",
                    dir.display(),
                    timeout.as_secs()
                ),
            ),
            Event::Holder { holder, outcome } => self.holder(holder, *outcome),
            Event::Scanned { mode, holders, uninspectable } => self.scanned(*mode, *holders, uninspectable),
            Event::Signal { pid, signal } if self.style.verbose => {
                self.status("Signal", Tone::Warn, &format!("{} to pid {pid}", signal.name()));
            }
            Event::Exited { pid, outcome, after_ms } => self.ended(*pid, *outcome, *after_ms, None),
            Event::Survived { pid, note, after_ms } => self.ended(*pid, Outcome::Survived, *after_ms, Some(note)),
            Event::PurgeStarted(progress) => self.purge_started(progress),
            Event::Removed(r) => self.removed(r.files, r.bytes),
            Event::PurgeDetached(d) => self.status(
                "Detached",
                Tone::Good,
                &format!(
                    "pid {} deletes the old tree in the background, at the lowest priority; follow it with `tail -f {}`",
                    d.pid,
                    d.log.display()
                ),
            ),
            Event::CheckStarted { command } => {
                self.status("Checking", Tone::Good, &format!("the build dir with `{command}`"));
            }
            Event::Checked(c) => self.checked(c),
            Event::RepairPlanned { units, entries } => self.status(
                "Would repair",
                Tone::Warn,
                &format!(
                    "{} ({entries} entries), then check again; if the damage remains, clean the whole tree",
                    units.join(", ")
                ),
            ),
            Event::Repaired(r) => {
                let secs = Duration::from_millis(r.check_ms).as_secs_f64();
                let (tone, then) = if r.healed {
                    (Tone::Good, format!("the check passed in {secs:.2}s, rebuilding {}", r.rebuilt.join(", ")))
                } else {
                    (Tone::Warn, format!("the check still fails ({secs:.2}s)"))
                };
                let files = format!("{} files, {}", r.files, human_bytes(r.bytes));
                self.status("Repaired", tone, &format!("{} ({files}); {then}", r.units.join(", ")));
            }
            Event::VerifyStarted { command } => self.status("Verifying", Tone::Good, &format!("with `{command}`")),
            Event::CargoLine(line) if !self.style.quiet => self.print(line),
            Event::Verified(v) => self.verified(v),
            Event::Warning(message) => self.warning(message),
            Event::Dirs(_) | Event::Signal { .. } | Event::CargoLine(_) => {}
        }
    }

    fn finish(&self, summary: &Summary, error: Option<&dyn Display>) -> std::io::Result<()> {
        if let Some(e) = error {
            self.print(&format!("{}: {e}", self.paint("error", Tone::Bad)));
        } else if summary.dry_run && !self.style.quiet {
            let n = summary.holders.iter().filter(|h| h.holder.verdict == Verdict::Terminate).count();
            self.status("Dry run", Tone::Good, &format!("{n} to terminate; nothing was signalled or deleted"));
        }
        self.flush();
        Ok(())
    }
}
