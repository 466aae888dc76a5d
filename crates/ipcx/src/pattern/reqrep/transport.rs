//! Where the request/reply engine meets the transports: the one place that turns an address
//! into a connection or a listener ([`LinkAddr`], [`Link`], [`LinkListener`]), for the
//! thread-based ends and (feature `tokio`) the tokio ones.

use crate::pattern::{Error, Link, LinkAddr, LinkListener};
use crate::trust::Trust;
use crate::wait::Wait;

/// Connects to `addr`, giving up as `wait` says.
pub(crate) fn connect(addr: &str, wait: Wait) -> Result<Box<dyn Link>, Error> {
    LinkAddr::parse(addr)?.connect(wait)
}

/// Binds a listener at `addr` that accepts every user: the handshake applies the server's
/// trust and tells a refused client why.
pub(crate) fn bind(addr: &str) -> Result<LinkListener, Error> {
    LinkAddr::parse(addr)?.bind_with_trust(Trust::any_user())
}

/// Whether `addr` is a shared-memory ring address (no tokio stream: the async ends run over
/// the thread-based link there); an address that does not parse is an error.
#[cfg(feature = "tokio")]
pub(crate) fn is_ring(addr: &str) -> Result<bool, Error> {
    Ok(matches!(LinkAddr::parse(addr)?, LinkAddr::Shm(_)))
}

/// Refuses an address TLS cannot run over (anything but TCP).
#[cfg(feature = "tls")]
pub(crate) fn check_tls(addr: &str) -> Result<(), Error> {
    if matches!(LinkAddr::parse(addr)?, LinkAddr::Tcp(_)) {
        return Ok(());
    }
    Err(Error::InvalidAddress {
        addr: addr.to_owned(),
        reason: "TLS runs over TCP: use tcp:HOST:PORT".into(),
    })
}

#[cfg(feature = "tokio")]
pub(crate) use self::tokio::*;

#[cfg(feature = "tokio")]
mod tokio {
    use super::*;
    use crate::framing::FrameDecoder;
    use crate::pattern::reqrep::handshake::Peer;
    use crate::socket::tokio::AsyncUnixListener;
    use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

    /// The reading half of a tokio connection (Unix socket, TCP or TLS).
    pub(crate) type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
    /// The writing half of a tokio connection (Unix socket, TCP or TLS).
    pub(crate) type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

    /// A tokio stream on its way to being connected.
    pub(crate) type Connecting<'a> = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(BoxRead, BoxWrite), Error>> + Send + 'a>,
    >;

    /// Connects a tokio stream to a Unix or TCP address (`TCP_NODELAY` set) and splits it.
    pub(crate) async fn connect_stream(addr: &str) -> Result<(BoxRead, BoxWrite), Error> {
        match LinkAddr::parse(addr)? {
            LinkAddr::Unix(a) => {
                let (r, w) = crate::socket::tokio::connect_unix(&a).await?.into_split();
                Ok((Box::new(r), Box::new(w)))
            }
            LinkAddr::Tcp(a) => {
                let (r, w) = crate::socket::tokio::connect_tcp(&a).await?.into_split();
                Ok((Box::new(r), Box::new(w)))
            }
            LinkAddr::Shm(_) => Err(Error::InvalidAddress {
                addr: addr.to_owned(),
                reason: "shared-memory rings have no tokio stream".into(),
            }),
        }
    }

    /// Connects to `addr` (`tcp:HOST:PORT`) over TLS (tokio-rustls) and splits the stream:
    /// the server's certificate must be valid for `server_name` and signed by a root of
    /// `config`.
    #[cfg(feature = "tls")]
    pub(crate) async fn connect_tls_stream(
        addr: &str,
        server_name: &str,
        config: std::sync::Arc<rustls::ClientConfig>,
    ) -> Result<(BoxRead, BoxWrite), Error> {
        let s = crate::pattern::tls::connect_async(addr, server_name, config).await?;
        let (r, w) = ::tokio::io::split(s);
        Ok((Box::new(r), Box::new(w)))
    }

