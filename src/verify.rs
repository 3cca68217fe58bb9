//! The verifying `cargo check` (or `build`, `test`: `--check-with`): `$CARGO check ARGS…` in the workspace root, its
//! output streamed line by line, and what cargo's "Blocking waiting for file lock on …" lines say it waits for.
//! `--if-broken` runs the same command first, reading stdout too and watching for a lock it waits on.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::interrupt::Interrupt;
use crate::layout::{LockName, cargo_locks, package_cache_locks};
use crate::model::Verified;
use crate::platform::{Identity, Platform};
use crate::workspace::{CargoSaid, Dirs};

/// What to run.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub cargo: &'a OsString,
    /// `check`, `build` or `test`.
    pub subcommand: &'static str,
    pub args: &'a [OsString],
    pub dirs: &'a Dirs,
    /// `CARGO_TERM_COLOR=always` rather than `never`.
    pub color: bool,
    /// `-q` (this run is quiet) or `-v` (`-vv`), unless the arguments already say how much cargo prints.
    pub verbosity: Option<&'static str>,
    /// Send cargo's stdout to our stderr (JSON mode keeps stdout for JSON lines).
    pub stdout_to_stderr: bool,
    /// Read cargo's stdout line by line too (for `--message-format=json` diagnostics), through `on_line`.
    pub read_stdout: bool,
    /// Ask cargo for its diagnostics as JSON (unless the arguments choose a format): what `--if-broken` judges.
    pub json_diagnostics: bool,
    /// Run cargo as this user rather than as this process: a root run on another user's target dir does not leave
    /// root-owned build output there that the owner's next build cannot write over.
    pub run_as: Option<RunAs>,
}

/// A user to run cargo as, with their own home (where rustup and cargo keep their toolchains and registry, unless
/// `RUSTUP_HOME`/`CARGO_HOME` say otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub home: Option<PathBuf>,
}

/// Why the check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "failed to start `{} check`{}: {source}",
        program.to_string_lossy(),
        run_as.map_or(String::new(), |uid| format!(" as uid {uid}, the owner of the workspace")),
    )]
    Spawn {
        program: OsString,
        run_as: Option<u32>,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`{command}` failed ({})",
        exit_code.map_or("killed by a signal".into(), |c| format!("exit code {c}"))
    )]
    Failed { command: String, exit_code: Option<i32> },
    #[error("cargo could not run `{command}` as asked (exit code 1: its command line or its configuration)")]
    Rejected { command: String, deleted: bool },
    /// `reason` is cargo's own error line, without its `error: `.
    #[error("cargo rejects `{command}`: {reason}")]
    BadArguments { command: String, reason: String, tip: Option<String> },
    #[error(
        "`{command}` failed with an error about {}, which this tool does not know as damage",
        path.display()
    )]
    Unknown { command: String, path: PathBuf },
    #[error(
        "`{command}` failed ({}) with errors no clean fixes: the code, not the build dir, is broken",
        exit_code.map_or("killed by a signal".into(), |c| format!("exit code {c}"))
    )]
    CodeBroken { command: String, exit_code: Option<i32> },
}

/// Said whenever the check ended the run before anything was done.
const NOTHING_DONE: &str = "nothing was signalled or deleted";

impl VerifyError {
    /// What to do about it.
    #[must_use]
    pub fn help(&self) -> Option<String> {
        match self {
            VerifyError::Spawn { run_as: None, .. } => Some("install cargo or set CARGO to its path".into()),
            VerifyError::Spawn { run_as: Some(uid), .. } => {
                Some(format!("install cargo or set CARGO to a cargo that uid {uid} may run, or pass --no-verify"))
            }
            VerifyError::Rejected { .. } => Some("fix what cargo says above and run again".into()),
            VerifyError::BadArguments { tip, .. } => Some(match tip {
                Some(tip) => format!("{tip}; the arguments after `--` go to cargo as they are"),
                None => "fix the arguments after `--`: they go to cargo as they are".into(),
            }),
            VerifyError::Unknown { .. } => {
                Some("if the build dir is to blame, `cargo safeclean` (without --if-broken) cleans it anyway".into())
            }
            VerifyError::Failed { .. } | VerifyError::CodeBroken { .. } => None,
        }
    }

    /// Whether anything was cleaned before the check failed.
    #[must_use]
    pub fn note(&self) -> Option<String> {
        match self {
            VerifyError::Failed { .. } => {
                Some("the target dir was cleaned, so this is a real build error, not a damaged build dir".into())
            }
            VerifyError::Rejected { deleted: false, .. }
            | VerifyError::BadArguments { .. }
            | VerifyError::Unknown { .. }
            | VerifyError::CodeBroken { .. } => Some(NOTHING_DONE.into()),
            VerifyError::Spawn { .. } | VerifyError::Rejected { deleted: true, .. } => None,
        }
    }

