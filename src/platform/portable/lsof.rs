//! Holders from `lsof -F` output, the way to see them on macOS.
//!
//! `lsof` is run over the whole system (not `+D`, which walks the tree and exits 1 even when it prints holders)
//! and its field output is filtered by path here, exactly as the `/proc` backend filters.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

use crate::model::{Found, Handle, HandleKind, Roots, Table};
use crate::platform::{ScanError, strip_deleted};

/// Runs `program -n -P -w -F pfln` and keeps the handles under the roots.
pub fn scan(program: &OsStr, roots: &Roots, exclude: u32, table: &Table) -> Result<Vec<Found>, ScanError> {
    let out = Command::new(program)
        .args(["-n", "-P", "-w", "-F", "pfln"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|source| ScanError::LsofSpawn { program: program.to_os_string(), source })?;
    // lsof exits 1 whenever one process could not be read; only output without a single process is a failure.
    if out.stdout.is_empty() {
        return Err(ScanError::LsofSilent { program: program.to_os_string(), status: out.status });
    }
    let mut by_pid: BTreeMap<u32, Vec<Handle>> = BTreeMap::new();
    for (pid, handle) in parse(&out.stdout) {
        if pid != exclude && roots.contains(&handle.path) {
            by_pid.entry(pid).or_default().push(handle);
        }
    }
    Ok(by_pid
        .into_iter()
        .filter_map(|(pid, handles)| Some(Found { process: table.procs.get(&pid)?.clone(), handles }))
        .collect())
}

/// Parses `-F pfln` output into (pid, handle) pairs. Each line starts with its field letter; a `p` line starts a
/// process, an `f` line a file of it, and `l`/`n` describe that file.
pub fn parse(text: &[u8]) -> Vec<(u32, Handle)> {
    let mut out = Vec::new();
    let mut pid = None;
    let mut fd: &[u8] = b"";
    let mut locked = false;
    for line in text.split(|b| *b == b'\n') {
        let Some((&tag, value)) = line.split_first() else { continue };
        match tag {
            b'p' => pid = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()),
            b'f' => {
                fd = value;
                locked = false;
            }
            b'l' => locked = matches!(value, b"W" | b"w" | b"R" | b"r" | b"U" | b"u" | b"x" | b"X"),
            b'n' => {
                let (Some(pid), Some(kind)) = (pid, kind_of(fd, locked)) else { continue };
                let path = strip_deleted(OsStr::from_bytes(value).to_os_string());
                if path.is_absolute() {
                    out.push((pid, Handle { kind, path }));
                }
            }
            _ => {}
        }
    }
    out
}

fn kind_of(fd: &[u8], locked: bool) -> Option<HandleKind> {
    Some(match fd {
        b"cwd" => HandleKind::Cwd,
        b"rtd" => HandleKind::Root,
        b"txt" => HandleKind::Exe,
        b"mem" | b"DEL" => HandleKind::Mmap,
        _ if fd.first().is_some_and(u8::is_ascii_digit) => {
            if locked {
                HandleKind::Lock
            } else {
                HandleKind::Fd
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_field_output() {
        let text = b"p42\nfcwd\nl \nn/t\nftxt\nl \nn/t/debug/app\nfmem\nl \nn/t/x.so\nf3\nlW\nn/t/debug/.cargo-lock\nf4\nl \nn/t/log (deleted)\nf5\nl \nnpipe\np43\nfrtd\nn/\n";
        let got = parse(text);
        let kinds: Vec<(u32, HandleKind, &str)> =
            got.iter().map(|(p, h)| (*p, h.kind, h.path.to_str().unwrap())).collect();
        assert_eq!(
            kinds,
            vec![
                (42, HandleKind::Cwd, "/t"),
                (42, HandleKind::Exe, "/t/debug/app"),
                (42, HandleKind::Mmap, "/t/x.so"),
                (42, HandleKind::Lock, "/t/debug/.cargo-lock"),
                (42, HandleKind::Fd, "/t/log"),
                (43, HandleKind::Root, "/"),
            ]
        );
    }
}
