//! The server's side of a connection as one state machine without IO, which the thread-based
//! server ([`super::connection`], [`super::server`]) and the async one
//! ([`super::async_server`]) both run: what happens when the first frame (the hello) comes
//! (the checks, the welcome or the refusal, the codec), when a request comes (decoded where it
//! lies, its deadline; anything else ends the connection), when a handler panics, when the
//! connection ends (calls in progress learn that nobody waits for them), and how a reply is
//! framed (one too large for the client becomes an error saying so). The drivers only move
//! the bytes and run the handlers.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::handshake::{self, Admission, Peer};
use super::wire::{self, Codec, Frame, Status};
use crate::pattern::Error;

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
    /// Becomes true when the caller's connection ends (see
    /// [`Request::caller_gone`](super::Request::caller_gone)).
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

/// The server's side of one connection past its handshake.
#[derive(Debug)]
pub(crate) struct ServerSession {
    peer: Arc<Peer>,
    codec: Codec,
    gone: Arc<AtomicBool>,
}

/// Why a client was not admitted, and what to tell it before closing.
#[derive(Debug)]
pub(crate) struct Rejected {
    /// The refusal frame to send (`None`: nothing, the client sent no hello).
    pub(crate) answer: Option<Vec<u8>>,
    /// What the server reports.
    pub(crate) error: Error,
}

/// A reply frame in two parts: its header, then its payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ReplyFrame<'p> {
    /// The header (kind, id, status).
    pub(crate) head: [u8; 10],
    /// The payload: the handler's, or the message that replaced one too large.
    pub(crate) payload: Cow<'p, [u8]>,
}

impl ReplyFrame<'_> {
    /// The frame's length in bytes (the async server writes its length prefix).
    #[cfg(any(test, feature = "tokio"))]
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.payload.len()
    }

    /// The parts to send, in order.
    pub(crate) fn parts(&self) -> [&[u8]; 2] {
        [&self.head, &self.payload]
    }
}

impl ServerSession {
    /// The first frame came from `peer` (`hello`; `None`: the client left before sending
    /// one): the session and the welcome frame to send, or why the client is not admitted and
    /// the refusal to send it.
    pub(crate) fn on_hello(
        hello: Option<&[u8]>,
        adm: &Admission<'_>,
        peer: Peer,
    ) -> Result<(ServerSession, Vec<u8>), Rejected> {
        let rejected = |answer, error| Err(Rejected { answer, error });
        let Some(f) = hello else {
            let what = format!("{} left during the handshake", peer.name);
            return rejected(None, Error::PeerGone { what });
        };
        let Ok(Frame::Hello(hello)) = Frame::decode(f) else {
            return rejected(None, Error::protocol(peer.name, "expected a hello"));
        };
        match handshake::answer(&hello, adm, &peer) {
            Ok(welcome) => {
                let session = ServerSession {
                    peer: Arc::new(peer),
                    codec: Codec::from_tag(hello.codec).unwrap_or_default(),
                    gone: Arc::new(AtomicBool::new(false)),
                };
                Ok((session, welcome.encode()))
            }
            Err((refusal, message)) => {
                rejected(Some(refusal.encode()), Error::protocol(peer.name, message))
            }
        }
    }

    /// Who is connected.
    pub(crate) fn peer(&self) -> &Arc<Peer> {
        &self.peer
    }

    /// A frame came: the request it carries, lent where it lies, with its deadline; `Err`:
    /// it is not a request, and the connection ends with that error.
    pub(crate) fn on_request<'f>(&'f self, f: &'f [u8]) -> Result<Call<'f>, Error> {
        let Ok((id, deadline_ms, method, payload)) = wire::decode_request(f) else {
            return Err(Error::protocol(
                self.peer.name.clone(),
                "the client sent something else than a request",
            ));
        };
        Ok(Call {
            method,
            payload,
            deadline: wire::deadline_of(deadline_ms),
            peer: &self.peer,
            gone: &self.gone,
            codec: self.codec,
            id,
        })
    }

