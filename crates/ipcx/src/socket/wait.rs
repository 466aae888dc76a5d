//! The one loop every waiting socket operation goes through: try the non-blocking call, and on
//! `EAGAIN` poll the descriptor until it is ready or the [`Wait`] runs out.

use std::io;
use std::os::fd::BorrowedFd;

use crate::sys::socket as sys;
use crate::wait::Wait;

/// Why a waited operation did not complete.
#[derive(Debug)]
pub(crate) enum WaitError {
    /// `Wait::NoWait` and the call would block.
    WouldBlock,
    /// The deadline passed.
    Timeout,
    /// The call failed.
    Io(io::Error),
}

/// Runs `op` (a non-blocking call) until it does not fail with `EAGAIN`, polling `fd` for
/// readability (`readable`) or writability in between, as `wait` allows.
pub(crate) fn retry_ready<T>(
    fd: BorrowedFd<'_>,
    readable: bool,
    wait: Wait,
    mut op: impl FnMut() -> io::Result<T>,
) -> Result<T, WaitError> {
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(WaitError::Io(e)),
        }
        poll_until(fd, readable, wait)?;
    }
}

/// Waits until `fd` is readable (or writable), reports a hang-up as ready (the next call then
/// sees the error or end of stream).
pub(crate) fn poll_until(fd: BorrowedFd<'_>, readable: bool, wait: Wait) -> Result<(), WaitError> {
    loop {
        if wait == Wait::NoWait {
            return Err(WaitError::WouldBlock);
        }
        if wait.expired() {
            return Err(WaitError::Timeout);
        }
        let r = sys::poll(&[(fd, readable, !readable)], wait.poll_timeout_ms())
            .map_err(WaitError::Io)?;
        if r[0].readable || r[0].writable || r[0].hangup {
            return Ok(());
        }
    }
}