    /// A read error from `addr`, with the TLS advice when it is a TLS failure.
    fn read_error(addr: &str, source: std::io::Error) -> Error {
        #[cfg(feature = "tls")]
        if let Some(e) = crate::pattern::tls::tls_error_in(addr, true, &source) {
            return e;
        }
        Error::Io {
            context: format!("receiving from {addr}"),
            source,
        }
    }

    /// Reads from `r` (the connection to `addr`) until `dec` holds a whole frame, `buf` being
    /// the read buffer: `Ok(None)` at the end of the stream between frames.
    pub(crate) async fn read_frame(
        r: &mut BoxRead,
        dec: &mut FrameDecoder,
        buf: &mut [u8],
        addr: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        loop {
            if let Some(f) = dec
                .next_frame()
                .map_err(|e| Error::from(crate::socket::SocketError::from(e)))?
            {
                return Ok(Some(f));
            }
            match r.read(buf).await {
                Ok(0) => return Ok(None),
                Ok(n) => dec.extend(&buf[..n]),
                Err(e) => return Err(read_error(addr, e)),
            }
        }
    }

    /// A tokio listener: Unix socket or TCP.
    pub(crate) enum AsyncListener {
        Unix(AsyncUnixListener),
        Tcp(::tokio::net::TcpListener),
    }

    /// An accepted tokio connection, before any TLS handshake.
    pub(crate) enum Accepted {
        Unix(::tokio::net::UnixStream),
        Tcp(::tokio::net::TcpStream),
    }

    impl AsyncListener {
        /// Binds `addr` (Unix socket or TCP) on the current runtime, accepting every user (the
        /// handshake applies the server's trust).
        pub(crate) fn bind(addr: &str) -> Result<AsyncListener, Error> {
            match super::bind(addr)? {
                LinkListener::Unix(l) => {
                    Ok(AsyncListener::Unix(AsyncUnixListener::from_listener(l)?))
                }
                LinkListener::Tcp(l) => {
                    let l = std::net::TcpListener::from(std::os::fd::OwnedFd::from(l));
                    let io = |source| Error::Io {
                        context: "registering a TCP listener with tokio".into(),
                        source,
                    };
                    l.set_nonblocking(true).map_err(io)?;
                    Ok(AsyncListener::Tcp(
                        ::tokio::net::TcpListener::from_std(l).map_err(io)?,
                    ))
                }
                other => Err(Error::InvalidAddress {
                    addr: addr.to_owned(),
                    reason: format!("no native async listener for {other:?}"),
                }),
            }
        }

        /// The address it listens on (for TCP, with the port the kernel chose for port 0).
        pub(crate) fn local_addr(&self) -> Result<LinkAddr, Error> {
            match self {
                AsyncListener::Unix(l) => Ok(LinkAddr::Unix(l.get_ref().local_addr().clone())),
                AsyncListener::Tcp(l) => {
                    let a = l.local_addr().map_err(|source| Error::Io {
                        context: "reading the TCP listener's address".into(),
                        source,
                    })?;
                    Ok(LinkAddr::Tcp(a.to_string()))
                }
            }
        }

        /// Accepts one connection (`TCP_NODELAY` set on TCP).
        pub(crate) async fn accept(&self) -> Result<(Accepted, Peer), Error> {
            match self {
                AsyncListener::Unix(l) => {
                    let (s, cred) = l.accept().await?;
                    let peer = Peer {
                        credentials: Some(cred),
                        name: format!("unix peer pid {} uid {}", cred.pid, cred.uid),
                    };
                    Ok((Accepted::Unix(s), peer))
                }
                AsyncListener::Tcp(l) => {
                    let (s, a) = l.accept().await.map_err(|source| Error::Io {
                        context: "accepting a TCP connection".into(),
                        source,
                    })?;
                    let _ = s.set_nodelay(true);
                    let peer = Peer {
                        credentials: None,
                        name: format!("tcp peer {a}"),
                    };
                    Ok((Accepted::Tcp(s), peer))
                }
            }
        }
    }
}
