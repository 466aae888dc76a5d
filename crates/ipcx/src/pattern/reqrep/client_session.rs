//! The client's side of a connection as one state machine without IO, which the thread-based
//! client ([`super::client`]) and the async one ([`super::async_client`]) both run: what
//! happens when a call starts (checks, id, deadline, the request's header), when a frame
//! arrives (whose reply it is; a late, unknown or second reply is ignored; garbage ends the
//! connection), when a read comes to nothing or to the end, when a call gives up (its deadline
//! passed, or its caller went away) and when the connection ends (every call waiting fails, in
//! one set of words). The drivers only move the bytes and wake the callers.
//!
//! It comes in two parts, so that the drivers take no lock they did not take before:
//! [`ClientSession`] is shared without a lock (the address, the server's limit, the next id);
//! [`Calls`] is the table of the calls waiting, kept under the driver's lock.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::wire::{self, DecodeError, Status};
use crate::pattern::Error;

/// A reply as the client receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Outcome.
    pub status: Status,
    /// Result or error description.
    pub payload: Vec<u8>,
}

/// What a client's connection keeps that needs no lock.
#[derive(Debug)]
pub(crate) struct ClientSession {
    next_id: AtomicU64,
    max_frame: usize,
    addr: String,
}

/// A call about to be sent: its id and the header of its request frame (the method name and
/// the payload follow the header on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outgoing {
    /// The call's id, which its reply carries.
    pub(crate) id: u64,
    /// The request frame's header.
    pub(crate) head: [u8; 15],
}

/// What one read on a client's connection came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// A reply (already handed to its call by [`Calls::deliver`], or lent to the reader).
    Frame,
    /// Nothing came in time.
    Nothing,
    /// The connection ended: why, in the words every call on it reports (pass it to
    /// [`Calls::close`]).
    Ended(String),
}

impl ClientSession {
    /// A connection to the server at `addr`, which takes request frames of at most
    /// `max_frame` bytes.
    pub(crate) fn new(max_frame: usize, addr: &str) -> ClientSession {
        ClientSession {
            next_id: AtomicU64::new(1),
            max_frame,
            addr: addr.to_owned(),
        }
    }

    /// The server's address.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// The largest request payload the server accepts for `method`.
    pub(crate) fn max_payload_len(&self, method: &str) -> usize {
        wire::max_request_payload(self.max_frame, method)
    }

    /// A call of `method` with `payload_len` bytes starts, its caller waiting `left` (`None`:
    /// no deadline): refuses, before anything is sent, a request the server could not take
    /// (see [`wire::check_request`]); otherwise gives the call its id and the header of its
    /// request frame, carrying the deadline.
    pub(crate) fn start_call(
        &self,
        method: &str,
        payload_len: usize,
        left: Option<Duration>,
    ) -> Result<Outgoing, Error> {
        wire::check_request(method, payload_len, self.max_frame, &self.addr)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let head = wire::request_header(id, wire::deadline_ms(left), method);
        Ok(Outgoing { id, head })
    }

    /// A frame came: the reply it carries (id, status, payload lent where it lies), or why it
    /// is not one (the connection ends: pass it to [`ClientSession::on_read`]).
    pub(crate) fn on_frame<'f>(&self, f: &'f [u8]) -> Result<(u64, Status, &'f [u8]), DecodeError> {
        wire::decode_reply(f)
    }

    /// What a read came to: `got` is what the link said (a frame read, the end of the stream,
    /// or an error), `bad` why the frame read is not a reply.
    pub(crate) fn on_read(&self, got: Result<bool, Error>, bad: Option<DecodeError>) -> Read {
        let addr = &self.addr;
        match (got, bad) {
            (Ok(true), None) => Read::Frame,
            (Ok(true), Some(e)) => Read::Ended(format!("the server at {addr} sent garbage: {e}")),
            (Ok(false), _) => Read::Ended(format!("the server at {addr} closed the connection")),
            (Err(Error::Timeout | Error::WouldBlock), _) => Read::Nothing,
            (Err(e), _) => Read::Ended(self.on_failed(&e)),
        }
    }

    /// Why the connection ended when reading or writing failed with `e` (pass it to
    /// [`Calls::close`]).
    pub(crate) fn on_failed(&self, e: &dyn fmt::Display) -> String {
        format!("the connection to {} failed: {e}", self.addr)
    }

    /// The error of a call on a connection that has ended (`why`: [`Calls::ended`]).
    pub(crate) fn gone(&self, why: Option<&String>) -> Error {
        Error::PeerGone {
            what: why
                .cloned()
                .unwrap_or_else(|| format!("the connection to {} ended", self.addr)),
        }
    }
}

