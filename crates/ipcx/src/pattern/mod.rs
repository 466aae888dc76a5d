//! Messaging patterns built on the channel and socket layers.
//!
//! | pattern | module | shape | transport |
//! |---|---|---|---|
//! | direct messaging | [`direct`] | 1:1, addressed by pid | abstract Unix datagram `@ipcx-inbox-<uid>-<pid>` |
//! | mailbox | [`mailbox`] | N:M, each message to exactly one receiver | POSIX message queue (`/NAME`, `mq:/NAME`) or shared-memory work queue (`shm:/NAME`) |
//! | publish/subscribe | [`pubsub`] | 1:M (N:M with several publishers), topic prefixes | Unix stream sockets or TCP, fan-out; or natively over shared-memory rings (`shm:/NAME`, one ring per publisher) |
//! | request/reply | [`reqrep`] | many clients, many servers, request ids, deadlines | Unix stream sockets, TCP or shared-memory rings |
//! | push/pull | [`pushpull`] | work distribution with credits and redelivery | Unix stream sockets or TCP |
//!
//! Every pattern reports failures through one [`Error`] enum, and every blocking call comes as
//! `op()`, `try_op()` and `op_timeout()` like the rest of ipcx.
//!
//! # Transports
//! The patterns that own their transport end (direct messaging, mailbox) also implement
//! [`MessageSender`](crate::channel::MessageSender) /
//! [`MessageReceiver`](crate::channel::MessageReceiver), so they can be used wherever a channel
//! can. The connection-oriented patterns (pub/sub, request/reply, push/pull) move their frames
//! through the channel layer's [`Connection`](crate::channel::Connection) (a framed,
//! bidirectional connection that can be split into a reading and a writing half), opened from
//! an [`Endpoint`](crate::channel::Endpoint) with `connect` and `bind`; a new transport plugs in
//! once, in the channel layer ([`crate::channel`]: "Adding a transport"), as the shared-memory
//! ring pair does ([`crate::channel::transport::shm`], addresses `shm:/NAME`).
//!
//! Mailboxes and pub/sub use the shared-memory ring directly instead ([`crate::ring`]): the
//! address picks the transport and the API stays the same. A ring mailbox is a work queue
//! ([`crate::ring::Producer`]/[`crate::ring::Consumer`]); ring pub/sub is one broadcast ring
//! ([`crate::ring::Publisher`]/[`crate::ring::Subscriber`]) that every subscriber reads through
//! its own cursor, with no copy per subscriber in the publisher. Each module's docs list what
//! differs between the transports.
//!
//! # Typed messages
//! The patterns carry bytes; typed values travel in them as the channel layer's *typed
//! messages*, one encoding for every pattern:
//! [`Codec::encode_message`](crate::channel::Codec::encode_message) makes a message of a serde
//! value (the codec's tag, then the value in postcard or MessagePack) and
//! [`Codec::decode_message`](crate::channel::Codec::decode_message) reads one back, telling
//! which codec it came in. Programs in other
//! languages send and read the same bytes (the repository's `docs/PROTOCOL.md`, "Typed
//! messages").
//!
//! | pattern | send a value | receive one |
//! |---|---|---|
//! | mailbox, direct | wrap the end in a typed [`Sender<T>`](crate::channel::Sender) (`Sender::new(Box::new(mailbox))`, [`with_codec`](crate::channel::Sender::with_codec) for MessagePack) | a typed [`Receiver<T>`](crate::channel::Receiver) over the [`Mailbox`](mailbox::Mailbox) or [`Inbox`](direct::Inbox): the codec is in [`Meta::codec`](crate::channel::Meta::codec) |
//! | pub/sub | `publisher.publish(topic, &codec.encode_message(&value)?)` | `Codec::decode_message(&delivery.data)` |
//! | push/pull | `pool.submit(&codec.encode_message(&task)?)`; a worker answers with `worker.reply(task.id, &codec.encode_message(&result)?)` | `Codec::decode_message(&task.data)` in the worker, `Codec::decode_message(&result.data)` in the distributor |
//!
//! Every receiving end reads both codecs, message by message; an end that answers (a push/pull
//! worker) answers in the codec it was asked in, which `decode_message` returns. A message that
//! does not decode is [`Error::Codec`], and the end goes on.
//!
//! ```no_run
//! use ipcx::channel::Codec;
//! use ipcx::pattern::pushpull::{Distributor, Worker};
//! use std::time::Duration;
//! let pool = Distributor::bind("unix:@resize")?;
//! pool.submit(&Codec::MsgPack.encode_message(&("photo.jpg", 640u32))?)?;
//! // in a worker process (perhaps in Python, with msgpack):
//! let mut worker = Worker::connect("unix:@resize", 1, Duration::from_secs(5))?;
//! let task = worker.recv()?;
//! let ((path, width), codec): ((String, u32), Codec) = Codec::decode_message(&task.data)?;
//! worker.reply(task.id, &codec.encode_message(&format!("{path} at {width} px"))?)?;
//! // back in the distributor:
//! let done = pool.recv_result_timeout(Duration::from_secs(5))?;
//! let (text, _): (String, Codec) = Codec::decode_message(&done.data)?;
//! # let _ = text;
//! # Ok::<(), ipcx::pattern::Error>(())
//! ```

use std::time::Duration;

use crate::wait::Wait;

pub mod direct;
pub mod mailbox;
pub mod pubsub;
pub mod pushpull;
mod queue;
pub mod reqrep;

/// Why a pattern operation failed: the channel layer's [`crate::channel::Error`], one
/// vocabulary for transports and patterns. Each message says what to do about it.
pub use crate::channel::Error;

/// How long each end of a pattern connection (pub/sub, push/pull, request/reply) waits for
/// the other during the handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Maps a ring error onto the pattern's named cases; `what` names the object (`mailbox
/// shm:/jobs`), `hint` says what to do when it is missing.
pub(crate) fn ring_error(e: crate::ring::RingError, what: &str, hint: &str) -> Error {
    use crate::ring::RingError as R;
    match e {
        R::Timeout => Error::Timeout,
        R::Empty => Error::WouldBlock,
        R::Full => Error::Full { what: what.into() },
        R::TooLarge { len, max } => Error::TooLarge {
            len,
            max,
            what: format!("{what} (its max message size)"),
        },
        R::PeerGone { what } => Error::PeerGone { what },
        R::NotFound { .. } => Error::NotFound {
            what: what.into(),
            hint: hint.into(),
        },
        R::InvalidName(e) => Error::InvalidAddress {
            addr: what.into(),
            reason: e.to_string(),
        },
        other => Error::Ring(other),
    }
}

/// Waits on a std mpsc receiver as `wait` allows.
pub(crate) fn recv_mpsc<T>(
    rx: &std::sync::mpsc::Receiver<T>,
    wait: Wait,
    what: &str,
) -> Result<T, Error> {
    use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
    let closed = || Error::Closed { what: what.into() };
    match wait {
        Wait::Forever => rx.recv().map_err(|_| closed()),
        Wait::NoWait => rx.try_recv().map_err(|e| match e {
            TryRecvError::Empty => Error::WouldBlock,
            TryRecvError::Disconnected => closed(),
        }),
        Wait::Until(_) => {
            let left = wait.remaining().unwrap_or_default();
            rx.recv_timeout(left).map_err(|e| match e {
                RecvTimeoutError::Timeout => Error::Timeout,
                RecvTimeoutError::Disconnected => closed(),
            })
        }
    }
}
