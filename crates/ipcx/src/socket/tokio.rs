//! Async sockets (feature `tokio`).
//!
//! * Unix streams and TCP: tokio's own [`tokio::net::UnixStream`] / [`tokio::net::TcpStream`],
//!   obtained from [`AsyncUnixListener`] (same binding rules as [`UnixListener`]: stale socket
//!   reclaimed, mode `0o600`, file removed on drop; the peer's [`Credentials`] come with each
//!   connection), [`connect_unix`], [`connect_tcp`] (`TCP_NODELAY`), and framed with
//!   [`AsyncFramed`] (the same frames as [`crate::framing`]).
//! * Seqpacket and datagram sockets, with file descriptors and credentials:
//!   [`AsyncUnixSeqpacketListener`], [`AsyncUnixSeqpacket`], [`AsyncUnixDatagram`], built on
//!   [`tokio::io::unix::AsyncFd`].
//! * UDP: use [`tokio::net::UdpSocket`]; payload limits are [`super::MAX_UDP_PAYLOAD_V4`] /
//!   [`super::MAX_UDP_PAYLOAD_V6`].
//!
//! ```no_run
//! use ipcx::socket::{UnixAddr, tokio::{AsyncUnixListener, AsyncFramed}};
//! # #[allow(dead_code)]
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let l = AsyncUnixListener::bind(&UnixAddr::parse("@svc")?)?;
//! let (stream, who) = l.accept().await?;
//! let mut conn = AsyncFramed::new(stream);
//! while let Some(msg) = conn.recv_frame().await? {
//!     println!("{} bytes from pid {}", msg.len(), who.pid);
//! }
//! # Ok(()) }
//! ```

use std::net::ToSocketAddrs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use ::tokio::io::unix::AsyncFd;

use super::fdpass::MAX_FDS;
use super::unix::{Binding, Bound, bound_methods, recv_checked, send_message};
use super::{
    Credentials, ReceivedMessage, SocketError, UnixAddr, UnixDatagram, UnixListener, UnixSeqpacket,
    UnixSeqpacketListener, UnixStream,
};
use crate::wait::Wait;

/// Runs a non-blocking operation on the socket whenever it is ready, until it does not say
/// WouldBlock.
async fn ready_loop<R>(
    fd: &AsyncFd<OwnedFd>,
    readable: bool,
    mut op: impl FnMut(BorrowedFd<'_>) -> Result<R, SocketError>,
) -> Result<R, SocketError> {
    loop {
        let mut guard = if readable {
            fd.readable().await
        } else {
            fd.writable().await
        }
        .map_err(|e| SocketError::io("tokio readiness", e))?;
        match op(fd.get_ref().as_fd()) {
            Err(SocketError::WouldBlock) => guard.clear_ready(),
            other => return other,
        }
    }
}

/// Registers a socket's descriptor with the tokio runtime.
fn async_fd(fd: OwnedFd) -> Result<AsyncFd<OwnedFd>, SocketError> {
    crate::sys::socket::async_fd(fd).map_err(|e| SocketError::io("registering with tokio", e))
}

fn to_tokio_stream(s: UnixStream) -> Result<::tokio::net::UnixStream, SocketError> {
    let std = std::os::unix::net::UnixStream::from(OwnedFd::from(s));
    std.set_nonblocking(true)
        .map_err(|e| SocketError::io("fcntl", e))?;
    ::tokio::net::UnixStream::from_std(std).map_err(|e| SocketError::io("tokio", e))
}

/// A listening Unix stream socket for tokio.
#[derive(Debug)]
pub struct AsyncUnixListener {
    io: AsyncFd<OwnedFd>,
    bound: Bound,
}

bound_methods!(AsyncUnixListener);

impl AsyncUnixListener {
    /// Binds and listens, as [`UnixListener::bind`] does. Needs a tokio runtime.
    pub fn bind(addr: &UnixAddr) -> Result<AsyncUnixListener, SocketError> {
        Self::from_listener(UnixListener::bind(addr)?)
    }

    /// Wraps a bound listener.
    pub fn from_listener(l: UnixListener) -> Result<AsyncUnixListener, SocketError> {
        let (fd, bound) = l.into_parts();
        Ok(AsyncUnixListener {
            io: async_fd(fd)?,
            bound,
        })
    }

    /// Accepts a connection with the peer's credentials (`SO_PEERCRED`).
    pub async fn accept(&self) -> Result<(::tokio::net::UnixStream, Credentials), SocketError> {
        let (s, c) = ready_loop(&self.io, true, |fd| self.bound.accept(fd, Wait::NoWait)).await?;
        Ok((to_tokio_stream(UnixStream::from(s))?, c))
    }
}

/// Connects a tokio Unix stream to `addr` (path or abstract name), waiting while the
/// listener's backlog is full.
pub async fn connect_unix(addr: &UnixAddr) -> Result<::tokio::net::UnixStream, SocketError> {
    loop {
        match UnixStream::connect_timeout(addr, Duration::ZERO) {
            Err(SocketError::Timeout | SocketError::WouldBlock) => {
                ::tokio::time::sleep(Duration::from_millis(5)).await
            }
            other => return to_tokio_stream(other?),
        }
    }
}

/// The peer credentials of a tokio Unix stream (`SO_PEERCRED`).
pub fn peer_credentials(s: &::tokio::net::UnixStream) -> Result<Credentials, SocketError> {
    super::unix::peer_credentials(s.as_fd())
}

/// Connects a tokio TCP stream with `TCP_NODELAY` (host names resolve through
/// [`ToSocketAddrs`], each address tried in turn).
pub async fn connect_tcp(addr: impl ToSocketAddrs) -> Result<::tokio::net::TcpStream, SocketError> {
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| SocketError::InvalidAddress {
            addr: "(tcp)".into(),
            reason: e.to_string(),
        })?
        .collect();
    let mut last = None;
    for a in addrs {
        match ::tokio::net::TcpStream::connect(a).await {
            Ok(s) => {
                s.set_nodelay(true)
                    .map_err(|e| SocketError::io("setsockopt(TCP_NODELAY)", e))?;
                return Ok(s);
            }
            Err(e) => last = Some(SocketError::connect(a.to_string(), e)),
        }
    }
    Err(last.unwrap_or(SocketError::InvalidAddress {
        addr: "(tcp)".into(),
        reason: "the name resolves to no address".into(),
    }))
}

