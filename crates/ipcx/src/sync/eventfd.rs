//! [`EventFd`]: a kernel event counter behind a file descriptor (eventfd(2)).
//!
//! An eventfd has no name: processes share it by inheriting the descriptor across
//! `fork`/`exec` (for example as a child's stdin or through a descriptor the child is told
//! about), or, normally, by passing it over a Unix socket (`SCM_RIGHTS`, see
//! [`crate::socket`]). Opening `/proc/<pid>/fd/<n>` does **not** work for an eventfd (the
//! kernel answers `ENXIO`).
//!
//! The descriptor is always non-blocking (`EFD_NONBLOCK`) and close-on-exec; blocking and
//! timed operations wait with poll(2), so several processes can read one eventfd without a
//! reader getting stuck in `read`. Note that `O_NONBLOCK` belongs to the open file description,
//! which inherited and passed descriptors share.
//!
//! # References
//! - [eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html)

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::sys::eventfd as sys;
use crate::sys::poll::{WaitError, retry_ready};
use crate::wait::Wait;

/// Why an eventfd operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventFdError {
    /// `try_read`: the counter is zero; `try_write`: adding would overflow the counter.
    #[error(
        "the eventfd would block (counter zero on read, or full on write): retry later or use a timeout"
    )]
    WouldBlock,
    /// The timeout passed first.
    #[error("timed out waiting on the eventfd")]
    Timeout,
    /// `u64::MAX` cannot be added to an eventfd counter.
    #[error("cannot add u64::MAX to an eventfd counter: add at most u64::MAX - 1")]
    InvalidValue,
    /// The descriptor given to [`EventFd::from_fd`] is not an eventfd.
    #[error("the file descriptor is not an eventfd")]
    NotAnEventFd,
    /// Any other OS error.
    #[error("eventfd operation failed: {0}")]
    Io(#[source] io::Error),
}

/// An eventfd: a 64-bit counter in the kernel, pollable.
///
/// In counter mode ([`EventFd::new`]) a read returns the whole counter and resets it to zero;
/// in semaphore mode ([`EventFd::semaphore`]) a read returns 1 and decrements it. A write adds
/// to the counter; both block (or fail with `WouldBlock` / `Timeout`) when they cannot proceed.
///
/// # Examples
/// ```
/// use ipcx::sync::EventFd;
///
/// let ev = EventFd::new(0)?;
/// ev.write(3)?;
/// ev.write(4)?;
/// assert_eq!(ev.read()?, 7);
///
/// let sem = EventFd::semaphore(2)?;
/// assert_eq!(sem.read()?, 1);
/// assert_eq!(sem.read()?, 1);
/// assert!(sem.try_read().is_err());
/// # Ok::<(), ipcx::sync::EventFdError>(())
/// ```
#[derive(Debug)]
#[doc(alias = "eventfd")]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A counter-mode eventfd starting at `initial`.
    pub fn new(initial: u32) -> Result<EventFd, EventFdError> {
        Self::create(initial, false)
    }

    /// A semaphore-mode eventfd (`EFD_SEMAPHORE`) starting at `initial`.
    #[doc(alias = "EFD_SEMAPHORE")]
    pub fn semaphore(initial: u32) -> Result<EventFd, EventFdError> {
        Self::create(initial, true)
    }

    fn create(initial: u32, semaphore: bool) -> Result<EventFd, EventFdError> {
        let fd = sys::eventfd(initial, semaphore).map_err(EventFdError::Io)?;
        Ok(EventFd { fd })
    }

    /// Wraps a descriptor received from elsewhere (inherited, or passed over a Unix socket):
    /// checks that it is an eventfd and makes it non-blocking.
    pub fn from_fd(fd: OwnedFd) -> Result<EventFd, EventFdError> {
        if !sys::is_eventfd(&fd).map_err(EventFdError::Io)? {
            return Err(EventFdError::NotAnEventFd);
        }
        sys::set_nonblocking(&fd).map_err(EventFdError::Io)?;
        Ok(EventFd { fd })
    }

    /// Another descriptor for the same eventfd (`F_DUPFD_CLOEXEC`).
    pub fn try_clone(&self) -> Result<EventFd, EventFdError> {
        let fd = self.fd.try_clone().map_err(EventFdError::Io)?;
        Ok(EventFd { fd })
    }

    /// Reads: the counter (counter mode, which resets it) or 1 (semaphore mode), blocking while
    /// it is zero.
    pub fn read(&self) -> Result<u64, EventFdError> {
        self.read_wait(Wait::Forever)
    }

    /// Reads if the counter is non-zero; [`EventFdError::WouldBlock`] otherwise.
    pub fn try_read(&self) -> Result<u64, EventFdError> {
        self.read_wait(Wait::NoWait)
    }

    /// Reads, waiting at most `timeout`; [`EventFdError::Timeout`] then.
    pub fn read_timeout(&self, timeout: Duration) -> Result<u64, EventFdError> {
        self.read_wait(Wait::timeout(timeout))
    }

    /// Reads, waiting as `wait` says.
    pub fn read_wait(&self, wait: Wait) -> Result<u64, EventFdError> {
        read_on(self.fd.as_fd(), wait)
    }

    /// Adds `n` to the counter, blocking while that would overflow it.
    pub fn write(&self, n: u64) -> Result<(), EventFdError> {
        self.write_wait(n, Wait::Forever)
    }

    /// Adds `n` unless that would overflow the counter ([`EventFdError::WouldBlock`]).
    pub fn try_write(&self, n: u64) -> Result<(), EventFdError> {
        self.write_wait(n, Wait::NoWait)
    }

    /// Adds `n`, waiting at most `timeout` for room.
    pub fn write_timeout(&self, n: u64, timeout: Duration) -> Result<(), EventFdError> {
        self.write_wait(n, Wait::timeout(timeout))
    }

    /// Adds `n`, waiting as `wait` says.
    pub fn write_wait(&self, n: u64, wait: Wait) -> Result<(), EventFdError> {
        write_on(self.fd.as_fd(), n, wait)
    }
}

