//! [`MessageQueue`]: an open POSIX message queue.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

#[cfg(feature = "tokio")]
use super::AsyncMessageQueue;
use super::core::{Core, Link, still_linked};
use super::error::open_error;
use super::{OpenError, OpenOptions, RecvError, SendError};
use crate::name::PosixName;
use crate::registry::Ownership;
use crate::sys::mq as sys;
use crate::wait::Wait;

/// A queue's attributes, as `mq_getattr` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attributes {
    /// Capacity in messages (`mq_maxmsg`).
    pub max_messages: usize,
    /// Largest message in bytes (`mq_msgsize`).
    pub max_message_size: usize,
    /// Messages currently queued (`mq_curmsgs`).
    pub current_messages: usize,
    /// Whether this handle's descriptor is non-blocking (`O_NONBLOCK`).
    pub nonblocking: bool,
}

pub(super) fn attributes(fd: BorrowedFd<'_>) -> io::Result<Attributes> {
    let a = sys::mq_getattr(fd)?;
    Ok(Attributes {
        max_messages: a.maxmsg.max(0) as usize,
        max_message_size: a.msgsize.max(0) as usize,
        current_messages: a.curmsgs.max(0) as usize,
        nonblocking: a.flags & i64::from(libc::O_NONBLOCK) != 0,
    })
}

/// An open POSIX message queue.
///
/// The handle is `Send + Sync`: several threads may send and receive through one handle.
pub struct MessageQueue {
    /// Always `Some`, except inside the methods that take the handle apart.
    pub(super) fd: Option<OwnedFd>,
    pub(super) core: Core,
}

impl fmt::Debug for MessageQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageQueue")
            .field("fd", &self.fd().as_raw_fd())
            .field("name", &self.core.link.name)
            .field("owner", &self.core.link.ownership.is_owner())
            .field("msgsize", &self.core.msgsize)
            .finish()
    }
}

