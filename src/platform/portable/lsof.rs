//! Holders from `lsof -F` output, the way to see them on macOS.
//!
//! `lsof` is run over the whole system (not `+D`, which walks the tree and exits 1 even when it prints holders)
//! and its field output is filtered by path here, exactly as the `/proc` backend filters.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::model::{FileId, Found, Handle, HandleKind, Hold, Roots, Table};
use crate::platform::{ScanError, strip_deleted};

/// What `scan` found: the holders, and the processes something of which could not be named for sure.
pub type Scanned = (Vec<Found>, Vec<(u32, String, String)>);

/// Runs `program -n -P -w -F pfDiln` and keeps the handles under the roots. A name is matched as the bytes it
/// really is: one lsof prints ambiguously (a control byte as `^X`) is confirmed by the device and inode lsof
/// reports, or reported as unnamed, never guessed. A lock counts only where it is one cargo takes (on Linux,
/// `/proc/locks` says whether it is an `flock`; lsof does not).
pub fn scan(program: &OsStr, roots: &Roots, exclude: u32, table: &Table) -> Result<Scanned, ScanError> {
    let out = Command::new(program)
        .args(["-n", "-P", "-w", "-F", "pfDiln"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|source| ScanError::LsofSpawn { program: program.to_os_string(), source })?;
    // lsof exits 1 whenever one process could not be read; only output without a single process is a failure.
    if out.stdout.is_empty() {
        return Err(ScanError::LsofSilent { program: program.to_os_string(), status: out.status });
    }
    let flocks = flocked();
    let mut by_pid: BTreeMap<u32, Vec<Handle>> = BTreeMap::new();
    let mut unnamed = Vec::new();
    let name = |pid: u32| table.procs.get(&pid).map(|p| p.name.clone()).unwrap_or_default();
    let files = parse(&out.stdout);
    for f in &files.files {
        if f.pid == exclude {
            continue;
        }
        let path = match confirmed(f) {
            Named::Exactly(path) => path,
            Named::Unsure(guesses) => {
                if guesses.iter().any(|g| roots.contains(g)) {
                    unnamed.push((f.pid, name(f.pid), "holds a file whose name lsof cannot print exactly".into()));
                }
                continue;
            }
        };
        if !roots.contains(&path) {
            continue;
        }
        let hold = f.lock.filter(|_| flocks.as_ref().is_none_or(|set| f.id.is_some_and(|id| set.contains(&id))));
        let kind = match (f.kind, hold) {
            (HandleKind::Fd, Some(_)) => HandleKind::Lock,
            (kind, _) => kind,
        };
        by_pid.entry(f.pid).or_default().push(Handle { kind, path, hold });
    }
    // A process lsof read but whose current dir it could not name (a path too long for it) may be in a root.
    for pid in files.without_cwd {
        if pid != exclude && table.procs.contains_key(&pid) {
            unnamed.push((pid, name(pid), "has a current dir lsof could not name (a path too long?)".into()));
        }
    }
    let found = by_pid
        .into_iter()
        .filter_map(|(pid, handles)| Some(Found { process: table.procs.get(&pid)?.clone(), handles }))
        .collect();
    Ok((found, unnamed))
}

/// One file of one process, as lsof printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub pid: u32,
    pub kind: HandleKind,
    /// The name with lsof's escapes undone (still ambiguous where it printed `^X`).
    pub name: Vec<u8>,
    /// Device and inode, where lsof printed them.
    pub id: Option<FileId>,
    pub lock: Option<Hold>,
}

/// What [`parse`] read.
#[derive(Debug, Default)]
pub struct Files {
    pub files: Vec<File>,
    /// Processes with files listed but no current dir: lsof could not read or name it.
    pub without_cwd: Vec<u32>,
}

/// A name as lsof printed it, confirmed.
enum Named {
    Exactly(PathBuf),
    /// Not confirmed: each reading it could be.
    Unsure(Vec<PathBuf>),
}

/// The path a file really has. A name with `^` may be a control byte lsof printed as `^X`, or a `^` and a letter:
/// each reading is looked up, and only the one whose device and inode are the ones lsof reported is taken.
fn confirmed(f: &File) -> Named {
    let literal = strip_deleted(OsStr::from_bytes(&f.name).to_os_string());
    if !f.name.contains(&b'^') {
        return Named::Exactly(literal);
    }
    let readings = readings(&f.name);
    let matches: Vec<&PathBuf> = readings
        .iter()
        .filter(|p| {
            let st = std::fs::symlink_metadata(p);
            f.id.is_some_and(|id| st.is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == id.ino))
        })
        .collect();
    match matches[..] {
        [one] => Named::Exactly(one.clone()),
        _ => Named::Unsure(readings),
    }
}

/// Every way `name` can be read, where each `^X` is either itself or the control byte lsof prints that way (at most
/// 256 readings; a name with more `^` than that is only read literally and as all control bytes).
fn readings(name: &[u8]) -> Vec<PathBuf> {
    let carets: Vec<usize> = (0..name.len().saturating_sub(1))
        .filter(|&i| name[i] == b'^' && matches!(name[i + 1], b'@'..=b'_' | b'?'))
        .collect();
    let control = |c: u8| if c == b'?' { 0x7f } else { c - b'@' };
    let choices: Vec<u32> = if carets.len() <= 8 { (0..1u32 << carets.len()).collect() } else { vec![0, u32::MAX] };
    let mut out = Vec::new();
    for mask in choices {
        let mut bytes = Vec::with_capacity(name.len());
        let mut i = 0;
        while i < name.len() {
            match carets.iter().position(|&c| c == i) {
                Some(k) if mask & (1 << k.min(31)) != 0 => {
                    bytes.push(control(name[i + 1]));
                    i += 2;
                }
                _ => {
                    bytes.push(name[i]);
                    i += 1;
                }
            }
        }
        out.push(strip_deleted(OsStr::from_bytes(&bytes).to_os_string()));
    }
    out
}