    /// The verify of `command` ended with `exit_code`: a build that failed, or (exit 1) cargo refusing to run it.
    #[must_use]
    pub fn failed(command: String, exit_code: Option<i32>) -> Self {
        if exit_code == Some(1) {
            VerifyError::Rejected { command, deleted: true }
        } else {
            VerifyError::Failed { command, exit_code }
        }
    }
}

impl Request<'_> {
    /// The `cargo check` command: `--manifest-path` and `--target-dir` as the run resolved them, unless the user
    /// passed their own.
    fn command(&self) -> Command {
        let mut cmd = Command::new(self.cargo);
        cmd.arg(self.subcommand);
        let user_has = |flag: &str| {
            self.args.iter().any(|a| a.to_str().is_some_and(|a| a == flag || a.starts_with(&format!("{flag}="))))
        };
        if let Some(m) = &self.dirs.manifest_path
            && !user_has("--manifest-path")
        {
            cmd.arg("--manifest-path").arg(m);
        }
        if self.dirs.explicit_target_dir && !user_has("--target-dir") {
            cmd.arg("--target-dir").arg(&self.dirs.target_dir);
        }
        if let Some(flag) = self.verbosity
            && !["-q", "--quiet", "-v", "-vv", "--verbose"].iter().any(|f| user_has(f))
        {
            cmd.arg(flag);
        }
        cmd.args(self.message_format());
        cmd.args(self.args)
            .current_dir(&self.dirs.workspace_root)
            .env("CARGO_TERM_COLOR", if self.color { "always" } else { "never" });
        if let Some(user) = &self.run_as {
            crate::platform::run_as(&mut cmd, user.uid, user.gid);
            if let Some(home) = &user.home {
                cmd.env("HOME", home);
            }
        }
        cmd
    }

    /// The `--message-format` the run adds to read the diagnostics, unless the user chose one.
    fn message_format(&self) -> Option<&'static str> {
        let user_has = self.args.iter().any(|a| a.to_str().is_some_and(|a| a.starts_with("--message-format")));
        (self.json_diagnostics && !user_has).then_some(if self.color {
            "--message-format=json-diagnostic-rendered-ansi"
        } else {
            "--message-format=json"
        })
    }

    /// The command as a person would type it: `cargo`, not the path `$CARGO` names, and without the message
    /// format the run reads it with.
    #[must_use]
    pub fn shown(&self) -> String {
        let cmd = self.command();
        let added = self.message_format();
        let words = std::iter::once("cargo".to_string())
            .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()).filter(|a| Some(a.as_str()) != added));
        shell_words::join(words)
    }
}

/// Runs the check; every line cargo writes to stderr (and to stdout with `read_stdout`) goes to `on_line`. `watch`
/// is asked about every 100 ms, with cargo's pid, whether to stop it. On interrupt, or when `watch` says so, cargo
/// and what it started get SIGINT and are waited for.
pub fn run(
    req: &Request<'_>,
    platform: &Platform,
    interrupt: &Interrupt,
    on_line: &(dyn Fn(Stream, &str) + Sync),
    watch: &dyn Fn(u32) -> bool,
) -> Result<Verified, VerifyError> {
    let start = Instant::now();
    let mut cmd = req.command();
    // A process group of its own, so that Ctrl-C reaches cargo and everything it started (build scripts,
    // rustc) through us, and the run can wait for them to stop.
    crate::platform::own_group(&mut cmd);
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    let run_as = req.run_as.as_ref().map(|u| u.uid);
    let spawn_error = |source| VerifyError::Spawn { program: req.cargo.clone(), run_as, source };
    if req.read_stdout {
        cmd.stdout(Stdio::piped());
    } else if req.stdout_to_stderr {
        cmd.stdout(crate::platform::stderr_stdio().map_err(spawn_error)?);
    }
    let mut child = cmd.spawn().map_err(spawn_error)?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let stdout = child.stdout.take();
    let mut interrupted = false;
    let status = std::thread::scope(|s| {
        s.spawn(|| {
            for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
                on_line(Stream::Stderr, String::from_utf8_lossy(&line).trim_end_matches('\r'));
            }
        });
        if let Some(stdout) = stdout {
            s.spawn(|| {
                for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                    on_line(Stream::Stdout, String::from_utf8_lossy(&line).trim_end_matches('\r'));
                }
            });
        }
        // Our own unreaped child: its pid cannot be reused until we wait, so this handle is exact.
        let handle = platform.process(child.id()).and_then(|p| platform.open_process(&Identity::from(&p)));
        if let Some(handle) = handle {
            loop {
                let waited = platform.wait_any(&[&handle], Instant::now() + Duration::from_millis(100), interrupt);
                let stop = waited.exited.is_empty() && !waited.interrupted && watch(child.id());
                if waited.interrupted || stop {
                    interrupted = waited.interrupted;
                    // The group is cargo's own (see above): its id is cargo's pid, which cannot be reused before
                    // we reap cargo.
                    crate::platform::interrupt_group(&mut child);
                    break;
                }
                if !waited.exited.is_empty() {
                    break;
                }
            }
        }
        child.wait()
    })
    .map_err(spawn_error)?;
    Ok(Verified {
        exit_code: status.code(),
        duration_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        interrupted,
    })
}

