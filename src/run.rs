//! One run of the pipeline, from options to a filled-in [`Summary`].

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{MessageFormat, MountCheckChoice, Options, SwapChoice};
use crate::error::{Error, Result};
use crate::interrupt::Interrupt;
use crate::model::{Holder, Outcome, Verdict};
use crate::mounts::MountCheck;
use crate::policy::{self, Policy};
use crate::purge::{self, Progress};
use crate::report::{Reporter, Summary};
use crate::scan::{self, Roots};
use crate::terminate::{self, Event, Settings, Target};
use crate::{guard, lock, swap, verify, workspace};

/// How many times to scan, stop and re-scan before giving up on holders that keep appearing.
const ROUNDS: usize = 3;

/// Runs `cargo safeclean` with `opts`, telling `reporter` as it goes and recording into `summary`.
pub fn run(opts: &Options, reporter: &dyn Reporter, interrupt: &Interrupt, summary: &mut Summary) -> Result<()> {
    summary.dry_run = opts.dry_run;
    // The process table is read while `cargo metadata` runs: the user waits for the two together, not in turn.
    let background = scan::start(opts.scan_backend, std::process::id());
    let dirs = workspace::resolve(opts.manifest_path.as_deref(), opts.target_dir.as_deref())?;
    summary.dirs = Some(dirs.clone());
    guard::check(&dirs, &guard::Protected::for_this_user(), opts.force)?;
    reporter.dirs(&dirs);

    let waited = std::cell::Cell::new(false);
    let _run_lock = if opts.dry_run {
        None
    } else {
        let on_wait = || {
            waited.set(true);
            reporter.waiting_for_other_run(&dirs.target_dir);
        };
        lock::run_lock(&dirs.target_dir, interrupt, on_wait).map_err(|e| match e.kind() {
            std::io::ErrorKind::Interrupted => Error::Interrupted("while waiting for another run"),
            _ => Error::Other(anyhow::anyhow!("failed to lock the parent of {}: {e}", dirs.target_dir.display())),
        })?
    };

    let roots = Roots::new(dirs.roots());
    // After waiting for another run, what the early scan saw is stale.
    let first = if waited.get() {
        scan::scan(&roots, opts.scan_backend, std::process::id())
    } else {
        background.finish(&roots)
    };
    let (mut holders, uninspectable) = holders_in(first?, opts, &roots);
    summary.uninspectable = uninspectable;

    if opts.only_if_held && holders.is_empty() {
        reporter.holders(&holders, &summary.uninspectable);
        return Ok(());
    }
    if opts.dry_run {
        for h in &mut holders {
            h.outcome =
                Some(if h.verdict == Verdict::Terminate { Outcome::WouldTerminate } else { Outcome::WouldSpare });
        }
        reporter.holders(&holders, &summary.uninspectable);
        summary.holders = holders;
        return Ok(());
    }
    reporter.holders(&holders, &summary.uninspectable);
    for h in holders.iter_mut().filter(|h| h.verdict == Verdict::Spare) {
        h.outcome = Some(Outcome::Spared);
    }
    summary.holders = holders;

    if opts.no_kill {
        let doomed: Vec<&mut Holder> = summary.holders.iter_mut().filter(|h| h.verdict == Verdict::Terminate).collect();
        if !doomed.is_empty() {
            let pids = doomed.iter().map(|h| h.process.pid.to_string()).collect::<Vec<_>>().join(", ");
            for h in doomed {
                h.outcome = Some(Outcome::WouldTerminate);
            }
            return Err(Error::HoldersRemain(format!(
                "--no-kill was given and processes hold {} (pids {pids}); nothing was changed. Stop them, or run \
                 without --no-kill",
                dirs.target_dir.display()
            )));
        }
    }
    stop_until_free(opts, &roots, reporter, interrupt, summary)?;

    // Swap every dir before purging any, so the tree is usable again as early as possible.
    let id = swap::run_id();
    let mut swapped = swap::Swapped::default();
    for dir in dirs.roots() {
        let s = swap::swap(dir, &id, swap_method(opts), mount_check(opts))?;
        swapped.trash.extend(s.trash);
        swapped.mounts.extend(s.mounts);
    }
    purge_and_verify(opts, &dirs, swapped, reporter, interrupt, summary)
}

fn swap_method(opts: &Options) -> swap::SwapMethod {
    match opts.swap {
        SwapChoice::Auto | SwapChoice::Exchange => swap::SwapMethod::Exchange,
        SwapChoice::Rename => swap::SwapMethod::Rename,
    }
}

fn mount_check(opts: &Options) -> Option<MountCheck> {
    match opts.mount_check {
        MountCheckChoice::Auto => None,
        MountCheckChoice::Openat2 => Some(MountCheck::Openat2),
        MountCheckChoice::Statx => Some(MountCheck::Statx),
        MountCheckChoice::Mountinfo => Some(MountCheck::Mountinfo),
    }
}

