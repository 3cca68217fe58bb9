//! Test fixture for Windows, where the tests run under Wine and cargo itself cannot run. One program, two roles:
//!
//! - as cargo (`metadata …`, `check …`): answers `cargo metadata --no-deps --format-version 1` for the workspace in
//!   its current dir (`--target-dir`, `--manifest-path` and `CARGO_TARGET_DIR` honoured), and "builds" for `check`:
//!   it makes `<target>\debug\.fingerprint\` with a file in it, and says `Finished` on stderr; `--help` succeeds;
//!   `SAFECLEAN_TEST_CHECK_EXIT=N` makes the check exit N;
//! - as a holder (`hold [--open F]… [--lock F] [--cwd D] [--child] [--exit | --forever]`): opens each F and keeps it open
//!   (without share-delete, as most programs do), locks each `--lock` F as cargo does, changes into D, with `--child` starts another holder of the same
//!   files first (one that waits forever), writes `ready PID…` (its pid, then its child's) on stdout, and waits for
//!   stdin to close; with `--exit` it exits at once instead, leaving its child an orphan; with `--forever` it waits
//!   to be stopped.

// Windows only: it stands in for cargo and holds files there.
#[cfg(windows)]
fn main() {
    imp::main();
}

/// Not built for Unix tests: exits with a usage error so a test that starts it fails loudly.
#[cfg(not(windows))]
fn main() {
    std::process::exit(2);
}

#[cfg(windows)]
mod imp {
    use std::ffi::OsString;
    use std::io::{Read, Write};
    use std::os::windows::fs::OpenOptionsExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    // std's `FILE_SHARE_READ | FILE_SHARE_WRITE`, without `FILE_SHARE_DELETE` (which std's default adds).
    const FILE_SHARE_READ: u32 = 1;
    const FILE_SHARE_WRITE: u32 = 2;

    pub fn main() {
        let args: Vec<OsString> = std::env::args_os().skip(1).collect();
        let first = args.first().and_then(|a| a.to_str()).unwrap_or_default().to_owned();
        match first.as_str() {
            "metadata" => metadata(&args[1..]),
            "check" | "build" => check(&args[1..]),
            "hold" => hold(&args[1..]),
            _ => {
                let _ = writeln!(std::io::stderr(), "error: unknown command {first:?}");
                std::process::exit(2);
            }
        }
    }

    /// The value after `flag`, as `--flag V` or `--flag=V`.
    fn value(args: &[OsString], flag: &str) -> Option<PathBuf> {
        let text: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let at = text.iter().position(|a| a == flag)?;
        text.get(at + 1)
            .map(PathBuf::from)
            .or_else(|| text.iter().find_map(|a| a.strip_prefix(&format!("{flag}=")).map(PathBuf::from)))
    }

    fn workspace(args: &[OsString]) -> PathBuf {
        match value(args, "--manifest-path") {
            Some(m) => m.parent().map(Path::to_path_buf).unwrap_or_default(),
            None => std::env::current_dir().expect("a current dir"),
        }
    }

    fn target_dir(args: &[OsString], root: &Path) -> PathBuf {
        value(args, "--target-dir")
            .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
            .map_or_else(|| root.join("target"), |t| root.join(t))
    }

    fn metadata(args: &[OsString]) {
        let root = workspace(args);
        if !root.join("Cargo.toml").is_file() {
            let _ = writeln!(std::io::stderr(), "error: could not find `Cargo.toml` in `{}`", root.display());
            std::process::exit(101);
        }
        let target = target_dir(args, &root);
        let json = format!(
            r#"{{"packages":[],"workspace_members":[],"workspace_root":{},"target_directory":{},"build_directory":{},"version":1}}"#,
            quote(&root),
            quote(&target),
            quote(&target)
        );
        writeln!(std::io::stdout(), "{json}").expect("write the metadata");
    }

    fn quote(p: &Path) -> String {
        let text = p.to_string_lossy();
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    }

    fn check(args: &[OsString]) {
        if args.iter().any(|a| a == "--help") {
            return;
        }
        let root = workspace(args);
        let fingerprint = target_dir(args, &root).join("debug").join(".fingerprint");
        std::fs::create_dir_all(&fingerprint).expect("make the fingerprint dir");
        std::fs::write(fingerprint.join("app-1"), "fresh").expect("write a fingerprint");
        let code = std::env::var("SAFECLEAN_TEST_CHECK_EXIT").ok().and_then(|c| c.parse().ok()).unwrap_or(0);
        let _ = writeln!(std::io::stderr(), "    Finished `dev` profile [unoptimized + debuginfo] target(s) in 0.01s");
        std::process::exit(code);
    }

    #[expect(clippy::zombie_processes, reason = "the child holder is left behind on purpose: an orphan")]
    fn hold(args: &[OsString]) {
        let mut held = Vec::new();
        let mut pids = vec![std::process::id()];
        let mut rest = args.iter();
        let mut child_args = vec![OsString::from("hold"), OsString::from("--forever")];
        let (mut with_child, mut forever, mut exit) = (false, false, false);
        while let Some(arg) = rest.next() {
            match arg.to_str().unwrap_or_default() {
                "--open" => {
                    let f = rest.next().expect("--open F");
                    // No share-delete, as most programs open files: the file cannot be removed while it is open.
                    let file = std::fs::OpenOptions::new()
                        .read(true)
                        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
                        .open(f)
                        .expect("open the file to hold");
                    held.push(file);
                    child_args.extend(["--open".into(), f.clone()]);
                }
                "--lock" => {
                    let f = rest.next().expect("--lock F");
                    // As cargo locks its lock files on Windows: LockFileEx, exclusive, over the whole file.
                    let file = std::fs::OpenOptions::new().read(true).write(true).open(f).expect("open the lock file");
                    file.lock().expect("lock the file");
                    held.push(file);
                }
                "--cwd" => std::env::set_current_dir(rest.next().expect("--cwd D")).expect("change into the dir"),
                "--child" => with_child = true,
                "--forever" => forever = true,
                "--exit" => exit = true,
                other => panic!("unknown option {other}"),
            }
        }
        if with_child {
            let exe = std::env::current_exe().expect("this exe");
            let mut c = Command::new(exe)
                .args(&child_args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start the child holder");
            let mut line = [0u8; 64];
            let n = c.stdout.as_mut().expect("piped").read(&mut line).expect("read the child's ready line");
            assert!(line[..n].starts_with(b"ready"), "the child did not say ready");
            pids.push(c.id());
        }
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let mut out = std::io::stdout();
        writeln!(out, "ready {}", pids.join(" ")).expect("say ready");
        out.flush().expect("flush");
        if exit {
            // Leaves the child behind, an orphan holding what it holds.
            return;
        }
        if forever {
            loop {
                std::thread::park();
            }
        }
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        drop(held);
    }
}
