//! One run of the pipeline, from a [`Plan`] to a [`Summary`]: workspace → guard → scan → policy → terminate →
//! swap → purge ∥ verify. Each stage returns a value; what they returned is recorded and the summary is built
//! from it once, at the end.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;

use crate::anchor::{self, Anchored};
use crate::check;
use crate::detach::{self, Detached};
use crate::diagnose::{self, Diagnosis};
use crate::error::{self, Error};
use crate::event::{Event, Summary};
use crate::interrupt::{Interrupt, Interrupted};
use crate::layout::DELETER_LOG_PREFIX;
use crate::layout::{LockName, cargo_locks, cargo_locks_at, is_held, package_cache_locks};
use crate::model::{
    CheckResult, Checked, DirSize, FreeSpace, HandleKind, Hold, Holder, Kind, Left, Mode, Outcome, Removed, Repaired,
    Roots, Settled, SpareReason, Swept, Uninspectable, Verdict, Verified,
};
use crate::plan::Plan;
use crate::platform::{self, Identity};
use crate::policy::{self, Policy};
use crate::purge::{self, Progress, PurgeError, RemoveError};
use crate::report::{Format, Reporter};
use crate::runlock::{Key, RUN_LOCK_PREFIX, RuntimeDir, TRASH_LOCK_PREFIX, TrashLocks};
use crate::scan::{self, Scan};
use crate::terminate::{self, BusyLock, HoldersRemain, LockStand, Named};
use crate::verify::{self, Blocked, RunAs, VerifyError};
use crate::workspace::{self, Dirs, WorkspaceError};
use crate::{guard, runlock, swap};
// What is not built for Windows yet (the plan refuses `--sweep` there; `--if-broken` cleans whole).
#[cfg(unix)]
use crate::{repair, sweep};

/// What the check of `--if-broken` says the build dir needs.
enum Health {
    Healthy,
    /// Damaged: the file the damage was found in.
    Damaged(PathBuf),
}

/// How many times to scan, stop and re-scan before giving up on holders that keep appearing.
const ROUNDS: usize = 3;

/// Where stages send their events: the reporter, from any thread.
type Emit<'a> = &'a (dyn Fn(Event) + Sync);

/// Runs `cargo safeclean` as `plan` says, telling `reporter` as it goes. Returns what the run did and how it ended.
pub fn run(plan: &Plan, reporter: &dyn Reporter, interrupt: &Interrupt) -> (Summary, Result<(), Error>) {
    let mut record = Record::default();
    let emit = |e: Event| reporter.event(&e);
    let result =
        Run { plan, emit: &emit, interrupt, me: std::process::id(), cargo_user: OnceLock::new() }.pipeline(&mut record);
    let mut summary = record.into_summary(plan.mode, plan.dry_run, &result);
    // What was spared may have ended by itself meanwhile: only what still runs is reported as running.
    for s in summary.holders.iter_mut().filter(|s| s.outcome == Some(Outcome::Spared)) {
        s.gone = !plan.platform.is_alive(&Identity::from(&s.holder.process));
    }
    (summary, result)
}

/// Whether `h` descends from one of `waiters`, through the parents `fresh` knows.
fn descends_from(h: &Holder, waiters: &HashSet<u32>, fresh: &[Holder]) -> bool {
    let mut parent = h.process.ppid;
    // Bounded: a parent chain through reused pids could loop.
    for _ in 0..=fresh.len() {
        if waiters.contains(&parent) {
            return true;
        }
        match fresh.iter().find(|f| f.process.pid == parent) {
            Some(f) => parent = f.process.ppid,
            None => return false,
        }
    }
    false
}

/// What the stages returned so far.
#[derive(Default)]
struct Record {
    dirs: Option<Dirs>,
    check: Option<Checked>,
    detached: Option<Detached>,
    holders: Vec<Holder>,
    outcomes: HashMap<u32, (Outcome, Option<String>)>,
    uninspectable: Uninspectable,
    removed: Option<Removed>,
    left: Vec<Left>,
    repaired: Option<Repaired>,
    verified: Option<Verified>,
    swept: Option<Swept>,
    free_space: Option<FreeSpace>,
}

impl Record {
    /// The summary of a run that ended with `result`: its exit code and, when it failed, why.
    fn into_summary(mut self, mode: Mode, dry_run: bool, result: &Result<(), Error>) -> Summary {
        let holders = self
            .holders
            .into_iter()
            .map(|holder| {
                let (outcome, note) = self.outcomes.remove(&holder.process.pid).unzip();
                Settled { holder, outcome, note: note.flatten(), gone: false }
            })
            .collect();
        Summary {
            mode,
            dry_run,
            check: self.check,
            purge_detached: self.detached,
            dirs: self.dirs,
            holders,
            uninspectable: self.uninspectable,
            removed: self.removed,
            left: self.left,
            repaired: self.repaired,
            verify: self.verified,
            swept: self.swept,
            free_space: self.free_space,
            exit_code: error::exit_code(result),
            error: result.as_ref().err().map(Error::failure),
        }
    }
}

struct Run<'a> {
    plan: &'a Plan,
    emit: Emit<'a>,
    interrupt: &'a Interrupt,
    me: u32,
    /// Who cargo runs as, once the target dir is known.
    cargo_user: OnceLock<Option<RunAs>>,
}

