//! Human text on stderr, in cargo's voice: a right-aligned status word saying what happens, then to what; one
//! line per thing; warnings and errors as cargo writes them; a countdown while processes are given time to exit,
//! and a closing `Summary` line. The words themselves are in [`super::words`].

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::words::{self, files_and_bytes};
use super::{Reporter, Style, failure_lines};
use crate::event::{Event, Summary};
use crate::model::{
    CheckResult, Checked, DirSize, FreeSpace, Holder, KeptReason, Mode, Outcome, Progress, Sig, SweepPlan,
    Uninspectable, Verdict, Verified,
};
use crate::workspace::Dirs;

#[derive(Clone, Copy)]
enum Tone {
    Good,
    Warn,
    Bad,
    /// A `help:` label, as cargo colours it.
    Help,
}

/// A line that redraws itself on a terminal (the purge's counters, a countdown), until it is cleared.
struct Ticker {
    bar: ProgressBar,
    /// Dropped to stop the thread, which is joined before the bar is cleared: else it could draw it once more.
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// What earlier events said, for later lines that name things by pid or need the dirs.
#[derive(Default)]
struct Seen {
    dirs: Option<Dirs>,
    holders: HashMap<u32, Holder>,
    /// The command of the check or the verify that ran last, as cargo's subcommand (`cargo check`).
    command: Option<String>,
    /// What a dry run would remove or repair.
    foreseen: words::Foreseen,
    /// The processes a countdown waits for.
    waiting: Arc<Mutex<Vec<(u32, String)>>>,
    /// A sweep: the purge removes swept units, not the whole tree.
    sweeping: bool,
}

pub struct HumanReporter {
    style: Style,
    out: Mutex<Box<dyn Write + Send>>,
    ticker: Mutex<Option<Ticker>>,
    seen: Mutex<Seen>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The processes a wait is for: the one by name, or how many.
fn who_of(named: &[(u32, String)]) -> String {
    match named {
        [(_, one)] => one.clone(),
        many => words::things(many.len() as u64, "process", "processes"),
    }
}

/// Where a status line's text starts: after the 12 columns of the word and a space.
const INDENT: &str = "             ";

impl HumanReporter {
    pub fn new(style: Style, out: Box<dyn Write + Send>) -> Self {
        HumanReporter { style, out: Mutex::new(out), ticker: Mutex::new(None), seen: Mutex::default() }
    }

