//! Mailboxes: named, indirect N:M messaging. Any number of processes send to a mailbox and any
//! number receive from it; each message is delivered to exactly one receiver.
//!
//! A mailbox is a POSIX message queue (`mq:/NAME`). The kernel hands each message to one
//! waiting receiver, in priority order and FIFO within a priority, so several receivers share
//! the load with no coordinator.
//!
//! # Limits (from `/proc/sys/fs/mqueue`, see [`Limits::read`])
//! * capacity: `msg_default` messages (10) unless given at creation, at most `msg_max` (10)
//!   for unprivileged processes;
//! * message size: `msgsize_default` bytes (8192) unless given, at most `msgsize_max` (8192);
//!   a larger message is [`Error::TooLarge`];
//! * queues per user: `queues_max` (256) and the `RLIMIT_MSGQUEUE` byte budget.
//!
//! A full mailbox makes a blocking send wait ([`Mailbox::try_send`] fails with
//! [`Error::Full`]); messages survive their senders and receivers until the mailbox is removed
//! (the handle that created it removes it on drop unless [`Mailbox::persist`] is called). There
//! is no sender identity: POSIX queues do not carry credentials (use [`super::direct`] for that).
//!
//! ```no_run
//! use ipcx::pattern::mailbox::Mailbox;
//! let jobs = Mailbox::create("/jobs")?;      // creates it, removes it on drop
//! jobs.send(b"resize photo.jpg")?;
//! // any process: Mailbox::open("/jobs")?.recv()?
//! let _msg = jobs.recv()?;
//! # Ok::<(), ipcx::pattern::Error>(())
//! ```

use std::time::Duration;

use super::Error;
use crate::channel::{self, Message, MessageReceiver, MessageSender, Meta};
use crate::mq::{self, MessageQueue};
use crate::wait::Wait;

/// The system limits on mailboxes, read from `/proc/sys/fs/mqueue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Default capacity in messages (`msg_default`).
    pub msg_default: usize,
    /// Largest capacity an unprivileged process may ask for (`msg_max`).
    pub msg_max: usize,
    /// Default message size (`msgsize_default`).
    pub msgsize_default: usize,
    /// Largest message size an unprivileged process may ask for (`msgsize_max`).
    pub msgsize_max: usize,
    /// Queues per user (`queues_max`).
    pub queues_max: usize,
}