impl Run<'_> {
    fn pipeline(&self, record: &mut Record) -> Result<(), Error> {
        let plan = self.plan;
        // The process table is read while `cargo metadata` runs: the user waits for the two together, not in turn.
        // Not when checking first: the check takes longer than the table stays current, and on a healthy cache
        // the scan would only take the cores from cargo.
        let background = (!plan.if_broken).then(|| scan::start(&plan.platform, self.me));
        #[cfg(unix)]
        let toolchains = (plan.mode == Mode::Sweep).then(|| self.learn_toolchains());
        let Some(dirs) = self.workspace()? else { return self.unlock_cargo_home(background, record) };
        record.dirs = Some(dirs.clone());
        let waited = Cell::new(false);
        let (approved, mut locked) = self.approve_and_lock(&dirs, &waited)?;
        self.cargo_user.set(Self::owner_to_run_as(&dirs)).expect("set once");
        (self.emit)(Event::Dirs(dirs.clone()));
        // Arguments cargo would reject are found now, not after the target dir is gone.
        if !plan.dry_run && (plan.verify || plan.if_broken) {
            verify::validate(&self.verify_request(&dirs))?;
        }
        if let Some(below) = plan.if_free_below {
            let free = dirs.roots().filter_map(detach::free_bytes).min().unwrap_or(u64::MAX);
            let space = FreeSpace { free, below };
            record.free_space = Some(space);
            (self.emit)(Event::FreeSpace(space));
            if !space.wanted() {
                if plan.mode == Mode::Sweep {
                    let swept = Swept { free_space: Some(space), ..Swept::default() };
                    (self.emit)(Event::Swept(swept.clone()));
                    record.swept = Some(swept);
                }
                return Ok(());
            }
        }
        #[cfg(unix)]
        if let Some(toolchains) = toolchains {
            let toolchains = || toolchains.join().unwrap_or_default();
            // What processes hold was read while cargo metadata ran, as for a clean, unless the run waited since.
            let early = background.filter(|_| !waited.get());
            let runtime = locked.as_ref().map(|(_, runtime)| runtime);
            return self.sweep(&dirs, &approved, runtime, (toolchains, early), record);
        }
        // What to scan, and the locks that must be free at the end: a clean scans the whole dirs; `--unlock` only
        // the lock files, the package cache's in cargo's home included.
        // A clean works from the approved dirs as opened, never from what their names lead to by now: a name
        // swapped for a link to `/` must not make every process a holder.
        let locks: Vec<PathBuf> = match plan.mode {
            Mode::Clean | Mode::Sweep => {
                approved.iter().filter_map(|a| Some(cargo_locks_at(&a.dir.as_ref()?.fd, &a.real))).flatten().collect()
            }
            Mode::Unlock => {
                let home = plan.cargo_home.iter().flat_map(|h| package_cache_locks(h)).filter(|l| l.is_file());
                dirs.roots().flat_map(cargo_locks).chain(home).collect()
            }
        };
        let roots = match plan.mode {
            Mode::Clean | Mode::Sweep => Roots::exact(approved.iter().map(|a| a.real.clone())),
            Mode::Unlock => Roots::new(locks.iter().map(PathBuf::as_path)),
        };
        let damaged = if plan.if_broken {
            match self.check_first(&dirs, &roots, &locks, record)? {
                Health::Healthy => return Ok(()),
                Health::Damaged(path) => Some(path),
            }
        } else {
            None
        };
        // The smallest repair first (unless `--full`): the damaged units, found in the approved dirs.
        #[cfg(unix)]
        let repair = damaged.filter(|_| !plan.full).and_then(|path| {
            approved.iter().find_map(|a| {
                let d = a.dir.as_ref()?;
                Some((a, repair::units_of(&path, &a.real, &d.fd)?))
            })
        });
        // Windows makes no smaller repair yet: a damaged cache is cleaned whole.
        #[cfg(windows)]
        let repair: Option<std::convert::Infallible> = damaged.and(None);
        // After waiting for another run, or for the check, what the early scan saw is stale.
        let first = match background {
            Some(early) if !waited.get() => early.finish(&roots)?,
            _ => scan::scan(&plan.platform, &roots, self.me)?,
        };
        #[cfg(unix)]
        if plan.dry_run
            && let Some((_, units)) = &repair
        {
            (self.emit)(Event::RepairPlanned { units: units.names.clone(), entries: units.entries.len() });
        }
        if !self.stop_holders(first, &roots, &locks, &dirs.target_dir, record)? {
            // A dry run of a clean says what it would remove, unless a repair of a few units comes first.
            // With --only-if-held and nothing held, nothing would be removed either.
            let removes = !(plan.only_if_held && record.holders.is_empty());
            if plan.dry_run && plan.mode == Mode::Clean && repair.is_none() && removes {
                self.measure(&approved);
            }
            return Ok(());
        }
        if plan.mode == Mode::Unlock {
            return self.verify_only(&dirs, record);
        }
        #[cfg(unix)]
        if let Some((a, units)) = repair
            && self.repair(&dirs, a, &units, &roots, &locks, record)?
        {
            return Ok(());
        }

        self.swap_and_purge(&dirs, approved, locked.as_mut().map(|(lock, runtime)| (lock, &*runtime)), record)
    }

    /// The workspace's dirs, as cargo resolves them. `None` only for `--unlock` where no workspace is meant: no
    /// Cargo.toml in the current dir or above it, and neither `--manifest-path` nor `--target-dir`. The package cache
    /// lock is cargo's home's, not a workspace's, and a `cargo install` in the home dir waits on it too. A
    /// Cargo.toml cargo cannot read is still an error: that is a workspace, broken.
    fn workspace(&self) -> Result<Option<Dirs>, Error> {
        let plan = self.plan;
        let resolved = workspace::resolve(&workspace::Request {
            cargo: &plan.cargo,
            manifest_path: plan.manifest_path.as_deref(),
            target_dir: plan.target_dir.as_deref(),
            cwd: &plan.cwd,
        });
        match resolved {
            Err(WorkspaceError::NotAWorkspace { .. })
                if plan.mode == Mode::Unlock
                    && plan.target_dir.is_none()
                    && workspace::manifest_above(&plan.cwd).is_none() =>
            {
                Ok(None)
            }
            resolved => Ok(Some(resolved?)),
        }
    }

    /// `--unlock` outside any workspace: the package cache locks of cargo's home are all there is to free, and no
    /// target dir is guessed. There is no workspace to check either, so the verify is skipped, and said so.
    fn unlock_cargo_home(&self, background: Option<scan::Background>, record: &mut Record) -> Result<(), Error> {
        let plan = self.plan;
        let Some(home) = plan.cargo_home.as_deref() else {
            (self.emit)(Event::Warning(
                "not in a cargo workspace, and cargo's home is not known (no CARGO_HOME, no home dir): nothing to \
                 unlock; set CARGO_HOME to the cargo home whose locks to free"
                    .into(),
            ));
            return Ok(());
        };
        (self.emit)(Event::Warning(format!(
            "no Cargo.toml in {} or above it: --unlock looks only at the package cache locks in {}",
            plan.cwd.display(),
            home.display()
        )));
        let locks: Vec<PathBuf> = package_cache_locks(home).into_iter().filter(|l| l.is_file()).collect();
        let roots = Roots::new(locks.iter().map(PathBuf::as_path));
        let first = match background {
            Some(early) => early.finish(&roots)?,
            None => scan::scan(&plan.platform, &roots, self.me)?,
        };
        if self.stop_holders(first, &roots, &locks, home, record)? && plan.verify {
            (self.emit)(Event::Warning("not in a cargo workspace: nothing to verify, `cargo check` skipped".into()));
        }
        Ok(())
    }

    /// The holders in `first` decided and reported, and those to stop stopped until `locks` are free. False when
    /// the run ends here: a dry run, or `--only-if-held` with nothing held. `held` is what `--no-kill` refuses for.
    fn stop_holders(
        &self,
        first: Scan,
        roots: &Roots,
        locks: &[PathBuf],
        held: &Path,
        record: &mut Record,
    ) -> Result<bool, Error> {
        let plan = self.plan;
        record.uninspectable = first.uninspectable.clone();
        let holders = self.decide(first, roots);

        if plan.only_if_held && holders.is_empty() {
            self.report_holders(&holders, &record.uninspectable, |_| None);
            return Ok(false);
        }
        let foreseen = |h: &Holder| {
            Some(if h.verdict == Verdict::Terminate { Outcome::WouldTerminate } else { Outcome::WouldSpare })
        };
        if plan.dry_run {
            self.report_holders(&holders, &record.uninspectable, foreseen);
            record.outcomes.extend(holders.iter().filter_map(|h| Some((h.process.pid, (foreseen(h)?, None)))));
            record.holders = holders;
            return Ok(false);
        }
        // With --no-kill, what a run would do is all this one tells before it refuses.
        self.report_holders(&holders, &record.uninspectable, |h| if plan.no_kill { foreseen(h) } else { None });
        for h in holders.iter().filter(|h| h.verdict == Verdict::Spare) {
            record.outcomes.insert(h.process.pid, (Outcome::Spared, None));
        }
        record.holders = holders;

        if plan.no_kill {
            let doomed: Vec<u32> =
                record.holders.iter().filter(|h| h.verdict == Verdict::Terminate).map(|h| h.process.pid).collect();
            if !doomed.is_empty() {
                record.outcomes.extend(doomed.iter().map(|&pid| (pid, (Outcome::WouldTerminate, None))));
                return Err(HoldersRemain::NoKill { dir: held.to_path_buf(), pids: doomed }.into());
            }
        }
        self.stop_until_free(roots, locks, record)?;
        Ok(true)
    }

    /// Swaps every dir before purging any, so the tree is usable again as early as possible; then the purge (or a
    /// detached deleter) and the verify.
    fn swap_and_purge(
        &self,
        dirs: &Dirs,
        approved: Vec<Anchored>,
        locked: Option<(&mut runlock::RunLock, &RuntimeDir)>,
        record: &mut Record,
    ) -> Result<(), Error> {
        let (run_lock, runtime) = locked.unzip();
        let id = swap::run_id();
        let mut swapped = swap::Swapped::default();
        let locks = || runtime.and_then(|rt| rt.trash_locks().ok());
        // The new dirs are locked as this run's before anyone can see them: a run that comes after the swap waits
        // for this one (and its check) to finish.
        let mut claimed = Vec::new();
        let mut claim = |new| {
            let Some(rt) = runtime else { return Ok(()) };
            let key = [Key::Dir(new)];
            // In the runner's own runtime dir: with the run's own rights, whoever's the swap borrows.
            let lock = platform::with_own_rights(|| {
                runlock::take(rt, &dirs.target_dir, &key, Duration::ZERO, self.interrupt, |_| String::new())
            });
            claimed.push(lock.map_err(std::io::Error::other)?);
            Ok(())
        };
        for a in &approved {
            let s = swap::swap(a, &id, self.plan.swap, locks().as_ref(), &mut claim)?;
            swapped.trash.extend(s.trash);
            swapped.mounts.extend(s.mounts);
        }
        // A dir exchanged for a new one is trash now; the new dir's claim keeps later runs waiting. One emptied in
        // place (a mount point, a symlink's) is still the target dir, and stays locked.
        if let Some(lock) = run_lock {
            for a in approved.iter().filter(|a| a.dir.as_ref().is_some_and(|d| d.kind == anchor::Kind::Plain)) {
                lock.release(&run_key(a));
            }
        }
        drop(approved);
        self.purge_or_detach(dirs, swapped, runtime, &id, record)
    }

    /// The end of a clean or a sweep: the trash handed to a detached deleter (`--detach`) or purged while the
    /// verify runs.
    fn purge_or_detach(
        &self,
        dirs: &Dirs,
        swapped: swap::Swapped,
        runtime: Option<&RuntimeDir>,
        id: &str,
        record: &mut Record,
    ) -> Result<(), Error> {
        if let Some(detached) = runtime.and_then(|rt| self.detach(dirs, &swapped, rt, id)) {
            return self.verify_after_detaching(dirs, detached, swapped.mounts, record);
        }
        let locks = runtime.and_then(|rt| rt.trash_locks().ok());
        self.purge_and_verify(dirs, swapped, locks, record)
    }

    /// A sweep learns the toolchains while cargo metadata runs: from the current dir, as cargo's rustup proxy picks
    /// its own.
    #[cfg(unix)]
    fn learn_toolchains(&self) -> std::thread::JoinHandle<sweep::toolchain::Toolchains> {
        let (t, cwd) = (self.plan.toolchains.clone(), self.plan.cwd.clone());
        std::thread::spawn(move || {
            let request =
                sweep::toolchain::Request { rustc: &t.rustc, rustup: &t.rustup, candidates: &t.candidates, cwd: &cwd };
            sweep::toolchain::probe(&request)
        })
    }

    /// `--sweep`: cargo's locks of every profile taken (waiting for a build at most `--lock-timeout`, then skipping
    /// its profile), the units taken stock of, the toolchains learnt, the holders scanned, the units chosen and moved
    /// into a trash dir, the locks let go; then the purge and the verify, as after a clean's swap.
    #[cfg(unix)]
    fn sweep(
        &self,
        dirs: &Dirs,
        approved: &[Anchored],
        runtime: Option<&RuntimeDir>,
        (toolchains, early): (impl FnOnce() -> sweep::toolchain::Toolchains, Option<scan::Background>),
        record: &mut Record,
    ) -> Result<(), Error> {
        let plan = self.plan;
        let opened = |a: &Anchored| {
            let d = a.dir.as_ref()?;
            Some((sweep::Root { path: a.real.clone(), fd: d.fd.try_clone().ok()? }, d.owner))
        };
        // The target dir, and a separate build dir where units are built.
        let Some((target, owner)) = approved.first().and_then(opened) else {
            let swept = Swept { free_space: record.free_space, ..Swept::default() };
            (self.emit)(Event::Swept(swept.clone()));
            record.swept = Some(swept);
            return Ok(());
        };
        let roots = match approved.get(1).and_then(opened) {
            Some((build, _)) => sweep::Roots { build, artifact: Some(target) },
            None => sweep::Roots { build: target, artifact: None },
        };
        let profiles = sweep::profiles(&roots);
        let mut told_busy = false;
        let (held_locks, busy) = sweep::lock::acquire(
            &profiles,
            Some(owner),
            !plan.dry_run,
            plan.lock_timeout,
            Some(self.interrupt),
            &mut |lock| {
                told_busy = true;
                let holder = self.lock_owner(lock);
                (self.emit)(Event::WaitingForCargoLock {
                    lock: lock.to_path_buf(),
                    holder,
                    timeout: plan.lock_timeout,
                });
            },
        );
        if self.interrupt.is_set() {
            return Err(Interrupted { during: "while waiting for cargo's locks", note: "nothing was deleted" }.into());
        }
        // A scan from before a wait for a lock is stale.
        let early = early.filter(|_| busy.is_empty() && !told_busy);
        let (units, choice) = self.sweep_choose(approved, &roots, &profiles, &busy, (toolchains, early))?;
        (self.emit)(Event::SweepPlanned { plan: choice.plan.clone(), dry_run: plan.dry_run });
        let planned = choice.plan.total();
        let mut swept = Swept {
            units: planned.units,
            files: planned.files,
            bytes: planned.bytes,
            plan: choice.plan.clone(),
            free_space: record.free_space,
        };
        if plan.dry_run {
            drop(held_locks);
            (self.emit)(Event::Swept(swept.clone()));
            record.swept = Some(swept);
            return Ok(());
        }
        let id = swap::run_id();
        // The moves, and the earlier trash lifted, with the rights of the tree's owner.
        let acting = platform::Acting::as_owner(Some(owner)).map_err(|e| {
            PurgeError::from(RemoveError::new("act with the rights of the owner of", &dirs.target_dir, e))
        })?;
        let moved = if choice.remove.is_empty() {
            sweep::Moved::default()
        } else {
            sweep::move_out(&units, &choice.remove, &roots, &id, acting.uid())
        };
        // Everything chosen is out: cargo may build again while the trash is deleted.
        drop(held_locks);
        for (unit, e) in &moved.left {
            (self.emit)(Event::Warning(format!("left {unit} in place: {e}")));
        }
        swept.units = moved.units;
        let mut trash = moved.trash;
        // Trash an earlier run left in these dirs goes too (this run's is among it).
        let locks = runtime.and_then(|rt| rt.trash_locks().ok());
        for root in std::iter::once(&roots.build).chain(roots.artifact.as_ref()) {
            let mine: Vec<crate::model::FileId> = trash.iter().map(|t| t.id).collect();
            if let Ok(found) = swap::trash_inside(&root.fd, &root.path, locks.as_ref()) {
                trash.extend(found.into_iter().filter(|t| !mine.contains(&t.id)));
            }
        }
        drop(acting);
        if trash.is_empty() {
            // Nothing was changed: nothing to delete, nothing to verify.
            (self.emit)(Event::Swept(swept.clone()));
            record.swept = Some(swept);
            return Ok(());
        }
        let result = self.purge_or_detach(dirs, swap::Swapped { trash, mounts: Vec::new() }, runtime, &id, record);
        if let Some(removed) = record.removed {
            (swept.files, swept.bytes) = (removed.files, removed.bytes);
        }
        (self.emit)(Event::Swept(swept.clone()));
        record.swept = Some(swept);
        result
    }

    /// The sweep's decision, under cargo's locks: the units taken stock of, the toolchains learnt, what live
    /// processes hold scanned, the skipped profiles named, and the units chosen.
    #[cfg(unix)]
    fn sweep_choose(
        &self,
        approved: &[Anchored],
        roots: &sweep::Roots,
        profiles: &[sweep::ProfileDirs],
        busy: &[sweep::lock::Busy],
        (toolchains, early): (impl FnOnce() -> sweep::toolchain::Toolchains, Option<scan::Background>),
    ) -> Result<(Vec<crate::layout::unit::Unit>, sweep::Choice), Error> {
        let plan = self.plan;
        let criteria = plan.sweep.unwrap_or_default();
        // What processes hold: read since the run started, or, after a wait, while the units are counted.
        let scan = early.unwrap_or_else(|| scan::start(&plan.platform, self.me));
        let (units, versions) = sweep::inventory(roots, profiles);
        let toolchains = toolchains();
        if toolchains.current.is_none() {
            (self.emit)(Event::Warning(format!(
                "could not run `{} -vV`: which toolchain is current is not known, so no unit is judged by its \
                 toolchain",
                plan.toolchains.rustc.to_string_lossy()
            )));
        }
        let scan_roots = Roots::exact(approved.iter().filter(|a| a.dir.is_some()).map(|a| a.real.clone()));
        let scan::Scan { found, table, .. } = scan.finish(&scan_roots)?;
        let mut locked = HashMap::new();
        for b in busy {
            if let Some(why) = b.unlockable {
                (self.emit)(Event::Warning(format!(
                    "skipped the profile {}: {} cannot be locked as cargo locks it: {why}",
                    b.profile.display(),
                    b.lock.display()
                )));
                locked.insert(b.profile.clone(), (None, b.lock.clone()));
                continue;
            }
            let holder = self.lock_owner(&b.lock);
            let by = holder.as_ref().map_or_else(
                || "a process that could not be inspected".to_string(),
                |p| format!("pid {} {} ({})", p.pid, p.display_name(), shell_words::join(&p.cmdline)),
            );
            (self.emit)(Event::Warning(format!(
                "skipped the profile {}: {} was still held after {}s (--lock-timeout), by {by}",
                b.profile.display(),
                b.lock.display(),
                plan.lock_timeout.as_secs_f64()
            )));
            locked.insert(b.profile.clone(), (holder.map(|p| p.pid), b.lock.clone()));
        }
        let total_bytes = if criteria.max_size.is_some() {
            let count = |r: &sweep::Root| {
                purge::count(&r.fd, &r.path, plan.purge.files, plan.purge.workers, self.interrupt).bytes
            };
            count(&roots.build) + roots.artifact.as_ref().map_or(0, count)
        } else {
            0
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let held = sweep::held_units(&units, roots, &found);
        // A process cargo started from what it built (`cargo test` running a test binary, `cargo run`): cargo let go
        // of its locks before running it, and runs the profile's other binaries next. Its profile is skipped whole.
        for (&i, (pid, path)) in &held {
            // Its parent, not any ancestor: whatever a shell under `cargo run` starts is no test cargo runs.
            let parent = table.procs.get(pid).and_then(|p| table.procs.get(&p.ppid));
            let Some(cargo) = parent.filter(|p| policy::kind_of(p, &scan_roots) == Kind::Cargo).map(|p| p.pid) else {
                continue;
            };
            let profile = &units[i].profile;
            if locked.contains_key(profile) {
                continue;
            }
            (self.emit)(Event::Warning(format!(
                "skipped the profile {}: cargo (pid {cargo}) runs what it built there ({}), and may run more of it",
                profile.display(),
                path.display()
            )));
            locked.insert(profile.clone(), (Some(cargo), path.clone()));
        }
        let facts = sweep::Facts {
            held,
            locked,
            current: toolchains.current,
            installed: toolchains.installed,
            versions,
            now,
            total_bytes,
        };
        let choice = sweep::choose::choose(&units, &facts, criteria);
        Ok((units, choice))
    }

    /// A dry run's measure of what the run would remove: each approved dir's files and bytes, counted by the
    /// purge's own walk.
    fn measure(&self, approved: &[Anchored]) {
        let sizes = approved
            .iter()
            .filter_map(|a| {
                let d = a.dir.as_ref()?;
                let files = self.plan.purge.files;
                let counted = purge::count(&d.fd, &a.real, files, self.plan.purge.workers, self.interrupt);
                Some(DirSize { path: a.path.clone(), files: counted.files, bytes: counted.bytes })
            })
            .collect();
        (self.emit)(Event::Measured(sizes));
    }

    /// The guard's approval of the dirs to clean, held open from here on, and, unless this is a dry run, the run lock
    /// and the runtime dir. `--unlock` deletes nothing: no guard, no lock.
    ///
    /// After the lock, each name must still lead to the dir approved; if not, the run refuses (exit 3). There is one
    /// exception: when it had to wait for another process of this user (another run, which swaps the target dir for
    /// a new one), the dirs are opened and approved again, from scratch, as a run starting then would.
    fn approve_and_lock(&self, dirs: &Dirs, waited: &Cell<bool>) -> Result<(Vec<Anchored>, Option<Locked>), Error> {
        const TRIES: usize = 3;
        let plan = self.plan;
        let approve = || guard::approve(dirs, &plan.protected, plan.force, plan.platform.files);
        if plan.mode == Mode::Unlock {
            return Ok((Vec::new(), None));
        }
        if plan.dry_run {
            return Ok((approve()?, None));
        }
        let runtime = RuntimeDir::open(&plan.runtime_bases)?;
        for attempt in 1..=TRIES {
            let approved = approve()?;
            let keys: Vec<Key> = approved.iter().map(run_key).collect();
            let lock = runlock::take(&runtime, &dirs.target_dir, &keys, plan.lock_timeout, self.interrupt, |lock| {
                let holder = self.lock_holder(lock);
                let (dir, timeout) = (dirs.target_dir.clone(), plan.lock_timeout);
                (self.emit)(Event::WaitingForOtherRun { dir, holder: holder.clone(), timeout });
                holder
            })?;
            waited.set(waited.get() || lock.waited);
            // Whatever happened to the names meanwhile, the run acts only on what the guard approved.
            match guard::confirm(&approved, dirs, &plan.protected, plan.force, plan.platform.files) {
                Ok(()) => {
                    for prefix in [DELETER_LOG_PREFIX, TRASH_LOCK_PREFIX, RUN_LOCK_PREFIX] {
                        runtime.remove_unlocked(prefix);
                    }
                    return Ok((approved, Some((lock, runtime))));
                }
                Err(_) if lock.waited && attempt < TRIES => {}
                Err(refusal) => return Err(refusal.into()),
            }
        }
        unreachable!("the last try returns")
    }

    /// Who cargo runs as: a root run in a workspace another user owns runs it as that user. Cargo runs the
    /// workspace's code (build scripts, proc macros): root must not run another user's code with root's rights, and
    /// what the check builds must stay the owner's, so that their next build can write over it.
    #[cfg(unix)]
    fn owner_to_run_as(dirs: &Dirs) -> Option<RunAs> {
        if !rustix::process::geteuid().is_root() {
            return None;
        }
        let st = rustix::fs::stat(&dirs.workspace_root).ok()?;
        if st.st_uid == 0 {
            return None;
        }
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(st.st_uid)).ok().flatten();
        Some(RunAs {
            uid: st.st_uid,
            gid: user.as_ref().map_or(st.st_gid, |u| u.gid.as_raw()),
            home: user.map(|u| u.dir),
        })
    }

    /// Windows has no root to hand the check to another user: cargo runs as the user who runs this.
    #[cfg(windows)]
    fn owner_to_run_as(_dirs: &Dirs) -> Option<RunAs> {
        None
    }

    /// The process that owns one of cargo's lock files (holds it exclusively; else one that holds it at all).
    #[cfg(unix)]
    fn lock_owner(&self, lock: &Path) -> Option<crate::model::Process> {
        let found = scan::scan(&self.plan.platform, &Roots::new([lock]), self.me).ok()?.found;
        let holds = |f: &crate::model::Found, how: Option<Hold>| {
            f.handles.iter().any(|h| h.kind == HandleKind::Lock && (how.is_none() || h.hold == how))
        };
        let owner = found
            .iter()
            .position(|f| holds(f, Some(Hold::Exclusive)))
            .or_else(|| found.iter().position(|f| holds(f, None)));
        owner.or((!found.is_empty()).then_some(0)).map(|i| found[i].process.clone())
    }

    /// Windows' Restart Manager on the files a delete failed on: who Windows says uses them, beside what the scan
    /// saw. Only said when it names someone; a session it cannot have is said too.
    #[cfg(windows)]
    fn cross_check(&self, errors: &[(PathBuf, std::io::Error)]) {
        let files: Vec<PathBuf> = errors.iter().map(|(p, _)| p.clone()).filter(|p| p.is_file()).collect();
        if files.is_empty() {
            return;
        }
        match platform::windows::restart::users_of(&files) {
            Ok(users) if users.is_empty() => {}
            Ok(users) => {
                let named: Vec<String> = users.iter().map(|(pid, name)| format!("{name} (pid {pid})")).collect();
                (self.emit)(Event::Warning(format!(
                    "Windows' Restart Manager says {} still {} what could not be removed",
                    named.join(", "),
                    if users.len() == 1 { "uses" } else { "use" }
                )));
            }
            Err(e) => (self.emit)(Event::Warning(format!("cannot ask Windows' Restart Manager who uses it: {e}"))),
        }
    }

    /// Who holds the run lock file `lock`, in words.
    fn lock_holder(&self, lock: &Path) -> String {
        self.holders_of(lock).0
    }

    /// The processes that have `path` open (a lock file, a trash dir whose lock is taken), in words, and whether
    /// every one is a detached deleter of this tool.
    fn holders_of(&self, path: &Path) -> (String, bool) {
        let found = scan::scan(&self.plan.platform, &Roots::new([path]), self.me).map(|s| s.found).unwrap_or_default();
        let me = std::env::current_exe().ok();
        let deleter = |p: &crate::model::Process| {
            p.exe.is_some() && p.exe == me && p.cmdline.iter().any(|a| a == "--purge-detached")
        };
        let words: Vec<String> = found
            .iter()
            .map(|f| {
                let p = &f.process;
                format!("pid {} {} ({})", p.pid, p.display_name(), shell_words::join(&p.cmdline))
            })
            .collect();
        if words.is_empty() {
            return ("a process that could not be inspected".into(), false);
        }
        (words.join(", "), found.iter().all(|f| deleter(&f.process)))
    }

    /// `--detach`: hands the trash to a detached deleter, unless the disk is too full to wait (then, or if it does
    /// not start, the purge stays in the foreground, and the report says why).
    fn detach(&self, dirs: &Dirs, swapped: &swap::Swapped, runtime: &RuntimeDir, id: &str) -> Option<Detached> {
        let settings = self.plan.detach?;
        if swapped.trash.is_empty() {
            return None;
        }
        if let Some(low) = detach::too_full(&dirs.target_dir, settings.min_free) {
            (self.emit)(Event::Warning(format!(
                "only {} free on the target's filesystem (under {}): deleting in the foreground to get the space \
                 back now",
                crate::report::human_bytes(low.free),
                crate::report::human_bytes(low.floor)
            )));
            return None;
        }
        match detach::spawn(&swapped.trash, runtime, id, settings.workers, self.plan.lock_timeout) {
            Ok(detached) => {
                (self.emit)(Event::PurgeDetached(detached.clone()));
                Some(detached)
            }
            Err(e) => {
                (self.emit)(Event::Warning(format!("{e}; deleting in the foreground")));
                None
            }
        }
    }

    /// After detaching: the check, in the foreground; the deleter reports to its log.
    fn verify_after_detaching(
        &self,
        dirs: &Dirs,
        detached: Detached,
        mounts: Vec<PathBuf>,
        record: &mut Record,
    ) -> Result<(), Error> {
        record.detached = Some(detached);
        if let Some(verified) = self.verify(dirs).transpose()? {
            record.verified = Some(verified);
            (self.emit)(Event::Verified(verified));
            if verified.interrupted || self.interrupt.is_set() {
                let note = "the old tree is still being deleted in the background";
                return Err(Interrupted { during: "while verifying", note }.into());
            }
            if !verified.success() {
                let command = self.verify_request(dirs).shown();
                return Err(VerifyError::failed(command, verified.exit_code).into());
            }
        }
        if mounts.is_empty() { Ok(()) } else { Err(PurgeError::MountsLeft { mounts }.into()) }
    }

    /// `--if-broken`: runs the check, and says whether the build dir needs a clean. A check that waits on a build or
    /// artifact dir lock is stopped; an owner the policy would stop is stopped too, and the check runs once more
    /// (a stuck build is not a broken cache); an owner it would spare ends the run (exit 4), nothing deleted.
    fn check_first(&self, dirs: &Dirs, roots: &Roots, locks: &[PathBuf], record: &mut Record) -> Result<Health, Error> {
        let plan = self.plan;
        for attempt in 0..2 {
            let req = self.check_request(dirs);
            let ran = check::run(&req, &self.watch(dirs, locks))?;
            let v = ran.verified;
            if v.interrupted || self.interrupt.is_set() {
                return Err(Interrupted { during: "during the check", note: "nothing was signalled or deleted" }.into());
            }
            let duration_ms = ran.duration_ms;
            let mut checked = |result: CheckResult, exit_code| {
                let c = Checked { result, exit_code, duration_ms };
                (self.emit)(Event::Checked(c.clone()));
                record.check = Some(c);
            };
            if let Some(lock) = ran.blocked {
                let owners = self.decide(scan::scan(&plan.platform, &Roots::new([lock.as_path()]), self.me)?, roots);
                let owner = owners.iter().find(|h| h.handles.iter().any(|x| x.hold == Some(Hold::Exclusive)));
                let holder = owner.map(|h| h.process.pid);
                checked(CheckResult::Blocked { lock: lock.clone(), holder }, None);
                if attempt == 0 && owner.is_some_and(|h| h.verdict == Verdict::Terminate) {
                    if plan.dry_run {
                        self.report_holders(&owners, &Uninspectable::default(), |_| Some(Outcome::WouldTerminate));
                        record.holders.extend(owners);
                        return Ok(Health::Healthy);
                    }
                    self.report_holders(&owners, &Uninspectable::default(), |_| None);
                    record.holders.extend(owners);
                    self.stop_until_free(&Roots::new([lock.as_path()]), std::slice::from_ref(&lock), record)?;
                    continue;
                }
                record.holders.extend(owners.iter().cloned());
                return Err(HoldersRemain::LockBusy { locks: busy_locks(&[lock], &owners) }.into());
            }
            let (health, result) = judge(&v, &ran.diagnostics, roots, req.shown());
            checked(result, v.exit_code);
            return health;
        }
        unreachable!("the second check returns whatever it finds")
    }

    /// The smallest repair: the damaged units are moved out under cargo's own locks (as the tree's owner) and
    /// purged, and the check runs again. True when it passes; false (the whole tree is then cleaned) when a build
    /// holds the profile's locks or the check still shows damage.
    #[cfg(unix)]
    fn repair(
        &self,
        dirs: &Dirs,
        a: &Anchored,
        units: &repair::Units,
        roots: &Roots,
        locks: &[PathBuf],
        record: &mut Record,
    ) -> Result<bool, Error> {
        let Some(d) = &a.dir else { return Ok(false) };
        let trash = {
            let acting = platform::Acting::as_owner(Some(d.owner))
                .map_err(|e| PurgeError::from(RemoveError::new("act with the rights of the owner of", &a.path, e)))?;
            let Some(_cargo_locks) = repair::lock_profile(&d.fd, &units.profile) else {
                (self.emit)(Event::Warning("a build took the build dir's lock: cleaning the whole tree".into()));
                return Ok(false);
            };
            repair::move_out(units, &a.real, &d.fd, &swap::run_id(), acting.uid()).map_err(PurgeError::from)?
        };
        let progress = Progress::default();
        let purged = purge::purge(&[trash], self.plan.purge, None, &progress, self.interrupt);
        if let Some((path, e)) = purged.problems.errors.into_iter().next() {
            return Err(PurgeError::from(RemoveError::new("remove", path, e)).into());
        }
        let ran = check::run(&self.check_request(dirs), &self.watch(dirs, locks))?;
        let healed = ran.verified.success() && !ran.verified.interrupted;
        let mut rebuilt = ran.rebuilt.clone();
        rebuilt.sort();
        rebuilt.dedup();
        let repaired = Repaired {
            units: units.names.clone(),
            rebuilt,
            files: purged.removed.files,
            bytes: purged.removed.bytes,
            healed,
            check_ms: ran.duration_ms,
        };
        (self.emit)(Event::Repaired(repaired.clone()));
        record.repaired = Some(repaired);
        if healed {
            record.verified = Some(ran.verified);
            return Ok(true);
        }
        if ran.verified.interrupted || self.interrupt.is_set() {
            let note = "the rest of the tree is as it was";
            return Err(Interrupted { during: "during the check after the repair", note }.into());
        }
        let again = diagnose::diagnose(&ran.diagnostics, roots);
        if matches!(again, Diagnosis::CodeError) && ran.verified.exit_code != Some(1) {
            // No damage left, the code's own errors remain: a clean would not change that.
            record.verified = Some(ran.verified);
            return Err(VerifyError::failed(self.check_request(dirs).shown(), ran.verified.exit_code).into());
        }
        (self.emit)(Event::Warning("the check still fails after the repair: cleaning the whole tree".into()));
        Ok(false)
    }

    /// The check of `--if-broken`: the verify's command, with JSON diagnostics, reading stdout too.
    fn check_request<'a>(&'a self, dirs: &'a Dirs) -> verify::Request<'a> {
        verify::Request { read_stdout: true, json_diagnostics: true, ..self.verify_request(dirs) }
    }

    fn watch<'a>(&'a self, dirs: &'a Dirs, locks: &'a [PathBuf]) -> check::Watch<'a> {
        check::Watch {
            platform: &self.plan.platform,
            interrupt: self.interrupt,
            dirs,
            locks,
            cargo_home: self.plan.cargo_home.as_deref(),
            check_args: &self.plan.check_args,
            emit: self.emit,
            on_package_cache: Box::new(|b| self.name_lock_holders(b)),
        }
    }

    /// Applies the policy to a scan.
    fn decide(&self, scan: Scan, roots: &Roots) -> Vec<Holder> {
        let policy = Policy::for_run(&scan.table, self.me, self.plan.all_holders, self.plan.mode == Mode::Unlock);
        policy::decide(scan.found, &scan.table, roots, &policy)
    }

    fn report_holders(
        &self,
        holders: &[Holder],
        uninspectable: &Uninspectable,
        outcome: impl Fn(&Holder) -> Option<Outcome>,
    ) {
        for h in holders {
            (self.emit)(Event::Holder { holder: h.clone(), outcome: outcome(h) });
        }
        let (mode, uninspectable) = (self.plan.mode, uninspectable.clone());
        (self.emit)(Event::Scanned { mode, holders: holders.len(), uninspectable });
    }

    /// Terminates the holders to terminate, re-scans, and repeats while new ones appear (a build started
    /// meanwhile) or a cargo lock is still taken.
    fn stop_until_free(&self, roots: &Roots, locks: &[PathBuf], record: &mut Record) -> Result<(), Error> {
        let mut pending: Vec<Holder> =
            record.holders.iter().filter(|h| h.verdict == Verdict::Terminate).cloned().collect();
        for round in 0..ROUNDS {
            if pending.is_empty() {
                // Nothing was stopped, so the scan is still current; only holders it could not see remain to check.
                let locks = busy_locks(locks, &record.holders);
                return if locks.is_empty() { Ok(()) } else { Err(HoldersRemain::LockBusy { locks }.into()) };
            }
            let targets: Vec<Identity> = pending.iter().map(|h| Identity::from(&h.process)).collect();
            let done = terminate::terminate(&targets, self.plan.stop, &self.plan.platform, self.interrupt, self.emit);
            for (t, ended) in targets.iter().zip(done.ended) {
                record.outcomes.insert(t.pid, (ended.outcome, ended.note));
            }
            if done.interrupted {
                return Err(Interrupted { during: "while stopping holders", note: "nothing was deleted" }.into());
            }
            let survivors: Vec<(Named, String)> = pending
                .iter()
                .filter_map(|h| match record.outcomes.get(&h.process.pid) {
                    Some((Outcome::Survived, note)) => Some((named(h), note.clone().unwrap_or_default())),
                    _ => None,
                })
                .collect();
            if !survivors.is_empty() {
                return Err(HoldersRemain::Survived { survivors }.into());
            }
            let fresh = self.decide(scan::scan(&self.plan.platform, roots, self.me)?, roots);
            // A process already shown keeps the verdict it was shown with: one spared then (a waiter that took the
            // lock once its owner was stopped is a build making progress) is left alone now, and said so.
            let shown =
                |h: &Holder| record.holders.iter().any(|r| Identity::from(&r.process) == Identity::from(&h.process));
            let mut progressing = HashSet::new();
            for h in fresh.iter().filter(|h| h.verdict == Verdict::Terminate && shown(h)) {
                if record.outcomes.get(&h.process.pid).is_some_and(|(o, _)| *o == Outcome::Spared) {
                    progressing.insert(h.process.pid);
                    let note = "it took the lock once the owner was stopped: a build making progress, left alone";
                    record.outcomes.insert(h.process.pid, (Outcome::Spared, Some(note.into())));
                }
            }
            // A waiter's child that inherited its lock (`flock LOCK cmd`) is that waiter's build going on.
            let waiters: HashSet<u32> = record
                .holders
                .iter()
                .filter(|r| r.spare_reason == Some(SpareReason::NotOwner))
                .map(|r| r.process.pid)
                .collect();
            let (mut again, mut children) = (Vec::new(), Vec::new());
            for h in fresh.iter().filter(|h| h.verdict == Verdict::Terminate && !shown(h)) {
                if !descends_from(h, &waiters, &fresh) {
                    again.push(h.clone());
                    continue;
                }
                progressing.insert(h.process.pid);
                let spared = Holder { verdict: Verdict::Spare, spare_reason: Some(SpareReason::NotOwner), ..h.clone() };
                (self.emit)(Event::Holder { holder: spared.clone(), outcome: None });
                let note = "started by a waiter that took the lock: a build making progress, left alone";
                record.outcomes.insert(h.process.pid, (Outcome::Spared, Some(note.into())));
                children.push(spared);
            }
            record.holders.extend(children);
            let busy: Vec<BusyLock> = busy_locks(locks, &fresh)
                .into_iter()
                .filter(|b| !b.holder.as_ref().is_some_and(|(who, _, _)| progressing.contains(&who.pid)))
                .collect();
            if again.is_empty() && busy.is_empty() {
                return Ok(());
            }
            if round + 1 == ROUNDS {
                return Err(
                    HoldersRemain::KeepComing { holders: again.iter().map(named).collect(), locks: busy }.into()
                );
            }
            for h in &again {
                (self.emit)(Event::Holder { holder: h.clone(), outcome: None });
            }
            // One entry per pid: a pid seen again as another process (it ran exec, or was reused) is that one now.
            record.holders.retain(|r| !again.iter().any(|a| a.process.pid == r.process.pid));
            record.holders.extend(again.iter().cloned());
            pending = again;
        }
        Ok(())
    }

    /// The verifying `cargo check` (unless `--no-verify`), its lines reported as they come and the holder of a lock
    /// it waits for named.
    fn verify(&self, dirs: &Dirs) -> Option<Result<Verified, VerifyError>> {
        let plan = self.plan;
        let req = self.verify_request(dirs);
        let on_line = |_: verify::Stream, line: &str| {
            (self.emit)(Event::CargoLine(line.to_string()));
            if let Some(blocked) = verify::blocked_on(line, dirs, plan.cargo_home.as_deref()) {
                self.name_lock_holders(&blocked);
            }
        };
        plan.verify.then(|| {
            (self.emit)(Event::VerifyStarted { command: req.shown() });
            verify::run(&req, &plan.platform, self.interrupt, &on_line, &|_| false)
        })
    }

    fn verify_request<'a>(&'a self, dirs: &'a Dirs) -> verify::Request<'a> {
        verify::Request {
            cargo: &self.plan.cargo,
            subcommand: self.plan.check_with,
            read_stdout: false,
            args: &self.plan.check_args,
            dirs,
            color: self.plan.output.style.color,
            verbosity: match self.plan.output.style {
                s if s.quiet => Some("-q"),
                s if s.verbose > 1 => Some("-v"),
                _ => None,
            },
            stdout_to_stderr: self.plan.output.format == Format::Json,
            json_diagnostics: false,
            run_as: self.cargo_user.get().cloned().flatten(),
        }
    }

    /// The end of `--unlock`: nothing to delete, only the check.
    fn verify_only(&self, dirs: &Dirs, record: &mut Record) -> Result<(), Error> {
        let Some(verified) = self.verify(dirs).transpose()? else { return Ok(()) };
        record.verified = Some(verified);
        (self.emit)(Event::Verified(verified));
        if verified.interrupted || self.interrupt.is_set() {
            return Err(Interrupted { during: "while verifying", note: "nothing was deleted" }.into());
        }
        if !verified.success() {
            let command = self.verify_request(dirs).shown();
            return Err(VerifyError::failed(command, verified.exit_code).into());
        }
        Ok(())
    }

    /// Purges the trash while `cargo check` runs; the run ends when both have.
    fn purge_and_verify(
        &self,
        dirs: &Dirs,
        swapped: swap::Swapped,
        locks: Option<TrashLocks>,
        record: &mut Record,
    ) -> Result<(), Error> {
        let plan = self.plan;
        let progress = Arc::new(Progress::default());
        (self.emit)(Event::PurgeStarted(Arc::clone(&progress)));
        let (purged, verified) = std::thread::scope(|s| {
            let purge = s.spawn(|| purge::purge(&swapped.trash, plan.purge, locks, &progress, self.interrupt));
            let verified = self.verify(dirs);
            (purge.join().expect("the purge thread panicked"), verified)
        });
        for m in &purged.problems.skipped_mounts {
            (self.emit)(Event::Warning(format!("left mount point {} and what is under it alone", m.display())));
        }
        for (path, e) in &purged.problems.errors {
            (self.emit)(Event::Warning(format!("could not remove {}: {e}", path.display())));
        }
        #[cfg(windows)]
        self.cross_check(&purged.problems.errors);
        let mut foreign = Vec::new();
        for path in &purged.problems.busy {
            let (holders, ours) = self.holders_of(path);
            let reason = if ours {
                format!("a detached purge of this tool is deleting it ({holders})")
            } else {
                foreign.push(path.clone());
                format!("its lock is held by {holders}")
            };
            (self.emit)(Event::Warning(format!(
                "left {}: {reason}; the next run removes what remains",
                path.display()
            )));
            record.left.push(Left { path: path.clone(), reason });
        }
        record.removed = Some(purged.removed);
        (self.emit)(Event::Removed(purged.removed));
        let verified = verified.transpose()?;
        if let Some(v) = verified {
            record.verified = Some(v);
            (self.emit)(Event::Verified(v));
        }
        if purged.interrupted || verified.is_some_and(|v| v.interrupted) || self.interrupt.is_set() {
            let left = swapped.trash.iter().any(|t| std::fs::symlink_metadata(&t.path).is_ok());
            let note = if left {
                "the rest of the old tree stays in the trash; the next run removes it"
            } else {
                "the old tree was already removed"
            };
            // The purge and the check run side by side: name the one the interrupt stopped.
            let during = if verified.is_some_and(|v| v.interrupted) && !purged.interrupted {
                "while verifying"
            } else {
                "while removing the old tree"
            };
            return Err(Interrupted { during, note }.into());
        }
        if let Some((path, e)) = purged.problems.errors.into_iter().next() {
            return Err(PurgeError::from(RemoveError::new("remove", path, e)).into());
        }
        if !foreign.is_empty() {
            return Err(PurgeError::LeftLocked { left: foreign }.into());
        }
        let mut mounts = swapped.mounts;
        mounts.extend(purged.problems.skipped_mounts);
        if !mounts.is_empty() {
            return Err(PurgeError::MountsLeft { mounts }.into());
        }
        match verified {
            Some(v) if !v.success() => {
                let command = self.verify_request(dirs).shown();
                Err(VerifyError::failed(command, v.exit_code).into())
            }
            _ => Ok(()),
        }
    }

    /// Cargo said it is blocked on a lock: say who holds it, which cargo never does.
    fn name_lock_holders(&self, blocked: &Blocked) {
        let what = blocked.lock.in_words();
        let roots = Roots::new(blocked.files.iter().map(PathBuf::as_path));
        // A clean does not reach outside the workspace; `--unlock` is the way to free cargo's home, for an owner it
        // would stop (with `--all-holders`, for one the policy spares).
        let hint = |f: &crate::model::Found| {
            let owns = f.handles.iter().any(|h| h.hold == Some(Hold::Exclusive));
            if blocked.lock != LockName::PackageCache || self.plan.mode != Mode::Clean || !owns {
                return "";
            }
            match policy::kind_of(&f.process, &roots) {
                Kind::Ide | Kind::Other => "; `cargo safeclean --unlock --all-holders` would stop it",
                _ => "; `cargo safeclean --unlock` would stop it",
            }
        };
        // Our own `cargo check` has the file open while it waits; the scan leaves out this run's family.
        let found = match scan::scan(&self.plan.platform, &roots, self.me) {
            Ok(s) => s.found,
            Err(e) => return (self.emit)(Event::Warning(format!("cannot tell who holds the {what} lock: {e}"))),
        };
        let locked = |f: &crate::model::Found| f.handles.iter().any(|h| h.kind == HandleKind::Lock);
        let found: Vec<_> = if found.iter().any(locked) { found.into_iter().filter(locked).collect() } else { found };
        if found.is_empty() {
            (self.emit)(Event::Warning(format!(
                "cargo is waiting for the {what} lock, and no process that could be inspected holds it (another \
                 user's process?)"
            )));
        }
        for f in found {
            let p = &f.process;
            let cwd = self.plan.platform.cwd(p.pid).map_or_else(|| "?".into(), |c| c.display().to_string());
            (self.emit)(Event::Warning(format!(
                "cargo is waiting for the {what} lock, held by pid {} {} ({}) in {cwd}{}",
                p.pid,
                p.display_name(),
                shell_words::join(&p.cmdline),
                hint(&f)
            )));
        }
    }
}

