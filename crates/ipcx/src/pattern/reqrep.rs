//! Request/reply: many clients, many servers, replies routed to the right caller, many
//! outstanding requests per connection, a deadline on every request.
//!
//! A [`Server`] binds an address ([`Endpoint`]); a [`Client`] connects, introduces itself with
//! a versioned handshake ([`Hello`]), and sends [`Frame::Request`]s, each with an id, a method
//! name, a payload and the time left before its deadline. Replies carry the request's id, so
//! any number of threads can share one client ([`Client`] is `Clone + Send + Sync`) and
//! replies may come back in any order. Past its deadline a request fails with
//! [`Error::Timeout`] on the client; the server sees the deadline ([`Request::deadline`]) and
//! does not start a request whose deadline has passed. A [`ClientPool`] spreads requests over
//! several servers and skips dead ones.
//!
//! The server's [`Authorize`] hook sees each connecting peer's kernel-verified credentials
//! (Unix sockets) and may refuse the connection.
//!
//! The typed RPC layer ([`crate::rpc`]) is built on this module.
//!
//! # Serving
//! A request is answered without passing it between threads wherever that can be avoided,
//! since each hand-off costs a futex wake-up, tens of times the cost of a ring round trip:
//! * **Handler mode** ([`ServerOptions::handler`], what [`crate::rpc`] uses): the thread that
//!   reads a connection runs the request itself and writes the reply itself. Before running it,
//!   the thread puts the connection's reading half back; if a request runs for longer than
//!   about 0.2 ms while nobody reads its connection, the server's watcher thread starts another
//!   thread on that connection (up to [`ServerOptions::threads_per_connection`]), which reads
//!   and runs the next request; a thread that finishes a request and finds another thread
//!   reading leaves. So a lone caller is served by one thread with no hand-off, concurrent
//!   calls on one connection still run side by side, and a caller that vanishes during a long
//!   call is noticed (by the thread that took over reading). The watcher ticks only while
//!   requests run and sleeps otherwise. A panicking handler is caught; the connection goes on.
//! * **Queue mode** (no handler): each connection's thread queues requests for whichever
//!   thread calls [`Server::recv`].
//! * **One connection, one thread** ([`Connection`]): a program may accept a connection and
//!   read its requests on its own thread ([`Connection::recv_wait`]), replying from it.
//!
//! On the client, a caller that finds nobody reading replies takes the reading half before
//! sending and reads its own reply (the ring spins briefly, then sleeps); callers that come
//! while another reads register in a table, and whoever reads stores their replies and wakes
//! them. Frames are decoded where the link lends them ([`Link::recv_frame_with`]: in place in
//! the ring).
//!
//! # Wire format
//! Every message is one ipcx frame; [`Frame::decode`] reads one, checking every length
//! against the bytes present (it never panics and never allocates more than the frame).
//! Integers are big-endian.
//! ```text
//! hello     'I' 'P' 'C' 'X' 'R' 'Q' proto:u16 service_version:u32 service_len:u16 service
//! welcome   0x10 max_frame:u32
//! refused   0x11 reason:u8 server_proto:u16 server_version:u32 msg_len:u16 msg
//! request   0x01 id:u64 deadline_ms:u32 (0: none) method_len:u16 method payload
//! reply     0x02 id:u64 status:u8 payload
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Error;
use crate::channel::{Connection as Link, Endpoint, Listener};
use crate::poison::lock;
use crate::socket::Credentials;
use crate::wait::Wait;

/// The wire protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;
const MAGIC: &[u8; 6] = b"IPCXRQ";
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest method or service name.
pub const MAX_NAME_LEN: usize = 255;

/// The largest request payload for `method` in frames of at most `max_frame` bytes (a request
/// header takes 15 bytes and the method name).
pub(crate) fn max_request_payload(max_frame: usize, method: &str) -> usize {
    max_frame.saturating_sub(15 + method.len())
}

/// Refuses, before anything is sent, a request the server to `addr` could not take: a method
/// name over [`MAX_NAME_LEN`], or a payload over [`max_request_payload`].
pub(crate) fn check_request(
    method: &str,
    payload_len: usize,
    max_frame: usize,
    addr: &str,
) -> Result<(), Error> {
    if method.len() > MAX_NAME_LEN {
        return Err(Error::TooLarge {
            len: method.len(),
            max: MAX_NAME_LEN,
            what: "a method name".into(),
        });
    }
    let max = max_request_payload(max_frame, method);
    if payload_len > max {
        return Err(Error::TooLarge {
            len: payload_len,
            max,
            what: format!("requests to {addr} (the server's limit)"),
        });
    }
    Ok(())
}

/// A reply's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Success: the payload is the result.
    Ok,
    /// The handler reported an application error: the payload describes it.
    AppError,
    /// No such method on the server.
    UnknownMethod,
    /// The server could not decode the request's payload.
    BadRequest,
    /// The deadline passed before the server could answer.
    DeadlineExceeded,
    /// The handler panicked (the server keeps running).
    Panicked,
    /// The request is larger than the server accepts.
    TooLarge,
    /// The server is shutting down or overloaded.
    Unavailable,
}

impl Status {
    fn to_u8(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::AppError => 1,
            Status::UnknownMethod => 2,
            Status::BadRequest => 3,
            Status::DeadlineExceeded => 4,
            Status::Panicked => 5,
            Status::TooLarge => 6,
            Status::Unavailable => 7,
        }
    }
    fn from_u8(b: u8) -> Option<Status> {
        Some(match b {
            0 => Status::Ok,
            1 => Status::AppError,
            2 => Status::UnknownMethod,
            3 => Status::BadRequest,
            4 => Status::DeadlineExceeded,
            5 => Status::Panicked,
            6 => Status::TooLarge,
            7 => Status::Unavailable,
            _ => return None,
        })
    }
}

