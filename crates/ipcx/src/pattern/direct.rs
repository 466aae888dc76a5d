//! Direct messaging: every process can open its own inbox, addressed by its pid.
//!
//! An [`Inbox`] is a Unix datagram socket bound to the abstract name
//! `@ipcx-inbox-<uid>-<pid>` ([`inbox_addr`]). [`send_to`] reaches the inbox of a process of
//! the same user by pid ([`send_to_user`] names the user too). Every received [`Letter`]
//! carries the sender's pid, uid and gid as the kernel saw them (`SCM_CREDENTIALS`): a sender
//! cannot claim to be someone else (only root may present other credentials).
//!
//! * One message is one datagram: its size is bounded by the sender's socket send buffer
//!   (`SO_SNDBUF`, about 200 KiB by default; [`Outbox::max_message_len`]). Larger is
//!   [`Error::TooLarge`].
//! * A full inbox (its receive queue, bounded by `net.unix.max_dgram_qlen` and the receive
//!   buffer) makes a blocking send wait: delivery is lossless and in order per sender.
//! * No inbox for that pid is [`Error::NotFound`]; when the process
//!   dies its inbox vanishes with it (abstract names have no file, so nothing is left behind).
//! * Abstract socket names ignore file permissions: any process in the same network namespace
//!   may send to an inbox. That is why the receiver gets verified credentials: check
//!   [`Letter::from`] before acting on a letter.
//! * Pids are those of the receiver's pid namespace; a pid can be reused after its process
//!   exits, so an answer to an old pid may reach a newer process of the same user.
//!
//! ```no_run
//! use ipcx::pattern::direct::{Inbox, send_to};
//! let inbox = Inbox::open()?;
//! // ... another process of the same user:
//! send_to(inbox.pid(), b"hello")?;
//! let letter = inbox.recv()?;
//! println!("{} bytes from pid {} uid {}", letter.data.len(), letter.from.pid, letter.from.uid);
//! # Ok::<(), ipcx::pattern::Error>(())
//! ```
//!
//! # References
//! [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html) (abstract names,
//! `SO_PASSCRED`, `SCM_CREDENTIALS`).

use std::time::Duration;

use super::Error;
use crate::channel::{self, Message, MessageReceiver, MessageSender, Meta};
use crate::socket::{Credentials, SocketError, UnixAddr, UnixDatagram};
use crate::wait::Wait;

/// The inbox address of process `pid` of user `uid`: `@ipcx-inbox-<uid>-<pid>`.
pub fn inbox_addr(uid: u32, pid: i32) -> UnixAddr {
    UnixAddr::Abstract(format!("ipcx-inbox-{uid}-{pid}").into_bytes())
}

fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// A message received in an [`Inbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Letter {
    /// The payload.
    pub data: Vec<u8>,
    /// The sender, as verified by the kernel.
    pub from: Credentials,
}

/// This process's inbox: receives what other processes [`send_to`] its pid.
///
/// Only one inbox per process (per user) can be open at a time; opening a second is
/// [`Error::Socket`] with [`SocketError::AddrInUse`]. Dropping it frees the address.
#[derive(Debug)]
pub struct Inbox {
    sock: UnixDatagram,
    pid: i32,
    uid: u32,
}

impl Inbox {
    /// Opens the inbox of this process.
    pub fn open() -> Result<Inbox, Error> {
        let pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
        let uid = my_uid();
        let mut sock = UnixDatagram::bind(&inbox_addr(uid, pid)).map_err(|e| match e {
            SocketError::AddrInUse { addr } => Error::Socket(SocketError::AddrInUse { addr }),
            other => Error::from(other),
        })?;
        // An inbox takes letters from every user: each carries its sender's verified uid.
        sock.set_trust(crate::trust::Trust::any_user());
        Ok(Inbox { sock, pid, uid })
    }

    /// The pid others address this inbox by.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The uid in this inbox's address.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The socket address.
    pub fn addr(&self) -> UnixAddr {
        inbox_addr(self.uid, self.pid)
    }

    /// Receives one letter, blocking.
    pub fn recv(&self) -> Result<Letter, Error> {
        self.recv_wait(Wait::Forever)
    }

    /// Receives a waiting letter: [`Error::WouldBlock`] when none is waiting.
    pub fn try_recv(&self) -> Result<Letter, Error> {
        self.recv_wait(Wait::NoWait)
    }

    /// Receives one letter, giving up with [`Error::Timeout`] after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Letter, Error> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// Receives one letter, waiting as `wait` allows. File descriptors attached by a sender
    /// are closed, not delivered.
    pub fn recv_wait(&self, wait: Wait) -> Result<Letter, Error> {
        loop {
            let m = self.sock.recv_with_max_fds(0, wait);
            let m = match m {
                // A hostile sender attached descriptors: they were closed; skip the message.
                Err(SocketError::ControlTruncated { .. }) => continue,
                other => other?,
            };
            let Some(from) = m.credentials() else {
                // Cannot happen with SO_PASSCRED on; never deliver an unverified message.
                continue;
            };
            return Ok(Letter { data: m.data, from });
        }
    }
}

