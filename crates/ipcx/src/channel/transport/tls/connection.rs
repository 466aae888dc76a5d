//! [`TlsConnection`]: a [`Connection`] whose frames travel inside a rustls session on a TCP
//! connection; [`TlsListener`]: the listener handing them out.
//!
//! The client runs its handshake when it connects; an accepted connection runs the server's
//! handshake at its first read or write, on the thread that serves it (within
//! [`HANDSHAKE_TIMEOUT`]), so that a slow or hostile client never holds up the accept loop.
//!
//! Ordering and concurrency: a [`TlsConnection`] and its clone (one reads while the other writes)
//! share the rustls session behind a mutex; socket reads and writes happen outside that lock,
//! so a blocked writer never stops the reader.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

type Session = rustls::Connection;

use super::config::config_error;
use crate::channel::{Connection, Endpoint, Error, Listener};
use crate::framing::{self, FrameDecoder, FrameError};
use crate::poison::lock;
use crate::socket::{Credentials, TcpListener};
use crate::sys::poll::poll_wait;
use crate::wait::{FRAME_STALL_LIMIT, Wait};

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Turns a rustls error into [`Error::Tls`] with advice.
pub(super) fn tls_error(peer: &str, client: bool, e: &rustls::Error) -> Error {
    use rustls::{AlertDescription as A, Error as E};
    let reason = match e {
        E::InvalidCertificate(c) if client => format!(
            "the server's certificate is not trusted ({c:?}): give the client the CA certificate that signed it (--ca FILE) and check that the certificate names the host of the address"
        ),
        E::InvalidCertificate(c) => format!(
            "the client's certificate is not trusted ({c:?}): sign it with a CA the server's client roots hold (--client-ca FILE)"
        ),
        E::NoCertificatesPresented => {
            "the client presented no certificate and this server requires one".into()
        }
        E::AlertReceived(A::CertificateRequired | A::HandshakeFailure) if client => {
            "the server requires a client certificate: give one (--cert FILE --key FILE, or client_config's identity)"
                .into()
        }
        E::AlertReceived(A::BadCertificate | A::UnknownCA) if client => {
            "the server did not accept the client's certificate".into()
        }
        E::AlertReceived(A::BadCertificate | A::UnknownCA) => {
            "the client did not accept this server's certificate".into()
        }
        E::InvalidMessage(_) if !client => {
            "the client does not speak TLS (a plaintext peer?); refused".into()
        }
        E::InvalidMessage(_) => {
            "the server does not speak TLS (is it a plaintext tcp: endpoint?)".into()
        }
        other => other.to_string(),
    };
    Error::Tls {
        peer: peer.to_owned(),
        reason,
    }
}

