//! The plain data that stages hand to each other: processes and the table they form, the dirs being scanned,
//! the handles processes hold there, what the policy decided about each holder, and what became of it.
//!
//! Nothing here does I/O except [`Roots::new`], which resolves the parents of the paths once; every type can be
//! built by hand in a test.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

/// Counters that the reporter reads while the purge runs.
#[derive(Debug, Default)]
pub struct Progress {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
}

/// A detached deleter that took over the purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    pub pid: u32,
    pub trash: Vec<PathBuf>,
    /// Where it writes what it did.
    pub log: PathBuf,
}

/// What kind of run this is (a dry run of either says what would happen and changes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stop what holds the target and build dirs, swap, purge, verify.
    Clean,
    /// Stop the owners of cargo's locks (package cache, build and artifact dirs), delete nothing, verify.
    Unlock,
    /// Remove whole build units chosen by criteria, under cargo's locks; never swap the tree; purge, verify.
    Sweep,
}

impl Mode {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Clean => "clean",
            Mode::Unlock => "unlock",
            Mode::Sweep => "sweep",
        }
    }
}

/// A process as seen at scan time. `(pid, start_time)` is its identity: a pid alone can be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    /// Start time, in the unit of the table it came from: clock ticks since boot (Linux `stat` field 22),
    /// microseconds since the epoch (macOS libproc), seconds since the epoch (sysinfo).
    pub start_time: u64,
    /// The short name (`comm` on Linux, cut at 15 bytes).
    pub name: String,
    /// Filled in only for the few processes a run may report (see `scan`), as are `exe`, `cwd` and `started_at`.
    pub cmdline: Vec<String>,
    pub exe: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    /// When it started, in seconds since the Unix epoch.
    pub started_at: Option<u64>,
    /// Stopped by a signal (Ctrl-Z) or a debugger.
    pub stopped: bool,
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

    /// Every descendant of `pid`, not `pid` itself.
    #[must_use]
    pub fn descendants(&self, pid: u32) -> HashSet<u32> {
        let children = self.children();
        let mut out = HashSet::new();
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

    /// `pid`, its ancestors and all its descendants: a run's own family, never a holder and never signalled.
    #[must_use]
    pub fn family(&self, pid: u32) -> HashSet<u32> {
        let mut out = self.descendants(pid);
        out.extend(self.ancestors(pid));
        out.insert(pid);
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

    /// The members of each process group.
    #[must_use]
    pub fn groups(&self) -> HashMap<u32, Vec<u32>> {
        let mut map: HashMap<u32, Vec<u32>> = HashMap::new();
        for p in self.procs.values() {
            map.entry(p.pgid).or_default().push(p.pid);
        }
        map
    }
}

/// The directories whose holders we look for, each under its given and its resolved path.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    paths: Vec<PathBuf>,
}

impl Roots {
    /// Every path under its given spelling and with its parent resolved (`/w/target/debug/.cargo-lock` where `/w`
    /// is a link is also matched where it really is). The last component is never followed: a name swapped for a
    /// link to `/` cannot widen what is matched to every file on the machine.
    #[must_use]
    pub fn new<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Self {
        let mut paths = Vec::new();
        for d in dirs {
            paths.push(d.to_path_buf());
            if let (Some(parent), Some(name)) = (d.parent(), d.file_name())
                && let Ok(real) = parent.canonicalize().map(|p| p.join(name))
                && real != d
            {
                paths.push(real);
            }
        }
        Roots { paths }
    }

    /// Exactly these dirs, resolved already (where opened dirs are, as the kernel names them): nothing is looked up.
    #[must_use]
    pub fn exact(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        Roots { paths: paths.into_iter().collect() }
    }

    /// Whether `path` is one of the roots or lies under one, compared by whole components.
    #[must_use]
    pub fn contains(&self, path: &Path) -> bool {
        self.paths.iter().any(|r| under(path, r))
    }

