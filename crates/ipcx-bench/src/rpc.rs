//! The RPC rows: `rpc-unix`, `rpc-tcp` and `rpc-shm` (postcard, the codec between Rust
//! programs), `rpc-unix-msgpack` and `rpc-shm-msgpack` (MessagePack, the codec of callers in
//! other languages), one typed call per round trip; and `shm-link`, the ring link under
//! `rpc-shm` on its own (frames echoed over a pair of shared-memory rings, no request/reply
//! layer), the baseline `rpc-shm` is compared with.
//!
//! The parent is an `ipcx::rpc::RpcClient` connected in the row's codec
//! (`RpcClient::connect_with`): each call encodes its argument, the harness's message as one
//! byte string (its 8-byte sequence number, padded to the payload size), and decodes the result,
//! the same bytes, so the smallest size measures a null call. The peer runs the server end of
//! the request/reply layer that `ipcx::rpc` services are built on (`reqrep::Connection`: the
//! handshake, then each request read and answered by the same thread, as a service's connection
//! thread does) and, as a service's dispatcher does, decodes each call's argument in the codec the
//! caller named and encodes the reply in it (with the same postcard and MessagePack calls as
//! `ipcx::rpc`). The postcard and MessagePack rows differ only in the codec.
//!
//! Only ping-pong is offered: a call is a round trip by nature.

use std::time::{Duration, Instant};

use ipcx::channel::{Endpoint, Listener};
use ipcx::pattern::Error;
use ipcx::pattern::reqrep::{Connection, ServerOptions, Status};
use ipcx::rpc::{Codec, RpcClient, RpcError};
use ipcx::wait::Wait;
use serde::{Deserialize, Serialize};

use crate::mechanism::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};
use crate::report::Pattern;

const SERVICE: &str = "ipcx-bench-echo";
const METHOD: &str = "echo";
/// Longest wait for one reply: a call is never retried (that would run it twice), so a slow
/// reply fails the row instead.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Frame overhead of a request (kind, id, deadline, method), and of the encoded byte string
/// (its length: at most 10 bytes in postcard, 5 in MessagePack).
const OVERHEAD: usize = 64 + 16;

/// Which transport the RPC row runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcTransport {
    /// A Unix stream socket.
    Unix,
    /// TCP over loopback.
    Tcp,
    /// A pair of shared-memory rings (`shm:/NAME`).
    Shm,
}

/// An RPC row.
#[derive(Debug, Clone, Copy)]
pub struct RpcRow {
    transport: RpcTransport,
    codec: Codec,
}

impl RpcRow {
    /// The row for `transport`, calling in postcard.
    pub fn new(transport: RpcTransport) -> RpcRow {
        RpcRow::with_codec(transport, Codec::Postcard)
    }

