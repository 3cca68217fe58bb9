//! The Linux implementation: `/proc`, pidfds, `openat2`/`statx`/mountinfo and `/proc/self/fd`.

pub mod fs;
pub mod pidfd;
pub mod proc;
