//! [`UnixDatagram`]: a Unix datagram socket, bound or not.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::connect::connect_failed;
use super::file::{DEFAULT_MODE, SocketFile, bind_socket};
use super::message::{ReceivedMessage, message_ops, recv_checked, send_message};
use super::raw_addr;
use crate::socket::SocketError;
use crate::socket::UnixAddr;
use crate::socket::fdpass::MAX_FDS;
use crate::sys::socket::{self as sys, UnixType};
use crate::trust::Trust;
use crate::wait::Wait;

/// What a message socket keeps besides its descriptor: the address it is bound to, the socket
/// file it created, and whose messages it takes. Empty for unbound sockets, pairs and
/// seqpacket connections (checked at accept). The async sockets hold the same.
#[derive(Debug, Default)]
pub(crate) struct Binding {
    addr: Option<UnixAddr>,
    file: Option<SocketFile>,
    /// Whose datagrams a bound socket takes; `None` (unbound sockets, pairs): no check.
    trust: Option<Trust>,
}

impl Binding {
    /// Whom received messages are checked against, and the address to name in a refusal.
    pub(crate) fn sender_trust(&self) -> Option<(&Trust, Option<&UnixAddr>)> {
        self.trust.as_ref().map(|t| (t, self.addr.as_ref()))
    }
}

/// A Unix datagram socket. Bound sockets turn `SO_PASSCRED` on, so every received datagram
/// carries its sender's credentials.
///
/// The largest datagram is bounded by the sender's send buffer (`SO_SNDBUF`, at most
/// `net.core.wmem_max`): [`max_message_len`](Self::max_message_len) reports it; larger is
/// [`SocketError::TooLarge`].
#[derive(Debug)]
pub struct UnixDatagram {
    fd: OwnedFd,
    binding: Binding,
}

fd_traits!(UnixDatagram);
message_ops!(UnixDatagram, false);

impl From<OwnedFd> for UnixDatagram {
    fn from(fd: OwnedFd) -> UnixDatagram {
        UnixDatagram {
            fd,
            binding: Binding::default(),
        }
    }
}

impl UnixDatagram {
    /// Binds to `addr` (socket file mode `0o600`), with `SO_PASSCRED` on.
    pub fn bind(addr: &UnixAddr) -> Result<UnixDatagram, SocketError> {
        Self::bind_with_mode(addr, DEFAULT_MODE)
    }

    /// Like [`bind`](Self::bind) with the socket file's mode.
    pub fn bind_with_mode(addr: &UnixAddr, mode: u32) -> Result<UnixDatagram, SocketError> {
        let (fd, file) = bind_socket(UnixType::Datagram, addr, mode, false, true)?;
        Ok(UnixDatagram {
            fd,
            binding: Binding {
                addr: Some(addr.clone()),
                file,
                trust: Some(Trust::own_user()),
            },
        })
    }

    /// An unbound datagram socket (to [`send_to`](Self::send_to) or [`connect`](Self::connect)).
    pub fn unbound() -> Result<UnixDatagram, SocketError> {
        let fd = sys::unix_socket(UnixType::Datagram, false)
            .map_err(|e| SocketError::io("socket(2)", e))?;
        Ok(fd.into())
    }

    /// Two connected datagram sockets (`socketpair(2)`), with `SO_PASSCRED` on.
    pub fn pair() -> Result<(UnixDatagram, UnixDatagram), SocketError> {
        let (a, b) =
            sys::unix_pair(UnixType::Datagram).map_err(|e| SocketError::io("socketpair(2)", e))?;
        for fd in [&a, &b] {
            sys::set_passcred(fd.as_fd(), true)
                .map_err(|e| SocketError::io("setsockopt(SO_PASSCRED)", e))?;
        }
        Ok((a.into(), b.into()))
    }

    /// Sets the default destination (then [`send`](Self::send) works). A missing peer is
    /// [`SocketError::NotFound`].
    pub fn connect(&self, addr: &UnixAddr) -> Result<(), SocketError> {
        let raw = raw_addr(addr)?;
        sys::connect_unix(self.fd.as_fd(), &raw).map_err(|e| connect_failed(addr, e))
    }

    /// The bound address, if any.
    pub fn local_addr(&self) -> Option<&UnixAddr> {
        self.binding.addr.as_ref()
    }

    /// Sets whose datagrams this socket takes (a bound socket defaults to its own user's
    /// only; see [`crate::socket::unix`]): a datagram from another user is
    /// discarded and the receive returns [`SocketError::ForeignPeer`].
    pub fn set_trust(&mut self, trust: Trust) {
        self.binding.trust = Some(trust);
    }

    /// Keeps the socket file after drop.
    pub fn persist(&mut self) {
        if let Some(f) = &mut self.binding.file {
            f.persist();
        }
    }

    /// The largest datagram this socket can send now: its send buffer (`SO_SNDBUF`) less the
    /// kernel's per-datagram overhead.
    pub fn max_message_len(&self) -> Result<usize, SocketError> {
        sys::send_buffer_size(self.fd.as_fd())
            .map(|n| n.saturating_sub(32))
            .map_err(|e| SocketError::io("getsockopt(SO_SNDBUF)", e))
    }

    /// Sends one datagram to `addr`, blocking while the receiver's queue is full.
    pub fn send_to(&self, msg: &[u8], addr: &UnixAddr) -> Result<(), SocketError> {
        self.send_to_wait(msg, &[], addr, Wait::Forever)
    }

    /// Sends one datagram with fds to `addr`, waiting as `wait` allows.
    pub fn send_to_wait(
        &self,
        msg: &[u8],
        fds: &[BorrowedFd<'_>],
        addr: &UnixAddr,
        wait: Wait,
    ) -> Result<(), SocketError> {
        send_message(self.fd.as_fd(), msg, fds, Some(addr), wait)
    }
}

impl UnixDatagram {
    /// The descriptor and the rest, for the async socket.
    #[cfg(feature = "tokio")]
    pub(crate) fn into_parts(self) -> (OwnedFd, Binding) {
        (self.fd, self.binding)
    }
}
