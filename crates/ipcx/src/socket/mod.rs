//! Sockets: Unix domain (stream, datagram, seqpacket; paths and abstract names), TCP and UDP;
//! peer credentials and file-descriptor passing.
//!
//! | type | kind | messages | peer identity |
//! |---|---|---|---|
//! | [`UnixListener`] / [`UnixStream`] | Unix stream | framed ([`crate::framing`]) or raw bytes | [`Credentials`] (`SO_PEERCRED`) |
//! | [`UnixSeqpacketListener`] / [`UnixSeqpacket`] | Unix seqpacket | native | [`Credentials`] (`SO_PEERCRED`) |
//! | [`UnixDatagram`] | Unix datagram | native | [`Credentials`] per datagram (`SCM_CREDENTIALS`) |
//! | [`TcpListener`] / [`TcpStream`] | TCP, `TCP_NODELAY` | framed or raw bytes | address |
//! | [`UdpSocket`] | UDP | native | address |
//!
//! Every Unix socket passes file descriptors: see [`fdpass`], ipcx's way of handing a process
//! the right to use an object (an open file, a sealed memfd) without any other access.
//!
//! Binding a Unix path reclaims a stale socket file, refuses a live one
//! ([`SocketError::AddrInUse`]) and never touches a non-socket or follows a symlink; socket files
//! get mode `0o600` and are removed by the socket that created them: see [`unix`].
//!
//! Every blocking call comes as `op()`, `try_op()` and `op_timeout()`; every fd is close-on-exec.
//! With the `tokio` feature, [`tokio`](mod@self::tokio) has async versions.

use std::fmt;
use std::path::PathBuf;

pub mod cred;
mod error;
pub mod fdpass;
pub mod inet;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod unix;

pub use cred::Credentials;
pub use error::SocketError;
pub use fdpass::{MAX_FDS, ReceivedFds};
pub use inet::{MAX_UDP_PAYLOAD_V4, MAX_UDP_PAYLOAD_V6, TcpListener, TcpStream, UdpSocket};
pub use unix::{
    ReceivedMessage, UnixDatagram, UnixListener, UnixSeqpacket, UnixSeqpacketListener, UnixStream,
    remove_socket_file,
};

/// A Unix socket address: a filesystem path or an abstract name (`@name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    /// A socket file at this path.
    Path(PathBuf),
    /// An abstract name (Linux): no file; the name vanishes with the last socket bound to it.
    Abstract(Vec<u8>),
}

/// Longest Unix socket path (`sun_path` holds 108 bytes including the NUL).
pub const UNIX_PATH_MAX: usize = 107;

impl UnixAddr {
    /// Parses `PATH` or `@NAME`.
    pub fn parse(s: &str) -> Result<UnixAddr, &'static str> {
        if let Some(name) = s.strip_prefix('@') {
            if name.is_empty() {
                return Err("empty abstract name: use @NAME, as in unix:@svc");
            }
            if name.len() > UNIX_PATH_MAX - 1 {
                return Err("abstract name longer than 106 bytes; shorten it");
            }
            return Ok(UnixAddr::Abstract(name.as_bytes().to_vec()));
        }
        if s.is_empty() {
            return Err("empty socket path: use a path such as /tmp/svc.sock or @NAME");
        }
        if s.contains('\0') {
            return Err("the socket path contains a NUL byte");
        }
        if s.len() > UNIX_PATH_MAX {
            return Err(
                "socket path longer than 107 bytes (the sun_path limit); use a shorter path or an @abstract name",
            );
        }
        Ok(UnixAddr::Path(PathBuf::from(s)))
    }
}

impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddr::Path(p) => write!(f, "{}", p.display()),
            UnixAddr::Abstract(n) => write!(f, "@{}", String::from_utf8_lossy(n)),
        }
    }
}
