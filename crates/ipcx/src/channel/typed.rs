//! Typed messages: [`Sender<T>`] and [`Receiver<T>`] serialise any serde type with postcard.

use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Endpoint, Error, MessageReceiver, MessageSender, Meta, Options};
use crate::wait::Wait;

/// A typed sender: serialises each `T` with postcard and sends it as one message.
#[derive(Debug)]
pub struct Sender<T> {
    inner: Box<dyn MessageSender>,
    _marker: PhantomData<fn(&T)>,
}

impl<T: Serialize> Sender<T> {
    /// Wraps a byte-message sender.
    pub fn new(inner: Box<dyn MessageSender>) -> Sender<T> {
        Sender {
            inner,
            _marker: PhantomData,
        }
    }

    /// Opens the sending side of `endpoint`.
    pub fn open(endpoint: &Endpoint, opts: &Options) -> Result<Sender<T>, Error> {
        endpoint.sender(opts).map(Sender::new)
    }

    /// Sends one value, blocking.
    pub fn send(&mut self, value: &T) -> Result<(), Error> {
        self.send_wait(value, Wait::Forever)
    }

    /// Sends one value without blocking.
    pub fn try_send(&mut self, value: &T) -> Result<(), Error> {
        self.send_wait(value, Wait::NoWait)
    }

    /// Sends one value, giving up after `timeout`.
    pub fn send_timeout(&mut self, value: &T, timeout: Duration) -> Result<(), Error> {
        self.send_wait(value, Wait::timeout(timeout))
    }

    /// Sends one value, waiting as `wait` allows.
    pub fn send_wait(&mut self, value: &T, wait: Wait) -> Result<(), Error> {
        let bytes = postcard::to_stdvec(value)?;
        self.inner.send_wait(&bytes, wait)
    }

    /// The byte-message sender underneath.
    pub fn into_inner(self) -> Box<dyn MessageSender> {
        self.inner
    }
}

/// A typed receiver: decodes each message as a `T` with postcard.
///
/// A message that does not decode is [`Error::Codec`] (recoverable: the receiver goes on).
#[derive(Debug)]
pub struct Receiver<T> {
    inner: Box<dyn MessageReceiver>,
    _marker: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Receiver<T> {
    /// Wraps a byte-message receiver.
    pub fn new(inner: Box<dyn MessageReceiver>) -> Receiver<T> {
        Receiver {
            inner,
            _marker: PhantomData,
        }
    }

    /// Opens the receiving side of `endpoint`.
    pub fn open(endpoint: &Endpoint, opts: &Options) -> Result<Receiver<T>, Error> {
        endpoint.receiver(opts).map(Receiver::new)
    }

    /// Receives one value, blocking.
    pub fn recv(&mut self) -> Result<(T, Meta), Error> {
        self.recv_wait(Wait::Forever)
    }

    /// Receives one value if one is waiting.
    pub fn try_recv(&mut self) -> Result<(T, Meta), Error> {
        self.recv_wait(Wait::NoWait)
    }

    /// Receives one value, giving up after `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<(T, Meta), Error> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// Receives one value, waiting as `wait` allows.
    pub fn recv_wait(&mut self, wait: Wait) -> Result<(T, Meta), Error> {
        let msg = self.inner.recv_wait(wait)?;
        let value = postcard::from_bytes(&msg.data)?;
        Ok((value, msg.meta))
    }

    /// The byte-message receiver underneath.
    pub fn into_inner(self) -> Box<dyn MessageReceiver> {
        self.inner
    }
}
