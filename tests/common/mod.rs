//! Shared fixtures for the integration tests: temporary workspaces, a rendezvous socket for readiness, and a
//! reaper that kills by pid everything a test started, pass or fail.

#![allow(dead_code, reason = "each test binary uses a different part of the fixtures")]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cargo_safeclean::model::Sig;
use cargo_safeclean::platform::{Identity, Platform};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, Signal};

/// How long any readiness or exit may take before the test fails (not a sleep: an upper bound on a wait).
pub const PATIENCE: Duration = Duration::from_mins(2);

/// The environment variable that makes the fixture build script hang.
pub const HANG: &str = "SAFECLEAN_TEST_HANG";
/// With [`HANG`]: the build script also starts a SIGTERM-ignoring child that holds nothing (or, with `out`, a file
/// in `OUT_DIR`).
pub const HANG_CHILD: &str = "SAFECLEAN_TEST_HANG_CHILD";

/// The tool under test.
pub fn safeclean_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cargo-safeclean"))
}

/// The holder fixture (`tests/support/holder.rs`), built by `cargo test` as an example.
pub fn holder_exe() -> PathBuf {
    let exe = safeclean_exe();
    let path = exe.parent().unwrap().join("examples/safeclean-test-holder");
    assert!(path.is_file(), "{} is missing: run the tests with `cargo test`", path.display());
    path
}

/// The attacker fixture (`tests/support/attacker.rs`), built by `cargo test` as an example.
pub fn attacker_exe() -> PathBuf {
    let path = holder_exe().with_file_name("safeclean-test-attacker");
    assert!(path.is_file(), "{} is missing: run the tests with `cargo test`", path.display());
    path
}

/// A copy of the holder fixture named `name` in `dir` (outside any target dir: it holds only what it is told).
pub fn holder_named(dir: &Path, name: &str) -> PathBuf {
    let exe = dir.join(name);
    std::fs::copy(holder_exe(), &exe).unwrap();
    exe
}

/// A command with cargo's environment for a nested build removed, so the workspace decides its own dirs.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("CARGO_") && k != "CARGO_HOME" || k == "RUSTFLAGS" || k == "GITHUB_ACTIONS" || k == "CI" {
            cmd.env_remove(&k);
        }
    }
    cmd.env("CARGO", env!("CARGO")).env_remove("GITHUB_STEP_SUMMARY")
}

/// A temporary cargo workspace.
pub struct Ws {
    pub dir: tempfile::TempDir,
    root: PathBuf,
}

impl Ws {
    /// A package `app` with a library and, with `build_script`, a build script that hangs when [`HANG`] names
    /// a socket: it connects, says `ready PID`, and blocks forever.
    pub fn new(build_script: bool) -> Self {
        Self::create(tempfile::Builder::new().prefix("safeclean-ws-").tempdir().unwrap(), build_script)
    }

    /// A package without a build script, in a new dir under `parent`.
    pub fn new_in(parent: &Path) -> Self {
        Self::create(tempfile::Builder::new().prefix("safeclean-ws-").tempdir_in(parent).unwrap(), false)
    }

