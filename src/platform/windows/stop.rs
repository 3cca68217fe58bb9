//! Stopping a process we did not start: open it once (the handle pins it: its pid cannot be reused while we hold
//! it), check its creation time against the scan, `TerminateProcess`, and wait on the handle itself.

use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::time::Instant;

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_INVALID_PARAMETER, HANDLE, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::System::Threading::PROCESS_SYNCHRONIZE as SYNCHRONIZE;
use windows_sys::Win32::System::Threading::{
    OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_TERMINATE, TerminateProcess, WaitForMultipleObjects,
    WaitForSingleObject,
};

use super::owned;
use super::table::created;
use crate::interrupt::Interrupt;
use crate::model::SignalError;
use crate::platform::{Identity, Waited};

/// The exit code a stopped process is given (what `taskkill /f` gives, too).
const EXIT_CODE: u32 = 1;

/// How many handles one wait takes: `MAXIMUM_WAIT_OBJECTS` (64), one of them the interrupt's event.
const PER_WAIT: usize = 63;

/// An open process, known to be the one the scan saw when it was opened.
#[derive(Debug)]
pub struct Handle {
    pid: u32,
    process: OwnedHandle,
}

impl Handle {
    /// Opens `target` to wait for it and end it; `Ok(None)` when it is gone or its pid belongs to a process created
    /// at another time. An error when it exists but may not be opened (another user's, an elevated one).
    pub fn open(target: &Identity) -> std::io::Result<Option<Handle>> {
        let rights = SYNCHRONIZE | PROCESS_TERMINATE | PROCESS_QUERY_LIMITED_INFORMATION;
        // SAFETY: plain arguments; the result is checked by `owned`.
        let process = match owned(unsafe { OpenProcess(rights, 0, target.pid) }) {
            Ok(p) => p,
            // No such pid.
            Err(e) if e.raw_os_error() == Some(ERROR_INVALID_PARAMETER.cast_signed()) => return Ok(None),
            Err(e) => return Err(e),
        };
        let handle = Handle { pid: target.pid, process };
        let same = created(handle.raw()) == Some(target.start_time);
        Ok((same && !handle.exited_now()).then_some(handle))
    }

    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn raw(&self) -> HANDLE {
        self.process.as_raw_handle() as HANDLE
    }

    /// Whether the process has exited (its handle is signalled).
    #[must_use]
    pub fn exited_now(&self) -> bool {
        // SAFETY: a valid process handle opened with SYNCHRONIZE; a zero timeout never blocks.
        unsafe { WaitForSingleObject(self.raw(), 0) == WAIT_OBJECT_0 }
    }

    /// Ends the process. The handle pins it, so this never reaches another process that got its pid.
    pub fn terminate(&self) -> Result<(), SignalError> {
        if self.exited_now() {
            return Err(SignalError::Gone);
        }
        // SAFETY: a valid process handle opened with PROCESS_TERMINATE.
        if unsafe { TerminateProcess(self.raw(), EXIT_CODE) } != 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if self.exited_now() {
            return Err(SignalError::Gone);
        }
        Err(SignalError::Denied(if e.raw_os_error() == Some(ERROR_ACCESS_DENIED.cast_signed()) {
            format!("{e}: the process belongs to another user or runs elevated; run as that user or as administrator")
        } else {
            e.to_string()
        }))
    }
}

/// Waits until one of `handles` exits, `until` passes, or an interrupt arrives, woken by the exit itself. Beyond 63
/// handles, each group is looked at in turn with a short wait.
pub fn wait_any(handles: &[&Handle], until: Instant, interrupt: &Interrupt) -> Waited {
    let exited = || handles.iter().enumerate().filter(|(_, h)| h.exited_now()).map(|(i, _)| i).collect::<Vec<_>>();
    loop {
        let now = exited();
        if !now.is_empty() || interrupt.is_set() {
            return Waited { exited: now, interrupted: interrupt.is_set() };
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Waited::default();
        }
        let chunks = handles.len().div_ceil(PER_WAIT).max(1);
        // One group: the whole time left; several: a short turn each.
        let ms = if chunks == 1 { left.as_millis() } else { left.as_millis().min(20) };
        let ms = u32::try_from(ms).unwrap_or(u32::MAX - 1);
        for chunk in handles.chunks(PER_WAIT) {
            let mut set: Vec<HANDLE> = chunk.iter().map(|h| h.raw()).collect();
            set.push(interrupt.handle() as HANDLE);
            let n = u32::try_from(set.len()).unwrap_or(0);
            // SAFETY: at most 64 valid handles (process handles with SYNCHRONIZE and an event), waiting for any one.
            let r = unsafe { WaitForMultipleObjects(n, set.as_ptr(), 0, ms) };
            if r != WAIT_TIMEOUT {
                break;
            }
        }
        if interrupt.is_set() {
            interrupt.drain();
        }
    }
}