/// What a call waits on, as the table hands it its reply: the slot its reply is stored in
/// (thread-based client) or the sending end of its future (async client).
pub(crate) trait Waiter {
    /// Whether the call can take no reply any more (it has one already, or it has failed).
    fn is_done(&self) -> bool;
    /// Hands the call its reply (called once, while it is not done).
    fn answer(&mut self, reply: Reply);
    /// Tells the call that the connection ended (its caller reports [`Calls::ended`]).
    fn fail(&mut self);
}

/// The thread-based client's slot: the reply is stored here until its caller collects it
/// ([`Calls::take_reply`]).
impl Waiter for Option<Reply> {
    fn is_done(&self) -> bool {
        self.is_some()
    }
    fn answer(&mut self, reply: Reply) {
        *self = Some(reply);
    }
    fn fail(&mut self) {}
}

/// What became of a reply handed to the table ([`Calls::deliver`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Its call has it: wake it.
    Delivered,
    /// No call waits for that id (its deadline passed, its caller went away, or it never
    /// was asked): ignored.
    Unknown,
    /// Its call had its reply already: the second one is ignored.
    Duplicate,
}

/// The calls on one connection waiting for their replies, and why the connection ended once
/// it has. The driver keeps it under its lock.
#[derive(Debug)]
pub(crate) struct Calls<W> {
    calls: HashMap<u64, W>,
    ended: Option<String>,
}

impl<W: Waiter> Calls<W> {
    /// No call waiting, the connection open.
    pub(crate) fn new() -> Calls<W> {
        Calls {
            calls: HashMap::new(),
            ended: None,
        }
    }

    /// Why the connection ended, once it has.
    pub(crate) fn ended(&self) -> Option<&String> {
        self.ended.as_ref()
    }

    /// Call `id` waits for its reply on `waiter`; on a connection that has ended it fails at
    /// once, with the words of that end.
    pub(crate) fn register(
        &mut self,
        id: u64,
        waiter: W,
        session: &ClientSession,
    ) -> Result<(), Error> {
        if self.ended.is_some() {
            return Err(session.gone(self.ended()));
        }
        self.calls.insert(id, waiter);
        Ok(())
    }

    /// A reply for call `id` came: hands it to the call if one waits for it.
    pub(crate) fn deliver(&mut self, id: u64, status: Status, payload: &[u8]) -> Delivery {
        match self.calls.get_mut(&id) {
            None => Delivery::Unknown,
            Some(w) if w.is_done() => Delivery::Duplicate,
            Some(w) => {
                w.answer(Reply {
                    status,
                    payload: payload.to_vec(),
                });
                Delivery::Delivered
            }
        }
    }

    /// Call `id` stops waiting (its deadline passed, its caller went away, or it reads its
    /// reply itself): its entry goes, and a reply that comes for it later is ignored.
    /// Returns what it waited on.
    pub(crate) fn forget(&mut self, id: u64) -> Option<W> {
        self.calls.remove(&id)
    }

    /// The connection ended, `why` (the first reason stays): every call waiting fails, and
    /// so does every call that registers from now on.
    pub(crate) fn close(&mut self, why: String) {
        if self.ended.is_none() {
            self.ended = Some(why);
        }
        for w in self.calls.values_mut().filter(|w| !w.is_done()) {
            w.fail();
        }
    }
}

