//! TCP: [`TcpListener`] and [`TcpStream`] (`TCP_NODELAY`, frames or raw bytes).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{resolve, shown, wait_err};
use crate::framing::{FramedStream, framed_methods};
use crate::socket::SocketError;
use crate::sys::poll::retry_ready;
use crate::sys::socket as sys;
use crate::wait::Wait;

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

crate::sys::fd_of_field!(TcpListener, inner);
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
