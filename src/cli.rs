//! The command line: what the user typed, parsed and validated into [`Args`]. Nothing here reads the environment
//! or decides a default that depends on it: [`crate::plan`] does, once.
//!
//! Cargo runs an external subcommand as `cargo-safeclean safeclean ARGS…`; [`Args::parse_from_env`] drops that
//! word so the binary works both as `cargo safeclean` and when run directly.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::model::FileId;

/// Kill what holds a cargo target dir, recreate it, and verify the build.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "cargo-safeclean",
    bin_name = "cargo safeclean",
    version,
    about = "Stop the processes that hold a workspace's target dir, recreate it atomically, and run a verifying `cargo check`",
    after_help = "Exit codes: 0 done, 1 unexpected error, 2 usage, 3 refused by the guard, 4 holders remain, \
                  5 removing failed, 6 cargo check failed, 130 interrupted."
)]
pub struct Args {
    /// Path to the workspace's Cargo.toml (default: found as cargo does).
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,

    /// Clean this directory instead of the target dir cargo reports.
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,

    /// Scan and print the plan; signal nothing, delete nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// Time between SIGTERM and SIGKILL (e.g. 500ms, 2s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub grace: Duration,

    /// How long to wait for a process to exit after SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub kill_timeout: Duration,

    /// Signal nothing; if a holder would be terminated, change nothing and exit 4.
    #[arg(long, conflicts_with = "all_holders")]
    pub no_kill: bool,

    /// Also terminate holders that are spared by default (rust-analyzer, shells, anything else).
    #[arg(long)]
    pub all_holders: bool,

    /// Do nothing (exit 0) unless something holds the target or build dir.
    #[arg(long)]
    pub only_if_held: bool,

    /// Run the check first; clean only if it fails in a way a damaged build dir explains.
    #[arg(long, conflicts_with_all = ["unlock", "no_verify", "only_if_held"])]
    pub if_broken: bool,

    /// With --if-broken: on damage, clean the whole tree at once instead of repairing only the damaged units.
    #[arg(long, requires = "if_broken")]
    pub full: bool,

    /// The cargo command of the check and the verify (archive and link damage shows only in a build).
    #[arg(long, value_name = "CMD", value_enum, default_value_t = CheckWith::Check)]
    pub check_with: CheckWith,

    /// Return once the old tree is swapped out (and verified); a detached, idle-priority process deletes it.
    #[arg(long, conflicts_with = "unlock")]
    pub detach: bool,

    /// With --detach: purge in the foreground when the target's filesystem has less free space than this
    /// (default: the smaller of 10% of the filesystem and 5GiB; e.g. 2GiB, 500MB).
    #[arg(long, value_name = "SIZE", requires = "detach", value_parser = parse_size)]
    pub detach_min_free: Option<u64>,

    /// The detached deleter itself: delete these trash dirs, each only if it still is DEV:INO (started by --detach).
    #[arg(long, hide = true, num_args = 1.., value_name = "DEV:INO:TRASH", value_parser = detached_trash)]
    pub purge_detached: Vec<(FileId, PathBuf)>,

    /// The detached deleter's log, removed when it ends without a problem.
    #[arg(long, hide = true, requires = "purge_detached", value_name = "PATH", value_parser = deleter_log)]
    pub purge_log: Option<PathBuf>,

    /// How long to wait for a lock another process holds: another run's on this target dir, a purge's on a trash
    /// dir, or, for --sweep, a build's on a profile (then that profile is skipped) (e.g. 30s, 10m).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration, allow_hyphen_values = true)]
    pub lock_timeout: Duration,

    /// Stop the owners of cargo's locks (package cache, build and artifact dirs) and delete nothing.
    #[arg(long, conflicts_with_all = ["only_if_held", "force"])]
    pub unlock: bool,

    /// Remove whole build units instead of the whole tree, under cargo's locks; alone: orphans and units of
    /// toolchains no longer installed. Criteria add to it.
    #[arg(long, conflicts_with_all = ["unlock", "if_broken", "only_if_held", "no_kill", "all_holders"])]
    pub sweep: bool,

