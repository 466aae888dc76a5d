//! The tokio side of the transports whose fd is pollable (feature `tokio`): a connected
//! stream split into its halves ([`super::Transport::connect_async`]) and a listener of
//! streams ([`super::Transport::bind_async`]); the async RPC client and server run on them.

use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::channel::{Address, Endpoint, Error};
use crate::socket::tokio::AsyncUnixListener;
use crate::socket::{Credentials, TcpListener, UnixAddr, UnixListener};

/// The reading half of a tokio connection.
pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a tokio connection.
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;
/// A connect in progress ([`super::Transport::connect_async`]).
pub type Connecting<'a> =
    Pin<Box<dyn Future<Output = Result<(BoxRead, BoxWrite), Error>> + Send + 'a>>;

/// Connects a tokio Unix stream and splits it.
pub(super) async fn connect_unix(a: &UnixAddr) -> Result<(BoxRead, BoxWrite), Error> {
    let (r, w) = crate::socket::tokio::connect_unix(a).await?.into_split();
    Ok((Box::new(r), Box::new(w)))
}

/// Connects a tokio TCP stream (`TCP_NODELAY` set) and splits it.
pub(super) async fn connect_tcp(a: (&str, u16)) -> Result<(BoxRead, BoxWrite), Error> {
    let (r, w) = crate::socket::tokio::connect_tcp(a).await?.into_split();
    Ok((Box::new(r), Box::new(w)))
}

/// A tokio stream a listener accepted, not yet open: [`AsyncStream::open`] finishes what the
/// transport does before messages flow (a TLS server's handshake) and splits it.
pub trait AsyncStream: Send {
    /// Finishes opening the stream (a TLS server runs its handshake here, within its
    /// handshake timeout) and splits it into its halves. Run it in the connection's own task:
    /// a slow peer then holds up no other.
    fn open(self: Box<Self>) -> Connecting<'static>;
}

impl AsyncStream for tokio::net::UnixStream {
    fn open(self: Box<Self>) -> Connecting<'static> {
        let (r, w) = tokio::net::UnixStream::into_split(*self);
        Box::pin(std::future::ready(Ok((
            Box::new(r) as BoxRead,
            Box::new(w) as BoxWrite,
        ))))
    }
}

impl AsyncStream for tokio::net::TcpStream {
    fn open(self: Box<Self>) -> Connecting<'static> {
        let (r, w) = tokio::net::TcpStream::into_split(*self);
        Box::pin(std::future::ready(Ok((
            Box::new(r) as BoxRead,
            Box::new(w) as BoxWrite,
        ))))
    }
}

/// A connection an [`AsyncListener`] accepted, with who is at the other end.
pub struct AsyncAccepted {
    /// The stream.
    pub stream: Box<dyn AsyncStream>,
    /// The peer, for messages (`unix peer pid 12 uid 1000`, `tcp peer 127.0.0.1:5000`).
    pub peer: String,
    /// The peer's kernel-verified credentials (Unix sockets).
    pub credentials: Option<Credentials>,
}

impl std::fmt::Debug for AsyncAccepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncAccepted")
            .field("peer", &self.peer)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// An accept in progress ([`AsyncListener::accept`]).
pub type Accepting<'a> = Pin<Box<dyn Future<Output = Result<AsyncAccepted, Error>> + Send + 'a>>;

/// A tokio listener ([`super::Transport::bind_async`]).
pub trait AsyncListener: Send + Sync {
    /// Accepts one connection.
    fn accept(&self) -> Accepting<'_>;

    /// The address it listens on (for TCP, with the port the kernel chose for port 0).
    fn local_addr(&self) -> Result<Endpoint, Error>;
}

/// The tokio listener of `unix:` connections.
struct UnixAsyncListener(AsyncUnixListener);

/// Registers a bound Unix listener with tokio.
pub(super) fn unix_listener(l: UnixListener) -> Result<Box<dyn AsyncListener>, Error> {
    Ok(Box::new(UnixAsyncListener(
        AsyncUnixListener::from_listener(l)?,
    )))
}

impl AsyncListener for UnixAsyncListener {
    fn accept(&self) -> Accepting<'_> {
        Box::pin(async move {
            let (s, cred) = self.0.accept().await?;
            Ok(AsyncAccepted {
                stream: Box::new(s),
                peer: format!("unix peer pid {} uid {}", cred.pid, cred.uid),
                credentials: Some(cred),
            })
        })
    }
    fn local_addr(&self) -> Result<Endpoint, Error> {
        Endpoint::new("unix", Address::Unix(self.0.local_addr().clone()))
    }
}

/// The tokio listener of `tcp:` connections.
struct TcpAsyncListener(tokio::net::TcpListener);

/// Registers a bound TCP listener with tokio.
pub(super) fn tcp_listener(l: TcpListener) -> Result<Box<dyn AsyncListener>, Error> {
    Ok(Box::new(TcpAsyncListener(tokio_tcp_listener(l)?)))
}

/// A bound TCP listener, registered with tokio.
pub(super) fn tokio_tcp_listener(l: TcpListener) -> Result<tokio::net::TcpListener, Error> {
    let l = std::net::TcpListener::from(std::os::fd::OwnedFd::from(l));
    let io = |source| Error::Io {
        context: "registering a TCP listener with tokio".into(),
        source,
    };
    l.set_nonblocking(true).map_err(io)?;
    tokio::net::TcpListener::from_std(l).map_err(io)
}

impl AsyncListener for TcpAsyncListener {
    fn accept(&self) -> Accepting<'_> {
        Box::pin(async move {
            let (s, a) = self.0.accept().await.map_err(|source| Error::Io {
                context: "accepting a TCP connection".into(),
                source,
            })?;
            let _ = s.set_nodelay(true);
            Ok(AsyncAccepted {
                stream: Box::new(s),
                peer: format!("tcp peer {a}"),
                credentials: None,
            })
        })
    }
    fn local_addr(&self) -> Result<Endpoint, Error> {
        let a = self.0.local_addr().map_err(|source| Error::Io {
            context: "reading the TCP listener's address".into(),
            source,
        })?;
        Endpoint::new("tcp", a.into())
    }
}
