//! The resolved plan: what the command line and the environment ask for, with every default decided. This is the
//! only module that reads the environment or resolves `auto`; each stage gets its part of the plan as plain values.
//!
//! Platform precedence, most specific first: a piece's hidden option (`--scan-backend`, `--signal-backend`), then
//! its environment variable (`SAFECLEAN_SCAN_BACKEND`, `SAFECLEAN_SIGNAL_BACKEND`), then `SAFECLEAN_PLATFORM`
//! (`native`, the default, or `portable`), which picks every piece. `auto` means "what the platform picks".

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

use crate::cli::{Args, Color, MessageFormat, MountCheckChoice, ScanBackend, SignalBackend, SwapChoice};
use crate::guard::Protected;
use crate::model::Mode;
use crate::platform::Platform;
#[cfg(unix)]
use crate::platform::{Holders, MountCheck, Signals, Source};

/// A piece this OS does not have, asked for by name.
fn unavailable(what: &'static str) -> PlanError {
    PlanError::Unavailable { what }
}
use crate::report::{Format, Output, Style};
use crate::swap::SwapMethod;
use crate::{purge, terminate};

/// Everything a run is asked to do, decided.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: Mode,
    /// Say what would happen; signal nothing, delete nothing.
    pub dry_run: bool,
    /// The dir relative paths are taken from.
    pub cwd: PathBuf,
    pub manifest_path: Option<PathBuf>,
    /// Absolute.
    pub target_dir: Option<PathBuf>,
    /// The cargo to run: `$CARGO` (set by cargo for its subcommands) or `cargo` from `PATH`.
    pub cargo: OsString,
    /// Where cargo's package cache locks are: `$CARGO_HOME`, or `.cargo` in the home dir.
    pub cargo_home: Option<PathBuf>,
    pub force: bool,
    pub protected: Protected,
    pub no_kill: bool,
    pub all_holders: bool,
    pub only_if_held: bool,
    pub verify: bool,
    /// Check first, and clean only a damaged build dir.
    pub if_broken: bool,
    /// With `if_broken`: clean the whole tree at once, without repairing only the damaged units first.
    pub full: bool,
    /// The cargo subcommand of the check and the verify: `check`, `build` or `test`.
    pub check_with: &'static str,
    pub check_args: Vec<OsString>,
    pub stop: terminate::Settings,
    /// `--detach`: hand the purge to a detached deleter, unless free space is below `min_free` (`None`: the smaller
    /// of 10% of the filesystem and 5 GiB).
    pub detach: Option<Detach>,
    pub platform: Platform,
    pub purge: purge::Settings,
    pub swap: SwapMethod,
    /// Where the runner's own runtime dir may go, best first: `$XDG_RUNTIME_DIR`, `$TMPDIR`, `/tmp`.
    pub runtime_bases: Vec<PathBuf>,
    /// The longest wait for a lock someone else holds.
    pub lock_timeout: Duration,
    pub output: Output,
    /// `--sweep`'s criteria (besides the certain garbage every sweep removes).
    pub sweep: Option<crate::model::Criteria>,
    /// `--if-free-below`: act only when the target dir's filesystem has less free space than this.
    pub if_free_below: Option<u64>,
    /// Where a sweep learns the toolchains.
    pub toolchains: Toolchains,
}

/// The rustc cargo runs (`$RUSTC`, else `rustc` from `PATH`), rustup, and the other rustc executables that may be
/// installed (each `rustc` on `PATH`, and the system's).
#[derive(Debug, Clone, Default)]
pub struct Toolchains {
    pub rustc: OsString,
    pub rustup: OsString,
    pub candidates: Vec<PathBuf>,
}

/// How a detached purge runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detach {
    pub min_free: Option<u64>,
    /// The deleter's purge workers.
    pub workers: usize,
}

/// An environment variable with a value the tool does not know (exit 2, like a bad option).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{name}={value} is not understood")]
    BadEnv {
        name: &'static str,
        value: String,
        /// What it may be, as words that follow "set it to": `one of: native, portable`.
        expected: String,
    },
    #[error("cannot read the current dir: {0}")]
    CurrentDir(String),
    #[error("{what} is not available on this platform")]
    Unavailable { what: &'static str },
    /// An option not built for this OS yet.
    #[error("{what} is not available on this OS yet")]
    NotOnThisOs { what: &'static str, instead: &'static str },
}

