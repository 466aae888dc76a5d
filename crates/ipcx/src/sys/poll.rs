//! `poll(2)`: the one poll implementation in ipcx, for every pollable descriptor (pipes, FIFOs,
//! sockets, eventfds, signalfds, pidfds).
//!
//! # References
//! [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).

use std::io;
use std::os::fd::BorrowedFd;

use rustix::event::{PollFd, PollFlags, Timespec};

use crate::wait::Wait;

/// What `poll(2)` reported for one descriptor.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Events {
    /// `POLLIN`.
    pub(crate) readable: bool,
    /// `POLLOUT`.
    pub(crate) writable: bool,
    /// `POLLHUP`: the peer is gone (no writer left on a pipe's read end).
    pub(crate) hup: bool,
    /// `POLLERR` or `POLLNVAL` (no reader left on a pipe's write end; a failed socket).
    pub(crate) err: bool,
}

impl Events {
    /// `POLLIN` or `POLLOUT`: ready for what was asked.
    pub(crate) fn ready(&self) -> bool {
        self.readable || self.writable
    }

    /// `POLLHUP`, `POLLERR` or `POLLNVAL`: the peer is gone or the descriptor failed.
    pub(crate) fn hangup(&self) -> bool {
        self.hup || self.err
    }

    /// Whether anything at all was reported.
    pub(crate) fn any(&self) -> bool {
        self.ready() || self.hangup()
    }

    fn from_revents(r: PollFlags) -> Events {
        Events {
            readable: r.contains(PollFlags::IN),
            writable: r.contains(PollFlags::OUT),
            hup: r.contains(PollFlags::HUP),
            err: r.intersects(PollFlags::ERR | PollFlags::NVAL),
        }
    }
}

fn interest(read: bool, write: bool) -> PollFlags {
    let mut ev = PollFlags::empty();
    if read {
        ev |= PollFlags::IN;
    }
    if write {
        ev |= PollFlags::OUT;
    }
    ev
}

/// `poll(2)` over `fds` for at most `timeout_ms` milliseconds (`< 0`: forever). An interrupted
/// poll (`EINTR`) reports nothing, like a timeout: callers recompute their deadline and poll
/// again.
fn poll_fds(fds: &mut [PollFd<'_>], timeout_ms: i32) -> io::Result<()> {
    let ts = (timeout_ms >= 0).then(|| Timespec {
        tv_sec: i64::from(timeout_ms / 1000),
        tv_nsec: i64::from(timeout_ms % 1000) * 1_000_000,
    });
    match rustix::event::poll(fds, ts.as_ref()) {
        Ok(_) => Ok(()),
        Err(rustix::io::Errno::INTR) => {
            for fd in fds.iter_mut() {
                fd.clear_revents();
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// `poll(2)` on one descriptor for readability (`read`) and/or writability (`write`), for at
/// most `timeout_ms` milliseconds (`< 0`: forever). Nothing is reported on timeout or `EINTR`.
pub(crate) fn poll(
    fd: BorrowedFd<'_>,
    read: bool,
    write: bool,
    timeout_ms: i32,
) -> io::Result<Events> {
    let mut fds = [PollFd::from_borrowed_fd(fd, interest(read, write))];
    poll_fds(&mut fds, timeout_ms)?;
    Ok(Events::from_revents(fds[0].revents()))
}

/// `poll(2)` on several descriptors, each `(fd, read, write)`; one [`Events`] per descriptor,
/// all empty on timeout or `EINTR`.
pub(crate) fn poll_many(
    fds: &[(BorrowedFd<'_>, bool, bool)],
    timeout_ms: i32,
) -> io::Result<Vec<Events>> {
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|&(fd, r, w)| PollFd::from_borrowed_fd(fd, interest(r, w)))
        .collect();
    poll_fds(&mut pfds, timeout_ms)?;
    Ok(pfds
        .iter()
        .map(|p| Events::from_revents(p.revents()))
        .collect())
}

/// Polls `fd` for readability (`readable`) or writability until `poll(2)` reports something
/// (readiness or a hang-up: see [`Events`]) or `wait` runs out. Returns the events, or `None`
/// when the wait is over (for [`Wait::NoWait`], after one non-blocking poll).
pub(crate) fn poll_wait(
    fd: BorrowedFd<'_>,
    readable: bool,
    wait: Wait,
) -> io::Result<Option<Events>> {
    loop {
        let ev = poll(fd, readable, !readable, wait.poll_timeout_ms())?;
        if ev.any() {
            return Ok(Some(ev));
        }
        if wait.expired() {
            return Ok(None);
        }
    }
}

/// Why a waited operation did not complete.
#[derive(Debug)]
pub(crate) enum WaitError {
    /// `Wait::NoWait` and the call would block.
    WouldBlock,
    /// The deadline passed.
    Timeout,
    /// The call (or the poll) failed.
    Io(io::Error),
}

/// The one loop every waiting fd operation goes through: runs `op` (a non-blocking call) until
/// it does not fail with `EAGAIN`, polling `fd` for readability (`readable`) or writability in
/// between, as `wait` allows.
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
/// sees the error or end of stream). Unlike [`poll_wait`], fails without polling when `wait` is
/// [`Wait::NoWait`](Wait::NoWait) or already over.
pub(crate) fn poll_until(fd: BorrowedFd<'_>, readable: bool, wait: Wait) -> Result<(), WaitError> {
    if wait == Wait::NoWait {
        return Err(WaitError::WouldBlock);
    }
    if wait.expired() {
        return Err(WaitError::Timeout);
    }
    match poll_wait(fd, readable, wait).map_err(WaitError::Io)? {
        Some(_) => Ok(()),
        None => Err(WaitError::Timeout),
    }
}
