//! `cargo safeclean`: stop the processes that hold a cargo target dir, recreate it atomically, delete the old
//! tree fast and safely, and verify the build.
//!
//! The pipeline (see `DESIGN.md`): [`cli`] → [`workspace`] → [`guard`] → [`scan`] → [`policy`] → [`terminate`]
//! → [`swap`] → [`purge`] ∥ [`verify`] → [`report`]. [`run::run`] drives it; only [`report`] prints.

pub mod cli;
pub mod error;
pub mod guard;
pub mod interrupt;
pub mod lock;
pub mod model;
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