    // Each criterion conflicts with --unlock itself: clap checks no `requires` of an argument given with one that
    // conflicts with what it requires, and `--max-size 0 --unlock` would be run with the criterion ignored.
    /// With --sweep: also the units not used for this long (e.g. 14d, 36h; s, m, h, d, w).
    #[arg(long, value_name = "DURATION", requires = "sweep", conflicts_with = "unlock", value_parser = parse_age)]
    pub older_than: Option<Duration>,

    /// With --sweep: also every unit not built by the current toolchain.
    #[arg(long, requires = "sweep", conflicts_with = "unlock")]
    pub other_toolchains: bool,

    /// With --sweep: also the least recently used units, until the target and build dirs together fit in this
    /// (e.g. 20GiB).
    #[arg(long, value_name = "SIZE", requires = "sweep", conflicts_with = "unlock", value_parser = parse_size)]
    pub max_size: Option<u64>,

    /// Do nothing unless the target dir's filesystem has less free space than this (e.g. 20GiB); a sweep or a clean.
    #[arg(long, value_name = "SIZE", conflicts_with = "unlock", value_parser = parse_size)]
    pub if_free_below: Option<u64>,

    /// Skip the verifying `cargo check`.
    #[arg(long)]
    pub no_verify: bool,

    /// Clean a dir that does not look like a cargo target dir (never /, a system or home dir, cargo's home, the
    /// workspace, or an ancestor of these).
    #[arg(long)]
    pub force: bool,

    /// Output format: human text on stderr, or JSON lines on stdout.
    #[arg(long, value_name = "FMT", value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,

    /// Coloring: auto, always, never (default: `CARGO_TERM_COLOR`, else auto).
    #[arg(long, value_name = "WHEN", value_enum)]
    pub color: Option<Color>,

    /// Print only warnings and errors (also `CARGO_TERM_QUIET=true`).
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more: each holder's full command, every handle, parent and age, and each signal; -vv also makes the
    /// check and the verify verbose (also `CARGO_TERM_VERBOSE=true`).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Holder scanner: `proc` (Linux /proc), `libproc` (macOS) or `lsof` (portable). For testing; also
    /// `SAFECLEAN_SCAN_BACKEND`.
    #[arg(long, hide = true, value_enum)]
    pub scan_backend: Option<ScanBackend>,

    /// Process handles: `pidfd` (Linux), `kqueue` (macOS) or `kill` (identity check, kill(2), polling). For testing;
    /// also `SAFECLEAN_SIGNAL_BACKEND`.
    #[arg(long, hide = true, value_enum)]
    pub signal_backend: Option<SignalBackend>,

    /// How mount points are recognised: `openat2`, `statx` or `mountinfo`. For testing; also
    /// `SAFECLEAN_MOUNT_CHECK`.
    #[arg(long, hide = true, value_enum)]
    pub mount_check: Option<MountCheckChoice>,

    /// How the old tree is swapped out: `exchange` (one step) or `rename` (two). For testing; also `SAFECLEAN_SWAP`.
    #[arg(long = "swap", hide = true, value_enum)]
    pub swap: Option<SwapChoice>,

