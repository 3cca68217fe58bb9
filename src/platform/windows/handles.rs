//! Open files from the system handle table: one `NtQuerySystemInformation(SystemExtendedHandleInformation)` lists
//! every handle of every process; a process's handles are duplicated into this one to be asked what they are.
//!
//! Only disk files are named: `GetFileType` is asked first and only `FILE_TYPE_DISK` goes on to
//! `GetFinalPathNameByHandleW`, because naming a synchronous pipe can block for ever. Where this process's own file
//! handle shows which object type index files have, other types are skipped without being duplicated.
//!
//! A duplicate shares its file object with the holder's handle, and a query waits while a synchronous request is
//! pending on that object (a cargo blocked in `LockFileEx` on a lock file it opened for synchronous IO). So handles
//! are asked on a thread of their own ([`Namer`]): one that does not answer within [`PATIENCE`] is counted as a file
//! whose name could not be read (the process then counts as not fully inspected), and its thread is left to end when
//! that wait does, or with this process.

use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use windows_sys::Wdk::System::SystemInformation::{NtQuerySystemInformation, SYSTEM_INFORMATION_CLASS};
use windows_sys::Win32::Foundation::{DUPLICATE_SAME_ACCESS, DuplicateHandle, HANDLE};
use windows_sys::Win32::Storage::FileSystem::{FILE_TYPE_DISK, GetFileType};
use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_DUP_HANDLE};

use super::{current_process, file_id, final_path, owned};
use crate::model::{FileId, HandleKind};
use crate::platform::held::{Held, Place};

/// `SystemExtendedHandleInformation`: every handle with a pid and handle value of pointer width.
const SYSTEM_EXTENDED_HANDLE_INFORMATION: SYSTEM_INFORMATION_CLASS = 64;
/// `STATUS_INFO_LENGTH_MISMATCH`: the buffer was too small.
const STATUS_INFO_LENGTH_MISMATCH: i32 = 0xC000_0004_u32.cast_signed();

/// `SYSTEM_HANDLE_TABLE_ENTRY_INFO_EX`.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawEntry {
    object: usize,
    pid: usize,
    value: usize,
    granted_access: u32,
    creator_back_trace_index: u16,
    object_type_index: u16,
    attributes: u32,
    reserved: u32,
}

/// One handle of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub pid: u32,
    pub value: usize,
    /// The object type's index, the same for every handle of one type (files, events, keys…).
    pub type_index: u16,
}

/// Every handle of every process, files only where their type index is known.
pub fn table() -> io::Result<Vec<Entry>> {
    // Opened before the table is read, so that the table shows it: its type index is the file type's.
    let marker = std::fs::File::open(std::env::current_exe()?)?;
    let all = read()?;
    let me = std::process::id();
    let file_type =
        all.iter().find(|e| e.pid == me && e.value == marker.as_raw_handle() as usize).map(|e| e.type_index);
    Ok(all.into_iter().filter(|e| e.pid != me && file_type.is_none_or(|t| e.type_index == t)).collect())
}

fn read() -> io::Result<Vec<Entry>> {
    let header = 2 * size_of::<usize>();
    let mut buf: Vec<usize> = vec![0; 1 << 16];
    loop {
        let bytes = buf.len() * size_of::<usize>();
        let mut needed = 0u32;
        let size = u32::try_from(bytes).map_err(io::Error::other)?;
        // SAFETY: `buf` is `size` bytes, aligned for the pointer-sized fields the call writes.
        let status = unsafe {
            NtQuerySystemInformation(SYSTEM_EXTENDED_HANDLE_INFORMATION, buf.as_mut_ptr().cast(), size, &raw mut needed)
        };
        if status == STATUS_INFO_LENGTH_MISMATCH {
            // Handles come and go between two calls: ask for more than was needed.
            let want = (needed as usize).max(bytes * 2) + (1 << 16);
            buf.resize(want.div_ceil(size_of::<usize>()), 0);
            continue;
        }
        if status < 0 {
            return Err(io::Error::other(format!("NTSTATUS {status:#010x}")));
        }
        let count = buf[0];
        let room = (bytes - header) / size_of::<RawEntry>();
        let count = count.min(room);
        // SAFETY: the call wrote `count` entries after the two-word header, within the buffer (checked above);
        // `RawEntry` is plain data of the layout the call writes, and `buf`'s alignment is a pointer's.
        let entries = unsafe { std::slice::from_raw_parts(buf.as_ptr().add(2).cast::<RawEntry>(), count) };
        return Ok(entries
            .iter()
            .filter_map(|e| {
                Some(Entry { pid: u32::try_from(e.pid).ok()?, value: e.value, type_index: e.object_type_index })
            })
            .collect());
    }
}

