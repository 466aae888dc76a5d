//! One error vocabulary for channels, transports and the patterns above them.

use std::fmt;
use std::io;

use super::CodecError;
use crate::framing::FrameError;
use crate::name::InvalidName;
use crate::socket::SocketError;

/// Why a channel, transport or pattern operation failed. Each message says what to do about
/// it.
///
/// The one vocabulary of everything above the mechanisms: the channel layer, the transports
/// and the patterns ([`crate::pattern::Error`] is this type) report the same cases under the
/// same names; the variants after [`Error::AcceptPaused`] are the ones only connections and
/// patterns raise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address does not parse.
    #[error("invalid address {addr:?}: {reason}")]
    InvalidAddress {
        /// The address given.
        addr: String,
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
    #[error("nothing waiting: retry later, or use a blocking call")]
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
    /// A typed message could not be encoded or decoded: empty, an unknown codec tag, or a
    /// value its codec rejects ([`CodecError`] says which). A receiver goes on.
    #[error(transparent)]
    Codec(#[from] CodecError),
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
    /// A peer sent bytes that are not a valid message of this protocol (malformed, hostile or
    /// from another protocol). The connection it came on was dropped.
    #[error("protocol error from {peer}: {reason}")]
    Protocol {
        /// The peer.
        peer: String,
        /// What was wrong.
        reason: String,
    },
    /// Work is outstanding but no worker has been connected for the grace period
    /// ([`crate::pattern::pushpull`]): start a worker (the tasks stay queued).
    #[error("{outstanding} task(s) outstanding and no worker connected: start a worker")]
    NoWorkers {
        /// Tasks submitted and not answered.
        outstanding: usize,
    },
    /// The TLS handshake failed or the TLS session broke (untrusted certificate, a client
    /// certificate required but missing, a corrupted record...).
    #[error("TLS with {peer} failed: {reason}")]
    Tls {
        /// The peer.
        peer: String,
        /// What went wrong and what to do.
        reason: String,
    },
    /// This end was shut down (its background threads stopped).
    #[error("{what} is closed")]
    Closed {
        /// What was closed.
        what: String,
    },
    /// A socket failure not covered above (address in use, permission denied...).
    #[error(transparent)]
    Socket(SocketError),
    /// A POSIX message queue could not be opened or created.
    #[error(transparent)]
    Queue(#[from] crate::mq::OpenError),
    /// A shared-memory ring failure not covered above (already exists, permission denied,
    /// another live publisher, no free participant place, corrupt segment...).
    #[error(transparent)]
    Ring(crate::ring::RingError),
}

impl Error {
    /// Whether this is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
    }

    /// Whether the peer is gone (closed, died, or the object was closed).
    pub fn is_peer_gone(&self) -> bool {
        matches!(self, Error::PeerGone { .. } | Error::Closed { .. })
    }

    pub(crate) fn protocol(peer: impl fmt::Display, reason: impl Into<String>) -> Error {
        Error::Protocol {
            peer: peer.to_string(),
            reason: reason.into(),
        }
    }

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

/// A socket failure on a connection ([`crate::channel::Connection`], the patterns): the cases
/// callers act on by name, the rest as [`Error::Socket`]. A stream that ends inside a frame
/// is the peer going away.
impl From<SocketError> for Error {
    fn from(e: SocketError) -> Error {
        match e {
            SocketError::Timeout => Error::Timeout,
            SocketError::WouldBlock => Error::WouldBlock,
            SocketError::PeerGone { what } => Error::PeerGone { what },
            SocketError::NotFound { addr, hint } => Error::NotFound {
                what: format!("listener at {addr}"),
                hint: hint.into(),
            },
            SocketError::TooLarge { len, max, what } => Error::TooLarge {
                len,
                max,
                what: what.into(),
            },
            SocketError::Frame(FrameError::TooLarge { len, max }) => Error::TooLarge {
                len: usize::try_from(len).unwrap_or(usize::MAX),
                max,
                what: "the connection's maximum frame length".into(),
            },
            SocketError::Frame(FrameError::Truncated { .. }) => Error::PeerGone {
                what: "the peer closed the connection in the middle of a message".into(),
            },
            other => Error::Socket(other),
        }
    }
}
