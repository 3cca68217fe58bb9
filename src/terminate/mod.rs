//! Stopping processes: every target is signalled together and waited on together, so the whole takes as long
//! as the slowest process, not the sum.
//!
//! [`machine`] decides (pure); the platform's process handles touch processes (pidfd or `kill(2)`); this module
//! drives one with the other on the real clock and says what happened as [`Event`]s.

pub mod machine;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::event::Event;
use crate::interrupt::Interrupt;
use crate::model::{Outcome, SpareReason};
use crate::platform::{Identity, Platform, ProcHandle};
pub use machine::{Ended, Machine, Sig, SignalError, Step};

/// How long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// After SIGKILL, before a process counts as a survivor.
    pub kill_timeout: Duration,
}

/// The result of [`terminate`]: one [`Ended`] per target, in order.
#[derive(Debug)]
pub struct Terminated {
    pub ended: Vec<Ended>,
    pub interrupted: bool,
}

/// Stops `targets`: SIGTERM and SIGCONT to all, wait up to the grace period, SIGKILL to the rest, wait up to the
/// kill timeout. On interrupt it stops escalating at once.
pub fn terminate(
    targets: &[Identity],
    settings: Settings,
    platform: &Platform,
    interrupt: &Interrupt,
    emit: &dyn Fn(Event),
) -> Terminated {
    let start = Instant::now();
    let handles: Vec<Option<ProcHandle>> = targets.iter().map(|t| platform.open_process(t)).collect();
    let mut m = Machine::new(targets.len(), settings.grace, settings.kill_timeout);
    for (i, h) in handles.iter().enumerate() {
        if h.is_none() {
            m.signal_failed(i, Sig::Term, SignalError::Gone, Duration::ZERO);
        }
    }
    let mut reported = vec![false; targets.len()];
    let mut interrupted = false;
    // What was sent last, and the deadline last announced: each new wait is announced once, for a countdown.
    let (mut sent, mut announced) = (Sig::Term, None);
    loop {
        report_ended(&m, targets, &mut reported, emit);
        match m.step(start.elapsed()) {
            Step::Done => break,
            Step::Signal(list) => {
                for (i, sig) in list {
                    if sig != Sig::Cont {
                        sent = sig;
                    }
                    let Some(h) = handles[i].as_ref().filter(|_| m.ended(i).is_none()) else { continue };
                    match platform.signal(h, sig) {
                        Ok(()) => emit(Event::Signal { pid: h.pid(), signal: sig }),
                        Err(e) => m.signal_failed(i, sig, e, start.elapsed()),
                    }
                }
            }
            Step::Wait { until } => {
                if interrupt.is_set() {
                    interrupted = true;
                    m.abandon(start.elapsed());
                    continue;
                }
                let live = m.live_indices();
                if announced != Some(until) {
                    announced = Some(until);
                    let pids = live.iter().map(|&i| targets[i].pid).collect();
                    emit(Event::Waiting { pids, after: sent, within: until.saturating_sub(start.elapsed()) });
                }
                let live_handles: Vec<&ProcHandle> = live.iter().filter_map(|&i| handles[i].as_ref()).collect();
                let waited = platform.wait_any(&live_handles, start + until, interrupt);
                let now = start.elapsed();
                for j in waited.exited {
                    m.exited(live[j], now);
                }
                if waited.interrupted {
                    interrupted = true;
                    m.abandon(now);
                }
            }
        }
    }
    report_ended(&m, targets, &mut reported, emit);
    let ended = (0..targets.len()).map(|i| m.ended(i).cloned().expect("the machine ends every process")).collect();
    Terminated { ended, interrupted }
}

fn report_ended(m: &Machine, targets: &[Identity], reported: &mut [bool], emit: &dyn Fn(Event)) {
    for (i, t) in targets.iter().enumerate() {
        if let (false, Some(ended)) = (reported[i], m.ended(i)) {
            reported[i] = true;
            let after_ms = u64::try_from(ended.at.as_millis()).unwrap_or(u64::MAX);
            emit(match ended.outcome {
                Outcome::Survived => {
                    Event::Survived { pid: t.pid, note: ended.note.clone().unwrap_or_default(), after_ms }
                }
                outcome => Event::Exited { pid: t.pid, outcome, after_ms },
            });
        }
    }
}