/// Why a server refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The wire protocol versions differ.
    ProtocolVersion,
    /// The client asked for another service than the one served here.
    WrongService,
    /// The service versions differ.
    ServiceVersion,
    /// The authorisation hook said no.
    Denied,
}

impl Refusal {
    fn to_u8(self) -> u8 {
        match self {
            Refusal::ProtocolVersion => 1,
            Refusal::WrongService => 2,
            Refusal::ServiceVersion => 3,
            Refusal::Denied => 4,
        }
    }
    fn from_u8(b: u8) -> Option<Refusal> {
        Some(match b {
            1 => Refusal::ProtocolVersion,
            2 => Refusal::WrongService,
            3 => Refusal::ServiceVersion,
            4 => Refusal::Denied,
            _ => return None,
        })
    }
}

/// A client's introduction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Wire protocol version.
    pub protocol: u16,
    /// Service name.
    pub service: String,
    /// Service version.
    pub version: u32,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// A client's hello.
    Hello(Hello),
    /// The server accepts; requests up to `max_frame` bytes.
    Welcome {
        /// Largest request frame the server accepts.
        max_frame: u32,
    },
    /// The server refuses the connection.
    Refused {
        /// Why.
        reason: Refusal,
        /// The server's protocol version.
        protocol: u16,
        /// The server's service version.
        version: u32,
        /// A message for humans.
        message: String,
    },
    /// A request.
    Request {
        /// Id chosen by the client, echoed in the reply.
        id: u64,
        /// Milliseconds left before the deadline when sent; 0: no deadline.
        deadline_ms: u32,
        /// Method name.
        method: String,
        /// Arguments.
        payload: Vec<u8>,
    },
    /// A reply.
    Reply {
        /// The request's id.
        id: u64,
        /// Outcome.
        status: Status,
        /// Result or error description.
        payload: Vec<u8>,
    },
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed request/reply frame: {0}")]
pub struct DecodeError(pub &'static str);

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError("frame cut short"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().map_err(|_| DecodeError("u16"))?,
        ))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().map_err(|_| DecodeError("u32"))?,
        ))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().map_err(|_| DecodeError("u64"))?,
        ))
    }
    fn name(&mut self, len: usize) -> Result<String, DecodeError> {
        if len > MAX_NAME_LEN {
            return Err(DecodeError("name longer than 255 bytes"));
        }
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| DecodeError("name is not UTF-8"))
    }
    fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0).to_vec()
    }
    fn end(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes"))
        }
    }
}

fn put_name(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(MAX_NAME_LEN)];
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

impl Frame {
    /// Decodes one frame, checking every length against the bytes present.
    pub fn decode(bytes: &[u8]) -> Result<Frame, DecodeError> {
        if let Some(rest) = bytes.strip_prefix(MAGIC) {
            let mut c = Cursor(rest);
            let protocol = c.u16()?;
            let version = c.u32()?;
            let len = usize::from(c.u16()?);
            let service = c.name(len)?;
            c.end()?;
            return Ok(Frame::Hello(Hello {
                protocol,
                service,
                version,
            }));
        }
        let mut c = Cursor(bytes);
        let f = match c.u8()? {
            0x10 => Frame::Welcome {
                max_frame: c.u32()?,
            },
            0x11 => {
                let reason = Refusal::from_u8(c.u8()?).ok_or(DecodeError("unknown refusal"))?;
                let protocol = c.u16()?;
                let version = c.u32()?;
                let len = usize::from(c.u16()?);
                let message = String::from_utf8_lossy(c.take(len)?).into_owned();
                Frame::Refused {
                    reason,
                    protocol,
                    version,
                    message,
                }
            }
            0x01 => {
                let id = c.u64()?;
                let deadline_ms = c.u32()?;
                let len = usize::from(c.u16()?);
                let method = c.name(len)?;
                return Ok(Frame::Request {
                    id,
                    deadline_ms,
                    method,
                    payload: c.rest(),
                });
            }
            0x02 => {
                let id = c.u64()?;
                let status = Status::from_u8(c.u8()?).ok_or(DecodeError("unknown status"))?;
                return Ok(Frame::Reply {
                    id,
                    status,
                    payload: c.rest(),
                });
            }
            _ => return Err(DecodeError("unknown frame kind")),
        };
        c.end()?;
        Ok(f)
    }

    /// Encodes the frame (names are cut at [`MAX_NAME_LEN`] bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Frame::Hello(h) => {
                out.extend_from_slice(MAGIC);
                out.extend_from_slice(&h.protocol.to_be_bytes());
                out.extend_from_slice(&h.version.to_be_bytes());
                put_name(&mut out, &h.service);
            }
            Frame::Welcome { max_frame } => {
                out.push(0x10);
                out.extend_from_slice(&max_frame.to_be_bytes());
            }
            Frame::Refused {
                reason,
                protocol,
                version,
                message,
            } => {
                out.push(0x11);
                out.push(reason.to_u8());
                out.extend_from_slice(&protocol.to_be_bytes());
                out.extend_from_slice(&version.to_be_bytes());
                let m = &message.as_bytes()[..message.len().min(1024)];
                out.extend_from_slice(&(m.len() as u16).to_be_bytes());
                out.extend_from_slice(m);
            }
            Frame::Request {
                id,
                deadline_ms,
                method,
                payload,
            } => {
                out.reserve(16 + method.len() + payload.len());
                out.push(0x01);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&deadline_ms.to_be_bytes());
                put_name(&mut out, method);
                out.extend_from_slice(payload);
            }
            Frame::Reply {
                id,
                status,
                payload,
            } => {
                out.reserve(10 + payload.len());
                out.push(0x02);
                out.extend_from_slice(&id.to_be_bytes());
                out.push(status.to_u8());
                out.extend_from_slice(payload);
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Client

/// A reply as the client receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Outcome.
    pub status: Status,
    /// Result or error description.
    pub payload: Vec<u8>,
}