    /// The row for `transport`, calling in `codec`.
    pub fn with_codec(transport: RpcTransport, codec: Codec) -> RpcRow {
        RpcRow { transport, codec }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Spec {
    addr: String,
    max_frame_len: usize,
    /// The codec's tag (`Codec::tag`).
    codec: u8,
}

fn map_err(what: &str, e: Error) -> LinkError {
    match e {
        Error::Timeout | Error::WouldBlock => LinkError::Timeout,
        Error::PeerGone { what } | Error::Closed { what } => LinkError::PeerGone(what),
        Error::TooLarge { .. } => LinkError::TooLarge(e.to_string()),
        other => LinkError::Failed(format!("{what}: {other}")),
    }
}

impl Mechanism for RpcRow {
    fn name(&self) -> &str {
        match (self.transport, self.codec) {
            (RpcTransport::Unix, Codec::MsgPack) => "rpc-unix-msgpack",
            (RpcTransport::Tcp, Codec::MsgPack) => "rpc-tcp-msgpack",
            (RpcTransport::Shm, Codec::MsgPack) => "rpc-shm-msgpack",
            (RpcTransport::Unix, _) => "rpc-unix",
            (RpcTransport::Tcp, _) => "rpc-tcp",
            (RpcTransport::Shm, _) => "rpc-shm",
        }
    }

    fn description(&self) -> &str {
        match (self.transport, self.codec) {
            (RpcTransport::Unix, Codec::MsgPack) => {
                "RPC call (ipcx::rpc, MessagePack) over a Unix stream socket"
            }
            (RpcTransport::Tcp, Codec::MsgPack) => {
                "RPC call (ipcx::rpc, MessagePack) over loopback TCP"
            }
            (RpcTransport::Shm, Codec::MsgPack) => {
                "RPC call (ipcx::rpc, MessagePack) over a pair of shared-memory rings"
            }
            (RpcTransport::Unix, _) => "RPC call (ipcx::rpc, postcard) over a Unix stream socket",
            (RpcTransport::Tcp, _) => "RPC call (ipcx::rpc, postcard) over loopback TCP",
            (RpcTransport::Shm, _) => {
                "RPC call (ipcx::rpc, postcard) over a pair of shared-memory rings"
            }
        }
    }

    fn check_payload(&self, payload: usize) -> Result<(), String> {
        if self.transport == RpcTransport::Shm {
            let max = ipcx::channel::transport::shm::MAX_FRAME - OVERHEAD;
            if payload > max {
                return Err(format!(
                    "an RPC call over rings carries at most {max} bytes of arguments"
                ));
            }
            return Ok(());
        }
        let max = ipcx::framing::DEFAULT_MAX_FRAME_LEN - OVERHEAD;
        if payload > max {
            return Err(format!(
                "an RPC call carries at most {max} bytes of arguments (the 16 MiB frame limit)"
            ));
        }
        Ok(())
    }

    fn patterns(&self) -> &[Pattern] {
        &[Pattern::PingPong]
    }

    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        let addr = match self.transport {
            RpcTransport::Unix => {
                let p = ctx.dir.join(format!("{}-rpc.sock", ctx.tag));
                let s = p.display().to_string();
                if s.len() <= 100 {
                    format!("unix:{s}")
                } else {
                    format!("unix:@{}-rpc", ctx.tag)
                }
            }
            RpcTransport::Tcp => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|s| s.local_addr())
                    .map_err(|e| LinkError::Unsupported(format!("no free loopback port: {e}")))?
                    .port();
                format!("tcp:127.0.0.1:{port}")
            }
            RpcTransport::Shm => shm_addr(ctx),
        };
        let spec = Spec {
            addr,
            max_frame_len: (ctx.payload + OVERHEAD).max(64 << 10),
            codec: self.codec.tag(),
        };
        Ok(Prepared::new(
            serde_json::to_string(&spec).expect("spec serialises"),
        ))
    }

    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let _ = payload;
        let spec: Spec = serde_json::from_str(spec)
            .map_err(|e| LinkError::Failed(format!("bad rpc spec: {e}")))?;
        match side {
            Side::Parent => Ok(Box::new(ClientHalf {
                addr: spec.addr,
                codec: Codec::from_tag(spec.codec)
                    .ok_or_else(|| LinkError::Failed(format!("unknown codec {}", spec.codec)))?,
            })),
            Side::Peer => {
                let mut opts = ServerOptions::new(SERVICE, 1);
                opts.max_request_len = spec.max_frame_len;
                let listener = Endpoint::parse(&spec.addr)
                    .and_then(|a| a.bind())
                    .map_err(|e| map_err(&spec.addr, e))?;
                Ok(Box::new(ServerHalf { listener, opts }))
            }
        }
    }
}

fn shm_addr(ctx: &RowContext) -> String {
    let mut tag = ctx.tag.clone();
    tag.truncate(150);
    format!("shm:/{tag}-rpc")
}

/// The `shm-link` row: frames echoed over the ring link that `rpc-shm` runs on.
#[derive(Debug, Clone, Copy)]
pub struct ShmLinkRow;

impl Mechanism for ShmLinkRow {
    fn name(&self) -> &str {
        "shm-link"
    }

    fn description(&self) -> &str {
        "frames over a pair of shared-memory rings (the link under rpc-shm, ipcx::channel::transport::shm::link), no RPC layer"
    }

    fn check_payload(&self, payload: usize) -> Result<(), String> {
        let max = ipcx::channel::transport::shm::MAX_FRAME;
        if payload > max {
            return Err(format!("a ring link carries at most {max} bytes per frame"));
        }
        Ok(())
    }

    fn patterns(&self) -> &[Pattern] {
        &[Pattern::PingPong]
    }

    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        Ok(Prepared::new(shm_addr(ctx)))
    }

    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let _ = payload;
        let addr = Endpoint::parse(spec).map_err(|e| map_err(spec, e))?;
        match side {
            Side::Parent => Ok(Box::new(RawLinkHalf::Connect(addr))),
            Side::Peer => {
                let l = addr.bind().map_err(|e| map_err(spec, e))?;
                Ok(Box::new(RawLinkHalf::Accept(l)))
            }
        }
    }
}

enum RawLinkHalf {
    Connect(Endpoint),
    Accept(Box<dyn Listener>),
}

