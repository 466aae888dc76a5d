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
//!
//! Framed endpoints use [`crate::framing`]: a 4-byte big-endian length, then the bytes.
//!
//! Typed messages: [`Sender<T>`] and [`Receiver<T>`] serialise any serde type with postcard.
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

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::framing::{DEFAULT_MAX_FRAME_LEN, FrameError};
use crate::name::{InvalidName, PosixName};
use crate::socket::UnixAddr;
use crate::trust::Trust;
use crate::wait::Wait;

mod fifo;
mod mq;
mod raw;
pub use raw::RawReader;
mod shm_ring;
mod socket;

/// A parsed endpoint address. See the [module documentation](self) for the syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// `fifo:PATH`: a named pipe, framed.
    Fifo(PathBuf),
    /// `mq:/NAME`: a POSIX message queue.
    Mq(PosixName),
    /// `sysv-mq:KEY`: a System V message queue.
    SysvMq(i32),
    /// `unix:PATH` or `unix:@NAME`: a Unix stream socket, framed.
    Unix(UnixAddr),
    /// `unix-dgram:PATH` or `unix-dgram:@NAME`: a Unix datagram socket.
    UnixDgram(UnixAddr),
    /// `unix-seqpacket:PATH` or `unix-seqpacket:@NAME`: a Unix seqpacket socket.
    UnixSeqpacket(UnixAddr),
    /// `tcp:HOST:PORT`: a TCP stream, framed, with TCP_NODELAY.
    Tcp {
        /// Host name or IP address (without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// `udp:HOST:PORT`: UDP, one datagram per message.
    Udp {
        /// Host name or IP address (without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// `shm:/NAME`: the ipcx zero-copy shared-memory ring.
    Shm(PosixName),
}

const EXPECTED: &str = "expected one of fifo:PATH, mq:/NAME, sysv-mq:KEY, unix:PATH, unix:@NAME, \
     unix-dgram:PATH, unix-seqpacket:PATH, tcp:HOST:PORT, udp:HOST:PORT, shm:/NAME";

impl Endpoint {
    /// Parses an address such as `mq:/jobs`, `unix:@svc` or `tcp:[::1]:7000`.
    pub fn parse(address: &str) -> Result<Endpoint, Error> {
        let bad = |reason: String| Error::InvalidAddress {
            address: address.to_owned(),
            reason,
        };
        let Some((scheme, rest)) = address.split_once(':') else {
            return Err(bad(format!("no scheme; {EXPECTED}")));
        };
        let unix_addr = |rest: &str| -> Result<UnixAddr, Error> {
            UnixAddr::parse(rest).map_err(|reason| bad(reason.to_owned()))
        };
        match scheme {
            "fifo" => {
                if rest.is_empty() {
                    return Err(bad("fifo: needs a path, as in fifo:/tmp/jobs".into()));
                }
                if rest.contains('\0') {
                    return Err(bad("the path contains a NUL byte".into()));
                }
                Ok(Endpoint::Fifo(PathBuf::from(rest)))
            }
            "mq" => Ok(Endpoint::Mq(PosixName::queue(rest)?)),
            "sysv-mq" => Ok(Endpoint::SysvMq(
                crate::sysv::Key::parse(rest).map_err(bad)?.raw(),
            )),
            "unix" => Ok(Endpoint::Unix(unix_addr(rest)?)),
            "unix-dgram" => Ok(Endpoint::UnixDgram(unix_addr(rest)?)),
            "unix-seqpacket" => Ok(Endpoint::UnixSeqpacket(unix_addr(rest)?)),
            "tcp" | "udp" => {
                let (host, port) = parse_host_port(rest).map_err(bad)?;
                Ok(if scheme == "tcp" {
                    Endpoint::Tcp { host, port }
                } else {
                    Endpoint::Udp { host, port }
                })
            }
            "shm" => Ok(Endpoint::Shm(PosixName::new(rest)?)),
            other => Err(bad(format!("unknown scheme {other:?}; {EXPECTED}"))),
        }
    }

    /// Whether the mechanism keeps message boundaries itself (`false`: ipcx frames a byte
    /// stream).
    pub fn is_framed(&self) -> bool {
        matches!(
            self,
            Endpoint::Fifo(_) | Endpoint::Unix(_) | Endpoint::Tcp { .. }
        )
    }

    /// Whether this is a byte stream (fifo, unix stream, tcp), where `--raw` copies bytes
    /// verbatim.
    pub fn is_byte_stream(&self) -> bool {
        self.is_framed()
    }

    /// Opens the receiving side: binds, listens or creates the object (removed again when the
    /// receiver is dropped, if the receiver created it).
    pub fn receiver(&self, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
        match self {
            Endpoint::Fifo(path) => fifo::receiver(path, opts),
            Endpoint::Mq(name) => mq::posix_receiver(name, opts),
            Endpoint::SysvMq(key) => mq::sysv_receiver(*key, opts),
            Endpoint::Unix(addr) => socket::unix_receiver(UnixKind::Stream, addr, opts),
            Endpoint::UnixDgram(addr) => socket::unix_receiver(UnixKind::Datagram, addr, opts),
            Endpoint::UnixSeqpacket(addr) => socket::unix_receiver(UnixKind::Seqpacket, addr, opts),
            Endpoint::Tcp { host, port } => socket::tcp_receiver(host, *port, opts),
            Endpoint::Udp { host, port } => socket::udp_receiver(host, *port, opts),
            Endpoint::Shm(name) => shm_ring::receiver(name, opts),
        }
    }

    /// Opens the sending side: connects to, or opens, the object.
    pub fn sender(&self, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        match self {
            Endpoint::Fifo(path) => fifo::sender(path, opts),
            Endpoint::Mq(name) => mq::posix_sender(name, opts),
            Endpoint::SysvMq(key) => mq::sysv_sender(*key, opts),
            Endpoint::Unix(addr) => socket::unix_sender(UnixKind::Stream, addr, opts),
            Endpoint::UnixDgram(addr) => socket::unix_sender(UnixKind::Datagram, addr, opts),
            Endpoint::UnixSeqpacket(addr) => socket::unix_sender(UnixKind::Seqpacket, addr, opts),
            Endpoint::Tcp { host, port } => socket::tcp_sender(host, *port, opts),
            Endpoint::Udp { host, port } => socket::udp_sender(host, *port, opts),
            Endpoint::Shm(name) => shm_ring::sender(name, opts),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hp = |h: &str| {
            if h.contains(':') {
                format!("[{h}]")
            } else {
                h.to_owned()
            }
        };
        match self {
            Endpoint::Fifo(p) => write!(f, "fifo:{}", p.display()),
            Endpoint::Mq(n) => write!(f, "mq:{n}"),
            Endpoint::SysvMq(k) => write!(f, "sysv-mq:{k}"),
            Endpoint::Unix(a) => write!(f, "unix:{a}"),
            Endpoint::UnixDgram(a) => write!(f, "unix-dgram:{a}"),
            Endpoint::UnixSeqpacket(a) => write!(f, "unix-seqpacket:{a}"),
            Endpoint::Tcp { host, port } => write!(f, "tcp:{}:{port}", hp(host)),
            Endpoint::Udp { host, port } => write!(f, "udp:{}:{port}", hp(host)),
            Endpoint::Shm(n) => write!(f, "shm:{n}"),
        }
    }
}

impl std::str::FromStr for Endpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::parse(s)
    }
}

fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let expected = "expected HOST:PORT, as in 127.0.0.1:7000, localhost:7000 or [::1]:7000";
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unclosed '[' in IPv6 address; {expected}"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("missing :PORT; {expected}"))?;
        (host, port)
    } else {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("missing :PORT; {expected}"))?;
        if host.contains(':') {
            return Err(format!("IPv6 addresses need brackets; {expected}"));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(format!("missing host; {expected}"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("invalid port {port:?} (0-65535); {expected}"))?;
    Ok((host.to_owned(), port))
}

/// The three kinds of Unix domain socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnixKind {
    /// `SOCK_STREAM`: a byte stream, framed by ipcx.
    Stream,
    /// `SOCK_DGRAM`: connectionless datagrams.
    Datagram,
    /// `SOCK_SEQPACKET`: connected, reliable, message boundaries kept.
    Seqpacket,
}

/// Options for opening either side of an endpoint. Options that do not apply to a mechanism
/// are ignored by it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Mode for objects the call creates (default `0o600`).
    pub mode: u32,
    /// Sender: create the queue or FIFO when it is missing (receivers always do).
    pub create: bool,
    /// POSIX mq: the priority messages are sent with (default 0).
    pub priority: u32,
    /// System V mq: the type messages are sent with (default 1), or, for a receiver, msgrcv's
    /// selector: 0 any, `n > 0` that type, `n < 0` the lowest type up to `|n|` (default 0).
    pub mtype: Option<i64>,
    /// Framed endpoints: the longest message accepted (default 16 MiB).
    pub max_frame_len: usize,
    /// POSIX mq creation: capacity in messages (default: the system default).
    pub max_messages: Option<usize>,
    /// POSIX mq creation: largest message (default: the system default).
    pub max_message_size: Option<usize>,
    /// Connection-oriented senders, FIFO writers: how long to wait for the peer to appear
    /// (default: not at all: no listener, or no reader on the FIFO, is [`Error::PeerGone`]).
    pub connect_timeout: Option<Duration>,
    /// Which users' objects and peers are trusted besides our own (default: our own uid only;
    /// see [`crate::trust`]).
    pub trust: Trust,
    /// Receivers serving many peers (fifo, unix, unix-seqpacket, tcp): the most bytes held for
    /// incomplete messages of all peers together (default [`DEFAULT_MAX_BUFFERED`], 64 MiB).
    /// The peer whose partial frame would pass it is dropped ([`Error::PeerDropped`]).
    pub max_buffered: usize,
    /// Receivers serving many peers: the most connections served at once (default
    /// [`DEFAULT_MAX_CONNECTIONS`]). At the limit the receiver stops accepting; further
    /// senders wait in the kernel's listen backlog until a connected peer leaves.
    pub max_connections: usize,
    /// Receivers serving many peers: how long a peer may hold a partial frame without sending
    /// more of it before it is dropped (default 30 s; `None`: never). A peer that sends nothing
    /// between frames is never dropped for it.
    pub idle_timeout: Option<Duration>,
}