    fn paint(&self, text: &str, tone: Tone) -> String {
        if !self.style.color {
            return text.to_string();
        }
        let code = match tone {
            Tone::Good => "1;32",
            Tone::Warn => "1;33",
            Tone::Bad => "1;31",
            Tone::Help => "1;36",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// Prints one line above the ticker, if one is showing.
    fn print(&self, line: &str) {
        let write = || {
            let mut out = lock(&self.out);
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        };
        match lock(&self.ticker).as_ref() {
            Some(t) => t.bar.suspend(write),
            None => write(),
        }
    }

    /// Flushes what was written, so that another stream's output lands after it.
    pub fn flush(&self) {
        let _ = lock(&self.out).flush();
    }

    /// A status line; `-q` keeps only warnings and errors, which are not status lines.
    fn status(&self, word: &str, tone: Tone, rest: &str) {
        if !self.style.quiet {
            self.line(word, tone, rest);
        }
    }

    /// A status line even `-q` shows: the errors cargo printed for a damaged build dir need this one to say they
    /// were the damage's, and were repaired.
    fn line(&self, word: &str, tone: Tone, rest: &str) {
        let rest = words::printable(rest);
        let mut lines = words::wrap(&rest, self.style.width - INDENT.len()).into_iter();
        let first = lines.next().unwrap_or_default();
        self.print(&format!("{} {first}", self.paint(&format!("{word:>12}"), tone)));
        for line in lines {
            self.print(&format!("{INDENT}{line}"));
        }
    }

    fn warning(&self, message: &str) {
        self.print(&format!("{}: {}", self.paint("warning", Tone::Warn), words::printable(message)));
    }

    /// A `note:` that only `-v` shows: true, but nothing to act on in the common case.
    fn verbose_note(&self, message: &str) {
        if self.style.verbose > 0 {
            self.print(&format!("{}: {message}", self.paint("note", Tone::Good)));
        }
    }

    fn dirs(&self) -> Option<Dirs> {
        lock(&self.seen).dirs.clone()
    }

    /// `cargo build (pid 8293)`, or `pid 8293` for a process that was never reported.
    fn who(&self, pid: u32) -> String {
        lock(&self.seen).holders.get(&pid).map_or_else(|| format!("pid {pid}"), |h| words::process(&h.process))
    }

    fn holder(&self, h: &Holder, outcome: Option<Outcome>) {
        lock(&self.seen).holders.insert(h.process.pid, h.clone());
        let tone = if h.verdict == Verdict::Terminate { Tone::Warn } else { Tone::Good };
        let dirs = self.dirs();
        self.status(words::holder_word(h, outcome), tone, &words::holder_line(h, dirs.as_ref()));
        if self.style.verbose > 0 && !self.style.quiet {
            for detail in words::holder_details(h) {
                for line in words::wrap(&words::printable(&detail), self.style.width - INDENT.len()) {
                    self.print(&format!("{INDENT}{line}"));
                }
            }
        }
    }

    /// What the scan could not see. Another user's processes are there on every machine, and an unreadable pid 1
    /// in every sandbox: a note under `-v`, and a count in the summary where it qualifies "nothing held it".
    fn scanned(&self, mode: Mode, u: &Uninspectable) {
        let held = match mode {
            Mode::Clean | Mode::Sweep => "the target dir",
            Mode::Unlock => "cargo's locks",
        };
        if u.other_users > 0 {
            self.verbose_note(&format!(
                "{} of other users could not be inspected; as root (`sudo cargo safeclean`) a run inspects them too, \
                 and still acts on the workspace with its owner's rights",
                words::things(u.other_users as u64, "process", "processes")
            ));
        }
        let (init, own): (Vec<_>, Vec<_>) = u.own.iter().partition(|(pid, _)| *pid == 1);
        if !init.is_empty() {
            self.verbose_note("pid 1 (a sandbox's init) could not be inspected");
        }
        if !own.is_empty() {
            let mut named: Vec<String> = own.iter().take(3).map(|(pid, name)| format!("{name} (pid {pid})")).collect();
            if own.len() > 3 {
                named.push(format!("{} more", own.len() - 3));
            }
            self.warning(&format!(
                "could not inspect {}, although they are yours (a sandbox, ptrace restrictions or a setuid \
                 program): what they hold is not known",
                named.join(", ")
            ));
        }
        for (pid, name, what) in &u.unnamed {
            self.warning(&format!("{name} (pid {pid}) {what}: whether it holds {held} is not known"));
        }
    }

    fn ended(&self, pid: u32, outcome: Outcome, after_ms: u64, note: Option<&str>) {
        self.waited_for(pid);
        let who = self.who(pid);
        let took = words::duration_ms(after_ms);
        match outcome {
            Outcome::ExitedAfterSigterm => self.status("Stopped", Tone::Good, &format!("{who} after {took}")),
            Outcome::Killed => {
                self.status("Killed", Tone::Warn, &format!("{who} after {took}: SIGTERM did not stop it"));
            }
            Outcome::AlreadyGone => self.status("Gone", Tone::Good, &format!("{who} exited before it was signalled")),
            _ if note == Some(crate::model::INTERRUPTED) => {
                self.status("Left", Tone::Warn, &format!("{who} running: the run was interrupted"));
            }
            _ => self.status("Survived", Tone::Bad, &format!("{who}: {}", note.unwrap_or("still running"))),
        }
    }

    /// Starts a ticker showing `message()` after `word`, replacing any other.
    fn tick(&self, word: &str, message: impl Fn() -> String + Send + 'static) {
        if !self.style.progress {
            return;
        }
        self.untick();
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        // `wide_msg`: cut to the terminal's width, so the line never wraps and is cleared whole.
        let template = "{prefix:>12.cyan.bold} {spinner} {wide_msg}";
        bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner()));
        bar.set_prefix(word.to_string());
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let b = bar.clone();
        let thread = std::thread::spawn(move || {
            loop {
                b.set_message(message());
                b.tick();
                if stopped.recv_timeout(Duration::from_millis(100)) != Err(RecvTimeoutError::Timeout) {
                    break;
                }
            }
        });
        *lock(&self.ticker) = Some(Ticker { bar, stop, thread });
    }

    fn untick(&self) {
        let ticker = lock(&self.ticker).take();
        if let Some(Ticker { bar, stop, thread }) = ticker {
            drop(stop);
            let _ = thread.join();
            bar.finish_and_clear();
        }
    }

