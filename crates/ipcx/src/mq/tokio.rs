//! [`AsyncMessageQueue`]: a queue whose descriptor is registered with tokio's reactor.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::core::Core;
use super::queue::attributes;
use super::{Attributes, OpenError, OpenOptions, RecvError, SendError};
use crate::wait::Wait;

impl Drop for AsyncMessageQueue {
    fn drop(&mut self) {
        self.core.link.release(self.io.get_ref().as_fd());
    }
}

/// An async POSIX message queue (feature `tokio`): the queue descriptor is non-blocking and
/// registered with tokio's reactor, so `send` and `recv` wait without a thread.
#[derive(Debug)]
pub struct AsyncMessageQueue {
    pub(super) io: tokio::io::unix::AsyncFd<OwnedFd>,
    pub(super) core: Core,
}

impl AsyncMessageQueue {
    /// Opens (or creates) a queue as `opts` says, non-blocking, registered with the current
    /// tokio runtime.
    ///
    /// # Errors
    /// As [`OpenOptions::open`]; also fails outside a tokio runtime.
    pub fn open(opts: &OpenOptions, name: &str) -> Result<AsyncMessageQueue, OpenError> {
        let q = opts.clone().nonblocking(true).open(name)?;
        let name = q.name().map(|n| n.to_string()).unwrap_or_default();
        q.into_async()
            .map_err(|source| OpenError::Io { name, source })
    }

    /// The largest message this queue takes (`mq_msgsize`).
    pub fn max_message_size(&self) -> usize {
        self.core.msgsize
    }

    /// The queue's current attributes (`mq_getattr`).
    pub fn attributes(&self) -> io::Result<Attributes> {
        attributes(self.io.get_ref().as_fd())
    }

    /// Keeps the queue after this handle is dropped.
    pub fn persist(mut self) -> AsyncMessageQueue {
        self.core.link.ownership.set_persist(true);
        self
    }

    /// Sends `msg` with `priority`, waiting (asynchronously) while the queue is full.
    ///
    /// # Errors
    /// As [`MessageQueue::send`](super::MessageQueue::send).
    pub async fn send(&self, msg: &[u8], priority: u32) -> Result<(), SendError> {
        loop {
            let mut guard = self.io.writable().await.map_err(SendError::Io)?;
            match self
                .core
                .send(self.io.get_ref().as_fd(), msg, priority, Wait::NoWait)
            {
                Err(SendError::Full) => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// Receives the highest-priority message, waiting (asynchronously) while the queue is
    /// empty.
    ///
    /// # Errors
    /// As [`MessageQueue::recv`](super::MessageQueue::recv).
    pub async fn recv(&self) -> Result<(Vec<u8>, u32), RecvError> {
        let mut buf = vec![0u8; self.core.msgsize];
        let (n, prio) = self.recv_into(&mut buf).await?;
        buf.truncate(n);
        Ok((buf, prio))
    }

    /// Receives into `buf` (at least `mq_msgsize` bytes), waiting while the queue is empty.
    ///
    /// # Errors
    /// As [`MessageQueue::recv_into`](super::MessageQueue::recv_into).
    pub async fn recv_into(&self, buf: &mut [u8]) -> Result<(usize, u32), RecvError> {
        loop {
            let mut guard = self.io.readable().await.map_err(RecvError::Io)?;
            match self
                .core
                .recv_into(self.io.get_ref().as_fd(), buf, Wait::NoWait)
            {
                Err(RecvError::WouldBlock) => guard.clear_ready(),
                other => return other,
            }
        }
    }
}

impl AsFd for AsyncMessageQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get_ref().as_fd()
    }
}

impl AsRawFd for AsyncMessageQueue {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get_ref().as_raw_fd()
    }
}