    /// Arguments passed to `cargo check`.
    #[arg(last = true, value_name = "CHECK_ARGS")]
    pub check_args: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckWith {
    Check,
    Build,
    Test,
}

impl CheckWith {
    #[must_use]
    pub fn subcommand(self) -> &'static str {
        match self {
            CheckWith::Check => "check",
            CheckWith::Build => "build",
            CheckWith::Test => "test",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanBackend {
    Auto,
    Proc,
    Libproc,
    Lsof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignalBackend {
    Auto,
    Pidfd,
    Kqueue,
    Kill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MountCheckChoice {
    Auto,
    Openat2,
    Statx,
    Mountinfo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SwapChoice {
    Auto,
    Exchange,
    Rename,
}

impl Args {
    /// Parses the process arguments, accepting the `safeclean` word that cargo passes first.
    pub fn parse_from_env() -> Self {
        Self::parse_from(strip_subcommand_word(std::env::args_os()))
    }

    /// Parses `args` (program name first) as [`Self::parse_from_env`] does, returning clap's error.
    pub fn try_parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Self, clap::Error> {
        Self::try_parse_from(strip_subcommand_word(args))
    }
}

fn strip_subcommand_word<I: IntoIterator<Item = OsString>>(args: I) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.get(1).is_some_and(|a| a == "safeclean") {
        args.remove(1);
    }
    args
}

/// A trash dir the detached deleter may delete: its identity, and an absolute path named as this tool names its
/// trash. The deleter has no guard of its own; this keeps it to what a run swapped out.
fn detached_trash(text: &str) -> Result<(FileId, PathBuf), String> {
    let not = || format!("`{text}` is not a trash path of this tool (DEV:INO:/path/to/.safeclean-trash-PID-HEX)");
    let mut parts = text.splitn(3, ':');
    let (Some(dev), Some(ino), Some(path)) = (parts.next(), parts.next(), parts.next()) else { return Err(not()) };
    let id: FileId = format!("{dev}:{ino}").parse().map_err(|_| not())?;
    let path = PathBuf::from(path);
    let name = path.file_name().map(std::ffi::OsStr::as_encoded_bytes).unwrap_or_default();
    if path.is_absolute() && crate::layout::is_trash_name(name) { Ok((id, path)) } else { Err(not()) }
}

/// The detached deleter's log: an absolute path named `deleter-PID-HEX.log`.
fn deleter_log(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    let name = path.file_name().map(std::ffi::OsStr::as_encoded_bytes).unwrap_or_default();
    if path.is_absolute() && crate::layout::is_deleter_log(name) {
        Ok(path)
    } else {
        Err(format!("`{text}` is not a deleter's log of this tool (an absolute path to deleter-PID-HEX.log)"))
    }
}

/// Parses `5GiB`, `500MB`, `2G`, `1024` (bytes); units are binary (`K`, `M`, `G`, `T`, with or without `iB`/`B`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a size; write it like 5GiB or 500MB"))?;
    let shift = match unit.trim().trim_end_matches("iB").trim_end_matches('B').to_ascii_uppercase().as_str() {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("unknown unit in `{text}`; use B, KiB, MiB, GiB or TiB")),
    };
    #[expect(clippy::cast_precision_loss, reason = "a size")]
    let bytes = value * (1u64 << shift) as f64;
    if !(0.0..1.8e19).contains(&bytes) {
        return Err(format!("`{text}` is out of range"));
    }
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "checked just above")]
    Ok(bytes as u64)
}

/// The longest `--grace`, `--kill-timeout` or `--lock-timeout`: longer waits are typos, and deadlines must stay
/// representable.
pub const MAX_DURATION: Duration = Duration::from_hours(24);

/// The longest `--older-than`: a century, a typo beyond it.
const MAX_AGE: Duration = Duration::from_hours(100 * 365 * 24);

/// Parses an age for `--older-than`: `14d`, `36h`, `2w`, `90m`, `30s` (a bare number is days).
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("`{text}` is negative; write an age like 14d or 36h"));
    }
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not an age; write it like 14d or 36h"))?;
    let scale = match unit.trim() {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "" | "d" => 86400.0,
        "w" => 7.0 * 86400.0,
        other => return Err(format!("unknown unit `{other}` in `{text}`; use s, m, h, d or w")),
    };
    let d = Duration::try_from_secs_f64(value * scale).map_err(|e| format!("`{text}` is out of range: {e}"))?;
    if d > MAX_AGE {
        return Err(format!("`{text}` is longer than a century"));
    }
    Ok(d)
}