/// Why a connection could not be set up, beyond transport errors: the server refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub reason: Refusal,
    /// The server's wire protocol version.
    pub server_protocol: u16,
    /// The server's service version.
    pub server_version: u32,
    /// The server's message.
    pub message: String,
}

/// What has been read from a client's connection for callers that do not read themselves.
#[derive(Debug)]
struct ReadState {
    /// The calls waiting for a reply, and the replies read for them so far.
    replies: HashMap<u64, Option<Reply>>,
    /// Why the connection ended, once it has.
    dead: Option<String>,
}

impl ReadState {
    /// Registers a call waiting for its reply (`waiters` counts the entries).
    fn register(&mut self, id: u64, waiters: &AtomicUsize) {
        if self.replies.insert(id, None).is_none() {
            waiters.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Removes a call's entry, returning its reply if one was stored.
    fn unregister(&mut self, id: u64, waiters: &AtomicUsize) -> Option<Reply> {
        let slot = self.replies.remove(&id)?;
        waiters.fetch_sub(1, Ordering::SeqCst);
        slot
    }
}

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
    /// The connection ended (`state.dead` says why).
    dead: AtomicBool,
    /// Signalled when a reply was stored, the reader was put back while calls waited, or the
    /// connection died.
    ready: Condvar,
    next_id: AtomicU64,
    max_frame: usize,
    addr: String,
}

impl ClientInner {
    fn set_dead(&self, why: String) {
        let mut st = lock(&self.state);
        if st.dead.is_none() {
            st.dead = Some(why);
        }
        self.dead.store(true, Ordering::SeqCst);
        self.ready.notify_all();
    }

    fn dead_error(&self) -> Error {
        Error::PeerGone {
            what: lock(&self.state)
                .dead
                .clone()
                .unwrap_or_else(|| format!("the connection to {} ended", self.addr)),
        }
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
            let got = reader.recv_frame_with(wait, &mut |f| match decode_reply(f) {
                Ok((rid, status, payload)) if rid == id => {
                    // Lent to the caller where it lies.
                    sink(status, payload);
                    mine = true;
                }
                Ok((rid, status, payload)) => {
                    let mut st = lock(&self.state);
                    if let Some(slot) = st.replies.get_mut(&rid) {
                        *slot = Some(Reply {
                            status,
                            payload: payload.to_vec(),
                        });
                        // Another caller's reply.
                        self.ready.notify_all();
                    }
                }
                Err(e) => bad = Some(e),
            });
            match got {
                Ok(true) => {
                    if let Some(e) = bad {
                        self.set_dead(format!("the server at {} sent garbage: {e}", self.addr));
                        return false;
                    }
                    if mine {
                        return true;
                    }
                }
                Ok(false) => {
                    self.set_dead(format!("the server at {} closed the connection", self.addr));
                    return false;
                }
                Err(Error::Timeout | Error::WouldBlock) => return false,
                Err(e) => {
                    self.set_dead(format!("the connection to {} failed: {e}", self.addr));
                    return false;
                }
            }
        }
    }
}

/// Decodes a reply in place: id, status, payload.
fn decode_reply(f: &[u8]) -> Result<(u64, Status, &[u8]), DecodeError> {
    let mut c = Cursor(f);
    if c.u8()? != 0x02 {
        return Err(DecodeError("expected a reply"));
    }
    let id = c.u64()?;
    let status = Status::from_u8(c.u8()?).ok_or(DecodeError("unknown status"))?;
    Ok((id, status, c.0))
}

/// Decodes a request in place: id, deadline_ms, method, payload.
fn decode_request(f: &[u8]) -> Result<(u64, u32, &str, &[u8]), DecodeError> {
    let mut c = Cursor(f);
    if c.u8()? != 0x01 {
        return Err(DecodeError("expected a request"));
    }
    let id = c.u64()?;
    let deadline_ms = c.u32()?;
    let len = usize::from(c.u16()?);
    if len > MAX_NAME_LEN {
        return Err(DecodeError("name longer than 255 bytes"));
    }
    let method = std::str::from_utf8(c.take(len)?).map_err(|_| DecodeError("name is not UTF-8"))?;
    Ok((id, deadline_ms, method, c.0))
}

/// The header of a request frame (the method name and the payload follow it).
fn request_header(id: u64, deadline_ms: u32, method: &str) -> [u8; 15] {
    let mut h = [0u8; 15];
    h[0] = 0x01;
    h[1..9].copy_from_slice(&id.to_be_bytes());
    h[9..13].copy_from_slice(&deadline_ms.to_be_bytes());
    h[13..15].copy_from_slice(&(method.len() as u16).to_be_bytes());
    h
}

/// Sends a reply frame on `writer`: without waiting first (no clock read), then, if the link
/// is full, waiting up to 30 s for room.
fn send_reply(writer: &Writer, id: u64, status: Status, payload: &[u8]) -> Result<(), Error> {
    let mut h = [0u8; 10];
    h[0] = 0x02;
    h[1..9].copy_from_slice(&id.to_be_bytes());
    h[9] = status.to_u8();
    let mut w = lock(writer);
    match w.send_frame_parts(&[&h, payload], Wait::NoWait) {
        Err(Error::Full { .. } | Error::WouldBlock | Error::Timeout) => {
            w.send_frame_parts(&[&h, payload], Wait::timeout(Duration::from_secs(30)))
        }
        r => r,
    }
}

/// The requesting end: one connection to one server, shared by any number of threads.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

