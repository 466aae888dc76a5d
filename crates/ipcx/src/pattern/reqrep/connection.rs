//! The server's end of one connection after the handshake ([`Connection`]), the requests it
//! hands out ([`Request`], or [`Call`] lent in place) and their replies.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::handshake;
use super::server::{Peer, ServerOptions};
use super::wire::{self, Frame, Status};
use crate::pattern::{Error, Link, LinkListener};
use crate::poison::lock;
use crate::wait::Wait;

/// A request lent by the connection, without copying its method name or payload out (see
/// [`Connection::recv_with`] and [`ServerOptions::call_handler`]).
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
    id: u64,
}

impl Call<'_> {
    /// The request's id, to answer it with [`Connection::reply`].
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
    id: u64,
    writer: Writer,
    gone: Arc<AtomicBool>,
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

/// The server's end of one connection, after the handshake.
#[derive(Debug)]
pub(super) struct ConnInner {
    /// The reading half; `None` while a thread reads it.
    pub(super) reader: Mutex<Option<Box<dyn Link>>>,
    /// Signalled when the reading half is put back (only when `waiting` says someone waits).
    pub(super) readable: Condvar,
    /// Threads waiting in [`Connection::recv_wait`] for the reading half.
    pub(super) waiting: AtomicUsize,
    /// Times the reading half was put back: the watcher's clock for a half left unread.
    pub(super) releases: AtomicU64,
    /// Requests of this connection running on their reading thread (handler mode).
    pub(super) running: AtomicUsize,
    /// Threads serving this connection (handler mode).
    pub(super) threads: AtomicUsize,
    /// The connection ended (the caller closed it, died or sent garbage).
    pub(super) ended: AtomicBool,
    pub(super) writer: Writer,
    pub(super) gone: Arc<AtomicBool>,
    pub(super) peer: Arc<Peer>,
}

impl ConnInner {
    /// The request in `frame`, lent as a [`Call`] (`None`: not a request frame).
    pub(super) fn call<'a>(&'a self, frame: &'a [u8]) -> Option<Call<'a>> {
        let (id, deadline_ms, method, payload) = wire::decode_request(frame).ok()?;
        Some(Call {
            method,
            payload,
            deadline: wire::deadline_of(deadline_ms),
            peer: &self.peer,
            gone: &self.gone,
            id,
        })
    }
}

/// The server's end of one connection, read by whichever thread calls
/// [`Connection::recv_wait`]: the request comes straight from the link to that thread, and
/// its reply goes straight from that thread to the link (no hand-off between threads). For a
/// program that serves a connection on a thread of its own; [`Server`](super::Server) serves many.
#[derive(Debug, Clone)]
pub struct Connection {
    pub(super) inner: Arc<ConnInner>,
}

impl Connection {
    /// Accepts one client on `listener` (waiting as `wait` allows for it to connect) and runs
    /// the handshake (upgrade, version checks, authorisation) as `opts` say; a client that
    /// fails the handshake is refused and [`Error::Protocol`] returned.
    pub fn accept(
        listener: &LinkListener,
        opts: &ServerOptions,
        wait: Wait,
    ) -> Result<Connection, Error> {
        let link = listener.accept_wait(wait)?;
        handshake::accept(link, opts)
    }

    /// A connection past its handshake: `reader` and `writer` are its two halves.
    pub(super) fn new(reader: Box<dyn Link>, writer: Box<dyn Link>, peer: Arc<Peer>) -> Connection {
        Connection {
            inner: Arc::new(ConnInner {
                reader: Mutex::new(Some(reader)),
                readable: Condvar::new(),
                waiting: AtomicUsize::new(0),
                releases: AtomicU64::new(0),
                running: AtomicUsize::new(0),
                threads: AtomicUsize::new(1),
                ended: AtomicBool::new(false),
                writer: Arc::new(Mutex::new(writer)),
                gone: Arc::new(AtomicBool::new(false)),
                peer,
            }),
        }
    }

    /// Who is connected.
    pub fn peer(&self) -> &Peer {
        &self.inner.peer
    }

    /// Whether the connection has ended (noticed while a thread reads it).
    pub fn is_ended(&self) -> bool {
        self.inner.ended.load(Ordering::SeqCst)
    }

