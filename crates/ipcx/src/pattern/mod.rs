//! Messaging patterns built on the channel and socket layers.
//!
//! | pattern | module | shape | transport |
//! |---|---|---|---|
//! | direct messaging | [`direct`] | 1:1, addressed by pid | abstract Unix datagram `@ipcx-inbox-<uid>-<pid>` |
//! | mailbox | [`mailbox`] | N:M, each message to exactly one receiver | POSIX message queue (`/NAME`, `mq:/NAME`) or shared-memory work queue (`shm:/NAME`) |
//! | publish/subscribe | [`pubsub`] | 1:M (N:M with several publishers), topic prefixes | Unix stream sockets or TCP, fan-out; or natively over shared-memory rings (`shm:/NAME`, one ring per publisher) |
//! | request/reply | [`reqrep`] | many clients, many servers, request ids, deadlines | Unix stream sockets, TCP or shared-memory rings |
//! | push/pull | [`pushpull`] | work distribution with credits and redelivery | Unix stream sockets or TCP |
//!
//! Every pattern reports failures through one [`Error`] enum, and every blocking call comes as
//! `op()`, `try_op()` and `op_timeout()` like the rest of ipcx.
//!
//! # Transports
//! The patterns that own their transport end (direct messaging, mailbox) also implement
//! [`MessageSender`](crate::channel::MessageSender) /
//! [`MessageReceiver`](crate::channel::MessageReceiver), so they can be used wherever a channel
//! can. The connection-oriented patterns (pub/sub, request/reply, push/pull) move their frames
//! through the small [`Link`] abstraction (a framed, bidirectional connection that can be split
//! into a reading and a writing half); a new transport plugs in by implementing [`Link`] for its
//! connection type, as the shared-memory ring does ([`shmlink`], addresses `shm:/NAME`).
//!
//! Mailboxes and pub/sub use the shared-memory ring directly instead ([`crate::ring`]): the
//! address picks the transport and the API stays the same. A ring mailbox is a work queue
//! ([`crate::ring::Producer`]/[`crate::ring::Consumer`]); ring pub/sub is one broadcast ring
//! ([`crate::ring::Publisher`]/[`crate::ring::Subscriber`]) that every subscriber reads through
//! its own cursor, with no copy per subscriber in the publisher. Each module's docs list what
//! differs between the transports.

use std::fmt;
use std::io;

use crate::socket::SocketError;
use crate::wait::Wait;

pub mod direct;
pub mod link;
pub mod mailbox;
pub mod pubsub;
pub mod pushpull;
pub mod reqrep;
pub mod shmlink;
#[cfg(feature = "tls")]
pub mod tls;

pub use link::{Link, LinkAddr, LinkListener};

/// Why a pattern operation failed. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address or name is not valid.
    #[error("invalid address {addr:?}: {reason}")]
    InvalidAddress {
        /// The address given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Nobody is there: no inbox for that pid, no queue of that name, no listener.
    #[error("no {what}: {hint}")]
    NotFound {
        /// What was looked for.
        what: String,
        /// What to do.
        hint: String,
    },
    /// The message is larger than the transport carries.
    #[error("message of {len} bytes is too large for {what}, which takes at most {max} bytes")]
    TooLarge {
        /// The message length.
        len: usize,
        /// The limit.
        max: usize,
        /// Whose limit.
        what: String,
    },
    /// A non-blocking send found no room.
    #[error("{what} is full: retry later, or use a blocking send")]
    Full {
        /// What is full.
        what: String,
    },
    /// A non-blocking receive found nothing waiting.
    #[error("nothing waiting: retry later, or use a blocking call")]
    WouldBlock,
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
    /// The peer closed the connection or died.
    #[error("peer gone: {what}")]
    PeerGone {
        /// Which peer.
        what: String,
    },
    /// A peer sent bytes that are not a valid message of this pattern (malformed, hostile or
    /// from another protocol). The connection it came on was dropped.
    #[error("protocol error from {peer}: {reason}")]
    Protocol {
        /// The peer.
        peer: String,
        /// What was wrong.
        reason: String,
    },
    /// Work is outstanding but no worker has been connected for the grace period
    /// ([`pushpull`]): start a worker (the tasks stay queued).
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
    Ring(crate::ring::Error),
    /// The operation is not available on this transport (for example message priorities on
    /// a ring mailbox).
    #[error("{what} is not supported over {transport}")]
    Unsupported {
        /// The operation.
        what: String,
        /// The transport.
        transport: String,
    },
    /// Any other OS failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
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
}

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
            SocketError::Frame(crate::framing::FrameError::TooLarge { len, max }) => {
                Error::TooLarge {
                    len: usize::try_from(len).unwrap_or(usize::MAX),
                    max,
                    what: "the connection's maximum frame length".into(),
                }
            }
            SocketError::Frame(crate::framing::FrameError::Truncated { .. }) => Error::PeerGone {
                what: "the peer closed the connection in the middle of a message".into(),
            },
            other => Error::Socket(other),
        }
    }
}

/// Maps a ring error onto the pattern's named cases; `what` names the object (`mailbox
/// shm:/jobs`), `hint` says what to do when it is missing.
pub(crate) fn ring_error(e: crate::ring::Error, what: &str, hint: &str) -> Error {
    use crate::ring::Error as R;
    match e {
        R::Timeout => Error::Timeout,
        R::Empty => Error::WouldBlock,
        R::Full => Error::Full { what: what.into() },
        R::TooLarge { len, max } => Error::TooLarge {
            len,
            max,
            what: format!("{what} (its max message size)"),
        },
        R::PeerGone { what } => Error::PeerGone { what },
        R::NotFound { .. } => Error::NotFound {
            what: what.into(),
            hint: hint.into(),
        },
        R::InvalidName(e) => Error::InvalidAddress {
            addr: what.into(),
            reason: e.to_string(),
        },
        other => Error::Ring(other),
    }
}

/// Waits on a std mpsc receiver as `wait` allows.
pub(crate) fn recv_mpsc<T>(
    rx: &std::sync::mpsc::Receiver<T>,
    wait: Wait,
    what: &str,
) -> Result<T, Error> {
    use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
    let closed = || Error::Closed { what: what.into() };
    match wait {
        Wait::Forever => rx.recv().map_err(|_| closed()),
        Wait::NoWait => rx.try_recv().map_err(|e| match e {
            TryRecvError::Empty => Error::WouldBlock,
            TryRecvError::Disconnected => closed(),
        }),
        Wait::Until(_) => {
            let left = wait.remaining().unwrap_or_default();
            rx.recv_timeout(left).map_err(|e| match e {
                RecvTimeoutError::Timeout => Error::Timeout,
                RecvTimeoutError::Disconnected => closed(),
            })
        }
    }
}
