//! TCP and UDP, IPv4 and IPv6, with the same wait forms as the Unix sockets.
//!
//! * [`TcpStream`] sets `TCP_NODELAY` (messages are small and latency matters) and carries
//!   ipcx frames ([`crate::framing`]) or raw bytes ([`Read`]/[`Write`]).
//! * [`UdpSocket`] sends one message per datagram; a message above the protocol's payload limit
//!   ([`MAX_UDP_PAYLOAD_V4`], [`MAX_UDP_PAYLOAD_V6`]) is [`SocketError::TooLarge`].
//! * Host names resolve through [`std::net::ToSocketAddrs`] (`localhost:7000`,
//!   `[::1]:7000`); connecting tries each resolved address in turn.
//!
//! # References
//! [tcp(7)](https://man7.org/linux/man-pages/man7/tcp.7.html),
//! [udp(7)](https://man7.org/linux/man-pages/man7/udp.7.html).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use super::error::SocketError;
use crate::framing::{FramedStream, framed_methods};
use crate::sys::poll::{WaitError, retry_ready};
use crate::sys::socket as sys;
use crate::wait::Wait;

/// The largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header).
pub const MAX_UDP_PAYLOAD_V4: usize = 65507;
/// The largest UDP payload over IPv6 (without jumbograms): 65535 - 8 (UDP header).
pub const MAX_UDP_PAYLOAD_V6: usize = 65527;

fn resolve(addr: impl ToSocketAddrs, shown: &str) -> Result<Vec<SocketAddr>, SocketError> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| SocketError::InvalidAddress {
            addr: shown.to_owned(),
            reason: format!("cannot resolve: {e}"),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(SocketError::InvalidAddress {
            addr: shown.to_owned(),
            reason: "the name resolves to no address".into(),
        });
    }
    Ok(addrs)
}

fn shown(addr: &impl ToSocketAddrs) -> String {
    match addr.to_socket_addrs() {
        Ok(mut it) => it.next().map(|a| a.to_string()).unwrap_or_default(),
        Err(_) => String::from("(unresolved)"),
    }
}

fn wait_err(e: WaitError, what: &str) -> SocketError {
    match e {
        WaitError::WouldBlock => SocketError::WouldBlock,
        WaitError::Timeout => SocketError::Timeout,
        WaitError::Io(e) => SocketError::io(what, e),
    }
}

/// A listening TCP socket.
#[derive(Debug)]
pub struct TcpListener {
    inner: std::net::TcpListener,
}

impl TcpListener {
    /// Binds and listens (`SO_REUSEADDR` as std sets it). Port 0 picks a free port: see
    /// [`local_addr`](Self::local_addr).
    pub fn bind(addr: impl ToSocketAddrs) -> Result<TcpListener, SocketError> {
        let name = shown(&addr);
        let inner = std::net::TcpListener::bind(addr).map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => SocketError::AddrInUse { addr: name.clone() },
            _ => SocketError::io(format!("binding {name}"), e),
        })?;
        inner
            .set_nonblocking(true)
            .map_err(|e| SocketError::io("fcntl", e))?;
        Ok(TcpListener { inner })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, SocketError> {
        self.inner
            .local_addr()
            .map_err(|e| SocketError::io("getsockname", e))
    }

    /// Accepts one connection, blocking.
    pub fn accept(&self) -> Result<(TcpStream, SocketAddr), SocketError> {
        self.accept_wait(Wait::Forever)
    }

    /// Accepts a pending connection ([`SocketError::WouldBlock`] when none).
    pub fn try_accept(&self) -> Result<(TcpStream, SocketAddr), SocketError> {
        self.accept_wait(Wait::NoWait)
    }

    /// Accepts a connection, giving up after `timeout`.
    pub fn accept_timeout(
        &self,
        timeout: Duration,
    ) -> Result<(TcpStream, SocketAddr), SocketError> {
        self.accept_wait(Wait::timeout(timeout))
    }

    /// Accepts a connection, waiting as `wait` allows.
    pub fn accept_wait(&self, wait: Wait) -> Result<(TcpStream, SocketAddr), SocketError> {
        let (s, peer) = retry_ready(self.inner.as_fd(), true, wait, || self.inner.accept())
            .map_err(|e| wait_err(e, "accept"))?;
        s.set_nonblocking(false)
            .map_err(|e| SocketError::io("fcntl", e))?;
        Ok((TcpStream::from_std(s)?, peer))
    }

    /// The std listener (non-blocking).
    pub fn into_std(self) -> std::net::TcpListener {
        self.inner
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}
impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}
impl From<TcpListener> for OwnedFd {
    fn from(l: TcpListener) -> OwnedFd {
        l.inner.into()
    }
}

