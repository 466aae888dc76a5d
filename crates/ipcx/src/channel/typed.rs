//! Typed messages: [`Sender<T>`] and [`Receiver<T>`] carry any serde type, each message a
//! codec tag and the value in that codec ([`Codec::encode_message`]).

use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Codec, Endpoint, Error, MessageReceiver, MessageSender, Meta, Options};
use crate::wait::Wait;

/// The largest send buffer a [`Sender`] keeps between values.
const KEEP_BUFFER: usize = 64 << 10;

/// A typed sender: encodes each `T` in its codec (postcard unless
/// [`with_codec`](Sender::with_codec) says otherwise) and sends it as one message, the
/// codec's tag first.
#[derive(Debug)]
pub struct Sender<T> {
    inner: Box<dyn MessageSender>,
    codec: Codec,
    /// The last message's buffer, reused.
    buf: Vec<u8>,
    _marker: PhantomData<fn(&T)>,
}

impl<T: Serialize> Sender<T> {
    /// Wraps a byte-message sender; the values go in postcard.
    pub fn new(inner: Box<dyn MessageSender>) -> Sender<T> {
        Sender {
            inner,
            codec: Codec::default(),
            buf: Vec::new(),
            _marker: PhantomData,
        }
    }

    /// Sends the values in `codec` ([`Codec::MsgPack`] for receivers in other languages).
    pub fn with_codec(mut self, codec: Codec) -> Sender<T> {
        self.codec = codec;
        self
    }

    /// The codec the values go in.
    pub fn codec(&self) -> Codec {
        self.codec
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
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.push(self.codec.tag());
        let buf = self.codec.encode_into(value, buf)?;
        let sent = self.inner.send_wait(&buf, wait);
        // Keep the buffer for the next value, unless one large value made it large.
        if buf.capacity() <= KEEP_BUFFER {
            self.buf = buf;
        }
        sent
    }

    /// The byte-message sender underneath.
    pub fn into_inner(self) -> Box<dyn MessageSender> {
        self.inner
    }
}

/// A typed receiver: decodes each message as a `T` in the codec its tag names, postcard or
/// MessagePack (senders may mix them), and tells which in [`Meta::codec`].
///
/// A message that does not decode (empty, an unknown codec tag, not a `T`) is
/// [`Error::Codec`] with the [`CodecError`](super::CodecError) that says why; it is
/// recoverable: the receiver goes on with the next message.
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
        let (value, codec) = Codec::decode_message(&msg.data)?;
        let mut meta = msg.meta;
        meta.codec = Some(codec);
        Ok((value, meta))
    }

    /// How a [`WaitSet`](crate::wait_set::WaitSet) watches this receiver (see
    /// [`MessageReceiver::readiness`]).
    pub fn readiness(
        &self,
    ) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        MessageReceiver::readiness(&*self.inner)
    }

    /// The byte-message receiver underneath.
    pub fn into_inner(self) -> Box<dyn MessageReceiver> {
        self.inner
    }
}

impl<T> crate::wait_set::Waitable for Receiver<T> {
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        MessageReceiver::readiness(&*self.inner)
    }
}
