//! TLS over TCP for the connection-oriented patterns (feature `tls`): a [`TlsConnection`] is
//! a [`Connection`] whose frames travel inside a rustls session.
//!
//! TLS is not a scheme of its own: it needs certificates, which an address cannot carry. It
//! runs over `tcp:HOST:PORT`, wrapping a TCP [`Connection`] ([`connect`], [`accept`]).
//!
//! * **Server authentication by default**: the client checks the server's certificate chain
//!   against the roots it was given ([`client_config`]) and the server name it asked for. An
//!   untrusted server fails the connection with [`Error::Tls`] saying so.
//! * **Client certificates on demand**: a server built with client roots
//!   ([`server_config`] with `Some(roots)`) refuses clients that present no certificate, or one
//!   not signed by those roots.
//! * Any rustls configuration works: [`client_config`] and [`server_config`] are shortcuts for
//!   the common case (ring provider, TLS 1.2 and 1.3, safe defaults). rustls is re-exported
//!   ([`rustls`]) so that callers build configurations with the same version.
//!
//! The RPC layer uses this module through [`crate::rpc::Service::serve_tls`] and
//! [`crate::rpc::RpcClient::connect_tls`], and (with the `tokio` feature too, natively on
//! tokio-rustls with the same configurations and checks) through
//! `AsyncService::serve_tls_async` and `AsyncRpcClient::connect_tls`.
//!
//! Ordering and concurrency: a [`TlsConnection`] and its clone (one reads while the other writes)
//! share the rustls session behind a mutex; socket reads and writes happen outside that lock,
//! so a blocked writer never stops the reader.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use rustls;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

type Session = rustls::Connection;

use crate::channel::{Connection, Endpoint, Error};
use crate::framing::{self, FrameDecoder, FrameError};
use crate::poison::lock;
use crate::socket::Credentials;
use crate::sys::poll::poll_wait;
use crate::wait::{FRAME_STALL_LIMIT, Wait};

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(e: rustls::Error) -> Error {
    Error::Tls {
        peer: "(configuration)".into(),
        reason: format!("invalid TLS configuration: {e}"),
    }
}

/// A client configuration that trusts the certificates in `roots` (CA certificates, DER) and,
/// with `identity` (a certificate chain and its private key), presents a client certificate.
pub fn client_config(
    roots: &[CertificateDer<'static>],
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, Error> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).map_err(config_error)?;
    }
    let b = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_root_certificates(store);
    let cfg = match identity {
        Some((chain, key)) => b.with_client_auth_cert(chain, key).map_err(config_error)?,
        None => b.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// A server configuration presenting `chain` (the server's certificate first) with its private
/// key; with `client_roots`, clients must present a certificate signed by one of them.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Option<&[CertificateDer<'static>]>,
) -> Result<Arc<ServerConfig>, Error> {
    let b = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?;
    let b = match client_roots {
        Some(roots) => {
            let mut store = rustls::RootCertStore::empty();
            for r in roots {
                store.add(r.clone()).map_err(config_error)?;
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(store),
                provider(),
            )
            .build()
            .map_err(|e| Error::Tls {
                peer: "(configuration)".into(),
                reason: format!("invalid client roots: {e}"),
            })?;
            b.with_client_cert_verifier(v)
        }
        None => b.with_no_client_auth(),
    };
    Ok(Arc::new(
        b.with_single_cert(chain, key).map_err(config_error)?,
    ))
}

/// Turns a rustls error into [`Error::Tls`] with advice.
fn tls_error(peer: &str, client: bool, e: &rustls::Error) -> Error {
    use rustls::{AlertDescription as A, Error as E};
    let reason = match e {
        E::InvalidCertificate(c) if client => format!(
            "the server's certificate is not trusted ({c:?}): give the client the CA certificate that signed it and check the server name"
        ),
        E::InvalidCertificate(c) => format!(
            "the client's certificate is not trusted ({c:?}): sign it with a CA the server's client roots hold"
        ),
        E::NoCertificatesPresented => {
            "the client presented no certificate and this server requires one".into()
        }
        E::AlertReceived(A::CertificateRequired | A::HandshakeFailure) if client => {
            "the server requires a client certificate: configure one (client_config identity)"
                .into()
        }
        E::AlertReceived(A::BadCertificate | A::UnknownCA) if client => {
            "the server did not accept the client's certificate".into()
        }
        E::AlertReceived(A::BadCertificate | A::UnknownCA) => {
            "the client did not accept this server's certificate".into()
        }
        other => other.to_string(),
    };
    Error::Tls {
        peer: peer.to_owned(),
        reason,
    }
}