    fn create(dir: tempfile::TempDir, build_script: bool) -> Self {
        // Canonical, as cargo reports it (macOS keeps temp dirs behind the /var -> /private/var symlink).
        let root = dir.path().canonicalize().unwrap();
        let root = root.as_path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(
            root.join("Cargo.toml"),
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
        )
        .unwrap();
        std::fs::write(root.join("src/lib.rs"), "pub fn answer() -> u32 { 42 }\n").unwrap();
        if build_script {
            std::fs::write(root.join("build.rs"), BUILD_RS).unwrap();
        }
        Ws { root: root.to_path_buf(), dir }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn target(&self) -> PathBuf {
        self.root().join("target")
    }

    /// `cargo ARGS` in the workspace, in a process group of its own as a shell would start it.
    pub fn cargo(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO"));
        clean_env(&mut cmd).args(args).current_dir(self.root()).stdin(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd
    }

    /// Builds once so that target/ exists and looks like cargo's.
    pub fn build(&self) {
        let out = self.cargo(&["build", "-q"]).output_bounded();
        assert!(out.status.success(), "cargo build failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `cargo safeclean ARGS` in the workspace.
    pub fn safeclean(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(safeclean_exe());
        clean_env(&mut cmd).arg("safeclean").args(args).current_dir(self.root()).stdin(Stdio::null());
        cmd
    }

    /// Runs `cargo safeclean ARGS` to the end (within [`PATIENCE`]).
    pub fn run(&self, args: &[&str]) -> Output {
        self.safeclean(args).output_bounded()
    }

    /// `cargo safeclean ARGS` run as `nobody` (uid 65534, as on Linux). root's cargo is out of nobody's reach, so
    /// `$CARGO` is [`Self::fake_cargo`]: the tool honours `$CARGO`.
    #[cfg(target_os = "linux")]
    pub fn safeclean_as_nobody(&self, args: &[&str]) -> Command {
        let mut cmd = self.safeclean(args);
        std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
        std::os::unix::process::CommandExt::gid(&mut cmd, 65534);
        cmd.env("CARGO", self.fake_cargo()).env("HOME", "/nonexistent");
        cmd
    }

    /// A cargo any user may run, for tests where the real one is out of reach or too slow: `metadata` answers for
    /// this workspace, `check` writes the uid it runs as into `target/debug/checked-by`. In the workspace root, which
    /// becomes readable by all.
    pub fn fake_cargo(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let fake = self.root().join("fake-cargo.sh");
        let meta = format!(
            "{{\"workspace_root\":\"{}\",\"target_directory\":\"{}\"}}",
            self.root().display(),
            self.target().display()
        );
        let check = format!("mkdir -p '{0}/debug' && id -u > '{0}/debug/checked-by'", self.target().display());
        // `--help` anywhere: the tool asking whether the arguments are good; nothing is built.
        let script = format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --help ] && exit 0; done\ncase \"$1\" in\n  metadata) echo '{meta}' ;;\n  check) {check} ;;\nesac\n"
        );
        std::fs::write(&fake, script).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(self.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
        fake
    }

    /// A target dir that `nobody` can read, held by a process of root's that `nobody` cannot inspect.
    #[cfg(target_os = "linux")]
    pub fn root_holder_nobody_cannot_inspect(&self, rv: &mut Rendezvous) -> Ready {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(self.target().join("debug")).unwrap();
        std::fs::write(self.target().join(".rustc_info.json"), "{}").unwrap();
        for d in [&self.target(), &self.target().join("debug")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let exe = self.install_holder("target/debug/server");
        rv.holder(&exe, &[])
    }

    /// Copies the holder fixture to `rel` inside the workspace (e.g. `target/debug/server`).
    pub fn install_holder(&self, rel: &str) -> PathBuf {
        let dest = self.root().join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(holder_exe(), &dest).unwrap();
        dest
    }
}

const BUILD_RS: &str = r#"
use std::io::Write;
fn main() {
    println!("cargo:rerun-if-env-changed=SAFECLEAN_TEST_HANG");
    println!("cargo:rerun-if-env-changed=SAFECLEAN_TEST_HANG_CHILD");
    if let Ok(sock) = std::env::var("SAFECLEAN_TEST_HANG") {
        let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connect");
        let mut child = String::new();
        if let Some(how) = std::env::var_os("SAFECLEAN_TEST_HANG_CHILD") {
            // A child that ignores SIGTERM and holds nothing under target/: only its ancestry links it to the build.
            // With `out`, it keeps a file in OUT_DIR open, as an `as` started by `cc` does.
            let script = if how == "out" {
                // Stays a shell (its name does not change under the scan), and ignores the hang-up a stopped,
                // orphaned process group gets. It waits in `read` on a FIFO it holds both ends of, not in a `sleep`
                // child: a child that ignores SIGTERM as its parent does, and that the loop starts again when it is
                // killed first, outlives the shell, and the test.
                "exec 3>\"$OUT_DIR/held.o\"; [ -p \"$OUT_DIR/wait\" ] || mkfifo \"$OUT_DIR/wait\"; \
                 exec 4<>\"$OUT_DIR/wait\"; trap '' TERM HUP; echo ready; exec >/dev/null; \
                 while :; do read -r _ <&4; done"
            } else {
                "trap '' TERM; echo ready; exec sleep 3600 >/dev/null"
            };
            let mut c = std::process::Command::new("sh")
                .args(["-c", script])
                .current_dir("/")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn");
            // Ready once it holds what it holds and ignores SIGTERM.
            let mut said = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(c.stdout.take().unwrap()), &mut said).expect("ready");
            child = format!(" child {}", c.id());
            std::mem::forget(c);
        }
        writeln!(s, "ready {}{child}", std::process::id()).expect("notify");
        loop { std::thread::park(); }
    }
}
"#;

/// A process that said it was ready; its connection stays open until it dies.
pub struct Ready {
    pub pid: u32,
    pub child: Option<u32>,
    stream: UnixStream,
}

impl Ready {
    /// Waits for the process to die (EOF on its connection); false if it is still alive after `limit`.
    pub fn dies_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut fds = [PollFd::new(&self.stream, PollFlags::IN)];
            let ts = Timespec { tv_sec: left.as_secs().try_into().unwrap(), tv_nsec: left.subsec_nanos().into() };
            match poll(&mut fds, Some(&ts)) {
                Ok(0) => return false,
                Ok(_) => {
                    let mut buf = [0u8; 64];
                    if matches!(self.stream.read(&mut buf), Ok(0) | Err(_)) {
                        return true;
                    }
                }
                Err(_) => {}
            }
        }
    }
}

/// Where fixtures say they are ready, and a record of every process to kill when the test ends.
pub struct Rendezvous {
    listener: UnixListener,
    pub path: PathBuf,
    dir: tempfile::TempDir,
    reaper: Reaper,
}

impl Rendezvous {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("safeclean-sock-").tempdir().unwrap();
        let path = dir.path().join("ready.sock");
        let listener = UnixListener::bind(&path).unwrap();
        Rendezvous { listener, path, dir, reaper: Reaper::default() }
    }