    /// The connection ended: calls in progress learn that nobody waits for their replies.
    pub(crate) fn on_closed(&self) {
        self.gone.store(true, Ordering::SeqCst);
    }

    /// The error of reading a connection that has ended.
    pub(crate) fn closed_error(&self) -> Error {
        Error::PeerGone {
            what: format!("{} closed the connection", self.peer.name),
        }
    }
}

/// The reply's status and payload of a handler that panicked (`out`, what it had written).
pub(crate) fn panicked(out: &mut Vec<u8>) -> Status {
    out.clear();
    Status::Panicked
}

/// The reply to call `id` with `status` and `payload`, for a client that takes frames of at
/// most `max` bytes: a larger reply becomes an application error saying so, rather than
/// breaking the connection.
pub(crate) fn reply(id: u64, status: Status, payload: &[u8], max: usize) -> ReplyFrame<'_> {
    let head = wire::reply_header(id, status);
    let len = head.len() + payload.len();
    if len <= max {
        return ReplyFrame {
            head,
            payload: Cow::Borrowed(payload),
        };
    }
    let msg = format!("the result of {len} bytes is larger than a client accepts ({max} bytes)");
    ReplyFrame {
        head: wire::reply_header(id, Status::AppError),
        payload: Cow::Owned(msg.into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::Credentials;
    use crate::trust::Trust;
    use std::time::{Duration, Instant};

    fn peer(uid: Option<u32>) -> Peer {
        Peer {
            credentials: uid.map(|uid| Credentials {
                pid: 1,
                uid,
                gid: 0,
            }),
            name: "unix peer pid 1".into(),
        }
    }

    fn admit<'a>(trust: &'a Trust) -> Admission<'a> {
        Admission {
            service: "calc",
            version: 2,
            authorize: None,
            trust,
            max_request_len: 4096,
        }
    }

    fn hello(service: &str, version: u32, codec: u8) -> Vec<u8> {
        let mut h = wire::Hello::new(service, version, Codec::Postcard);
        h.codec = codec;
        Frame::Hello(h).encode()
    }

    fn session() -> ServerSession {
        let trust = Trust::any_user();
        let (s, _) =
            ServerSession::on_hello(Some(&hello("calc", 2, 1)), &admit(&trust), peer(None))
                .unwrap();
        s
    }

    #[test]
    fn a_good_hello_is_welcomed_in_its_codec() {
        let trust = Trust::any_user();
        let (s, welcome) =
            ServerSession::on_hello(Some(&hello("calc", 2, 1)), &admit(&trust), peer(Some(7)))
                .unwrap();
        assert_eq!(
            Frame::decode(&welcome),
            Ok(Frame::Welcome { max_frame: 4096 })
        );
        assert_eq!(s.peer().credentials.map(|c| c.uid), Some(7));
        let f = [&wire::request_header(1, 0, "m")[..], b"m"].concat();
        let call = s.on_request(&f).unwrap();
        assert_eq!(call.codec, Codec::MsgPack);
        assert!(!call.gone.load(Ordering::SeqCst));
    }

    #[test]
    fn a_bad_hello_is_refused_saying_why() {
        let trust = Trust::any_user();
        let adm = admit(&trust);
        let refused = |f: &[u8]| {
            let r = ServerSession::on_hello(Some(f), &adm, peer(None)).unwrap_err();
            let Some(Ok(Frame::Refused {
                reason, message, ..
            })) = r.answer.as_deref().map(Frame::decode)
            else {
                panic!("no refusal: {:?}", r.error);
            };
            assert!(matches!(&r.error, Error::Protocol { .. }), "{}", r.error);
            assert!(r.error.to_string().contains(&message), "{}", r.error);
            reason
        };
        assert_eq!(refused(&hello("calc", 3, 0)), wire::Refusal::ServiceVersion);
        assert_eq!(refused(&hello("other", 2, 0)), wire::Refusal::WrongService);
        assert_eq!(refused(&hello("calc", 2, 9)), wire::Refusal::UnknownCodec);
        let own = Trust::own_user();
        let stranger = crate::trust::euid().wrapping_add(1);
        let r = ServerSession::on_hello(
            Some(&hello("calc", 2, 0)),
            &admit(&own),
            peer(Some(stranger)),
        )
        .unwrap_err();
        assert!(r.answer.is_some());
    }

    #[test]
    fn no_hello_gets_no_answer() {
        let trust = Trust::any_user();
        let adm = admit(&trust);
        let r = ServerSession::on_hello(None, &adm, peer(None)).unwrap_err();
        assert!(r.answer.is_none());
        assert!(
            matches!(&r.error, Error::PeerGone { what } if what.contains("left during the handshake"))
        );
        let request = [&wire::request_header(1, 0, "add")[..], b"add"].concat();
        let r = ServerSession::on_hello(Some(&request), &adm, peer(None)).unwrap_err();
        assert!(r.answer.is_none());
        assert!(
            r.error.to_string().contains("expected a hello"),
            "{}",
            r.error
        );
    }

    #[test]
    fn a_request_is_lent_with_its_deadline() {
        let s = session();
        let before = Instant::now();
        let f = [
            &wire::request_header(5, 1500, "add")[..],
            b"add",
            b"\x01\x02",
        ]
        .concat();
        let call = s.on_request(&f).unwrap();
        assert_eq!(
            (call.id(), call.method, call.payload),
            (5, "add", &b"\x01\x02"[..])
        );
        assert_eq!(call.codec, Codec::MsgPack);
        let d = call.deadline.expect("a deadline");
        assert!(d >= before + Duration::from_millis(1500));
        assert!(!call.expired());
        let f = [&wire::request_header(6, 0, "m")[..], b"m"].concat();
        assert_eq!(s.on_request(&f).unwrap().deadline, None);
    }

    #[test]
    fn anything_but_a_request_ends_the_connection() {
        let s = session();
        for f in [
            &wire::reply_header(1, Status::Ok)[..],
            &hello("calc", 2, 0),
            b"",
            &wire::request_header(1, 0, "long")[..],
        ] {
            let e = s.on_request(f).unwrap_err();
            assert!(
                e.to_string().contains("something else than a request"),
                "{e}"
            );
        }
    }

    #[test]
    fn closing_tells_the_calls_in_progress() {
        let s = session();
        let f = [&wire::request_header(1, 0, "m")[..], b"m"].concat();
        let gone = s.on_request(&f).unwrap().gone.clone();
        s.on_closed();
        assert!(gone.load(Ordering::SeqCst));
        assert!(
            matches!(s.closed_error(), Error::PeerGone { what } if what == "unix peer pid 1 closed the connection")
        );
    }

    #[test]
    fn replies_are_framed_and_a_too_large_one_says_so() {
        let r = reply(3, Status::Ok, b"result", 64);
        assert_eq!(r.len(), 16);
        assert_eq!(
            Frame::decode(&r.parts().concat()),
            Ok(Frame::Reply {
                id: 3,
                status: Status::Ok,
                payload: b"result".to_vec()
            })
        );
        assert!(matches!(r.payload, Cow::Borrowed(_)));
        let big = vec![7u8; 100];
        let r = reply(4, Status::Ok, &big, 64);
        assert_eq!(
            Frame::decode(&r.parts().concat()),
            Ok(Frame::Reply {
                id: 4,
                status: Status::AppError,
                payload: b"the result of 110 bytes is larger than a client accepts (64 bytes)"
                    .to_vec()
            })
        );
        let mut out = b"half".to_vec();
        assert_eq!(panicked(&mut out), Status::Panicked);
        assert!(out.is_empty());
    }
}