/// How long one handle may take to say what it is before it is given up.
pub const PATIENCE: Duration = Duration::from_millis(300);

/// What a disk file's handle says it is.
type Named = Option<(PathBuf, Option<FileId>)>;

/// Asks duplicated handles what they are, on a thread of its own (see the module docs).
pub struct Namer {
    jobs: Sender<OwnedHandle>,
    answers: Receiver<Named>,
}

impl Namer {
    #[must_use]
    pub fn start() -> Self {
        let (jobs, asked) = channel::<OwnedHandle>();
        let (answer, answers) = channel();
        std::thread::spawn(move || {
            for h in asked {
                if answer.send(name(&h)).is_err() {
                    break;
                }
            }
        });
        Namer { jobs, answers }
    }

    /// What `h` is; `Err` when it did not say within [`PATIENCE`] (this namer is then replaced by a new one).
    fn ask(&mut self, h: OwnedHandle) -> Result<Named, ()> {
        let answered = self.jobs.send(h).ok().and_then(|()| self.answers.recv_timeout(PATIENCE).ok());
        answered.ok_or_else(|| *self = Namer::start())
    }
}

/// The path and identity of a disk file's handle; `None` for anything else.
fn name(h: &OwnedHandle) -> Named {
    // SAFETY: a valid handle we own.
    if unsafe { GetFileType(h.as_raw_handle() as HANDLE) } != FILE_TYPE_DISK {
        return None;
    }
    Some((final_path(h.as_raw_handle())?, file_id(h)))
}

/// The disk files among `entries` (all of process `pid`), each duplicated and named by `namer`. The current dir
/// `cwd` is told from other open dirs by its path. An error when the process cannot be opened to duplicate its
/// handles.
pub fn held_by(pid: u32, entries: &[Entry], cwd: Option<&Path>, namer: &mut Namer) -> io::Result<Vec<Held>> {
    // SAFETY: plain arguments; the result is checked by `owned`.
    let process = owned(unsafe { OpenProcess(PROCESS_DUP_HANDLE, 0, pid) })?;
    let mut out = Vec::new();
    for e in entries {
        let mut dup: HANDLE = std::ptr::null_mut();
        // SAFETY: a process handle with PROCESS_DUP_HANDLE, a handle value of that process (it may be gone or
        // reused by now: the call fails, or we name whatever it is now, which is what is held now), and our own
        // pseudo-handle as the target.
        let ok = unsafe {
            DuplicateHandle(
                process.as_raw_handle() as HANDLE,
                e.value as HANDLE,
                current_process(),
                &raw mut dup,
                0,
                0,
                DUPLICATE_SAME_ACCESS,
            )
        };
        let Ok(dup) = owned(if ok == 0 { std::ptr::null_mut() } else { dup }) else { continue };
        match namer.ask(dup) {
            Ok(Some((path, id))) => {
                let kind = if cwd.is_some_and(|c| same_path(c, &path)) { HandleKind::Cwd } else { HandleKind::Fd };
                out.extend(Held::named(kind, path, id, None));
            }
            Ok(None) => {}
            Err(()) => out.push(Held {
                kind: HandleKind::Fd,
                place: Place::Unnamed {
                    chain: Vec::new(),
                    complete: false,
                    why: "holds a file that did not say its name in time (a request is pending on it, such as a wait for a lock)",
                },
                fd: None,
            }),
        }
    }
    Ok(out)
}

/// Whether two paths name the same place, component by component and case-insensitively, as NTFS compares.
#[must_use]
pub fn same_path(a: &Path, b: &Path) -> bool {
    let lower = |p: &Path| p.components().map(|c| c.as_os_str().to_string_lossy().to_lowercase()).collect::<Vec<_>>();
    lower(a) == lower(b)
}