    /// Spawns `cmd` (kept for killing at the end) and waits until something connects and says ready.
    pub fn spawn(&mut self, cmd: &mut Command) -> Ready {
        let child = spawn_retrying(cmd.stdout(Stdio::null()).stderr(Stdio::piped()));
        let pid = child.id();
        self.reaper.children.push(child);
        self.accept(Some(pid))
    }

    /// Spawns the holder fixture at `exe` with `args` and `--notify`.
    pub fn holder(&mut self, exe: &Path, args: &[&str]) -> Ready {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        self.holder_os(exe, &args)
    }

    /// [`Self::holder`] with arguments that may not be UTF-8.
    pub fn holder_os(&mut self, exe: &Path, args: &[&std::ffi::OsStr]) -> Ready {
        let mut cmd = Command::new(exe);
        cmd.args(args).arg("--notify").arg(&self.path).stdin(Stdio::null());
        self.spawn(&mut cmd)
    }

    /// Starts the holder fixture at `exe` with `args` as an orphan: its parent shell exits at once, so it is no
    /// descendant of the test (a library run in this process would count the test's own children as its family).
    pub fn orphan_holder(&mut self, exe: &Path, args: &[&str]) -> Ready {
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let launch = format!("'{}' {} --notify '{}' & exit 0", exe.display(), quoted.join(" "), self.path.display());
        assert!(Command::new("sh").args(["-c", &launch]).status().unwrap().success());
        self.accept(None)
    }

    /// Lets processes of other users (the fixtures a test starts as `nobody`) connect.
    pub fn open_to_others(&self) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o777)).unwrap();
    }

    /// Waits for a connection; fails early if the process `watch` (our child) exits first.
    pub fn accept(&mut self, watch: Option<u32>) -> Ready {
        self.listener.set_nonblocking(true).unwrap();

        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    let mut line = String::new();
                    BufReader::new(&stream).read_line(&mut line).unwrap();
                    let words: Vec<&str> = line.split_whitespace().collect();
                    assert_eq!(words.first(), Some(&"ready"), "unexpected greeting {line:?}");
                    let pid: u32 = words[1].parse().unwrap();
                    let child = (words.get(2) == Some(&"child")).then(|| words[3].parse().unwrap());
                    self.reaper.remember(pid);
                    if let Some(c) = child {
                        self.reaper.remember(c);
                    }
                    return Ready { pid, child, stream };
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept: {e}"),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "nothing became ready within {PATIENCE:?}");
            // Woken by a connection, or every 10 ms to see whether the watched child exited before it connected.
            let mut fds = [PollFd::new(&self.listener, PollFlags::IN)];
            let step = left.min(Duration::from_millis(10));
            let ts = Timespec { tv_sec: 0, tv_nsec: step.subsec_nanos().into() };
            let _ = poll(&mut fds, Some(&ts));
            if watch.is_some_and(has_exited) && !fds[0].revents().contains(PollFlags::IN) {
                let child = self.reaper.children.iter_mut().find(|c| Some(c.id()) == watch).unwrap();
                let mut err = String::new();
                if let Some(e) = child.stderr.as_mut() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("process {watch:?} exited before it was ready: {:?}\n{err}", child.try_wait());
            }
        }
    }

    /// Registers a process to be killed when the test ends.
    pub fn remember(&mut self, pid: u32) {
        self.reaper.remember(pid);
    }

    /// Registers a child to be killed and reaped when the test ends.
    pub fn adopt(&mut self, child: Child) {
        self.reaper.children.push(child);
    }

    /// Spawns `cmd` with its stdio as configured, keeps the child for killing at the end, and hands back its pid
    /// and whatever pipes it has, for the test to read (with [`Lines`], which has a deadline).
    pub fn start(
        &mut self,
        cmd: &mut Command,
    ) -> (u32, Option<std::process::ChildStdout>, Option<std::process::ChildStderr>) {
        let mut child = spawn_retrying(cmd);
        let (pid, stdout, stderr) = (child.id(), child.stdout.take(), child.stderr.take());
        self.reaper.children.push(child);
        (pid, stdout, stderr)
    }

    /// Takes back the adopted child `pid` and collects its output, within [`PATIENCE`] (then it is killed).
    pub fn finish_adopted(&mut self, pid: u32) -> Output {
        let at = self.reaper.children.iter().position(|c| c.id() == pid).expect("an adopted child");
        finish_within(self.reaper.children.remove(at), PATIENCE)
    }
}

