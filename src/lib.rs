//! `cargo safeclean`: stop the processes that hold a cargo target dir, recreate it atomically, delete the old
//! tree fast and safely, and verify the build.
//!
//! The pipeline (see `DESIGN.md`): [`cli`] → [`workspace`] → [`guard`] → [`scan`] → [`policy`] → [`terminate`]
//! → [`swap`] → [`purge`] ∥ [`verify`] → [`report`]. [`run::run`] drives it; only [`report`] prints.

// The seams for other platforms exist (the `lsof` scan backend, `kill(2)` process handles), but the process
// table, pidfds and the purge are Linux code today: say so at build time rather than fail at run time.
#[cfg(not(target_os = "linux"))]
compile_error!("cargo-safeclean supports only Linux so far; see the README's Platforms section");

pub mod cli;
pub mod error;
pub mod guard;
pub mod interrupt;
pub mod lock;
pub mod model;
pub mod mounts;
pub mod policy;
pub mod process;
pub mod purge;
pub mod report;

pub mod run;
pub mod scan;
pub mod swap;
pub mod terminate;
pub mod verify;
pub mod workspace;

pub use error::{Error, Result};
pub use run::run;
