//! The system calls macOS answers "who holds what" with, as safe functions that only fetch: libproc's
//! `proc_listallpids`, `proc_pidinfo` (`PROC_PIDTBSDINFO`, `PROC_PIDT_SHORTBSDINFO`, `PROC_PIDLISTFDS`,
//! `PROC_PIDVNODEPATHINFO`, `PROC_PIDREGIONPATHINFO2`), `proc_pidfdinfo` (`PROC_PIDFDVNODEPATHINFO`) and
//! `proc_pidpath`, through the `libc` crate's bindings; and `setiopolicy_np`. Nothing here decides anything.
//!
//! The libc crate lacks two flavors and their structs; they are declared here from `<sys/proc_info.h>` (and
//! `<sys/proc_info_private.h>` for `PROC_PIDREGIONPATHINFO2`, which Apple's own lsof uses), and their sizes are
//! checked at compile time against the sizes the kernel checks (`PROC_PIDFDVNODEPATHINFO_SIZE` and the like).
//!
//! libproc answers only about the caller's own processes (all of them for root): other users' give `EPERM`, and
//! their table entry then comes from `PROC_PIDT_SHORTBSDINFO`, which anyone may read but which has no start time.

#![expect(unsafe_code, reason = "the system-call layer: each call says why it is sound")]

use std::ffi::{c_char, c_int, c_void};
use std::io;
use std::mem::{MaybeUninit, size_of};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use rustix::io::Errno;

use crate::model::FileId;

/// `PROC_PIDFDVNODEPATHINFO`: an fd's vnode, with its path and `vinfo_stat`.
const PROC_PIDFDVNODEPATHINFO: c_int = 2;
/// `PROC_PIDREGIONPATHINFO2`: the first region at or after an address that a file backs, with the file's path and
/// `vinfo_stat`; anonymous memory is skipped in the kernel, so a process costs one call per mapped file region.
const PROC_PIDREGIONPATHINFO2: c_int = 22;

/// `struct proc_fileinfo`: open flags, status, offset, type, guard flags; none is read here.
#[repr(C)]
struct ProcFileInfo {
    _fields: [u64; 3],
}

/// `struct vnode_fdinfowithpath`.
#[repr(C)]
struct VnodeFdInfoWithPath {
    _pfi: ProcFileInfo,
    pvip: libc::vnode_info_path,
}

/// `struct proc_regionwithpathinfo`: `struct proc_regioninfo` (twenty 32-bit fields and an offset before the
/// address and size, which are all that is read) and the vnode.
#[repr(C)]
struct RegionWithPathInfo {
    _info: [u32; 20],
    pri_address: u64,
    pri_size: u64,
    prp_vip: libc::vnode_info_path,
}

// The sizes the kernel requires of the buffers (`proc_info.h`'s `*_SIZE`): a wrong layout fails the build, not a
// scan on a Mac.
const _: () = assert!(size_of::<VnodeFdInfoWithPath>() == 1200);
const _: () = assert!(size_of::<RegionWithPathInfo>() == 1272);
const _: () = assert!(size_of::<libc::proc_bsdinfo>() == 136);
const _: () = assert!(size_of::<libc::proc_bsdshortinfo>() == 64);
const _: () = assert!(size_of::<libc::proc_vnodepathinfo>() == 2352);

unsafe extern "C" {
    /// `<sys/resource.h>`; not in the libc crate.
    fn setiopolicy_np(iotype: c_int, scope: c_int, policy: c_int) -> c_int;
}

/// `setiopolicy_np(IOPOL_TYPE_DISK, IOPOL_SCOPE_THREAD, IOPOL_THROTTLE)`.
pub fn throttle_io() -> io::Result<()> {
    const IOPOL_TYPE_DISK: c_int = 0;
    const IOPOL_SCOPE_THREAD: c_int = 1;
    const IOPOL_THROTTLE: c_int = 3;
    // SAFETY: three integers in, no memory of ours read or written.
    let done = unsafe { setiopolicy_np(IOPOL_TYPE_DISK, IOPOL_SCOPE_THREAD, IOPOL_THROTTLE) };
    if done == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// What the table needs of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    pub uid: u32,
    /// `p_stat`: `SSTOP`, `SZOMB`…
    pub status: u32,
    pub name: String,
    /// Microseconds since the epoch; `None` for another user's process (`EPERM` for the full info).
    pub start_us: Option<u64>,
}

/// A file as libproc describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vnode {
    /// As the kernel spells it (`vn_getpath`); `None` when it gave none (a file with no name left, a path longer
    /// than `MAXPATHLEN`).
    pub path: Option<PathBuf>,
    pub id: FileId,
    pub is_dir: bool,
}

fn c_pid(pid: u32) -> Result<c_int, Errno> {
    c_int::try_from(pid).map_err(|_| Errno::SRCH)
}

