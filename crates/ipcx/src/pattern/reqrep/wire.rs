//! The request/reply wire format: frames, the hello and its answers, reply statuses, and
//! the limits and timeouts both ends agree on (see the [module docs](super#wire-format)).

use std::time::{Duration, Instant};

use super::super::Error;
/// The codec a hello names: the channel layer's.
pub(crate) use crate::channel::Codec;

/// The wire protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;
const MAGIC: &[u8; 6] = b"IPCXRQ";
pub(crate) use crate::pattern::HANDSHAKE_TIMEOUT;
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
    /// The hello named a codec the server does not know.
    UnknownCodec,
}

impl Refusal {
    fn to_u8(self) -> u8 {
        match self {
            Refusal::ProtocolVersion => 1,
            Refusal::WrongService => 2,
            Refusal::ServiceVersion => 3,
            Refusal::Denied => 4,
            Refusal::UnknownCodec => 5,
        }
    }
    fn from_u8(b: u8) -> Option<Refusal> {
        Some(match b {
            1 => Refusal::ProtocolVersion,
            2 => Refusal::WrongService,
            3 => Refusal::ServiceVersion,
            4 => Refusal::Denied,
            5 => Refusal::UnknownCodec,
            _ => return None,
        })
    }
}

/// A client's introduction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Wire protocol version.
    pub protocol: u16,
    /// Service name; empty: whatever service the server provides (its version is then not
    /// checked either).
    pub service: String,
    /// Service version (not checked when `service` is empty).
    pub version: u32,
    /// The tag of the codec the client calls in ([`Codec::tag`]; a server refuses a tag it
    /// does not know with [`Refusal::UnknownCodec`]). Tag 0 (postcard) is not sent: a hello
    /// without a tag means postcard, as in the first version of the protocol.
    pub codec: u8,
}

impl Hello {
    /// The hello of a client of `service` version `version` calling in `codec`, in this
    /// build's protocol version.
    pub fn new(service: &str, version: u32, codec: Codec) -> Hello {
        Hello {
            protocol: PROTOCOL_VERSION,
            service: service.to_owned(),
            version,
            codec: codec.tag(),
        }
    }
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
    fn name(&mut self, len: usize) -> Result<&'a str, DecodeError> {
        if len > MAX_NAME_LEN {
            return Err(DecodeError("name longer than 255 bytes"));
        }
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError("name is not UTF-8"))
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
            let service = c.name(len)?.to_owned();
            // The codec tag is optional: absent, the client calls in postcard.
            let codec = if c.0.is_empty() { 0 } else { c.u8()? };
            c.end()?;
            return Ok(Frame::Hello(Hello {
                protocol,
                service,
                version,
                codec,
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
                let (id, deadline_ms, method, payload) = decode_request(bytes)?;
                return Ok(Frame::Request {
                    id,
                    deadline_ms,
                    method: method.to_owned(),
                    payload: payload.to_vec(),
                });
            }
            0x02 => {
                let (id, status, payload) = decode_reply(bytes)?;
                return Ok(Frame::Reply {
                    id,
                    status,
                    payload: payload.to_vec(),
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
                if h.codec != 0 {
                    out.push(h.codec);
                }
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

/// Decodes a reply in place: id, status, payload.
pub(crate) fn decode_reply(f: &[u8]) -> Result<(u64, Status, &[u8]), DecodeError> {
    let mut c = Cursor(f);
    if c.u8()? != 0x02 {
        return Err(DecodeError("expected a reply"));
    }
    let id = c.u64()?;
    let status = Status::from_u8(c.u8()?).ok_or(DecodeError("unknown status"))?;
    Ok((id, status, c.0))
}

/// Decodes a request in place: id, deadline_ms, method, payload.
pub(crate) fn decode_request(f: &[u8]) -> Result<(u64, u32, &str, &[u8]), DecodeError> {
    let mut c = Cursor(f);
    if c.u8()? != 0x01 {
        return Err(DecodeError("expected a request"));
    }
    let id = c.u64()?;
    let deadline_ms = c.u32()?;
    let len = usize::from(c.u16()?);
    let method = c.name(len)?;
    Ok((id, deadline_ms, method, c.0))
}

/// The header of a request frame (the method name and the payload follow it).
pub(crate) fn request_header(id: u64, deadline_ms: u32, method: &str) -> [u8; 15] {
    let mut h = [0u8; 15];
    h[0] = 0x01;
    h[1..9].copy_from_slice(&id.to_be_bytes());
    h[9..13].copy_from_slice(&deadline_ms.to_be_bytes());
    h[13..15].copy_from_slice(&(method.len() as u16).to_be_bytes());
    h
}

/// The deadline `deadline_ms` milliseconds from now (0: none).
pub(crate) fn deadline_of(deadline_ms: u32) -> Option<Instant> {
    (deadline_ms > 0)
        .then(|| Instant::now().checked_add(Duration::from_millis(u64::from(deadline_ms))))
        .flatten()
}

/// The `deadline_ms` a request carries for `left` (`None`: no deadline, 0): at least 1 ms,
/// at most `u32::MAX` ms.
pub(crate) fn deadline_ms(left: Option<Duration>) -> u32 {
    match left {
        None => 0,
        Some(d) => u32::try_from(d.as_millis().max(1)).unwrap_or(u32::MAX),
    }
}

/// The header of a reply frame (the payload follows it).
pub(crate) fn reply_header(id: u64, status: Status) -> [u8; 10] {
    let mut h = [0u8; 10];
    h[0] = 0x02;
    h[1..9].copy_from_slice(&id.to_be_bytes());
    h[9] = status.to_u8();
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames the clients and servers assemble from headers are the bytes
    /// [`Frame::encode`] makes, and decode in place to what they carry.
    #[test]
    fn assembled_frames_are_the_encoded_ones() {
        let (id, deadline_ms, method, payload) = (0x0102_0304_0506_0708, 250, "add", b"\x01\x02");
        let request = Frame::Request {
            id,
            deadline_ms,
            method: method.into(),
            payload: payload.to_vec(),
        };
        let head = request_header(id, deadline_ms, method);
        let parts = [&head[..], method.as_bytes(), payload].concat();
        assert_eq!(parts, request.encode());
        assert_eq!(
            decode_request(&parts),
            Ok((id, deadline_ms, method, &payload[..]))
        );
        let reply = Frame::Reply {
            id,
            status: Status::AppError,
            payload: payload.to_vec(),
        };
        let parts = [&reply_header(id, Status::AppError)[..], payload].concat();
        assert_eq!(parts, reply.encode());
        assert_eq!(
            decode_reply(&parts),
            Ok((id, Status::AppError, &payload[..]))
        );
    }

    #[test]
    fn deadlines_sent_along() {
        assert_eq!(deadline_ms(None), 0);
        assert_eq!(deadline_ms(Some(Duration::ZERO)), 1);
        assert_eq!(deadline_ms(Some(Duration::from_micros(1_500_900))), 1500);
        assert_eq!(
            deadline_ms(Some(Duration::from_secs(u64::MAX / 4))),
            u32::MAX
        );
        let d = deadline_of(1000).expect("a deadline");
        assert!(d > Instant::now() + Duration::from_millis(900));
        assert_eq!(deadline_of(0), None);
    }
}
