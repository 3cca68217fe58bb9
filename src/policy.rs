//! Who a holder is and what happens to it: pure functions over scanned data, no I/O (the scan has described every
//! process named here).
//!
//! A process is a holder only because of what it holds; its name decides only its kind. `build-child` is the one
//! kind that reaches beyond the holders: the descendants of a holder to terminate, and the members of a process
//! group that such a holder leads.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use crate::model::{Found, Handle, Hold, Holder, Kind, Process, Relation, Roots, SpareReason, Table, Verdict};

/// What the policy needs besides the scan.
#[derive(Debug, Clone)]
pub struct Policy {
    pub all_holders: bool,
    /// `--unlock`: only the owner of a lock is a reason to stop anything; who shares it or waits for it is spared.
    pub owners_only: bool,
    /// Never signalled: pid 1, and this run's own family (which the scan already leaves out).
    pub protected: HashSet<u32>,
}

impl Policy {
    /// The policy for the run `me`: it protects pid 1, itself, its ancestors and its descendants.
    #[must_use]
    pub fn for_run(table: &Table, me: u32, all_holders: bool, owners_only: bool) -> Self {
        let mut protected = table.family(me);
        protected.insert(1);
        Policy { all_holders, owners_only, protected }
    }
}

/// The kind of a process that holds something under `roots`.
#[must_use]
pub fn kind_of(p: &Process, roots: &Roots) -> Kind {
    if let Some(exe) = &p.exe
        && roots.contains(exe)
    {
        return if is_build_script(exe) { Kind::BuildScript } else { Kind::TargetBinary };
    }
    let name = program(p.display_name());
    let arg0 = program(p.cmdline.first().map_or("", |a| a.rsplit(['/', '\\']).next().unwrap_or(a)));
    match name {
        "cargo" => Kind::Cargo,
        "rustc" | "rustdoc" | "clippy-driver" => Kind::Rustc,
        n if n.starts_with("rust-analyzer") => Kind::Ide,
        // rustup proxies keep the toolchain binary's name in argv[0].
        _ if arg0 == "cargo" => Kind::Cargo,
        _ if matches!(arg0, "rustc" | "rustdoc" | "clippy-driver") => Kind::Rustc,
        _ if arg0.starts_with("rust-analyzer") => Kind::Ide,
        _ => Kind::Other,
    }
}

/// A program's name as the kinds know it, and as the report shows it: on Windows without its `.exe` (`cargo.exe` is
/// cargo).
#[must_use]
pub fn program(name: &str) -> &str {
    if cfg!(windows) {
        let cut = name.len().saturating_sub(4);
        if name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(".exe") {
            return &name[..cut];
        }
    }
    name
}

/// `…/build/<pkg>-<hash>/build-script-<name>`.
fn is_build_script(exe: &Path) -> bool {
    let named = exe.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("build-script-"));
    let in_build = exe.parent().and_then(Path::parent).and_then(Path::file_name).is_some_and(|n| n == "build");
    named && in_build
}

/// Turns scan results into holders with kinds and verdicts, adds the build children, and says how each relates
/// to its parent. Computed once, before anything is signalled, so a dying parent cannot hide a child.
#[must_use]
pub fn decide(found: Vec<Found>, table: &Table, roots: &Roots, policy: &Policy) -> Vec<Holder> {
    let mut holders: Vec<Holder> = found
        .into_iter()
        .map(|f| {
            let kind = kind_of(&f.process, roots);
            let owner = !policy.owners_only || f.handles.iter().any(|h| h.hold == Some(Hold::Exclusive));
            holder(f.process, f.handles, kind, None, owner, policy)
        })
        .collect();
    // A holder the policy would spare that descends from a holder to terminate (or is in a process group one
    // leads) is that build's child, whatever it holds: an `as` a build script's `cc` started keeps an object file in
    // `OUT_DIR` open, and must not outlive the build. Until nothing changes: a promoted holder may lead a group.
    loop {
        let via = descendants(&holders, table);
        let mut promoted = false;
        for h in &mut holders {
            if h.spare_reason == Some(SpareReason::Policy)
                && let Some(&parent) = via.get(&h.process.pid)
            {
                h.kind = Kind::BuildChild;
                h.verdict = Verdict::Terminate;
                h.spare_reason = None;
                h.via = Some(parent);
                promoted = true;
            }
        }
        if !promoted {
            break;
        }
    }
    let children = build_children(&holders, table, policy);
    holders.extend(children);
    for h in &mut holders {
        h.relation = relation(&h.process, table);
    }
    holders.sort_by_key(|h| h.process.pid);
    holders
}