/// Spawns `cmd`, retrying while exec says the file is busy (ETXTBSY). A fixture copied just before is briefly
/// open for writing in any child that another test thread forks meanwhile, until that child's exec closes it
/// (rust-lang/rust#114554); the error passes by itself, so it is retried, a bounded number of times.
pub fn spawn_retrying(cmd: &mut Command) -> Child {
    let mut pause = Duration::from_millis(1);
    for _ in 0..12 {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => std::thread::sleep(pause),
            other => return other.unwrap(),
        }
        pause *= 2;
    }
    panic!("{cmd:?}: the executable stayed busy (ETXTBSY)");
}

/// Kills, by pid and never by name, every process a test started.
#[derive(Default)]
pub struct Reaper {
    children: Vec<Child>,
    /// Processes that are not our children (build scripts, grandchildren), by identity.
    others: Vec<Identity>,
}

impl Reaper {
    pub fn remember(&mut self, pid: u32) {
        if let Some(id) = identity(pid) {
            self.others.push(id);
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        // Only the processes we saw, by pid and start time, so a reused pid is left alone. Not by name: a fixture
        // that said it was ready as `sh` may have become `sleep` since.
        let platform = platform();
        for id in &self.others {
            let Some(now) = identity(id.pid).filter(|now| now.start_time == id.start_time) else { continue };
            if let Some(handle) = platform.open_process(&now) {
                let _ = platform.signal(&handle, Sig::Kill);
            }
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A pid as rustix takes it.
pub fn pid_of(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).unwrap()).unwrap()
}

/// Sends `sig` to our own child or a process the test just saw alive.
pub fn send(pid: u32, sig: Signal) {
    rustix::process::kill_process(pid_of(pid), sig).unwrap();
}

/// The platform the tests look at processes with: the one `SAFECLEAN_PLATFORM` asks the tool for, so that
/// identities the tests take are in the same units as the tool's.
pub fn platform() -> Platform {
    match std::env::var("SAFECLEAN_PLATFORM").as_deref() {
        Ok("portable") => Platform::portable("lsof".into()),
        _ => Platform::native(),
    }
}

/// The identity of `pid`, if it is alive and not a zombie.
pub fn identity(pid: u32) -> Option<Identity> {
    platform().process(pid).map(|p| Identity::from(&p))
}

pub fn alive(pid: u32) -> bool {
    identity(pid).is_some()
}

/// Whether the process `id` (not our child) is gone within `limit`: woken by its exit (a pidfd on Linux).
pub fn gone_within(id: &Identity, limit: Duration) -> bool {
    let platform = platform();
    let Some(handle) = platform.open_process(id) else { return true };
    let interrupt = cargo_safeclean::interrupt::Interrupt::manual().unwrap();
    !platform.wait_any(&[&handle], Instant::now() + limit, &interrupt).exited.is_empty()
}

/// Whether our child `pid` has exited (it is not reaped: its pid stays ours until someone waits for it).
pub fn has_exited(pid: u32) -> bool {
    use rustix::process::{WaitId, WaitIdOptions, waitid};
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG;
    matches!(waitid(WaitId::Pid(pid_of(pid)), options), Ok(Some(_)) | Err(_))
}

/// The JSON lines of a `--message-format json` run.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// The `summary` line of a JSON run.
pub fn summary(out: &Output) -> serde_json::Value {
    let lines = json_lines(out);
    let last = lines.last().cloned().unwrap_or_else(|| panic!("no JSON output; stderr: {}", stderr(out)));
    assert_eq!(last["reason"], "summary");
    last
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether the run's stderr has a line `LABEL: …` (`error`, `note`, `help`, as cargo labels them) that contains
/// `text`: advice is on its own line, not somewhere in the error.
pub fn says(out: &Output, label: &str, text: &str) -> bool {
    stderr(out)
        .lines()
        .any(|l| l.strip_prefix(label).and_then(|l| l.strip_prefix(": ")).is_some_and(|l| l.contains(text)))
}

/// Every file under `dir`, relative, sorted.
pub fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Running a command to the end with a deadline.
pub trait Bounded {
    /// Runs to the end and collects stdout and stderr, failing the test if that takes longer than [`PATIENCE`]
    /// (the process is then killed by pid).
    fn output_bounded(&mut self) -> Output;
}

impl Bounded for Command {
    fn output_bounded(&mut self) -> Output {
        output_within(self, PATIENCE)
    }
}

/// The lines a child writes to a pipe, read on a thread so that waiting for one always has a deadline.
pub struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
}

impl Lines {
    pub fn of(pipe: impl Read + Send + 'static) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx }
    }

    /// The first line that satisfies `wanted`; fails the test if none comes within [`PATIENCE`] or the pipe closes.
    pub fn find(&self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!("the line waited for did not come: {e}"),
            }
        }
    }

