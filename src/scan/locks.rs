//! `/proc/locks`: which files are locked, by device and inode.

use std::collections::HashSet;

/// A locked file, as `/proc/locks` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockedFile {
    pub major: u32,
    pub minor: u32,
    pub inode: u64,
}

impl LockedFile {
    /// The same identity from a `stat` result.
    #[must_use]
    pub fn from_stat(dev: u64, inode: u64) -> Self {
        LockedFile { major: rustix::fs::major(dev), minor: rustix::fs::minor(dev), inode }
    }
}

/// Parses `/proc/locks`. Waiters (`->` lines) hold nothing and are skipped. The pid column is not used: it can
/// name a process that took the lock and exited while a child still holds the file.
#[must_use]
pub fn parse_locks(text: &str) -> HashSet<LockedFile> {
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace().skip(1);
            let first = cols.next()?;
            if first == "->" {
                return None;
            }
            // FLOCK ADVISORY WRITE pid maj:min:inode start end
            let id = cols.nth(3)?;
            let mut parts = id.split(':');
            let major = u32::from_str_radix(parts.next()?, 16).ok()?;
            let minor = u32::from_str_radix(parts.next()?, 16).ok()?;
            let inode = parts.next()?.parse().ok()?;
            Some(LockedFile { major, minor, inode })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_holders_and_skips_waiters() {
        let text = "1: FLOCK  ADVISORY  WRITE 1817 fe:00:10010689 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 1900 fe:00:10010689 0 EOF\n\
                    2: POSIX  ADVISORY  READ 12 00:1a:77 0 EOF\n";
        let locks = parse_locks(text);
        assert_eq!(locks.len(), 2);
        assert!(locks.contains(&LockedFile { major: 0xfe, minor: 0, inode: 10_010_689 }));
        assert!(locks.contains(&LockedFile { major: 0, minor: 0x1a, inode: 77 }));
        assert_eq!(LockedFile::from_stat(65024, 5), LockedFile { major: 0xfe, minor: 0, inode: 5 });
    }
}