/// `owner`: it owns a lock, or locks do not matter in this run.
fn holder(
    process: Process,
    handles: Vec<Handle>,
    kind: Kind,
    via: Option<u32>,
    owner: bool,
    policy: &Policy,
) -> Holder {
    let (verdict, spare_reason) = if policy.protected.contains(&process.pid) {
        (Verdict::Spare, Some(SpareReason::Protected))
    } else if !owner {
        (Verdict::Spare, Some(SpareReason::NotOwner))
    } else if matches!(kind, Kind::Ide | Kind::Other) && !policy.all_holders {
        (Verdict::Spare, Some(SpareReason::Policy))
    } else {
        (Verdict::Terminate, None)
    };
    Holder { process, handles, kind, verdict, spare_reason, relation: None, via }
}

/// Descendants of holders to terminate, and members of process groups they lead, that are not holders themselves.
fn build_children(holders: &[Holder], table: &Table, policy: &Policy) -> Vec<Holder> {
    let known: HashSet<u32> = holders.iter().map(|h| h.process.pid).collect();
    let mut out: Vec<Holder> = descendants(holders, table)
        .into_iter()
        .filter(|(pid, _)| !known.contains(pid) && !policy.protected.contains(pid))
        .filter_map(|(pid, parent)| {
            let p = table.procs.get(&pid)?.clone();
            Some(holder(p, Vec::new(), Kind::BuildChild, Some(parent), true, policy))
        })
        .collect();
    out.sort_by_key(|h| h.process.pid);
    out
}

/// Every descendant of a holder to terminate, and every member of a process group one leads, with the process it
/// was reached from.
fn descendants(holders: &[Holder], table: &Table) -> HashMap<u32, u32> {
    let children = table.children();
    let groups = table.groups();
    let mut via: HashMap<u32, u32> = HashMap::new();
    let roots: Vec<&Holder> = holders.iter().filter(|h| h.verdict == Verdict::Terminate).collect();
    // Trees first, so that a process is shown as its parent's child; then the groups those holders lead.
    let mut seen: HashSet<u32> = HashSet::new();
    descend(roots.iter().map(|h| h.process.pid), &children, &mut via, &mut seen);
    for h in roots.iter().filter(|h| h.process.pgid == h.process.pid) {
        let members: Vec<u32> = groups.get(&h.process.pid).into_iter().flatten().copied().collect();
        for &m in &members {
            via.entry(m).or_insert(h.process.pid);
        }
        descend(members.into_iter(), &children, &mut via, &mut seen);
    }
    via
}

/// Walks down from `starts`, recording for each descendant the parent it was reached from.
fn descend(
    starts: impl Iterator<Item = u32>,
    children: &HashMap<u32, Vec<u32>>,
    via: &mut HashMap<u32, u32>,
    seen: &mut HashSet<u32>,
) {
    let mut queue: VecDeque<u32> = starts.collect();
    while let Some(pid) = queue.pop_front() {
        if !seen.insert(pid) {
            continue;
        }
        for &kid in children.get(&pid).into_iter().flatten() {
            via.entry(kid).or_insert(pid);
            queue.push_back(kid);
        }
    }
}