/// The name the server's certificate must be valid for.
fn parse_server_name(server_name: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(server_name.to_owned()).map_err(|_| Error::Tls {
        peer: server_name.to_owned(),
        reason: format!("{server_name:?} is not a valid DNS name or IP address"),
    })
}

/// The TLS error inside an I/O error of a TLS stream (as tokio-rustls reports them), with
/// advice; `None` when the error is not a TLS one.
#[cfg(feature = "tokio")]
pub(crate) fn tls_error_in(peer: &str, client: bool, e: &io::Error) -> Option<Error> {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .map(|t| tls_error(peer, client, t))
}

fn io_tls_error(peer: &str, client: bool, e: io::Error) -> Error {
    if let Some(t) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return tls_error(peer, client, t);
    }
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout,
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe => Error::PeerGone {
            what: format!("{peer} closed the connection during the TLS handshake"),
        },
        _ => Error::Io {
            context: format!("TLS with {peer}"),
            source: e,
        },
    }
}

#[derive(Debug)]
struct Shared {
    conn: Mutex<Session>,
    /// Held while encrypted bytes are taken from the session and written to the socket, so
    /// that records reach the socket in order.
    out: Mutex<()>,
    broken: Mutex<Option<String>>,
    peer: String,
    client: bool,
}

/// A [`Connection`] over a TLS session on a TCP connection.
pub struct TlsConnection {
    shared: Arc<Shared>,
    sock: TcpStream,
    decoder: FrameDecoder,
    max: usize,
}

impl fmt::Debug for TlsConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnection")
            .field("peer", &self.shared.peer)
            .field("client", &self.shared.client)
            .finish()
    }
}

impl TlsConnection {
    /// Runs the client side of the handshake on a connected TCP socket, checking that the
    /// server's certificate is valid for `server_name`.
    pub fn client(
        sock: OwnedFd,
        server_name: &str,
        config: Arc<ClientConfig>,
    ) -> Result<TlsConnection, Error> {
        let c =
            ClientConnection::new(config, parse_server_name(server_name)?).map_err(config_error)?;
        Self::handshake(TcpStream::from(sock), Session::Client(c), true)
    }

    /// Runs the server side of the handshake on an accepted TCP socket.
    pub fn server(sock: OwnedFd, config: Arc<ServerConfig>) -> Result<TlsConnection, Error> {
        let c = ServerConnection::new(config).map_err(config_error)?;
        Self::handshake(TcpStream::from(sock), Session::Server(c), false)
    }

    fn handshake(
        mut sock: TcpStream,
        mut conn: Session,
        client: bool,
    ) -> Result<TlsConnection, Error> {
        let peer = match sock.peer_addr() {
            Ok(a) => format!("tls peer {a}"),
            Err(_) => "tls peer".into(),
        };
        let io = |e| Error::Io {
            context: "setting socket timeouts".into(),
            source: e,
        };
        sock.set_read_timeout(Some(HANDSHAKE_TIMEOUT)).map_err(io)?;
        sock.set_write_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(io)?;
        conn.set_buffer_limit(None);
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)
                .map_err(|e| io_tls_error(&peer, client, e))?;
        }
        sock.set_read_timeout(None).map_err(io)?;
        sock.set_write_timeout(Some(FRAME_STALL_LIMIT))
            .map_err(io)?;
        Ok(TlsConnection {
            shared: Arc::new(Shared {
                conn: Mutex::new(conn),
                out: Mutex::new(()),
                broken: Mutex::new(None),
                peer,
                client,
            }),
            sock,
            decoder: FrameDecoder::new(framing::DEFAULT_MAX_FRAME_LEN),
            max: framing::DEFAULT_MAX_FRAME_LEN,
        })
    }

    fn broken(&self) -> Result<(), Error> {
        match lock(&self.shared.broken).clone() {
            Some(what) => Err(Error::PeerGone { what }),
            None => Ok(()),
        }
    }

    fn fail(&self, what: String) -> Error {
        *lock(&self.shared.broken) = Some(what.clone());
        Error::PeerGone { what }
    }

    /// Writes whatever the session has to send (records, alerts).
    fn flush_out(&self) -> Result<(), Error> {
        let _o = lock(&self.shared.out);
        let mut bytes = Vec::new();
        {
            let mut c = lock(&self.shared.conn);
            while c.wants_write() {
                if c.write_tls(&mut bytes).is_err() {
                    break;
                }
            }
        }
        if bytes.is_empty() {
            return Ok(());
        }
        (&self.sock).write_all(&bytes).map_err(|e| {
            self.fail(format!(
                "writing to {} failed ({e}); the TLS session is over",
                self.shared.peer
            ))
        })
    }
}

