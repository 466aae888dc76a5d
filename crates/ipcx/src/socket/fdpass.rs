//! File-descriptor passing (`SCM_RIGHTS`): ipcx's permission-distribution mechanism.
//!
//! An open file descriptor is a capability: whoever holds it may use the object it refers to
//! with the rights it was opened with, whatever the object's path, mode or owner. Passing one
//! over a Unix socket hands that capability to another process without giving it any other
//! access: a supervisor opens a log file (or a device, a directory with `O_PATH`, a sealed
//! memfd holding configuration, one end of a pipe, an eventfd, another socket) and sends it to
//! a sandboxed worker that could never open it itself.
//!
//! Every Unix socket type carries descriptors:
//! [`UnixStream::send_with_fds`](super::UnixStream::send_with_fds) /
//! [`recv_with_fds`](super::UnixStream::recv_with_fds) (the fds travel with the first byte of
//! the data), and [`UnixSeqpacket`](super::UnixSeqpacket) / [`UnixDatagram`](super::UnixDatagram)
//! `send_with_fds`, whose received [`ReceivedMessage`](super::ReceivedMessage) holds them.
//!
//! Rules:
//! * One message carries at most [`MAX_FDS`] (253, the kernel's `SCM_MAX_FD`) descriptors: more
//!   is [`SocketError::TooManyFds`] before anything is sent. At least one byte of data must go
//!   with them (ipcx sends what you give it; give it at least one byte on streams).
//! * Received descriptors are `OwnedFd`s opened close-on-exec (`MSG_CMSG_CLOEXEC`): a received
//!   descriptor that you do not keep is closed when it is dropped, so nothing leaks.
//! * A receive states how many descriptors it accepts. When the peer sent more, the kernel
//!   drops the surplus (`MSG_CTRUNC`): ipcx closes the ones that did arrive and returns
//!   [`SocketError::ControlTruncated`].
//! * The sender may close its copies as soon as the send returns.
//!
//! ```no_run
//! use std::os::fd::AsFd;
//! use ipcx::socket::UnixSeqpacket;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (parent, child) = UnixSeqpacket::pair()?;
//! let log = std::fs::File::options().append(true).open("/var/log/app.log")?;
//! parent.send_with_fds(b"log", &[log.as_fd()])?;
//! // in the worker:
//! let mut msg = child.recv()?;
//! let log = std::fs::File::from(msg.take_fds().remove(0));
//! # let _ = log; Ok(()) }
//! ```
//!
//! # References
//! [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html) (`SCM_RIGHTS`),
//! [cmsg(3)](https://man7.org/linux/man-pages/man3/cmsg.3.html).

use std::os::fd::{BorrowedFd, OwnedFd};

use super::error::SocketError;
use crate::sys::poll::{WaitError, retry_ready};
use crate::sys::socket as sys;
use crate::wait::Wait;

/// The most descriptors one message can carry (`SCM_MAX_FD`).
pub const MAX_FDS: usize = sys::SCM_MAX_FD;

/// What a byte-stream receive with descriptors returned.
#[derive(Debug)]
#[non_exhaustive]
pub struct ReceivedFds {
    /// Bytes stored in the buffer (`0` with no fds: end of stream).
    pub len: usize,
    /// Descriptors that came with those bytes, close-on-exec.
    pub fds: Vec<OwnedFd>,
}

/// Sends `data` with `fds` on any connected Unix socket, waiting as `wait` allows; returns
/// the bytes sent.
pub(crate) fn send_fds_wait(
    fd: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
    wait: Wait,
) -> Result<usize, SocketError> {
    if fds.len() > MAX_FDS {
        return Err(SocketError::TooManyFds {
            count: fds.len(),
            max: MAX_FDS,
        });
    }
    retry_ready(fd, false, wait, || sys::send_msg(fd, data, fds, None, true)).map_err(|e| match e {
        WaitError::WouldBlock => SocketError::WouldBlock,
        WaitError::Timeout => SocketError::Timeout,
        WaitError::Io(e) => match e.raw_os_error() {
            Some(libc::ETOOMANYREFS) => SocketError::TooManyFds {
                count: fds.len(),
                max: MAX_FDS,
            },
            _ => SocketError::io("sending file descriptors", e),
        },
    })
}

/// Receives bytes with up to `max_fds` descriptors, waiting as `wait` allows.
pub(crate) fn recv_fds_wait(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
    wait: Wait,
) -> Result<ReceivedFds, SocketError> {
    let r =
        retry_ready(fd, true, wait, || sys::recv_msg(fd, buf, max_fds, true)).map_err(
            |e| match e {
                WaitError::WouldBlock => SocketError::WouldBlock,
                WaitError::Timeout => SocketError::Timeout,
                WaitError::Io(e) => SocketError::io("receiving file descriptors", e),
            },
        )?;
    if r.control_truncated || r.fds.len() > max_fds {
        let received = r.fds.len();
        drop(r);
        return Err(SocketError::ControlTruncated { max_fds, received });
    }
    Ok(ReceivedFds {
        len: r.len,
        fds: r.fds,
    })
}
