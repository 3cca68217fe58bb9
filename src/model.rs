//! The plain data that stages hand to each other: processes, the handles they hold, and what happened to them.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// A process as seen at scan time. `(pid, start_time)` is its identity: a pid alone can be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    /// Start time in clock ticks since boot (Linux `stat` field 22); 0 where the platform cannot tell.
    pub start_time: u64,
    /// The short name (`comm` on Linux).
    pub name: String,
    pub cmdline: Vec<String>,
    pub exe: Option<PathBuf>,
    pub uid: Option<u32>,
}

impl Process {
    /// The name to show and to classify by: the exe's file name beats `comm`, which Linux cuts at 15 bytes.
    #[must_use]
    pub fn display_name(&self) -> &str {
        self.exe
            .as_deref()
            .and_then(|e| e.file_name())
            .and_then(|n| n.to_str())
            .or_else(|| self.cmdline.first().map(|c| c.rsplit('/').next().unwrap_or(c)))
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.name)
    }
}

/// How a process holds something inside the target or build dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HandleKind {
    Lock,
    Exe,
    Cwd,
    Root,
    Fd,
    Mmap,
}

impl HandleKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            HandleKind::Lock => "lock",
            HandleKind::Exe => "exe",
            HandleKind::Cwd => "cwd",
            HandleKind::Root => "root",
            HandleKind::Fd => "fd",
            HandleKind::Mmap => "mmap",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle {
    pub kind: HandleKind,
    pub path: PathBuf,
}

/// What a holder is, which decides what happens to it (see the policy table in `DESIGN.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cargo,
    Rustc,
    BuildScript,
    TargetBinary,
    BuildChild,
    Ide,
    Other,
}

impl Kind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Cargo => "cargo",
            Kind::Rustc => "rustc",
            Kind::BuildScript => "build-script",
            Kind::TargetBinary => "target-binary",
            Kind::BuildChild => "build-child",
            Kind::Ide => "ide",
            Kind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Terminate,
    Spare,
}

/// Why a holder is spared, or that it is never to be signalled whatever the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpareReason {
    /// Spared by the default policy; `--all-holders` terminates it.
    Policy,
    /// This process, an ancestor of it, pid 1 or a kernel thread.
    Protected,
}

/// What happened to a holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    ExitedAfterSigterm,
    Killed,
    Survived,
    Spared,
    AlreadyGone,
    WouldTerminate,
    WouldSpare,
}

impl Outcome {
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::ExitedAfterSigterm => "exited-after-sigterm",
            Outcome::Killed => "killed",
            Outcome::Survived => "survived",
            Outcome::Spared => "spared",
            Outcome::AlreadyGone => "already-gone",
            Outcome::WouldTerminate => "would-terminate",
            Outcome::WouldSpare => "would-spare",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a holder relates to the rest of the process tree, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// Its parent is alive: `child of cargo pid 812`.
    ChildOf { pid: u32, name: String },
    /// Reparented to init or a subreaper after the process that started it died.
    Orphaned,
}

/// A process that holds something inside the target or build dir, or (kind `build-child`) belongs to one that does.
#[derive(Debug, Clone)]
pub struct Holder {
    pub process: Process,
    pub handles: Vec<Handle>,
    pub kind: Kind,
    pub verdict: Verdict,
    pub spare_reason: Option<SpareReason>,
    pub relation: Option<Relation>,
    /// For `build-child`: the holder it descends from or whose process group it is in.
    pub via: Option<u32>,
    pub outcome: Option<Outcome>,
    /// Why a holder survived, for the report.
    pub note: Option<String>,
}

/// Files and bytes removed by the purge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    pub files: u64,
    pub bytes: u64,
    pub duration_ms: u64,
}