/// Framed messages over any tokio byte stream (Unix stream, TCP, pipe), with the socket
/// errors: [`crate::framing::AsyncFramed`] returning [`SocketError`].
pub type AsyncFramed<S> = crate::framing::AsyncFramed<S, SocketError>;

/// A listening seqpacket socket for tokio.
#[derive(Debug)]
pub struct AsyncUnixSeqpacketListener {
    io: AsyncFd<OwnedFd>,
    bound: Bound,
}

bound_methods!(AsyncUnixSeqpacketListener);

impl AsyncUnixSeqpacketListener {
    /// Binds and listens, as [`UnixSeqpacketListener::bind`] does.
    pub fn bind(addr: &UnixAddr) -> Result<AsyncUnixSeqpacketListener, SocketError> {
        let (fd, bound) = UnixSeqpacketListener::bind(addr)?.into_parts();
        Ok(AsyncUnixSeqpacketListener {
            io: async_fd(fd)?,
            bound,
        })
    }

    /// Accepts a connection with the peer's credentials.
    pub async fn accept(&self) -> Result<(AsyncUnixSeqpacket, Credentials), SocketError> {
        let (s, c) = ready_loop(&self.io, true, |fd| self.bound.accept(fd, Wait::NoWait)).await?;
        Ok((AsyncUnixSeqpacket::new(UnixSeqpacket::from(s))?, c))
    }
}

macro_rules! async_messages {
    ($t:ident, $inner:ty, $connected:expr) => {
        impl $t {
            /// Registers a socket with the tokio runtime.
            pub fn new(inner: $inner) -> Result<$t, SocketError> {
                let (fd, binding) = inner.into_parts();
                Ok($t {
                    io: async_fd(fd)?,
                    binding,
                })
            }
            /// Sends one message.
            pub async fn send(&self, msg: &[u8]) -> Result<(), SocketError> {
                ready_loop(&self.io, false, |fd| {
                    send_message(fd, msg, &[], None, Wait::NoWait)
                })
                .await
            }
            /// Sends one message with file descriptors (`SCM_RIGHTS`).
            pub async fn send_with_fds(
                &self,
                msg: &[u8],
                fds: &[BorrowedFd<'_>],
            ) -> Result<(), SocketError> {
                ready_loop(&self.io, false, |fd| {
                    send_message(fd, msg, fds, None, Wait::NoWait)
                })
                .await
            }
            /// Receives one message with its fds and credentials.
            pub async fn recv(&self) -> Result<ReceivedMessage, SocketError> {
                let trust = self.binding.sender_trust();
                ready_loop(&self.io, true, |fd| {
                    recv_checked(fd, MAX_FDS, $connected, trust, Wait::NoWait)
                })
                .await
            }
        }

        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.io.get_ref().as_fd()
            }
        }
    };
}

/// A connected seqpacket socket for tokio.
#[derive(Debug)]
pub struct AsyncUnixSeqpacket {
    io: AsyncFd<OwnedFd>,
    binding: Binding,
}

async_messages!(AsyncUnixSeqpacket, UnixSeqpacket, true);

impl AsyncUnixSeqpacket {
    /// Connects to `addr`.
    pub async fn connect(addr: &UnixAddr) -> Result<AsyncUnixSeqpacket, SocketError> {
        loop {
            match UnixSeqpacket::connect_timeout(addr, Duration::ZERO) {
                Err(SocketError::Timeout | SocketError::WouldBlock) => {
                    ::tokio::time::sleep(Duration::from_millis(5)).await
                }
                other => return AsyncUnixSeqpacket::new(other?),
            }
        }
    }
}

/// A datagram socket for tokio; received datagrams carry the sender's credentials.
#[derive(Debug)]
pub struct AsyncUnixDatagram {
    io: AsyncFd<OwnedFd>,
    binding: Binding,
}

async_messages!(AsyncUnixDatagram, UnixDatagram, false);

impl AsyncUnixDatagram {
    /// Binds, as [`UnixDatagram::bind`] does.
    pub fn bind(addr: &UnixAddr) -> Result<AsyncUnixDatagram, SocketError> {
        AsyncUnixDatagram::new(UnixDatagram::bind(addr)?)
    }

    /// Sends one datagram to `addr`.
    pub async fn send_to(&self, msg: &[u8], addr: &UnixAddr) -> Result<(), SocketError> {
        ready_loop(&self.io, false, |fd| {
            send_message(fd, msg, &[], Some(addr), Wait::NoWait)
        })
        .await
    }
}