fn last_errno() -> Errno {
    Errno::from_io_error(&io::Error::last_os_error()).unwrap_or(Errno::IO)
}

/// Calls `f`, which returns a byte or item count, or 0 or less with `errno` set: libproc returns 0 both for
/// "nothing" and for a failure, so `errno` is cleared first to tell them apart.
fn counted(f: impl FnOnce() -> c_int) -> Result<usize, Errno> {
    // SAFETY: `__error` returns this thread's errno slot, always valid for writes.
    unsafe { *libc::__error() = 0 };
    let n = f();
    match usize::try_from(n) {
        Ok(n) if n > 0 => Ok(n),
        _ => match last_errno() {
            e if e.raw_os_error() == 0 => Ok(0),
            e => Err(e),
        },
    }
}

/// `proc_pidinfo(pid, flavor, arg)` into one `T`, which must be entirely filled.
fn pidinfo<T>(pid: u32, flavor: c_int, arg: u64) -> Result<T, Errno> {
    let pid = c_pid(pid)?;
    let mut out = MaybeUninit::<T>::zeroed();
    let size = c_int::try_from(size_of::<T>()).map_err(|_| Errno::INVAL)?;
    // SAFETY: the buffer is `size` writable bytes, and the kernel writes at most that many.
    let n = counted(|| unsafe { libc::proc_pidinfo(pid, flavor, arg, out.as_mut_ptr().cast::<c_void>(), size) })?;
    if n < size_of::<T>() {
        // Past the last region, or a flavor that gave less than its struct: nothing usable.
        return Err(Errno::NOENT);
    }
    // SAFETY: `T` is one of the plain C structs above (integers and byte arrays), for which all-zero and anything the
    // kernel wrote are valid values.
    Ok(unsafe { out.assume_init() })
}

/// Every pid, read until the buffer had room to spare (the count grows while it is read).
pub fn all_pids() -> io::Result<Vec<u32>> {
    // SAFETY: a null buffer of size 0 asks only for the number of pids.
    let mut room = counted(|| unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) })? + 64;
    loop {
        let mut pids: Vec<c_int> = vec![0; room];
        let bytes = c_int::try_from(room * size_of::<c_int>()).map_err(|_| io::Error::other("too many processes"))?;
        // SAFETY: the buffer holds `room` pids, `bytes` bytes; the kernel writes at most that many.
        let n = counted(|| unsafe { libc::proc_listallpids(pids.as_mut_ptr().cast::<c_void>(), bytes) })?;
        if n < room {
            pids.truncate(n);
            return Ok(pids.into_iter().filter_map(|p| u32::try_from(p).ok()).collect());
        }
        room *= 2;
    }
}

/// A process's table entry: `PROC_PIDTBSDINFO`, or for another user's process `PROC_PIDT_SHORTBSDINFO` (no start
/// time). `ESRCH` when it is gone, or a zombie.
pub fn info(pid: u32) -> Result<Info, Errno> {
    match pidinfo::<libc::proc_bsdinfo>(pid, libc::PROC_PIDTBSDINFO, 0) {
        Ok(b) => Ok(Info {
            pid: b.pbi_pid,
            ppid: b.pbi_ppid,
            pgid: b.pbi_pgid,
            uid: b.pbi_uid,
            status: b.pbi_status,
            // `pbi_name` is the longer name, empty when none was registered; `pbi_comm` is cut at 16 bytes.
            name: Some(text(&b.pbi_name)).filter(|n| !n.is_empty()).unwrap_or_else(|| text(&b.pbi_comm)),
            start_us: Some(b.pbi_start_tvsec.saturating_mul(1_000_000).saturating_add(b.pbi_start_tvusec)),
        }),
        Err(Errno::PERM | Errno::ACCESS) => {
            let s = pidinfo::<libc::proc_bsdshortinfo>(pid, libc::PROC_PIDT_SHORTBSDINFO, 0)?;
            Ok(Info {
                pid: s.pbsi_pid,
                ppid: s.pbsi_ppid,
                pgid: s.pbsi_pgid,
                uid: s.pbsi_uid,
                status: s.pbsi_status,
                name: text(&s.pbsi_comm),
                start_us: None,
            })
        }
        Err(e) => Err(e),
    }
}