/// What [`Client::connect`] can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Transport failure (nobody there, timeout, protocol garbage).
    #[error(transparent)]
    Transport(#[from] Error),
    /// The server refused the connection.
    #[error("server refused the connection ({:?}): {}", .0.reason, .0.message)]
    Refused(Refused),
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
            &Hello {
                protocol: PROTOCOL_VERSION,
                service: service.to_owned(),
                version,
            },
            timeout,
        )
    }

    /// Connects with an explicit hello (tests use it to speak another protocol version).
    pub fn connect_hello(
        addr: &str,
        hello: &Hello,
        timeout: Duration,
    ) -> Result<Client, ConnectError> {
        let link = Endpoint::parse(addr)?.connect(Wait::timeout(timeout))?;
        Self::connect_link(link, addr, hello, timeout)
    }

    /// Runs the handshake on a connected link (another transport, such as TLS); `addr` names
    /// the server in messages.
    pub fn connect_link(
        mut link: Box<dyn Link>,
        addr: &str,
        hello: &Hello,
        timeout: Duration,
    ) -> Result<Client, ConnectError> {
        let wait = Wait::timeout(timeout);
        link.send_frame_wait(&Frame::Hello(hello.clone()).encode(), wait)?;
        let f = link
            .recv_frame_wait(wait)
            .map_err(|e| match e {
                // A length prefix that large is not an ipcx answer at all.
                Error::TooLarge { .. } => Error::protocol(
                    addr,
                    "the answer is not an ipcx request/reply welcome (another protocol, or a TLS server: connect with TLS)",
                ),
                e => e,
            })?
            .ok_or_else(|| Error::PeerGone {
            what: format!("the server at {addr} closed during the handshake"),
        })?;
        let max_frame = match Frame::decode(&f) {
            Ok(Frame::Welcome { max_frame }) => max_frame as usize,
            Ok(Frame::Refused {
                reason,
                protocol,
                version,
                message,
            }) => {
                return Err(ConnectError::Refused(Refused {
                    reason,
                    server_protocol: protocol,
                    server_version: version,
                    message,
                }));
            }
            Ok(_) => return Err(Error::protocol(addr, "expected welcome or refusal").into()),
            Err(e) => return Err(Error::protocol(addr, e.0).into()),
        };
        let reader = link.take_reading_half()?;
        let inner = Arc::new(ClientInner {
            writer: Mutex::new(link),
            reader: Mutex::new(reader),
            state: Mutex::new(ReadState {
                replies: HashMap::new(),
                dead: None,
            }),
            waiters: AtomicUsize::new(0),
            dead: AtomicBool::new(false),
            ready: Condvar::new(),
            next_id: AtomicU64::new(1),
            max_frame,
            addr: addr.to_owned(),
        });
        Ok(Client { inner })
    }

    /// The server's address.
    pub fn addr(&self) -> &str {
        &self.inner.addr
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
        max_request_payload(self.inner.max_frame, method)
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
        let deadline_ms = match wait {
            Wait::Forever => 0,
            _ => u32::try_from(timeout.as_millis().max(1)).unwrap_or(u32::MAX),
        };
        self.call(method, payload, wait, deadline_ms, f)
    }

    /// Like [`Client::request_wait`], lending the reply to `f` (see [`Client::request_with`]).
    pub fn request_wait_with<R>(
        &self,
        method: &str,
        payload: &[u8],
        wait: Wait,
        f: impl FnOnce(Status, &[u8]) -> R,
    ) -> Result<R, Error> {
        let deadline_ms = match wait.remaining() {
            None => 0,
            Some(d) => u32::try_from(d.as_millis().max(1)).unwrap_or(u32::MAX),
        };
        self.call(method, payload, wait, deadline_ms, f)
    }

    fn call<R>(
        &self,
        method: &str,
        payload: &[u8],
        wait: Wait,
        deadline_ms: u32,
        f: impl FnOnce(Status, &[u8]) -> R,
    ) -> Result<R, Error> {
        check_request(
            method,
            payload.len(),
            self.inner.max_frame,
            &self.inner.addr,
        )?;
        let mut f = Some(f);
        let mut out = None;
        let mut sink = |status: Status, p: &[u8]| {
            if let Some(f) = f.take() {
                out = Some(f(status, p));
            }
        };
        let inner = &*self.inner;
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        // A caller that finds nobody reading replies takes the reading half before sending:
        // then nobody else can read its reply, so it needs no entry in the table.
        if inner.dead.load(Ordering::SeqCst) {
            return Err(inner.dead_error());
        }
        let own_reader = match inner.try_take_reader() {
            Some(r) => Some(r),
            None => {
                let mut st = lock(&inner.state);
                if let Some(what) = st.dead.clone() {
                    return Err(Error::PeerGone { what });
                }
                st.register(id, &inner.waiters);
                None
            }
        };
        let sent = {
            let head = request_header(id, deadline_ms, method);
            lock(&inner.writer).send_frame_parts(&[&head, method.as_bytes(), payload], wait)
        };
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
                    lock(&inner.state).unregister(id, &inner.waiters);
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
            if let Some(Some(_)) = st.replies.get(&id)
                && let Some(reply) = st.unregister(id, &inner.waiters)
            {
                drop(st);
                sink(reply.status, &reply.payload);
                return Ok(());
            }
            if let Some(what) = st.dead.clone() {
                st.unregister(id, &inner.waiters);
                return Err(Error::PeerGone { what });
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
                st.unregister(id, &inner.waiters);
                drop(st);
                let got = inner.read_replies(&mut **reader, id, wait, sink);
                // Another caller may be waiting to read its own reply.
                inner.put_back_reader(reader);
                if got {
                    return Ok(());
                }
                st = lock(&inner.state);
                if st.dead.is_none() && !wait.expired() {
                    st.register(id, &inner.waiters);
                }
                continue;
            }
            if expired {
                st.unregister(id, &inner.waiters);
                return Err(Error::Timeout);
            }
            st = match wait.remaining() {
                None => inner.ready.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(left) => {
                    inner
                        .ready
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
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

// ---------------------------------------------------------------------------------------------
// Server

/// The peer a request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Peer {
    /// Kernel-verified credentials (Unix sockets).
    pub credentials: Option<Credentials>,
    /// A description (address or pid).
    pub name: String,
}

/// The authorisation hook: decides, per connecting peer, whether it may call.
pub type Authorize = Arc<dyn Fn(&Peer) -> bool + Send + Sync>;

/// A hook run on each accepted connection before the handshake, on the connection's own
/// thread: it may wrap the link (a TLS server handshake) or refuse it with an error.
pub type Upgrade = Arc<dyn Fn(Box<dyn Link>) -> Result<Box<dyn Link>, Error> + Send + Sync>;

/// A handler run on the thread that read the request (see [`ServerOptions::handler`]). It
/// answers with [`Request::reply`]; a panic is caught (the connection goes on), but a handler
/// that panics before replying leaves its caller to time out, so catch panics and answer
/// [`Status::Panicked`] where that matters (the typed RPC layer does).
pub type Handler = Arc<dyn Fn(Request) + Send + Sync>;

/// A handler that answers a call lent in place (see [`ServerOptions::call_handler`]): it
/// writes the reply's payload into the buffer (empty on entry) and returns the reply's status;
/// the server sends the reply. A panic is caught and answered [`Status::Panicked`].
pub type CallHandler = Arc<dyn Fn(&Call<'_>, &mut Vec<u8>) -> Status + Send + Sync>;

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

/// The deadline `deadline_ms` milliseconds from now (0: none).
fn deadline_of(deadline_ms: u32) -> Option<Instant> {
    (deadline_ms > 0)
        .then(|| Instant::now().checked_add(Duration::from_millis(u64::from(deadline_ms))))
        .flatten()
}

/// Server settings.
#[derive(Clone)]
pub struct ServerOptions {
    /// The service name clients must ask for.
    pub service: String,
    /// The service version clients must ask for.
    pub version: u32,
    /// Largest request frame accepted (default 16 MiB).
    pub max_request_len: usize,
    /// Requests queued for [`Server::recv`] before connections stop being read (default
    /// 1024; unused with a [`handler`](ServerOptions::handler)).
    pub queue_len: usize,
    /// Who may connect (default: everyone who can reach the address).
    pub authorize: Option<Authorize>,
    /// Wraps each accepted connection before the handshake (default: none).
    pub upgrade: Option<Upgrade>,
    /// Runs each request on the thread that read it, instead of queueing it for
    /// [`Server::recv`] (default: none, queue). See the [module docs](self#serving).
    pub handler: Option<Handler>,
    /// Like [`handler`](ServerOptions::handler) (and used instead of it when both are set),
    /// but the call is lent to the handler ([`Call`]) and its reply encoded into a buffer the
    /// connection thread reuses: no allocation per call. What [`crate::rpc`] uses.
    pub call_handler: Option<CallHandler>,
    /// With a handler: how many requests of one connection may run at once, that is how
    /// many threads may serve one connection (default 4, at least 1).
    pub threads_per_connection: usize,
    /// Which users may connect over Unix sockets (default: our own uid only; see
    /// [`crate::trust`]): another user's client is refused in the handshake
    /// ([`Refusal::Denied`], saying so). TCP clients carry no uid and are not checked.
    pub trust: crate::trust::Trust,
}

impl fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerOptions")
            .field("service", &self.service)
            .field("version", &self.version)
            .field("max_request_len", &self.max_request_len)
            .field("queue_len", &self.queue_len)
            .field("authorize", &self.authorize.is_some())
            .field("upgrade", &self.upgrade.is_some())
            .field("handler", &self.handler.is_some())
            .field("call_handler", &self.call_handler.is_some())
            .field("threads_per_connection", &self.threads_per_connection)
            .field("trust", &self.trust)
            .finish()
    }
}

impl ServerOptions {
    /// Options for `service` version `version`.
    pub fn new(service: &str, version: u32) -> ServerOptions {
        ServerOptions {
            service: service.to_owned(),
            version,
            max_request_len: crate::framing::DEFAULT_MAX_FRAME_LEN,
            queue_len: 1024,
            authorize: None,
            upgrade: None,
            handler: None,
            call_handler: None,
            threads_per_connection: 4,
            trust: crate::trust::Trust::own_user(),
        }
    }
}

type Writer = Arc<Mutex<Box<dyn Link>>>;

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

// ---------------------------------------------------------------------------------------------
// One connection

/// The server's end of one connection, after the handshake.
#[derive(Debug)]
struct ConnInner {
    /// The reading half; `None` while a thread reads it.
    reader: Mutex<Option<Box<dyn Link>>>,
    /// Signalled when the reading half is put back (only when `waiting` says someone waits).
    readable: Condvar,
    /// Threads waiting in [`Connection::recv_wait`] for the reading half.
    waiting: AtomicUsize,
    /// Times the reading half was put back: the watcher's clock for a half left unread.
    releases: AtomicU64,
    /// Requests of this connection running on their reading thread (handler mode).
    running: AtomicUsize,
    /// Threads serving this connection (handler mode).
    threads: AtomicUsize,
    /// The connection ended (the caller closed it, died or sent garbage).
    ended: AtomicBool,
    writer: Writer,
    gone: Arc<AtomicBool>,
    peer: Arc<Peer>,
}

impl ConnInner {
    /// The request in `frame`, lent as a [`Call`] (`None`: not a request frame).
    fn call<'a>(&'a self, frame: &'a [u8]) -> Option<Call<'a>> {
        let (id, deadline_ms, method, payload) = decode_request(frame).ok()?;
        Some(Call {
            method,
            payload,
            deadline: deadline_of(deadline_ms),
            peer: &self.peer,
            gone: &self.gone,
            id,
        })
    }
}

/// The server's end of one connection, read by whichever thread calls
/// [`Connection::recv_wait`]: the request comes straight from the link to that thread, and
/// its reply goes straight from that thread to the link (no hand-off between threads). For a
/// program that serves a connection on a thread of its own; [`Server`] serves many.
#[derive(Debug, Clone)]
pub struct Connection {
    inner: Arc<ConnInner>,
}

impl Connection {
    /// Accepts one client on `listener` (waiting as `wait` allows for it to connect) and runs
    /// the handshake (upgrade, version checks, authorisation) as `opts` say; a client that
    /// fails the handshake is refused and [`Error::Protocol`] returned.
    pub fn accept(
        listener: &dyn Listener,
        opts: &ServerOptions,
        wait: Wait,
    ) -> Result<Connection, Error> {
        let link = listener.accept_wait(wait)?;
        handshake(link, opts)
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
                slot = match wait.remaining() {
                    None => inner.readable.wait(slot).unwrap_or_else(|p| p.into_inner()),
                    Some(left) => {
                        inner
                            .readable
                            .wait_timeout(slot, left)
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                };
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

    fn end(&self) {
        self.inner.ended.store(true, Ordering::SeqCst);
        self.inner.gone.store(true, Ordering::SeqCst);
        let _g = lock(&self.inner.reader);
        self.inner.readable.notify_all();
    }

    fn put_back(&self, reader: Box<dyn Link>) {
        let inner = &*self.inner;
        *lock(&inner.reader) = Some(reader);
        inner.releases.fetch_add(1, Ordering::SeqCst);
        if inner.waiting.load(Ordering::SeqCst) > 0 {
            inner.readable.notify_one();
        }
    }

    /// Takes the reading half if nobody reads it; `None` when another thread does.
    fn try_take_reader(&self) -> Option<Box<dyn Link>> {
        lock(&self.inner.reader).take()
    }

    fn request(&self, f: &[u8]) -> Option<Request> {
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
            deadline: deadline_of(deadline_ms),
            peer: self.inner.peer.clone(),
            id,
            writer: self.inner.writer.clone(),
            gone: self.inner.gone.clone(),
        })
    }
}

fn refuse(link: &mut dyn Link, reason: Refusal, opts: &ServerOptions, message: String) -> Error {
    let f = Frame::Refused {
        reason,
        protocol: PROTOCOL_VERSION,
        version: opts.version,
        message: message.clone(),
    };
    let _ = link.send_frame_wait(&f.encode(), Wait::timeout(HANDSHAKE_TIMEOUT));
    Error::protocol(link.peer_name(), message)
}

/// Checks a client's hello against the service `service` version `version` and asks the
/// authorisation hook (a panicking hook refuses). `Err` is the refusal to send: its reason and
/// a message saying what to do. Shared by this server and the async RPC server.
pub(crate) fn check_hello(
    hello: &Hello,
    service: &str,
    version: u32,
    authorize: Option<&Authorize>,
    trust: &crate::trust::Trust,
    peer: &Peer,
) -> Result<(), (Refusal, String)> {
    if hello.protocol != PROTOCOL_VERSION {
        return Err((
            Refusal::ProtocolVersion,
            format!(
                "wire protocol version mismatch: client speaks {}, server speaks {PROTOCOL_VERSION}; upgrade one side",
                hello.protocol
            ),
        ));
    }
    if hello.service != service {
        return Err((
            Refusal::WrongService,
            format!(
                "this server provides service {service:?}, not {:?}",
                hello.service
            ),
        ));
    }
    if hello.version != version {
        return Err((
            Refusal::ServiceVersion,
            format!(
                "service {service:?} version mismatch: client wants version {}, server provides version {version}",
                hello.version
            ),
        ));
    }
    if let Some(c) = peer.credentials
        && !trust.permits(c.uid)
    {
        return Err((
            Refusal::Denied,
            format!(
                "{} runs as uid {}, which this server does not trust (it runs as uid {}): the server must allow that uid explicitly",
                peer.name,
                c.uid,
                crate::trust::euid()
            ),
        ));
    }
    if let Some(auth) = authorize {
        let ok =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| auth(peer))).unwrap_or(false);
        if !ok {
            return Err((
                Refusal::Denied,
                format!("{} may not use service {service:?}", peer.name),
            ));
        }
    }
    Ok(())
}