    /// Reads the next request on the calling thread, waiting as `wait` allows (also for
    /// another thread that is reading). The connection's end is [`Error::PeerGone`]; a
    /// malformed frame ends the connection. A request whose deadline has passed is returned
    /// like any other ([`Request::expired`]).
    pub fn recv_wait(&self, wait: Wait) -> Result<Request, Error> {
        let mut req = None;
        self.recv_frame(wait, &mut |f| req = self.request(f))?;
        req.ok_or_else(|| self.not_a_request())
    }

    /// Reads the next request like [`Connection::recv_wait`], but lends it to `f` where the
    /// link holds it (in place in the ring) instead of copying it out; answer it with
    /// [`Connection::reply`] and [`Call::id`]. The reading half stays taken while `f` runs:
    /// keep `f` short (copy what is needed and return).
    pub fn recv_with<R>(&self, wait: Wait, f: impl FnOnce(&Call<'_>) -> R) -> Result<R, Error> {
        let inner = &*self.inner;
        let mut f = Some(f);
        let mut out = None;
        let mut bad = false;
        self.recv_frame(wait, &mut |frame| match inner.call(frame) {
            Some(call) => {
                if let Some(f) = f.take() {
                    out = Some(f(&call));
                }
            }
            None => bad = true,
        })?;
        match out {
            Some(r) if !bad => Ok(r),
            _ => Err(self.not_a_request()),
        }
    }

    /// Answers the request `id` ([`Call::id`]). A caller that has gone is not an error for
    /// the server (see [`Request::reply`]).
    pub fn reply(&self, id: u64, status: Status, payload: &[u8]) -> Result<(), Error> {
        send_reply(&self.inner.writer, id, status, payload)
    }

    fn not_a_request(&self) -> Error {
        self.end();
        Error::protocol(
            self.inner.peer.name.clone(),
            "the client sent something else than a request",
        )
    }

    /// Takes the reading half (waiting as `wait` allows), reads one frame into `f`, puts the
    /// half back; ends the connection on its end or failure.
    fn recv_frame(&self, wait: Wait, f: &mut dyn FnMut(&[u8])) -> Result<(), Error> {
        let inner = &*self.inner;
        let mut reader = {
            let mut slot = lock(&inner.reader);
            loop {
                if inner.ended.load(Ordering::SeqCst) {
                    return Err(self.ended_error());
                }
                if let Some(r) = slot.take() {
                    break r;
                }
                if wait.expired() {
                    return Err(Error::Timeout);
                }
                inner.waiting.fetch_add(1, Ordering::SeqCst);
                slot = crate::poison::wait(&inner.readable, slot, wait).0;
                inner.waiting.fetch_sub(1, Ordering::SeqCst);
            }
        };
        let got = reader.recv_frame_with(wait, f);
        self.put_back(reader);
        match got {
            Ok(true) => Ok(()),
            Err(e @ (Error::Timeout | Error::WouldBlock)) => Err(e),
            // End of stream, a client that vanished, or an oversize frame: the connection
            // ends; calls in progress learn that nobody waits for them.
            Ok(false) => {
                self.end();
                Err(self.ended_error())
            }
            Err(e) => {
                self.end();
                Err(e)
            }
        }
    }

    fn ended_error(&self) -> Error {
        Error::PeerGone {
            what: format!("{} closed the connection", self.inner.peer.name),
        }
    }

    pub(super) fn end(&self) {
        self.inner.ended.store(true, Ordering::SeqCst);
        self.inner.gone.store(true, Ordering::SeqCst);
        let _g = lock(&self.inner.reader);
        self.inner.readable.notify_all();
    }

    pub(super) fn put_back(&self, reader: Box<dyn Link>) {
        let inner = &*self.inner;
        *lock(&inner.reader) = Some(reader);
        inner.releases.fetch_add(1, Ordering::SeqCst);
        if inner.waiting.load(Ordering::SeqCst) > 0 {
            inner.readable.notify_one();
        }
    }

    /// Takes the reading half if nobody reads it; `None` when another thread does.
    pub(super) fn try_take_reader(&self) -> Option<Box<dyn Link>> {
        lock(&self.inner.reader).take()
    }

    pub(super) fn request(&self, f: &[u8]) -> Option<Request> {
        let Ok(Frame::Request {
            id,
            deadline_ms,
            method,
            payload,
        }) = Frame::decode(f)
        else {
            return None;
        };
        Some(Request {
            method,
            payload,
            deadline: wire::deadline_of(deadline_ms),
            peer: self.inner.peer.clone(),
            id,
            writer: self.inner.writer.clone(),
            gone: self.inner.gone.clone(),
        })
    }
}
