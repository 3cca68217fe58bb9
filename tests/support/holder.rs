//! Test fixture: a process that holds things in a target dir, then reports ready and waits to be killed.
//!
//! `safeclean-test-holder --notify SOCKET [--open F] [--lock F] [--mmap F] [--cwd D] [--chroot DIR]
//! [--ignore-term] [--ignore-int] [--tag TEXT] [--report-exit] [--wait-lock F [--keep]] [--flock-shared P]
//! [--posix-lock F] [--cwd-deep D]`. With `--flock-shared` it takes a shared `flock` on P (a file or a dir) opened read-only, as any
//! user who can read P can; with `--posix-lock`, a POSIX (`fcntl`) write lock on F, which no `flock` conflicts with
//! on Linux. With `--keep`, a `--wait-lock` keeps the lock it got, and runs on, as a build making progress does. With `--wait-lock` it blocks in
//! `flock` on F after saying ready, then writes `locked\n` and exits once it has the lock. It connects to the Unix socket SOCKET first (a
//! chroot would put it out of reach), does the setup, then writes `ready PID\n` and keeps the connection open, so
//! the test learns of readiness without sleeping and of death by EOF. With `--report-exit` it exits on SIGTERM and
//! first writes `exit NANOS\n`.

// Unix only: what it does needs Unix fds, signals and users.
#[cfg(unix)]
fn main() {
    imp::main();
}

/// Not built for Windows tests yet: exits with a usage error so a test that starts it fails loudly.
#[cfg(not(unix))]
fn main() {
    std::process::exit(2);
}

#[cfg(unix)]
mod imp {
    use std::ffi::OsString;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    pub fn main() {
        // Paths may be any bytes (tests hold files whose names are not UTF-8).
        let all: Vec<OsString> = std::env::args_os().skip(1).collect();
        // Connect first: after `--chroot` the socket's path is out of reach.
        let path =
            all.windows(2).find(|w| w[0] == "--notify").map(|w| w[1].clone()).expect("--notify SOCKET is required");
        let mut sock = UnixStream::connect(&path).expect("connect to the test's socket");
        let mut args = all.into_iter();
        let mut files = Vec::new();
        let mut maps = Vec::new();
        let mut report_exit = false;
        let mut wait_lock = None;
        let mut keep = false;
        while let Some(arg) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| panic!("{} needs a value", arg.display()));
            match arg.to_str().unwrap_or_default() {
                "--chroot" => {
                    let dir = value();
                    rustix::process::chroot(dir.as_os_str()).expect("chroot (needs root)");
                    std::env::set_current_dir("/").expect("chdir /");
                }
                // `--notify` was handled first; `--tag` only puts odd text into the command line.
                "--notify" | "--tag" => drop(value()),
                "--open" => files.push(open(&value())),
                "--lock" => {
                    let f = open(&value());
                    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).expect("flock");
                    files.push(f);
                }
                "--mmap" => {
                    let f = open(&value());
                    if f.metadata().expect("stat").len() == 0 {
                        (&f).write_all(b"mapped").expect("write");
                    }
                    // SAFETY: a private read-only mapping of a file only this test writes; it is never dereferenced.
                    #[expect(unsafe_code, reason = "mmap is the handle under test")]
                    let map = unsafe {
                        rustix::mm::mmap(
                            std::ptr::null_mut(),
                            6,
                            rustix::mm::ProtFlags::READ,
                            rustix::mm::MapFlags::PRIVATE,
                            &f,
                            0,
                        )
                    }
                    .expect("mmap");
                    maps.push(map as usize);
                }
                "--flock-shared" => {
                    let f = std::fs::File::open(value()).expect("open read-only");
                    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockShared).expect("flock");
                    files.push(f);
                }
                "--posix-lock" => {
                    let f = open(&value());
                    rustix::fs::fcntl_lock(&f, rustix::fs::FlockOperation::LockExclusive).expect("fcntl lock");
                    files.push(f);
                }
                "--keep" => keep = true,
                "--cwd" => std::env::set_current_dir(value()).expect("chdir"),
                // Into D, then 30 dirs of 200 bytes deeper, made on the way: a cwd longer than PATH_MAX.
                "--cwd-deep" => {
                    std::env::set_current_dir(value()).expect("chdir");
                    let name = "d".repeat(200);
                    for _ in 0..30 {
                        std::fs::create_dir(&name).expect("mkdir");
                        std::env::set_current_dir(&name).expect("chdir");
                    }
                }
                "--ignore-term" => ignore(signal_hook::consts::SIGTERM),
                "--ignore-int" => ignore(signal_hook::consts::SIGINT),
                "--report-exit" => report_exit = true,
                "--wait-lock" => wait_lock = Some(value()),
                _ => panic!("unknown option {}", arg.display()),
            }
        }
        // Registered before saying ready, so that a SIGTERM right after cannot take the default action.
        let mut exit_signals =
            report_exit.then(|| signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM]).expect("signals"));
        writeln!(sock, "ready {}", std::process::id()).expect("notify");
        if let Some(path) = wait_lock {
            let f = open(&path);
            rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).expect("flock");
            let _ = writeln!(sock, "locked");
            if !keep {
                std::process::exit(0);
            }
            files.push(f);
        }
        if let Some(signals) = &mut exit_signals {
            // Exit on SIGTERM, saying when (CLOCK_REALTIME, ns) just before: benchmarks measure how soon the tool
            // notices.
            signals.forever().next();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
            let _ = writeln!(sock, "exit {}", now.as_nanos());
            std::process::exit(0);
        }
        loop {
            std::thread::park();
        }
    }

    /// A handler that only sets a flag: the signal changes nothing.
    fn ignore(signal: i32) {
        signal_hook::flag::register(signal, std::sync::Arc::default()).expect("handle the signal");
    }

    fn open(path: &std::ffi::OsStr) -> std::fs::File {
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).expect("open")
    }
}
