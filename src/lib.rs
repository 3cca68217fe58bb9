//! `cargo safeclean`: stop the processes that hold a cargo target dir, recreate it atomically, delete the old
//! tree fast and safely, and verify the build.
//!
//! [`cli`] parses, [`plan`] resolves everything into a [`plan::Plan`], and [`run::run`] drives the stages:
//! [`workspace`] → [`guard`] → [`scan`] → [`policy`] → [`terminate`] → [`swap`] → [`purge`] ∥ [`verify`]. Stages
//! emit [`event::Event`]s; only [`report`] prints. Everything platform-specific sits behind [`platform`]. See
//! `ARCHITECTURE.md` for the map.

// The process table and the purge's mount checks are Linux code today: say so at build time rather than fail at
// run time.
#[cfg(not(target_os = "linux"))]
compile_error!("cargo-safeclean supports only Linux so far; see the README's Platforms section");

pub mod cli;
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
pub mod report;
pub mod run;
pub mod runlock;
pub mod scan;
pub mod swap;
pub mod terminate;
pub mod verify;
pub mod workspace;

pub use error::Error;
pub use run::run;
