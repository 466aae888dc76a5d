//! `tls:HOST:PORT`, `tls:[V6]:PORT`: TLS 1.3 and 1.2 (rustls, ring provider) over TCP, framed
//! (feature `tls`). A transport like any other: message channels (`ipcx send`/`recv`), the
//! patterns and RPC run over it.
//!
//! Its certificates travel beside the address, never in it: a [`TlsConfig`] in the options
//! ([`Options::tls`](crate::channel::Options::tls) for channels,
//! [`ConnectionOptions::tls`](super::ConnectionOptions::tls) for connections, and the pattern
//! and RPC options). An endpoint without the ones it needs is
//! [`Error::InvalidAddress`] naming them.
//!
//! * **Server authentication by default**: the connecting side checks the server's
//!   certificate chain against the roots it was given ([`client_config`]) and the server name
//!   (the host of the address, or [`TlsConfig::server_name`]). An untrusted server fails the
//!   connection with [`Error::Tls`] saying so.
//! * **Client certificates on demand**: a server built with client roots
//!   ([`server_config`] with `Some(roots)`) refuses clients that present no certificate, or one
//!   not signed by those roots.
//! * **A plaintext peer is refused**, and the server goes on serving: each connection runs its
//!   handshake on the thread (or task) that serves it, within [`HANDSHAKE_TIMEOUT`].
//! * Any rustls configuration works: [`client_config`] and [`server_config`] are shortcuts for
//!   the common case (TLS 1.2 and 1.3, safe defaults), and [`load_certificates`] and
//!   [`load_private_key`] read PEM or DER files. rustls is re-exported ([`rustls`]) so that
//!   callers build configurations with the same version.
//!
//! With the `tokio` feature too, the async RPC server and client run it natively on
//! tokio-rustls, with the same configurations and checks.

use std::io::Write;

pub use rustls;

#[cfg(feature = "tokio")]
mod asynch;
mod config;
mod connection;

pub use config::{TlsConfig, client_config, load_certificates, load_private_key, server_config};
pub(crate) use config::{client_of, server_of};
pub use connection::{HANDSHAKE_TIMEOUT, TlsConnection, TlsListener};

use super::conn_channel::ConnectionReceiver;
use super::socket::{connect_retrying, map_connect_err};
use super::{Connection, ConnectionOptions, Listener, Transport};
use crate::channel::{Address, Error, MessageReceiver, MessageSender, Options, RawReader};
use crate::wait::Wait;

fn host_port(addr: &Address) -> (&str, u16) {
    addr.host_port().expect("tls: parses HOST:PORT only")
}

/// The name the server's certificate must be valid for, connecting to `host`.
fn server_name(
    opts: &ConnectionOptions,
    host: &str,
) -> Result<rustls::pki_types::ServerName<'static>, Error> {
    match &opts.tls {
        Some(t) => t.name_for(host),
        None => TlsConfig::new().name_for(host),
    }
}

/// `tls:HOST:PORT`: TLS over TCP, framed.
#[derive(Debug)]
pub(super) struct Tls;

impl Tls {
    /// Connects, retrying while nobody listens as `opts.connect_timeout` allows.
    fn connect_retrying(&self, addr: &Address, opts: &Options) -> Result<TlsConnection, Error> {
        let what = format!("tls:{addr}");
        let conn = opts.connection();
        let config = client_of(conn.tls.as_ref(), &what)?;
        let name = server_name(&conn, host_port(addr).0)?;
        let s = connect_retrying(opts, |w| super::tcp::connect_stream(addr, w))
            .map_err(|e| map_connect_err(e, &what))?;
        TlsConnection::client(
            s.into(),
            name,
            config,
            Wait::from_timeout(opts.connect_timeout),
        )
    }
}

impl Transport for Tls {
    fn scheme(&self) -> &'static str {
        "tls"
    }
    fn syntax(&self) -> &'static [&'static str] {
        &["tls:HOST:PORT"]
    }
    fn parse(&self, rest: &str) -> Result<Address, String> {
        Address::parse_host_port(rest)
    }
    fn receiver(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
        let listener = self.bind(addr, &opts.connection())?;
        Ok(Box::new(ConnectionReceiver::new(listener, opts)?))
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        let mut conn = self.connect_retrying(addr, opts)?;
        conn.set_max_frame_len(opts.max_frame_len);
        Ok(Box::new(TlsSender {
            conn,
            what: format!("tls:{addr}"),
            max: opts.max_frame_len,
        }))
    }
    fn connect(
        &self,
        addr: &Address,
        wait: Wait,
        opts: &ConnectionOptions,
    ) -> Result<Box<dyn Connection>, Error> {
        let what = format!("tls:{addr}");
        let config = client_of(opts.tls.as_ref(), &what)?;
        let name = server_name(opts, host_port(addr).0)?;
        let s = super::tcp::connect_stream(addr, wait)?;
        Ok(Box::new(TlsConnection::client(
            s.into(),
            name,
            config,
            wait,
        )?))
    }
    fn bind(&self, addr: &Address, opts: &ConnectionOptions) -> Result<Box<dyn Listener>, Error> {
        let config = server_of(opts.tls.as_ref(), &format!("tls:{addr}"))?;
        Ok(Box::new(TlsListener::bind(host_port(addr), config)?))
    }
    fn raw_writer(&self, addr: &Address, opts: &Options) -> Result<Box<dyn Write + Send>, Error> {
        let _ = opts;
        Err(not_raw(addr))
    }
    fn raw_reader(&self, addr: &Address, opts: &Options) -> Result<Box<dyn RawReader>, Error> {
        let _ = opts;
        Err(not_raw(addr))
    }
    #[cfg(feature = "tokio")]
    fn connect_async<'a>(
        &'a self,
        addr: &'a Address,
        opts: &'a ConnectionOptions,
    ) -> super::asynch::Connecting<'a> {
        asynch::connect(addr, opts)
    }
    #[cfg(feature = "tokio")]
    fn bind_async(
        &self,
        addr: &Address,
        opts: &ConnectionOptions,
    ) -> Result<Box<dyn super::asynch::AsyncListener>, Error> {
        asynch::bind(addr, opts)
    }
}

/// The sending half of a `tls:` message channel: one connection.
#[derive(Debug)]
struct TlsSender {
    conn: TlsConnection,
    what: String,
    max: usize,
}

impl MessageSender for TlsSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        if msg.len() > self.max {
            return Err(Error::TooLarge {
                len: msg.len(),
                max: self.max,
                what: format!("{} (the maximum frame length)", self.what),
            });
        }
        self.conn.send_frame_wait(msg, wait)
    }

    fn max_message_len(&self) -> Option<usize> {
        Some(self.max.min(u32::MAX as usize))
    }

    /// Ends the session and waits (up to [`HANDSHAKE_TIMEOUT`]) for the receiver to end its
    /// own: a receiver that refused this sender (its certificate, after a TLS 1.3 handshake)
    /// says so here. Nothing can be sent afterwards.
    fn finish(&mut self) -> Result<(), Error> {
        self.conn.close(Wait::timeout(HANDSHAKE_TIMEOUT))
    }
}

/// `--raw` over TLS: not offered (the bytes are records of a session, not a stream to copy).
fn not_raw(addr: &Address) -> Error {
    Error::InvalidAddress {
        addr: format!("tls:{addr}"),
        reason: "--raw copies a plain byte stream: TLS carries framed messages only".into(),
    }
}