/// A process by pid and name, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub pid: u32,
    pub name: String,
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} {}", self.pid, self.name)
    }
}

/// One of cargo's locks that is still taken when the tree should be swapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyLock {
    pub path: PathBuf,
    /// The spared process that has it, with its kind and why it was spared; `None` when no process that could be
    /// inspected has it.
    pub holder: Option<(Named, &'static str, Option<SpareReason>)>,
    pub stand: LockStand,
}

/// How that process stands towards the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockStand {
    /// It owns it (the open file description that holds the exclusive lock).
    Owns,
    /// It holds it shared, as cargo 1.96's `.cargo-lock` is held.
    Shares,
    /// It has the lock file open; which process owns the lock cannot be seen here (lsof on macOS).
    HasOpen,
}

impl fmt::Display for BusyLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        let Some((who, kind, reason)) = &self.holder else {
            return write!(
                f,
                "{path} is locked by a process that could not be inspected (another user's? run {} to see it)",
                if cfg!(windows) { "as an administrator" } else { "as root" }
            );
        };
        // Advice only where it is true for the flags given: `--all-holders` stops what the policy spares, nothing
        // else.
        let advice = match reason {
            Some(SpareReason::Policy) => " (--all-holders stops it)".to_string(),
            Some(SpareReason::NotOwner) => format!(
                " (--unlock stops only a lock's owner; it lets go when its work ends, or stop it yourself: {} {})",
                if cfg!(windows) { "taskkill /PID" } else { "kill" },
                who.pid
            ),
            Some(SpareReason::Protected) => " (this run never signals pid 1 or its own family)".to_string(),
            None => String::new(),
        };
        match self.stand {
            LockStand::Owns => write!(f, "{path} is locked by {who}, spared as {kind}{advice}"),
            LockStand::Shares => write!(f, "{path} is held shared by {who}, spared as {kind}{advice}"),
            LockStand::HasOpen => write!(
                f,
                "{path} is locked, and {who}, spared as {kind}, has it open (which process owns the lock cannot be \
                 seen here){advice}"
            ),
        }
    }
}

/// Why holders remain, so that nothing was deleted (exit 4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoldersRemain {
    #[error(
        "--no-kill was given and {} {} (pid{} {})",
        if pids.len() == 1 { "a process holds" } else { "processes hold" },
        dir.display(),
        if pids.len() == 1 { "" } else { "s" },
        join(pids, ", ")
    )]
    NoKill { dir: PathBuf, pids: Vec<u32> },
    #[error(
        "{} still alive: {}",
        if survivors.len() == 1 { "a holder is" } else { "holders are" },
        survivors.iter().map(|(who, note)| format!("{who} ({note})")).collect::<Vec<_>>().join("; ")
    )]
    Survived { survivors: Vec<(Named, String)> },
    #[error("a build still holds its lock: {}", join(locks, "; "))]
    LockBusy { locks: Vec<BusyLock> },
    #[error(
        "processes keep taking hold of the target dir: {}",
        holders.iter().map(ToString::to_string).chain(locks.iter().map(ToString::to_string)).collect::<Vec<_>>().join("; ")
    )]
    KeepComing { holders: Vec<Named>, locks: Vec<BusyLock> },
}

impl HoldersRemain {
    /// What to do about them. A busy lock's advice depends on its holder, so it stays with each lock.
    #[must_use]
    pub fn help(&self) -> Option<String> {
        match self {
            HoldersRemain::NoKill { .. } => Some("stop them, or run without --no-kill".into()),
            HoldersRemain::Survived { survivors } => Some(format!(
                "once {} gone, run cargo safeclean again",
                if survivors.len() == 1 { "it is" } else { "they are" }
            )),
            HoldersRemain::LockBusy { .. } => None,
            HoldersRemain::KeepComing { .. } => {
                Some("stop what starts them (an editor's cargo check, a watcher) and run again".into())
            }
        }
    }

    /// What was done: nothing deleted, and with `--no-kill` nothing signalled either.
    #[must_use]
    pub fn note(&self) -> Option<String> {
        Some(match self {
            HoldersRemain::NoKill { .. } => "nothing was changed".into(),
            _ => "nothing was deleted".into(),
        })
    }
}

fn join<T: fmt::Display>(items: &[T], separator: &str) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(separator)
}
