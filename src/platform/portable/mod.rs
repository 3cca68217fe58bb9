//! The portable implementation: what any Unix offers (`lsof`, `kill(2)`), compiled and tested on Linux too.

pub mod kill;
pub mod lsof;