/// Waits for the socket to be readable (`read`) or writable, as `wait` allows.
fn wait_ready(sock: &TcpStream, read: bool, wait: Wait) -> Result<(), Error> {
    match poll_wait(sock.as_fd(), read, wait) {
        Ok(Some(_)) => Ok(()),
        Ok(None) if wait == Wait::NoWait => Err(Error::WouldBlock),
        Ok(None) => Err(Error::Timeout),
        Err(source) => Err(Error::Io {
            context: if read {
                "waiting to read"
            } else {
                "waiting to write"
            }
            .into(),
            source,
        }),
    }
}

fn frame_error(peer: &str, e: FrameError) -> Error {
    match e {
        FrameError::TooLarge { len, max } => Error::TooLarge {
            len: usize::try_from(len).unwrap_or(usize::MAX),
            max,
            what: "the connection's maximum frame length".into(),
        },
        other => Error::protocol(peer, other.to_string()),
    }
}

impl Connection for TlsConnection {
    fn send_frame_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        self.broken()?;
        let header = framing::encode_header(msg.len(), self.max).map_err(|e| frame_error("", e))?;
        // Wait for room before encrypting: once encrypted, the record must be sent whole.
        wait_ready(&self.sock, false, wait)?;
        let _o = lock(&self.shared.out);
        let mut bytes = Vec::with_capacity(msg.len() + 64);
        {
            let mut c = lock(&self.shared.conn);
            let mut w = c.writer();
            if w.write_all(&header).and_then(|_| w.write_all(msg)).is_err() {
                drop(c);
                return Err(self.fail(format!(
                    "the TLS session with {} refused more data",
                    self.shared.peer
                )));
            }
            while c.wants_write() {
                if c.write_tls(&mut bytes).is_err() {
                    break;
                }
            }
        }
        (&self.sock).write_all(&bytes).map_err(|e| {
            self.fail(format!(
                "writing to {} failed ({e}); the TLS session is over",
                self.shared.peer
            ))
        })
    }

    fn recv_frame_wait(&mut self, wait: Wait) -> Result<Option<Vec<u8>>, Error> {
        let peer = self.shared.peer.clone();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if let Some(f) = self
                .decoder
                .next_frame()
                .map_err(|e| frame_error(&peer, e))?
            {
                return Ok(Some(f));
            }
            // Plaintext the session already holds.
            let mut clean_end = false;
            let mut got = false;
            {
                let mut c = lock(&self.shared.conn);
                loop {
                    match c.reader().read(&mut buf) {
                        Ok(0) => {
                            clean_end = true;
                            break;
                        }
                        Ok(n) => {
                            self.decoder.extend(&buf[..n]);
                            got = true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        // The TCP stream ended without close_notify: treated as a close below.
                        Err(_) => {
                            clean_end = true;
                            break;
                        }
                    }
                }
            }
            if got {
                continue;
            }
            if clean_end {
                return if self.decoder.pending() == 0 {
                    Ok(None)
                } else {
                    Err(Error::PeerGone {
                        what: format!("{peer} closed the connection in the middle of a message"),
                    })
                };
            }
            self.broken()?;
            wait_ready(&self.sock, true, wait)?;
            let n = match (&self.sock).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(self.fail(format!("reading from {peer} failed: {e}")));
                }
            };
            let mut data = &buf[..n];
            let mut c = lock(&self.shared.conn);
            if n == 0 {
                // End of the TCP stream: let the session decide (it may hold no more data).
                let _ = c.read_tls(&mut data);
                let _ = c.process_new_packets();
                drop(c);
                if self.decoder.pending() == 0 {
                    return Ok(None);
                }
                return Err(Error::PeerGone {
                    what: format!("{peer} closed the connection in the middle of a message"),
                });
            }
            while !data.is_empty() {
                let r = c.read_tls(&mut data).map_err(|e| Error::Io {
                    context: format!("TLS with {peer}"),
                    source: e,
                });
                let r = r.and_then(|_| {
                    c.process_new_packets()
                        .map(|_| ())
                        .map_err(|e| tls_error(&peer, self.shared.client, &e))
                });
                if let Err(e) = r {
                    drop(c);
                    // Send the alert rustls queued, then give up on the session.
                    let _ = self.flush_out();
                    *lock(&self.shared.broken) = Some(e.to_string());
                    return Err(e);
                }
            }
            let wants_write = c.wants_write();
            drop(c);
            if wants_write {
                self.flush_out()?;
            }
        }
    }

    fn try_clone(&self) -> Result<Box<dyn Connection>, Error> {
        let sock = self.sock.try_clone().map_err(|source| Error::Io {
            context: "duplicating a TLS connection's socket".into(),
            source,
        })?;
        Ok(Box::new(TlsConnection {
            shared: self.shared.clone(),
            sock,
            decoder: FrameDecoder::new(self.max),
            max: self.max,
        }))
    }

    fn set_max_frame_len(&mut self, max: usize) {
        self.max = max;
        // Keeps what was already received.
        self.decoder.set_max_frame_len(max);
    }

    fn peer_credentials(&self) -> Option<Credentials> {
        None
    }

    fn peer_name(&self) -> String {
        self.shared.peer.clone()
    }
}

