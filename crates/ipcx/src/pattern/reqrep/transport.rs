//! Where the request/reply engine meets the transports: the one place that turns an address
//! into a connection or a listener, through the channel's transport seam
//! ([`Endpoint`], [`Connection`], [`Listener`]), for the thread-based ends and (feature
//! `tokio`) the tokio ones.

use crate::channel::{Connection, Endpoint, Listener};
use crate::pattern::Error;
use crate::trust::Trust;
use crate::wait::Wait;

/// Connects to `addr`, giving up as `wait` says.
pub(crate) fn connect(addr: &str, wait: Wait) -> Result<Box<dyn Connection>, Error> {
    Endpoint::parse(addr)?.connect(wait)
}

/// Binds a listener at `addr` that accepts every user: the handshake applies the server's
/// trust and tells a refused client why.
pub(crate) fn bind(addr: &str) -> Result<Box<dyn Listener>, Error> {
    Endpoint::parse(addr)?.bind_with_trust(Trust::any_user())
}

/// Whether `addr` is a shared-memory ring address (no tokio stream: the async ends run over
/// the thread-based connection there); an address that does not parse is an error.
#[cfg(feature = "tokio")]
pub(crate) fn is_ring(addr: &str) -> Result<bool, Error> {
    Ok(Endpoint::parse(addr)?.scheme() == "shm")
}

/// Refuses an address TLS cannot run over (anything but TCP).
#[cfg(feature = "tls")]
pub(crate) fn check_tls(addr: &str) -> Result<(), Error> {
    if Endpoint::parse(addr)?.scheme() == "tcp" {
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
    use ::tokio::io::AsyncReadExt;

    pub(crate) use crate::channel::transport::asynch::{
        AsyncAccepted, AsyncListener, AsyncStream, BoxRead, BoxWrite, Connecting,
    };

    /// Connects a tokio stream to `addr` through its transport (Unix sockets and TCP) and
    /// splits it.
    pub(crate) async fn connect_stream(addr: &str) -> Result<(BoxRead, BoxWrite), Error> {
        let ep = Endpoint::parse(addr)?;
        ep.transport().connect_async(ep.address()).await
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
        let s = crate::channel::transport::tls::connect_async(addr, server_name, config).await?;
        let (r, w) = ::tokio::io::split(s);
        Ok((Box::new(r), Box::new(w)))
    }

    /// Binds a tokio listener at `addr` (Unix socket or TCP) on the current runtime,
    /// accepting every user (the handshake applies the server's trust).
    pub(crate) fn bind_async(addr: &str) -> Result<Box<dyn AsyncListener>, Error> {
        let ep = Endpoint::parse(addr)?;
        ep.transport().bind_async(ep.address(), Trust::any_user())
    }

    /// A read error from `addr`, with the TLS advice when it is a TLS failure.
    fn read_error(addr: &str, source: std::io::Error) -> Error {
        #[cfg(feature = "tls")]
        if let Some(e) = crate::channel::transport::tls::tls_error_in(addr, true, &source) {
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
}
