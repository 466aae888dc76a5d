//! Codecs on the RPC wire: a server answers each connection in the codec its client named in
//! the hello (postcard or MessagePack), with postcard and MessagePack clients on one server at
//! once, over Unix sockets, TCP and shared memory, thread-based and async (both ends); the
//! MessagePack bytes are what other languages expect (a tuple as an array, a struct as a map
//! keyed by field name; a payload is exactly one value); an unknown codec tag is refused with a
//! named error.
mod util;

use ipcx::channel::Codec;
use ipcx::pattern::reqrep::{Client, ConnectError, Hello, Refusal, Status};
use ipcx::rpc::{RpcClient, RpcError, Service};
use serde::{Deserialize, Serialize};
use util::rpc::{LONG, shm_addr, unix_addr};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

/// `calc` version 1: `add` (a tuple), `div` (an application error), `mirror` (a struct).
fn calc() -> Service {
    util::rpc::calc_add()
        .method("div", util::rpc::div)
        .method("mirror", |p: Point| {
            Ok::<_, String>(Point { x: p.y, y: p.x })
        })
        .method("sum", |v: Vec<u64>| Ok::<_, String>(v.iter().sum::<u64>()))
}

/// A free TCP address on the loopback.
fn tcp_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("tcp:{}", l.local_addr().unwrap())
}

/// A client of `calc` version 1 at `a` calling in `codec`, retried until the server is up.
fn connect(a: &str, codec: Codec) -> RpcClient {
    util::wait_for(LONG, || {
        RpcClient::connect_with(a, "calc", 1, LONG, codec).ok()
    })
}