/// Reads the eventfd `fd`, waiting as `wait` says.
fn read_on(fd: BorrowedFd<'_>, wait: Wait) -> Result<u64, EventFdError> {
    op(fd, wait, true, || sys::read(fd))
}

/// Adds `n` to the eventfd `fd`, waiting as `wait` says.
fn write_on(fd: BorrowedFd<'_>, n: u64, wait: Wait) -> Result<(), EventFdError> {
    if n == u64::MAX {
        return Err(EventFdError::InvalidValue);
    }
    op(fd, wait, false, || sys::write(fd, n))
}

fn op<R>(
    fd: BorrowedFd<'_>,
    wait: Wait,
    readable: bool,
    f: impl FnMut() -> io::Result<R>,
) -> Result<R, EventFdError> {
    retry_ready(fd, readable, wait, f).map_err(|e| match e {
        WaitError::WouldBlock => EventFdError::WouldBlock,
        WaitError::Timeout => EventFdError::Timeout,
        WaitError::Io(e) => EventFdError::Io(e),
    })
}

crate::sys::fd_of_field!(EventFd, fd);

impl From<EventFd> for OwnedFd {
    fn from(ev: EventFd) -> OwnedFd {
        ev.fd
    }
}

impl From<OwnedFd> for EventFd {
    /// Wraps `fd`, which must be an eventfd (use [`EventFd::from_fd`] to have that checked).
    /// Makes it non-blocking; if that fails, blocking reads still work but `try_` forms may
    /// block.
    fn from(fd: OwnedFd) -> EventFd {
        let _ = sys::set_nonblocking(&fd);
        EventFd { fd }
    }
}

/// An [`EventFd`] registered with the tokio reactor.
///
/// ```
/// use ipcx::sync::{AsyncEventFd, EventFd};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let ev = AsyncEventFd::new(EventFd::new(0)?)?;
/// ev.write(1).await?;
/// assert_eq!(ev.read().await?, 1);
/// # Ok(()) }
/// ```
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct AsyncEventFd {
    inner: tokio::io::unix::AsyncFd<OwnedFd>,
}

#[cfg(feature = "tokio")]
impl AsyncEventFd {
    /// Registers `ev` with the current tokio runtime (must be called inside one).
    pub fn new(ev: EventFd) -> Result<AsyncEventFd, EventFdError> {
        let inner = sys::register_async(ev.fd).map_err(EventFdError::Io)?;
        Ok(AsyncEventFd { inner })
    }

    /// Reads, waiting asynchronously while the counter is zero.
    pub async fn read(&self) -> Result<u64, EventFdError> {
        loop {
            let mut guard = self.inner.readable().await.map_err(EventFdError::Io)?;
            match read_on(guard.get_inner().as_fd(), Wait::NoWait) {
                Err(EventFdError::WouldBlock) => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// Adds `n`, waiting asynchronously while that would overflow the counter.
    pub async fn write(&self, n: u64) -> Result<(), EventFdError> {
        loop {
            let mut guard = self.inner.writable().await.map_err(EventFdError::Io)?;
            match write_on(guard.get_inner().as_fd(), n, Wait::NoWait) {
                Err(EventFdError::WouldBlock) => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// Reads if the counter is non-zero, without waiting (as [`EventFd::try_read`]).
    pub fn try_read(&self) -> Result<u64, EventFdError> {
        read_on(self.as_fd(), Wait::NoWait)
    }

    /// Adds `n` unless that would overflow the counter, without waiting (as
    /// [`EventFd::try_write`]).
    pub fn try_write(&self, n: u64) -> Result<(), EventFdError> {
        write_on(self.as_fd(), n, Wait::NoWait)
    }

    /// Deregisters and returns the eventfd.
    pub fn into_inner(self) -> EventFd {
        EventFd {
            fd: self.inner.into_inner(),
        }
    }
}

#[cfg(feature = "tokio")]
crate::sys::fd_of_field!(AsyncEventFd, inner);

impl crate::wait_set::Waitable for EventFd {
    /// Ready while the counter is non-zero.
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        Ok(crate::wait_set::Readiness::fd(self.fd.as_fd()))
    }
}
