//! Termination latency: how soon the tool notices a polite holder's exit, and how late SIGKILL follows the
//! grace deadline, as medians over repeated runs, for the pidfd path and the `kill(2)` fallback.
//!
//! Run with `bench/terminate.sh` (it builds the holder fixture first).

#![cfg_attr(unix, expect(clippy::print_stdout, reason = "a benchmark prints its figures"))]

// Unix only: what it does needs Unix fds, signals and users.
#[cfg(unix)]
fn main() {
    imp::main();
}

/// These benchmarks time Unix tools and Unix paths; there is nothing to time elsewhere (yet).
#[cfg(not(unix))]
fn main() {}

#[cfg(unix)]
#[path = "../tests/common/mod.rs"]
mod common;

#[cfg(unix)]
mod imp {
    use super::common;

    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use std::cell::Cell;

    use cargo_safeclean::event::Event;
    use cargo_safeclean::interrupt::Interrupt;
    use cargo_safeclean::model::Sig;
    use cargo_safeclean::platform::Identity;
    use cargo_safeclean::platform::{Platform, Signals};
    use cargo_safeclean::terminate::{Settings, terminate};
    use common::{Rendezvous, holder_exe};

    const RUNS: usize = 40;
    const GRACE: Duration = Duration::from_millis(200);

    pub fn main() {
        println!("termination latency, {RUNS} runs each (median / p90)");
        let settings = Settings { grace: GRACE, kill_timeout: Duration::from_secs(5) };
        let native = Platform::native();
        let platforms = [
            ("pidfd", native.clone()),
            ("kill(2) + polling", Platform { signals: Signals::Kill, ..native }),
            ("portable", Platform::portable("lsof".into())),
        ];
        for (label, platform) in platforms {
            let notice: Vec<f64> = (0..RUNS).map(|_| exit_to_notice(settings, &platform)).collect();
            let kill: Vec<f64> = (0..RUNS).map(|_| grace_deadline_to_sigkill(settings, &platform)).collect();
            println!(
                "{label:>18}: exit noticed after {:.3} / {:.3} ms; SIGKILL sent {:.3} / {:.3} ms after the grace deadline",
                pct(&notice, 50),
                pct(&notice, 90),
                pct(&kill, 50),
                pct(&kill, 90)
            );
        }
    }

    /// Milliseconds from a polite holder's last act before exiting to the driver's `Ended` event.
    fn exit_to_notice(settings: Settings, platform: &Platform) -> f64 {
        let mut rv = Rendezvous::new();
        let exe = holder_exe();
        let ready = rv.holder(&exe, &["--report-exit"]);
        let target = Identity::from(&platform.process(ready.pid).unwrap());
        let stream = ready.into_stream();
        let interrupt = Interrupt::manual().unwrap();
        let noticed = Cell::new(None);
        terminate(&[target], settings, platform, &interrupt, &|e| {
            if let Event::Exited { .. } = e {
                noticed.set(Some(SystemTime::now()));
            }
        });
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        let exit_ns: u128 = line.trim().strip_prefix("exit ").expect("exit report").parse().unwrap();
        let noticed_ns = noticed.get().unwrap().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        ms_between(exit_ns, noticed_ns)
    }

    /// Milliseconds between the grace deadline (first SIGTERM + grace) and SIGKILL going out.
    fn grace_deadline_to_sigkill(settings: Settings, platform: &Platform) -> f64 {
        let mut rv = Rendezvous::new();
        let exe = holder_exe();
        let ready = rv.holder(&exe, &["--ignore-term"]);
        let target = Identity::from(&platform.process(ready.pid).unwrap());
        let interrupt = Interrupt::manual().unwrap();
        let (term, kill) = (Cell::new(None), Cell::new(None));
        terminate(&[target], settings, platform, &interrupt, &|e| match e {
            Event::Signal { signal: Sig::Term, .. } => term.set(Some(Instant::now())),
            Event::Signal { signal: Sig::Kill, .. } => kill.set(Some(Instant::now())),
            _ => {}
        });
        (kill.get().unwrap() - term.get().unwrap()).saturating_sub(GRACE).as_secs_f64() * 1000.0
    }

    #[expect(clippy::cast_precision_loss, reason = "nanoseconds apart, well within f64")]
    fn ms_between(earlier_ns: u128, later_ns: u128) -> f64 {
        later_ns.saturating_sub(earlier_ns) as f64 / 1e6
    }

    fn pct(values: &[f64], p: usize) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        v[(v.len() - 1) * p / 100]
    }
}