    #[must_use]
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

/// Whether `path` is `root` or lies under it, by whole components.
#[cfg(unix)]
fn under(path: &Path, root: &Path) -> bool {
    path.starts_with(root)
}

/// Whether `path` is `root` or lies under it, by whole components compared case-insensitively, as NTFS compares
/// names (`C:\W\Target\x` lies under `c:\w\target`).
#[cfg(windows)]
fn under(path: &Path, root: &Path) -> bool {
    let lower = |c: std::path::Component<'_>| c.as_os_str().to_string_lossy().to_lowercase();
    let mut path = path.components();
    root.components().all(|r| path.next().is_some_and(|p| lower(p) == lower(r)))
}

/// How a process holds something inside the target or build dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// How a process stands towards a lock on the file a handle names: only its owner holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hold {
    /// Its open file description holds the exclusive lock.
    Exclusive,
    /// It holds a shared lock, as others may.
    Shared,
    /// It is blocked in `flock`, waiting for the lock.
    Waiting,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle {
    pub kind: HandleKind,
    pub path: PathBuf,
    /// For a lock file: whether it holds or waits for the lock, where the holder source can tell.
    pub hold: Option<Hold>,
}

impl Handle {
    /// A handle that says nothing about a lock.
    #[must_use]
    pub fn new(kind: HandleKind, path: impl Into<PathBuf>) -> Self {
        Handle { kind, path: path.into(), hold: None }
    }
}

/// A process and what it holds under the roots, as the scan found it.
#[derive(Debug, Clone)]
pub struct Found {
    pub process: Process,
    pub handles: Vec<Handle>,
}

/// Processes that exist but could not be inspected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uninspectable {
    /// Owned by other users (not root, or `hidepid`).
    pub other_users: usize,
    /// Our own (or any, as root), but access was denied anyway: a sandbox, `ptrace` restrictions, a setuid
    /// program. By pid and name, since there are few and each is a surprise.
    pub own: Vec<(u32, String)>,
    /// Inspected, but something it holds could not be named for sure (a path too long to read, a name lsof cannot
    /// print exactly): by pid, name and what.
    pub unnamed: Vec<(u32, String, String)>,
}

impl Uninspectable {
    #[must_use]
    pub fn count(&self) -> usize {
        self.other_users + self.own.len() + self.unnamed.len()
    }
}

/// What a holder is, which decides what happens to it (see the policy table in the README).
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Terminate,
    Spare,
}

impl Verdict {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Terminate => "terminate",
            Verdict::Spare => "spare",
        }
    }
}

/// Why a holder is spared, or that it is never to be signalled whatever the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpareReason {
    /// Spared by the default policy; `--all-holders` terminates it.
    Policy,
    /// It only shares or waits for a lock (`--unlock` stops owners only).
    NotOwner,
    /// Pid 1, or (defensively) this run's own family.
    Protected,
}

/// What became of a holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub fn as_str(self) -> &'static str {
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

/// A process that holds something inside the target or build dir, or (kind `build-child`) belongs to one that
/// does, with what the policy decided about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub process: Process,
    pub handles: Vec<Handle>,
    pub kind: Kind,
    pub verdict: Verdict,
    pub spare_reason: Option<SpareReason>,
    pub relation: Option<Relation>,
    /// For `build-child`: the holder it descends from or whose process group it is in.
    pub via: Option<u32>,
}

/// The note of a holder that survived because Ctrl-C ended the wait for it: not one that resisted SIGKILL.
pub const INTERRUPTED: &str = "left running: the run was interrupted";

/// A holder and what became of it, as the summary reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub holder: Holder,
    pub outcome: Option<Outcome>,
    /// Why it survived, for the report.
    pub note: Option<String>,
    /// A spared holder that exited before the run ended: the summary does not call it "still running".
    pub gone: bool,
}

/// A signal the termination sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    Term,
    Cont,
    Kill,
}

impl Sig {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Sig::Term => "SIGTERM",
            Sig::Cont => "SIGCONT",
            Sig::Kill => "SIGKILL",
        }
    }
}

/// Why a signal could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalError {
    /// The process is gone (or its pid now belongs to another process).
    Gone,
    /// Not allowed (`EPERM`), or another error; the text says which.
    Denied(String),
}

