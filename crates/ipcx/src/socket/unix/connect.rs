//! Connecting to a Unix socket, accepting a connection (with the same-user rule), and the
//! peer's credentials.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::{check_peer, map_wait, raw_addr};
use crate::socket::{Credentials, SocketError, UnixAddr};
use crate::sys::poll::retry_ready;
use crate::sys::socket::{self as sys, UnixType};
use crate::trust::Trust;
use crate::wait::Wait;

/// Maps a connect(2) failure on `addr`: a refused connection to a path that is not a socket
/// at all (a regular file: it will never listen) is [`SocketError::NotASocket`], not the
/// "nothing listens yet" of a missing or stale socket.
pub(crate) fn connect_failed(addr: &UnixAddr, e: io::Error) -> SocketError {
    if let UnixAddr::Path(p) = addr
        && matches!(e.raw_os_error(), Some(libc::ECONNREFUSED | libc::ENOTSOCK))
        && sys::stat_is_socket(p).ok() == Some(Some(false))
    {
        return SocketError::NotASocket {
            addr: addr.to_string(),
            what: "not a socket, so nothing can ever listen there",
        };
    }
    SocketError::connect(addr.to_string(), e)
}

/// Connects a socket of `kind` to `addr`, waiting as `wait` allows for a full backlog (the
/// peer must exist: a missing one is [`SocketError::NotFound`] at once).
pub(crate) fn connect_socket(
    kind: UnixType,
    addr: &UnixAddr,
    wait: Wait,
) -> Result<OwnedFd, SocketError> {
    let raw = raw_addr(addr)?;
    if wait == Wait::Forever {
        let fd = sys::unix_socket(kind, false).map_err(|e| SocketError::io("socket(2)", e))?;
        sys::connect_unix(fd.as_fd(), &raw).map_err(|e| connect_failed(addr, e))?;
        return Ok(fd);
    }
    // Non-blocking: a Unix connect to a full backlog fails with EAGAIN (no EINPROGRESS), and
    // there is nothing to poll for, so retry with a short back-off until the deadline.
    let fd = sys::unix_socket(kind, true).map_err(|e| SocketError::io("socket(2)", e))?;
    let mut pause = Duration::from_millis(1);
    loop {
        match sys::connect_unix(fd.as_fd(), &raw) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if wait == Wait::NoWait {
                    return Err(SocketError::WouldBlock);
                }
                match wait.remaining() {
                    Some(left) if left.is_zero() => return Err(SocketError::Timeout),
                    Some(left) => std::thread::sleep(pause.min(left)),
                    None => std::thread::sleep(pause),
                }
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(connect_failed(addr, e)),
        }
    }
    sys::set_nonblocking(fd.as_fd(), false).map_err(|e| SocketError::io("fcntl", e))?;
    Ok(fd)
}

pub(crate) fn accept_on(
    fd: BorrowedFd<'_>,
    wait: Wait,
    name: &str,
    trust: &Trust,
) -> Result<(OwnedFd, Credentials), SocketError> {
    let conn = retry_ready(fd, true, wait, || sys::accept(fd))
        .map_err(|e| map_wait(e, || format!("accepting on {name}")))?;
    let cred: Credentials = sys::peer_cred(conn.as_fd())
        .map_err(|e| SocketError::io("getsockopt(SO_PEERCRED)", e))?
        .into();
    check_peer(trust, name, Some(cred))?;
    Ok((conn, cred))
}

/// The credentials of the peer of a connected socket (`SO_PEERCRED`).
pub(crate) fn peer_credentials(fd: BorrowedFd<'_>) -> Result<Credentials, SocketError> {
    sys::peer_cred(fd)
        .map(Credentials::from)
        .map_err(|e| SocketError::io("getsockopt(SO_PEERCRED)", e))
}
