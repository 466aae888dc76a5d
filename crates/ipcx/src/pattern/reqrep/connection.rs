//! The server's end of one connection ([`Connection`]): its side of the handshake, and the
//! requests it hands out to whichever thread reads it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use super::handshake::Peer;
use super::options::ServerOptions;
use super::request::{Request, Writer, send_reply};
use super::server_session::{Call, Rejected, ServerSession};
use super::wire::{HANDSHAKE_TIMEOUT, Status};
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
    /// What happens on each event of the connection.
    pub(super) session: ServerSession,
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
        let hello = link.recv_frame_wait(Wait::timeout(HANDSHAKE_TIMEOUT))?;
        let peer = Peer {
            credentials: link.peer_credentials(),
            name: link.peer_name(),
        };
        let wait = Wait::timeout(HANDSHAKE_TIMEOUT);
        let session = match ServerSession::on_hello(hello.as_deref(), &opts.admission(), peer) {
            Ok((session, welcome)) => {
                link.send_frame_wait(&welcome, wait)?;
                session
            }
            Err(Rejected { answer, error }) => {
                if let Some(refusal) = answer {
                    let _ = link.send_frame_wait(&refusal, wait);
                }
                return Err(error);
            }
        };
        let reader = link.take_reading_half()?;
        // The request limit holds for what is read; replies may be as large as a client
        // accepts (as the async server's are).
        link.set_max_frame_len(crate::framing::DEFAULT_MAX_FRAME_LEN);
        Ok(Connection::new(reader, link, session))
    }

    /// A connection past its handshake: `reader` and `writer` are its two halves.
    pub(super) fn new(
        reader: Box<dyn Link>,
        writer: Box<dyn Link>,
        session: ServerSession,
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
                session,
            }),
        }
    }

    /// Who is connected.
    pub fn peer(&self) -> &Peer {
        self.inner.session.peer()
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
        self.recv_frame(wait, &mut |f| req = Some(self.request(f)))?;
        self.unless_garbage(req)
    }

    /// Reads the next request like [`Connection::recv_wait`], but lends it to `f` where the
    /// link holds it (in place in the ring) instead of copying it out; answer it with
    /// [`Connection::reply`] and [`Call::id`]. The reading half stays taken while `f` runs:
    /// keep `f` short (copy what is needed and return).
    pub fn recv_with<R>(&self, wait: Wait, f: impl FnOnce(&Call<'_>) -> R) -> Result<R, Error> {
        let session = &self.inner.session;
        let mut f = Some(f);
        let mut out = None;
        self.recv_frame(wait, &mut |frame| {
            out = Some(
                session
                    .on_request(frame)
                    .map(|call| f.take().map(|f| f(&call))),
            );
        })?;
        match self.unless_garbage(out)? {
            Some(r) => Ok(r),
            None => Err(self.not_a_request()),
        }
    }

    /// Answers the request `id` ([`Call::id`]). A caller that has gone is not an error for
    /// the server (see [`Request::reply`]).
    pub fn reply(&self, id: u64, status: Status, payload: &[u8]) -> Result<(), Error> {
        send_reply(&self.inner.writer, id, status, payload)
    }

    /// What the frame read came to: a frame that was not a request ends the connection.
    fn unless_garbage<R>(&self, got: Option<Result<R, Error>>) -> Result<R, Error> {
        match got {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => {
                self.end();
                Err(e)
            }
            None => Err(self.not_a_request()),
        }
    }

    fn not_a_request(&self) -> Error {
        self.end();
        Error::protocol(
            self.inner.session.peer().name.clone(),
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
        self.inner.session.closed_error()
    }

    pub(super) fn end(&self) {
        self.inner.ended.store(true, Ordering::SeqCst);
        self.inner.session.on_closed();
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

    /// The request in frame `f`, owned (`Err`: not a request; the connection ends).
    pub(super) fn request(&self, f: &[u8]) -> Result<Request, Error> {
        let call = self.inner.session.on_request(f)?;
        Ok(Request::from_call(&call, &self.inner.writer))
    }
}
