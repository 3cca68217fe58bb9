//! `cargo safeclean`: stop the processes that hold a cargo target dir, recreate it atomically, delete the old
//! tree fast and safely, and verify the build.
//!
//! [`cli`] parses, [`plan`] resolves everything into a [`plan::Plan`], and [`run::run`] drives the stages:
//! [`workspace`] → [`guard`] → [`scan`] → [`policy`] → [`terminate`] → [`swap`] (or [`sweep`]) → [`purge`] ∥ [`verify`]. Stages
//! emit [`event::Event`]s; only [`report`] prints. Everything platform-specific sits behind [`platform`]. See
//! `ARCHITECTURE.md` for the map.

// Linux and macOS each have a native implementation (`platform::linux`, `platform::macos`); the portable one serves
// both too. Anything else has no native implementation to choose: say so at build time rather than fail at run time.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
compile_error!(
    "cargo-safeclean supports Linux and macOS; Windows support is planned (holders from the handle table, \
     termination through job objects); see the README's Platforms section"
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
