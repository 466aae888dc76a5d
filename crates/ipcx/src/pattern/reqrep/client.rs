//! The thread-based client: one connection shared by any number of threads, replies matched
//! to their calls by id (see the [module docs](super#serving)), and [`ClientPool`]. It drives
//! the client's state machine ([`super::client_session`]): it moves the bytes, hands the
//! reading half from caller to caller, and wakes the callers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::client_session::{Calls, ClientSession, Delivery, Read, Reply};
use super::handshake::{self, ConnectError};
use super::transport;
use super::wire::{Codec, Hello, Status};
use crate::channel::Connection as Link;
use crate::channel::ConnectionOptions;
use crate::pattern::Error;
use crate::poison::lock;
use crate::wait::Wait;

/// The calls waiting for a reply that another caller reads, each with the slot its reply is
/// stored in.
type ReadState = Calls<Option<Reply>>;

type ReaderGuard<'a> = MutexGuard<'a, Box<dyn Link>>;

#[derive(Debug)]
struct ClientInner {
    /// The writing half.
    writer: Mutex<Box<dyn Link>>,
    /// The reading half, held by the caller that reads (taken with `try_lock`: a caller
    /// that finds it held registers in `state` instead of waiting for the lock).
    reader: Mutex<Box<dyn Link>>,
    state: Mutex<ReadState>,
    /// Entries in `state.replies`: callers waiting for a reply someone else reads.
    waiters: AtomicUsize,
    /// The connection ended (`state` says why).
    dead: AtomicBool,
    /// Signalled when a reply was stored, the reader was put back while calls waited, or the
    /// connection died.
    ready: Condvar,
    session: ClientSession,
}

impl ClientInner {
    fn set_dead(&self, why: String) {
        lock(&self.state).close(why);
        self.dead.store(true, Ordering::SeqCst);
        self.ready.notify_all();
    }

    fn dead_error(&self) -> Error {
        self.session.gone(lock(&self.state).ended())
    }