/// Applies the policy to a scan.
fn holders_in(scan: scan::Scan, opts: &Options, roots: &Roots) -> (Vec<Holder>, scan::Uninspectable) {
    let policy = Policy::for_self(&scan.table, opts.all_holders);
    (policy::decide(scan.found, &scan.table, roots, &policy), scan.uninspectable)
}

/// Terminates the holders in `summary`, re-scans, and repeats while new ones appear (a build started meanwhile)
/// or a cargo lock is still taken. Fails with exit code 4 if any remain.
fn stop_until_free(
    opts: &Options,
    roots: &Roots,
    reporter: &dyn Reporter,
    interrupt: &Interrupt,
    summary: &mut Summary,
) -> Result<()> {
    let settings = Settings { grace: opts.grace, kill_timeout: opts.kill_timeout, backend: opts.signal_backend };
    let mut pending: Vec<usize> = pending_indices(&summary.holders);
    for round in 0..ROUNDS {
        if pending.is_empty() {
            // Nothing was stopped, so the scan is still current; only holders it could not see remain to check.
            let busy = busy_locks(roots);
            if busy.is_empty() {
                return Ok(());
            }
            let why = busy.iter().map(|l| who_locks(l, &summary.holders)).collect::<Vec<_>>().join("; ");
            return Err(Error::HoldersRemain(format!("a build still holds its lock, so nothing was deleted: {why}")));
        }
        stop(&pending, settings, reporter, interrupt, summary)?;
        let survivors: Vec<String> = summary
            .holders
            .iter()
            .filter(|h| h.outcome == Some(Outcome::Survived))
            .map(|h| {
                format!("pid {} {} ({})", h.process.pid, h.process.display_name(), h.note.as_deref().unwrap_or(""))
            })
            .collect();
        if !survivors.is_empty() {
            return Err(Error::HoldersRemain(format!(
                "{} still alive, so nothing was deleted: {}",
                if survivors.len() == 1 { "a holder is" } else { "holders are" },
                survivors.join("; ")
            )));
        }
        let (again, _) = holders_in(scan::scan(roots, opts.scan_backend, std::process::id())?, opts, roots);
        let again: Vec<Holder> = again.into_iter().filter(|h| h.verdict == Verdict::Terminate).collect();
        let busy = busy_locks(roots);
        if again.is_empty() && busy.is_empty() {
            return Ok(());
        }
        if round + 1 == ROUNDS {
            let who = again.iter().map(|h| format!("pid {} {}", h.process.pid, h.process.display_name()));
            let locks = busy.iter().map(|l| who_locks(l, &summary.holders));
            return Err(Error::HoldersRemain(format!(
                "processes keep taking hold of the target dir, so nothing was deleted: {}; stop what starts them \
                 (an editor's cargo check, a watcher) and run again",
                who.chain(locks).collect::<Vec<_>>().join("; ")
            )));
        }
        reporter.holders(&again, &scan::Uninspectable::default());
        let start = summary.holders.len();
        summary.holders.extend(again);
        pending = (start..summary.holders.len()).collect();
    }
    Ok(())
}

/// Who holds the busy lock file `lock`: a spared holder, or one the scan could not see.
fn who_locks(lock: &std::path::Path, holders: &[Holder]) -> String {
    let by =
        holders.iter().find(|h| h.handles.iter().any(|x| x.kind == crate::model::HandleKind::Lock && x.path == lock));
    match by {
        Some(h) => format!(
            "{} is locked by pid {} {}, spared as {} (--all-holders stops it)",
            lock.display(),
            h.process.pid,
            h.process.display_name(),
            h.kind.as_str()
        ),
        None => format!(
            "{} is locked by a process that could not be inspected (another user's? run as root to see it)",
            lock.display()
        ),
    }
}

/// Cargo's lock files under the roots that some process holds right now.
fn busy_locks(roots: &Roots) -> Vec<PathBuf> {
    roots.paths().iter().flat_map(|r| lock::cargo_locks(r)).filter(|l| lock::is_held(l)).collect()
}

fn pending_indices(holders: &[Holder]) -> Vec<usize> {
    holders.iter().enumerate().filter(|(_, h)| h.verdict == Verdict::Terminate).map(|(i, _)| i).collect()
}

/// Stops the holders at `indices` of `summary.holders` together.
fn stop(
    indices: &[usize],
    settings: Settings,
    reporter: &dyn Reporter,
    interrupt: &Interrupt,
    summary: &mut Summary,
) -> Result<()> {
    if indices.is_empty() {
        return Ok(());
    }
    let targets: Vec<Target> = indices
        .iter()
        .map(|&i| Target { pid: summary.holders[i].process.pid, start_time: summary.holders[i].process.start_time })
        .collect();
    let holders = &summary.holders;
    let by_pid = |pid: u32| indices.iter().map(|&i| &holders[i]).find(|h| h.process.pid == pid);
    let done = terminate::terminate(&targets, settings, interrupt, &mut |event| match event {
        Event::Signal { pid, sig } => {
            if let Some(h) = by_pid(pid) {
                reporter.signal(h, sig);
            }
        }
        Event::Ended { pid, ended } => {
            if let Some(h) = by_pid(pid) {
                reporter.ended(h, ended);
            }
        }
    });
    for (&i, ended) in indices.iter().zip(done.ended) {
        summary.holders[i].outcome = Some(ended.outcome);
        summary.holders[i].note = ended.note;
    }
    if done.interrupted {
        return Err(Error::Interrupted("while stopping holders; nothing was deleted"));
    }
    Ok(())
}

