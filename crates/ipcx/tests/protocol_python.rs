//! `docs/PROTOCOL.md` is enough to write a client: a Python client written from it (standard
//! library and `msgpack` only) calls a Rust service over a Unix socket and over TCP, and the
//! bytes it sends and receives are the document's examples, byte for byte: the hello, a
//! welcome, `add` with `[2, 3]` and its reply, an unknown method, an application error, the
//! refusal of an unknown codec, and a hello naming no service followed by `ipcx.describe`;
//! also pipelined calls answered by id and a struct as a map.
//!
//! Without python3's `msgpack` the test prints a skip note, unless `IPCX_INTEROP=1`, which
//! makes it fail with the command to install it.
mod util;

use ipcx::rpc::Service;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Point {
    x: i64,
    y: i64,
}

/// The service of the document's examples.
fn calc() -> Service {
    Service::new("calc", 1)
        .method("add", |(a, b): (i64, i64)| Ok::<_, String>(a + b))
        .method("div", |(a, b): (i64, i64)| {
            if b == 0 {
                Err("division by zero".to_string())
            } else {
                Ok(a / b)
            }
        })
        .method("mirror", |p: Point| {
            Ok::<_, String>(Point { x: p.y, y: p.x })
        })
}

/// The client, written from `docs/PROTOCOL.md`. Arguments: `unix NAME` (abstract) or
/// `tcp HOST PORT`.
const CLIENT: &str = r#"
import socket, struct, sys, msgpack

def frame(body):
    return struct.pack(">I", len(body)) + body

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise ConnectionError("closed")
        b += chunk
    return b

def read_frame(s):
    n = struct.unpack(">I", recv_exact(s, 4))[0]
    return recv_exact(s, n)

def connect():
    if sys.argv[1] == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect("\0" + sys.argv[2])
    else:
        s = socket.create_connection((sys.argv[2], int(sys.argv[3])))
    s.settimeout(20)
    return s

def hello(service, version, codec):
    svc = service.encode()
    return frame(b"IPCXRQ" + struct.pack(">HIH", 1, version, len(svc)) + svc + bytes([codec]))

def request(rid, method, payload, deadline_ms=0):
    m = method.encode()
    return frame(struct.pack(">BQIH", 1, rid, deadline_ms, len(m)) + m + payload)

def parse_reply(body):
    kind, rid, status = struct.unpack(">BQB", body[:10])
    assert kind == 0x02, body
    return rid, status, body[10:]

h = lambda s: bytes.fromhex(s)
# Section 6's describe reply (the frame's body).
DESCRIBED = """
02 0000000000000001 00
83 a46e616d65 a463616c63 a776657273696f6e 01 a76d6574686f6473 93
  82 a46e616d65 a3616464 a6636f64656373 92 a8706f737463617264 a76d73677061636b
  82 a46e616d65 a3646976 a6636f64656373 92 a8706f737463617264 a76d73677061636b
  82 a46e616d65 a66d6972726f72 a6636f64656373 92 a8706f737463617264 a76d73677061636b
"""

# Section 6, byte for byte.
s = connect()
sent = hello("calc", 1, 1)
assert sent == h("00000013 495043585251 0001 00000001 000463616c63 01"), sent.hex()
s.sendall(sent)
assert read_frame(s) == h("10 01000000")
sent = request(1, "add", msgpack.packb([2, 3]), 1000)
assert sent == h("00000015 01 0000000000000001 000003e8 0003616464 920203"), sent.hex()
s.sendall(sent)
got = read_frame(s)
assert got == h("02 0000000000000001 00 05"), got.hex()
assert msgpack.unpackb(parse_reply(got)[2]) == 5

s.sendall(request(2, "mul", msgpack.packb([2, 3])))
assert read_frame(s) == h("02 0000000000000002 02")
s.sendall(request(3, "div", msgpack.packb([1, 0])))
rid, status, payload = parse_reply(read_frame(s))
assert (rid, status, payload) == (3, 1, b"division by zero"), (rid, status, payload)

