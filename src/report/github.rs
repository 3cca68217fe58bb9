//! GitHub Actions (`GITHUB_ACTIONS=true`): the human report plus workflow commands — a `::warning::` per spared
//! or surviving holder, an `::error::` naming the failure, `::group::` around cargo check — and a Markdown table
//! appended to `$GITHUB_STEP_SUMMARY`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use super::human::HumanReporter;
use super::{Reporter, Summary, human_bytes, shell_words};
use crate::error::Error;
use crate::model::{Holder, Outcome, Removed, Verdict};
use crate::purge::{Problems, Progress};
use crate::scan::Uninspectable;
use crate::terminate::{Ended, Sig};
use crate::verify::Verified;
use crate::workspace::Dirs;

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

/// Writes a workflow command on stdout, after whatever stderr holds, so the log keeps the order.
fn command(line: &str) {
    let _ = std::io::stderr().flush();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Markdown table cells: pipes and newlines would break the row.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

pub struct GithubReporter {
    human: HumanReporter,
    /// Warnings already given, so a holder is annotated once.
    warned: Mutex<Vec<u32>>,
}

impl GithubReporter {
    pub fn new(human: HumanReporter) -> Self {
        GithubReporter { human, warned: Mutex::default() }
    }

    fn annotate_holder(&self, level: &str, h: &Holder, what: &str) {
        let mut warned = self.warned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if warned.contains(&h.process.pid) {
            return;
        }
        warned.push(h.process.pid);
        let title =
            format!("cargo-safeclean: {} pid {} ({})", h.kind.as_str(), h.process.pid, h.process.display_name());
        let message = format!("{} ({}) {what}", h.process.display_name(), shell_words(&h.process.cmdline));
        command(&format!("::{level} title={}::{}", escape_property(&title), escape_data(&message)));
    }

    fn step_summary(summary: &Summary, error: Option<&Error>) -> String {
        let mut md = String::from("### cargo safeclean\n\n");
        if let Some(d) = &summary.dirs {
            let _ = writeln!(md, "Target dir: `{}`\n", d.target_dir.display());
        }
        let uninspectable = summary.uninspectable.other_users + summary.uninspectable.own.len();
        if summary.holders.is_empty() && uninspectable == 0 {
            md.push_str("No process held the target dir.\n\n");
        } else if summary.holders.is_empty() {
            md.push_str("No process that could be inspected held the target dir.\n\n");
        } else {
            md.push_str("| pid | kind | command | outcome |\n|---|---|---|---|\n");
            for h in &summary.holders {
                let outcome = h.outcome.as_ref().map_or("", Outcome::as_str);
                let _ = writeln!(
                    md,
                    "| {} | {} | `{}` | {} |",
                    h.process.pid,
                    h.kind.as_str(),
                    cell(&shell_words(&h.process.cmdline)).replace('`', "'"),
                    outcome
                );
            }
            md.push('\n');
        }
        if uninspectable > 0 {
            let _ = writeln!(md, "{uninspectable} processes could not be inspected; what they hold is not known.\n");
        }
        if let Some(r) = summary.removed {
            let _ = writeln!(md, "Removed {} files, {} total.\n", r.files, human_bytes(r.bytes));
        }
        match summary.verify {
            Some(v) if v.success() => md.push_str("`cargo check`: passed.\n"),
            Some(v) => {
                let _ = writeln!(
                    md,
                    "`cargo check`: failed (exit code {}).",
                    v.exit_code.map_or("none".into(), |c| c.to_string())
                );
            }
            None => md.push_str("`cargo check`: not run.\n"),
        }
        if let Some(e) = error {
            let _ = writeln!(md, "\n**Failed with exit code {}:** {}", e.exit_code(), cell(&e.to_string()));
        }
        md
    }
}

impl Reporter for GithubReporter {
    fn dirs(&self, dirs: &Dirs) {
        self.human.dirs(dirs);
    }

    fn waiting_for_other_run(&self, dir: &std::path::Path) {
        self.human.waiting_for_other_run(dir);
    }

    fn holders(&self, holders: &[Holder], uninspectable: &Uninspectable) {
        self.human.holders(holders, uninspectable);
        for h in holders.iter().filter(|h| h.verdict == Verdict::Spare) {
            self.annotate_holder("warning", h, "holds the target dir and was spared");
        }
    }

    fn signal(&self, holder: &Holder, sig: Sig) {
        self.human.signal(holder, sig);
    }

    fn ended(&self, holder: &Holder, ended: &Ended) {
        self.human.ended(holder, ended);
        if ended.outcome == Outcome::Survived {
            let why = ended.note.clone().unwrap_or_default();
            self.annotate_holder("warning", holder, &format!("survived: {why}"));
        }
    }

    fn purge_started(&self, progress: &Arc<Progress>) {
        self.human.purge_started(progress);
    }

    fn removed(&self, removed: &Removed, problems: &Problems) {
        self.human.removed(removed, problems);
    }

    fn verify_started(&self, cmdline: &str) {
        command(&format!("::group::{}", escape_data(cmdline)));
        self.human.verify_started(cmdline);
    }

    fn verify_line(&self, line: &str) {
        self.human.verify_line(line);
    }

    fn verify_finished(&self, verified: &Verified) {
        let _ = std::io::stderr().flush();
        command("::endgroup::");
        self.human.verify_finished(verified);
    }

    fn warning(&self, message: &str) {
        self.human.warning(message);
    }

    fn finish(&self, summary: &Summary, error: Option<&Error>) -> std::io::Result<()> {
        self.human.finish(summary, error)?;
        if let Some(e) = error {
            let message = format!("{e} (exit code {})", e.exit_code());
            command(&format!("::error title={}::{}", escape_property("cargo-safeclean failed"), escape_data(&message)));
        }
        if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(Self::step_summary(summary, error).as_bytes()));
            if let Err(e) = written {
                self.human.warning(&format!("could not append to GITHUB_STEP_SUMMARY {}: {e}", path.to_string_lossy()));
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