impl HalfOpen for RawLinkHalf {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let deadline = match wait {
            Wait::Until(d) => d,
            _ => Instant::now() + Duration::from_secs(10),
        };
        let link = match *self {
            RawLinkHalf::Accept(l) => l
                .accept_wait(Wait::Until(deadline))
                .map_err(|e| map_err("accepting", e))?,
            RawLinkHalf::Connect(a) => loop {
                match a.connect(Wait::Until(deadline)) {
                    Ok(l) => break l,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(map_err(&a.to_string(), e)),
                }
            },
        };
        // One handle per direction, as the request/reply layer holds them (no lock on the
        // ring's directions).
        let mut tx = link;
        let rx = tx
            .take_reading_half()
            .map_err(|e| map_err("splitting", e))?;
        Ok(Box::new(RawLink { tx, rx }))
    }
}

struct RawLink {
    tx: Box<dyn ipcx::channel::Connection>,
    rx: Box<dyn ipcx::channel::Connection>,
}

impl Link for RawLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        self.tx
            .send_frame_wait(msg, wait)
            .map_err(|e| map_err("sending", e))
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        crate::mechanism::recv_copied(self, buf, wait)
    }

    fn recv_with(
        &mut self,
        _scratch: &mut Vec<u8>,
        wait: Wait,
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<(), LinkError> {
        // In place, as the request/reply layer reads it.
        match self.rx.recv_frame_with(wait, read) {
            Ok(true) => Ok(()),
            Ok(false) => Err(LinkError::PeerGone("the peer closed the ring link".into())),
            Err(e) => Err(map_err("receiving", e)),
        }
    }

    fn max_payload(&self) -> Option<usize> {
        Some(ipcx::channel::transport::shm::MAX_FRAME)
    }
}

struct ClientHalf {
    addr: String,
    codec: Codec,
}

impl HalfOpen for ClientHalf {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let deadline = match wait {
            Wait::Until(d) => d,
            _ => Instant::now() + Duration::from_secs(10),
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let left = left.max(Duration::from_millis(1));
            match RpcClient::connect_with(&self.addr, SERVICE, 1, left, self.codec) {
                Ok(client) => {
                    return Ok(Box::new(ClientLink {
                        client,
                        request: Vec::new(),
                        addr: self.addr,
                    }));
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(LinkError::Failed(format!("{}: {e}", self.addr))),
            }
        }
    }
}

/// The calling side: `send` keeps the arguments, `recv` makes the call and returns the result.
struct ClientLink {
    client: RpcClient,
    request: Vec<u8>,
    addr: String,
}

/// A byte string as an argument: postcard writes its length and the bytes, MessagePack a `bin`
/// (what a client in another language sends for bytes).
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// A byte string as a result.
struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteBuf, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
        }
        d.deserialize_byte_buf(Visitor)
    }
}

/// Maps a typed call's error.
fn call_err(addr: &str, e: RpcError) -> LinkError {
    match e {
        RpcError::Timeout { .. } => {
            LinkError::Failed(format!("no reply from {addr} within {CALL_TIMEOUT:?}"))
        }
        RpcError::PeerGone { .. } => LinkError::PeerGone(format!("{addr}: {e}")),
        e => LinkError::Failed(format!("{addr}: {e}")),
    }
}

fn is_end(msg: &[u8]) -> bool {
    msg.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        == Some(u64::MAX)
}

impl Link for ClientLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        let _ = wait;
        if is_end(msg) {
            // The end of a phase: the server answers it at once (before the harness sees it),
            // so the call returns and no caller is left reading this connection.
            return match self
                .client
                .call::<_, ByteBuf>(METHOD, &Bytes(msg), CALL_TIMEOUT)
            {
                Ok(_) => Ok(()),
                Err(e) => Err(call_err(&self.addr, e)),
            };
        }
        self.request.clear();
        self.request.extend_from_slice(msg);
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        let _ = wait;
        // A typed call: the argument encoded, the result decoded (as a program calling an
        // `ipcx::rpc` service does).
        let ByteBuf(result) = self
            .client
            .call(METHOD, &Bytes(&self.request), CALL_TIMEOUT)
            .map_err(|e| call_err(&self.addr, e))?;
        *buf = result;
        Ok(())
    }

    fn max_payload(&self) -> Option<usize> {
        Some(self.client.raw().max_payload_len(METHOD).saturating_sub(16))
    }
}

/// The serving side before the client connects.
struct ServerHalf {
    listener: Box<dyn Listener>,
    opts: ServerOptions,
}

impl HalfOpen for ServerHalf {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let deadline = match wait {
            Wait::Until(d) => d,
            _ => Instant::now() + Duration::from_secs(10),
        };
        let conn = Connection::accept(&self.listener, &self.opts, Wait::Until(deadline))
            .map_err(|e| map_err("accepting the client", e))?;
        Ok(Box::new(ServerLink {
            conn,
            current: None,
            reply: Vec::new(),
            _listener: self.listener,
        }))
    }
}

