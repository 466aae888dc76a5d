//! [`UnixSeqpacket`]: a connected Unix seqpacket socket (its listener is in the listener file).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::connect::{connect_socket, peer_credentials};
use super::datagram::Binding;
use super::message::{ReceivedMessage, message_ops, recv_checked, send_message};
use crate::socket::fdpass::MAX_FDS;
use crate::socket::{Credentials, SocketError, UnixAddr};
use crate::sys::socket::{self as sys, UnixType};
use crate::wait::Wait;

/// A connected Unix seqpacket socket: reliable, ordered, message boundaries kept. A received
/// message carries the connection's credentials.
#[derive(Debug)]
pub struct UnixSeqpacket {
    fd: OwnedFd,
    /// Always empty: connections were checked at accept (or connect).
    binding: Binding,
}

fd_traits!(UnixSeqpacket);
message_ops!(UnixSeqpacket, true);

impl From<OwnedFd> for UnixSeqpacket {
    fn from(fd: OwnedFd) -> UnixSeqpacket {
        UnixSeqpacket {
            fd,
            binding: Binding::default(),
        }
    }
}

impl UnixSeqpacket {
    /// Connects to `addr`.
    pub fn connect(addr: &UnixAddr) -> Result<UnixSeqpacket, SocketError> {
        Ok(connect_socket(UnixType::Seqpacket, addr, Wait::Forever)?.into())
    }

    /// Connects to `addr`, giving up after `timeout` (backlog full).
    pub fn connect_timeout(
        addr: &UnixAddr,
        timeout: Duration,
    ) -> Result<UnixSeqpacket, SocketError> {
        Ok(connect_socket(UnixType::Seqpacket, addr, Wait::timeout(timeout))?.into())
    }

    /// Two connected seqpacket sockets (`socketpair(2)`).
    pub fn pair() -> Result<(UnixSeqpacket, UnixSeqpacket), SocketError> {
        let (a, b) =
            sys::unix_pair(UnixType::Seqpacket).map_err(|e| SocketError::io("socketpair(2)", e))?;
        Ok((a.into(), b.into()))
    }

    /// The peer's credentials (`SO_PEERCRED`).
    pub fn peer_credentials(&self) -> Result<Credentials, SocketError> {
        peer_credentials(self.fd.as_fd())
    }
}

impl UnixSeqpacket {
    /// The descriptor and the rest, for the async socket.
    #[cfg(feature = "tokio")]
    pub(crate) fn into_parts(self) -> (OwnedFd, Binding) {
        (self.fd, self.binding)
    }
}
