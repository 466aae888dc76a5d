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

/// A tokio stream a listener accepted, not yet split (so that a TLS server can wrap a TCP
/// stream first).
pub trait AsyncStream: Send {
    /// Splits the stream into its halves.
    fn into_split(self: Box<Self>) -> (BoxRead, BoxWrite);

    /// The TCP stream, for a TLS handshake; the stream itself back when it is not TCP.
    fn into_tcp(self: Box<Self>) -> Result<tokio::net::TcpStream, Box<dyn AsyncStream>>;
}

impl AsyncStream for tokio::net::UnixStream {
    fn into_split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        let (r, w) = tokio::net::UnixStream::into_split(*self);
        (Box::new(r), Box::new(w))
    }
    fn into_tcp(self: Box<Self>) -> Result<tokio::net::TcpStream, Box<dyn AsyncStream>> {
        Err(self)
    }
}

impl AsyncStream for tokio::net::TcpStream {
    fn into_split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        let (r, w) = tokio::net::TcpStream::into_split(*self);
        (Box::new(r), Box::new(w))
    }
    fn into_tcp(self: Box<Self>) -> Result<tokio::net::TcpStream, Box<dyn AsyncStream>> {
        Ok(*self)
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
    let l = std::net::TcpListener::from(std::os::fd::OwnedFd::from(l));
    let io = |source| Error::Io {
        context: "registering a TCP listener with tokio".into(),
        source,
    };
    l.set_nonblocking(true).map_err(io)?;
    Ok(Box::new(TcpAsyncListener(
        tokio::net::TcpListener::from_std(l).map_err(io)?,
    )))
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
        Endpoint::new(
            "tcp",
            Address::HostPort {
                host: a.ip().to_string(),
                port: a.port(),
            },
        )
    }
}
