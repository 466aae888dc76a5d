//! Messages on seqpacket and datagram sockets: [`ReceivedMessage`], sending and receiving one
//! message with its file descriptors and credentials, and the methods both socket types share.

use std::os::fd::{BorrowedFd, OwnedFd};

use super::connect::peer_credentials;
use super::{check_peer, from_raw_addr, map_send_wait, map_wait, raw_addr};
use crate::socket::fdpass::MAX_FDS;
use crate::socket::{Credentials, SocketError, UnixAddr};
use crate::sys::poll::{WaitError, retry_ready};
use crate::sys::socket as sys;
use crate::trust::Trust;
use crate::wait::Wait;

/// One message received on a datagram or seqpacket socket: its bytes, the file descriptors
/// that came with it, and (datagrams) the sender's credentials and address.
///
/// File descriptors the caller does not take are closed when the message is dropped.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ReceivedMessage {
    /// The payload.
    pub data: Vec<u8>,
    /// File descriptors passed with the message (`SCM_RIGHTS`), close-on-exec.
    pub fds: Vec<OwnedFd>,
    /// The sender's credentials: `SCM_CREDENTIALS` for datagrams, `SO_PEERCRED` of the
    /// connection for seqpacket.
    pub credentials: Option<Credentials>,
    /// The sender's address (datagrams from a bound socket).
    pub from: Option<UnixAddr>,
}

impl ReceivedMessage {
    /// The sender's credentials, if the kernel reported them.
    pub fn credentials(&self) -> Option<Credentials> {
        self.credentials
    }

    /// Takes the file descriptors out (the rest of the message can then be dropped).
    pub fn take_fds(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.fds)
    }
}

fn check_fds(fds: &[BorrowedFd<'_>]) -> Result<(), SocketError> {
    if fds.len() > MAX_FDS {
        return Err(SocketError::TooManyFds {
            count: fds.len(),
            max: MAX_FDS,
        });
    }
    Ok(())
}

/// Sends one message (with fds) on a message socket.
pub(crate) fn send_message(
    fd: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
    to: Option<&UnixAddr>,
    wait: Wait,
) -> Result<(), SocketError> {
    check_fds(fds)?;
    let raw = to.map(raw_addr).transpose()?;
    let res = retry_ready(fd, false, wait, || {
        sys::send_msg(fd, data, fds, raw.as_ref(), true)
    });
    match res {
        Ok(_) => Ok(()),
        Err(WaitError::Io(e)) => Err(match e.raw_os_error() {
            Some(libc::EMSGSIZE) => SocketError::TooLarge {
                len: data.len(),
                max: sys::send_buffer_size(fd).unwrap_or(0).saturating_sub(32),
                what: "the socket's send buffer (SO_SNDBUF) bounds one Unix datagram",
            },
            Some(libc::ENOENT | libc::ECONNREFUSED) if to.is_some() => {
                SocketError::connect(to.map(|a| a.to_string()).unwrap_or_default(), e)
            }
            Some(libc::ECONNREFUSED) => SocketError::PeerGone {
                what: "the peer socket was closed".into(),
            },
            Some(libc::ETOOMANYREFS) => SocketError::TooManyFds {
                count: fds.len(),
                max: MAX_FDS,
            },
            _ => map_send_wait(WaitError::Io(e)),
        }),
        Err(e) => Err(map_send_wait(e)),
    }
}

/// Receives one message (with up to `max_fds` fds) on a message socket. `connected`: a
/// zero-length read with the peer hung up is the end (seqpacket).
pub(crate) fn recv_message(
    fd: BorrowedFd<'_>,
    max_fds: usize,
    connected: bool,
    wait: Wait,
) -> Result<ReceivedMessage, SocketError> {
    let len = retry_ready(fd, true, wait, || sys::peek_len(fd, true))
        .map_err(|e| map_wait(e, || "receiving".into()))?;
    let mut data = vec![0u8; len];
    let r = match sys::recv_msg(fd, &mut data, max_fds, true) {
        Ok(r) => r,
        Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
            return Err(SocketError::PeerGone {
                what: "the peer closed the connection".into(),
            });
        }
        Err(e) => return Err(SocketError::io("recvmsg(2)", e)),
    };
    if r.control_truncated || r.fds.len() > max_fds {
        let received = r.fds.len();
        drop(r);
        return Err(SocketError::ControlTruncated { max_fds, received });
    }
    if connected && r.len == 0 && r.fds.is_empty() {
        let ready =
            crate::sys::poll::poll(fd, true, false, 0).map_err(|e| SocketError::io("poll", e))?;
        if ready.hangup() {
            return Err(SocketError::PeerGone {
                what: "the peer closed the connection".into(),
            });
        }
    }
    data.truncate(r.len);
    Ok(ReceivedMessage {
        data,
        fds: r.fds,
        credentials: r.cred.map(Credentials::from),
        from: r.from.as_ref().and_then(from_raw_addr),
    })
}