/// Connects to `addr` (`tcp:HOST:PORT`) and runs a TLS client handshake, checking that the
/// server's certificate is valid for `server_name`.
pub fn connect(
    addr: &str,
    server_name: &str,
    config: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<Box<dyn Connection>, Error> {
    let a = Endpoint::parse(addr)?;
    if a.scheme() != "tcp" {
        return Err(Error::InvalidAddress {
            addr: addr.to_owned(),
            reason: "TLS runs over TCP: use tcp:HOST:PORT".into(),
        });
    }
    let link = a.connect(Wait::timeout(timeout))?;
    let fd = link.into_fd().ok_or_else(|| Error::InvalidAddress {
        addr: addr.to_owned(),
        reason: "this transport cannot carry TLS".into(),
    })?;
    Ok(Box::new(TlsConnection::client(fd, server_name, config)?))
}

/// Runs the server side of a TLS handshake on an accepted TCP link.
pub fn accept(
    link: Box<dyn Connection>,
    config: Arc<ServerConfig>,
) -> Result<Box<dyn Connection>, Error> {
    let peer = link.peer_name();
    let fd = link.into_fd().ok_or_else(|| Error::Tls {
        peer,
        reason: "this transport cannot carry TLS: serve TLS on tcp:HOST:PORT".into(),
    })?;
    Ok(Box::new(TlsConnection::server(fd, config)?))
}

/// Connects to `addr` (`tcp:HOST:PORT`) with tokio and runs a TLS client handshake, with the
/// same checks as [`connect`] (the server's certificate must be valid for `server_name` and
/// signed by a root of `config`). The caller bounds the time it takes.
#[cfg(feature = "tokio")]
pub(crate) async fn connect_async(
    addr: &str,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, Error> {
    let a = Endpoint::parse(addr)?;
    let (crate::channel::Address::HostPort { host, port }, "tcp") = (a.address(), a.scheme())
    else {
        return Err(Error::InvalidAddress {
            addr: addr.to_owned(),
            reason: "TLS runs over TCP: use tcp:HOST:PORT".into(),
        });
    };
    let name = parse_server_name(server_name)?;
    let sock = crate::socket::tokio::connect_tcp((host.as_str(), *port)).await?;
    let peer = match sock.peer_addr() {
        Ok(a) => format!("tls peer {a}"),
        Err(_) => "tls peer".into(),
    };
    tokio_rustls::TlsConnector::from(config)
        .connect(name, sock)
        .await
        .map_err(|e| io_tls_error(&peer, true, e))
}

/// Runs the server side of a TLS handshake on an accepted tokio TCP stream, within
/// [`HANDSHAKE_TIMEOUT`]: the same policy as [`accept`] (the configuration decides whether a
/// client certificate is required). `peer` names the client in errors.
#[cfg(feature = "tokio")]
pub(crate) async fn accept_async(
    sock: tokio::net::TcpStream,
    acceptor: &tokio_rustls::TlsAcceptor,
    peer: &str,
) -> Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>, Error> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(io_tls_error(peer, false, e)),
        Err(_) => Err(Error::Timeout),
    }
}
