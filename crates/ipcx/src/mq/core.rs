//! What the blocking and the async handle share: the send and receive calls on the
//! descriptor ([`Core`]) and the queue's name with its ownership ([`Link`]).

use std::os::fd::BorrowedFd;
use std::time::Duration;

use super::{RecvError, SendError};
use crate::name::PosixName;
use crate::registry::Ownership;
use crate::sys::mq as sys;
use crate::wait::Wait;

/// How long a blocked send waits before it looks again whether the queue was unlinked.
const UNLINK_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Everything about an open queue but its descriptor.
#[derive(Debug)]
pub(super) struct Core {
    pub(super) link: Link,
    pub(super) msgsize: usize,
    pub(super) readable: bool,
    pub(super) writable: bool,
    /// Whether a removed name means the receiver is gone: true for queues opened by name,
    /// false for adopted descriptors (which may be of a queue unlinked on purpose).
    pub(super) watch_unlink: bool,
}

impl Core {
    pub(super) fn send(
        &self,
        fd: BorrowedFd<'_>,
        msg: &[u8],
        priority: u32,
        wait: Wait,
    ) -> Result<(), SendError> {
        if !self.writable {
            return Err(SendError::NotWritable);
        }
        if msg.len() > self.msgsize {
            return Err(SendError::TooLarge {
                len: msg.len(),
                max: self.msgsize,
            });
        }
        // A blocking send waits in slices: when a slice ends with the queue still full, it
        // looks whether the queue was unlinked (its receiver is gone) before waiting on. The
        // first attempt does not wait, so a send that finds room costs one mq_timedsend and
        // no clock read.
        let mut first = true;
        loop {
            let slice = match wait {
                Wait::NoWait => Wait::NoWait,
                _ if first => Wait::NoWait,
                _ => {
                    let end = std::time::Instant::now() + UNLINK_CHECK_INTERVAL;
                    match wait {
                        Wait::Until(d) if d <= end => wait,
                        _ => Wait::Until(end),
                    }
                }
            };
            first = false;
            let e = match sys::mq_send(fd, msg, priority, slice) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            match e.raw_os_error() {
                Some(libc::EAGAIN | libc::ETIMEDOUT) => {
                    if let Some(stranded) = self.unlinked(fd) {
                        return Err(SendError::Unlinked { stranded });
                    }
                    // EAGAIN: a non-blocking descriptor, where every send is a `try_send`.
                    if wait == Wait::NoWait || e.raw_os_error() == Some(libc::EAGAIN) {
                        return Err(SendError::Full);
                    }
                    if wait.expired() {
                        return Err(SendError::Timeout);
                    }
                }
                Some(libc::EMSGSIZE) => {
                    return Err(SendError::TooLarge {
                        len: msg.len(),
                        max: self.msgsize,
                    });
                }
                Some(libc::EBADF) => return Err(SendError::NotWritable),
                _ => return Err(SendError::Io(e)),
            }
        }
    }

    /// `Some(messages still queued)` when the queue, opened by name, has lost its name.
    pub(super) fn unlinked(&self, fd: BorrowedFd<'_>) -> Option<usize> {
        if !self.watch_unlink || still_linked(fd) {
            return None;
        }
        Some(
            sys::mq_getattr(fd)
                .map(|a| a.curmsgs.max(0) as usize)
                .unwrap_or(0),
        )
    }

    pub(super) fn recv_into(
        &self,
        fd: BorrowedFd<'_>,
        buf: &mut [u8],
        wait: Wait,
    ) -> Result<(usize, u32), RecvError> {
        if !self.readable {
            return Err(RecvError::NotReadable);
        }
        if buf.len() < self.msgsize {
            return Err(RecvError::BufferTooSmall {
                len: buf.len(),
                needed: self.msgsize,
            });
        }
        sys::mq_receive(fd, buf, wait).map_err(|e| match e.raw_os_error() {
            Some(libc::EAGAIN) => RecvError::WouldBlock,
            Some(libc::ETIMEDOUT) if wait == Wait::NoWait => RecvError::WouldBlock,
            Some(libc::ETIMEDOUT) => RecvError::Timeout,
            Some(libc::EMSGSIZE) => RecvError::BufferTooSmall {
                len: buf.len(),
                needed: self.msgsize,
            },
            Some(libc::EBADF) => RecvError::NotReadable,
            _ => RecvError::Io(e),
        })
    }
}

/// The queue's name and whether to unlink it on drop.
#[derive(Debug)]
pub(super) struct Link {
    /// `None` for a queue adopted from a bare descriptor.
    pub(super) name: Option<PosixName>,
    /// Whether to unlink on drop.
    pub(super) ownership: Ownership,
}

impl Link {
    /// Unlinks the name if this handle owns the queue and the name still names it: once the
    /// name was removed (by `ipcx rm`, say), it may name another process's queue since.
    pub(super) fn release(&mut self, fd: BorrowedFd<'_>) {
        if self.ownership.take_removal()
            && let Some(name) = &self.name
            && still_linked(fd)
        {
            let _ = sys::mq_unlink(name);
        }
    }
}

/// Whether the queue behind `fd` still has its name (a queue has at most one: names cannot be
/// linked twice, so a link count of 1 means the name still leads to this very queue).
pub(super) fn still_linked(fd: BorrowedFd<'_>) -> bool {
    sys::mq_fstat(fd).is_ok_and(|st| st.nlink > 0)
}