/// The fds of a process that name vnodes (files and dirs; not sockets, pipes or kqueues).
pub fn vnode_fds(pid: u32) -> Result<Vec<u32>, Errno> {
    let cpid = c_pid(pid)?;
    // SAFETY: a null buffer of size 0 asks only for the size the list needs now.
    let need = counted(|| unsafe { libc::proc_pidinfo(cpid, libc::PROC_PIDLISTFDS, 0, std::ptr::null_mut(), 0) })?;
    let room = need / size_of::<libc::proc_fdinfo>() + 16;
    let mut fds = vec![libc::proc_fdinfo { proc_fd: 0, proc_fdtype: 0 }; room];
    let bytes = c_int::try_from(room * size_of::<libc::proc_fdinfo>()).map_err(|_| Errno::NOMEM)?;
    // SAFETY: the buffer holds `room` entries, `bytes` bytes; the kernel writes at most that many.
    let n = counted(|| unsafe {
        libc::proc_pidinfo(cpid, libc::PROC_PIDLISTFDS, 0, fds.as_mut_ptr().cast::<c_void>(), bytes)
    })?;
    fds.truncate(n / size_of::<libc::proc_fdinfo>());
    let vnode = u32::try_from(libc::PROX_FDTYPE_VNODE).unwrap_or(1);
    Ok(fds.into_iter().filter(|f| f.proc_fdtype == vnode).filter_map(|f| u32::try_from(f.proc_fd).ok()).collect())
}

/// The vnode an fd names.
pub fn fd_vnode(pid: u32, fd: u32) -> Result<Vnode, Errno> {
    let (cpid, cfd) = (c_pid(pid)?, c_int::try_from(fd).map_err(|_| Errno::BADF)?);
    let mut out = MaybeUninit::<VnodeFdInfoWithPath>::zeroed();
    let size = c_int::try_from(size_of::<VnodeFdInfoWithPath>()).map_err(|_| Errno::INVAL)?;
    // SAFETY: the buffer is `size` writable bytes, and the kernel writes at most that many.
    let n = counted(|| unsafe {
        libc::proc_pidfdinfo(cpid, cfd, PROC_PIDFDVNODEPATHINFO, out.as_mut_ptr().cast::<c_void>(), size)
    })?;
    if n < size_of::<VnodeFdInfoWithPath>() {
        return Err(Errno::NOENT);
    }
    // SAFETY: a plain C struct, zeroed and then written by the kernel: every bit pattern is a valid value.
    Ok(vnode(&unsafe { out.assume_init() }.pvip))
}

/// The current dir and, if the process is chrooted, its root dir.
pub fn dirs(pid: u32) -> Result<(Vnode, Option<Vnode>), Errno> {
    let info = pidinfo::<libc::proc_vnodepathinfo>(pid, libc::PROC_PIDVNODEPATHINFO, 0)?;
    // An unset root (no chroot) is all zeros.
    let root = Some(vnode(&info.pvi_rdir)).filter(|v| v.id.ino != 0);
    Ok((vnode(&info.pvi_cdir), root))
}

/// The executable's path.
pub fn exe(pid: u32) -> Result<PathBuf, Errno> {
    let cpid = c_pid(pid)?;
    let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE.unsigned_abs() as usize];
    let size = u32::try_from(buf.len()).map_err(|_| Errno::INVAL)?;
    // SAFETY: the buffer is `size` writable bytes, and the kernel writes at most that many.
    let n = counted(|| unsafe { libc::proc_pidpath(cpid, buf.as_mut_ptr().cast::<c_void>(), size) })?;
    buf.truncate(n);
    if buf.is_empty() {
        return Err(Errno::NOENT);
    }
    Ok(PathBuf::from(std::ffi::OsString::from_vec(buf)))
}

/// Every file mapped into a process, once per region (a library maps several), in address order. `EPERM` only
/// when the very first region could not be read.
pub fn mapped(pid: u32) -> Result<Vec<Vnode>, Errno> {
    // A process maps hundreds of files at most; a map that never ends is a bug to stop at, not to follow.
    const MOST: usize = 1 << 16;
    let mut out = Vec::new();
    let mut address = 0u64;
    while out.len() < MOST {
        let region = match pidinfo::<RegionWithPathInfo>(pid, PROC_PIDREGIONPATHINFO2, address) {
            Ok(region) => region,
            Err(e @ (Errno::PERM | Errno::ACCESS)) if address == 0 => return Err(e),
            // Past the last file-backed region (`EINVAL`), or the process is gone.
            Err(_) => break,
        };
        let next = region.pri_address.saturating_add(region.pri_size);
        out.push(vnode(&region.prp_vip));
        if next <= address {
            break;
        }
        address = next;
    }
    Ok(out)
}

/// A vnode from its `vnode_info_path`.
fn vnode(v: &libc::vnode_info_path) -> Vnode {
    let st = &v.vip_vi.vi_stat;
    let bytes: Vec<u8> = v.vip_path.as_flattened().iter().map(|c| c.cast_unsigned()).take_while(|b| *b != 0).collect();
    Vnode {
        path: (!bytes.is_empty()).then(|| PathBuf::from(std::ffi::OsString::from_vec(bytes))),
        id: FileId { dev: u64::from(st.vst_dev), ino: st.vst_ino },
        is_dir: st.vst_mode & libc::S_IFMT == libc::S_IFDIR,
    }
}

/// A NUL-terminated name from a fixed array.
fn text(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().map(|c| c.cast_unsigned()).take_while(|b| *b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