/// Where `/proc/locks` can be read (Linux), the files held by an `flock`, the only kind that blocks cargo; `None`
/// elsewhere (macOS's lsof shows no lock state to confirm).
fn flocked() -> Option<std::collections::HashSet<FileId>> {
    crate::platform::native::flocked_files()
}

/// Parses `-F pfDiln` output. Each line starts with its field letter; a `p` line starts a process, an `f` line a
/// file of it, and `D`, `i`, `l`, `n` describe that file (`n` ends it).
pub fn parse(text: &[u8]) -> Files {
    let mut out = Files::default();
    let mut pid = None;
    let (mut fd, mut dev, mut ino): (&[u8], Option<u64>, Option<u64>) = (b"", None, None);
    let mut locked = None;
    // Per process: whether lsof listed any file of it, and its current dir.
    let (mut listed, mut has_cwd) = (false, false);
    let end_process = |pid: Option<u32>, listed: bool, has_cwd: bool, out: &mut Files| {
        if let Some(p) = pid.filter(|_| listed && !has_cwd) {
            out.without_cwd.push(p);
        }
    };
    for line in text.split(|b| *b == b'\n') {
        let Some((&tag, value)) = line.split_first() else { continue };
        match tag {
            b'p' => {
                end_process(pid, listed, has_cwd, &mut out);
                pid = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
                (listed, has_cwd) = (false, false);
            }
            b'f' => {
                fd = value;
                (dev, ino, locked) = (None, None, None);
                listed = true;
                has_cwd |= value == b"cwd";
            }
            b'D' => {
                dev = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok());
            }
            b'i' => ino = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()),
            b'l' => locked = lock_of(value),
            b'n' => {
                let (Some(pid), Some(kind)) = (pid, kind_of(fd)) else { continue };
                let name = unescape(value);
                if name.first() == Some(&b'/') {
                    let id = ino.map(|ino| FileId { dev: dev.unwrap_or(0), ino });
                    out.files.push(File { pid, kind, name, id, lock: locked });
                }
            }
            _ => {}
        }
    }
    end_process(pid, listed, has_cwd, &mut out);
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

fn kind_of(fd: &[u8]) -> Option<HandleKind> {
    Some(match fd {
        b"cwd" => HandleKind::Cwd,
        b"rtd" => HandleKind::Root,
        b"txt" => HandleKind::Exe,
        b"mem" | b"DEL" => HandleKind::Mmap,
        _ if fd.first().is_some_and(u8::is_ascii_digit) => HandleKind::Fd,
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
        let text = b"p42\nfcwd\nl \nn/t\nftxt\nl \nn/t/debug/app\nfmem\nl \nn/t/x.so\nf3\nD0xfe00\ni77\nlW\nn/t/debug/.cargo-lock\nf4\nl \nn/t/log (deleted)\nf5\nl \nnpipe\np43\nfrtd\nn/\n";
        let got = parse(text);
        let kinds: Vec<(u32, HandleKind, &[u8], bool)> =
            got.files.iter().map(|f| (f.pid, f.kind, f.name.as_slice(), f.lock.is_some())).collect();
        assert_eq!(
            kinds,
            vec![
                (42, HandleKind::Cwd, &b"/t"[..], false),
                (42, HandleKind::Exe, b"/t/debug/app", false),
                (42, HandleKind::Mmap, b"/t/x.so", false),
                (42, HandleKind::Fd, b"/t/debug/.cargo-lock", true),
                (42, HandleKind::Fd, b"/t/log (deleted)", false),
                (43, HandleKind::Root, b"/", false),
            ]
        );
        assert_eq!(got.files[3].id, Some(FileId { dev: 0xfe00, ino: 77 }));
        assert_eq!(got.without_cwd, [43], "lsof named no current dir of 43");
    }

    #[test]
    fn a_name_printed_with_a_caret_is_taken_only_as_what_its_inode_confirms() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        // Two dirs lsof prints alike: `w^As` (a caret and a letter) and `w\x01s` (a control byte).
        std::fs::create_dir(d.join("w^As")).unwrap();
        std::fs::create_dir(d.join(OsStr::from_bytes(b"w\x01s"))).unwrap();
        let printed = format!("{}/w^As", d.display()).into_bytes();
        let ino = |p: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let file = |i| File {
            pid: 1,
            kind: HandleKind::Cwd,
            name: printed.clone(),
            id: Some(FileId { dev: 0, ino: i }),
            lock: None,
        };
        let control = d.join(OsStr::from_bytes(b"w\x01s"));
        assert!(matches!(confirmed(&file(ino(&control))), Named::Exactly(p) if p == control));
        assert!(matches!(confirmed(&file(ino(&d.join("w^As")))), Named::Exactly(p) if p == d.join("w^As")));
        assert!(matches!(confirmed(&file(1)), Named::Unsure(r) if r.len() == 2), "neither: never guessed");
    }
}