impl MessageReceiver for Inbox {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, channel::Error> {
        let l = Inbox::recv_wait(self, wait).map_err(to_channel_error)?;
        let mut m = Message::new(l.data);
        m.meta = Meta {
            pid: Some(l.from.pid),
            uid: Some(l.from.uid),
            gid: Some(l.from.gid),
            ..Default::default()
        };
        Ok(m)
    }
}

/// A socket for sending to inboxes; [`send_to`] makes a new one per call, an `Outbox` reuses
/// one.
#[derive(Debug)]
pub struct Outbox {
    sock: UnixDatagram,
}

impl Outbox {
    /// A new, unbound sending socket.
    pub fn new() -> Result<Outbox, Error> {
        Ok(Outbox {
            sock: UnixDatagram::unbound()?,
        })
    }

    /// The largest message this outbox can send.
    pub fn max_message_len(&self) -> Result<usize, Error> {
        Ok(self.sock.max_message_len()?)
    }

    /// Sends `msg` to the inbox of `pid` (same user), blocking while that inbox is full.
    pub fn send_to(&self, pid: i32, msg: &[u8]) -> Result<(), Error> {
        self.send_wait(my_uid(), pid, msg, Wait::Forever)
    }

    /// Sends without blocking: [`Error::Full`] when the inbox is full.
    pub fn try_send_to(&self, pid: i32, msg: &[u8]) -> Result<(), Error> {
        self.send_wait(my_uid(), pid, msg, Wait::NoWait)
    }

    /// Sends, giving up with [`Error::Timeout`] after `timeout`.
    pub fn send_to_timeout(&self, pid: i32, msg: &[u8], timeout: Duration) -> Result<(), Error> {
        self.send_wait(my_uid(), pid, msg, Wait::timeout(timeout))
    }

    /// Sends `msg` to the inbox of process `pid` of user `uid`, waiting as `wait` allows.
    pub fn send_wait(&self, uid: u32, pid: i32, msg: &[u8], wait: Wait) -> Result<(), Error> {
        let addr = inbox_addr(uid, pid);
        match self.sock.send_to_wait(msg, &[], &addr, wait) {
            Ok(()) => Ok(()),
            Err(SocketError::NotFound { .. }) => Err(Error::NotFound {
                what: format!("inbox for pid {pid} (uid {uid}) at {addr}"),
                hint: "that process has not opened its inbox (Inbox::open) or has exited".into(),
            }),
            Err(SocketError::WouldBlock) => Err(Error::Full {
                what: format!("the inbox of pid {pid}"),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

/// Sends `msg` to the inbox of `pid` (same user), blocking while it is full.
pub fn send_to(pid: i32, msg: &[u8]) -> Result<(), Error> {
    Outbox::new()?.send_to(pid, msg)
}

/// Sends `msg` to the inbox of process `pid` of user `uid`, waiting as `wait` allows.
pub fn send_to_user(uid: u32, pid: i32, msg: &[u8], wait: Wait) -> Result<(), Error> {
    Outbox::new()?.send_wait(uid, pid, msg, wait)
}

/// A [`MessageSender`] bound to one destination inbox.
#[derive(Debug)]
pub struct InboxSender {
    out: Outbox,
    uid: u32,
    pid: i32,
}

impl InboxSender {
    /// Sends to the inbox of `pid` of the current user.
    pub fn new(pid: i32) -> Result<InboxSender, Error> {
        Ok(InboxSender {
            out: Outbox::new()?,
            uid: my_uid(),
            pid,
        })
    }
}

impl MessageSender for InboxSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), channel::Error> {
        self.out
            .send_wait(self.uid, self.pid, msg, wait)
            .map_err(to_channel_error)
    }
    fn max_message_len(&self) -> Option<usize> {
        self.out.max_message_len().ok()
    }
}

/// Maps a pattern error onto the channel layer's error.
pub(crate) fn to_channel_error(e: Error) -> channel::Error {
    match e {
        Error::Timeout => channel::Error::Timeout,
        Error::WouldBlock => channel::Error::WouldBlock,
        Error::Full { what } => channel::Error::Full { what },
        Error::TooLarge { len, max, what } => channel::Error::TooLarge { len, max, what },
        Error::PeerGone { what } => channel::Error::PeerGone { what },
        Error::NotFound { what, hint } => channel::Error::NotFound { what, hint },
        other => channel::Error::Io {
            context: "pattern".into(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}
