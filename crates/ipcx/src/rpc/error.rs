//! What a call, or connecting, can fail with ([`RpcError`]), and how the request/reply layer's
//! errors, refusals and reply statuses turn into it.

use serde::de::DeserializeOwned;

use crate::channel::Codec;
use crate::pattern::reqrep::{ConnectError, Refusal, Status};
use crate::pattern::{self, reqrep};

/// Why a call (or connecting) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The handler returned an error: the remote application's message.
    #[error("remote error in {method}: {message}")]
    Remote {
        /// The method.
        method: String,
        /// The handler's error, as text.
        message: String,
    },
    /// The deadline passed (on the client, or on the server before the handler started).
    #[error("call to {method} timed out")]
    Timeout {
        /// The method.
        method: String,
    },
    /// A value could not be decoded (the reply on the client, or the arguments on the
    /// server: then `remote` is true): the two sides disagree on the method's types.
    #[error("could not decode {what} of {method}: {detail}")]
    Decode {
        /// The method.
        method: String,
        /// `arguments` or `result`.
        what: &'static str,
        /// Whether the server reported it.
        remote: bool,
        /// The decoder's message.
        detail: String,
    },
    /// The server is gone (closed the connection, died).
    #[error("server gone: {what}")]
    PeerGone {
        /// What happened.
        what: String,
    },
    /// The server has no such method.
    #[error("service {service:?} has no method {method:?}")]
    UnknownMethod {
        /// The service.
        service: String,
        /// The method.
        method: String,
    },
    /// Client and server speak different versions (wire protocol or service).
    #[error("version mismatch: {message}")]
    VersionMismatch {
        /// Ours.
        client: u32,
        /// Theirs.
        server: u32,
        /// The server's explanation.
        message: String,
    },
    /// The server serves another service.
    #[error("wrong service: {message}")]
    WrongService {
        /// The server's explanation.
        message: String,
    },
    /// The server's authorisation hook refused this client.
    #[error("permission denied: {message}")]
    Denied {
        /// The server's explanation.
        message: String,
    },
    /// The server does not know the codec this client asked for in its hello.
    #[error("unknown codec: {message}")]
    UnknownCodec {
        /// The server's explanation (the codecs it speaks).
        message: String,
    },
    /// The handler panicked; the server is still running.
    #[error("the handler of {method} panicked: {message}")]
    HandlerPanicked {
        /// The method.
        method: String,
        /// The panic message.
        message: String,
    },
    /// The arguments are larger than the server accepts.
    #[error("arguments of {len} bytes are too large: the server accepts at most {max}")]
    TooLarge {
        /// Encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The TLS handshake failed or the TLS session broke: an untrusted server certificate, a
    /// client certificate the server requires but did not get or did not trust... (feature
    /// `tls`).
    #[error("TLS failed: {message}")]
    Tls {
        /// What went wrong and what to do.
        message: String,
    },
    /// Any other transport failure (nobody listening, protocol garbage...).
    #[error(transparent)]
    Transport(pattern::Error),
}

impl RpcError {
    /// A value of `method` that could not be decoded (or encoded): `what` is `arguments` or
    /// `result`, `remote` whether the server reported it.
    pub(super) fn decode(
        method: &str,
        what: &'static str,
        remote: bool,
        detail: String,
    ) -> RpcError {
        RpcError::Decode {
            method: method.into(),
            what,
            remote,
            detail,
        }
    }

    pub(super) fn from_transport(method: &str, e: pattern::Error) -> RpcError {
        match e {
            pattern::Error::Timeout => RpcError::Timeout {
                method: method.into(),
            },
            pattern::Error::PeerGone { what } | pattern::Error::Closed { what } => {
                RpcError::PeerGone { what }
            }
            pattern::Error::TooLarge { len, max, .. } => RpcError::TooLarge { len, max },
            e @ pattern::Error::Tls { .. } => RpcError::Tls {
                message: e.to_string(),
            },
            other => RpcError::Transport(other),
        }
    }
}

/// The error a failed connection turns into.
pub(super) fn connect_error(e: ConnectError, version: u32) -> RpcError {
    match e {
        ConnectError::Transport(t) => RpcError::from_transport("(connect)", t),
        ConnectError::Refused(r) => match r.reason {
            Refusal::ProtocolVersion => RpcError::VersionMismatch {
                client: u32::from(reqrep::PROTOCOL_VERSION),
                server: u32::from(r.server_protocol),
                message: r.message,
            },
            Refusal::ServiceVersion => RpcError::VersionMismatch {
                client: version,
                server: r.server_version,
                message: r.message,
            },
            Refusal::WrongService => RpcError::WrongService { message: r.message },
            Refusal::UnknownCodec => RpcError::UnknownCodec { message: r.message },
            _ => RpcError::Denied { message: r.message },
        },
        #[allow(unreachable_patterns)]
        other => RpcError::Transport(pattern::Error::Io {
            context: "connecting".into(),
            source: std::io::Error::other(other.to_string()),
        }),
    }
}

/// Turns a reply into the call's result, decoded in `codec` (`args_len`: the length of the
/// encoded arguments, `max`: the largest the server accepts).
pub(super) fn reply_result<R: DeserializeOwned>(
    codec: Codec,
    method: &str,
    service: &str,
    status: Status,
    payload: &[u8],
    args_len: usize,
    max: usize,
) -> Result<R, RpcError> {
    let ok = |p: &[u8]| {
        super::codec::decode(codec, p).map_err(|e| RpcError::decode(method, "result", false, e))
    };
    reply_with(method, service, status, payload, (args_len, max), ok)
}

/// Turns a reply into the call's result: `ok` makes it of the payload of a success, every
/// other status becomes its error (`sizes`: the length of the encoded arguments and the
/// largest the server accepts).
pub(super) fn reply_with<R>(
    method: &str,
    service: &str,
    status: Status,
    payload: &[u8],
    sizes: (usize, usize),
    ok: impl FnOnce(&[u8]) -> Result<R, RpcError>,
) -> Result<R, RpcError> {
    let text = || String::from_utf8_lossy(payload).into_owned();
    match status {
        Status::Ok => ok(payload),
        Status::AppError => Err(RpcError::Remote {
            method: method.into(),
            message: text(),
        }),
        Status::UnknownMethod => Err(RpcError::UnknownMethod {
            service: service.to_owned(),
            method: method.into(),
        }),
        Status::BadRequest => Err(RpcError::decode(method, "arguments", true, text())),
        Status::DeadlineExceeded => Err(RpcError::Timeout {
            method: method.into(),
        }),
        Status::Panicked => Err(RpcError::HandlerPanicked {
            method: method.into(),
            message: text(),
        }),
        Status::TooLarge => Err(RpcError::TooLarge {
            len: sizes.0,
            max: sizes.1,
        }),
        _ => Err(RpcError::PeerGone {
            what: "the server is unavailable".into(),
        }),
    }
}
