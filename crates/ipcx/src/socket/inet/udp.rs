//! UDP: [`UdpSocket`], one message per datagram.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use super::{MAX_UDP_PAYLOAD_V4, MAX_UDP_PAYLOAD_V6, resolve, shown, wait_err};
use crate::socket::SocketError;
use crate::sys::poll::{WaitError, retry_ready};
use crate::wait::Wait;

/// A UDP socket: one message per datagram.
#[derive(Debug)]
pub struct UdpSocket {
    inner: std::net::UdpSocket,
    max: usize,
}

impl UdpSocket {
    /// Binds (port 0 picks a free port).
    pub fn bind(addr: impl ToSocketAddrs) -> Result<UdpSocket, SocketError> {
        let name = shown(&addr);
        let inner = std::net::UdpSocket::bind(addr).map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => SocketError::AddrInUse { addr: name.clone() },
            _ => SocketError::io(format!("binding {name}"), e),
        })?;
        Self::from_std(inner)
    }

    /// Wraps a std socket (made non-blocking; the blocking forms poll).
    pub fn from_std(inner: std::net::UdpSocket) -> Result<UdpSocket, SocketError> {
        inner
            .set_nonblocking(true)
            .map_err(|e| SocketError::io("fcntl", e))?;
        let max = match inner.local_addr() {
            Ok(SocketAddr::V6(_)) => MAX_UDP_PAYLOAD_V6,
            _ => MAX_UDP_PAYLOAD_V4,
        };
        Ok(UdpSocket { inner, max })
    }

    /// Binds an ephemeral port of the right family and connects to `addr` (the first resolved
    /// address).
    pub fn connect(addr: impl ToSocketAddrs) -> Result<UdpSocket, SocketError> {
        let name = shown(&addr);
        let target = resolve(addr, &name)?[0];
        let local: SocketAddr = if target.is_ipv6() {
            "[::]:0".parse().expect("literal")
        } else {
            "0.0.0.0:0".parse().expect("literal")
        };
        let s = UdpSocket::bind(local)?;
        s.inner
            .connect(target)
            .map_err(|e| SocketError::io(format!("connecting to {target}"), e))?;
        Ok(s)
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, SocketError> {
        self.inner
            .local_addr()
            .map_err(|e| SocketError::io("getsockname", e))
    }

    /// The largest payload: [`MAX_UDP_PAYLOAD_V4`] or [`MAX_UDP_PAYLOAD_V6`].
    pub fn max_message_len(&self) -> usize {
        self.max
    }

    fn check(&self, len: usize) -> Result<(), SocketError> {
        if len > self.max {
            return Err(SocketError::TooLarge {
                len,
                max: self.max,
                what: "the UDP payload limit",
            });
        }
        Ok(())
    }

    /// Sends one datagram to the connected peer, waiting as `wait` allows. A peer whose port
    /// is closed shows up as [`SocketError::PeerGone`] on a later call (ICMP port unreachable).
    pub fn send_wait(&self, msg: &[u8], wait: Wait) -> Result<(), SocketError> {
        self.check(msg.len())?;
        retry_ready(self.inner.as_fd(), false, wait, || self.inner.send(msg))
            .map(drop)
            .map_err(|e| self.map(e, msg.len()))
    }

    /// Sends one datagram to the connected peer, blocking.
    pub fn send(&self, msg: &[u8]) -> Result<(), SocketError> {
        self.send_wait(msg, Wait::Forever)
    }

    /// Sends one datagram to `addr`.
    pub fn send_to(&self, msg: &[u8], addr: SocketAddr) -> Result<(), SocketError> {
        self.check(msg.len())?;
        retry_ready(self.inner.as_fd(), false, Wait::Forever, || {
            self.inner.send_to(msg, addr)
        })
        .map(drop)
        .map_err(|e| self.map(e, msg.len()))
    }

    /// Receives one datagram and its sender, waiting as `wait` allows.
    pub fn recv_from_wait(&self, wait: Wait) -> Result<(Vec<u8>, SocketAddr), SocketError> {
        let mut buf = vec![0u8; 65536];
        let (n, from) = retry_ready(self.inner.as_fd(), true, wait, || {
            self.inner.recv_from(&mut buf)
        })
        .map_err(|e| self.map(e, 0))?;
        buf.truncate(n);
        Ok((buf, from))
    }

    /// Receives one datagram and its sender, blocking.
    pub fn recv_from(&self) -> Result<(Vec<u8>, SocketAddr), SocketError> {
        self.recv_from_wait(Wait::Forever)
    }

    /// Receives a waiting datagram ([`SocketError::WouldBlock`] when none).
    pub fn try_recv_from(&self) -> Result<(Vec<u8>, SocketAddr), SocketError> {
        self.recv_from_wait(Wait::NoWait)
    }

    /// Receives one datagram, giving up after `timeout`.
    pub fn recv_from_timeout(
        &self,
        timeout: Duration,
    ) -> Result<(Vec<u8>, SocketAddr), SocketError> {
        self.recv_from_wait(Wait::timeout(timeout))
    }

    fn map(&self, e: WaitError, len: usize) -> SocketError {
        match e {
            WaitError::Io(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => SocketError::TooLarge {
                len,
                max: self.max,
                what: "the UDP payload limit",
            },
            WaitError::Io(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                SocketError::PeerGone {
                    what: "the peer's port is closed (ICMP port unreachable)".into(),
                }
            }
            other => wait_err(other, "udp"),
        }
    }

    /// The std socket (non-blocking).
    pub fn into_std(self) -> std::net::UdpSocket {
        self.inner
    }
}

crate::sys::fd_of_field!(UdpSocket, inner);
impl From<UdpSocket> for OwnedFd {
    fn from(s: UdpSocket) -> OwnedFd {
        s.inner.into()
    }
}
impl From<OwnedFd> for UdpSocket {
    fn from(fd: OwnedFd) -> UdpSocket {
        let inner = std::net::UdpSocket::from(fd);
        let _ = inner.set_nonblocking(true);
        let max = match inner.local_addr() {
            Ok(SocketAddr::V6(_)) => MAX_UDP_PAYLOAD_V6,
            _ => MAX_UDP_PAYLOAD_V4,
        };
        UdpSocket { inner, max }
    }
}