/// Default [`Options::max_buffered`]: 64 MiB.
pub const DEFAULT_MAX_BUFFERED: usize = crate::framing::DEFAULT_MAX_BUFFERED;

/// Default [`Options::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Default [`Options::idle_timeout`]: 30 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: 0o600,
            create: false,
            priority: 0,
            mtype: None,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_messages: None,
            max_message_size: None,
            connect_timeout: None,
            trust: Trust::own_user(),
            max_buffered: DEFAULT_MAX_BUFFERED,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
        }
    }
}

impl Options {
    /// Default options.
    pub fn new() -> Options {
        Options::default()
    }
    /// Sets the creation mode.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
    /// Lets a sender create a missing queue or FIFO.
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }
    /// Sets the POSIX mq send priority.
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }
    /// Sets the System V message type (send) or selector (receive).
    pub fn mtype(mut self, mtype: i64) -> Self {
        self.mtype = Some(mtype);
        self
    }
    /// Sets the maximum frame length for framed endpoints.
    pub fn max_frame_len(mut self, max: usize) -> Self {
        self.max_frame_len = max;
        self
    }
    /// Sets the POSIX mq capacity used when the queue is created.
    pub fn capacity(mut self, max_messages: usize, max_message_size: usize) -> Self {
        self.max_messages = Some(max_messages);
        self.max_message_size = Some(max_message_size);
        self
    }
    /// Sets the connect / open timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }
    /// Sets which other users' objects and peers are trusted.
    pub fn trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }
    /// Sets the cap on bytes buffered across all peers of one receiver.
    pub fn max_buffered(mut self, max: usize) -> Self {
        self.max_buffered = max;
        self
    }
    /// Sets the most connections one receiver serves at once.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }
    /// Sets how long a peer may hold a partial frame without progress (`None`: forever).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }
}

/// What the mechanism tells about a received message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Meta {
    /// POSIX mq: the message priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// System V mq: the message type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub mtype: Option<i64>,
    /// The sender's process id, verified by the kernel (socket credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The sender's user id, verified by the kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The sender's group id, verified by the kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// The sender's address (TCP, UDP, bound Unix datagram sockets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
}

/// A received message: its bytes and what the mechanism tells about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The payload.
    pub data: Vec<u8>,
    /// Metadata: priority, type, verified sender credentials.
    pub meta: Meta,
}

impl Message {
    /// A message with no metadata.
    pub fn new(data: Vec<u8>) -> Message {
        Message {
            data,
            meta: Meta::default(),
        }
    }
}

