//! Reporting: the only module that prints. Stages emit [`Event`]s; a [`Reporter`] takes each through one method and
//! the run's [`Summary`] at the end, and turns them into human text with progress bars, JSON lines, or GitHub
//! Actions annotations added to the human text.

mod github;
mod human;
mod json;
pub mod words;

use std::io::Write;
use std::path::PathBuf;

use crate::event::{Event, Failure, Summary};

/// Where the report goes and what it looks like, as the plan resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub format: Format,
    pub style: Style,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Text on stderr.
    Human,
    /// JSON lines on stdout, and nothing else there.
    Json,
    /// Text on stderr plus workflow commands on stdout, and a table appended to `step_summary`.
    Github { step_summary: Option<PathBuf> },
}

/// How the human text looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
    pub progress: bool,
    pub quiet: bool,
    /// 0 by default; 1 with `-v` (the long form of each holder, every signal); 2 with `-vv`.
    pub verbose: u8,
    /// The columns a status line fits in: 100, or a narrower terminal's width.
    pub width: usize,
}

/// Receives a run's events as they happen (from several threads: the purge and cargo's output run beside the
/// main one) and its summary at the end.
pub trait Reporter: Sync {
    fn event(&self, event: &Event);

    /// The last word: the summary, with the error the run ended with in it. Fails if the report itself could not be
    /// written whole (the JSON stream), after saying so on stderr.
    fn finish(&self, summary: &Summary) -> std::io::Result<()>;
}

/// The reporter for `output`, on the process's stdout and stderr.
#[must_use]
pub fn for_output(output: &Output) -> Box<dyn Reporter> {
    to_writers(output, Box::new(std::io::stdout()), Box::new(std::io::stderr()))
}

/// The reporter for `output`, writing to `stdout` and `stderr` (tests capture both).
#[must_use]
pub fn to_writers(output: &Output, stdout: Box<dyn Write + Send>, stderr: Box<dyn Write + Send>) -> Box<dyn Reporter> {
    match &output.format {
        Format::Json => Box::new(json::JsonReporter::new(stdout, stderr)),
        Format::Human => Box::new(human::HumanReporter::new(output.style, stderr)),
        Format::Github { step_summary } => Box::new(github::GithubReporter::new(
            human::HumanReporter::new(output.style, stderr),
            stdout,
            step_summary.clone(),
        )),
    }
}

/// Says why the run could not even start (a bad environment variable), before any reporter exists: without colour,
/// since the plan that would say whether to colour is what failed.
pub fn early_error(failure: &Failure) {
    let mut err = std::io::stderr().lock();
    for line in failure_lines(failure, false) {
        let _ = writeln!(err, "{line}");
    }
}

/// A failure as cargo prints one: `error: MESSAGE` once, then a `note:` with what was (not) done and a `help:`
/// with what to do, the labels in bold red, green and cyan when `color`.
fn failure_lines(failure: &Failure, color: bool) -> Vec<String> {
    let label = |word: &str, code: &str| if color { format!("\x1b[{code}m{word}\x1b[0m") } else { word.to_string() };
    let mut lines = vec![format!("{}: {}", label("error", "1;31"), failure.message)];
    if let Some(note) = &failure.note {
        lines.push(format!("{}: {note}", label("note", "1;32")));
    }
    if let Some(help) = &failure.help {
        lines.push(format!("{}: {help}", label("help", "1;36")));
    }
    lines
}

/// The detached deleter's voice: "ready" to its parent (the one line the parent waits for), and its log on its
/// stderr, which is the log file.
pub struct DeleterLog;

fn log_line(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

impl crate::detach::Log for DeleterLog {
    fn ready(&self, parent: &mut dyn Write) {
        let _ = writeln!(parent, "ready");
        let _ = parent.flush();
    }

    fn started(&self, trash: &[PathBuf], not_lowered: &[String]) {
        for what in not_lowered {
            log_line(&format!("warning: could not lower the priority ({what})"));
        }
        for t in trash {
            log_line(&format!("deleting {}", t.display()));
        }
    }

    fn progress(&self, files: u64, bytes: u64) {
        log_line(&format!("removed {} so far", words::files_and_bytes(files, bytes)));
    }

    fn finished(&self, purged: &crate::purge::Purged) {
        for m in &purged.problems.skipped_mounts {
            log_line(&format!("warning: left mount point {} and what is under it alone", m.display()));
        }
        for (path, e) in &purged.problems.errors {
            log_line(&format!("error: could not remove {}: {e}", path.display()));
        }
        for path in &purged.problems.busy {
            log_line(&format!(
                "error: left {}: another process held its lock past --lock-timeout; the next run removes it",
                path.display()
            ));
        }
        let r = purged.removed;
        let took = words::duration_ms(r.duration_ms);
        log_line(&format!("removed {} in {took}; done", words::files_and_bytes(r.files, r.bytes)));
    }
}

/// Sizes in binary units, as cargo counts them: `1.4 GiB`, `512.0 KiB`, `17 B`.
#[must_use]
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    #[expect(clippy::cast_precision_loss, reason = "a size for display")]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_reads_like_cargo() {
        let f = Failure {
            kind: "run-lock-timeout",
            message: "gave up after 1.0s waiting for the lock of /w/target".into(),
            help: Some("let that run finish, or pass a longer --lock-timeout".into()),
            note: Some("nothing was changed".into()),
        };
        assert_eq!(
            failure_lines(&f, false),
            [
                "error: gave up after 1.0s waiting for the lock of /w/target",
                "note: nothing was changed",
                "help: let that run finish, or pass a longer --lock-timeout",
            ]
        );
        let painted = failure_lines(&f, true);
        assert!(painted[0].starts_with("\x1b[1;31merror\x1b[0m: gave up"), "{painted:?}");
        assert!(painted[1].starts_with("\x1b[1;32mnote\x1b[0m: "), "{painted:?}");
        assert!(painted[2].starts_with("\x1b[1;36mhelp\x1b[0m: "), "{painted:?}");
        let bare = Failure { help: None, note: None, ..f };
        assert_eq!(failure_lines(&bare, false).len(), 1);
    }

    #[test]
    fn bytes_like_cargo() {
        assert_eq!(human_bytes(17), "17 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1_503_238_553), "1.4 GiB");
    }
}