    /// Registers call `id` in the table, to wait for a reply someone else reads (counted in
    /// `waiters`); fails on a connection that has ended.
    fn register(&self, st: &mut ReadState, id: u64) -> Result<(), Error> {
        st.register(id, None, &self.session)?;
        self.waiters.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Removes call `id`'s entry from the table, if it has one.
    fn forget(&self, st: &mut ReadState, id: u64) {
        if st.forget(id).is_some() {
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The reply stored for call `id`, once it has come (its entry goes then).
    fn take_reply(&self, st: &mut ReadState, id: u64) -> Option<Reply> {
        let reply = st.take_reply(id)?;
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        Some(reply)
    }

    /// Takes the reading half if nobody reads it.
    fn try_take_reader(&self) -> Option<ReaderGuard<'_>> {
        // A caller's reply handler that panicked while reading left the half itself intact.
        crate::poison::try_lock(&self.reader)
    }

    /// Puts the reading half back and, if calls wait for a reply, wakes them: one of them
    /// reads next. A caller registers (`waiters`) before it tries to take the half, and
    /// this looks at `waiters` after putting it back; the fences make sure that one of
    /// the two sees the other, so no waiter sleeps with the half free.
    fn put_back_reader(&self, g: ReaderGuard<'_>) {
        drop(g);
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 {
            let _st = lock(&self.state);
            self.ready.notify_all();
        }
    }

    /// Reads replies from `reader` as `wait` allows, storing each for its caller, until the
    /// reply to `id` has come (returned; 0: none is awaited), nothing more is there in time, or
    /// the connection ended. Each frame is decoded where the link lends it (in place in the
    /// ring).
    fn read_replies(
        &self,
        reader: &mut dyn Link,
        id: u64,
        wait: Wait,
        sink: &mut dyn FnMut(Status, &[u8]),
    ) -> bool {
        loop {
            let mut mine = false;
            let mut bad = None;
            let got = reader.recv_frame_with(wait, &mut |f| match self.session.on_frame(f) {
                Ok((rid, status, payload)) if rid == id => {
                    // Lent to the caller where it lies.
                    sink(status, payload);
                    mine = true;
                }
                Ok((rid, status, payload)) => {
                    // Another caller's reply.
                    let mut st = lock(&self.state);
                    if st.deliver(rid, status, payload) == Delivery::Delivered {
                        self.ready.notify_all();
                    }
                }
                Err(e) => bad = Some(e),
            });
            match self.session.on_read(got, bad) {
                Read::Frame if mine => return true,
                Read::Frame => {}
                Read::Nothing => return false,
                Read::Ended(why) => {
                    self.set_dead(why);
                    return false;
                }
            }
        }
    }
}

/// The requesting end: one connection to one server, shared by any number of threads.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl Client {
    /// Connects to `addr` and introduces itself as a client of `service` version `version`.
    pub fn connect(
        addr: &str,
        service: &str,
        version: u32,
        timeout: Duration,
    ) -> Result<Client, ConnectError> {
        Self::connect_hello(
            addr,
            &Hello::new(service, version, Codec::Postcard),
            timeout,
        )
    }

    /// Connects with an explicit hello (tests use it to speak another protocol version).
    pub fn connect_hello(
        addr: &str,
        hello: &Hello,
        timeout: Duration,
    ) -> Result<Client, ConnectError> {
        Self::connect_with(addr, hello, timeout, &ConnectionOptions::default())
    }

    /// Connects with an explicit hello and what `opts` gives besides the address (the
    /// certificates of a `tls:` address).
    pub fn connect_with(
        addr: &str,
        hello: &Hello,
        timeout: Duration,
        opts: &ConnectionOptions,
    ) -> Result<Client, ConnectError> {
        let link = transport::connect(addr, Wait::timeout(timeout), opts)?;
        Self::over_link(link, addr, hello, timeout)
    }

    /// Runs the handshake on a connected link; `addr` names the server in messages.
    fn over_link(
        mut link: Box<dyn Link>,
        addr: &str,
        hello: &Hello,
        timeout: Duration,
    ) -> Result<Client, ConnectError> {
        let max_frame = handshake::greet(&mut *link, addr, hello, Wait::timeout(timeout))?;
        let reader = link.take_reading_half()?;
        let inner = Arc::new(ClientInner {
            writer: Mutex::new(link),
            reader: Mutex::new(reader),
            state: Mutex::new(Calls::new()),
            waiters: AtomicUsize::new(0),
            dead: AtomicBool::new(false),
            ready: Condvar::new(),
            session: ClientSession::new(max_frame, addr),
        });
        Ok(Client { inner })
    }

    /// The server's address.
    pub fn addr(&self) -> &str {
        self.inner.session.addr()
    }

    /// Whether the connection has ended (when no call is in progress, this looks at the
    /// connection without waiting).
    pub fn is_dead(&self) -> bool {
        let inner = &*self.inner;
        if inner.dead.load(Ordering::SeqCst) {
            return true;
        }
        if let Some(mut reader) = inner.try_take_reader() {
            inner.read_replies(&mut **reader, 0, Wait::NoWait, &mut |_, _| {});
            inner.put_back_reader(reader);
        }
        inner.dead.load(Ordering::SeqCst)
    }

    /// The largest request payload the server accepts (for method `method`).
    pub fn max_payload_len(&self, method: &str) -> usize {
        self.inner.session.max_payload_len(method)
    }

    /// Sends a request and waits for its reply until `timeout` has passed.
    pub fn request(&self, method: &str, payload: &[u8], timeout: Duration) -> Result<Reply, Error> {
        self.request_with(method, payload, timeout, |status, p| Reply {
            status,
            payload: p.to_vec(),
        })
    }

    /// Sends a request and waits for its reply as `wait` allows.
    pub fn request_wait(&self, method: &str, payload: &[u8], wait: Wait) -> Result<Reply, Error> {
        self.request_wait_with(method, payload, wait, |status, p| Reply {
            status,
            payload: p.to_vec(),
        })
    }

    /// Like [`Client::request`], but lends the reply's status and payload to `f` instead of
    /// copying the payload out: where the link can, in place (in the ring), so that a caller
    /// that decodes the reply needs no buffer of its own. Returns what `f` returns.
    pub fn request_with<R>(
        &self,
        method: &str,
        payload: &[u8],
        timeout: Duration,
        f: impl FnOnce(Status, &[u8]) -> R,
    ) -> Result<R, Error> {
        // One look at the clock serves both the deadline and the time sent along.
        let wait = Wait::timeout(timeout);
        self.call(
            method,
            payload,
            wait,
            (wait != Wait::Forever).then_some(timeout),
            f,
        )
    }

    /// Like [`Client::request_wait`], lending the reply to `f` (see [`Client::request_with`]).
    pub fn request_wait_with<R>(
        &self,
        method: &str,
        payload: &[u8],
        wait: Wait,
        f: impl FnOnce(Status, &[u8]) -> R,
    ) -> Result<R, Error> {
        self.call(method, payload, wait, wait.remaining(), f)
    }

    fn call<R>(
        &self,
        method: &str,
        payload: &[u8],
        wait: Wait,
        left: Option<Duration>,
        f: impl FnOnce(Status, &[u8]) -> R,
    ) -> Result<R, Error> {
        let inner = &*self.inner;
        let call = inner.session.start_call(method, payload.len(), left)?;
        let id = call.id;
        let mut f = Some(f);
        let mut out = None;
        let mut sink = |status: Status, p: &[u8]| {
            if let Some(f) = f.take() {
                out = Some(f(status, p));
            }
        };
        // A caller that finds nobody reading replies takes the reading half before sending:
        // then nobody else can read its reply, so it needs no entry in the table.
        if inner.dead.load(Ordering::SeqCst) {
            return Err(inner.dead_error());
        }
        let own_reader = match inner.try_take_reader() {
            Some(r) => Some(r),
            None => {
                inner.register(&mut lock(&inner.state), id)?;
                None
            }
        };
        let sent =
            lock(&inner.writer).send_frame_parts(&[&call.head, method.as_bytes(), payload], wait);
        match own_reader {
            Some(mut reader) => {
                let got = match sent {
                    Ok(()) => inner.read_replies(&mut **reader, id, wait, &mut sink),
                    Err(_) => false,
                };
                // Other callers may wait: one of them reads next.
                inner.put_back_reader(reader);
                sent?;
                if got {
                    return out.ok_or(Error::Timeout);
                }
                if inner.dead.load(Ordering::SeqCst) {
                    return Err(inner.dead_error());
                }
                Err(Error::Timeout)
            }
            None => {
                if let Err(e) = sent {
                    inner.forget(&mut lock(&inner.state), id);
                    return Err(e);
                }
                self.await_reply(id, wait, &mut sink)?;
                out.ok_or(Error::Timeout)
            }
        }
    }

    /// Waits for the reply to `id`, registered in the table. No thread reads replies in the
    /// background: a caller whose reply has not come takes the reading half and reads until its
    /// own reply arrives, storing the replies of other callers on the way and waking them;
    /// callers that find the reading half taken wait to be woken.
    fn await_reply(
        &self,
        id: u64,
        wait: Wait,
        sink: &mut dyn FnMut(Status, &[u8]),
    ) -> Result<(), Error> {
        let inner = &*self.inner;
        let mut st = lock(&inner.state);
        // Whether this caller has read at least once (a call whose deadline has passed still
        // looks at what has arrived, once).
        let mut polled = false;
        loop {
            if let Some(reply) = inner.take_reply(&mut st, id) {
                drop(st);
                sink(reply.status, &reply.payload);
                return Ok(());
            }
            if st.ended().is_some() {
                let e = inner.session.gone(st.ended());
                inner.forget(&mut st, id);
                return Err(e);
            }
            let expired = wait.expired();
            // Registered (counted in `waiters`) before looking at the reading half: see
            // `put_back_reader`.
            std::sync::atomic::fence(Ordering::SeqCst);
            if (!expired || !polled)
                && let Some(mut reader) = inner.try_take_reader()
            {
                polled = true;
                // Nobody else reads now: the reply cannot be stored by another caller.
                inner.forget(&mut st, id);
                drop(st);
                let got = inner.read_replies(&mut **reader, id, wait, sink);
                // Another caller may be waiting to read its own reply.
                inner.put_back_reader(reader);
                if got {
                    return Ok(());
                }
                st = lock(&inner.state);
                if !wait.expired() {
                    // On a connection that has ended it fails: the next round says why.
                    let _ = inner.register(&mut st, id);
                }
                continue;
            }
            if expired {
                inner.forget(&mut st, id);
                return Err(Error::Timeout);
            }
            st = crate::poison::wait(&inner.ready, st, wait).0;
        }
    }
}

/// Requests spread round-robin over several servers; a dead server is skipped (and a request
/// that found it dead before sending is retried on the next one).
#[derive(Debug)]
pub struct ClientPool {
    clients: Vec<Client>,
    next: AtomicUsize,
}

impl ClientPool {
    /// A pool over connected clients.
    pub fn new(clients: Vec<Client>) -> ClientPool {
        ClientPool {
            clients,
            next: AtomicUsize::new(0),
        }
    }

    /// Sends to the next live server.
    pub fn request(&self, method: &str, payload: &[u8], timeout: Duration) -> Result<Reply, Error> {
        let wait = Wait::timeout(timeout);
        let mut last = Error::PeerGone {
            what: "no server in the pool".into(),
        };
        for _ in 0..self.clients.len() {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
            let c = &self.clients[i];
            if c.is_dead() {
                continue;
            }
            match c.request_wait(method, payload, wait) {
                Err(Error::PeerGone { what }) => last = Error::PeerGone { what },
                other => return other,
            }
        }
        Err(last)
    }
}