/// The sending half of any endpoint.
pub trait MessageSender: Send + fmt::Debug {
    /// Sends one message, waiting as `wait` allows.
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error>;

    /// The largest message this sender can carry, when the mechanism has a limit.
    fn max_message_len(&self) -> Option<usize> {
        None
    }

    /// Sends one message, blocking until it is accepted.
    fn send(&mut self, msg: &[u8]) -> Result<(), Error> {
        self.send_wait(msg, Wait::Forever)
    }

    /// Sends one message without blocking: [`Error::Full`] when it cannot be accepted now.
    fn try_send(&mut self, msg: &[u8]) -> Result<(), Error> {
        self.send_wait(msg, Wait::NoWait)
    }

    /// Ends a batch of sends: reports messages that were accepted but can no longer reach a
    /// receiver. A POSIX queue takes messages while it has room even after its receiver
    /// removed it, so its sender checks here ([`Error::PeerGone`] with the count lost).
    /// Mechanisms that find out on every send do nothing.
    fn finish(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// Sends one message, giving up with [`Error::Timeout`] after `timeout`.
    fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), Error> {
        self.send_wait(msg, Wait::timeout(timeout))
    }
}

/// The receiving half of any endpoint.
pub trait MessageReceiver: Send + fmt::Debug {
    /// Receives one message, waiting as `wait` allows.
    ///
    /// Errors for which [`Error::is_recoverable`] is true (a timeout, one misbehaving peer of a
    /// server) leave the receiver usable: call again.
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error>;

    /// Receives one message, blocking until one arrives.
    fn recv(&mut self) -> Result<Message, Error> {
        self.recv_wait(Wait::Forever)
    }

    /// Receives one message if one is waiting: [`Error::WouldBlock`] otherwise.
    fn try_recv(&mut self) -> Result<Message, Error> {
        self.recv_wait(Wait::NoWait)
    }

    /// Receives one message, giving up with [`Error::Timeout`] after `timeout`.
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Message, Error> {
        self.recv_wait(Wait::timeout(timeout))
    }
}

impl<S: MessageSender + ?Sized> MessageSender for Box<S> {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        (**self).send_wait(msg, wait)
    }
    fn max_message_len(&self) -> Option<usize> {
        (**self).max_message_len()
    }
    fn finish(&mut self) -> Result<(), Error> {
        (**self).finish()
    }
}

impl<R: MessageReceiver + ?Sized> MessageReceiver for Box<R> {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error> {
        (**self).recv_wait(wait)
    }
}

