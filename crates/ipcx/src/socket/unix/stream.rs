//! [`UnixStream`]: a connected Unix stream socket, for raw bytes, frames and file descriptors.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use super::connect::{connect_socket, peer_credentials};
use crate::framing::{FramedStream, framed_methods};
use crate::socket::fdpass::{self, ReceivedFds};
use crate::socket::{Credentials, SocketError, UnixAddr};
use crate::sys::socket::{self as sys, UnixType};
use crate::wait::Wait;

/// A connected Unix stream socket: raw bytes through [`Read`]/[`Write`], messages through
/// [`send_frame`](Self::send_frame)/[`recv_frame`](Self::recv_frame) (ipcx framing, through a
/// [`FramedStream`]), file descriptors through [`send_with_fds`](Self::send_with_fds).
///
/// Do not mix framed receives and raw reads on one stream: frame receives buffer bytes that a
/// later `read` would not see.
#[derive(Debug)]
pub struct UnixStream {
    framed: FramedStream<OwnedFd, SocketError>,
}

framed_methods!(UnixStream, framed, SocketError);

impl From<OwnedFd> for UnixStream {
    fn from(fd: OwnedFd) -> UnixStream {
        UnixStream {
            framed: FramedStream::new(fd),
        }
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.framed.get_ref().as_fd()
    }
}
impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.framed.get_ref().as_raw_fd()
    }
}
impl From<UnixStream> for OwnedFd {
    fn from(s: UnixStream) -> OwnedFd {
        s.framed.into_inner()
    }
}

impl UnixStream {
    /// Connects to `addr`, blocking while the listener's backlog is full.
    pub fn connect(addr: &UnixAddr) -> Result<UnixStream, SocketError> {
        Ok(connect_socket(UnixType::Stream, addr, Wait::Forever)?.into())
    }

    /// Connects to `addr`, giving up with [`SocketError::Timeout`] after `timeout`.
    pub fn connect_timeout(addr: &UnixAddr, timeout: Duration) -> Result<UnixStream, SocketError> {
        Ok(connect_socket(UnixType::Stream, addr, Wait::timeout(timeout))?.into())
    }

    /// Two connected streams (`socketpair(2)`): hand one to a child process.
    pub fn pair() -> Result<(UnixStream, UnixStream), SocketError> {
        let (a, b) =
            sys::unix_pair(UnixType::Stream).map_err(|e| SocketError::io("socketpair(2)", e))?;
        Ok((a.into(), b.into()))
    }

    /// The peer's credentials, captured by the kernel at connect time (`SO_PEERCRED`).
    #[doc(alias = "SO_PEERCRED")]
    pub fn peer_credentials(&self) -> Result<Credentials, SocketError> {
        peer_credentials(self.as_fd())
    }

    /// Sends `data` with file descriptors attached (`SCM_RIGHTS`); see [`fdpass`].
    /// Returns the bytes sent (a stream may take fewer than `data.len()`; the fds travel with
    /// the first byte).
    pub fn send_with_fds(
        &mut self,
        data: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<usize, SocketError> {
        fdpass::send_fds_wait(self.as_fd(), data, fds, Wait::Forever)
    }

    /// Receives bytes and the file descriptors attached to them (at most `max_fds`; more is
    /// [`SocketError::ControlTruncated`]). `Ok` with zero bytes and no fds is end of stream.
    pub fn recv_with_fds(
        &mut self,
        buf: &mut [u8],
        max_fds: usize,
    ) -> Result<ReceivedFds, SocketError> {
        fdpass::recv_fds_wait(self.as_fd(), buf, max_fds, Wait::Forever)
    }

    /// Shuts the write side down: the peer reads end of stream.
    pub fn shutdown_write(&mut self) -> Result<(), SocketError> {
        sys::shutdown_write(self.as_fd()).map_err(|e| SocketError::io("shutdown(2)", e))
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::recv_bytes(self.as_fd(), buf, false)
    }
}

impl Write for UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::send_bytes(self.as_fd(), buf, false)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sends an encoded frame on a byte stream (the rules of [`FramedStream`]), for the channel
/// layer's stream senders.
pub(crate) fn send_stream_frame(
    fd: BorrowedFd<'_>,
    frame: Vec<u8>,
    wait: Wait,
) -> Result<(), SocketError> {
    crate::framing::send_all(fd, &frame, wait)
}
