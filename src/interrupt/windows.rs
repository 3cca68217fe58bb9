//! Ctrl-C on Windows: a console control handler (Ctrl-C, Ctrl-Break, the console closing) sets the flag and signals
//! a manual-reset event, so waits on process handles (`WaitForMultipleObjects`) wake on it without a race.
#![expect(unsafe_code, reason = "console handler and event object calls; each says why it is sound")]

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
use windows_sys::Win32::System::Threading::{CreateEventW, ResetEvent, SetEvent};
use windows_sys::core::BOOL;

use crate::exit;

/// The interrupt state shared by every stage.
#[derive(Debug)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    /// Signalled once an interrupt arrived (manual reset: stays so until drained).
    wake: Arc<OwnedHandle>,
}

/// What the process-wide console handler sets: the handler is a plain function, so it finds them here.
static INSTALLED: OnceLock<(Arc<AtomicBool>, Arc<OwnedHandle>)> = OnceLock::new();

unsafe extern "system" fn on_ctrl(_kind: u32) -> BOOL {
    let Some((flag, wake)) = INSTALLED.get() else { return 0 };
    // The first one asks the run to stop at a safe point; the second exits at once, as on Unix.
    if flag.swap(true, Ordering::SeqCst) {
        std::process::exit(exit::INTERRUPTED);
    }
    // SAFETY: `wake` is an event handle owned by INSTALLED, which lives as long as the process.
    unsafe { SetEvent(wake.as_raw_handle() as HANDLE) };
    1
}

fn event() -> std::io::Result<Arc<OwnedHandle>> {
    // SAFETY: no security attributes, no name; the result is checked before it is owned.
    let h = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
    if h.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a handle just created and owned by nothing else.
    Ok(Arc::new(unsafe { OwnedHandle::from_raw_handle(h as RawHandle) }))
}

impl Interrupt {
    /// Installs the process's console control handler (Ctrl-C, Ctrl-Break, closing the console). Once per process.
    pub fn install() -> std::io::Result<Self> {
        let interrupt = Interrupt { flag: Arc::new(AtomicBool::new(false)), wake: event()? };
        if INSTALLED.set((Arc::clone(&interrupt.flag), Arc::clone(&interrupt.wake))).is_err() {
            return Err(std::io::Error::other("the Ctrl-C handler is installed already"));
        }
        // SAFETY: `on_ctrl` has the signature PHANDLER_ROUTINE requires and reads only INSTALLED, set above.
        if unsafe { SetConsoleCtrlHandler(Some(on_ctrl), 1) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(interrupt)
    }

    /// An interrupt that only [`Interrupt::trigger`] sets, for library callers and tests.
    pub fn manual() -> std::io::Result<Self> {
        Ok(Interrupt { flag: Arc::new(AtomicBool::new(false)), wake: event()? })
    }

    /// Sets the flag as Ctrl-C would.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        // SAFETY: an event handle this value owns.
        unsafe { SetEvent(self.wake.as_raw_handle() as HANDLE) };
    }

    #[must_use]
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Signalled once an interrupt arrived: add it to a `WaitForMultipleObjects` set.
    #[must_use]
    pub fn handle(&self) -> RawHandle {
        self.wake.as_raw_handle()
    }

    /// Resets the event after a wait reported it.
    pub fn drain(&self) {
        // SAFETY: an event handle this value owns.
        unsafe { ResetEvent(self.wake.as_raw_handle() as HANDLE) };
    }
}