/// Why a channel operation failed. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address does not parse.
    #[error("invalid address {address:?}: {reason}")]
    InvalidAddress {
        /// The address given.
        address: String,
        /// What was expected.
        reason: String,
    },
    /// The name is not a valid POSIX IPC name.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// The object or peer does not exist.
    #[error("no {what}: {hint}")]
    NotFound {
        /// The object, as in `queue mq:/jobs`.
        what: String,
        /// What to do.
        hint: String,
    },
    /// The object already exists (create_new), or the address is in use.
    #[error("{what} already exists: {hint}")]
    AlreadyExists {
        /// The object.
        what: String,
        /// What to do.
        hint: String,
    },
    /// The caller may not use the object.
    #[error("permission denied on {what}: check its owner and mode (ipcx ls shows them)")]
    PermissionDenied {
        /// The object.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The message is larger than the mechanism or the object allows.
    #[error("message of {len} bytes is too large for {what}, which takes at most {max} bytes")]
    TooLarge {
        /// The message length.
        len: usize,
        /// The limit.
        max: usize,
        /// The object or mechanism whose limit it is.
        what: String,
    },
    /// A non-blocking send found no room.
    #[error("{what} is full: retry later, or use a blocking send")]
    Full {
        /// The object.
        what: String,
    },
    /// A non-blocking receive found nothing waiting.
    #[error("no message waiting")]
    WouldBlock,
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
    /// The peer closed or died; for a receiver, also the end of the stream.
    #[error("peer gone: {what}")]
    PeerGone {
        /// Which peer, or what ended.
        what: String,
    },
    /// A peer's frame declared a length above the maximum.
    #[error("frame of {len} bytes from {peer} exceeds the maximum frame length of {max} bytes")]
    FrameTooLarge {
        /// The declared length.
        len: u64,
        /// The configured maximum.
        max: usize,
        /// The peer that sent it.
        peer: String,
    },
    /// A stream ended inside a frame.
    #[error("stream from {peer} ended inside a frame: {got} of {expected} bytes arrived")]
    TruncatedFrame {
        /// Bytes expected (header included).
        expected: usize,
        /// Bytes that arrived.
        got: usize,
        /// The peer.
        peer: String,
    },
    /// The operation does not exist for this mechanism.
    #[error("{what} is not supported by {mechanism}")]
    Unsupported {
        /// The operation.
        what: String,
        /// The mechanism.
        mechanism: String,
    },
    /// A typed message could not be encoded or decoded.
    #[error("message encoding failed: {0}")]
    Codec(#[from] postcard::Error),
    /// The object or peer belongs to a user the caller does not trust ([`crate::trust`]).
    #[error(transparent)]
    ForeignOwner(#[from] crate::trust::ForeignOwner),
    /// A multi-peer receiver refused or dropped one peer (another user, over the receiver's
    /// memory or connection budget, idle too long) and goes on serving the others.
    #[error("dropped {peer}: {reason}")]
    PeerDropped {
        /// The peer.
        peer: String,
        /// Why it was dropped.
        reason: String,
    },
    /// Shared state that a peer wrote (a ring header, a mapping) is inconsistent, or was
    /// truncated or replaced under a live mapping.
    #[error("{what} is corrupt: {reason}")]
    Corrupt {
        /// The object.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other OS failure, with context.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A receiver ran out of a resource (file descriptors, kernel memory) while accepting: it
    /// stops accepting for a moment (backing off) and goes on serving the peers it has.
    #[error("{what}: {reason}")]
    AcceptPaused {
        /// The receiver.
        what: String,
        /// What ran out, and for how long accepting pauses.
        reason: String,
    },
}

impl Error {
    /// Whether the receiver or sender stays usable after this error: timeouts, an empty or
    /// full queue, and one misbehaving peer of a multi-peer server.
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            Error::WouldBlock
                | Error::Timeout
                | Error::Full { .. }
                | Error::TooLarge { .. }
                | Error::FrameTooLarge { .. }
                | Error::TruncatedFrame { .. }
                | Error::PeerDropped { .. }
                | Error::AcceptPaused { .. }
                | Error::Codec(_)
        )
    }

    /// Wraps an OS error with context, mapping the cases callers act on to named variants.
    pub fn from_io(what: impl Into<String>, source: io::Error) -> Error {
        let what = what.into();
        match source.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound {
                hint: "start the receiver first, or pass --create".into(),
                what,
            },
            Some(libc::EEXIST) => Error::AlreadyExists {
                hint: "remove it first (ipcx rm) or open the existing one".into(),
                what,
            },
            Some(libc::EACCES | libc::EPERM) => Error::PermissionDenied { what, source },
            Some(libc::ETIMEDOUT) => Error::Timeout,
            Some(libc::EPIPE | libc::ECONNRESET | libc::ECONNREFUSED | libc::EIDRM) => {
                Error::PeerGone {
                    what: format!("{what}: {source}"),
                }
            }
            _ => match source.kind() {
                io::ErrorKind::TimedOut => Error::Timeout,
                _ => Error::Io {
                    context: what,
                    source,
                },
            },
        }
    }

    /// Converts a framing error from `peer`.
    pub fn from_frame(peer: impl Into<String>, e: FrameError) -> Error {
        let peer = peer.into();
        match e {
            FrameError::TooLarge { len, max } => Error::FrameTooLarge { len, max, peer },
            FrameError::Truncated { expected, got } => Error::TruncatedFrame {
                expected,
                got,
                peer,
            },
            FrameError::Io(source) => Error::from_io(peer, source),
        }
    }
}

/// A typed sender: serialises each `T` with postcard and sends it as one message.
#[derive(Debug)]
pub struct Sender<T> {
    inner: Box<dyn MessageSender>,
    _marker: PhantomData<fn(&T)>,
}

impl<T: Serialize> Sender<T> {
    /// Wraps a byte-message sender.
    pub fn new(inner: Box<dyn MessageSender>) -> Sender<T> {
        Sender {
            inner,
            _marker: PhantomData,
        }
    }

