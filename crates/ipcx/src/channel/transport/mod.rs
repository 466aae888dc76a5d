//! The transport trait, the connection traits, and the registry of transports.
//!
//! A [`Transport`] is one scheme of the endpoint grammar (`fifo`, `mq`, `unix`, `tcp`,
//! `shm`...): it parses the rest of an address into an [`Address`] and opens the channel
//! halves ([`MessageSender`], [`MessageReceiver`]) on it; a connection-oriented transport also
//! connects and binds framed, bidirectional [`Connection`]s, which the patterns and RPC run
//! over, with what they need besides the address in [`ConnectionOptions`] (trust,
//! certificates). [`TRANSPORTS`] lists them, one line each; see the [channel docs](super) for
//! how to add one.

use std::fmt;
use std::io::Write;

use super::raw::not_a_stream;
use super::{Address, Error, MessageReceiver, MessageSender, Options, RawReader};
use crate::wait::Wait;

#[cfg(feature = "tls")]
mod conn_channel;
mod connection;
mod connection_options;
mod fifo;
mod mq;
pub mod shm;
mod socket;
mod stream;
mod sysv_mq;
mod tcp;
#[cfg(feature = "tls")]
pub mod tls;
mod udp;
mod unix;
#[cfg(feature = "zenoh")]
pub mod zenoh;

pub use connection::{Connection, Listener};
pub use connection_options::ConnectionOptions;
pub use stream::{Connections, FramedStream, StreamConnection, StreamListener};
pub use tcp::TcpConnection;
pub use unix::UnixConnection;
pub use unix::UnixKind;

/// Every transport, found by its scheme. One line per transport.
pub static TRANSPORTS: &[&dyn Transport] = &[
    &fifo::Fifo,
    &mq::Mq,
    &sysv_mq::SysvMq,
    &unix::Unix,
    &unix::UnixDgram,
    &unix::UnixSeqpacket,
    &tcp::Tcp,
    &udp::Udp,
    &shm::Shm,
    #[cfg(feature = "tls")]
    &tls::Tls,
    #[cfg(feature = "zenoh")]
    &zenoh::Zenoh,
];

/// The transport registered for `scheme`.
pub fn find(scheme: &str) -> Option<&'static dyn Transport> {
    TRANSPORTS.iter().copied().find(|t| t.scheme() == scheme)
}

/// "expected one of ...": every registered syntax, for parse errors.
pub(crate) fn expected() -> String {
    let all: Vec<&str> = TRANSPORTS
        .iter()
        .flat_map(|t| t.syntax())
        .copied()
        .collect();
    format!("expected one of {}", all.join(", "))
}

/// One transport: a scheme of the endpoint grammar and what opens it.
///
/// Errors name the endpoint and say what to do ([`Error`]). The blocking, non-blocking and
/// timeout variants of every operation come from one `Wait` argument, as everywhere in ipcx.
pub trait Transport: Send + Sync + fmt::Debug {
    /// The scheme, as in `mq` for `mq:/jobs`.
    fn scheme(&self) -> &'static str;

    /// The address forms, for messages: `["unix:PATH", "unix:@NAME"]`.
    fn syntax(&self) -> &'static [&'static str];

    /// Parses what follows `SCHEME:`; the error is the reason, which the caller puts after
    /// the address.
    fn parse(&self, rest: &str) -> Result<Address, String>;

    /// Whether it carries a byte stream that ipcx frames (and `--raw` copies verbatim), rather
    /// than keeping message boundaries itself.
    fn is_byte_stream(&self) -> bool {
        false
    }

    /// Whether it is a publish/subscribe fabric itself (`zenoh:`): every receiver gets every
    /// message sent, so `ipcx pub` and `ipcx sub` use its sender and receiver rather than the
    /// pub/sub pattern's connections.
    fn is_pubsub(&self) -> bool {
        false
    }

    /// Opens the receiving side: binds, listens or creates the object.
    fn receiver(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error>;

    /// Opens the sending side: connects to, or opens, the object.
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error>;

    /// Connects a framed, bidirectional connection, giving up at the deadline, with what
    /// `opts` gives besides the address (certificates). The default: this transport carries
    /// no connections.
    fn connect(
        &self,
        addr: &Address,
        wait: Wait,
        opts: &ConnectionOptions,
    ) -> Result<Box<dyn Connection>, Error> {
        let _ = (wait, opts);
        Err(no_connections(self.scheme(), addr))
    }

    /// Binds a listener for connections, accepting Unix peers that `opts.trust` permits,
    /// with what else `opts` gives (certificates). The default: this transport carries no
    /// connections.
    fn bind(&self, addr: &Address, opts: &ConnectionOptions) -> Result<Box<dyn Listener>, Error> {
        let _ = opts;
        Err(no_connections(self.scheme(), addr))
    }

    /// A writer of raw bytes (byte streams only; the default refuses).
    fn raw_writer(&self, addr: &Address, opts: &Options) -> Result<Box<dyn Write + Send>, Error> {
        let _ = opts;
        Err(not_a_stream(&format!("{}:{addr}", self.scheme())))
    }

    /// A reader of raw bytes from one writer or connection after another (byte streams only;
    /// the default refuses).
    fn raw_reader(&self, addr: &Address, opts: &Options) -> Result<Box<dyn RawReader>, Error> {
        let _ = opts;
        Err(not_a_stream(&format!("{}:{addr}", self.scheme())))
    }

    /// Connects a tokio byte stream, split into its halves (transports with a pollable fd;
    /// the default: none), with what `opts` gives besides the address.
    #[cfg(feature = "tokio")]
    fn connect_async<'a>(
        &'a self,
        addr: &'a Address,
        opts: &'a ConnectionOptions,
    ) -> asynch::Connecting<'a> {
        let _ = opts;
        Box::pin(async move {
            Err(Error::InvalidAddress {
                addr: format!("{}:{addr}", self.scheme()),
                reason: format!("{}: has no tokio stream", self.scheme()),
            })
        })
    }

    /// Binds a tokio listener, accepting Unix peers that `opts.trust` permits (transports
    /// with a pollable fd; the default: none). Call it from inside a tokio runtime.
    #[cfg(feature = "tokio")]
    fn bind_async(
        &self,
        addr: &Address,
        opts: &ConnectionOptions,
    ) -> Result<Box<dyn asynch::AsyncListener>, Error> {
        let _ = opts;
        Err(Error::InvalidAddress {
            addr: format!("{}:{addr}", self.scheme()),
            reason: format!("no native async listener for {}:", self.scheme()),
        })
    }
}

#[cfg(feature = "tokio")]
pub mod asynch;

/// The error of [`Transport::connect`] and [`Transport::bind`] on a transport that carries only
/// messages.
fn no_connections(scheme: &str, addr: &Address) -> Error {
    Error::InvalidAddress {
        addr: format!("{scheme}:{addr}"),
        reason: "this transport carries no connections; use unix:, tcp:, tls: or shm:".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transport_has_its_own_scheme_and_says_its_syntax() {
        for (i, t) in TRANSPORTS.iter().enumerate() {
            assert!(
                TRANSPORTS[..i].iter().all(|o| o.scheme() != t.scheme()),
                "{} registered twice",
                t.scheme()
            );
            assert!(!t.syntax().is_empty());
            for form in t.syntax() {
                assert!(form.starts_with(&format!("{}:", t.scheme())), "{form}");
            }
            assert!(find(t.scheme()).is_some());
        }
    }
}
