//! The escalation logic as a pure state machine: events and a clock in, signals and deadlines out.
//!
//! No I/O and no real time: the driver in `mod.rs` feeds it exits and the current time, and tests feed it fake ones.

use std::time::Duration;

use crate::model::Outcome;
pub use crate::model::{Sig, SignalError};

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these signals now, in order, and report failures with [`Machine::signal_failed`].
    Signal(Vec<(usize, Sig)>),
    /// Wait until a live process exits or the clock reaches `until`.
    Wait { until: Duration },
    /// Every process has an outcome.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Grace { until: Duration },
    Kill { until: Duration },
    Done,
}

/// The final state of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub outcome: Outcome,
    pub note: Option<String>,
    /// When it was seen to end, on the machine's clock.
    pub at: Duration,
}

/// Escalates SIGTERM (+SIGCONT), the grace period, SIGKILL and the kill timeout over many processes at once.
#[derive(Debug, Clone)]
pub struct Machine {
    grace: Duration,
    kill_timeout: Duration,
    phase: Phase,
    ended: Vec<Option<Ended>>,
}

impl Machine {
    #[must_use]
    pub fn new(processes: usize, grace: Duration, kill_timeout: Duration) -> Self {
        Machine { grace, kill_timeout, phase: Phase::Start, ended: vec![None; processes] }
    }

    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        self.ended.iter().enumerate().filter(|(_, e)| e.is_none()).map(|(i, _)| i)
    }

    fn end(&mut self, i: usize, outcome: Outcome, note: Option<String>, at: Duration) {
        if self.ended[i].is_none() {
            self.ended[i] = Some(Ended { outcome, note, at });
        }
    }

    /// The next thing to do at time `now`.
    pub fn step(&mut self, now: Duration) -> Step {
        if self.live().next().is_none() {
            self.phase = Phase::Done;
        }
        match self.phase {
            Phase::Start => {
                self.phase = Phase::Grace { until: now + self.grace };
                // SIGCONT after SIGTERM: a stopped process only acts on SIGTERM once it runs again.
                Step::Signal(self.live().flat_map(|i| [(i, Sig::Term), (i, Sig::Cont)]).collect())
            }
            Phase::Grace { until } if now >= until => {
                self.phase = Phase::Kill { until: now + self.kill_timeout };
                Step::Signal(self.live().map(|i| (i, Sig::Kill)).collect())
            }
            Phase::Kill { until } if now >= until => {
                let note = format!("still alive {:?} after SIGKILL (uninterruptible sleep?)", self.kill_timeout);
                for i in self.live().collect::<Vec<_>>() {
                    self.end(i, Outcome::Survived, Some(note.clone()), now);
                }
                self.phase = Phase::Done;
                Step::Done
            }
            Phase::Grace { until } | Phase::Kill { until } => Step::Wait { until },
            Phase::Done => Step::Done,
        }
    }

    /// Process `i` was seen to exit at `now`.
    pub fn exited(&mut self, i: usize, now: Duration) {
        let outcome = match self.phase {
            Phase::Kill { .. } => Outcome::Killed,
            _ => Outcome::ExitedAfterSigterm,
        };
        self.end(i, outcome, None, now);
    }

    /// Sending `sig` to process `i` failed at `now`.
    pub fn signal_failed(&mut self, i: usize, sig: Sig, err: SignalError, now: Duration) {
        match (err, sig) {
            // Gone before the first signal reached it: not our doing, and maybe a reused pid.
            (SignalError::Gone, Sig::Term) => self.end(i, Outcome::AlreadyGone, None, now),
            // Gone before a later signal: it exited in the meantime.
            (SignalError::Gone, _) => self.exited(i, now),
            (SignalError::Denied(why), _) => {
                self.end(i, Outcome::Survived, Some(format!("cannot send {}: {why}", sig.name())), now);
            }
        }
    }

    /// Stops escalating (Ctrl-C): whatever is still alive is left running.
    pub fn abandon(&mut self, now: Duration) {
        for i in self.live().collect::<Vec<_>>() {
            self.end(i, Outcome::Survived, Some(crate::model::INTERRUPTED.into()), now);
        }
        self.phase = Phase::Done;
    }

    /// Which processes are still waited on.
    #[must_use]
    pub fn live_indices(&self) -> Vec<usize> {
        self.live().collect()
    }

    /// The outcome of process `i`, once it has one.
    #[must_use]
    pub fn ended(&self, i: usize) -> Option<&Ended> {
        self.ended[i].as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A fake process: it exits at a given time after a given signal, or never.
    #[derive(Clone, Copy)]
    enum Fake {
        ExitsOnTerm(u64),
        ExitsOnKill(u64),
        Never,
        Gone,
        Denied,
    }

    /// Runs the machine against fake processes on a fake clock and records every signal sent.
    fn simulate(fakes: &[Fake], grace: u64, kill: u64) -> (Vec<Ended>, Vec<(u64, usize, Sig)>) {
        let mut m = Machine::new(fakes.len(), ms(grace), ms(kill));
        let mut now = ms(0);
        let mut sent = Vec::new();
        let mut exit_at: Vec<Option<Duration>> = vec![None; fakes.len()];
        for _ in 0..100 {
            match m.step(now) {
                Step::Done => break,
                Step::Signal(sigs) => {
                    for (i, sig) in sigs {
                        sent.push((u64::try_from(now.as_millis()).unwrap(), i, sig));
                        match (fakes[i], sig) {
                            (Fake::Gone, _) => m.signal_failed(i, sig, SignalError::Gone, now),
                            (Fake::Denied, _) => m.signal_failed(i, sig, SignalError::Denied("EPERM".into()), now),
                            (Fake::ExitsOnTerm(d), Sig::Term) | (Fake::ExitsOnKill(d), Sig::Kill) => {
                                exit_at[i] = Some(now + ms(d));
                            }
                            _ => {}
                        }
                    }
                }
                Step::Wait { until } => {
                    let live = m.live_indices();
                    let next = live.iter().filter_map(|&i| exit_at[i]).filter(|t| *t <= until).min();
                    now = next.unwrap_or(until);
                    for i in live {
                        if exit_at[i] == Some(now) {
                            m.exited(i, now);
                        }
                    }
                }
            }
        }
        ((0..fakes.len()).map(|i| m.ended(i).cloned().unwrap()).collect(), sent)
    }

    #[test]
    fn polite_processes_end_at_their_own_pace_without_sigkill() {
        let (ended, sent) = simulate(&[Fake::ExitsOnTerm(3), Fake::ExitsOnTerm(10)], 5000, 5000);
        assert_eq!(ended[0], Ended { outcome: Outcome::ExitedAfterSigterm, note: None, at: ms(3) });
        assert_eq!(ended[1].at, ms(10));
        assert!(sent.iter().all(|(_, _, s)| *s != Sig::Kill));
        assert_eq!(sent.iter().filter(|(_, _, s)| *s == Sig::Cont).count(), 2, "SIGCONT follows SIGTERM");
    }

    #[test]
    fn stubborn_process_gets_sigkill_exactly_at_the_grace_deadline() {
        let (ended, sent) = simulate(&[Fake::ExitsOnKill(1), Fake::ExitsOnTerm(2)], 1000, 5000);
        assert_eq!(ended[0], Ended { outcome: Outcome::Killed, note: None, at: ms(1001) });
        assert_eq!(ended[1].outcome, Outcome::ExitedAfterSigterm);
        assert_eq!(sent.iter().filter(|(_, _, s)| *s == Sig::Kill).collect::<Vec<_>>(), [&(1000, 0, Sig::Kill)]);
    }

    #[test]
    fn process_that_never_exits_survives_after_the_kill_timeout() {
        let (ended, _) = simulate(&[Fake::Never], 100, 200);
        assert_eq!(ended[0].outcome, Outcome::Survived);
        assert_eq!(ended[0].at, ms(300));
        assert!(ended[0].note.as_deref().unwrap().contains("after SIGKILL"));
    }

    #[test]
    fn gone_and_denied_processes() {
        let (ended, sent) = simulate(&[Fake::Gone, Fake::Denied], 100, 100);
        assert_eq!(ended[0].outcome, Outcome::AlreadyGone);
        assert_eq!(ended[1].outcome, Outcome::Survived);
        assert!(ended[1].note.as_deref().unwrap().contains("EPERM"));
        assert!(sent.iter().all(|(t, _, _)| *t == 0), "nothing more to do once both are settled");
    }

    #[test]
    fn abandon_marks_the_living_as_survivors() {
        let mut m = Machine::new(2, ms(100), ms(100));
        assert!(matches!(m.step(ms(0)), Step::Signal(_)));
        m.exited(0, ms(1));
        m.abandon(ms(2));
        assert_eq!(m.ended(0).unwrap().outcome, Outcome::ExitedAfterSigterm);
        assert_eq!(m.ended(1).unwrap().outcome, Outcome::Survived);
        assert_eq!(m.step(ms(3)), Step::Done);
    }
}