    /// Every line until the pipe closes, within [`PATIENCE`].
    pub fn rest(&self) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        let mut out = Vec::new();
        loop {
            match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => out.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return out,
                Err(e) => panic!("the pipe did not close within {PATIENCE:?}: {e}"),
            }
        }
    }
}

/// Runs `cmd` to the end, failing the test if it takes longer than `limit` (it is then killed by pid).
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    finish_within(child, limit)
}

/// Collects what `child` writes to its piped stdout and stderr (either may be unpiped) until it exits, failing the
/// test if that takes longer than `limit` (it is then killed by pid).
pub fn finish_within(mut child: Child, limit: Duration) -> Output {
    let pid = child.id();
    // Read the pipes on threads so a chatty child cannot block on a full pipe while we wait.
    let so = child.stdout.take();
    let se = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(mut so) = so {
            let _ = so.read_to_end(&mut v);
        }
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(mut se) = se {
            let _ = se.read_to_end(&mut v);
        }
        v
    });
    let exited = exits_within(pid, limit);
    if !exited {
        // Our own unreaped child: its pid cannot have been reused.
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let out = Output { status, stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap() };
    assert!(exited, "process {pid} did not finish within {limit:?}; stderr:\n{}", stderr(&out));
    out
}

/// Whether our child `pid` exits (or has exited) within `limit`; it is not reaped. Checked every millisecond:
/// what is waited for is an exit, with a deadline, not a readiness guessed by a sleep.
pub fn exits_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if has_exited(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Ready {
    /// The connection, for reading what the process says after `ready`.
    pub fn into_stream(self) -> UnixStream {
        self.stream
    }
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Mounts made by a test under one dir, all unmounted (lazily, deepest first) when the test ends, pass or fail.
#[cfg(target_os = "linux")]
pub struct MountGuard(PathBuf);

#[cfg(target_os = "linux")]
impl MountGuard {
    pub fn under(dir: &Path) -> Self {
        MountGuard(dir.to_path_buf())
    }

    fn mount(args: &[&std::ffi::OsStr]) {
        let ok = Command::new("mount").args(args).status().unwrap();
        assert!(ok.success(), "mount {args:?} failed");
    }

    /// Mounts a tmpfs at `at`, which must lie under the guarded dir.
    pub fn tmpfs(&self, at: &Path) {
        assert!(at.starts_with(&self.0));
        std::fs::create_dir_all(at).unwrap();
        Self::mount(&["-t".as_ref(), "tmpfs".as_ref(), "tmpfs".as_ref(), at.as_os_str()]);
    }

    /// Bind-mounts `src` (a dir or a file, usually on the same filesystem) at `at`, under the guarded dir.
    pub fn bind(&self, src: &Path, at: &Path) {
        assert!(at.starts_with(&self.0));
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        if src.is_dir() {
            std::fs::create_dir_all(at).unwrap();
        } else {
            std::fs::write(at, "").unwrap();
        }
        Self::mount(&["--bind".as_ref(), src.as_os_str(), at.as_os_str()]);
    }

    /// Every mount point under the guarded dir now (they move with the dirs they are in).
    pub fn points(&self) -> Vec<PathBuf> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<PathBuf> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(PathBuf::from)
            .filter(|p| p.starts_with(&self.0))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        points
    }

    pub fn unmount_all(&self) {
        for p in self.points() {
            let _ = Command::new("umount").arg("-l").arg(p).status();
        }
    }
}

#[cfg(target_os = "linux")]
impl Drop for MountGuard {
    fn drop(&mut self) {
        self.unmount_all();
    }
}
