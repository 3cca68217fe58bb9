//! The verifying `cargo check`: `$CARGO check ARGS…` in the workspace root, its output streamed to the reporter.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::SignalBackend;
use crate::interrupt::Interrupt;
use crate::terminate::handle::{ProcHandle, wait_any};
use crate::workspace::{Dirs, cargo_program};

/// How verify went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// cargo's exit code; `None` when it was ended by a signal.
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub interrupted: bool,
}

impl Verified {
    #[must_use]
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// What verify needs besides the dirs.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub args: &'a [OsString],
    /// Pass `--target-dir` when the user chose the dir, so that the check fills the dir that was cleaned.
    pub explicit_target_dir: bool,
    /// `always` or `never`, for `CARGO_TERM_COLOR`.
    pub color: &'static str,
    /// Send cargo's stdout to our stderr (JSON mode keeps stdout for JSON lines).
    pub stdout_to_stderr: bool,
    pub backend: SignalBackend,
}

/// The `cargo check` command for `dirs` and `req`.
fn command(dirs: &Dirs, req: &Request<'_>) -> Command {
    let mut cmd = Command::new(cargo_program());
    cmd.arg("check");
    let user_has = |flag: &str| {
        req.args.iter().any(|a| a.to_str().is_some_and(|a| a == flag || a.starts_with(&format!("{flag}="))))
    };
    if let Some(m) = &dirs.manifest_path
        && !user_has("--manifest-path")
    {
        cmd.arg("--manifest-path").arg(m);
    }
    if req.explicit_target_dir && !user_has("--target-dir") {
        cmd.arg("--target-dir").arg(&dirs.target_dir);
    }
    cmd.args(req.args).current_dir(&dirs.workspace_root).env("CARGO_TERM_COLOR", req.color);
    cmd
}

/// Runs the check. `on_start` gets its command line as a person would type it; every line cargo writes to stderr
/// goes to `on_line`. On interrupt, cargo gets SIGINT and is waited for.
pub fn run(
    dirs: &Dirs,
    req: &Request<'_>,
    interrupt: &Interrupt,
    on_start: &dyn Fn(&str),
    on_line: &(dyn Fn(&str) + Sync),
) -> std::io::Result<Verified> {
    let start = Instant::now();
    let mut cmd = command(dirs, req);
    let shown: Vec<String> =
        std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|a| a.to_string_lossy().into_owned()).collect();
    on_start(&crate::report::shell_words(&shown));
    // A process group of its own, so that Ctrl-C reaches cargo and everything it started (build scripts,
    // rustc) through us, and the run can wait for them to stop.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    if req.stdout_to_stderr {
        cmd.stdout(Stdio::from(std::os::fd::AsFd::as_fd(&std::io::stderr()).try_clone_to_owned()?));
    }
    let mut child = cmd.spawn()?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut interrupted = false;
    let status = std::thread::scope(|s| {
        s.spawn(|| {
            for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
                on_line(String::from_utf8_lossy(&line).trim_end_matches('\r'));
            }
        });
        let start_time = crate::process::read_stat(child.id()).ok().flatten().map_or(0, |s| s.start_time);
        // Our own unreaped child: its pid cannot be reused until we wait, so this handle is exact.
        if let Some(handle) = ProcHandle::open(child.id(), start_time, req.backend) {
            loop {
                let waited = wait_any(&[&handle], Instant::now() + Duration::from_hours(1), interrupt);
                if waited.interrupted {
                    interrupted = true;
                    // The group is cargo's own (see above): its id is cargo's pid, which cannot be reused before
                    // we reap cargo.
                    let _ = rustix::process::kill_process_group(
                        rustix::process::Pid::from_child(&child),
                        rustix::process::Signal::INT,
                    );
                    break;
                }
                if !waited.exited.is_empty() {
                    break;
                }
            }
        }
        child.wait()
    })?;
    Ok(Verified {
        exit_code: status.code(),
        duration_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        interrupted,
    })
}
