//! `cargo safeclean`: stop the processes that hold a cargo target dir, recreate it atomically, delete the old
//! tree fast and safely, and verify the build.
//!
//! [`cli`] parses, [`plan`] resolves everything into a [`plan::Plan`], and [`run::run`] drives the stages:
//! [`workspace`] → [`guard`] → [`scan`] → [`policy`] → [`terminate`] → [`swap`] (or [`sweep`]) → [`purge`] ∥ [`verify`]. Stages
//! emit [`event::Event`]s; only [`report`] prints. Everything platform-specific sits behind [`platform`]. See
//! `ARCHITECTURE.md` for the map.

// Linux runs the native implementation, every other Unix (macOS first) the portable one. Windows has neither a
// process table we read nor these signals: say so at build time rather than fail at run time.
#[cfg(not(unix))]
compile_error!(
    "cargo-safeclean supports Linux and macOS (other Unixes through the same portable code, untested); Windows \
     support is planned (holders from the Restart Manager, termination through job objects); see the README's \
     Platforms section"
);

pub mod anchor;
pub mod check;
pub mod cli;
pub mod detach;
pub mod diagnose;
pub mod error;
pub mod event;
pub mod exit;
pub mod guard;
pub mod interrupt;
pub mod layout;
pub mod model;
pub mod plan;
pub mod platform;
pub mod policy;
pub mod purge;
pub mod repair;
pub mod report;
pub mod run;
pub mod runlock;
pub mod scan;
pub mod swap;
pub mod sweep;
pub mod terminate;
pub mod verify;
pub mod workspace;

pub use error::Error;
pub use run::run;
