//! Holders from `lsof -F` output, the way to see them on macOS.
//!
//! `lsof` is run over the whole system (not `+D`, which walks the tree and exits 1 even when it prints holders)
//! and its field output is filtered by path here, exactly as the `/proc` backend filters.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

use crate::model::{Found, Handle, HandleKind, Hold, Roots, Table};
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
    let mut locked = None;
    for line in text.split(|b| *b == b'\n') {
        let Some((&tag, value)) = line.split_first() else { continue };
        match tag {
            b'p' => pid = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()),
            b'f' => {
                fd = value;
                locked = None;
            }
            b'l' => locked = lock_of(value),
            b'n' => {
                let (Some(pid), Some(kind)) = (pid, kind_of(fd, locked.is_some())) else { continue };
                let path = strip_deleted(OsStr::from_bytes(&unescape(value)).to_os_string());
                if path.is_absolute() {
                    out.push((pid, Handle { kind, path, hold: locked }));
                }
            }
            _ => {}
        }
    }
    out
}

/// Undoes lsof's escapes in a name: `\\` for a backslash, `\xHH` for a byte it cannot print, `\t` and the like
/// for control characters (lsof 4.95, measured). It also prints some control bytes as `^X`, which cannot be told
/// from a name holding `^` and a letter; those stay as printed.
fn unescape(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        let (byte, len) = match (name[i], name.get(i + 1)) {
            (b'\\', Some(b'\\')) => (b'\\', 2),
            (b'\\', Some(b'x')) => {
                match name.get(i + 2..i + 4).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()) {
                    Some(b) => (b, 4),
                    None => (b'\\', 1),
                }
            }
            (b'\\', Some(b't')) => (b'\t', 2),
            (b'\\', Some(b'n')) => (b'\n', 2),
            (b'\\', Some(b'r')) => (b'\r', 2),
            (b'\\', Some(b'b')) => (0x08, 2),
            (b'\\', Some(b'f')) => (0x0c, 2),
            (b, _) => (b, 1),
        };
        out.push(byte);
        i += len;
    }
    out
}

/// lsof's lock field: `W`/`w` (and `X`/`x`, its exclusive forms on some systems) for a write lock, `R`/`r` for a
/// read lock; a space for none. It shows only what the process owns: waiters look like openers (and macOS's lsof
/// shows no lock state at all).
fn lock_of(value: &[u8]) -> Option<Hold> {
    match value {
        b"W" | b"w" | b"X" | b"x" | b"U" | b"u" => Some(Hold::Exclusive),
        b"R" | b"r" => Some(Hold::Shared),
        _ => None,
    }
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
    fn undoes_lsofs_escapes() {
        assert_eq!(unescape(br"/t/bad\xff"), b"/t/bad\xff");
        assert_eq!(unescape(br"/t/lit\\x41"), br"/t/lit\x41");
        assert_eq!(unescape(br"/t/tab\tx"), b"/t/tab\tx");
        assert_eq!(unescape(br"/t/back\\slash"), br"/t/back\slash");
        assert_eq!(unescape("/t/uni\u{e9}".as_bytes()), "/t/uni\u{e9}".as_bytes());
        assert_eq!(unescape(br"/t/odd\q"), br"/t/odd\q");
    }

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
