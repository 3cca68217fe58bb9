//! Ctrl-C on Unix: SIGINT and SIGTERM set the flag and write to a self-pipe, so waits that `poll` can wake on it
//! without a race.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::exit;

/// The interrupt state shared by every stage.
#[derive(Debug)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    wake: UnixStream,
    /// Kept so the pipe never reports EOF, and for [`Interrupt::trigger`].
    send: UnixStream,
}

impl Interrupt {
    /// Installs the SIGINT and SIGTERM handlers of the process.
    pub fn install() -> std::io::Result<Self> {
        let (wake, send) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        send.set_nonblocking(true)?;
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Registered first, so that it sees the flag the first signal set: the second signal exits.
            signal_hook::flag::register_conditional_shutdown(sig, exit::INTERRUPTED, Arc::clone(&flag))?;
            signal_hook::flag::register(sig, Arc::clone(&flag))?;
            signal_hook::low_level::pipe::register(sig, send.try_clone()?)?;
        }
        Ok(Interrupt { flag, wake, send })
    }

    /// An interrupt that only [`Interrupt::trigger`] sets, for library callers and tests.
    pub fn manual() -> std::io::Result<Self> {
        let (wake, send) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        Ok(Interrupt { flag: Arc::new(AtomicBool::new(false)), wake, send })
    }

    /// Sets the flag as a signal would.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = std::io::Write::write(&mut &self.send, &[1]);
    }

    #[must_use]
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Readable once an interrupt arrived: add it to a `poll` set.
    #[must_use]
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Empties the wake-up pipe after `poll` reported it readable.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.wake).read(&mut buf), Ok(n) if n > 0) {}
    }
}
