//! One message interface over every mechanism.
//!
//! An [`Endpoint`] is a parsed address such as `mq:/jobs` or `unix:@svc`. It gives a message
//! receiver (which binds, listens or creates the object) and a message sender (which connects or
//! opens it), with one interface whatever the mechanism: [`MessageSender::send`] takes bytes,
//! [`MessageReceiver::recv`] returns a [`Message`]: the bytes plus the [`Meta`]data the mechanism
//! knows (priority, type, the peer's verified pid/uid/gid).
//!
//! | address | mechanism | message boundaries |
//! |---|---|---|
//! | `fifo:PATH` | named pipe | framed |
//! | `mq:/NAME` | POSIX message queue | native (priorities) |
//! | `sysv-mq:KEY` (decimal or `0x` hex) | System V message queue | native (types) |
//! | `unix:PATH`, `unix:@NAME` (abstract) | Unix stream socket | framed |
//! | `unix-dgram:PATH`, `unix-seqpacket:PATH` (also `@NAME`) | Unix datagram / seqpacket | native |
//! | `tcp:HOST:PORT`, `tcp:[V6]:PORT` | TCP (TCP_NODELAY) | framed |
//! | `udp:HOST:PORT` | UDP | native (one datagram each) |
//! | `shm:/NAME` | ipcx zero-copy shared-memory ring ([`crate::ring`]) | native |
//! | `tls:HOST:PORT`, `tls:[V6]:PORT` | TLS 1.3/1.2 over TCP (feature `tls`; certificates in `Options::tls`) | framed |
//! | `zenoh:KEYEXPR` | Zenoh pub/sub across hosts (feature `zenoh`; configuration in `Options::zenoh`) | native |
//!
//! Framed endpoints use [`crate::framing`]: a 4-byte big-endian length, then the bytes.
//!
//! # Typed messages
//! [`Sender<T>`] and [`Receiver<T>`] carry any serde type over any endpoint. Each message is
//! one byte, the [`Codec`]'s tag (`0` postcard, `1` MessagePack), then the value encoded in
//! that codec ([`Codec::encode_message`], [`Codec::decode_message`]). A sender writes postcard
//! unless [`Sender::with_codec`] says otherwise; a receiver reads either, message by message,
//! and tells which in [`Meta::codec`]. A message that is empty, names a codec this build does
//! not know, or is not a valid `T` is [`Error::Codec`] ([`CodecError`] says which) and the
//! receiver goes on. The repository's `docs/PROTOCOL.md` ("Typed messages") has the bytes, for
//! programs in other languages.
//!
//! ```no_run
//! use ipcx::channel::{Codec, Endpoint, Options, Receiver, Sender};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ep = Endpoint::parse("unix:@prices")?;
//! let mut rx: Receiver<(String, f64)> = Receiver::open(&ep, &Options::default())?;
//! // in another process, perhaps another language:
//! let mut tx = Sender::open(&ep, &Options::default())?.with_codec(Codec::MsgPack);
//! tx.send(&("eur.usd".to_string(), 1.08))?;
//! let ((pair, price), meta) = rx.recv()?;
//! assert_eq!(meta.codec, Some(Codec::MsgPack));
//! # let _ = (pair, price);
//! # Ok(()) }
//! ```
//!
//! # One seam for every transport
//! Every scheme above is a [`Transport`] registered in [`transport`]: the parser
//! ([`Endpoint::parse`]) looks the scheme up there and lets the transport parse the rest into
//! an [`Address`]. A transport opens message [`MessageSender`]s and [`MessageReceiver`]s, and
//! the connection-oriented ones (`unix:`, `tcp:`, `tls:`, `shm:`) also framed,
//! bidirectional [`Connection`]s through [`Endpoint::connect`] and [`Endpoint::bind`] (a
//! [`Listener`]): the patterns ([`crate::pattern`]) and RPC ([`crate::rpc`]) run on those.
//!
//! ## Adding a transport
//! Three files, and no edit to [`Endpoint`], [`Address`] or any `match`:
//! 1. **The module**: `channel/transport/NAME.rs`, a unit struct implementing [`Transport`]:
//!    its [`scheme`](Transport::scheme) and [`syntax`](Transport::syntax), how it
//!    [`parse`](Transport::parse)s the rest of the address (into one of the [`Address`]
//!    shapes; the `Address::parse_*` helpers cover the common ones, and [`Address::Name`]
//!    takes a transport's own namespace), and its [`receiver`](Transport::receiver) and
//!    [`sender`](Transport::sender). A connection-oriented transport also implements
//!    [`connect`](Transport::connect) and [`bind`](Transport::bind) with a [`Connection`] and
//!    a [`Listener`] type of its own (what they need besides the address, such as
//!    certificates, comes in [`ConnectionOptions`]; a field there, and in [`Options`], is how
//!    a new transport gets its own configuration) (the defaults say the transport carries no
//!    connections; a byte-stream socket implements [`transport::FramedStream`] and
//!    [`transport::StreamListener`] and reuses [`transport::StreamConnection`] and
//!    [`transport::Connections`]), and a byte stream [`raw_writer`](Transport::raw_writer) and
//!    [`raw_reader`](Transport::raw_reader) for `--raw`. With the `tokio` feature, a transport
//!    whose fd is pollable implements `connect_async` and `bind_async` too (the async RPC
//!    client and server use them).
//! 2. **The registration**, in `channel/transport/mod.rs`: `mod NAME;` and one line,
//!    `&NAME::Name,`, in [`transport::TRANSPORTS`]. The parser, the CLI (`ipcx send`/`recv`),
//!    the patterns and RPC then accept `NAME:...` addresses.
//! 3. **Its conformance rows**: the endpoint in `endpoints()` of `tests/conformance.rs`
//!    (message channels) and, for connections, in the pattern and RPC suites.
//!
//! A vsock transport, for example, is `transport/vsock.rs` with `struct Vsock;` whose
//! `scheme()` is `"vsock"`, whose `parse` reads `CID:PORT` into
//! `Address::HostPort { host: cid, port }`, and whose `receiver`/`sender`/`connect`/`bind` wrap
//! vsock sockets; plus `&vsock::Vsock,` in the registry and its rows in the suites.
//!
//! ```no_run
//! use ipcx::channel::{Endpoint, Options};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ep = Endpoint::parse("mq:/jobs")?;
//! let mut rx = ep.receiver(&Options::default())?; // creates the queue
//! let mut tx = ep.sender(&Options::default())?;
//! tx.send(b"hello")?;
//! let msg = rx.recv()?;
//! assert_eq!(msg.data, b"hello");
//! # Ok(()) }
//! ```

pub mod bridge;
mod codec;
mod endpoint;
mod error;
mod message;
mod options;
mod raw;
pub mod transport;
mod typed;

pub use codec::{Codec, CodecError};
pub use endpoint::{Address, Endpoint};
pub use error::Error;
pub use message::{Message, MessageReceiver, MessageSender, Meta};
pub use options::{DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_BUFFERED, DEFAULT_MAX_CONNECTIONS, Options};
pub use raw::RawReader;
#[cfg(feature = "tls")]
pub use transport::tls::TlsConfig;
#[cfg(feature = "zenoh")]
pub use transport::zenoh::{ZenohConfig, ZenohMode};
pub use transport::{Connection, ConnectionOptions, Listener, Transport, UnixKind};
pub use typed::{Receiver, Sender};