impl Calls<Option<Reply>> {
    /// The reply of call `id` once it has come (its entry goes then).
    pub(crate) fn take_reply(&mut self, id: u64) -> Option<Reply> {
        match self.calls.get(&id) {
            Some(Some(_)) => self.calls.remove(&id).flatten(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waiter that records what the table did to it.
    #[derive(Debug, Default)]
    struct Seen {
        replies: Vec<Reply>,
        failed: bool,
    }

    impl Waiter for Seen {
        fn is_done(&self) -> bool {
            self.failed || !self.replies.is_empty()
        }
        fn answer(&mut self, reply: Reply) {
            self.replies.push(reply);
        }
        fn fail(&mut self) {
            self.failed = true;
        }
    }

    fn session() -> ClientSession {
        ClientSession::new(1024, "unix:@test")
    }

    fn reply(status: Status, payload: &[u8]) -> Reply {
        Reply {
            status,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn calls_get_their_ids_and_headers() {
        let s = session();
        let a = s.start_call("add", 3, None).unwrap();
        let b = s
            .start_call("add", 3, Some(Duration::from_millis(250)))
            .unwrap();
        assert_eq!((a.id, b.id), (1, 2));
        assert_eq!(a.head, wire::request_header(1, 0, "add"));
        assert_eq!(b.head, wire::request_header(2, 250, "add"));
        let frame = [&b.head[..], b"add", b"xyz"].concat();
        assert_eq!(
            wire::decode_request(&frame),
            Ok((2, 250, "add", &b"xyz"[..]))
        );
    }

    #[test]
    fn a_request_the_server_cannot_take_is_refused_before_it_has_an_id() {
        let s = session();
        let long = "m".repeat(wire::MAX_NAME_LEN + 1);
        assert!(matches!(
            s.start_call(&long, 0, None),
            Err(Error::TooLarge { .. })
        ));
        let max = s.max_payload_len("m");
        assert!(matches!(
            s.start_call("m", max + 1, None),
            Err(Error::TooLarge { max: m, .. }) if m == max
        ));
        assert_eq!(s.start_call("m", max, None).unwrap().id, 1);
    }

    #[test]
    fn a_reply_goes_to_its_call_once() {
        let s = session();
        let mut calls = Calls::<Seen>::new();
        calls.register(1, Seen::default(), &s).unwrap();
        calls.register(2, Seen::default(), &s).unwrap();
        assert_eq!(calls.deliver(2, Status::Ok, b"two"), Delivery::Delivered);
        // A second reply for the same call is ignored; the first stays.
        assert_eq!(
            calls.deliver(2, Status::AppError, b"again"),
            Delivery::Duplicate
        );
        let two = calls.forget(2).unwrap();
        assert_eq!(two.replies, [reply(Status::Ok, b"two")]);
        assert!(calls.forget(1).unwrap().replies.is_empty());
    }

    #[test]
    fn a_reply_for_an_unknown_id_is_ignored() {
        let s = session();
        let mut calls = Calls::<Seen>::new();
        calls.register(1, Seen::default(), &s).unwrap();
        assert_eq!(calls.deliver(7, Status::Ok, b""), Delivery::Unknown);
        assert!(calls.forget(1).unwrap().replies.is_empty());
        assert_eq!(calls.ended(), None);
    }

    #[test]
    fn a_reply_after_the_deadline_is_ignored() {
        let s = session();
        let mut calls = Calls::<Option<Reply>>::new();
        calls.register(1, None, &s).unwrap();
        // The call's deadline passes: it stops waiting.
        assert_eq!(calls.forget(1), Some(None));
        assert_eq!(calls.deliver(1, Status::Ok, b"late"), Delivery::Unknown);
        assert_eq!(calls.take_reply(1), None);
    }

    #[test]
    fn a_stored_reply_is_collected_once() {
        let s = session();
        let mut calls = Calls::<Option<Reply>>::new();
        calls.register(3, None, &s).unwrap();
        assert_eq!(calls.take_reply(3), None);
        assert_eq!(
            calls.deliver(3, Status::BadRequest, b"no"),
            Delivery::Delivered
        );
        assert_eq!(calls.take_reply(3), Some(reply(Status::BadRequest, b"no")));
        assert_eq!(calls.take_reply(3), None);
        assert_eq!(calls.forget(3), None);
    }

    #[test]
    fn closing_fails_every_waiting_call_in_the_first_words() {
        let s = session();
        let mut calls = Calls::<Seen>::new();
        for id in 1..=3 {
            calls.register(id, Seen::default(), &s).unwrap();
        }
        assert_eq!(calls.deliver(2, Status::Ok, b"done"), Delivery::Delivered);
        let why = match s.on_read(Ok(false), None) {
            Read::Ended(why) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(why, "the server at unix:@test closed the connection");
        calls.close(why.clone());
        calls.close("a later reason".into());
        assert_eq!(calls.ended(), Some(&why));
        let (one, two) = (calls.forget(1).unwrap(), calls.forget(2).unwrap());
        assert!(one.failed && one.replies.is_empty());
        // A call that had its reply keeps it.
        assert!(!two.failed && two.replies == [reply(Status::Ok, b"done")]);
        assert!(calls.forget(3).unwrap().failed);
        // A call that starts now fails at once, in the same words.
        let e = calls.register(4, Seen::default(), &s).unwrap_err();
        assert!(
            matches!(&e, Error::PeerGone { what } if *what == why),
            "{e}"
        );
        assert!(matches!(
            s.gone(None),
            Error::PeerGone { what } if what == "the connection to unix:@test ended"
        ));
    }

    #[test]
    fn what_a_read_comes_to() {
        let s = session();
        let f = [&wire::reply_header(9, Status::Ok)[..], b"ok"].concat();
        assert_eq!(s.on_frame(&f), Ok((9, Status::Ok, &b"ok"[..])));
        assert_eq!(s.on_read(Ok(true), None), Read::Frame);
        assert_eq!(s.on_read(Err(Error::Timeout), None), Read::Nothing);
        assert_eq!(s.on_read(Err(Error::WouldBlock), None), Read::Nothing);
        // A request where a reply belongs is garbage: the connection ends.
        let bad = s.on_frame(&wire::request_header(1, 0, "")).unwrap_err();
        assert_eq!(
            s.on_read(Ok(true), Some(bad)),
            Read::Ended(
                "the server at unix:@test sent garbage: malformed request/reply frame: expected a reply"
                    .into()
            )
        );
        let e = Error::PeerGone { what: "x".into() };
        assert_eq!(
            s.on_read(Err(e), None),
            Read::Ended("the connection to unix:@test failed: peer gone: x".into())
        );
    }
}
