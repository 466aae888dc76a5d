//! The handshake, one set of rules for every client and server: the client's hello, the
//! server's checks (protocol and service versions, trust, the authorisation hook) and its
//! answer (welcome or refusal), and how a client reads that answer.

use std::sync::Arc;

use super::client::{ConnectError, Refused};
use super::connection::Connection;
use super::server::{Authorize, Peer, ServerOptions};
use super::wire::{Frame, HANDSHAKE_TIMEOUT, Hello, PROTOCOL_VERSION, Refusal};
use crate::pattern::{Error, Link};
use crate::wait::Wait;

/// The hello of a client of `service` version `version`.
pub(crate) fn hello(service: &str, version: u32) -> Hello {
    Hello {
        protocol: PROTOCOL_VERSION,
        service: service.to_owned(),
        version,
    }
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
    opts: &ServerOptions,
    peer: &Peer,
) -> Result<Frame, (Frame, String)> {
    match check_hello(
        hello,
        &opts.service,
        opts.version,
        opts.authorize.as_ref(),
        &opts.trust,
        peer,
    ) {
        Ok(()) => Ok(Frame::Welcome {
            max_frame: u32::try_from(opts.max_request_len).unwrap_or(u32::MAX),
        }),
        Err((reason, message)) => Err((
            Frame::Refused {
                reason,
                protocol: PROTOCOL_VERSION,
                version: opts.version,
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
pub(crate) fn accept(mut link: Box<dyn Link>, opts: &ServerOptions) -> Result<Connection, Error> {
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
    let wait = Wait::timeout(HANDSHAKE_TIMEOUT);
    match answer(&hello, opts, &peer) {
        Ok(welcome) => link.send_frame_wait(&welcome.encode(), wait)?,
        Err((refusal, message)) => {
            let _ = link.send_frame_wait(&refusal.encode(), wait);
            return Err(Error::protocol(link.peer_name(), message));
        }
    }
    let reader = link.take_reading_half()?;
    Ok(Connection::new(reader, link, Arc::new(peer)))
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