/// Cargo said it is blocked on a lock: say who holds it, which cargo never does.
fn name_lock_holders(what: &str, files: &[PathBuf], opts: &Options, reporter: &dyn Reporter) {
    let roots = Roots::new(files.iter().map(PathBuf::as_path));
    let me = std::process::id();
    let scan = match scan::scan(&roots, opts.scan_backend, me) {
        Ok(s) => s,
        Err(e) => return reporter.warning(&format!("cannot tell who holds the {what} lock: {e}")),
    };
    // Our own `cargo check` has the file open while it waits; the holder is whoever has the lock itself.
    let others: Vec<scan::Found> =
        scan.found.into_iter().filter(|f| !scan.table.ancestors(f.process.pid).contains(&me)).collect();
    let locked = |f: &scan::Found| f.handles.iter().any(|h| h.kind == crate::model::HandleKind::Lock);
    let found: Vec<scan::Found> =
        if others.iter().any(locked) { others.into_iter().filter(locked).collect() } else { others };
    if found.is_empty() {
        reporter.warning(&format!(
            "cargo is waiting for the {what} lock, and no process that could be inspected holds it (another \
             user's process?)"
        ));
    }
    for f in found {
        let p = &f.process;
        let cwd =
            std::fs::read_link(format!("/proc/{}/cwd", p.pid)).map_or_else(|_| "?".into(), |c| c.display().to_string());
        reporter.warning(&format!(
            "cargo is waiting for the {what} lock, held by pid {} {} ({}) in {cwd}",
            p.pid,
            p.display_name(),
            crate::report::shell_words(&p.cmdline)
        ));
    }
}

/// Purges the trash while `cargo check` runs; the run ends when both have.
fn purge_and_verify(
    opts: &Options,
    dirs: &workspace::Dirs,
    swapped: swap::Swapped,
    reporter: &dyn Reporter,
    interrupt: &Interrupt,
    summary: &mut Summary,
) -> Result<()> {
    let progress = Arc::new(Progress::default());
    reporter.purge_started(&progress);
    let req = verify::Request {
        args: &opts.check_args,
        explicit_target_dir: dirs.explicit_target_dir,
        color: if crate::report::Style::resolve(opts).color { "always" } else { "never" },
        stdout_to_stderr: opts.message_format == MessageFormat::Json,
        backend: opts.signal_backend,
    };
    let (purged, verified) = std::thread::scope(|s| {
        let purge =
            s.spawn(|| purge::purge(&swapped.trash, purge::default_workers(), mount_check(opts), &progress, interrupt));
        let verified = (!opts.no_verify).then(|| {
            verify::run(dirs, &req, interrupt, &|cmdline| reporter.verify_started(cmdline), &|line| {
                reporter.verify_line(line);
                if let Some((what, files)) = lock::blocked_on(line, dirs) {
                    name_lock_holders(what, &files, opts, reporter);
                }
            })
        });
        (purge.join().expect("the purge thread panicked"), verified)
    });
    summary.removed = Some(purged.removed);
    reporter.removed(&purged.removed, &purged.problems);
    let verified = match verified {
        Some(Ok(v)) => {
            summary.verify = Some(v);
            reporter.verify_finished(&v);
            Some(v)
        }
        Some(Err(e)) => {
            return Err(Error::Verify(format!(
                "failed to run `cargo check`: {e}; install cargo or set CARGO to its path"
            )));
        }
        None => None,
    };
    if purged.interrupted || verified.is_some_and(|v| v.interrupted) || interrupt.is_set() {
        let left = swapped.trash.iter().any(|t| std::fs::symlink_metadata(t).is_ok());
        return Err(Error::Interrupted(if left {
            "the rest of the old tree stays in the trash; the next run removes it"
        } else {
            "the old tree was already removed"
        }));
    }
    if let Some((path, e)) = purged.problems.errors.into_iter().next() {
        return Err(Error::remove("remove", path, e));
    }
    let mut mounts = swapped.mounts;
    mounts.extend(purged.problems.skipped_mounts);
    if !mounts.is_empty() {
        return Err(Error::MountsLeft { mounts });
    }
    match verified {
        Some(v) if !v.success() => Err(Error::Verify(format!(
            "`cargo check` failed ({}); the target dir was cleaned, so this is a real build error",
            v.exit_code.map_or("killed by a signal".into(), |c| format!("exit code {c}"))
        ))),
        _ => Ok(()),
    }
}
