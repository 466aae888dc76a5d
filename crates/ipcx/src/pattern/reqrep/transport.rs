//! Where the request/reply engine meets the transports: the one place that turns an address
//! into a connection or a listener, through the channel's transport seam
//! ([`Endpoint`], [`Connection`], [`Listener`]), for the thread-based ends and (feature
//! `tokio`) the tokio ones.

use super::options::ServerOptions;
use crate::channel::{Connection, ConnectionOptions, Endpoint, Listener};
use crate::pattern::Error;
use crate::trust::Trust;
use crate::wait::Wait;

/// Connects to `addr` with what `opts` gives besides the address, giving up as `wait` says.
pub(crate) fn connect(
    addr: &str,
    wait: Wait,
    opts: &ConnectionOptions,
) -> Result<Box<dyn Connection>, Error> {
    Endpoint::parse(addr)?.connect_with(wait, opts)
}

/// Binds a listener at `addr` for the server `opts` describes.
pub(crate) fn bind(addr: &str, opts: &ServerOptions) -> Result<Box<dyn Listener>, Error> {
    Endpoint::parse(addr)?.bind_with(&listen_options(opts))
}

/// What a server's listener is bound with: it accepts every user (the handshake applies the
/// server's trust and tells a refused client why), with the server's certificates.
fn listen_options(opts: &ServerOptions) -> ConnectionOptions {
    let c = ConnectionOptions::new().trust(Trust::any_user());
    #[cfg(feature = "tls")]
    let c = ConnectionOptions {
        tls: opts.tls.clone(),
        ..c
    };
    #[cfg(not(feature = "tls"))]
    let _ = opts;
    c
}

/// Whether `addr` is a shared-memory ring address (no tokio stream: the async ends run over
/// the thread-based connection there); an address that does not parse is an error.
#[cfg(feature = "tokio")]
pub(crate) fn is_ring(addr: &str) -> Result<bool, Error> {
    Ok(Endpoint::parse(addr)?.scheme() == "shm")
}

#[cfg(feature = "tokio")]
pub(crate) use self::tokio::*;

#[cfg(feature = "tokio")]
mod tokio {
    use super::*;
    use crate::framing::FrameDecoder;
    use ::tokio::io::AsyncReadExt;

    pub(crate) use crate::channel::transport::asynch::{
        AsyncAccepted, AsyncListener, AsyncStream, BoxRead, BoxWrite,
    };

    /// Connects a tokio stream to `addr` through its transport (Unix sockets, TCP, TLS) with
    /// what `opts` gives besides the address, and splits it.
    pub(crate) async fn connect_stream(
        addr: &str,
        opts: &ConnectionOptions,
    ) -> Result<(BoxRead, BoxWrite), Error> {
        let ep = Endpoint::parse(addr)?;
        ep.transport().connect_async(ep.address(), opts).await
    }

    /// Binds a tokio listener at `addr` (Unix socket, TCP, TLS) on the current runtime for
    /// the server `opts` describes (as [`bind`] does).
    pub(crate) fn bind_async(
        addr: &str,
        opts: &ServerOptions,
    ) -> Result<Box<dyn AsyncListener>, Error> {
        let ep = Endpoint::parse(addr)?;
        ep.transport()
            .bind_async(ep.address(), &listen_options(opts))
    }

    /// A read error from `addr`: the transport's own error when it put one inside (a TLS
    /// failure, with advice), else the I/O error.
    fn read_error(addr: &str, source: std::io::Error) -> Error {
        match source.downcast::<Error>() {
            Ok(e) => e,
            Err(source) => Error::Io {
                context: format!("receiving from {addr}"),
                source,
            },
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