impl MessageQueue {
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd
            .as_ref()
            .expect("the descriptor is taken only by methods that consume the handle")
            .as_fd()
    }

    /// Takes the handle apart: its descriptor and everything else, leaving an empty handle
    /// that does nothing when dropped.
    pub(super) fn take_apart(&mut self) -> (OwnedFd, Core) {
        let fd = self
            .fd
            .take()
            .expect("the descriptor is taken only by methods that consume the handle");
        let core = Core {
            link: Link {
                name: self.core.link.name.take(),
                ownership: std::mem::take(&mut self.core.link.ownership),
            },
            ..self.core
        };
        (fd, core)
    }

    /// Options for opening or creating a queue.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Opens an existing queue for reading and writing.
    ///
    /// # Errors
    /// [`OpenError::NotFound`] when it does not exist; see [`OpenOptions::open`].
    pub fn open(name: &str) -> Result<MessageQueue, OpenError> {
        OpenOptions::new().open(name)
    }

    /// Opens the queue, creating it (mode `0o600`, default capacity) when missing. The handle
    /// owns the queue (unlinks it on drop) only if it created it.
    pub fn create(name: &str) -> Result<MessageQueue, OpenError> {
        OpenOptions::new().create(true).open(name)
    }

    /// Creates the queue (mode `0o600`, default capacity); fails with
    /// [`OpenError::AlreadyExists`] if it exists. The handle owns it.
    pub fn create_new(name: &str) -> Result<MessageQueue, OpenError> {
        OpenOptions::new().create_new(true).open(name)
    }

    /// Removes the name `name` (`mq_unlink`). Processes that have the queue open keep it.
    #[doc(alias = "mq_unlink")]
    pub fn unlink(name: &str) -> Result<(), OpenError> {
        let name = PosixName::queue(name)?;
        sys::mq_unlink(&name).map_err(|e| open_error(&name, None, e))
    }

    /// Keeps the queue after this handle is dropped (it would otherwise be unlinked if this
    /// handle created it).
    pub fn persist(mut self) -> MessageQueue {
        self.core.link.ownership.set_persist(true);
        self
    }

    /// Makes this handle unlink the queue when dropped, as if it had created it.
    pub fn remove_on_drop(mut self) -> MessageQueue {
        if self.core.link.name.is_some() {
            self.core.link.ownership.claim();
        }
        self
    }

    /// Whether this handle will unlink the queue when dropped.
    pub fn is_owner(&self) -> bool {
        self.core.link.ownership.is_owner()
    }

    /// The queue's name (`None` for a queue adopted from a descriptor).
    pub fn name(&self) -> Option<&PosixName> {
        self.core.link.name.as_ref()
    }

    /// Unlinks the queue's name now and closes this handle. When the name was already
    /// removed (and perhaps taken by another queue since), nothing is unlinked.
    pub fn remove(mut self) -> Result<(), OpenError> {
        self.core.link.ownership.removed();
        match &self.core.link.name {
            Some(name) if still_linked(self.fd()) => {
                sys::mq_unlink(name).map_err(|e| open_error(name, None, e))
            }
            _ => Ok(()),
        }
    }

    /// `Some(n)` when the queue's name was removed since this handle opened it (its receiver
    /// exited, or someone removed it): nobody can open it any more, so the `n` messages still
    /// in it will never be received. `None` while the name exists, and for queues adopted from
    /// a descriptor.
    ///
    /// A send into such a queue succeeds while there is room, so a sender should ask this at
    /// the end of a batch; a send that would block reports [`SendError::Unlinked`] itself.
    pub fn undelivered(&self) -> Option<usize> {
        self.core.unlinked(self.fd())
    }

    /// The largest message this queue takes (`mq_msgsize`, read when the handle was opened).
    pub fn max_message_size(&self) -> usize {
        self.core.msgsize
    }

    /// The queue's current attributes (`mq_getattr`).
    #[doc(alias = "mq_getattr")]
    pub fn attributes(&self) -> io::Result<Attributes> {
        attributes(self.fd())
    }

    /// Sends `msg` with `priority` (higher is received first), blocking while the queue is
    /// full.
    ///
    /// # Errors
    /// [`SendError::TooLarge`] when `msg` exceeds `mq_msgsize`.
    #[doc(alias = "mq_send")]
    pub fn send(&self, msg: &[u8], priority: u32) -> Result<(), SendError> {
        self.send_wait(msg, priority, Wait::Forever)
    }

    /// Sends without blocking: [`SendError::Full`] when the queue is full.
    pub fn try_send(&self, msg: &[u8], priority: u32) -> Result<(), SendError> {
        self.send_wait(msg, priority, Wait::NoWait)
    }

    /// Sends, waiting at most `timeout` for room: [`SendError::Timeout`] after that.
    #[doc(alias = "mq_timedsend")]
    pub fn send_timeout(
        &self,
        msg: &[u8],
        priority: u32,
        timeout: Duration,
    ) -> Result<(), SendError> {
        self.send_wait(msg, priority, Wait::timeout(timeout))
    }

    /// Sends, waiting as `wait` allows.
    pub fn send_wait(&self, msg: &[u8], priority: u32, wait: Wait) -> Result<(), SendError> {
        self.core.send(self.fd(), msg, priority, wait)
    }

    /// Receives the highest-priority message, blocking while the queue is empty. Returns the
    /// bytes and the priority.
    #[doc(alias = "mq_receive")]
    pub fn recv(&self) -> Result<(Vec<u8>, u32), RecvError> {
        self.recv_wait(Wait::Forever)
    }

    /// Receives without blocking: [`RecvError::WouldBlock`] when the queue is empty.
    pub fn try_recv(&self) -> Result<(Vec<u8>, u32), RecvError> {
        self.recv_wait(Wait::NoWait)
    }

    /// Receives, waiting at most `timeout`: [`RecvError::Timeout`] after that.
    #[doc(alias = "mq_timedreceive")]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<(Vec<u8>, u32), RecvError> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// Receives, waiting as `wait` allows, into a new buffer of `mq_msgsize` bytes (trimmed to
    /// the message).
    pub fn recv_wait(&self, wait: Wait) -> Result<(Vec<u8>, u32), RecvError> {
        let mut buf = vec![0u8; self.core.msgsize];
        let (n, prio) = self.recv_into_wait(&mut buf, wait)?;
        buf.truncate(n);
        Ok((buf, prio))
    }

    /// Receives into `buf` without allocating, blocking while the queue is empty. Returns the
    /// message length and priority.
    ///
    /// # Errors
    /// [`RecvError::BufferTooSmall`] when `buf` is shorter than [`max_message_size`]
    /// (the kernel requires room for the largest possible message).
    ///
    /// [`max_message_size`]: MessageQueue::max_message_size
    pub fn recv_into(&self, buf: &mut [u8]) -> Result<(usize, u32), RecvError> {
        self.recv_into_wait(buf, Wait::Forever)
    }

    /// [`recv_into`](MessageQueue::recv_into) without blocking.
    pub fn try_recv_into(&self, buf: &mut [u8]) -> Result<(usize, u32), RecvError> {
        self.recv_into_wait(buf, Wait::NoWait)
    }

    /// [`recv_into`](MessageQueue::recv_into) waiting at most `timeout`.
    pub fn recv_into_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<(usize, u32), RecvError> {
        self.recv_into_wait(buf, Wait::timeout(timeout))
    }

    /// [`recv_into`](MessageQueue::recv_into) waiting as `wait` allows.
    pub fn recv_into_wait(&self, buf: &mut [u8], wait: Wait) -> Result<(usize, u32), RecvError> {
        self.core.recv_into(self.fd(), buf, wait)
    }

    /// Puts the descriptor in (or out of) non-blocking mode (`mq_setattr`).
    #[doc(alias = "mq_setattr")]
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        sys::mq_set_nonblocking(self.fd(), nonblocking)
    }

    /// Turns this handle into an async one (sets `O_NONBLOCK` and registers the descriptor
    /// with the current tokio runtime). Ownership (unlink on drop) carries over.
    ///
    /// # Errors
    /// Fails outside a tokio runtime, or when the descriptor cannot be registered.
    #[cfg(feature = "tokio")]
    pub fn into_async(mut self) -> io::Result<AsyncMessageQueue> {
        self.set_nonblocking(true)?;
        let (fd, mut core) = self.take_apart();
        match crate::sys::mq::register_async(fd) {
            Ok(io) => Ok(AsyncMessageQueue { io, core }),
            Err(e) => {
                // The descriptor is gone with the error: remove a queue this handle created by
                // name, as dropping it would have done.
                if core.link.ownership.take_removal()
                    && let Some(name) = &core.link.name
                {
                    let _ = sys::mq_unlink(name);
                }
                Err(e)
            }
        }
    }
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        if let Some(fd) = &self.fd {
            self.core.link.release(fd.as_fd());
        }
    }
}

impl AsFd for MessageQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

impl AsRawFd for MessageQueue {
    fn as_raw_fd(&self) -> RawFd {
        self.fd().as_raw_fd()
    }
}

impl From<MessageQueue> for OwnedFd {
    /// The descriptor; the queue is no longer unlinked on drop.
    fn from(mut q: MessageQueue) -> OwnedFd {
        q.take_apart().0
    }
}

impl From<OwnedFd> for MessageQueue {
    /// Adopts a message-queue descriptor (for instance one inherited or passed over a Unix
    /// socket). The handle has no name and never unlinks. If the descriptor is not a queue,
    /// operations on it fail with an I/O error.
    fn from(fd: OwnedFd) -> MessageQueue {
        let msgsize = sys::mq_getattr(fd.as_fd())
            .map(|a| a.msgsize.max(0) as usize)
            .unwrap_or(0);
        MessageQueue {
            fd: Some(fd),
            core: Core {
                link: Link {
                    name: None,
                    ownership: Ownership::opened(),
                },
                msgsize,
                readable: true,
                writable: true,
                watch_unlink: false,
            },
        }
    }
}
