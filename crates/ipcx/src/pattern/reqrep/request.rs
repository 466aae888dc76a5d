//! A request as the server hands it out owned ([`Request`]; lent in place, it is a
//! [`Call`]), and how a reply goes out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::handshake::Peer;
use super::server_session::{self, Call, ReplyFrame};
use super::wire::{Codec, Status};
use crate::channel::Connection as Link;
use crate::pattern::Error;
use crate::poison::lock;
use crate::wait::Wait;

/// Sends the reply to call `id` on `writer` (framed by [`server_session::reply`]). A reply
/// larger than the link carries (a ring's frame) is replaced, as one larger than a client
/// accepts is, by an error saying so.
pub(super) fn send_reply(
    writer: &Writer,
    id: u64,
    status: Status,
    payload: &[u8],
) -> Result<(), Error> {
    let mut w = lock(writer);
    let max = crate::framing::DEFAULT_MAX_FRAME_LEN;
    match send(&mut **w, &server_session::reply(id, status, payload, max)) {
        Err(Error::TooLarge { max, .. }) => {
            send(&mut **w, &server_session::reply(id, status, payload, max))
        }
        r => r,
    }
}

/// Sends `reply` on `w`: without waiting first (no clock read), then, if the link is full,
/// waiting up to 30 s for room.
fn send(w: &mut dyn Link, reply: &ReplyFrame<'_>) -> Result<(), Error> {
    match w.send_frame_parts(&reply.parts(), Wait::NoWait) {
        Err(Error::Full { .. } | Error::WouldBlock | Error::Timeout) => {
            w.send_frame_parts(&reply.parts(), Wait::timeout(Duration::from_secs(30)))
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
    /// The request `call`, owned, to be answered on `writer`.
    pub(super) fn from_call(call: &Call<'_>, writer: &Writer) -> Request {
        Request {
            method: call.method.to_owned(),
            payload: call.payload.to_vec(),
            deadline: call.deadline,
            peer: call.peer.clone(),
            codec: call.codec,
            id: call.id(),
            writer: writer.clone(),
            gone: call.gone.clone(),
        }
    }

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

    /// The request, about to start: `None` when its deadline passed while it waited (it is
    /// answered [`Status::DeadlineExceeded`] instead of started).
    pub(super) fn start(self) -> Option<Request> {
        if !self.expired() {
            return Some(self);
        }
        let _ = self.reply(Status::DeadlineExceeded, b"");
        None
    }

    /// Sends the reply. A caller that has gone is not an error for the server: the reply is
    /// dropped ([`Error::PeerGone`] is returned for information).
    pub fn reply(self, status: Status, payload: &[u8]) -> Result<(), Error> {
        send_reply(&self.writer, self.id, status, payload)
    }
}