impl PlanError {
    /// What to do instead.
    #[must_use]
    pub fn help(&self) -> Option<String> {
        match self {
            PlanError::BadEnv { name, expected, .. } => Some(format!("unset {name}, or set it to {expected}")),
            PlanError::CurrentDir(_) => None,
            PlanError::Unavailable { .. } if cfg!(windows) => Some("leave the option or variable unset".into()),
            PlanError::Unavailable { .. } => Some("leave the variable unset or use `portable`".into()),
            PlanError::NotOnThisOs { instead, .. } => Some((*instead).into()),
        }
    }
}

/// The environment a plan is resolved in: variables, whether stderr is a terminal, the cores, the current dir.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, OsString>,
    pub stderr_is_terminal: bool,
    /// The width of the terminal on stderr, if it is one and says.
    pub columns: Option<u16>,
    pub cores: usize,
    pub cwd: PathBuf,
}

impl Env {
    /// This process's environment.
    pub fn current() -> Result<Self, PlanError> {
        use std::io::IsTerminal;
        Ok(Env {
            vars: std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))).collect(),
            stderr_is_terminal: std::io::stderr().is_terminal(),
            columns: crate::platform::terminal_columns(),
            cores: std::thread::available_parallelism().map_or(2, usize::from),
            cwd: std::env::current_dir().map_err(|e| PlanError::CurrentDir(e.to_string()))?,
        })
    }

    /// An environment made of `vars`, for tests and library callers.
    #[must_use]
    pub fn with_vars<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>, cwd: PathBuf) -> Self {
        Env {
            vars: vars.into_iter().map(|(k, v)| (k.to_string(), v.into())).collect(),
            stderr_is_terminal: false,
            columns: None,
            cores: 2,
            cwd,
        }
    }

    /// A variable that is set and not empty.
    fn get(&self, name: &str) -> Option<&OsStr> {
        self.vars.get(name).map(OsString::as_os_str).filter(|v| !v.is_empty())
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).map(PathBuf::from)
    }

    /// A variable naming one of `T`'s values; `None` when unset.
    fn choice<T: ValueEnum>(&self, name: &'static str) -> Result<Option<T>, PlanError> {
        let Some(value) = self.get(name) else { return Ok(None) };
        let text = value.to_string_lossy();
        T::from_str(&text, true).map(Some).map_err(|_| PlanError::BadEnv {
            name,
            value: text.into_owned(),
            expected: format!(
                "one of: {}",
                T::value_variants()
                    .iter()
                    .filter_map(|v| Some(v.to_possible_value()?.get_name().to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// A variable giving a number of threads (1 or more); `None` when unset.
    fn threads(&self, name: &'static str) -> Result<Option<usize>, PlanError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        let n = v.to_str().and_then(|v| v.parse::<usize>().ok()).filter(|n| *n > 0);
        n.map(Some).ok_or_else(|| PlanError::BadEnv {
            name,
            value: v.to_string_lossy().into_owned(),
            expected: "a number of threads, 1 or more".into(),
        })
    }

    fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v != "false" && v != "0")
    }
}

/// `SAFECLEAN_PLATFORM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PlatformChoice {
    Native,
    Portable,
}

impl Plan {
    /// Decides everything `args` leave open, from `env`.
    pub fn resolve(args: Args, env: &Env) -> Result<Plan, PlanError> {
        let platform = platform(&args, env)?;
        refuse_unported(&args)?;
        let swap = match args.swap.or(env.choice("SAFECLEAN_SWAP")?) {
            Some(SwapChoice::Rename) => SwapMethod::Rename,
            Some(SwapChoice::Exchange | SwapChoice::Auto) | None => SwapMethod::Exchange,
        };
        let workers = env.threads("SAFECLEAN_PURGE_THREADS")?.unwrap_or_else(|| purge::default_workers(env.cores));
        // Fewer than the foreground purge: nobody waits for the deleter, and it should leave the machine to others.
        let detached_workers = env.threads("SAFECLEAN_DETACH_THREADS")?.unwrap_or_else(|| env.cores.clamp(2, 8));
        let sudo_user = env.get("SUDO_USER").map(|u| u.to_string_lossy().into_owned());
        // Windows' home is `%USERPROFILE%` (where cargo looks for its home there); `HOME` is unusual, and may be a
        // Unix-like shell's.
        let home = if cfg!(windows) { env.path("USERPROFILE") } else { env.path("HOME") };
        let protected = Protected::for_user(home, sudo_user.as_deref(), env.path("CARGO_HOME"));
        let cargo_home = env.path("CARGO_HOME").or_else(|| protected.homes.first().map(|h| h.join(".cargo")));
        let output = output(&args, env)?;
        Ok(Plan {
            mode: if args.unlock {
                Mode::Unlock
            } else if args.sweep {
                Mode::Sweep
            } else {
                Mode::Clean
            },
            dry_run: args.dry_run,
            manifest_path: args.manifest_path.map(|m| env.cwd.join(m)),
            target_dir: args.target_dir.map(|t| target_dir_path(&env.cwd, &t)),
            cwd: env.cwd.clone(),
            cargo: env.get("CARGO").map_or_else(|| "cargo".into(), OsStr::to_os_string),
            cargo_home,
            force: args.force,
            protected,
            no_kill: args.no_kill,
            all_holders: args.all_holders,
            only_if_held: args.only_if_held,
            verify: !args.no_verify,
            if_broken: args.if_broken,
            full: args.full,
            check_with: args.check_with.subcommand(),
            check_args: args.check_args,
            stop: terminate::Settings { grace: args.grace, kill_timeout: args.kill_timeout },
            detach: args.detach.then_some(Detach { min_free: args.detach_min_free, workers: detached_workers }),
            purge: purge::Settings {
                workers,
                files: platform.files,
                busy: purge::Busy::Skip,
                lock_timeout: args.lock_timeout,
            },
            platform,
            swap,
            runtime_bases: runtime_bases(env),
            lock_timeout: args.lock_timeout,
            output,
            sweep: args.sweep.then_some(crate::model::Criteria {
                other_toolchains: args.other_toolchains,
                older_than: args.older_than,
                max_size: args.max_size,
            }),
            if_free_below: args.if_free_below,
            toolchains: toolchains(env),
        })
    }
}

/// Which implementation serves each piece: see the module docs.
#[cfg(unix)]
fn platform(args: &Args, env: &Env) -> Result<Platform, PlanError> {
    let lsof = env.get("SAFECLEAN_LSOF").map_or_else(|| "lsof".into(), OsStr::to_os_string);
    let mut platform = match env.choice("SAFECLEAN_PLATFORM")?.unwrap_or(PlatformChoice::Native) {
        PlatformChoice::Native => Platform::native(),
        PlatformChoice::Portable => Platform::portable(lsof.clone()),
    };
    match args.scan_backend.or(env.choice("SAFECLEAN_SCAN_BACKEND")?) {
        Some(ScanBackend::Proc) => {
            platform = platform.with_native_holders(Source::Proc).ok_or(unavailable("the /proc scan"))?;
        }
        Some(ScanBackend::Libproc) => {
            platform = platform.with_native_holders(Source::Libproc).ok_or(unavailable("the libproc scan"))?;
        }
        Some(ScanBackend::Lsof) => platform.holders = Holders::Lsof { program: lsof },
        Some(ScanBackend::Auto) | None => {}
    }
    match args.signal_backend.or(env.choice("SAFECLEAN_SIGNAL_BACKEND")?) {
        Some(SignalBackend::Pidfd) => {
            platform = platform.with_native_signals(Source::Pidfd).ok_or(unavailable("pidfd"))?;
        }
        Some(SignalBackend::Kqueue) => {
            platform = platform.with_native_signals(Source::Kqueue).ok_or(unavailable("kqueue"))?;
        }
        Some(SignalBackend::Kill) => platform.signals = Signals::Kill,
        Some(SignalBackend::Auto) | None => {}
    }
    let forced = match args.mount_check.or(env.choice("SAFECLEAN_MOUNT_CHECK")?) {
        Some(MountCheckChoice::Openat2) => Some(MountCheck::Openat2),
        Some(MountCheckChoice::Statx) => Some(MountCheck::Statx),
        Some(MountCheckChoice::Mountinfo) => Some(MountCheck::Mountinfo),
        Some(MountCheckChoice::Auto) | None => None,
    };
    if let Some(check) = forced {
        platform = platform.with_mount_check(check).ok_or(unavailable("that mount check"))?;
    }
    Ok(platform)
}

/// On Windows there is one implementation: a switch that names another is refused, `auto` and `native` are fine.
#[cfg(windows)]
fn platform(args: &Args, env: &Env) -> Result<Platform, PlanError> {
    if env.choice("SAFECLEAN_PLATFORM")? == Some(PlatformChoice::Portable) {
        return Err(unavailable("the portable implementation (it is Unix's)"));
    }
    if args.scan_backend.or(env.choice("SAFECLEAN_SCAN_BACKEND")?).is_some_and(|b| b != ScanBackend::Auto) {
        return Err(unavailable("another scan than the handle table"));
    }
    if args.signal_backend.or(env.choice("SAFECLEAN_SIGNAL_BACKEND")?).is_some_and(|b| b != SignalBackend::Auto) {
        return Err(unavailable("another way to stop processes than process handles"));
    }
    if args.mount_check.or(env.choice("SAFECLEAN_MOUNT_CHECK")?).is_some_and(|c| c != MountCheckChoice::Auto) {
        return Err(unavailable("a mount check (a Windows walk never enters a reparse point)"));
    }
    Ok(Platform::native())
}

/// What is not built for this OS yet, refused before anything is done.
#[cfg(unix)]
#[expect(clippy::unnecessary_wraps, reason = "one signature with Windows', which refuses some")]
fn refuse_unported(_args: &Args) -> Result<(), PlanError> {
    Ok(())
}

/// What is not built for Windows yet (issue #23), refused before anything is done, saying what runs instead.
#[cfg(windows)]
fn refuse_unported(args: &Args) -> Result<(), PlanError> {
    if args.sweep {
        return Err(PlanError::NotOnThisOs {
            what: "--sweep",
            instead: "run without it to clean the target dir whole",
        });
    }
    Ok(())
}

/// `--target-dir` made absolute. `components()` drops the `.` of `--target-dir .` (and of `./t`); a `..` stays, as
/// only the file system knows where it leads.
#[cfg(unix)]
fn target_dir_path(cwd: &std::path::Path, t: &std::path::Path) -> PathBuf {
    cwd.join(t).components().collect()
}

/// `--target-dir` made absolute as Windows reads a path (`GetFullPathNameW`, through `std::path::absolute`): a
/// drive-relative `C:t` against that drive's current dir, `\\?\` forms kept whole (collecting components would
/// turn `\\?\GLOBALROOT\…\Z:\x` into `Z:x`).
#[cfg(windows)]
fn target_dir_path(cwd: &std::path::Path, t: &std::path::Path) -> PathBuf {
    // `join` keeps a path with a drive or a root as it is.
    let joined = cwd.join(t);
    std::path::absolute(&joined).unwrap_or(joined)
}

/// The toolchains a sweep may find: `$RUSTC` (as cargo runs it), `rustup`, and every `rustc` on `PATH` and in the
/// system's dirs.
fn toolchains(env: &Env) -> Toolchains {
    let path: Vec<PathBuf> = env.get("PATH").map(|p| std::env::split_paths(p).collect()).unwrap_or_default();
    let rustup = path.iter().map(|d| d.join("rustup")).find(|r| r.is_file());
    let mut candidates: Vec<PathBuf> = path.iter().map(|d| d.join("rustc")).collect();
    candidates.extend(["/usr/bin/rustc", "/usr/local/bin/rustc"].map(PathBuf::from));
    candidates.extend(env.path("CARGO_HOME").map(|h| h.join("bin/rustc")));
    candidates.retain(|c| c.is_absolute());
    candidates.dedup();
    Toolchains {
        rustc: env.get("RUSTC").map_or_else(|| "rustc".into(), OsStr::to_os_string),
        rustup: rustup.map_or_else(|| "rustup".into(), PathBuf::into_os_string),
        candidates,
    }
}

/// Where the runner's own runtime dir may go, best first: `$XDG_RUNTIME_DIR` (the user's own), for root `/run`
/// (nobody else may write there), `$TMPDIR`, `/tmp`, and the home dir's `.cache` last, where another user who made
/// the name in a shared dir first cannot keep the runner from having one.
#[cfg(unix)]
fn runtime_bases(env: &Env) -> Vec<PathBuf> {
    let root = rustix::process::geteuid().is_root();
    let mut bases: Vec<PathBuf> = env.path("XDG_RUNTIME_DIR").into_iter().collect();
    bases.extend(root.then(|| PathBuf::from("/run")));
    bases.extend(env.path("TMPDIR"));
    bases.push(PathBuf::from("/tmp"));
    bases.extend(env.path("HOME").map(|h| h.join(".cache")));
    bases.retain(|b| b.is_absolute());
    bases
}

/// On Windows: the user's own `%LOCALAPPDATA%`, else `%TEMP%` (also the user's own by default).
#[cfg(windows)]
fn runtime_bases(env: &Env) -> Vec<PathBuf> {
    let mut bases: Vec<PathBuf> = ["LOCALAPPDATA", "TEMP", "TMP"].iter().filter_map(|v| env.path(v)).collect();
    bases.retain(|b| b.is_absolute());
    bases.dedup();
    bases
}

/// Resolves `--message-format`, `--color`, `-q`, `-v`, cargo's `CARGO_TERM_COLOR`, `CARGO_TERM_QUIET` and
/// `CARGO_TERM_VERBOSE` (a flag beats its variable, as in cargo), a terminal on stderr, `CI`, `NO_COLOR` and GitHub
/// Actions.
fn output(args: &Args, env: &Env) -> Result<Output, PlanError> {
    let ci = env.flag("CI");
    let color = match args.color {
        Some(c) => c,
        None => env.choice::<Color>("CARGO_TERM_COLOR")?.unwrap_or(Color::Auto),
    };
    let (quiet, verbose) = match (args.quiet, args.verbose) {
        (false, 0) => (env.flag("CARGO_TERM_QUIET"), u8::from(env.flag("CARGO_TERM_VERBOSE"))),
        given => given,
    };
    // Both set in the environment: cargo refuses; here the quieter wins, as a script that asked for quiet expects.
    let verbose = if quiet { 0 } else { verbose };
    let style = Style {
        color: match color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => env.stderr_is_terminal && !ci && env.get("NO_COLOR").is_none(),
        },
        progress: env.stderr_is_terminal && !ci && !quiet,
        quiet,
        verbose,
        // A narrower terminal than cargo's usual 100 columns gets lines that fit it; a very narrow one, readable ones.
        width: env.columns.filter(|_| env.stderr_is_terminal).map_or(100, |c| usize::from(c).clamp(40, 100)),
    };
    let format = match args.message_format {
        MessageFormat::Json => Format::Json,
        MessageFormat::Human if env.get("GITHUB_ACTIONS").is_some_and(|v| v == "true") => {
            Format::Github { step_summary: env.path("GITHUB_STEP_SUMMARY") }
        }
        MessageFormat::Human => Format::Human,
    };
    Ok(Output { format, style })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(argv: &[&str], vars: &[(&str, &str)]) -> Result<Plan, PlanError> {
        let parsed =
            Args::try_parse_args(std::iter::once("cargo-safeclean").chain(argv.iter().copied()).map(OsString::from));
        Plan::resolve(parsed.unwrap(), &Env::with_vars(vars.iter().copied(), "/w".into()))
    }

    #[cfg(unix)]
    #[test]
    fn the_specific_switch_beats_the_platform() {
        let native = plan(&[], &[]).unwrap();
        assert_eq!(native.platform, Platform::native());
        let portable = plan(&[], &[("SAFECLEAN_PLATFORM", "portable"), ("SAFECLEAN_LSOF", "/opt/lsof")]).unwrap();
        assert_eq!(portable.platform, Platform::portable("/opt/lsof".into()));
        // This OS's own scan by its name, and the other OS's refused: `proc` on Linux, `libproc` on macOS.
        let (own, other) = if cfg!(target_os = "linux") { ("proc", "libproc") } else { ("libproc", "proc") };
        let mixed = plan(&[], &[("SAFECLEAN_PLATFORM", "portable"), ("SAFECLEAN_SCAN_BACKEND", own)]).unwrap();
        assert_eq!((mixed.platform.holders, mixed.platform.signals), (Holders::Native, Signals::Kill));
        assert_eq!(mixed.platform.processes, crate::platform::Processes::Native, "the native scan brings its table");
        let refused = plan(&[], &[("SAFECLEAN_SCAN_BACKEND", other)]).unwrap_err();
        assert!(matches!(refused, PlanError::Unavailable { .. }), "{refused}");
        let flag = plan(&["--scan-backend", "lsof"], &[("SAFECLEAN_SCAN_BACKEND", own)]).unwrap();
        assert_eq!(flag.platform.holders, Holders::Lsof { program: "lsof".into() });
        let (own, other) = if cfg!(target_os = "linux") { ("pidfd", "kqueue") } else { ("kqueue", "pidfd") };
        let signals = plan(&[], &[("SAFECLEAN_PLATFORM", "portable"), ("SAFECLEAN_SIGNAL_BACKEND", own)]).unwrap();
        assert_eq!(signals.platform.signals, Signals::Native);
        assert!(plan(&[], &[("SAFECLEAN_SIGNAL_BACKEND", other)]).is_err());
    }

    #[test]
    fn unknown_values_are_usage_errors() {
        let e = plan(&[], &[("SAFECLEAN_PLATFORM", "windows")]).unwrap_err();
        assert_eq!(e.to_string(), "SAFECLEAN_PLATFORM=windows is not understood");
        assert_eq!(e.help().unwrap(), "unset SAFECLEAN_PLATFORM, or set it to one of: native, portable");
        let threads = plan(&[], &[("SAFECLEAN_PURGE_THREADS", "many")]).unwrap_err();
        assert_eq!(
            threads.help().unwrap(),
            "unset SAFECLEAN_PURGE_THREADS, or set it to a number of threads, 1 or more"
        );
        assert!(plan(&["--detach"], &[("SAFECLEAN_DETACH_THREADS", "0")]).is_err());
        let detached = plan(&["--detach"], &[("SAFECLEAN_DETACH_THREADS", "5")]).unwrap().detach.unwrap();
        assert_eq!(detached.workers, 5);
        assert_eq!(plan(&["--detach"], &[]).unwrap().detach.unwrap().workers, 2, "one per core, at least 2");
        #[cfg(windows)]
        {
            let e = plan(&["--sweep"], &[]).unwrap_err();
            assert!(matches!(e, PlanError::NotOnThisOs { .. }), "{e}");
            assert!(e.help().unwrap().starts_with("run without it"), "{e}");
        }
        assert!(plan(&[], &[("SAFECLEAN_SWAP", "twice")]).is_err());
    }

    #[test]
    fn defaults_come_from_the_environment_once() {
        let p = plan(&["--target-dir", "t", "--color", "auto"], &[("CARGO", "/opt/cargo"), ("CI", "true")]).unwrap();
        assert_eq!(p.cargo, OsString::from("/opt/cargo"));
        // Windows reads `/w/t` as Win32 does: on the current drive.
        let t = if cfg!(windows) { std::path::absolute("/w/t").unwrap() } else { PathBuf::from("/w/t") };
        assert_eq!(p.target_dir, Some(t));
        assert!(!p.output.style.color && !p.output.style.progress);
        assert_eq!(p.purge.workers, 16, "8 per core on 2 cores");
        let style = |argv: &[&str], vars: &[(&str, &str)]| plan(argv, vars).unwrap().output.style;
        let term = [("CARGO_TERM_COLOR", "always"), ("CARGO_TERM_QUIET", "true")];
        assert!(style(&[], &term).color && style(&[], &term).quiet, "cargo's variables are honoured");
        assert!(!style(&["--color", "never"], &term).color, "the flag beats the variable");
        assert_eq!(style(&["-v"], &term), Style { color: true, progress: false, quiet: false, verbose: 1, width: 100 });
        assert_eq!(style(&[], &[("CARGO_TERM_VERBOSE", "true")]).verbose, 1);
        assert!(plan(&[], &[("CARGO_TERM_COLOR", "sometimes")]).is_err(), "a value cargo would refuse is refused");
        let p =
            plan(&[], &[("SAFECLEAN_PURGE_THREADS", "3"), ("CARGO_HOME", "/h/c"), ("GITHUB_ACTIONS", "true")]).unwrap();
        assert_eq!((p.purge.workers, p.cargo_home), (3, Some(PathBuf::from("/h/c"))));
        assert_eq!(p.output.format, Format::Github { step_summary: None });
    }
}