/// What a check that ran to its end says: healthy; damaged (clean); or, as an error, cargo refusing the command
/// (exit 1: its command line or configuration, not a failed build), an error about the build dir no signature
/// explains, or broken code.
fn judge(
    v: &Verified,
    diagnostics: &[diagnose::Diagnostic],
    roots: &Roots,
    command: String,
) -> (Result<Health, Error>, CheckResult) {
    if v.success() {
        return (Ok(Health::Healthy), CheckResult::Healthy);
    }
    if v.exit_code == Some(1) {
        return (Err(VerifyError::Rejected { command, deleted: false }.into()), CheckResult::CodeError);
    }
    match diagnose::diagnose(diagnostics, roots) {
        Diagnosis::Damage { signature, path } => {
            (Ok(Health::Damaged(path.clone())), CheckResult::Corrupt { signature, path })
        }
        Diagnosis::Unknown { path } => {
            (Err(VerifyError::Unknown { command, path: path.clone() }.into()), CheckResult::Unknown { path })
        }
        Diagnosis::CodeError => {
            (Err(VerifyError::CodeBroken { command, exit_code: v.exit_code }.into()), CheckResult::CodeError)
        }
    }
}

/// The run lock, held for the whole run, and the runtime dir it lies in.
type Locked = (runlock::RunLock, RuntimeDir);

