//! Peer credentials: who is on the other end of a Unix socket, as verified by the kernel.
//!
//! * Connected sockets (stream, seqpacket): `SO_PEERCRED`, captured by the kernel when the
//!   connection was made (`connect(2)` / `listen(2)` time): see
//!   [`UnixStream::peer_credentials`](super::UnixStream::peer_credentials).
//! * Datagram sockets: every datagram carries the sender's credentials as `SCM_CREDENTIALS`
//!   because ipcx turns `SO_PASSCRED` on for every bound datagram socket: see
//!   [`ReceivedMessage::credentials`](super::ReceivedMessage::credentials).
//!
//! A process can only present its own pid, uid and gid (root may present others): the
//! kernel checks what a sender claims.
//!
//! # References
//! [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html) (`SO_PEERCRED`,
//! `SO_PASSCRED`, `SCM_CREDENTIALS`).

use crate::sys::socket::RawCred;

/// A peer's process id, user id and group id, verified by the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[doc(alias = "ucred")]
pub struct Credentials {
    /// Process id (in the receiver's pid namespace).
    pub pid: i32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
}

impl From<RawCred> for Credentials {
    fn from(c: RawCred) -> Credentials {
        Credentials {
            pid: c.pid,
            uid: c.uid,
            gid: c.gid,
        }
    }
}