/// `child of NAME pid N` while the parent lives; orphaned once reparented to init or a subreaper.
fn relation(p: &Process, table: &Table) -> Option<Relation> {
    if p.ppid == 1 {
        return Some(Relation::Orphaned);
    }
    let parent = table.procs.get(&p.ppid)?;
    let leader_gone = p.pgid != p.pid && !table.procs.contains_key(&p.pgid);
    if leader_gone && parent.pgid != p.pgid {
        return Some(Relation::Orphaned);
    }
    // The scan described the parent: its exe gives the whole name, which `comm` cuts at 15 bytes.
    Some(Relation::ChildOf { pid: parent.pid, name: parent.display_name().to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn proc(pid: u32, parent: u32, group: u32, name: &str, exe: &str) -> Process {
        Process {
            pid,
            ppid: parent,
            pgid: group,
            start_time: 1,
            name: name.into(),
            cmdline: vec![name.into()],
            exe: Some(PathBuf::from(exe)),
            cwd: None,
            started_at: None,
            stopped: false,
            uid: None,
        }
    }

    fn roots() -> Roots {
        Roots::new([Path::new("/w/target")])
    }

    use crate::model::HandleKind;

    fn found(p: &Process) -> Found {
        Found { process: p.clone(), handles: vec![Handle::new(HandleKind::Cwd, "/w/target")] }
    }

    #[test]
    fn kinds() {
        let r = roots();
        let k = |name: &str, exe: &str| kind_of(&proc(9, 1, 9, name, exe), &r);
        assert_eq!(k("cargo", "/home/u/.rustup/toolchains/x/bin/cargo"), Kind::Cargo);
        assert_eq!(k("rustc", "/opt/rustc"), Kind::Rustc);
        assert_eq!(k("clippy-driver", "/opt/clippy-driver"), Kind::Rustc);
        assert_eq!(k("build-script-bu", "/w/target/debug/build/a-1/build-script-build"), Kind::BuildScript);
        assert_eq!(k("a-1", "/w/target/debug/deps/a-1"), Kind::TargetBinary);
        assert_eq!(k("rust-analyzer-p", "/opt/rust-analyzer-proc-macro-srv"), Kind::Ide);
        assert_eq!(k("bash", "/bin/bash"), Kind::Other);
        // A program named cargo that lives in target/ is a target binary: where it runs from wins.
        assert_eq!(k("cargo", "/w/target/debug/cargo"), Kind::TargetBinary);
        if cfg!(windows) {
            // Windows names its programs with `.exe`, in any case.
            assert_eq!(k("cargo.exe", r"C:\u\.cargo\bin\cargo.exe"), Kind::Cargo);
            assert_eq!(k("rustc.EXE", r"C:\t\bin\rustc.EXE"), Kind::Rustc);
            assert_eq!(k("rust-analyzer.exe", r"C:\t\rust-analyzer.exe"), Kind::Ide);
        }
    }

    #[test]
    fn verdicts_and_protection() {
        let table = Table::default();
        let p = Policy { all_holders: false, owners_only: false, protected: [5].into() };
        let mk = |pid, name: &str, exe: &str| found(&proc(pid, 1, pid, name, exe));
        let hs = decide(
            vec![mk(5, "cargo", "/bin/cargo"), mk(6, "bash", "/bin/bash"), mk(7, "rustc", "/bin/rustc")],
            &table,
            &roots(),
            &p,
        );
        let v: Vec<(u32, Verdict)> = hs.iter().map(|h| (h.process.pid, h.verdict)).collect();
        assert_eq!(v, vec![(5, Verdict::Spare), (6, Verdict::Spare), (7, Verdict::Terminate)]);
        assert_eq!(hs[0].spare_reason, Some(SpareReason::Protected));
        let all = Policy { all_holders: true, ..p };
        let hs = decide(vec![mk(5, "cargo", "/bin/cargo"), mk(6, "bash", "/bin/bash")], &table, &roots(), &all);
        assert_eq!(hs.iter().map(|h| h.verdict).collect::<Vec<_>>(), [Verdict::Spare, Verdict::Terminate]);
    }

    #[test]
    fn only_owners_are_stopped_for_a_lock() {
        let lock = |pid, hold| Found {
            process: proc(pid, 1, pid, "cargo", "/bin/cargo"),
            handles: vec![Handle { kind: HandleKind::Fd, path: "/h/.package-cache".into(), hold }],
        };
        let p = Policy { all_holders: false, owners_only: true, protected: HashSet::new() };
        let found = vec![
            lock(5, Some(Hold::Exclusive)),
            lock(6, Some(Hold::Waiting)),
            lock(7, Some(Hold::Shared)),
            lock(8, None),
        ];
        let hs = decide(found, &Table::default(), &Roots::new([Path::new("/h/.package-cache")]), &p);
        let v: Vec<(u32, Verdict)> = hs.iter().map(|h| (h.process.pid, h.verdict)).collect();
        assert_eq!(v, [(5, Verdict::Terminate), (6, Verdict::Spare), (7, Verdict::Spare), (8, Verdict::Spare)]);
        assert!(hs[1..].iter().all(|h| h.spare_reason == Some(SpareReason::NotOwner)));
    }

    #[test]
    fn build_children_follow_trees_and_led_groups_only() {
        // 10 cargo (group leader) → 11 build script → 12 cc; 13 in group 10 reparented to 1;
        // 20 a shell leading group 20 with 21 (a holder-less sibling), 22 holder started by the shell.
        let procs = [
            proc(10, 2, 10, "cargo", "/bin/cargo"),
            proc(11, 10, 10, "build-script-build", "/w/target/debug/build/a-1/build-script-build"),
            proc(12, 11, 10, "cc", "/usr/bin/cc"),
            proc(13, 1, 10, "server", "/usr/bin/server"),
            proc(20, 2, 20, "bash", "/bin/bash"),
            proc(21, 20, 20, "vim", "/usr/bin/vim"),
            proc(22, 20, 20, "rustc", "/bin/rustc"),
        ];
        let table = Table { procs: procs.iter().map(|p| (p.pid, p.clone())).collect() };
        let policy = Policy { all_holders: false, owners_only: false, protected: HashSet::new() };
        let hs = decide(vec![found(&procs[0]), found(&procs[1]), found(&procs[6])], &table, &roots(), &policy);
        let got: Vec<(u32, Kind, Option<u32>)> = hs.iter().map(|h| (h.process.pid, h.kind, h.via)).collect();
        assert_eq!(
            got,
            vec![
                (10, Kind::Cargo, None),
                (11, Kind::BuildScript, None),
                (12, Kind::BuildChild, Some(11)),
                (13, Kind::BuildChild, Some(10)),
                (22, Kind::Rustc, None),
            ]
        );
        assert_eq!(hs[3].relation, Some(Relation::Orphaned));
        assert_eq!(hs[1].relation, Some(Relation::ChildOf { pid: 10, name: "cargo".into() }));
    }

    #[test]
    fn a_holder_descending_from_a_build_is_its_child_whatever_it_holds() {
        // 10 cargo → 11 build script → 12 cc → 13 as, which holds an object file in OUT_DIR; 14 a shell of the
        // user's with its cwd in target/, no kin of the build.
        let procs = [
            proc(10, 2, 10, "cargo", "/bin/cargo"),
            proc(11, 10, 10, "build-script-build", "/w/target/debug/build/a-1/build-script-build"),
            proc(12, 11, 10, "cc", "/usr/bin/cc"),
            proc(13, 12, 10, "as", "/usr/bin/as"),
            proc(14, 2, 14, "bash", "/bin/bash"),
        ];
        let table = Table { procs: procs.iter().map(|p| (p.pid, p.clone())).collect() };
        let policy = Policy { all_holders: false, owners_only: false, protected: HashSet::new() };
        let hs = decide(vec![found(&procs[0]), found(&procs[3]), found(&procs[4])], &table, &roots(), &policy);
        let got: Vec<(u32, Kind, Verdict)> = hs.iter().map(|h| (h.process.pid, h.kind, h.verdict)).collect();
        assert_eq!(
            got,
            vec![
                (10, Kind::Cargo, Verdict::Terminate),
                (11, Kind::BuildChild, Verdict::Terminate),
                (12, Kind::BuildChild, Verdict::Terminate),
                (13, Kind::BuildChild, Verdict::Terminate),
                (14, Kind::Other, Verdict::Spare),
            ]
        );
        assert_eq!(hs[3].handles.len(), 1, "what it holds is still shown");
        assert_eq!(hs[3].via, Some(12));
    }
}