pub(super) fn io_tls_error(peer: &str, client: bool, e: io::Error) -> Error {
    if let Some(t) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return tls_error(peer, client, t);
    }
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout,
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe => Error::PeerGone {
            what: format!(
                "{peer} closed the connection during the TLS handshake (does it speak TLS?)"
            ),
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
    /// The handshake is over.
    ready: AtomicBool,
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
    /// Runs the client side of the handshake on a connected TCP socket (each step within what
    /// is left of `wait`, and within [`HANDSHAKE_TIMEOUT`]), checking that the server's
    /// certificate is valid for `server_name`.
    pub fn client(
        sock: OwnedFd,
        server_name: ServerName<'static>,
        config: Arc<ClientConfig>,
        wait: Wait,
    ) -> Result<TlsConnection, Error> {
        let c = ClientConnection::new(config, server_name).map_err(config_error)?;
        let conn = Self::new(TcpStream::from(sock), Session::Client(c), true);
        let limit = wait.remaining().map_or(HANDSHAKE_TIMEOUT, |r| {
            r.clamp(Duration::from_millis(1), HANDSHAKE_TIMEOUT)
        });
        conn.finish_handshake_within(limit)?;
        Ok(conn)
    }

    /// The server's end of an accepted TCP socket: the handshake runs at the first read or
    /// write (within [`HANDSHAKE_TIMEOUT`]), on the thread that makes it.
    pub fn server(sock: OwnedFd, config: Arc<ServerConfig>) -> Result<TlsConnection, Error> {
        let c = ServerConnection::new(config).map_err(config_error)?;
        Ok(Self::new(TcpStream::from(sock), Session::Server(c), false))
    }

    fn new(sock: TcpStream, mut conn: Session, client: bool) -> TlsConnection {
        let peer = match sock.peer_addr() {
            Ok(a) => format!("tls peer {a}"),
            Err(_) => "tls peer".into(),
        };
        conn.set_buffer_limit(None);
        TlsConnection {
            shared: Arc::new(Shared {
                conn: Mutex::new(conn),
                ready: AtomicBool::new(false),
                out: Mutex::new(()),
                broken: Mutex::new(None),
                peer,
                client,
            }),
            sock,
            decoder: FrameDecoder::new(framing::DEFAULT_MAX_FRAME_LEN),
            max: framing::DEFAULT_MAX_FRAME_LEN,
        }
    }

    /// Runs the handshake if it has not run yet (the first caller runs it; another waits).
    /// A failed handshake ends the connection: rustls has sent the peer the alert saying why.
    fn finish_handshake(&self) -> Result<(), Error> {
        self.finish_handshake_within(HANDSHAKE_TIMEOUT)
    }

    /// [`TlsConnection::finish_handshake`], each socket read or write of the handshake
    /// within `limit`.
    fn finish_handshake_within(&self, limit: Duration) -> Result<(), Error> {
        if self.shared.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut c = lock(&self.shared.conn);
        if self.shared.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        self.broken()?;
        match handshake(
            &mut c,
            &self.sock,
            &self.shared.peer,
            self.shared.client,
            limit,
        ) {
            Ok(()) => {
                self.shared.ready.store(true, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                *lock(&self.shared.broken) = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Ends this side of the session (TLS `close_notify`) and reads until the peer ends its
    /// own, as `wait` allows: what the peer said on the way is returned, such as the alert of
    /// a server that refused this client's certificate after a TLS 1.3 handshake (which the
    /// client learns only from the server's next record). A peer that stays silent until the
    /// wait ends, or closes without a word, is not an error. The connection sends nothing
    /// more afterwards.
    pub fn close(&mut self, wait: Wait) -> Result<(), Error> {
        self.finish_handshake()?;
        self.broken()?;
        lock(&self.shared.conn).send_close_notify();
        self.flush_out()?;
        loop {
            match self.recv_frame_wait(wait) {
                // A peer that closes without reading our close_notify (a receiver that had
                // all it wanted) resets the connection: no sign of a refusal either.
                Ok(None) | Err(Error::Timeout | Error::PeerGone { .. }) => return Ok(()),
                Ok(Some(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn broken(&self) -> Result<(), Error> {
        match lock(&self.shared.broken).clone() {
            Some(what) => Err(Error::PeerGone { what }),
            None => Ok(()),
        }
    }

    /// The error of a failed write: what the peer said before it closed (the alert of a
    /// refusal) when that is waiting to be read, else that the session is over.
    fn write_failed(&self, e: &io::Error) -> Error {
        if let Some(said) = self.last_word() {
            *lock(&self.shared.broken) = Some(said.to_string());
            return said;
        }
        self.fail(format!(
            "writing to {} failed ({e}); the TLS session is over",
            self.shared.peer
        ))
    }

    /// The TLS error in what the peer sent and nobody read yet (without waiting), if any.
    fn last_word(&self) -> Option<Error> {
        let mut buf = [0u8; 4096];
        loop {
            if !matches!(
                poll_wait(self.sock.as_fd(), true, Wait::NoWait),
                Ok(Some(_))
            ) {
                return None;
            }
            let n = match (&self.sock).read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => n,
            };
            let mut c = lock(&self.shared.conn);
            let mut data = &buf[..n];
            while !data.is_empty() {
                if c.read_tls(&mut data).is_err() {
                    return None;
                }
                if let Err(e) = c.process_new_packets() {
                    return Some(tls_error(&self.shared.peer, self.shared.client, &e));
                }
            }
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
        (&self.sock)
            .write_all(&bytes)
            .map_err(|e| self.write_failed(&e))
    }
}

/// Runs a handshake to its end, each socket read or write within `limit`.
fn handshake(
    conn: &mut Session,
    sock: &TcpStream,
    peer: &str,
    client: bool,
    limit: Duration,
) -> Result<(), Error> {
    let io = |e| Error::Io {
        context: "setting socket timeouts".into(),
        source: e,
    };
    sock.set_read_timeout(Some(limit)).map_err(io)?;
    sock.set_write_timeout(Some(limit)).map_err(io)?;
    let mut s = sock;
    while conn.is_handshaking() {
        conn.complete_io(&mut s)
            .map_err(|e| io_tls_error(peer, client, e))?;
    }
    sock.set_read_timeout(None).map_err(io)?;
    sock.set_write_timeout(Some(FRAME_STALL_LIMIT))
        .map_err(io)?;
    Ok(())
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
        self.finish_handshake()?;
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
        (&self.sock)
            .write_all(&bytes)
            .map_err(|e| self.write_failed(&e))
    }

    fn recv_frame_wait(&mut self, wait: Wait) -> Result<Option<Vec<u8>>, Error> {
        self.finish_handshake()?;
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

/// A listener of TLS connections: TCP connections whose server handshake runs at their first
/// read or write ([`TlsConnection::server`]).
#[derive(Debug)]
pub struct TlsListener {
    tcp: TcpListener,
    config: Arc<ServerConfig>,
}

impl TlsListener {
    /// Binds `addr` (`HOST:PORT`), presenting the certificate of `config`.
    pub(super) fn bind(addr: (&str, u16), config: Arc<ServerConfig>) -> Result<TlsListener, Error> {
        Ok(TlsListener {
            tcp: TcpListener::bind(addr)?,
            config,
        })
    }
}

impl Listener for TlsListener {
    fn accept_once(&self, wait: Wait) -> Result<Box<dyn Connection>, Error> {
        let (s, _) = self.tcp.accept_wait(wait)?;
        Ok(Box::new(TlsConnection::server(
            s.into(),
            self.config.clone(),
        )?))
    }
    fn local_addr(&self) -> Result<Endpoint, Error> {
        let a = self.tcp.local_addr()?;
        Endpoint::new("tls", a.into())
    }
}