/// A TCP connection with `TCP_NODELAY`: frames or raw bytes.
#[derive(Debug)]
pub struct TcpStream {
    framed: FramedStream<std::net::TcpStream, SocketError>,
}

framed_methods!(TcpStream, framed, SocketError);

impl TcpStream {
    /// Connects to the first address that accepts, blocking.
    pub fn connect(addr: impl ToSocketAddrs) -> Result<TcpStream, SocketError> {
        Self::connect_wait(addr, Wait::Forever)
    }

    /// Connects, giving up after `timeout` (for all resolved addresses together).
    pub fn connect_timeout(
        addr: impl ToSocketAddrs,
        timeout: Duration,
    ) -> Result<TcpStream, SocketError> {
        Self::connect_wait(addr, Wait::timeout(timeout))
    }

    fn connect_wait(addr: impl ToSocketAddrs, wait: Wait) -> Result<TcpStream, SocketError> {
        let name = shown(&addr);
        let mut last = None;
        for a in resolve(addr, &name)? {
            let r = match wait.remaining() {
                None => std::net::TcpStream::connect(a),
                Some(left) if left.is_zero() => return Err(SocketError::Timeout),
                Some(left) => std::net::TcpStream::connect_timeout(&a, left),
            };
            match r {
                Ok(s) => return TcpStream::from_std(s),
                Err(e)
                    if e.kind() == io::ErrorKind::TimedOut
                        || e.kind() == io::ErrorKind::WouldBlock =>
                {
                    last = Some(SocketError::Timeout)
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    last = Some(SocketError::NotFound {
                        addr: a.to_string(),
                        hint: "connection refused: nothing listens on that port; start the receiver first",
                    })
                }
                Err(e) => last = Some(SocketError::io(format!("connecting to {a}"), e)),
            }
        }
        Err(last.unwrap_or(SocketError::Timeout))
    }

    /// Wraps a std stream (sets `TCP_NODELAY`).
    pub fn from_std(s: std::net::TcpStream) -> Result<TcpStream, SocketError> {
        s.set_nodelay(true)
            .map_err(|e| SocketError::io("setsockopt(TCP_NODELAY)", e))?;
        Ok(TcpStream {
            framed: FramedStream::new(s),
        })
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Result<SocketAddr, SocketError> {
        self.framed
            .get_ref()
            .peer_addr()
            .map_err(|e| SocketError::io("getpeername", e))
    }

    /// The std stream.
    pub fn into_std(self) -> std::net::TcpStream {
        self.framed.into_inner()
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.framed.get_mut().read(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::send_bytes(self.as_fd(), buf, false)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.framed.get_ref().as_fd()
    }
}
impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.framed.get_ref().as_raw_fd()
    }
}
impl From<TcpStream> for OwnedFd {
    fn from(s: TcpStream) -> OwnedFd {
        s.framed.into_inner().into()
    }
}
impl From<OwnedFd> for TcpStream {
    fn from(fd: OwnedFd) -> TcpStream {
        TcpStream {
            framed: FramedStream::new(std::net::TcpStream::from(fd)),
        }
    }
}

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

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}
impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}
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
