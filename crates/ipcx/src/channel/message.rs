//! Messages and the two halves of a message channel: what every transport sends and receives.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::{Codec, Error};
use crate::wait::Wait;

/// What the mechanism tells about a received message, and for a typed message its codec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Meta {
    /// POSIX mq: the message priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// System V mq: the message type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub mtype: Option<i64>,
    /// The sender's process id, verified by the kernel (socket credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The sender's user id, verified by the kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The sender's group id, verified by the kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// The sender's address (TCP, UDP, bound Unix datagram sockets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The key the message was published under (`zenoh:`: a receiver of a wildcard such as
    /// `robot/**` learns which key each message came on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The codec a typed message came in ([`Receiver`](super::Receiver) sets it; raw
    /// messages have none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec: Option<Codec>,
}

/// A received message: its bytes and what the mechanism tells about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The payload.
    pub data: Vec<u8>,
    /// Metadata: priority, type, verified sender credentials.
    pub meta: Meta,
}

impl Message {
    /// A message with no metadata.
    pub fn new(data: Vec<u8>) -> Message {
        Message {
            data,
            meta: Meta::default(),
        }
    }
}

/// The sending half of any endpoint.
pub trait MessageSender: Send + fmt::Debug {
    /// Sends one message, waiting as `wait` allows.
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error>;

    /// The largest message this sender can carry, when the mechanism has a limit.
    fn max_message_len(&self) -> Option<usize> {
        None
    }

    /// Sends one message, blocking until it is accepted.
    fn send(&mut self, msg: &[u8]) -> Result<(), Error> {
        self.send_wait(msg, Wait::Forever)
    }

    /// Sends one message without blocking: [`Error::Full`] when it cannot be accepted now.
    fn try_send(&mut self, msg: &[u8]) -> Result<(), Error> {
        self.send_wait(msg, Wait::NoWait)
    }

    /// Ends a batch of sends: reports messages that were accepted but can no longer reach a
    /// receiver. A POSIX queue takes messages while it has room even after its receiver
    /// removed it, so its sender checks here ([`Error::PeerGone`] with the count lost).
    /// Mechanisms that find out on every send do nothing.
    fn finish(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// Sends one message, giving up with [`Error::Timeout`] after `timeout`.
    fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), Error> {
        self.send_wait(msg, Wait::timeout(timeout))
    }
}

/// The receiving half of any endpoint.
pub trait MessageReceiver: Send + fmt::Debug {
    /// Receives one message, waiting as `wait` allows.
    ///
    /// Errors for which [`Error::is_recoverable`] is true (a timeout, one misbehaving peer of a
    /// server) leave the receiver usable: call again.
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error>;

    /// Receives one message, blocking until one arrives.
    fn recv(&mut self) -> Result<Message, Error> {
        self.recv_wait(Wait::Forever)
    }

    /// Receives one message if one is waiting: [`Error::WouldBlock`] otherwise.
    fn try_recv(&mut self) -> Result<Message, Error> {
        self.recv_wait(Wait::NoWait)
    }

    /// Receives one message, giving up with [`Error::Timeout`] after `timeout`.
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Message, Error> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// How a [`WaitSet`](crate::wait_set::WaitSet) watches this receiver: ready while a
    /// message (or an error to report) waits. The default: the transport has no descriptor to
    /// watch ([`WaitSetError::NotPollable`](crate::wait_set::WaitSetError)).
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        Err(crate::wait_set::WaitSetError::not_pollable(
            "this receiver",
            "its transport has no descriptor to wait on; poll it with try_recv from an interval timer",
        ))
    }
}

impl crate::wait_set::Waitable for dyn MessageReceiver {
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        MessageReceiver::readiness(self)
    }
}

impl<S: MessageSender + ?Sized> MessageSender for Box<S> {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        (**self).send_wait(msg, wait)
    }
    fn max_message_len(&self) -> Option<usize> {
        (**self).max_message_len()
    }
    fn finish(&mut self) -> Result<(), Error> {
        (**self).finish()
    }
}

impl<R: MessageReceiver + ?Sized> MessageReceiver for Box<R> {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error> {
        (**self).recv_wait(wait)
    }
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        (**self).readiness()
    }
}