/// What the run lock of an approved dir is keyed on: the dir itself, or where it will be.
fn run_key(a: &Anchored) -> Key {
    match a.id() {
        Some(id) => Key::Dir(id),
        None => Key::Missing(a.parent_id, a.name_bytes()),
    }
}

fn named(h: &Holder) -> Named {
    Named { pid: h.process.pid, name: h.process.display_name().to_string() }
}

/// The lock files among `locks` that some process holds right now, with the spared holder that has each.
fn busy_locks(locks: &[PathBuf], holders: &[Holder]) -> Vec<BusyLock> {
    locks
        .iter()
        .filter(|l| is_held(l))
        .cloned()
        .map(|path| {
            let with = |wanted: &dyn Fn(&crate::model::Handle) -> bool| {
                holders.iter().find(|h| h.handles.iter().any(|x| x.path == path && wanted(x)))
            };
            // The owner; else one that shares it; else one that has the file open (lsof on macOS shows no lock).
            let owner =
                with(&|x| x.kind == HandleKind::Lock && x.hold != Some(Hold::Waiting) && x.hold != Some(Hold::Shared));
            let sharer = with(&|x| x.kind == HandleKind::Lock && x.hold == Some(Hold::Shared));
            let (by, stand) = match (owner, sharer) {
                (Some(h), _) => (Some(h), LockStand::Owns),
                (None, Some(h)) => (Some(h), LockStand::Shares),
                (None, None) => (with(&|x| x.kind == HandleKind::Fd), LockStand::HasOpen),
            };
            let holder = by.map(|h| (named(h), h.kind.as_str(), h.spare_reason));
            BusyLock { path, holder, stand }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Process;

    fn holder(pid: u32, parent: u32) -> Holder {
        Holder::sample(Process::sample(pid, parent))
    }

    #[test]
    fn what_a_waiter_started_is_its_build_going_on() {
        let waiters = HashSet::from([10]);
        let fresh = [holder(10, 1), holder(11, 10), holder(12, 11), holder(20, 1), holder(30, 30)];
        let descends = |pid| descends_from(fresh.iter().find(|h| h.process.pid == pid).unwrap(), &waiters, &fresh);
        assert!(descends(11), "a child");
        assert!(descends(12), "a grandchild");
        assert!(!descends(20), "another process");
        assert!(!descends(30), "a loop in the parents ends");
    }
}