/// Files and bytes removed by the purge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub files: u64,
    pub bytes: u64,
    pub duration_ms: u64,
}

/// A dir a run removes, and what is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSize {
    pub path: PathBuf,
    pub files: u64,
    pub bytes: u64,
}

/// What the check of `--if-broken` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// It passed: nothing to clean.
    Healthy,
    /// It failed with a damaged build dir's signature, pointing at `path`.
    Corrupt { signature: &'static str, path: PathBuf },
    /// It failed with errors no clean fixes.
    CodeError,
    /// It failed with an error that names `path` in the target or build dir and no signature explains: not known
    /// to be damage, nor the code's.
    Unknown { path: PathBuf },
    /// It waited on one of cargo's build or artifact dir locks, held by `holder` (if it could be seen).
    Blocked { lock: PathBuf, holder: Option<u32> },
}

impl CheckResult {
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckResult::Healthy => "healthy",
            CheckResult::Corrupt { .. } => "corrupt",
            CheckResult::CodeError => "code-error",
            CheckResult::Unknown { .. } => "unknown",
            CheckResult::Blocked { .. } => "blocked",
        }
    }
}

/// The check of `--if-broken`: what it found, and how cargo ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub result: CheckResult,
    /// cargo's exit code; `None` when it was stopped or killed by a signal.
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
}

/// How the verifying `cargo check` went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// cargo's exit code; `None` when it was ended by a signal.
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub interrupted: bool,
}

impl Verified {
    #[must_use]
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

#[cfg(test)]
impl Process {
    /// A process known only by its pid and its parent's, for tests.
    pub(crate) fn sample(pid: u32, parent: u32) -> Self {
        Process {
            pid,
            ppid: parent,
            pgid: pid,
            start_time: 1,
            name: String::new(),
            cmdline: vec![],
            exe: None,
            cwd: None,
            started_at: None,
            stopped: false,
            uid: None,
        }
    }
}

// Used by the tests of the Unix-only stages.
#[cfg(test)]
impl Holder {
    /// A holder of nothing in particular, to be terminated, for tests.
    pub(crate) fn sample(process: Process) -> Self {
        Holder {
            process,
            handles: vec![],
            kind: Kind::Cargo,
            verdict: Verdict::Terminate,
            spare_reason: None,
            relation: None,
            via: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, parent: u32) -> Process {
        Process::sample(pid, parent)
    }

    #[test]
    fn family_is_ancestors_self_and_descendants() {
        let table =
            Table { procs: [(1, 0), (5, 1), (6, 5), (7, 6), (8, 7), (9, 1)].map(|(p, pp)| (p, proc(p, pp))).into() };
        let mut family: Vec<u32> = table.family(6).into_iter().collect();
        family.sort_unstable();
        assert_eq!(family, [1, 5, 6, 7, 8]);
    }

    #[test]
    fn roots_match_whole_components() {
        let roots = Roots { paths: vec![PathBuf::from("/x/target")] };
        assert!(roots.contains(Path::new("/x/target")));
        assert!(roots.contains(Path::new("/x/target/debug/a")));
        assert!(!roots.contains(Path::new("/x/target2/debug")));
        assert!(!roots.contains(Path::new("/x")));
    }
}

/// What a file is, whatever its name: device and inode. Names can be swapped between a check and an act; what
/// was opened and checked cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

impl std::str::FromStr for FileId {
    type Err = String;

    /// `DEV:INO`, as [`FileId`]'s `Display` writes it.
    fn from_str(s: &str) -> Result<Self, String> {
        let (dev, ino) = s.split_once(':').ok_or_else(|| format!("`{s}` is not DEV:INO"))?;
        let n = |t: &str| t.parse::<u64>().map_err(|e| format!("`{s}` is not DEV:INO: {e}"));
        Ok(FileId { dev: n(dev)?, ino: n(ino)? })
    }
}

/// Who owns a file: the user whose rights a root run borrows to act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// The smallest repair of `--if-broken`: the units removed, and whether the check passed after it (in
/// `check_ms`, the partial rebuild).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    pub units: Vec<String>,
    /// What cargo compiled again in the check after it (the units, and what depends on them).
    pub rebuilt: Vec<String>,
    pub files: u64,
    pub bytes: u64,
    pub healed: bool,
    pub check_ms: u64,
}

/// What a purge left behind and why (a trash dir whose lock another process holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    pub path: PathBuf,
    pub reason: String,
}