/// Which of cargo's streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Whether cargo accepts the command line of `req` at all, asked before anything is signalled or deleted: the same
/// command with `--help` (before any `--`), which cargo parses and answers without building. Cargo exits 1 on an
/// argument it does not know.
pub fn validate(req: &Request<'_>) -> Result<(), VerifyError> {
    let cmd = req.command();
    let args: Vec<OsString> = cmd.get_args().map(OsString::from).collect();
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let mut with_help = args;
    with_help.insert(at, "--help".into());
    let mut check = Command::new(cmd.get_program());
    // Both outputs piped (the help text is dropped): std reads one lone pipe on Windows with a synchronous read of a
    // handle it opened for overlapped IO, which Wine answers with "pending" and std then aborts the process.
    check.args(with_help).current_dir(&req.dirs.workspace_root).stdin(Stdio::null()).stdout(Stdio::piped());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => check.env(k, v),
            None => check.env_remove(k),
        };
    }
    let out = check.stderr(Stdio::piped()).output().map_err(|source| VerifyError::Spawn {
        program: req.cargo.clone(),
        run_as: None,
        source,
    })?;
    if out.status.success() {
        return Ok(());
    }
    let said = CargoSaid::parse(&String::from_utf8_lossy(&out.stderr));
    let reason = said.error.unwrap_or_else(|| format!("it exits with {}, and says nothing", out.status));
    Err(VerifyError::BadArguments { command: req.shown(), reason, tip: said.tip })
}

/// One of cargo's locks that a `cargo` is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub lock: LockName,
    /// The files that lock lives in.
    pub files: Vec<PathBuf>,
}

/// Which of cargo's locks a `Blocking waiting for file lock on …` line names, and the files that lock lives in.
/// `cargo_home` is where the package cache locks are. At `-vv` cargo appends the path, which is ignored here.
#[must_use]
pub fn blocked_on(line: &str, dirs: &Dirs, cargo_home: Option<&Path>) -> Option<Blocked> {
    let what = line.trim().strip_prefix("Blocking waiting for file lock on ")?;
    let build_dir = dirs.build_dir.as_deref().unwrap_or(&dirs.target_dir);
    let starts = |phrase: &str| what.trim() == phrase || what.starts_with(&format!("{phrase} "));
    Some(if ["package cache", "shared package cache", "package cache mutation"].into_iter().any(starts) {
        Blocked { lock: LockName::PackageCache, files: package_cache_locks(cargo_home?) }
    } else if starts("build directory") {
        Blocked { lock: LockName::BuildDirectory, files: cargo_locks(build_dir) }
    } else if starts("artifact directory") {
        Blocked { lock: LockName::ArtifactDirectory, files: cargo_locks(&dirs.target_dir) }
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> Dirs {
        Dirs {
            workspace_root: "/w".into(),
            manifest_path: None,
            target_dir: "/w/target".into(),
            build_dir: None,
            explicit_target_dir: false,
        }
    }

    #[test]
    fn knows_which_lock_cargo_waits_for() {
        let d = dirs();
        let blocked = |line| blocked_on(line, &d, Some(Path::new("/h/.cargo"))).map(|b| b.lock);
        assert_eq!(blocked("    Blocking waiting for file lock on build directory"), Some(LockName::BuildDirectory));
        assert_eq!(blocked("Blocking waiting for file lock on artifact directory"), Some(LockName::ArtifactDirectory));
        assert_eq!(blocked("Blocking waiting for file lock on shared package cache"), Some(LockName::PackageCache));
        assert_eq!(blocked("Blocking waiting for file lock on package cache mutation"), Some(LockName::PackageCache));
        let vv = "Blocking waiting for file lock on build directory (/w/target/debug/.cargo-lock)";
        assert_eq!(blocked(vv), Some(LockName::BuildDirectory), "-vv appends the path");
        let cache = blocked_on("Blocking waiting for file lock on package cache", &d, Some(Path::new("/h/.cargo")));
        assert_eq!(
            cache.unwrap().files,
            [PathBuf::from("/h/.cargo/.package-cache"), "/h/.cargo/.package-cache-mutate".into()]
        );
        assert_eq!(blocked("   Compiling foo"), None);
    }

    #[test]
    fn shows_the_command_quoted() {
        let d = Dirs { manifest_path: Some("/w/my ws/Cargo.toml".into()), ..dirs() };
        let args = ["--features".into(), "a b".into()];
        let req = Request {
            cargo: &"cargo".into(),
            subcommand: "check",
            args: &args,
            dirs: &d,
            color: false,
            verbosity: None,
            stdout_to_stderr: false,
            read_stdout: false,
            run_as: None,
            json_diagnostics: false,
        };
        assert_eq!(req.shown(), "cargo check --manifest-path '/w/my ws/Cargo.toml' --features 'a b'");
    }
}
