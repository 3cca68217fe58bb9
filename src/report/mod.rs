//! Reporting: the only module that prints. Stages emit events; a [`Reporter`] turns them into human text with
//! progress bars, JSON lines, or GitHub Actions annotations.

mod github;
mod human;
mod json;
mod wire;

use std::io::IsTerminal;
use std::sync::Arc;

use crate::cli::{Color, MessageFormat, Options};
use crate::error::Error;
use crate::model::{Holder, Removed};
use crate::purge::{Problems, Progress};
use crate::scan::Uninspectable;
use crate::terminate::{Ended, Sig};
use crate::verify::Verified;
use crate::workspace::Dirs;

/// Everything a run did, for the final report.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub dirs: Option<Dirs>,
    pub dry_run: bool,
    pub holders: Vec<Holder>,
    pub uninspectable: Uninspectable,
    pub removed: Option<Removed>,
    pub verify: Option<Verified>,
    pub exit_code: i32,
}

/// Receives the events of a run. Methods take `&self`: the purge and cargo's output arrive from other threads.
pub trait Reporter: Sync {
    /// The dirs were resolved and passed the guard.
    fn dirs(&self, _dirs: &Dirs) {}
    /// Another run holds the workspace; this one waits.
    fn waiting_for_other_run(&self, _dir: &std::path::Path) {}
    /// The holders found, with kinds and verdicts (and in a dry run, outcomes).
    fn holders(&self, _holders: &[Holder], _uninspectable: &Uninspectable) {}
    /// A signal went out.
    fn signal(&self, _holder: &Holder, _sig: Sig) {}
    /// A holder ended one way or another.
    fn ended(&self, _holder: &Holder, _ended: &Ended) {}
    /// The purge started; `progress` is updated while it runs.
    fn purge_started(&self, _progress: &Arc<Progress>) {}
    /// The purge finished.
    fn removed(&self, _removed: &Removed, _problems: &Problems) {}
    /// `cargo check` starts.
    fn verify_started(&self, _command: &str) {}
    /// A line cargo wrote to stderr.
    fn verify_line(&self, _line: &str) {}
    /// `cargo check` finished.
    fn verify_finished(&self, _verified: &Verified) {}
    /// Something worth telling that does not stop the run.
    fn warning(&self, _message: &str) {}
    /// The last word: the summary, and the error the run ended with. Fails if the report itself could not be
    /// written whole (the JSON stream), after saying so on stderr.
    fn finish(&self, _summary: &Summary, _error: Option<&Error>) -> std::io::Result<()> {
        Ok(())
    }
}

/// How the human output looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
    pub progress: bool,
    pub quiet: bool,
    pub verbose: bool,
}

impl Style {
    /// Resolves `--color`, `-q`, `-v`, a terminal on stderr and `CI` into what to show.
    #[must_use]
    pub fn resolve(opts: &Options) -> Self {
        let tty = std::io::stderr().is_terminal();
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        let color = match opts.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => tty && !ci && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        };
        Style { color, progress: tty && !ci && !opts.quiet, quiet: opts.quiet, verbose: opts.verbose > 0 }
    }
}

/// The reporter for these options: JSON lines, GitHub annotations (when `GITHUB_ACTIONS=true`), or human text.
#[must_use]
pub fn for_options(opts: &Options) -> Box<dyn Reporter> {
    let style = Style::resolve(opts);
    match opts.message_format {
        MessageFormat::Json => Box::new(json::JsonReporter::new()),
        MessageFormat::Human if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") => {
            Box::new(github::GithubReporter::new(human::HumanReporter::new(style)))
        }
        MessageFormat::Human => Box::new(human::HumanReporter::new(style)),
    }
}

/// Sizes as cargo prints them: `1.4GiB`, `512.0KiB`, `17B`.
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
    if unit == 0 { format!("{bytes}B") } else { format!("{value:.1}{}", UNITS[unit]) }
}

/// A command line as a person would type it (quoted where needed).
#[must_use]
pub fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_like_cargo() {
        assert_eq!(human_bytes(17), "17B");
        assert_eq!(human_bytes(1536), "1.5KiB");
        assert_eq!(human_bytes(1_503_238_553), "1.4GiB");
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(shell_words(&["cargo".into(), "build".into()]), "cargo build");
        assert_eq!(shell_words(&["a b".into(), "it's".into()]), r"'a b' 'it'\''s'");
    }
}