/// The serving side: `recv` reads the next call from the connection, `send` answers it, both
/// on the harness's thread (as a server's connection thread does).
struct ServerLink {
    conn: Connection,
    /// The id and codec of the call being answered.
    current: Option<(u64, Codec)>,
    /// The encoded reply (reused, as a connection thread's reply buffer is).
    reply: Vec<u8>,
    _listener: Box<dyn Listener>,
}

/// Decodes a call's argument, a byte string in `codec`, where it lies (as `ipcx::rpc` does).
fn decode_bytes(codec: Codec, payload: &[u8]) -> Result<&[u8], String> {
    match codec {
        Codec::MsgPack => rmp_serde::from_slice(payload).map_err(|e| e.to_string()),
        _ => postcard::from_bytes(payload).map_err(|e| e.to_string()),
    }
}

/// Encodes the byte string `b` in `codec` into `out` (cleared first), as `ipcx::rpc` encodes a
/// result.
fn encode_bytes(codec: Codec, b: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    match codec {
        Codec::MsgPack => rmp_serde::encode::write_named(out, &Bytes(b)).map_err(|e| e.to_string()),
        _ => {
            *out =
                postcard::to_extend(&Bytes(b), std::mem::take(out)).map_err(|e| e.to_string())?;
            Ok(())
        }
    }
}

impl Link for ServerLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        let _ = wait;
        let (id, codec) = self
            .current
            .take()
            .ok_or_else(|| LinkError::Failed("an RPC server only answers calls".into()))?;
        encode_bytes(codec, msg, &mut self.reply).map_err(LinkError::Failed)?;
        self.conn
            .reply(id, Status::Ok, &self.reply)
            .map_err(|e| map_err("replying", e))
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        // The call is lent where it lies (as an `ipcx::rpc` service's connection thread
        // decodes it) and its argument decoded into `buf`.
        let (id, codec, decoded) = self
            .conn
            .recv_with(wait, |call| {
                let decoded = decode_bytes(call.codec, call.payload).map(|b| {
                    buf.clear();
                    buf.extend_from_slice(b);
                });
                (call.id(), call.codec, decoded)
            })
            .map_err(|e| map_err("receiving a call", e))?;
        if let Err(e) = decoded {
            let _ = self.conn.reply(id, Status::BadRequest, e.as_bytes());
            return Err(LinkError::Failed(format!(
                "a call that does not decode: {e}"
            )));
        }
        if is_end(buf) {
            // Not echoed by the harness: answered here so that the caller is not left waiting.
            encode_bytes(codec, b"", &mut self.reply).map_err(LinkError::Failed)?;
            let _ = self.conn.reply(id, Status::Ok, &self.reply);
        } else {
            self.current = Some((id, codec));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips(row: impl Mechanism) {
        assert_eq!(crate::echo_test::echo_twenty(&row).1, 20);
        assert!(row.check_payload(1 << 20).is_ok());
        assert!(row.check_payload(64 << 20).is_err());
        assert_eq!(row.patterns(), &[Pattern::PingPong]);
    }

    #[test]
    fn rpc_unix_echoes_calls() {
        round_trips(RpcRow::new(RpcTransport::Unix));
    }

    #[test]
    fn rpc_tcp_echoes_calls() {
        round_trips(RpcRow::new(RpcTransport::Tcp));
    }

    #[test]
    fn rpc_shm_echoes_calls() {
        round_trips(RpcRow::new(RpcTransport::Shm));
    }

    #[test]
    fn rpc_unix_msgpack_echoes_calls() {
        round_trips(RpcRow::with_codec(RpcTransport::Unix, Codec::MsgPack));
    }

    #[test]
    fn rpc_shm_msgpack_echoes_calls() {
        round_trips(RpcRow::with_codec(RpcTransport::Shm, Codec::MsgPack));
    }

    #[test]
    fn the_codec_is_the_one_named() {
        // The bytes on the wire: postcard's length prefix, MessagePack's bin 8 marker (0xc4).
        let mut out = Vec::new();
        encode_bytes(Codec::Postcard, b"abc", &mut out).unwrap();
        assert_eq!(out, b"\x03abc");
        assert_eq!(decode_bytes(Codec::Postcard, &out).unwrap(), b"abc");
        encode_bytes(Codec::MsgPack, b"abc", &mut out).unwrap();
        assert_eq!(out, b"\xc4\x03abc");
        assert_eq!(decode_bytes(Codec::MsgPack, &out).unwrap(), b"abc");
        assert!(decode_bytes(Codec::MsgPack, b"\x03abc").is_err());
    }

    #[test]
    fn shm_link_echoes_frames() {
        round_trips(ShmLinkRow);
    }
}
