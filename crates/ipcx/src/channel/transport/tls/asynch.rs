//! TLS on tokio (features `tls` and `tokio`): tokio-rustls, with the same configurations and
//! checks as the thread-based side.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::config::{client_of, server_of};
use super::connection::{HANDSHAKE_TIMEOUT, io_tls_error, tls_error};
use crate::channel::transport::ConnectionOptions;
use crate::channel::transport::asynch::{
    Accepting, AsyncAccepted, AsyncListener, AsyncStream, BoxRead, BoxWrite, Connecting,
    tokio_tcp_listener,
};
use crate::channel::{Address, Endpoint, Error};
use crate::socket::TcpListener;

/// Splits a TLS stream; a TLS failure met while reading comes out as the [`Error::Tls`] with
/// advice inside the I/O error (see [`Advised`]).
fn split<S>(s: S, peer: String, client: bool) -> (BoxRead, BoxWrite)
where
    S: AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(s);
    (Box::new(Advised { r, peer, client }), Box::new(w))
}

/// The reading half of a TLS stream, whose rustls errors become [`Error::Tls`] (with
/// advice) inside the I/O error, for the reader to take out.
struct Advised<R> {
    r: R,
    peer: String,
    client: bool,
}

impl<R: AsyncRead + Unpin> AsyncRead for Advised<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.r).poll_read(cx, buf) {
            Poll::Ready(Err(e)) => {
                let advised = e
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<rustls::Error>())
                    .map(|t| tls_error(&self.peer, self.client, t));
                Poll::Ready(Err(advised.map_or(e, io::Error::other)))
            }
            other => other,
        }
    }
}

/// Connects to `addr` and runs the client's handshake (the caller bounds the time it takes).
pub(super) fn connect<'a>(addr: &'a Address, opts: &'a ConnectionOptions) -> Connecting<'a> {
    Box::pin(async move {
        let what = format!("tls:{addr}");
        let config = client_of(opts.tls.as_ref(), &what)?;
        let (host, port) = super::host_port(addr);
        let name = super::server_name(opts, host)?;
        let sock = crate::socket::tokio::connect_tcp((host, port)).await?;
        let peer = match sock.peer_addr() {
            Ok(a) => format!("tls peer {a}"),
            Err(_) => "tls peer".into(),
        };
        let s = TlsConnector::from(config)
            .connect(name, sock)
            .await
            .map_err(|e| io_tls_error(&peer, true, e))?;
        Ok(split(s, peer, true))
    })
}

/// Binds a tokio listener whose connections run the server's handshake when opened.
pub(super) fn bind(
    addr: &Address,
    opts: &ConnectionOptions,
) -> Result<Box<dyn AsyncListener>, Error> {
    let config = server_of(opts.tls.as_ref(), &format!("tls:{addr}"))?;
    let tcp = tokio_tcp_listener(TcpListener::bind(super::host_port(addr))?)?;
    Ok(Box::new(TlsAsyncListener {
        tcp,
        acceptor: TlsAcceptor::from(config),
    }))
}

/// The tokio listener of `tls:` connections.
struct TlsAsyncListener {
    tcp: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
}

impl AsyncListener for TlsAsyncListener {
    fn accept(&self) -> Accepting<'_> {
        Box::pin(async move {
            let (sock, a) = self.tcp.accept().await.map_err(|source| Error::Io {
                context: "accepting a TCP connection".into(),
                source,
            })?;
            let _ = sock.set_nodelay(true);
            let peer = format!("tls peer {a}");
            Ok(AsyncAccepted {
                stream: Box::new(Pending {
                    sock,
                    acceptor: self.acceptor.clone(),
                    peer: peer.clone(),
                }),
                peer,
                credentials: None,
            })
        })
    }
    fn local_addr(&self) -> Result<Endpoint, Error> {
        let a = self.tcp.local_addr().map_err(|source| Error::Io {
            context: "reading the TLS listener's address".into(),
            source,
        })?;
        Endpoint::new("tls", a.into())
    }
}

/// An accepted TCP connection whose server handshake has not run yet.
struct Pending {
    sock: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    peer: String,
}

impl AsyncStream for Pending {
    fn open(self: Box<Self>) -> Connecting<'static> {
        Box::pin(async move {
            let Pending {
                sock,
                acceptor,
                peer,
            } = *self;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
                Ok(Ok(s)) => Ok(split(s, peer, false)),
                Ok(Err(e)) => Err(io_tls_error(&peer, false, e)),
                Err(_) => Err(Error::Timeout),
            }
        })
    }
}
