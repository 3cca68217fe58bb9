//! GitHub Actions (`GITHUB_ACTIONS=true`): the human report, plus workflow commands on stdout — a `::warning::` per
//! spared or surviving holder, an `::error::` naming the failure, `::group::` around cargo check — and a Markdown
//! table appended to `$GITHUB_STEP_SUMMARY`. Every event goes to the human reporter; this one only adds.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use super::human::HumanReporter;
use super::{Reporter, words};
use crate::event::{Event, Summary};
use crate::model::{CheckResult, Checked, Holder, Mode, Outcome, Verdict};

/// Escapes a workflow command's message as the runner expects (`%`, CR, LF).
#[must_use]
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a workflow command's property value (also `:` and `,`, which separate properties).
#[must_use]
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Markdown table cells: pipes and newlines would break the row.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

pub struct GithubReporter {
    human: HumanReporter,
    /// Where workflow commands go (stdout).
    out: Mutex<Box<dyn Write + Send>>,
    step_summary: Option<PathBuf>,
    /// Holders by pid, and whether each was annotated already (once is enough).
    holders: Mutex<HashMap<u32, (Holder, bool)>>,
}

impl GithubReporter {
    pub fn new(human: HumanReporter, out: Box<dyn Write + Send>, step_summary: Option<PathBuf>) -> Self {
        GithubReporter { human, out: Mutex::new(out), step_summary, holders: Mutex::default() }
    }

    /// Writes a workflow command after whatever the human report wrote, so the log keeps the order.
    fn command(&self, line: &str) {
        self.human.flush();
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn annotate(&self, pid: u32, what: &str) {
        let mut holders = self.holders.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((h, warned)) = holders.get_mut(&pid).filter(|(_, warned)| !*warned) else { return };
        *warned = true;
        let name = h.process.display_name();
        let title = format!("cargo-safeclean: {} pid {pid} ({name})", h.kind.as_str());
        let message = format!("{name} ({}) {what}", shell_words::join(&h.process.cmdline));
        drop(holders);
        self.command(&format!("::warning title={}::{}", escape_property(&title), escape_data(&message)));
    }

    fn step_summary(summary: &Summary) -> String {
        let mut md = String::from("### cargo safeclean\n\n");
        if let Some(d) = &summary.dirs {
            let _ = writeln!(md, "Target dir: `{}`\n", d.target_dir.display());
        }
        let uninspectable = summary.uninspectable.count();
        if summary.mode == Mode::Sweep {
            // A sweep stops nothing: what held a unit is in its `kept`.
        } else if summary.holders.is_empty() && uninspectable == 0 {
            md.push_str("No process held the target dir.\n\n");
        } else if summary.holders.is_empty() {
            md.push_str("No process that could be inspected held the target dir.\n\n");
        } else {
            md.push_str("| pid | kind | command | outcome |\n|---|---|---|---|\n");
            for s in &summary.holders {
                let h = &s.holder;
                let _ = writeln!(
                    md,
                    "| {} | {} | `{}` | {} |",
                    h.process.pid,
                    h.kind.as_str(),
                    cell(&shell_words::join(&h.process.cmdline)).replace('`', "'"),
                    s.outcome.map_or("", Outcome::as_str)
                );
            }
            md.push('\n');
        }
        if uninspectable > 0 {
            let who = words::things(uninspectable as u64, "process", "processes");
            let _ = writeln!(md, "{who} could not be inspected; what they hold is not known.\n");
        }
        if let Some(w) = &summary.swept {
            let verb = if summary.dry_run { "Would sweep" } else { "Swept" };
            let units = words::things(w.units, "unit", "units");
            let _ = writeln!(md, "{verb} {units} ({}).\n", words::files_and_bytes(w.files, w.bytes));
            for (c, t, _) in w.plan.by_criterion.iter().filter(|(_, t, _)| t.units > 0) {
                let _ = writeln!(md, "- {}: {}", c.as_str(), words::things(t.units, "unit", "units"));
            }
            let held = w.plan.kept.iter().filter(|k| k.unit.is_some()).count();
            if held > 0 {
                let _ = writeln!(md, "- kept: {held} (held by a live process, or in a profile a build held)");
            }
            md.push('\n');
        } else if let Some(r) = summary.removed {
            let _ = writeln!(md, "Removed {}.\n", words::files_and_bytes(r.files, r.bytes));
        }
        if let Some(d) = &summary.purge_detached {
            let _ = writeln!(
                md,
                "The old tree is being deleted in the background by pid {} (log: `{}`).\n",
                d.pid,
                d.log.display()
            );
        }
        match summary.verify {
            Some(v) if v.success() => md.push_str("`cargo check`: passed.\n"),
            Some(v) => {
                let code = v.exit_code.map_or("none".into(), |c| c.to_string());
                let _ = writeln!(md, "`cargo check`: failed (exit code {code}).");
            }
            None => md.push_str("`cargo check`: not run.\n"),
        }
        if let Some(f) = &summary.error {
            let _ = writeln!(md, "\n**Failed with exit code {}:** {}", summary.exit_code, cell(&f.message));
            for (label, text) in [("note", &f.note), ("help", &f.help)] {
                if let Some(text) = text {
                    let _ = writeln!(md, "\n{label}: {}", cell(text));
                }
            }
        }
        md
    }
}

impl Reporter for GithubReporter {
    fn event(&self, event: &Event) {
        // Before the human text: the group opens above "Verifying".
        if let Event::VerifyStarted { command } = event {
            self.command(&format!("::group::{}", escape_data(command)));
        }
        if let Event::Verified(_) = event {
            self.command("::endgroup::");
        }
        self.human.event(event);
        match event {
            Event::Holder { holder, .. } => {
                let pid = holder.process.pid;
                self.holders.lock().unwrap_or_else(PoisonError::into_inner).insert(pid, (holder.clone(), false));
                if holder.verdict == Verdict::Spare {
                    self.annotate(pid, "holds the target dir and was spared");
                }
            }
            Event::Survived { pid, note, .. } => self.annotate(*pid, &format!("survived: {note}")),
            Event::Checked(Checked { result: CheckResult::Corrupt { signature, path }, .. }) => {
                let message = format!("{signature} in {}: the build dir was cleaned and checked again", path.display());
                let title = escape_property("cargo-safeclean: damaged build dir");
                self.command(&format!("::warning title={title}::{}", escape_data(&message)));
            }
            _ => {}
        }
    }

    fn finish(&self, summary: &Summary) -> std::io::Result<()> {
        self.human.finish(summary)?;
        if let Some(f) = &summary.error {
            // The annotation is all a reader of the run's page may see: the advice goes with it, a line each.
            let mut message = format!("{} (exit code {})", f.message, summary.exit_code);
            for (label, text) in [("note", &f.note), ("help", &f.help)] {
                if let Some(text) = text {
                    let _ = write!(message, "\n{label}: {text}");
                }
            }
            self.command(&format!(
                "::error title={}::{}",
                escape_property("cargo-safeclean failed"),
                escape_data(&message)
            ));
        }
        if let Some(path) = &self.step_summary {
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(Self::step_summary(summary).as_bytes()));
            if let Err(e) = written {
                let message = format!("could not append to GITHUB_STEP_SUMMARY {}: {e}", path.display());
                self.human.event(&Event::Warning(message));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_the_runner() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }
}
