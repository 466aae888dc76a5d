//! Unix domain sockets: stream, datagram and seqpacket, on paths or abstract names.
//!
//! # Socket files
//! Binding a path ([`UnixListener::bind`], [`UnixSeqpacketListener::bind`],
//! [`UnixDatagram::bind`]):
//! * an absent path is created;
//! * a **stale** socket file (nothing is bound behind it: a probe connect gets
//!   `ECONNREFUSED`) of our own user is removed and the path reused; another user's is
//!   [`SocketError::ForeignSocketFile`] and is left untouched (never ours to remove);
//! * a socket file of a **live** socket is [`SocketError::AddrInUse`];
//! * anything else (regular file, directory, symbolic link: symlinks are never followed) is
//!   [`SocketError::NotASocket`] and is left untouched.
//!
//! **Mode.** The socket file gets mode `0o600` by default (`bind_with_mode` for others).
//! `bind(2)` creates the file under the process umask and there is no `fchmod` for it, so ipcx
//! binds, then changes the mode of exactly the bound inode (opened with
//! `O_PATH | O_NOFOLLOW`, checked to be a socket, changed through `/proc/self/fd`), and only then
//! calls `listen(2)`: nobody can connect to a stream or seqpacket socket before its mode is
//! final (connecting to a bound socket that does not listen yet is refused). A bound datagram
//! socket can receive during the few microseconds between `bind` and the mode change when the
//! umask lets others write; every datagram carries its sender's credentials, so a receiver that
//! cares can check them.
//!
//! **Removal.** The socket that created the file removes it on drop, only if the path still
//! holds the same inode (dev, ino) it created; [`UnixListener::persist`] keeps it.
//!
//! Abstract names (`@name`) have no file, no mode (anyone in the network namespace may
//! connect) and vanish with the socket.
//!
//! # Whom a socket accepts: the same-user rule
//! Every bound socket ([`UnixListener`], [`UnixSeqpacketListener`], a bound [`UnixDatagram`])
//! checks the kernel-verified uid of each peer (`SO_PEERCRED` at accept, `SCM_CREDENTIALS` per
//! datagram) against its [`Trust`]: by default only the socket's own effective uid. A
//! connection from another user is closed at accept, a datagram from another user discarded,
//! and the call returns [`SocketError::ForeignPeer`] naming the peer (call again to go on).
//! This is the only protection an abstract name has, and it applies to paths too (a socket
//! file's mode is a second fence). Widen it with `set_trust` ([`Trust::allow_uid`],
//! [`Trust::any_user`]).
//!
//! # References
//! [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html),
//! [bind(2)](https://man7.org/linux/man-pages/man2/bind.2.html).
//!
//! One file a concept (private modules): socket files and binding (`file`), connecting and
//! accepting (`connect`), listeners, streams, messages (shared by seqpacket and datagram
//! sockets), seqpacket and datagram sockets.

use std::path::PathBuf;

use super::UnixAddr;
use super::cred::Credentials;
use super::error::SocketError;
use crate::sys::poll::WaitError;
use crate::sys::socket::{self as sys, RawUnixAddr};
use crate::trust::Trust;

/// `AsFd`, `AsRawFd` and `Into<OwnedFd>` for a socket type with an `fd: OwnedFd` field.
macro_rules! fd_traits {
    ($t:ty) => {
        $crate::sys::fd_of_field!($t, fd);
        impl From<$t> for std::os::fd::OwnedFd {
            fn from(s: $t) -> std::os::fd::OwnedFd {
                s.fd
            }
        }
    };
}

mod connect;
mod datagram;
mod file;
mod listener;
mod message;
mod seqpacket;
mod stream;

#[cfg(feature = "tokio")]
pub(crate) use connect::peer_credentials;
#[cfg(feature = "tokio")]
pub(crate) use datagram::Binding;
pub use datagram::UnixDatagram;
pub use file::{DEFAULT_MODE, remove_socket_file};
#[cfg(feature = "tokio")]
pub(crate) use listener::{Bound, bound_methods};
pub use listener::{UnixListener, UnixSeqpacketListener};
pub use message::ReceivedMessage;
#[cfg(feature = "tokio")]
pub(crate) use message::recv_checked;
pub(crate) use message::{recv_message, send_message};
pub use seqpacket::UnixSeqpacket;
pub use stream::UnixStream;
pub(crate) use stream::send_stream_frame;

/// The kernel form of a Unix address.
pub(crate) fn raw_addr(addr: &UnixAddr) -> Result<RawUnixAddr, SocketError> {
    let r = match addr {
        UnixAddr::Path(p) => sys::unix_path_addr(p),
        UnixAddr::Abstract(n) => sys::unix_abstract_addr(n),
    };
    r.map_err(|e| SocketError::InvalidAddress {
        addr: addr.to_string(),
        reason: e.to_string(),
    })
}

/// A Unix address from its kernel form (`None` for an unnamed socket).
pub(crate) fn from_raw_addr(a: &RawUnixAddr) -> Option<UnixAddr> {
    match sys::unix_addr_parts(a) {
        sys::UnixAddrParts::Path(p) => Some(UnixAddr::Path(PathBuf::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(p),
        ))),
        sys::UnixAddrParts::Abstract(n) => Some(UnixAddr::Abstract(n.to_vec())),
        sys::UnixAddrParts::Unnamed => None,
    }
}

/// A failed wait on a socket, with what was being done.
fn map_wait(e: WaitError, context: impl FnOnce() -> String) -> SocketError {
    match e {
        WaitError::WouldBlock => SocketError::WouldBlock,
        WaitError::Timeout => SocketError::Timeout,
        WaitError::Io(e) => SocketError::io(context(), e),
    }
}

/// `Ok` when `trust` permits the peer with credentials `cred`; a peer without credentials is
/// trusted only by [`Trust::any_user`].
fn check_peer(trust: &Trust, addr: &str, cred: Option<Credentials>) -> Result<(), SocketError> {
    if trust.allows_any() {
        return Ok(());
    }
    match cred {
        Some(c) if trust.permits(c.uid) => Ok(()),
        _ => Err(SocketError::ForeignPeer {
            addr: addr.to_owned(),
            pid: cred.map_or(0, |c| c.pid),
            uid: cred.map_or(u32::MAX, |c| c.uid),
            euid: crate::trust::euid(),
        }),
    }
}

/// A failed send on a connected socket: a closed peer is `PeerGone`.
fn map_send_wait(e: WaitError) -> SocketError {
    match e {
        WaitError::Io(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN)
            ) =>
        {
            SocketError::PeerGone {
                what: format!("the peer closed the connection ({e})"),
            }
        }
        other => map_wait(other, || "sending".into()),
    }
}