/// The server's side of the handshake on a freshly accepted link.
fn handshake(mut link: Box<dyn Link>, opts: &ServerOptions) -> Result<Connection, Error> {
    if let Some(up) = &opts.upgrade {
        link = up(link)?;
    }
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
    if let Err((reason, m)) = check_hello(
        &hello,
        &opts.service,
        opts.version,
        opts.authorize.as_ref(),
        &opts.trust,
        &peer,
    ) {
        return Err(refuse(&mut *link, reason, opts, m));
    }
    let max = u32::try_from(opts.max_request_len).unwrap_or(u32::MAX);
    link.send_frame_wait(
        &Frame::Welcome { max_frame: max }.encode(),
        Wait::timeout(HANDSHAKE_TIMEOUT),
    )?;
    let reader = link.take_reading_half()?;
    let writer: Writer = Arc::new(Mutex::new(link));
    Ok(Connection {
        inner: Arc::new(ConnInner {
            reader: Mutex::new(Some(reader)),
            readable: Condvar::new(),
            waiting: AtomicUsize::new(0),
            releases: AtomicU64::new(0),
            running: AtomicUsize::new(0),
            threads: AtomicUsize::new(1),
            ended: AtomicBool::new(false),
            writer,
            gone: Arc::new(AtomicBool::new(false)),
            peer: Arc::new(peer),
        }),
    })
}

