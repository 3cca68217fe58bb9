//! The system's process table: who is alive, who is whose parent, and each one's identity.
//!
//! Linux reads `/proc/PID/stat`; other platforms have no backend yet and say so instead of guessing.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;

use crate::model::Process;

/// Every process visible at one moment, by pid.
#[derive(Debug, Default, Clone)]
pub struct Table {
    pub procs: HashMap<u32, Process>,
}

impl Table {
    /// The chain of parents of `pid`, nearest first, ending at pid 1 or where the chain breaks.
    #[must_use]
    pub fn ancestors(&self, pid: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = pid;
        while let Some(p) = self.procs.get(&cur) {
            if p.ppid == 0 || out.contains(&p.ppid) {
                break;
            }
            out.push(p.ppid);
            cur = p.ppid;
        }
        out
    }

    /// `pid`, its ancestors and all its descendants: a run's own family, never a holder and never signalled.
    #[must_use]
    pub fn family(&self, pid: u32) -> std::collections::HashSet<u32> {
        let mut out: std::collections::HashSet<u32> = self.ancestors(pid).into_iter().collect();
        out.insert(pid);
        let children = self.children();
        let mut stack = vec![pid];
        while let Some(p) = stack.pop() {
            for &kid in children.get(&p).into_iter().flatten() {
                if out.insert(kid) {
                    stack.push(kid);
                }
            }
        }
        out
    }

    /// Children of each pid, for walking trees downwards.
    #[must_use]
    pub fn children(&self) -> HashMap<u32, Vec<u32>> {
        let mut map: HashMap<u32, Vec<u32>> = HashMap::new();
        for p in self.procs.values() {
            map.entry(p.ppid).or_default().push(p.pid);
        }
        for kids in map.values_mut() {
            kids.sort_unstable();
        }
        map
    }
}

/// What `/proc/PID/stat` says about a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    pub name: String,
    pub state: char,
    pub ppid: u32,
    pub pgid: u32,
    pub flags: u32,
    pub start_time: u64,
}

impl Stat {
    /// Zombies hold nothing and cannot be signalled usefully: they count as gone.
    #[must_use]
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }

    /// Kernel threads (`PF_KTHREAD`) are never signalled.
    #[must_use]
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & 0x0020_0000 != 0
    }
}

/// Parses the text of `/proc/PID/stat`. The name sits in parentheses and may itself contain `)` and spaces.
#[must_use]
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let name = text[open + 1..close].to_string();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // `rest[0]` is field 3 (state); field N is `rest[N - 3]`.
    let field = |n: usize| rest.get(n - 3).copied();
    Some(Stat {
        pid,
        name,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        pgid: field(5)?.parse().ok()?,
        flags: field(9)?.parse().ok()?,
        start_time: field(22)?.parse().ok()?,
    })
}

/// Reads the stat of one process; `Ok(None)` when it no longer exists.
pub fn read_stat(pid: u32) -> io::Result<Option<Stat>> {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(t) => Ok(parse_stat(&t)),
        Err(e) if is_gone(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the process `(pid, start_time)` is still alive (a zombie is not).
#[must_use]
pub fn is_alive(pid: u32, start_time: u64) -> bool {
    matches!(read_stat(pid), Ok(Some(s)) if s.start_time == start_time && !s.is_zombie())
}

/// An error that means the process went away while we looked at it.
#[must_use]
pub fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error())
}

/// Fills in the command line and exe of a process (read only for the few that are reported).
pub fn fill_details(p: &mut Process) {
    if p.cmdline.is_empty()
        && let Ok(raw) = std::fs::read(format!("/proc/{}/cmdline", p.pid))
    {
        p.cmdline =
            raw.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
    }
    if p.exe.is_none() {
        p.exe = std::fs::read_link(format!("/proc/{}/exe", p.pid)).ok().map(|e| strip_deleted(e.into_os_string()));
    }
}

/// Linux appends ` (deleted)` to links whose target was unlinked; the path is what matters.
#[must_use]
pub fn strip_deleted(link: std::ffi::OsString) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let mut bytes = link.into_vec();
    if bytes.ends_with(b" (deleted)") {
        bytes.truncate(bytes.len() - b" (deleted)".len());
    }
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

impl From<Stat> for Process {
    fn from(s: Stat) -> Self {
        Process {
            pid: s.pid,
            ppid: s.ppid,
            pgid: s.pgid,
            start_time: s.start_time,
            name: s.name,
            cmdline: Vec::new(),
            exe: None,
            uid: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_parens_and_spaces() {
        let s = parse_stat("42 (a) b (c)) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1234 0 0").unwrap();
        assert_eq!((s.pid, s.name.as_str(), s.state, s.ppid, s.pgid), (42, "a) b (c)", 'S', 1, 42));
        assert_eq!(s.start_time, 1234);
        assert!(!s.is_kernel_thread());
        let k = parse_stat("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0").unwrap();
        assert!(k.is_kernel_thread());
    }

    #[test]
    fn reads_itself() {
        let me = read_stat(std::process::id()).unwrap().unwrap();
        assert!(is_alive(me.pid, me.start_time));
        assert!(!is_alive(me.pid, me.start_time + 1));
    }

    #[test]
    fn strips_deleted_suffix() {
        assert_eq!(strip_deleted("/t/x (deleted)".into()), PathBuf::from("/t/x"));
        assert_eq!(strip_deleted("/t/x".into()), PathBuf::from("/t/x"));
    }
}