    /// The stop waits for `pids`: a countdown on a terminal, otherwise one line saying how long at most.
    fn waiting(&self, pids: &[u32], after: Sig, within: Duration) {
        let named: Vec<(u32, String)> = pids.iter().map(|&p| (p, self.who(p))).collect();
        let (verb, then) = if after == Sig::Kill { ("die", "") } else { ("exit", ", then SIGKILL") };
        if !self.style.progress {
            let secs = within.as_secs_f64().ceil();
            let text = format!("up to {secs}s for {} to {verb} after {}{then}", who_of(&named), after.name());
            return self.status("Waiting", Tone::Warn, &text);
        }
        let next = if after == Sig::Kill { "giving up" } else { "SIGKILL" };
        let live = Arc::clone(&lock(&self.seen).waiting);
        *lock(&live) = named;
        let deadline = Instant::now() + within;
        self.tick("Waiting", move || {
            let live = lock(&live);
            let left = deadline.saturating_duration_since(Instant::now()).as_secs_f64().ceil();
            let verbs = if live.len() == 1 { format!("{verb}s") } else { verb.to_string() };
            // The countdown first: what is cut to fit the line is the end.
            format!("{next} in {left}s unless {} {verbs}", who_of(&live))
        });
    }

    /// `pid` is no longer waited for; the countdown ends with the last one.
    fn waited_for(&self, pid: u32) {
        let live = Arc::clone(&lock(&self.seen).waiting);
        let mut live = lock(&live);
        let before = live.len();
        live.retain(|(p, _)| *p != pid);
        if before > 0 && live.is_empty() {
            drop(live);
            self.untick();
        }
    }

    fn purge_started(&self, progress: &Arc<Progress>) {
        let (p, start) = (Arc::clone(progress), Instant::now());
        self.tick("Removing", move || {
            let files = p.files.load(Ordering::Relaxed);
            #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
            let rate = files as f64 / start.elapsed().as_secs_f64().max(0.001);
            format!("{} ({rate:.0} files/s)", files_and_bytes(files, p.bytes.load(Ordering::Relaxed)))
        });
    }

    /// The dirs a run removes, as the user knows them: `target/ and build dir /fast/b/`.
    fn removed_dirs(&self) -> String {
        let dirs = self.dirs();
        let Some(d) = dirs.as_ref() else { return "the old tree".into() };
        d.roots().map(|r| words::dir_in(r, dirs.as_ref())).collect::<Vec<_>>().join(" and ")
    }

    fn removed(&self, files: u64, bytes: u64, ms: u64) {
        self.untick();
        let what = if lock(&self.seen).sweeping {
            format!("the swept units ({})", files_and_bytes(files, bytes))
        } else {
            format!("{} ({})", self.removed_dirs(), files_and_bytes(files, bytes))
        };
        self.status("Removed", Tone::Good, &format!("{what} in {}", words::duration_ms(ms)));
    }

    fn measured(&self, sizes: &[DirSize]) {
        let dirs = self.dirs();
        for s in sizes {
            let what = format!("{} ({})", words::dir_in(&s.path, dirs.as_ref()), files_and_bytes(s.files, s.bytes));
            self.status("Would remove", Tone::Warn, &what);
        }
        let total = sizes.iter().fold((0, 0), |(f, b), s| (f + s.files, b + s.bytes));
        lock(&self.seen).foreseen.removes = Some(total);
    }

    /// What a sweep chose: a line per criterion that picked something (with `-v`, each unit under it), and what it
    /// keeps although a criterion picked it.
    fn sweep_planned(&self, plan: &SweepPlan, dry_run: bool) {
        let dirs = self.dirs();
        {
            let mut seen = lock(&self.seen);
            seen.sweeping = true;
            seen.foreseen.sweeps = Some(plan.total().units);
        }
        let word = if dry_run { "Would sweep" } else { "Sweeping" };
        for (c, t, names) in plan.by_criterion.iter().filter(|(_, t, _)| t.units > 0) {
            let what = format!("{} ({})", words::things(t.units, "unit", "units"), files_and_bytes(t.files, t.bytes));
            self.status(word, Tone::Warn, &format!("{what}: {}", words::criterion(*c)));
            if self.style.verbose > 0 && !self.style.quiet {
                for n in names {
                    self.print(&format!("{INDENT}{n}"));
                }
            }
        }
        for k in &plan.kept {
            let by = k.pid.map_or_else(|| "a process that could not be inspected".into(), |p| self.who(p));
            let path = k.path.as_deref().map(|p| words::path_in(p, dirs.as_ref())).unwrap_or_default();
            match (&k.unit, k.reason) {
                (Some(unit), KeptReason::Held) => {
                    self.status("Keeping", Tone::Good, &format!("{unit}: {by} holds {path}"));
                }
                (Some(unit), KeptReason::Locked) => {
                    self.status("Keeping", Tone::Good, &format!("{unit}: a build holds {path}"));
                }
                (None, _) => self.status(
                    "Skipped",
                    Tone::Warn,
                    &format!("the profile {}: {by} holds {path}", k.profile.display()),
                ),
            }
        }
        if plan.total().units == 0 && plan.kept.is_empty() {
            self.status("Fresh", Tone::Good, "nothing to sweep");
        }
    }

