//! `cargo safeclean`: stop the processes that hold a cargo target dir, recreate it atomically, delete the old
//! tree fast and safely, and verify the build.
//!
//! [`cli`] parses, [`plan`] resolves everything into a [`plan::Plan`], and [`run::run`] drives the stages:
//! [`workspace`] → [`guard`] → [`scan`] → [`policy`] → [`terminate`] → [`swap`] (or [`sweep`]) → [`purge`] ∥
//! [`verify`]. Stages emit [`event::Event`]s; only [`report`] prints. Everything platform-specific sits behind
//! [`platform`]. See `ARCHITECTURE.md` for the map.

// Linux and macOS each have a native implementation (`platform::linux`, `platform::macos`); the portable one serves
// both too. Windows has its own (`platform::windows`); the stages that act on a tree split their system calls into
// one file per OS. The sweep and the smallest repair of `--if-broken` read build units through Unix fds and are not
// built for Windows yet (issue #23). Anything else has no native implementation to choose: say so at build time.
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
compile_error!("cargo-safeclean supports Linux, macOS and (in part) Windows; see the README's Platforms section");

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
#[cfg(unix)]
pub mod repair;
pub mod report;
pub mod run;
pub mod runlock;
pub mod scan;
pub mod swap;
#[cfg(unix)]
pub mod sweep;
pub mod terminate;
pub mod verify;
pub mod workspace;

pub use error::Error;
pub use run::run;
