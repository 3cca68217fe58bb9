//! The Linux implementation: `/proc`, pidfds, `openat2`/`statx`/mountinfo and `/proc/self/fd`. It offers what every
//! native implementation offers (see [`crate::platform`]).

pub mod creds;
pub mod fs;
pub mod pidfd;
pub mod proc;

use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use crate::model::FileId;
use crate::platform::Source;

pub use creds::{act_as, with_own_rights};
pub use pidfd::{Pidfd as Handle, wait_any};
pub use proc::{cwd, describe, flocked_files, holders, is_alive, process, snapshot, waiting_for};

/// The holder source and the process handles the hidden switches name here.
pub const HOLDERS: Source = Source::Proc;
pub const SIGNALS: Source = Source::Pidfd;

/// What a stat says a file is, whatever its name.
#[must_use]
pub fn file_id(st: &rustix::fs::Stat) -> FileId {
    FileId { dev: st.st_dev, ino: st.st_ino }
}

/// Nothing to set: Linux backup tools that skip caches read the `CACHEDIR.TAG` written beside it, and there is no
/// attribute they share.
pub fn exclude_from_backups(_dir: BorrowedFd<'_>) -> std::io::Result<()> {
    Ok(())
}

/// The path of the open file `fd` as the kernel names it now.
#[must_use]
pub fn real_path(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd))).ok()
}

/// Puts the calling thread in the idle IO class (`IOPRIO_CLASS_IDLE`: it gets the disk when nobody else wants
/// it). Per thread, like nice: threads started afterwards inherit it.
pub fn idle_io() -> std::io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_IDLE: libc::c_long = 3;
    const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
    // SAFETY: `ioprio_set(which, who, ioprio)` takes three integers and reads or writes no memory of ours; `who` 0
    // is the calling thread. There is no safe wrapper: rustix and nix have none, and the `ioprio` crate (last
    // release 2021) pins nix 0.21.
    #[expect(unsafe_code, reason = "a syscall no safe crate wraps; see SAFETY")]
    let done =
        unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT) };
    if done == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}