# Pipelined calls: replies matched by id.
for i in range(10, 30):
    s.sendall(request(i, "add", msgpack.packb([i, 1000]), 5000))
results = {}
for _ in range(10, 30):
    rid, status, payload = parse_reply(read_frame(s))
    assert status == 0, (rid, status, payload)
    results[rid] = msgpack.unpackb(payload)
assert results == {i: i + 1000 for i in range(10, 30)}, results

# A struct is a map keyed by field name (an array of its fields is read too).
for arg in ({"x": 3, "y": 4}, [3, 4]):
    s.sendall(request(40, "mirror", msgpack.packb(arg)))
    rid, status, payload = parse_reply(read_frame(s))
    assert (rid, status) == (40, 0), (rid, status, payload)
    assert msgpack.unpackb(payload) == {"x": 4, "y": 3}, payload

# Bad arguments: status 3 with a message.
s.sendall(request(41, "add", msgpack.packb("two and three")))
rid, status, payload = parse_reply(read_frame(s))
assert (rid, status) == (41, 3) and payload, (rid, status, payload)
s.close()

# An unknown codec is refused (reason 5), then the connection closes.
s = connect()
s.sendall(hello("calc", 1, 7))
msg = b"unknown codec tag 7: this server speaks 0 (postcard) and 1 (msgpack)"
assert read_frame(s) == h("11 05 0001 00000001") + struct.pack(">H", len(msg)) + msg
assert s.recv(1) == b""
s.close()

# Describing a service (section 4.5): a hello naming no service reaches any server, and
# ipcx.describe answers its name, version and methods, byte for byte as in section 6.
s = connect()
sent = hello("", 0, 1)
assert sent == h("0000000f 495043585251 0001 00000000 0000 01"), sent.hex()
s.sendall(sent)
assert read_frame(s) == h("10 01000000")
sent = request(1, "ipcx.describe", msgpack.packb(None), 1000)
assert sent == h("0000001d 01 0000000000000001 000003e8 000d 697063782e6465736372696265 c0"), sent.hex()
s.sendall(sent)
got = read_frame(s)
rid, status, payload = parse_reply(got)
assert (rid, status) == (1, 0), (rid, status, payload)
both = ["postcard", "msgpack"]
assert msgpack.unpackb(payload) == {
    "name": "calc",
    "version": 1,
    "methods": [{"name": m, "codecs": both} for m in ("add", "div", "mirror")],
}, payload
assert got == h(DESCRIBED), got.hex()
# The connection then calls as any other.
s.sendall(request(2, "add", msgpack.packb([2, 3])))
assert read_frame(s) == h("02 0000000000000002 00 05")
s.close()

# A hello without the codec byte is postcard: add(2, 3) as two zigzag varints.
s = connect()
s.sendall(frame(b"IPCXRQ" + struct.pack(">HIH", 1, 1, 4) + b"calc"))
assert read_frame(s)[0] == 0x10
s.sendall(request(1, "add", bytes([4, 6])))
assert read_frame(s) == h("02 0000000000000001 00 0a")
s.close()
print("ok")
"#;

/// Runs the Python client against `calc` served at `addr`, reached with `args`.
fn call_from_python(addr: &str, args: impl Fn(&str) -> Vec<String>) {
    let s = calc().serve(addr).unwrap();
    let a = s.addr().to_string();
    let args = args(&a);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, out) = util::python::run(CLIENT, &args);
    assert_eq!(out.trim(), "ok");
}

#[test]
fn python_client_over_unix_socket() {
    if !util::python::ready("msgpack") {
        return;
    }
    call_from_python(&util::rpc::unix_addr("protocol"), |a| {
        let name = a.strip_prefix("unix:@").expect("an abstract address");
        vec!["unix".into(), name.into()]
    });
}

#[test]
fn python_client_over_tcp() {
    if !util::python::ready("msgpack") {
        return;
    }
    call_from_python("tcp:127.0.0.1:0", |a| {
        let (host, port) = a
            .strip_prefix("tcp:")
            .and_then(|hp| hp.rsplit_once(':'))
            .expect("a TCP address");
        vec!["tcp".into(), host.into(), port.into()]
    });
}