impl Limits {
    /// Reads the limits; a file that cannot be read gives the kernel's default.
    pub fn read() -> Limits {
        let get = |name: &str, default: usize| {
            std::fs::read_to_string(format!("/proc/sys/fs/mqueue/{name}"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(default)
        };
        Limits {
            msg_default: get("msg_default", 10),
            msg_max: get("msg_max", 10),
            msgsize_default: get("msgsize_default", 8192),
            msgsize_max: get("msgsize_max", 8192),
            queues_max: get("queues_max", 256),
        }
    }
}

/// A named mailbox.
#[derive(Debug)]
pub struct Mailbox {
    q: MessageQueue,
    name: String,
}

impl Mailbox {
    /// Opens an existing mailbox ([`Error::Queue`] with `NotFound` when missing).
    pub fn open(name: &str) -> Result<Mailbox, Error> {
        Self::with(name, MessageQueue::options())
    }

    /// Opens the mailbox, creating it (system-default capacity) when missing. The handle that
    /// created it removes it on drop.
    pub fn create(name: &str) -> Result<Mailbox, Error> {
        Self::with(name, MessageQueue::options().create(true).clone())
    }

    /// Creates a mailbox with room for `max_messages` messages of `max_message_size` bytes,
    /// or opens the existing one (whose capacity then stays as it is).
    pub fn create_with_capacity(
        name: &str,
        max_messages: usize,
        max_message_size: usize,
    ) -> Result<Mailbox, Error> {
        Self::with(
            name,
            MessageQueue::options()
                .create(true)
                .capacity(max_messages, max_message_size)
                .clone(),
        )
    }

    /// Opens with full control over the queue options.
    pub fn with(name: &str, opts: mq::OpenOptions) -> Result<Mailbox, Error> {
        let q = opts.open(name)?;
        Ok(Mailbox {
            q,
            name: name.to_owned(),
        })
    }

    /// Removes a mailbox by name (processes that have it open keep using it).
    pub fn remove(name: &str) -> Result<(), Error> {
        Ok(MessageQueue::unlink(name)?)
    }

    /// Keeps the mailbox after this handle is dropped.
    pub fn persist(self) -> Mailbox {
        Mailbox {
            q: self.q.persist(),
            name: self.name,
        }
    }

    /// The mailbox name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The largest message it takes.
    pub fn max_message_len(&self) -> usize {
        self.q.max_message_size()
    }

    /// Messages waiting now.
    pub fn len(&self) -> Result<usize, Error> {
        self.q
            .attributes()
            .map(|a| a.current_messages)
            .map_err(|source| Error::Io {
                context: format!("mq_getattr on {}", self.name),
                source,
            })
    }

    /// Whether no message is waiting.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// Sends one message (priority 0), blocking while the mailbox is full.
    pub fn send(&self, msg: &[u8]) -> Result<(), Error> {
        self.send_wait(msg, 0, Wait::Forever)
    }

    /// Sends without blocking: [`Error::Full`] when the mailbox is full.
    pub fn try_send(&self, msg: &[u8]) -> Result<(), Error> {
        self.send_wait(msg, 0, Wait::NoWait)
    }

    /// Sends, giving up with [`Error::Timeout`] after `timeout`.
    pub fn send_timeout(&self, msg: &[u8], timeout: Duration) -> Result<(), Error> {
        self.send_wait(msg, 0, Wait::timeout(timeout))
    }

    /// Sends with a priority (higher is received first), waiting as `wait` allows.
    pub fn send_wait(&self, msg: &[u8], priority: u32, wait: Wait) -> Result<(), Error> {
        self.q.send_wait(msg, priority, wait).map_err(|e| match e {
            mq::SendError::TooLarge { len, max } => Error::TooLarge {
                len,
                max,
                what: format!("mailbox {} (its max message size)", self.name),
            },
            mq::SendError::Full => Error::Full {
                what: format!("mailbox {}", self.name),
            },
            mq::SendError::Timeout => Error::Timeout,
            other => Error::Io {
                context: format!("sending to mailbox {}", self.name),
                source: std::io::Error::other(other),
            },
        })
    }

    /// Receives one message, blocking.
    pub fn recv(&self) -> Result<Vec<u8>, Error> {
        self.recv_wait(Wait::Forever).map(|(m, _)| m)
    }

    /// Receives a waiting message: [`Error::WouldBlock`] when none.
    pub fn try_recv(&self) -> Result<Vec<u8>, Error> {
        self.recv_wait(Wait::NoWait).map(|(m, _)| m)
    }

    /// Receives one message, giving up with [`Error::Timeout`] after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Vec<u8>, Error> {
        self.recv_wait(Wait::timeout(timeout)).map(|(m, _)| m)
    }

    /// Receives one message and its priority, waiting as `wait` allows.
    pub fn recv_wait(&self, wait: Wait) -> Result<(Vec<u8>, u32), Error> {
        self.q.recv_wait(wait).map_err(|e| match e {
            mq::RecvError::WouldBlock => Error::WouldBlock,
            mq::RecvError::Timeout => Error::Timeout,
            other => Error::Io {
                context: format!("receiving from mailbox {}", self.name),
                source: std::io::Error::other(other),
            },
        })
    }
}

impl MessageSender for Mailbox {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), channel::Error> {
        Mailbox::send_wait(self, msg, 0, wait).map_err(super::direct::to_channel_error)
    }
    fn max_message_len(&self) -> Option<usize> {
        Some(self.q.max_message_size())
    }
}

impl MessageReceiver for Mailbox {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, channel::Error> {
        let (data, prio) =
            Mailbox::recv_wait(self, wait).map_err(super::direct::to_channel_error)?;
        let mut m = Message::new(data);
        m.meta = Meta {
            priority: Some(prio),
            ..Default::default()
        };
        Ok(m)
    }
}