    /// Opens the sending side of `endpoint`.
    pub fn open(endpoint: &Endpoint, opts: &Options) -> Result<Sender<T>, Error> {
        endpoint.sender(opts).map(Sender::new)
    }

    /// Sends one value, blocking.
    pub fn send(&mut self, value: &T) -> Result<(), Error> {
        self.send_wait(value, Wait::Forever)
    }

    /// Sends one value without blocking.
    pub fn try_send(&mut self, value: &T) -> Result<(), Error> {
        self.send_wait(value, Wait::NoWait)
    }

    /// Sends one value, giving up after `timeout`.
    pub fn send_timeout(&mut self, value: &T, timeout: Duration) -> Result<(), Error> {
        self.send_wait(value, Wait::timeout(timeout))
    }

    /// Sends one value, waiting as `wait` allows.
    pub fn send_wait(&mut self, value: &T, wait: Wait) -> Result<(), Error> {
        let bytes = postcard::to_stdvec(value)?;
        self.inner.send_wait(&bytes, wait)
    }

    /// The byte-message sender underneath.
    pub fn into_inner(self) -> Box<dyn MessageSender> {
        self.inner
    }
}

/// A typed receiver: decodes each message as a `T` with postcard.
///
/// A message that does not decode is [`Error::Codec`] (recoverable: the receiver goes on).
#[derive(Debug)]
pub struct Receiver<T> {
    inner: Box<dyn MessageReceiver>,
    _marker: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Receiver<T> {
    /// Wraps a byte-message receiver.
    pub fn new(inner: Box<dyn MessageReceiver>) -> Receiver<T> {
        Receiver {
            inner,
            _marker: PhantomData,
        }
    }

    /// Opens the receiving side of `endpoint`.
    pub fn open(endpoint: &Endpoint, opts: &Options) -> Result<Receiver<T>, Error> {
        endpoint.receiver(opts).map(Receiver::new)
    }

    /// Receives one value, blocking.
    pub fn recv(&mut self) -> Result<(T, Meta), Error> {
        self.recv_wait(Wait::Forever)
    }

    /// Receives one value if one is waiting.
    pub fn try_recv(&mut self) -> Result<(T, Meta), Error> {
        self.recv_wait(Wait::NoWait)
    }

    /// Receives one value, giving up after `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<(T, Meta), Error> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// Receives one value, waiting as `wait` allows.
    pub fn recv_wait(&mut self, wait: Wait) -> Result<(T, Meta), Error> {
        let msg = self.inner.recv_wait(wait)?;
        let value = postcard::from_bytes(&msg.data)?;
        Ok((value, msg.meta))
    }

    /// The byte-message receiver underneath.
    pub fn into_inner(self) -> Box<dyn MessageReceiver> {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        let cases = [
            "fifo:/tmp/x",
            "mq:/jobs",
            "sysv-mq:1234",
            "unix:/tmp/s.sock",
            "unix:@svc",
            "unix-dgram:@d",
            "unix-seqpacket:/tmp/p",
            "tcp:127.0.0.1:7000",
            "tcp:[::1]:7000",
            "udp:localhost:9",
            "shm:/ring",
        ];
        for c in cases {
            let ep = Endpoint::parse(c).unwrap_or_else(|e| panic!("{c}: {e}"));
            assert_eq!(ep.to_string(), c);
        }
        assert_eq!(
            Endpoint::parse("sysv-mq:0x10").unwrap(),
            Endpoint::SysvMq(16)
        );
        assert_eq!(
            Endpoint::parse("tcp:[::1]:80").unwrap(),
            Endpoint::Tcp {
                host: "::1".into(),
                port: 80
            }
        );
    }

    #[test]
    fn rejects_bad_addresses_with_reasons() {
        for (bad, needle) in [
            ("nothing", "no scheme"),
            ("bogus:x", "unknown scheme"),
            ("fifo:", "needs a path"),
            ("mq:jobs", "starts with '/'"),
            ("sysv-mq:zz", "System V key"),
            ("tcp:host", "missing :PORT"),
            ("tcp:::1:80", "brackets"),
            ("tcp:[::1]80", "missing :PORT"),
            ("tcp:h:99999", "invalid port"),
            ("udp::80", "missing host"),
            ("unix:", "empty"),
            ("shm:ring", "starts with '/'"),
        ] {
            let e = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