/// What `--sweep` is asked for besides the certain garbage (orphans, toolchains no longer installed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Criteria {
    pub other_toolchains: bool,
    pub older_than: Option<std::time::Duration>,
    pub max_size: Option<u64>,
}

impl Criteria {
    /// The criteria in effect, in the order they are applied.
    #[must_use]
    pub fn in_effect(&self) -> Vec<Criterion> {
        let mut out = vec![Criterion::Orphan, Criterion::UninstalledToolchain];
        if self.other_toolchains {
            out.push(Criterion::OtherToolchain);
        }
        if self.older_than.is_some() {
            out.push(Criterion::OlderThan);
        }
        if self.max_size.is_some() {
            out.push(Criterion::MaxSize);
        }
        out
    }
}

/// Why a sweep removes a unit; the JSON's `by_criterion` keys. A unit that several criteria pick counts under the
/// first, in this order; a unit removed because it depends on a removed one counts under that one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Criterion {
    /// Nothing refers to it (always, with `--sweep`).
    Orphan,
    /// Built by a toolchain that is not installed any more (always, with `--sweep`).
    UninstalledToolchain,
    /// `--other-toolchains`: not built by the current toolchain.
    OtherToolchain,
    /// `--older-than`: not used for that long.
    OlderThan,
    /// `--max-size`: least recently used, until the dirs fit.
    MaxSize,
}

impl Criterion {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Criterion::Orphan => "orphan",
            Criterion::UninstalledToolchain => "uninstalled-toolchain",
            Criterion::OtherToolchain => "other-toolchain",
            Criterion::OlderThan => "older-than",
            Criterion::MaxSize => "max-size",
        }
    }
}

/// Units, and the files and bytes in them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub units: u64,
    pub files: u64,
    pub bytes: u64,
}

impl Tally {
    pub fn add(&mut self, files: u64, bytes: u64) {
        self.units += 1;
        self.files += files;
        self.bytes += bytes;
    }
}

/// Why a unit a criterion picked stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptReason {
    /// A live process holds one of its files (or of a unit that needs it): a running test binary, a mapped
    /// proc-macro.
    Held,
    /// A build held its profile's lock past `--lock-timeout`: the profile was skipped.
    Locked,
}

impl KeptReason {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            KeptReason::Held => "held",
            KeptReason::Locked => "locked",
        }
    }
}

/// A unit a criterion picked and the sweep kept, or (`unit: None`) a profile it skipped, with the process and the
/// file (held file, or busy lock) that kept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub unit: Option<String>,
    pub profile: PathBuf,
    pub reason: KeptReason,
    pub pid: Option<u32>,
    pub path: Option<PathBuf>,
}

/// What a sweep chose, per criterion: how many units, files and bytes, and the units by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepPlan {
    pub by_criterion: Vec<(Criterion, Tally, Vec<String>)>,
    pub kept: Vec<Kept>,
}

impl SweepPlan {
    #[must_use]
    pub fn total(&self) -> Tally {
        self.by_criterion.iter().fold(Tally::default(), |mut t, (_, c, _)| {
            t.units += c.units;
            t.files += c.files;
            t.bytes += c.bytes;
            t
        })
    }
}

/// The free space a sweep or clean was asked to keep (`--if-free-below`), and what there was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeSpace {
    pub free: u64,
    pub below: u64,
}

impl FreeSpace {
    /// Whether the run has something to do: less free space than asked.
    #[must_use]
    pub fn wanted(&self) -> bool {
        self.free < self.below
    }
}

/// What a sweep did (or, in a dry run, would do): the JSON's `swept` event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Units removed; files and bytes as the purge removed them (trash of earlier runs included).
    pub units: u64,
    pub files: u64,
    pub bytes: u64,
    pub plan: SweepPlan,
    pub free_space: Option<FreeSpace>,
}
