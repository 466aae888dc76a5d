//! The socket error type.

use std::io;

use crate::framing::{FrameError, FramedError};

/// Why a socket operation failed. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SocketError {
    /// Another live socket is bound to the address.
    #[error(
        "address {addr} is in use by a live socket: stop the other program, or pick another address"
    )]
    AddrInUse {
        /// The address.
        addr: String,
    },
    /// Something other than a socket (a regular file, directory, symlink...) is at the path;
    /// it was left untouched.
    #[error(
        "{addr} exists and is not a socket ({what}); it was left untouched: remove it yourself or choose another path"
    )]
    NotASocket {
        /// The path.
        addr: String,
        /// What is there.
        what: &'static str,
    },
    /// Nothing is bound at the address (no socket file, or no listener behind it).
    #[error("no listener at {addr}: {hint}")]
    NotFound {
        /// The address.
        addr: String,
        /// What to do.
        hint: &'static str,
    },
    /// The caller may not use the address (socket file mode, directory permissions).
    #[error("permission denied on {addr}: check the socket file's owner and mode")]
    PermissionDenied {
        /// The address.
        addr: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The address is not valid.
    #[error("invalid address {addr:?}: {reason}")]
    InvalidAddress {
        /// The address given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The message is larger than the socket can carry.
    #[error("message of {len} bytes is too large: at most {max} bytes fit ({what})")]
    TooLarge {
        /// The message length.
        len: usize,
        /// The limit.
        max: usize,
        /// Whose limit.
        what: &'static str,
    },
    /// More than [`MAX_FDS`](super::fdpass::MAX_FDS) descriptors in one message.
    #[error(
        "{count} file descriptors in one message; the kernel takes at most {max} (SCM_MAX_FD): split them over several messages"
    )]
    TooManyFds {
        /// Descriptors given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The peer sent more descriptors (or control data) than the receive buffer had room for:
    /// the kernel dropped the rest (`MSG_CTRUNC`). The descriptors that did arrive were closed.
    #[error(
        "control data truncated: the peer sent more file descriptors than the {max_fds} this receive accepts ({received} arrived and were closed); receive with room for more"
    )]
    ControlTruncated {
        /// Descriptors the receive had room for.
        max_fds: usize,
        /// Descriptors that arrived (and were closed).
        received: usize,
    },
    /// A datagram was longer than the buffer and was cut (`MSG_TRUNC`).
    #[error("message of {len} bytes did not fit the {buf} byte buffer; the rest was discarded")]
    Truncated {
        /// The message length.
        len: usize,
        /// The buffer length.
        buf: usize,
    },
    /// A non-blocking operation could not proceed now.
    #[error("the socket is not ready: retry later, or use the blocking call")]
    WouldBlock,
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
    /// The peer closed the connection or died.
    #[error("peer gone: {what}")]
    PeerGone {
        /// What ended.
        what: String,
    },
    /// A framing error on a byte stream (oversize frame, truncated frame).
    #[error(transparent)]
    Frame(FrameError),
    /// A peer of a user this socket does not trust connected, or sent a datagram: the
    /// connection was closed, the datagram discarded (see [`crate::trust`]). Receiving or
    /// accepting again goes on with the next peer.
    #[error(
        "refused a peer on {addr}: pid {pid} runs as uid {uid}, which is not trusted (we are uid {euid}); trust it explicitly with --allow-uid {uid} (Trust::allow_uid) or --allow-any-uid"
    )]
    ForeignPeer {
        /// The socket's address.
        addr: String,
        /// The peer's pid (0 when the kernel did not say).
        pid: i32,
        /// The peer's uid (`u32::MAX` when the kernel did not say).
        uid: u32,
        /// Our effective uid.
        euid: u32,
    },
    /// A stale socket file (nothing listens behind it) of another user is at the path: it is
    /// not ours to remove, and was left untouched.
    #[error(
        "{addr} is a stale socket file of uid {owner}, not ours (uid {euid}); it was left untouched: have its owner remove it, or pick another path"
    )]
    ForeignSocketFile {
        /// The path.
        addr: String,
        /// The file's owner.
        owner: u32,
        /// Our effective uid.
        euid: u32,
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
}

impl SocketError {
    /// Wraps an OS error from an operation on `addr`, mapping the cases callers act on.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> SocketError {
        let context = context.into();
        match source.raw_os_error() {
            Some(libc::EAGAIN) => SocketError::WouldBlock,
            Some(libc::EACCES | libc::EPERM) => SocketError::PermissionDenied {
                addr: context,
                source,
            },
            Some(libc::ETIMEDOUT) => SocketError::Timeout,
            Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN) => SocketError::PeerGone {
                what: format!("{context}: {source}"),
            },
            _ => SocketError::Io { context, source },
        }
    }

    /// Maps a connect(2) failure on `addr`.
    pub(crate) fn connect(addr: impl Into<String>, source: io::Error) -> SocketError {
        let addr = addr.into();
        match source.raw_os_error() {
            Some(libc::ENOENT) => SocketError::NotFound {
                addr,
                hint: "no socket file there: start the receiver first",
            },
            Some(libc::ECONNREFUSED) => SocketError::NotFound {
                addr,
                hint: "nothing is listening (connection refused): start the receiver first",
            },
            Some(libc::ENOTSOCK) => SocketError::NotASocket {
                addr,
                what: "not a socket",
            },
            Some(libc::EPROTOTYPE) => SocketError::Io {
                context: format!(
                    "connecting to {addr}: the socket there is of another kind (stream, datagram or seqpacket)"
                ),
                source,
            },
            _ => SocketError::io(format!("connecting to {addr}"), source),
        }
    }

    /// Whether this is the timeout of a `_timeout` call.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SocketError::Timeout)
    }

    /// Whether the peer closed or died.
    pub fn is_peer_gone(&self) -> bool {
        matches!(self, SocketError::PeerGone { .. })
    }
}

impl From<FrameError> for SocketError {
    fn from(e: FrameError) -> SocketError {
        match e {
            FrameError::Io(source) => SocketError::io("stream I/O", source),
            other => SocketError::Frame(other),
        }
    }
}

impl FramedError for SocketError {
    fn would_block() -> SocketError {
        SocketError::WouldBlock
    }
    fn timeout() -> SocketError {
        SocketError::Timeout
    }
    fn peer_gone(what: String) -> SocketError {
        SocketError::PeerGone { what }
    }
    fn io(context: &'static str, source: io::Error) -> SocketError {
        SocketError::io(context, source)
    }
}

impl From<SocketError> for io::Error {
    fn from(e: SocketError) -> io::Error {
        let kind = match &e {
            SocketError::WouldBlock => io::ErrorKind::WouldBlock,
            SocketError::Timeout => io::ErrorKind::TimedOut,
            SocketError::PeerGone { .. } => io::ErrorKind::BrokenPipe,
            SocketError::NotFound { .. } => io::ErrorKind::NotFound,
            SocketError::AddrInUse { .. } => io::ErrorKind::AddrInUse,
            SocketError::PermissionDenied { .. } => io::ErrorKind::PermissionDenied,
            SocketError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}