/// A postcard client and a MessagePack client call the server at `a` at the same time; each
/// gets its results, errors and structs in its own codec.
fn both_codecs_at_once(a: &str) {
    let pc = connect(a, Codec::Postcard);
    let mp = connect(a, Codec::MsgPack);
    assert_eq!((pc.codec(), mp.codec()), (Codec::Postcard, Codec::MsgPack));
    let threads: Vec<_> = [pc, mp]
        .into_iter()
        .map(|c| {
            std::thread::spawn(move || {
                for i in 0..200 {
                    assert_eq!(c.call::<_, i32>("add", &(i, 3), LONG).unwrap(), i + 3);
                }
                let p = Point { x: 1, y: -2 };
                let back: Point = c.call("mirror", &p, LONG).unwrap();
                assert_eq!(back, Point { x: -2, y: 1 });
                match c.call::<_, i32>("div", &(1, 0), LONG).unwrap_err() {
                    RpcError::Remote { message, .. } => assert_eq!(message, "division by zero"),
                    e => panic!("{e:?}"),
                }
                // Arguments too large for the stack buffer, and small enough for it.
                let v: Vec<u64> = (0..1000).map(|i| i * 1_000_000).collect();
                let sum: u64 = c.call("sum", &v, LONG).unwrap();
                assert_eq!(sum, v.iter().sum::<u64>());
                let sum: u64 = c.call("sum", &vec![1u64; 250], LONG).unwrap();
                assert_eq!(sum, 250);
                let e = c.call::<_, i32>("nope", &(), LONG).unwrap_err();
                assert!(matches!(e, RpcError::UnknownMethod { .. }), "{e:?}");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn postcard_and_msgpack_clients_share_a_server() {
    for a in [unix_addr("codec"), tcp_addr(), shm_addr("codec")] {
        let s = calc().serve(&a).unwrap();
        both_codecs_at_once(&s.addr().to_string());
    }
}

/// Sends one request of `method` with the raw `payload` on a raw client calling in `codec`,
/// and returns the reply's status and raw payload.
fn raw_call(a: &str, codec: u8, method: &str, payload: &[u8]) -> (Status, Vec<u8>) {
    let hello = Hello {
        codec,
        ..Hello::new("calc", 1, Codec::Postcard)
    };
    let c = util::wait_for(LONG, || Client::connect_hello(a, &hello, LONG).ok());
    let r = c.request(method, payload, LONG).unwrap();
    (r.status, r.payload)
}

#[test]
fn msgpack_bytes_are_what_other_languages_send() {
    let s = calc().serve(&unix_addr("codec-bytes")).unwrap();
    let a = s.addr().to_string();
    // add([2, 3]): a fixarray of two fixints; the result 5 is the fixint 0x05.
    let (status, payload) = raw_call(&a, 1, "add", &[0x92, 0x02, 0x03]);
    assert_eq!((status, payload), (Status::Ok, vec![0x05]));
    // The same call in postcard (tag 0, as an old client sends it): zigzag varints.
    let (status, payload) = raw_call(&a, 0, "add", &[0x04, 0x06]);
    assert_eq!((status, payload), (Status::Ok, vec![0x0a]));
    // A struct comes back as a map keyed by field name, and is read from a map or an array.
    let want = rmp_serde::to_vec_named(&Point { x: 4, y: 3 }).unwrap();
    assert_eq!(want, b"\x82\xa1x\x04\xa1y\x03");
    let map = rmp_serde::to_vec_named(&Point { x: 3, y: 4 }).unwrap();
    assert_eq!(raw_call(&a, 1, "mirror", &map), (Status::Ok, want.clone()));
    assert_eq!(
        raw_call(&a, 1, "mirror", &[0x92, 0x03, 0x04]),
        (Status::Ok, want)
    );
    // An application error is UTF-8 text whatever the codec.
    let (status, payload) = raw_call(&a, 1, "div", &[0x92, 0x01, 0x00]);
    assert_eq!(
        (status, &payload[..]),
        (Status::AppError, &b"division by zero"[..])
    );
    // Arguments that do not decode.
    let (status, _) = raw_call(&a, 1, "add", &[0xa1, b'x']);
    assert_eq!(status, Status::BadRequest);
    // A payload is one value: bytes after it are a bad request, in either codec.
    let (status, why) = raw_call(&a, 1, "add", &[0x92, 0x02, 0x03, 0xc0]);
    assert_eq!(status, Status::BadRequest);
    assert!(
        String::from_utf8_lossy(&why).contains("left over"),
        "{why:?}"
    );
    let (status, _) = raw_call(&a, 0, "add", &[0x04, 0x06, 0x00]);
    assert_eq!(status, Status::BadRequest);
    let (status, _) = raw_call(&a, 1, "nope", &[0x90]);
    assert_eq!(status, Status::UnknownMethod);
}

#[test]
fn unknown_codec_is_refused_by_name() {
    let s = calc().serve(&unix_addr("codec-unknown")).unwrap();
    let a = s.addr().to_string();
    let hello = Hello {
        codec: 7,
        ..Hello::new("calc", 1, Codec::Postcard)
    };
    match Client::connect_hello(&a, &hello, LONG) {
        Err(ConnectError::Refused(r)) => {
            assert_eq!(r.reason, Refusal::UnknownCodec);
            assert!(r.message.contains("unknown codec tag 7"), "{}", r.message);
            assert!(r.message.contains("msgpack"), "{}", r.message);
        }
        other => panic!("{other:?}"),
    }
    // The server goes on serving.
    let c = connect(&a, Codec::MsgPack);
    assert_eq!(c.call::<_, i32>("add", &(1, 2), LONG).unwrap(), 3);
}

#[test]
fn codec_tags_and_names() {
    for c in [Codec::Postcard, Codec::MsgPack] {
        assert_eq!(Codec::from_tag(c.tag()), Some(c));
    }
    assert_eq!((Codec::Postcard.tag(), Codec::MsgPack.tag()), (0, 1));
    assert_eq!(Codec::MsgPack.name(), "msgpack");
    assert_eq!(Codec::default(), Codec::Postcard);
    assert_eq!(Codec::from_tag(2), None);
    // Postcard hellos are byte for byte those of the first protocol version (no tag).
    let plain = ipcx::pattern::reqrep::Frame::Hello(Hello::new("calc", 1, Codec::Postcard));
    assert_eq!(
        plain.encode(),
        b"IPCXRQ\x00\x01\x00\x00\x00\x01\x00\x04calc"
    );
    let mp = ipcx::pattern::reqrep::Frame::Hello(Hello::new("calc", 1, Codec::MsgPack));
    assert_eq!(
        mp.encode(),
        b"IPCXRQ\x00\x01\x00\x00\x00\x01\x00\x04calc\x01"
    );
}

#[cfg(feature = "tokio")]
#[test]
fn async_server_and_client_speak_both_codecs() {
    use ipcx::rpc::{AsyncRpcClient, AsyncService, CallContext};
    let rt = util::rpc::runtime();
    rt.block_on(async {
        let svc = AsyncService::from(calc()).method_async(
            "add_async",
            |a: (i32, i32), ctx: CallContext| async move {
                assert_eq!(ctx.codec, Codec::MsgPack);
                Ok::<_, String>(a.0 + a.1)
            },
        );
        for a in [
            unix_addr("codec-async"),
            tcp_addr(),
            shm_addr("codec-async"),
        ] {
            let s = svc.clone().serve_async(&a).await.unwrap();
            let a = s.addr().to_string();
            let mp = AsyncRpcClient::connect_with(&a, "calc", 1, LONG, Codec::MsgPack)
                .await
                .unwrap();
            let pc = AsyncRpcClient::connect(&a, "calc", 1, LONG).await.unwrap();
            assert_eq!(
                mp.call::<_, i32>("add_async", &(2, 3), LONG).await.unwrap(),
                5
            );
            assert_eq!(mp.call::<_, i32>("add", &(2, 3), LONG).await.unwrap(), 5);
            assert_eq!(pc.call::<_, i32>("add", &(2, 4), LONG).await.unwrap(), 6);
            let p: Point = mp
                .call("mirror", &Point { x: 1, y: 2 }, LONG)
                .await
                .unwrap();
            assert_eq!(p, Point { x: 2, y: 1 });
            // A sync client calling in MessagePack, on the async server.
            let a2 = a.clone();
            tokio::task::spawn_blocking(move || both_codecs_at_once(&a2))
                .await
                .unwrap();
            drop(s);
        }
    });
}