/// Parses `500ms`, `2s`, `1m`, `1h`, `1.5s` or a bare number of seconds, up to [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the duration is empty; write one like 500ms, 2s or 1m".into());
    }
    if text.starts_with('-') {
        return Err(format!("`{text}` is negative; write a duration of 0 or more, like 500ms, 2s or 1m"));
    }
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 =
        number.parse().map_err(|_| format!("`{text}` is not a duration; write it like 500ms, 2s or 1m"))?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit `{other}` in `{text}`; use ms, s, m or h")),
    };
    let d = Duration::try_from_secs_f64(value * scale).map_err(|e| format!("`{text}` is out of range: {e}"))?;
    if d > MAX_DURATION {
        return Err(format!("`{text}` is longer than the most this tool waits, 24h"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_mins(1)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_size("5GiB"), Ok(5 << 30));
        assert_eq!(parse_size("500MB"), Ok(500 << 20));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("lots").is_err() && parse_size("5PB").is_err());
        assert!(parse_duration("9223372036854775807s").unwrap_err().contains("24h"));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert_eq!(parse_duration("1440m"), Ok(MAX_DURATION));
    }

    #[test]
    fn ages_take_days_and_weeks() {
        assert_eq!(parse_age("14d"), Ok(Duration::from_hours(14 * 24)));
        assert_eq!(parse_age("36h"), Ok(Duration::from_hours(36)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_hours(14 * 24)));
        assert_eq!(parse_age("3"), Ok(Duration::from_hours(3 * 24)));
        assert!(parse_age("-1d").unwrap_err().contains("negative"));
        assert!(parse_age("1y").unwrap_err().contains("use s, m, h, d or w"));
        let sweep = |argv: &[&str]| Args::try_parse_args(argv.iter().map(OsString::from));
        assert!(sweep(&["cargo-safeclean", "--older-than", "14d"]).is_err(), "a criterion needs --sweep");
        let a = sweep(&["cargo-safeclean", "--sweep", "--older-than", "14d", "--max-size", "20GiB"]).unwrap();
        assert_eq!((a.older_than, a.max_size), (Some(Duration::from_hours(14 * 24)), Some(20 << 30)));
        assert!(sweep(&["cargo-safeclean", "--if-free-below", "20GiB"]).is_ok(), "a clean takes it too");
        assert!(sweep(&["cargo-safeclean", "--sweep", "--unlock"]).is_err());
        for criterion in [&["--max-size", "0"][..], &["--older-than", "1d"], &["--other-toolchains"]] {
            let argv = [&["cargo-safeclean", "--unlock"][..], criterion].concat();
            assert!(sweep(&argv).is_err(), "{criterion:?} is not ignored under --unlock");
        }
    }

    #[test]
    fn hours_are_a_unit_up_to_a_day() {
        assert_eq!(parse_duration("1h"), Ok(Duration::from_hours(1)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_mins(90)));
        assert_eq!(parse_duration("24h"), Ok(MAX_DURATION));
        assert!(parse_duration("25h").unwrap_err().contains("24h"));
        assert_eq!(parse_duration("2d"), Err("unknown unit `d` in `2d`; use ms, s, m or h".into()));
        assert_eq!(parse_duration("1H"), Err("unknown unit `H` in `1H`; use ms, s, m or h".into()));
    }

    #[test]
    fn every_duration_flag_takes_every_unit() {
        for flag in ["--grace", "--kill-timeout", "--lock-timeout"] {
            let parse = |value: &str| Args::try_parse_args(["cargo-safeclean", flag, value].map(OsString::from));
            for (value, expected) in [("500ms", Duration::from_millis(500)), ("1h", Duration::from_hours(1))] {
                let a = parse(value).unwrap_or_else(|e| panic!("{flag} {value}: {e}"));
                let got = match flag {
                    "--grace" => a.grace,
                    "--kill-timeout" => a.kill_timeout,
                    _ => a.lock_timeout,
                };
                assert_eq!(got, expected, "{flag} {value}");
            }
            let bad = parse("3d").unwrap_err().to_string();
            assert!(bad.contains("use ms, s, m or h"), "{flag}: {bad}");
            let negative = parse("-1s").unwrap_err().to_string();
            assert!(negative.contains("negative"), "{flag}: {negative}");
        }
    }

    #[test]
    fn accepts_the_word_cargo_passes() {
        let direct = Args::try_parse_args(["cargo-safeclean", "-n"].map(OsString::from)).unwrap();
        let via_cargo = Args::try_parse_args(["cargo-safeclean", "safeclean", "-n"].map(OsString::from)).unwrap();
        assert!(direct.dry_run && via_cargo.dry_run);
    }

    #[test]
    fn check_args_pass_through() {
        let o = Args::try_parse_args(
            ["cargo-safeclean", "--grace", "1s", "--", "--all-targets", "-p", "x"].map(OsString::from),
        )
        .unwrap();
        assert_eq!(o.grace, Duration::from_secs(1));
        assert_eq!(o.check_args, ["--all-targets", "-p", "x"].map(OsString::from));
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
