//! Test fixture: another user who controls names the tool acts on, and changes them as fast as it can.
//!
//! `safeclean-test-attacker --notify SOCKET MODE ARGS…`, usually started as `nobody`:
//!
//! - `swap DIR NAME DEST`: in DIR, forever: move NAME aside, put a symlink to DEST in its place, then put NAME back;
//! - `exchange DIR NAME DEST`: in DIR, forever: exchange NAME with a symlink to DEST in one step each time, so that
//!   at any moment NAME is the one or the other;
//! - `plant DIR SUFFIX DEST`: in DIR, forever: every entry whose name ends with SUFFIX (a dir the tool is about to
//!   make, like `target.safeclean-ID-new`) is moved aside and replaced by a symlink to DEST.
//!
//! It says `ready PID` once it is looping and keeps the connection open, so the test learns of its death by EOF.

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
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;

    pub fn main() {
        let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
        assert!(args.len() >= 2 && args[0] == "--notify", "usage: --notify SOCKET MODE ARGS…");
        let mut sock = UnixStream::connect(&args[1]).expect("connect to the test's socket");
        let rest = args.split_off(2);
        let mode = rest.first().and_then(|m| m.to_str()).unwrap_or_default().to_owned();
        let arg = |i: usize| PathBuf::from(rest.get(i).unwrap_or_else(|| panic!("{mode} needs {i} arguments")));
        let (dir, name, dest) = (arg(1), arg(2), arg(3));
        let mut said = false;
        let mut ready = |sock: &mut UnixStream| {
            if !std::mem::replace(&mut said, true) {
                writeln!(sock, "ready {}", std::process::id()).expect("notify");
            }
        };
        match mode.as_str() {
            "swap" => {
                let (real, aside) = (dir.join(&name), dir.join(format!("{}.attacker", name.display())));
                loop {
                    if std::fs::rename(&real, &aside).is_ok() {
                        let _ = std::os::unix::fs::symlink(&dest, &real);
                        let _ = std::fs::remove_file(&real);
                        let _ = std::fs::rename(&aside, &real);
                    }
                    ready(&mut sock);
                }
            }
            "exchange" => {
                let (real, link) = (dir.join(&name), dir.join(format!("{}.attacker-link", name.display())));
                std::os::unix::fs::symlink(&dest, &link).expect("symlink");
                loop {
                    let _ = rustix::fs::renameat_with(
                        rustix::fs::CWD,
                        &real,
                        rustix::fs::CWD,
                        &link,
                        rustix::fs::RenameFlags::EXCHANGE,
                    );
                    ready(&mut sock);
                }
            }
            "plant" => {
                let suffix = name.as_os_str().as_bytes().to_vec();
                loop {
                    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                        let n = entry.file_name();
                        if n.as_bytes().ends_with(&suffix) && entry.file_type().is_ok_and(|t| t.is_dir()) {
                            let mut stolen = n.clone();
                            stolen.push(".stolen");
                            if std::fs::rename(entry.path(), dir.join(stolen)).is_ok() {
                                let _ = std::os::unix::fs::symlink(&dest, entry.path());
                            }
                        }
                    }
                    ready(&mut sock);
                }
            }
            other => panic!("unknown mode {other}"),
        }
    }
}