/// Receives one message (as [`recv_message`]) and checks its sender: a connected socket's
/// message carries the connection's credentials (`SO_PEERCRED`); `trust` (bound datagram
/// sockets, with the socket's address for the error) refuses a sender it does not permit,
/// after dropping the message and its fds.
pub(crate) fn recv_checked(
    fd: BorrowedFd<'_>,
    max_fds: usize,
    connected: bool,
    trust: Option<(&Trust, Option<&UnixAddr>)>,
    wait: Wait,
) -> Result<ReceivedMessage, SocketError> {
    let mut m = recv_message(fd, max_fds, connected, wait)?;
    if m.credentials.is_none() && connected {
        m.credentials = peer_credentials(fd).ok();
    }
    if let Some((t, addr)) = trust {
        let addr = addr.map(|a| a.to_string()).unwrap_or_default();
        check_peer(t, &addr, m.credentials)?;
    }
    Ok(m)
}

macro_rules! message_ops {
    ($t:ty, $connected:expr) => {
        impl $t {
            /// Sends one message, blocking while the socket is full.
            pub fn send(&self, msg: &[u8]) -> Result<(), SocketError> {
                self.send_wait(msg, Wait::Forever)
            }
            /// Sends one message without blocking ([`SocketError::WouldBlock`] when full).
            pub fn try_send(&self, msg: &[u8]) -> Result<(), SocketError> {
                self.send_wait(msg, Wait::NoWait)
            }
            /// Sends one message, giving up after `timeout`.
            pub fn send_timeout(&self, msg: &[u8], timeout: Duration) -> Result<(), SocketError> {
                self.send_wait(msg, Wait::timeout(timeout))
            }
            /// Sends one message, waiting as `wait` allows.
            pub fn send_wait(&self, msg: &[u8], wait: Wait) -> Result<(), SocketError> {
                send_message(self.fd.as_fd(), msg, &[], None, wait)
            }
            /// Sends one message with file descriptors attached (`SCM_RIGHTS`, at most
            /// [`MAX_FDS`]); see [`crate::socket::fdpass`].
            pub fn send_with_fds(
                &self,
                msg: &[u8],
                fds: &[BorrowedFd<'_>],
            ) -> Result<(), SocketError> {
                self.send_with_fds_wait(msg, fds, Wait::Forever)
            }
            /// Like [`send_with_fds`](Self::send_with_fds), waiting as `wait` allows.
            pub fn send_with_fds_wait(
                &self,
                msg: &[u8],
                fds: &[BorrowedFd<'_>],
                wait: Wait,
            ) -> Result<(), SocketError> {
                send_message(self.fd.as_fd(), msg, fds, None, wait)
            }
            /// Receives one message (with any fds, up to [`MAX_FDS`]), blocking.
            pub fn recv(&self) -> Result<ReceivedMessage, SocketError> {
                self.recv_wait(Wait::Forever)
            }
            /// Receives a waiting message ([`SocketError::WouldBlock`] when none).
            pub fn try_recv(&self) -> Result<ReceivedMessage, SocketError> {
                self.recv_wait(Wait::NoWait)
            }
            /// Receives one message, giving up after `timeout`.
            pub fn recv_timeout(&self, timeout: Duration) -> Result<ReceivedMessage, SocketError> {
                self.recv_wait(Wait::timeout(timeout))
            }
            /// Receives one message, waiting as `wait` allows.
            pub fn recv_wait(&self, wait: Wait) -> Result<ReceivedMessage, SocketError> {
                self.recv_with_max_fds(MAX_FDS, wait)
            }
            /// Receives one message accepting at most `max_fds` descriptors: a message carrying
            /// more is [`SocketError::ControlTruncated`] (and what arrived is closed).
            pub fn recv_with_max_fds(
                &self,
                max_fds: usize,
                wait: Wait,
            ) -> Result<ReceivedMessage, SocketError> {
                recv_checked(
                    self.fd.as_fd(),
                    max_fds,
                    $connected,
                    self.binding.sender_trust(),
                    wait,
                )
            }
        }
    };
}

pub(crate) use message_ops;
