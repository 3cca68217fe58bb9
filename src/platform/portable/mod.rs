//! The portable implementation: what any Unix offers (sysinfo and `getpgid`, `lsof`, `kill(2)`, `openat`/`fstat`/
//! `fchmodat`). It is what macOS runs, and it is compiled and tested on Linux too (`SAFECLEAN_PLATFORM=portable`).

pub mod fs;
pub mod kill;
pub mod lsof;
pub mod table;