// ---------------------------------------------------------------------------------------------
// The server

/// How long a connection thread waits for a request before looking whether the server closed.
const POLL: Duration = Duration::from_millis(250);
/// How often the watcher looks for connections left unread while their handlers run.
const TAKEOVER: Duration = Duration::from_micros(200);
/// Ticks without any running handler after which the watcher sleeps until woken.
const IDLE_TICKS: u32 = 50;

/// What the connection threads of a server share.
struct Shared {
    opts: ServerOptions,
    closed: AtomicBool,
    /// The watcher: the connections it looks after, and its sleep.
    conns: Mutex<Vec<(Weak<ConnInner>, u64)>>,
    watch: Mutex<()>,
    wake_watcher: Condvar,
    /// The watcher sleeps until woken (no handler ran lately).
    watcher_asleep: AtomicBool,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// The replying end: accepts clients and hands out their requests, or runs them with a
/// [`Handler`]. It is `Sync`: several threads may take requests from one server.
#[derive(Debug)]
pub struct Server {
    rx: Mutex<mpsc::Receiver<Request>>,
    addr: Endpoint,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    watcher: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` and serves `opts.service`.
    pub fn bind(addr: &str, opts: ServerOptions) -> Result<Server, Error> {
        // The handshake applies `opts.trust` and tells a refused client why.
        let listener = Endpoint::parse(addr)?.bind_with_trust(crate::trust::Trust::any_user())?;
        Self::from_listener(listener, opts)
    }

    /// Serves clients arriving on `listener`.
    pub fn from_listener(
        listener: Box<dyn Listener>,
        opts: ServerOptions,
    ) -> Result<Server, Error> {
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::sync_channel(opts.queue_len.max(1));
        let inline = opts.handler.is_some() || opts.call_handler.is_some();
        let shared = Arc::new(Shared {
            opts,
            closed: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            watch: Mutex::new(()),
            wake_watcher: Condvar::new(),
            watcher_asleep: AtomicBool::new(false),
        });
        let spawn_err = |source| Error::Io {
            context: "spawning a server thread".into(),
            source,
        };
        let watcher = if inline {
            let sh = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name("ipcx-rep-watch".into())
                    .spawn(move || watch(&sh))
                    .map_err(spawn_err)?,
            )
        } else {
            None
        };
        let sh = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("ipcx-rep-accept".into())
            .spawn(move || {
                while !sh.closed.load(Ordering::SeqCst) {
                    match listener.accept_wait(Wait::timeout(Duration::from_millis(50))) {
                        Ok(link) => {
                            let (tx, sh) = (tx.clone(), sh.clone());
                            let _ = std::thread::Builder::new()
                                .name("ipcx-rep-conn".into())
                                .spawn(move || serve_conn(link, tx, &sh));
                        }
                        Err(Error::Timeout | Error::WouldBlock) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
            .map_err(spawn_err)?;
        Ok(Server {
            rx: Mutex::new(rx),
            addr,
            shared,
            acceptor: Some(acceptor),
            watcher,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> &Endpoint {
        &self.addr
    }

    /// Receives the next request, blocking.
    pub fn recv(&self) -> Result<Request, Error> {
        self.recv_wait(Wait::Forever)
    }

    /// Receives a waiting request: [`Error::WouldBlock`] when none.
    pub fn try_recv(&self) -> Result<Request, Error> {
        self.recv_wait(Wait::NoWait)
    }

    /// Receives a request, giving up with [`Error::Timeout`] after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Request, Error> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// Receives a request, waiting as `wait` allows. Requests whose deadline passed while
    /// queued are answered [`Status::DeadlineExceeded`] and skipped. A server with a
    /// [`handler`](ServerOptions::handler) hands none out: this only waits.
    pub fn recv_wait(&self, wait: Wait) -> Result<Request, Error> {
        loop {
            let r = super::recv_mpsc(&lock(&self.rx), wait, "server")?;
            if r.expired() {
                let _ = r.reply(Status::DeadlineExceeded, b"");
                continue;
            }
            return Ok(r);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        {
            let _g = lock(&self.shared.watch);
            self.shared.wake_watcher.notify_all();
        }
        for h in [self.acceptor.take(), self.watcher.take()]
            .into_iter()
            .flatten()
        {
            let _ = h.join();
        }
    }
}

fn serve_conn(link: Box<dyn Link>, tx: mpsc::SyncSender<Request>, sh: &Arc<Shared>) {
    let Ok(conn) = handshake(link, &sh.opts) else {
        return;
    };
    if sh.opts.handler.is_some() || sh.opts.call_handler.is_some() {
        lock(&sh.conns).push((Arc::downgrade(&conn.inner), u64::MAX));
        return serve_inline(&conn, sh);
    }
    while !sh.closed.load(Ordering::SeqCst) {
        match conn.recv_wait(Wait::timeout(POLL)) {
            Ok(req) => {
                if tx.send(req).is_err() {
                    return;
                }
            }
            Err(Error::Timeout | Error::WouldBlock) => {}
            Err(_) => return,
        }
    }
}

/// One thread serving a connection in handler mode: it reads a request and runs it itself
/// (see the [module docs](self#serving)). It returns when the connection or the server ends,
/// or when another thread has taken over reading the connection while this one ran a request
/// (then that thread serves it; the last thread of a connection never leaves early).
fn serve_inline(conn: &Connection, sh: &Shared) {
    let inner = &*conn.inner;
    // The request (copied out of the link, so that the reading half can be put back while it
    // runs) and the reply's payload, reused from call to call.
    let (mut frame, mut out) = (Vec::new(), Vec::new());
    while !sh.closed.load(Ordering::SeqCst) && !inner.ended.load(Ordering::SeqCst) {
        let Some(mut reader) = conn.try_take_reader() else {
            // Another thread reads: leave, unless this is the connection's last thread.
            if inner
                .threads
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n > 1).then(|| n - 1)
                })
                .is_ok()
            {
                return;
            }
            // The reader is about to be put back, or the watcher will see it is not read.
            let slot = lock(&inner.reader);
            if slot.is_none() && !inner.ended.load(Ordering::SeqCst) {
                inner.waiting.fetch_add(1, Ordering::SeqCst);
                let _ = inner.readable.wait_timeout(slot, POLL);
                inner.waiting.fetch_sub(1, Ordering::SeqCst);
            }
            continue;
        };
        if let Some(handler) = &sh.opts.call_handler {
            let got = reader.recv_frame_with(Wait::timeout(POLL), &mut |f| {
                frame.clear();
                frame.extend_from_slice(f);
            });
            conn.put_back(reader);
            match got {
                Ok(true) => {}
                Err(Error::Timeout | Error::WouldBlock) => continue,
                Ok(false) | Err(_) => break,
            }
            let Some(call) = inner.call(&frame) else {
                break;
            };
            if sh.closed.load(Ordering::SeqCst) {
                break;
            }
            // Read just now with at least a millisecond left: its deadline has not passed.
            inner.running.fetch_add(1, Ordering::SeqCst);
            if sh.watcher_asleep.load(Ordering::SeqCst) {
                let _g = lock(&sh.watch);
                sh.watcher_asleep.store(false, Ordering::SeqCst);
                sh.wake_watcher.notify_one();
            }
            out.clear();
            let status =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&call, &mut out)))
                    .unwrap_or_else(|_| {
                        out.clear();
                        Status::Panicked
                    });
            let _ = send_reply(&inner.writer, call.id, status, &out);
            inner.running.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let Some(handler) = &sh.opts.handler else {
            break;
        };
        let mut req = None;
        let got = reader.recv_frame_with(Wait::timeout(POLL), &mut |f| req = conn.request(f));
        conn.put_back(reader);
        let req = match got {
            Ok(true) => match req {
                Some(r) => r,
                None => break,
            },
            Err(Error::Timeout | Error::WouldBlock) => continue,
            Ok(false) | Err(_) => break,
        };
        if sh.closed.load(Ordering::SeqCst) {
            // The server stopped while this request came: the caller sees the connection end.
            break;
        }
        if req.expired() {
            let _ = req.reply(Status::DeadlineExceeded, b"");
            continue;
        }
        inner.running.fetch_add(1, Ordering::SeqCst);
        if sh.watcher_asleep.load(Ordering::SeqCst) {
            let _g = lock(&sh.watch);
            sh.watcher_asleep.store(false, Ordering::SeqCst);
            sh.wake_watcher.notify_one();
        }
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(req)));
        inner.running.fetch_sub(1, Ordering::SeqCst);
    }
    conn.end();
    inner.threads.fetch_sub(1, Ordering::SeqCst);
}

/// The watcher of a server in handler mode: every [`TAKEOVER`] while requests run, it starts
/// a thread on each connection whose reading half has stayed unread for a whole tick while a
/// request of it runs (up to [`ServerOptions::threads_per_connection`] threads).
fn watch(sh: &Arc<Shared>) {
    let mut idle = 0u32;
    while !sh.closed.load(Ordering::SeqCst) {
        let mut any_running = false;
        let mut takeovers = Vec::new();
        {
            let mut conns = lock(&sh.conns);
            conns.retain_mut(|(weak, seen)| {
                let Some(c) = weak.upgrade() else {
                    return false;
                };
                if c.ended.load(Ordering::SeqCst) {
                    return false;
                }
                let running = c.running.load(Ordering::SeqCst);
                let releases = c.releases.load(Ordering::SeqCst);
                any_running |= running > 0;
                let unread = running > 0
                    && releases == *seen
                    && lock(&c.reader).is_some()
                    && c.threads.load(Ordering::SeqCst) < sh.opts.threads_per_connection.max(1);
                *seen = if lock(&c.reader).is_some() {
                    releases
                } else {
                    u64::MAX
                };
                if unread {
                    c.threads.fetch_add(1, Ordering::SeqCst);
                    takeovers.push(Connection { inner: c });
                }
                true
            });
        }
        for conn in takeovers {
            let sh2 = sh.clone();
            let c2 = conn.clone();
            let spawned = std::thread::Builder::new()
                .name("ipcx-rep-conn".into())
                .spawn(move || serve_inline(&c2, &sh2));
            if spawned.is_err() {
                conn.inner.threads.fetch_sub(1, Ordering::SeqCst);
            }
        }
        idle = if any_running { 0 } else { idle + 1 };
        let mut g = lock(&sh.watch);
        if idle < IDLE_TICKS {
            drop(g);
            std::thread::sleep(TAKEOVER);
            continue;
        }
        sh.watcher_asleep.store(true, Ordering::SeqCst);
        // A handler that started before the flag was set is seen here.
        let running = lock(&sh.conns).iter().any(|(w, _)| {
            w.upgrade()
                .is_some_and(|c| c.running.load(Ordering::SeqCst) > 0)
        });
        if !running && !sh.closed.load(Ordering::SeqCst) {
            g = sh
                .wake_watcher
                .wait_timeout(g, Duration::from_secs(1))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        sh.watcher_asleep.store(false, Ordering::SeqCst);
        drop(g);
        idle = 0;
    }
}
