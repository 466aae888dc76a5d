//! A request as the server hands it out: owned ([`Request`]) or lent in place ([`Call`]),
//! and its reply.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::handshake::Peer;
use super::wire::{self, Codec, Status};
use crate::channel::Connection as Link;
use crate::pattern::Error;
use crate::poison::lock;
use crate::wait::Wait;

/// A request lent by the connection, without copying its method name or payload out (see
/// [`Connection::recv_with`] and [`ServerOptions::call_handler`]).
///
/// [`Connection::recv_with`]: super::Connection::recv_with
/// [`ServerOptions::call_handler`]: super::ServerOptions::call_handler
#[derive(Debug)]
#[non_exhaustive]
pub struct Call<'a> {
    /// The method name.
    pub method: &'a str,
    /// The payload.
    pub payload: &'a [u8],
    /// When the caller stops waiting, if it said.
    pub deadline: Option<Instant>,
    /// Who sent it.
    pub peer: &'a Arc<Peer>,
    /// Becomes true when the caller's connection ends (see [`Request::caller_gone`]).
    pub gone: &'a Arc<AtomicBool>,
    /// The codec the caller named in its hello: its payload is in it, and so must the
    /// reply's be.
    pub codec: Codec,
    pub(super) id: u64,
}

impl Call<'_> {
    /// The request's id, to answer it with [`Connection::reply`](super::Connection::reply).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Sends a reply frame on `writer`: without waiting first (no clock read), then, if the link
/// is full, waiting up to 30 s for room.
pub(super) fn send_reply(
    writer: &Writer,
    id: u64,
    status: Status,
    payload: &[u8],
) -> Result<(), Error> {
    let h = wire::reply_header(id, status);
    let mut w = lock(writer);
    match w.send_frame_parts(&[&h, payload], Wait::NoWait) {
        Err(Error::Full { .. } | Error::WouldBlock | Error::Timeout) => {
            w.send_frame_parts(&[&h, payload], Wait::timeout(Duration::from_secs(30)))
        }
        r => r,
    }
}

pub(super) type Writer = Arc<Mutex<Box<dyn Link>>>;

/// One request received by a server; answer it with [`Request::reply`].
#[derive(Debug)]
pub struct Request {
    /// The method name.
    pub method: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// When the caller stops waiting, if it said.
    pub deadline: Option<Instant>,
    /// Who sent it.
    pub peer: Arc<Peer>,
    /// The codec the caller named in its hello: its payload is in it, and so must the
    /// reply's be.
    pub codec: Codec,
    pub(super) id: u64,
    pub(super) writer: Writer,
    pub(super) gone: Arc<AtomicBool>,
}

impl Request {
    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Whether the caller's connection has ended (it closed it, or died): nobody will read the
    /// reply. Noticed within about 250 ms of the connection ending.
    pub fn caller_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    /// A flag that becomes true when the caller's connection ends (see
    /// [`Request::caller_gone`]), for handlers that check it while they work.
    pub fn caller_gone_flag(&self) -> Arc<AtomicBool> {
        self.gone.clone()
    }

    /// Sends the reply. A caller that has gone is not an error for the server: the reply is
    /// dropped ([`Error::PeerGone`] is returned for information).
    pub fn reply(self, status: Status, payload: &[u8]) -> Result<(), Error> {
        send_reply(&self.writer, self.id, status, payload)
    }
}
