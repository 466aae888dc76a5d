//! The handshake, one set of rules for every client and server: the client's hello, the
//! server's checks (protocol and service versions, trust, the authorisation hook) and its
//! answer (welcome or refusal), and how a client reads that answer.

use std::sync::Arc;

use super::wire::{Codec, Frame, Hello, PROTOCOL_VERSION, Refusal};
use crate::channel::Connection as Link;
use crate::pattern::Error;
use crate::socket::Credentials;
use crate::trust::Trust;
use crate::wait::Wait;

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

/// What [`Client::connect`](super::Client::connect) can fail with.
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

/// What a server checks a client's hello against.
pub(crate) struct Admission<'a> {
    /// The service served.
    pub(crate) service: &'a str,
    /// Its version.
    pub(crate) version: u32,
    /// The authorisation hook.
    pub(crate) authorize: Option<&'a Authorize>,
    /// Whose Unix connections are accepted.
    pub(crate) trust: &'a Trust,
    /// The largest request frame accepted (told to the client in the welcome).
    pub(crate) max_request_len: usize,
}

/// The server's answer to a hello, as the client at `addr` reads it: the largest request
/// frame the server accepts, or why it refused.
pub(crate) fn read_welcome(f: &[u8], addr: &str) -> Result<usize, ConnectError> {
    match Frame::decode(f) {
        Ok(Frame::Welcome { max_frame }) => Ok(max_frame as usize),
        Ok(Frame::Refused {
            reason,
            protocol,
            version,
            message,
        }) => Err(ConnectError::Refused(Refused {
            reason,
            server_protocol: protocol,
            server_version: version,
            message,
        })),
        Ok(_) => Err(Error::protocol(addr, "expected welcome or refusal").into()),
        Err(e) => Err(Error::protocol(addr, e.0).into()),
    }
}

/// The error of a server that closed the connection before answering the hello.
pub(crate) fn closed_in_handshake(addr: &str) -> Error {
    Error::PeerGone {
        what: format!("the server at {addr} closed during the handshake"),
    }
}

/// The server's answer to `hello` from `peer`: a welcome, or a refusal saying why and what to
/// do (`Err`, with the refusal frame to send and its message).
pub(crate) fn answer(
    hello: &Hello,
    adm: &Admission<'_>,
    peer: &Peer,
) -> Result<Frame, (Frame, String)> {
    match check_hello(
        hello,
        adm.service,
        adm.version,
        adm.authorize,
        adm.trust,
        peer,
    ) {
        Ok(()) => Ok(Frame::Welcome {
            max_frame: u32::try_from(adm.max_request_len).unwrap_or(u32::MAX),
        }),
        Err((reason, message)) => Err((
            Frame::Refused {
                reason,
                protocol: PROTOCOL_VERSION,
                version: adm.version,
                message: message.clone(),
            },
            message,
        )),
    }
}

/// Checks a client's hello against the service `service` version `version` and asks the
/// authorisation hook (a panicking hook refuses). `Err` is the refusal to send: its reason and
/// a message saying what to do.
fn check_hello(
    hello: &Hello,
    service: &str,
    version: u32,
    authorize: Option<&Authorize>,
    trust: &Trust,
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
    if Codec::from_tag(hello.codec).is_none() {
        return Err((
            Refusal::UnknownCodec,
            format!(
                "unknown codec tag {}: this server speaks 0 (postcard) and 1 (msgpack)",
                hello.codec
            ),
        ));
    }
    // An empty name asks for whatever this server serves (a generic caller such as
    // `ipcx call`, which learns the name and methods with `ipcx.describe`).
    let any = hello.service.is_empty();
    if !any && hello.service != service {
        return Err((
            Refusal::WrongService,
            format!(
                "this server provides service {service:?}, not {:?}",
                hello.service
            ),
        ));
    }
    if !any && hello.version != version {
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

/// The client's side of the handshake on a connected link: sends `hello` and reads the
/// server's answer, waiting as `wait` allows. Returns the largest request frame the server
/// accepts.
pub(crate) fn greet(
    link: &mut dyn Link,
    addr: &str,
    hello: &Hello,
    wait: Wait,
) -> Result<usize, ConnectError> {
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
        .ok_or_else(|| closed_in_handshake(addr))?;
    read_welcome(&f, addr)
}
