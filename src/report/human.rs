//! Human text on stderr, in cargo's voice: a right-aligned status word, then what happened.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Reporter, Style, Summary, human_bytes, shell_words};
use crate::error::Error;
use crate::model::{HandleKind, Holder, Outcome, Relation, SpareReason, Verdict};
use crate::purge::{Problems, Progress};
use crate::scan::Uninspectable;
use crate::terminate::{Ended, Sig};
use crate::verify::Verified;
use crate::workspace::Dirs;

#[derive(Clone, Copy)]
enum Tone {
    Good,
    Warn,
    Bad,
}

pub struct HumanReporter {
    style: Style,
    bar: Mutex<Option<(ProgressBar, Arc<AtomicBool>)>>,
}

impl HumanReporter {
    pub fn new(style: Style) -> Self {
        HumanReporter { style, bar: Mutex::new(None) }
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
    pub fn print(&self, line: &str) {
        let bar = self.bar.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match bar.as_ref() {
            Some((bar, _)) => bar.suspend(|| {
                let _ = writeln!(std::io::stderr(), "{line}");
            }),
            None => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }

    fn status(&self, word: &str, tone: Tone, rest: &str) {
        if !self.style.quiet || matches!(tone, Tone::Bad | Tone::Warn) {
            self.print(&format!("{} {rest}", self.paint(&format!("{word:>12}"), tone)));
        }
    }

    fn describe(&self, h: &Holder) -> String {
        let p = &h.process;
        let mut s = format!("pid {} {}", p.pid, p.display_name());
        if !p.cmdline.is_empty() {
            let cmd = shell_words(&p.cmdline);
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
            let text = if handle.kind == HandleKind::Lock && is_build_lock(&handle.path) {
                format!("holds the build directory lock {path}")
            } else {
                format!("{} {path}", handle.kind.as_str())
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
        parts.join(", ")
    }
}

fn is_build_lock(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == ".cargo-lock" || n == ".cargo-build-lock" || n == ".cargo-artifact-lock")
}

fn plan(h: &Holder) -> &'static str {
    match (h.verdict, h.spare_reason, &h.outcome) {
        (_, _, Some(Outcome::WouldTerminate)) => "would terminate",
        (_, Some(SpareReason::Protected), _) => "spared: this run, its parent chain or init",
        (_, Some(SpareReason::Policy), Some(Outcome::WouldSpare)) => "would spare (--all-holders stops it)",
        (_, Some(SpareReason::Policy), _) => "spared (--all-holders stops it)",
        (Verdict::Terminate, _, _) => "to terminate",
        (Verdict::Spare, _, _) => "spared",
    }
}

impl Reporter for HumanReporter {
    fn dirs(&self, dirs: &Dirs) {
        if self.style.verbose {
            let build = dirs.build_dir.as_ref().map(|b| format!(" and {}", b.display())).unwrap_or_default();
            self.status("Scanning", Tone::Good, &format!("{}{build} for holders", dirs.target_dir.display()));
        }
    }

    fn waiting_for_other_run(&self, dir: &Path) {
        self.status("Blocking", Tone::Warn, &format!("waiting for another cargo-safeclean run on {}", dir.display()));
    }

    fn holders(&self, holders: &[Holder], uninspectable: &Uninspectable) {
        if holders.is_empty() {
            // Never "nothing holds it" when some processes could not be looked at.
            let what = if uninspectable.other_users + uninspectable.own.len() == 0 {
                "no process holds the target dir"
            } else {
                "no process that could be inspected holds the target dir"
            };
            self.status("Scanned", Tone::Good, what);
        }
        for h in holders {
            let tone = if h.verdict == Verdict::Terminate { Tone::Warn } else { Tone::Good };
            self.status("Holder", tone, &format!("{}: {} — {}", self.describe(h), self.handles(h), plan(h)));
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
    }

    fn signal(&self, holder: &Holder, sig: Sig) {
        if self.style.verbose {
            self.status("Signal", Tone::Warn, &format!("{} to pid {}", sig.name(), holder.process.pid));
        }
    }

    fn ended(&self, holder: &Holder, ended: &Ended) {
        let (word, tone) = match ended.outcome {
            Outcome::ExitedAfterSigterm => ("Stopped", Tone::Good),
            Outcome::Killed => ("Killed", Tone::Warn),
            Outcome::AlreadyGone => ("Gone", Tone::Good),
            _ => ("Survived", Tone::Bad),
        };
        let note = ended.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
        self.status(
            word,
            tone,
            &format!("{} {} after {} ms{note}", self.describe(holder), ended.outcome, ended.at.as_millis()),
        );
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
        *self.bar.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((bar, done));
    }

    fn removed(&self, removed: &crate::model::Removed, problems: &Problems) {
        if let Some((bar, done)) = self.bar.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            done.store(true, Ordering::Relaxed);
            bar.finish_and_clear();
        }
        for m in &problems.skipped_mounts {
            self.warning(&format!("left mount point {} and what is under it alone", m.display()));
        }
        for (path, e) in &problems.errors {
            self.warning(&format!("could not remove {}: {e}", path.display()));
        }
        let files = if removed.files == 1 { "file" } else { "files" };
        self.status("Removed", Tone::Good, &format!("{} {files}, {} total", removed.files, human_bytes(removed.bytes)));
    }

    fn verify_started(&self, command: &str) {
        self.status("Verifying", Tone::Good, &format!("with `{command}`"));
    }

    fn verify_line(&self, line: &str) {
        if !self.style.quiet {
            self.print(line);
        }
    }

    fn verify_finished(&self, v: &Verified) {
        let secs = Duration::from_millis(v.duration_ms).as_secs_f64();
        let (word, tone, text) = match (v.success(), v.exit_code) {
            (true, _) => ("Verified", Tone::Good, format!("cargo check passed in {secs:.2}s")),
            (false, Some(code)) => ("Failed", Tone::Bad, format!("cargo check exited with {code} after {secs:.2}s")),
            (false, None) => ("Failed", Tone::Bad, format!("cargo check was killed by a signal after {secs:.2}s")),
        };
        self.status(word, tone, &text);
    }

    fn warning(&self, message: &str) {
        self.print(&format!("{}: {message}", self.paint("warning", Tone::Warn)));
    }

    fn finish(&self, summary: &Summary, error: Option<&Error>) -> std::io::Result<()> {
        if let Some(e) = error {
            self.print(&format!("{}: {e}", self.paint("error", Tone::Bad)));
        } else if summary.dry_run && !self.style.quiet {
            let n = summary.holders.iter().filter(|h| h.verdict == Verdict::Terminate).count();
            self.status("Dry run", Tone::Good, &format!("{n} to terminate; nothing was signalled or deleted"));
        }
        Ok(())
    }
}
