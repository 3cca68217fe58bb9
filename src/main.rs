//! The `cargo-safeclean` binary: parse, run the library, map the outcome to an exit code.

use cargo_safeclean::cli::Options;
use cargo_safeclean::interrupt::Interrupt;
use cargo_safeclean::report::{self, Summary};

fn main() {
    let opts = Options::parse_from_env();
    let reporter = report::for_options(&opts);
    let mut summary = Summary::default();
    let result = Interrupt::install()
        .map_err(|e| anyhow::anyhow!("failed to install the Ctrl-C handler: {e}").into())
        .and_then(|interrupt| cargo_safeclean::run(&opts, reporter.as_ref(), &interrupt, &mut summary));
    let code = result.as_ref().err().map_or(cargo_safeclean::error::exit::OK, cargo_safeclean::Error::exit_code);
    summary.exit_code = code;
    let written = reporter.finish(&summary, result.err().as_ref());
    // A run whose report could not be written whole must not look like a success to the script reading it.
    let code = if written.is_err() && code == cargo_safeclean::error::exit::OK {
        cargo_safeclean::error::exit::UNEXPECTED
    } else {
        code
    };
    std::process::exit(code);
}
