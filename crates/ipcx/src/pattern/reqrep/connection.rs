//! The server's end of one connection ([`Connection`]): its side of the handshake, and the
//! requests it hands out to whichever thread reads it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use super::handshake::{self, Peer};
use super::options::ServerOptions;
use super::request::{Call, Request, Writer, send_reply};
use super::wire::{self, Codec, Frame, HANDSHAKE_TIMEOUT, Status};
use crate::channel::{Connection as Link, Listener};
use crate::pattern::Error;
use crate::poison::lock;
use crate::wait::Wait;

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
    /// The codec the client named in its hello.
    pub(super) codec: Codec,
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
            codec: self.codec,
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
    /// the handshake (version checks, authorisation) as `opts` say; a client that
    /// fails the handshake is refused and [`Error::Protocol`] returned.
    pub fn accept(
        listener: &dyn Listener,
        opts: &ServerOptions,
        wait: Wait,
    ) -> Result<Connection, Error> {
        let link = listener.accept_wait(wait)?;
        Connection::handshake(link, opts)
    }

    /// The server's side of the handshake on a freshly accepted link.
    pub(super) fn handshake(
        mut link: Box<dyn Link>,
        opts: &ServerOptions,
    ) -> Result<Connection, Error> {
        link.set_max_frame_len(opts.max_request_len);
        let hello = match link.recv_frame_wait(Wait::timeout(HANDSHAKE_TIMEOUT))? {
            Some(f) => match Frame::decode(&f) {
                Ok(Frame::Hello(h)) => h,
                _ => return Err(Error::protocol(link.peer_name(), "expected a hello")),
            },
            None => {
                return Err(Error::PeerGone {
                    what: format!("{} left during the handshake", link.peer_name()),
                });
            }
        };
        let peer = Peer {
            credentials: link.peer_credentials(),
            name: link.peer_name(),
        };
        let wait = Wait::timeout(HANDSHAKE_TIMEOUT);
        let codec = Codec::from_tag(hello.codec).unwrap_or_default();
        match handshake::answer(&hello, &opts.admission(), &peer) {
            Ok(welcome) => link.send_frame_wait(&welcome.encode(), wait)?,
            Err((refusal, message)) => {
                let _ = link.send_frame_wait(&refusal.encode(), wait);
                return Err(Error::protocol(link.peer_name(), message));
            }
        }
        let reader = link.take_reading_half()?;
        Ok(Connection::new(reader, link, Arc::new(peer), codec))
    }

    /// A connection past its handshake: `reader` and `writer` are its two halves.
    pub(super) fn new(
        reader: Box<dyn Link>,
        writer: Box<dyn Link>,
        peer: Arc<Peer>,
        codec: Codec,
    ) -> Connection {
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
                codec,
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
            codec: self.inner.codec,
            id,
            writer: self.inner.writer.clone(),
            gone: self.inner.gone.clone(),
        })
    }
}