    /// A sweep waits for one of cargo's locks: which, who holds it and for how long, and how long it waits.
    fn waiting_for_lock(&self, file: &std::path::Path, holder: Option<&crate::model::Process>, timeout: Duration) {
        let dirs = self.dirs();
        let by = holder.map_or_else(
            || "a process that could not be inspected".to_string(),
            |p| {
                let age = p.started_at.and_then(words::running_for);
                format!("{}{}", words::process(p), age.map(|a| format!(", running for {a}")).unwrap_or_default())
            },
        );
        let at_most = words::duration_ms(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        let lock = words::path_in(file, dirs.as_ref());
        self.status(
            "Blocking",
            Tone::Warn,
            &format!("waiting for {lock}, held by {by} (at most {at_most}, --lock-timeout)"),
        );
    }

    /// `--if-free-below`: enough space is nothing to do; too little is why the run goes on.
    fn free_space(&self, f: FreeSpace) {
        let (free, below) = (crate::report::human_bytes(f.free), crate::report::human_bytes(f.below));
        if f.wanted() {
            self.status("Low", Tone::Warn, &format!("only {free} free, below {below} (--if-free-below)"));
        } else {
            self.status(
                "Skipping",
                Tone::Good,
                &format!("{free} free, not below {below} (--if-free-below): nothing to do"),
            );
        }
    }

    /// The check or verify command that ran last, as cargo's subcommand.
    fn command(&self) -> String {
        lock(&self.seen).command.clone().unwrap_or_else(|| "cargo check".into())
    }

    fn checked(&self, c: &Checked) {
        let took = words::duration_ms(c.duration_ms);
        let command = self.command();
        let dirs = self.dirs();
        match &c.result {
            CheckResult::Healthy => {
                self.status("Healthy", Tone::Good, &format!("`{command}` passed in {took}; nothing to clean"));
            }
            CheckResult::Corrupt { signature, path } => self.line(
                "Damaged",
                Tone::Warn,
                &format!("{} in {}", words::damage(signature), words::path_in(path, dirs.as_ref())),
            ),
            CheckResult::CodeError => {
                self.status("Failed", Tone::Bad, &format!("`{command}`: errors in the code, which no clean fixes"));
            }
            CheckResult::Unknown { path } => self.status(
                "Failed",
                Tone::Bad,
                &format!(
                    "`{command}`: an error about {} that this tool does not know as damage",
                    words::path_in(path, dirs.as_ref())
                ),
            ),
            CheckResult::Blocked { lock, holder } => {
                let by = holder.map_or_else(|| "a process that could not be inspected".into(), |p| self.who(p));
                let lock = words::path_in(lock, dirs.as_ref());
                self.status("Blocked", Tone::Warn, &format!("`{command}` waits for {lock}, held by {by}"));
            }
        }
    }

    fn verified(&self, v: &Verified) {
        let (word, tone) = if v.success() { ("Verified", Tone::Good) } else { ("Failed", Tone::Bad) };
        self.status(word, tone, &words::verified(v, &self.command()));
    }
}

impl Reporter for HumanReporter {
    fn event(&self, event: &Event) {
        match event {
            Event::Dirs(dirs) => {
                lock(&self.seen).dirs = Some(dirs.clone());
                if self.style.verbose > 0 {
                    let build = dirs.build_dir.as_ref().map(|b| format!(" and {}", b.display())).unwrap_or_default();
                    self.status("Scanning", Tone::Good, &format!("{}{build} for holders", dirs.target_dir.display()));
                }
            }
            Event::WaitingForOtherRun { dir, holder, timeout } => self.status(
                "Blocking",
                Tone::Warn,
                &format!(
                    "waiting for the run lock of {}, held by {holder} (at most {}, --lock-timeout)",
                    dir.display(),
                    words::duration_ms(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
                ),
            ),
            Event::Holder { holder, outcome } => self.holder(holder, *outcome),
            Event::Scanned { mode, uninspectable, .. } => self.scanned(*mode, uninspectable),
            Event::Signal { pid, signal } if self.style.verbose > 0 => {
                self.status("Signalling", Tone::Warn, &format!("{} with {}", self.who(*pid), signal.name()));
            }
            Event::Waiting { pids, after, within } => self.waiting(pids, *after, *within),
            Event::Exited { pid, outcome, after_ms } => self.ended(*pid, *outcome, *after_ms, None),
            Event::Survived { pid, note, after_ms } => self.ended(*pid, Outcome::Survived, *after_ms, Some(note)),
            Event::Measured(sizes) => self.measured(sizes),
            Event::PurgeStarted(progress) => self.purge_started(progress),
            Event::Removed(r) => self.removed(r.files, r.bytes, r.duration_ms),
            Event::PurgeDetached(d) => {
                let what = if lock(&self.seen).sweeping {
                    "the swept units".to_string()
                } else {
                    format!("the old {}", self.removed_dirs())
                };
                self.status(
                    "Detached",
                    Tone::Good,
                    &format!(
                        "pid {} deletes {what} in the background, at idle priority; `tail -f {}` follows it \
                         (the log is removed once all is deleted, kept if something was left)",
                        d.pid,
                        d.log.display()
                    ),
                );
            }
            Event::CheckStarted { command } => {
                lock(&self.seen).command = Some(words::cargo_command(command));
                self.status("Checking", Tone::Good, &format!("the build dir with `{command}`"));
            }
            Event::Checked(c) => self.checked(c),
            Event::RepairPlanned { units, entries } => {
                lock(&self.seen).foreseen.repairs = Some(units.clone());
                self.status(
                    "Would repair",
                    Tone::Warn,
                    &format!(
                        "{} ({}), then check again, and clean the whole tree if the damage remains",
                        units.join(", "),
                        words::things(*entries as u64, "entry", "entries")
                    ),
                );
            }
            Event::Repaired(r) => {
                let took = words::duration_ms(r.check_ms);
                let command = self.command();
                let (tone, then) = if r.healed {
                    (Tone::Good, format!("`{command}` passed in {took} after rebuilding {}", r.rebuilt.join(", ")))
                } else {
                    (Tone::Warn, format!("`{command}` still fails ({took})"))
                };
                let what = format!("{} ({})", r.units.join(", "), files_and_bytes(r.files, r.bytes));
                self.line("Repaired", tone, &format!("{what}; {then}"));
            }
            Event::VerifyStarted { command } => {
                lock(&self.seen).command = Some(words::cargo_command(command));
                self.status("Verifying", Tone::Good, &format!("with `{command}`"));
            }
            // Cargo's own lines: with -q, cargo was asked for only its warnings and errors.
            Event::CargoLine(line) => self.print(line),
            Event::Verified(v) => self.verified(v),
            Event::Warning(message) => self.warning(message),
            Event::WaitingForCargoLock { lock: file, holder, timeout } => {
                self.waiting_for_lock(file, holder.as_ref(), *timeout);
            }
            Event::FreeSpace(f) => self.free_space(*f),
            Event::SweepPlanned { plan, dry_run } => self.sweep_planned(plan, *dry_run),
            Event::Signal { .. } | Event::Swept(_) => {}
        }
    }

    fn finish(&self, summary: &Summary) -> std::io::Result<()> {
        self.untick();
        let foreseen = lock(&self.seen).foreseen.clone();
        let line = words::summary_line(summary, &foreseen, &self.command());
        let failed = summary.error.is_some();
        // A run that failed before it did anything has nothing to sum up: the error says it all.
        let acted = !summary.holders.is_empty()
            || summary.removed.is_some()
            || summary.verify.is_some()
            || summary.check.is_some()
            || summary.purge_detached.is_some()
            || summary.swept.is_some();
        if !failed || acted {
            self.status("Summary", if failed { Tone::Bad } else { Tone::Good }, &line);
        }
        if let Some(failure) = &summary.error {
            for line in failure_lines(failure, self.style.color) {
                self.print(&line);
            }
        } else if !self.style.quiet {
            for help in words::helps(summary, &foreseen) {
                self.print(&format!("{}: {help}", self.paint("help", Tone::Help)));
            }
        }
        self.flush();
        Ok(())
    }
}
