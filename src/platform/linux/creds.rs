//! Acting on files with another user's rights, one thread at a time: a root run borrows the rights of the user who
//! owns what it works on, so that no name that user controls can lead root anywhere that user could not reach.
//!
//! Linux keeps a filesystem uid and gid and the supplementary groups per thread. While the fs uid is not 0, the
//! kernel drops, for this thread only, the capabilities that bypass permissions (`CAP_DAC_OVERRIDE`, `CAP_FOWNER`,
//! `CAP_CHOWN`…); setting it back to 0 restores them. glibc's `setgroups` changes every thread of the process, so
//! the raw per-thread call is used (rustix `set_thread_groups`). The cost: three syscalls when a thread changes
//! whose rights it uses, which happens once per thread for a tree that has one owner.

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::sync::{Mutex, OnceLock};

use rustix::process::{Gid, Uid};

use crate::model::Owner;

thread_local! {
    /// Whose rights this thread uses on files now; `None` while it uses its own.
    static ACTING: Cell<Option<Owner>> = const { Cell::new(None) };
}

/// The process's own supplementary groups, read before any thread borrowed another user's.
static OWN_GROUPS: OnceLock<Vec<Gid>> = OnceLock::new();

/// A user's primary gid and groups.
type Groups = (u32, Vec<Gid>);

/// Each user's groups, looked up once.
static GROUPS: Mutex<Option<HashMap<u32, Groups>>> = Mutex::new(None);

/// Makes the calling thread act on files with `owner`'s rights, or with its own again (`None`), and returns the uid
/// whose rights it uses now. Only a root process changes anything: another user's run has no rights to borrow, and
/// needs none.
pub fn act_as(owner: Option<Owner>) -> io::Result<u32> {
    static EUID: OnceLock<u32> = OnceLock::new();
    let me = *EUID.get_or_init(|| rustix::process::geteuid().as_raw());
    let want = owner.filter(|o| o.uid != 0);
    if ACTING.get() == want {
        return Ok(want.map_or(me, |o| o.uid));
    }
    if me != 0 {
        return Ok(me);
    }
    let own = OWN_GROUPS.get_or_init(|| rustix::process::getgroups().unwrap_or_default());
    if ACTING.get().is_none() && fsuid() != 0 {
        // A thread started by one that had borrowed rights inherits them, and does not know whose they are.
        return Err(io::Error::other("this thread acts with rights it cannot account for; not changing them"));
    }
    match want {
        Some(o) => {
            let (gid, groups) = groups_of(o);
            rustix::thread::set_thread_groups(&groups)?;
            nix::unistd::setfsgid(nix::unistd::Gid::from_raw(gid));
            nix::unistd::setfsuid(nix::unistd::Uid::from_raw(o.uid));
            if fsuid() != o.uid {
                restore(own)?;
                return Err(io::Error::other(format!("could not act with the rights of uid {}", o.uid)));
            }
        }
        None => restore(own)?,
    }
    ACTING.set(want);
    Ok(want.map_or(0, |o| o.uid))
}

/// Runs `f` with the thread's own rights, then goes back to the rights it borrowed: for what only this process may
/// do, on a file it holds and checked (giving a dir it just made to its owner).
pub fn with_own_rights<T>(f: impl FnOnce() -> T) -> T {
    let borrowed = ACTING.get();
    if borrowed.is_none() {
        return f();
    }
    let _ = act_as(None);
    let out = f();
    let _ = act_as(borrowed);
    out
}

fn restore(own: &[Gid]) -> io::Result<()> {
    nix::unistd::setfsuid(nix::unistd::Uid::from_raw(Uid::ROOT.as_raw()));
    nix::unistd::setfsgid(nix::unistd::Gid::from_raw(rustix::process::getegid().as_raw()));
    rustix::thread::set_thread_groups(own)?;
    ACTING.set(None);
    Ok(())
}

/// The thread's fs uid: `setfsuid` with an invalid id changes nothing and returns the current one.
fn fsuid() -> u32 {
    nix::unistd::setfsuid(nix::unistd::Uid::from_raw(u32::MAX)).as_raw()
}

/// The gid and groups `owner` acts with: from the passwd and group databases, or, for a uid without an entry, the
/// file's group alone.
fn groups_of(owner: Owner) -> Groups {
    let mut cache = GROUPS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let known = cache.get_or_insert_with(HashMap::new);
    known
        .entry(owner.uid)
        .or_insert_with(|| {
            let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(owner.uid)).ok().flatten();
            let Some(user) = user else { return (owner.gid, vec![Gid::from_raw(owner.gid)]) };
            let name = std::ffi::CString::new(user.name.as_bytes()).unwrap_or_default();
            let groups = nix::unistd::getgrouplist(&name, user.gid).unwrap_or_else(|_| vec![user.gid]);
            (user.gid.as_raw(), groups.into_iter().map(|g| Gid::from_raw(g.as_raw())).collect())
        })
        .clone()
}
