//! Stopping processes: every target is signalled together and waited on together, so the whole takes as long
//! as the slowest process, not the sum.
//!
//! [`machine`] decides (pure); [`handle`] touches processes (pidfd or `kill(2)`); this module drives one with the
//! other on the real clock.

pub mod handle;
pub mod machine;

use std::time::{Duration, Instant};

use crate::cli::SignalBackend;
use crate::interrupt::Interrupt;
use handle::{ProcHandle, wait_any};
pub use machine::{Ended, Machine, Sig, SignalError, Step};

/// A process to stop, by identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub pid: u32,
    pub start_time: u64,
}

/// How to stop.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub grace: Duration,
    pub kill_timeout: Duration,
    pub backend: SignalBackend,
}

/// What the driver tells the reporter as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    Signal { pid: u32, sig: Sig },
    Ended { pid: u32, ended: &'a Ended },
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
    targets: &[Target],
    settings: Settings,
    interrupt: &Interrupt,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Terminated {
    let start = Instant::now();
    let handles: Vec<Option<ProcHandle>> =
        targets.iter().map(|t| ProcHandle::open(t.pid, t.start_time, settings.backend)).collect();
    let mut m = Machine::new(targets.len(), settings.grace, settings.kill_timeout);
    for (i, h) in handles.iter().enumerate() {
        if h.is_none() {
            m.signal_failed(i, Sig::Term, SignalError::Gone, Duration::ZERO);
        }
    }
    let mut reported = vec![false; targets.len()];
    let mut interrupted = false;
    loop {
        report_ended(&m, targets, &mut reported, on_event);
        match m.step(start.elapsed()) {
            Step::Done => break,
            Step::Signal(list) => {
                for (i, sig) in list {
                    let Some(h) = handles[i].as_ref().filter(|_| m.ended(i).is_none()) else { continue };
                    match h.signal(sig) {
                        Ok(()) => on_event(Event::Signal { pid: h.pid(), sig }),
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
                let live_handles: Vec<&ProcHandle> = live.iter().filter_map(|&i| handles[i].as_ref()).collect();
                let waited = wait_any(&live_handles, start + until, interrupt);
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
    report_ended(&m, targets, &mut reported, on_event);
    let ended = (0..targets.len()).map(|i| m.ended(i).cloned().expect("the machine ends every process")).collect();
    Terminated { ended, interrupted }
}

fn report_ended(m: &Machine, targets: &[Target], reported: &mut [bool], on_event: &mut dyn FnMut(Event<'_>)) {
    for (i, t) in targets.iter().enumerate() {
        if let (false, Some(ended)) = (reported[i], m.ended(i)) {
            reported[i] = true;
            on_event(Event::Ended { pid: t.pid, ended });
        }
    }
}
