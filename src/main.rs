//! The `cargo-safeclean` binary: parse, resolve the plan, run the library, map the outcome to an exit code.

use cargo_safeclean::{
    cli::Args,
    detach,
    error::Error,
    event::Summary,
    exit,
    interrupt::Interrupt,
    plan::{Env, Plan},
    report,
    runlock::RuntimeDir,
};

fn main() {
    let args = Args::parse_from_env();
    let deleter = (!args.purge_detached.is_empty()).then(|| (args.purge_detached.clone(), args.purge_log.clone()));
    let plan = match Env::current().and_then(|env| Plan::resolve(args, &env)) {
        Ok(plan) => plan,
        Err(e) => {
            let e = Error::from(e);
            report::early_error(&e.failure());
            std::process::exit(e.exit_code());
        }
    };
    if let Some((trash, log)) = deleter {
        // The runner's runtime dir, found as the run that started it found it: where trash dirs are locked.
        let locks = RuntimeDir::open(&plan.runtime_bases).ok().and_then(|rt| rt.trash_locks().ok());
        let clean = detach::deleter(&trash, log.as_deref(), plan.purge, locks, &report::DeleterLog);
        std::process::exit(if clean { exit::OK } else { exit::REMOVE_FAILED });
    }
    let reporter = report::for_output(&plan.output);
    // The summary carries the run's error (and its exit code) to the reporter.
    let summary = match Interrupt::install() {
        Ok(interrupt) => cargo_safeclean::run(&plan, reporter.as_ref(), &interrupt).0,
        Err(e) => {
            let e = Error::Signals(e);
            Summary { error: Some(e.failure()), ..Summary::empty(plan.mode, plan.dry_run, e.exit_code()) }
        }
    };
    // A run whose report could not be written whole must not look like a success to the script reading it.
    let code = match (reporter.finish(&summary), summary.exit_code) {
        (Err(_), exit::OK) => exit::UNEXPECTED,
        (_, code) => code,
    };
    std::process::exit(code);
}
