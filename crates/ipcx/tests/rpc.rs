//! Typed RPC (and the request/reply layer under it) between processes, what the matrix
//! (`rpc_matrix.rs`) does not cover: decode errors, handler panics, many outstanding calls
//! answered out of order, version handshake, authorisation, oversize arguments, hostile
//! peers, raw statuses, and the async client on a single-threaded runtime.
mod util;

use std::time::Duration;

use ipcx::pattern::reqrep::{Client, Frame, Hello, Status};
use ipcx::rpc::{CallContext, RpcClient, RpcError, Service};
use ipcx::socket::{UnixAddr, UnixStream};
use util::rpc::{LONG, connect, unix_addr as addr};

fn calc() -> Service {
    util::rpc::calc_add()
        .method("div", util::rpc::div)
        .method("boom", |_: ()| -> Result<(), String> {
            panic!("handler exploded")
        })
        .method_ctx("slow", |ctx: &CallContext, ms: u64| {
            util::rpc::slow(
                ctx,
                ms,
                CallContext::expired,
                "gave up: the caller's deadline passed",
            )
        })
        .method_ctx("whoami", util::rpc::whoami)
}

#[test]
fn child_role() {
    util::role_main(&[
        ("server", |args| {
            util::rpc::serve_until_killed(calc(), &args[0])
        }),
        ("caller_as_nobody", |args| {
            let e = RpcClient::connect(&args[0], "calc", 1, LONG).unwrap_err();
            assert!(matches!(e, RpcError::Denied { .. }), "{e:?}");
        }),
    ]);
}

#[test]
fn decode_errors_and_handler_panics_across_processes() {
    let a = addr("calc");
    let mut server = util::spawn_role("server", &[&a]);
    let c = connect(&a);
    util::rpc::assert_decode_errors(&c, "add");
    let e = c.call::<_, ()>("boom", &(), LONG).unwrap_err();
    assert!(
        matches!(&e, RpcError::HandlerPanicked { message, .. } if message.contains("exploded")),
        "{e:?}"
    );
    // The server survived the panic.
    assert_eq!(c.call::<_, i32>("add", &(40, 2), LONG).unwrap(), 42);
    server.kill();
}

#[test]
fn many_outstanding_calls_on_one_connection() {
    let a = addr("many");
    let _s = calc().threads(4).serve(&a).unwrap();
    let c = connect(&a);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    // Mix slow and fast calls so replies come back out of order.
                    if i % 10 == 0 {
                        assert_eq!(c.call::<_, u64>("slow", &5u64, LONG).unwrap(), 5);
                    }
                    assert_eq!(c.call::<_, i32>("add", &(t, i), LONG).unwrap(), t + i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn version_and_service_mismatch_fail_clearly() {
    let a = addr("version");
    let _s = calc().serve(&a).unwrap();
    util::rpc::assert_version_and_service_refusals(&a);
    util::rpc::assert_nobody_serves(&addr("nobody-there"), LONG);
}

#[test]
fn authorisation_hook_sees_verified_credentials() {
    let a = addr("auth");
    let me = std::process::id() as i32;
    let _s = calc()
        .authorize(move |peer| peer.credentials.is_some_and(|c| c.uid == 0 || c.pid == me))
        .serve(&a)
        .unwrap();
    let c = connect(&a);
    assert_eq!(c.call::<_, i32>("add", &(1, 1), LONG).unwrap(), 2);
    if util::is_root() {
        let mut child = util::spawn_role_as_nobody("caller_as_nobody", &[&a]);
        child.expect_success();
    }
    let b = addr("deny");
    let _d = calc().authorize(|_| false).serve(&b).unwrap();
    let e = RpcClient::connect(&b, "calc", 1, LONG).unwrap_err();
    assert!(matches!(e, RpcError::Denied { .. }), "{e:?}");
}

#[test]
fn oversize_arguments_are_refused_before_sending() {
    let a = addr("big");
    let _s = calc()
        .method("len", |v: Vec<u8>| Ok::<_, String>(v.len()))
        .max_request_len(1024)
        .serve(&a)
        .unwrap();
    let c = connect(&a);
    assert_eq!(
        c.call::<_, usize>("len", &vec![1u8; 500], LONG).unwrap(),
        500
    );
    let e = c
        .call::<_, usize>("len", &vec![1u8; 4096], LONG)
        .unwrap_err();
    assert!(matches!(e, RpcError::TooLarge { .. }), "{e:?}");
    assert_eq!(c.call::<_, usize>("len", &vec![1u8; 10], LONG).unwrap(), 10);
}

#[test]
fn hostile_clients_are_dropped_alone() {
    let a = addr("hostile");
    let s = calc().serve(&a).unwrap();
    let ua = UnixAddr::parse(a.strip_prefix("unix:").unwrap()).unwrap();
    // Garbage instead of a hello.
    let mut raw = UnixStream::connect(&ua).unwrap();
    raw.send_frame(b"\xff\xff\xff garbage").unwrap();
    assert!(matches!(raw.recv_frame_timeout(LONG), Ok(None) | Err(_)));
    // A valid hello, then a malformed request.
    let mut raw = UnixStream::connect(&ua).unwrap();
    let hello = Frame::Hello(Hello {
        protocol: ipcx::pattern::reqrep::PROTOCOL_VERSION,
        service: "calc".into(),
        version: 1,
        codec: 0,
    });
    raw.send_frame(&hello.encode()).unwrap();
    let w = raw.recv_frame_timeout(LONG).unwrap().unwrap();
    assert!(matches!(Frame::decode(&w), Ok(Frame::Welcome { .. })));
    raw.send_frame(b"\x01\x00\x00").unwrap();
    assert!(matches!(raw.recv_frame_timeout(LONG), Ok(None) | Err(_)));
    // A request for a method name that is not UTF-8, via the raw layer: dropped, not panicked.
    let c = connect(&a);
    assert_eq!(c.call::<_, i32>("add", &(1, 2), LONG).unwrap(), 3);
    drop(s);
    // A stopped server: the client learns it.
    let e = c.call::<_, i32>("add", &(1, 2), LONG).unwrap_err();
    assert!(matches!(e, RpcError::PeerGone { .. }), "{e:?}");
}

#[test]
fn raw_request_reply_statuses() {
    let a = addr("raw");
    let _s = calc().serve(&a).unwrap();
    let c = Client::connect(&a, "calc", 1, LONG).unwrap();
    let r = c.request("nope", b"", LONG).unwrap();
    assert_eq!(r.status, Status::UnknownMethod);
    let r = c
        .request("add", &postcard::to_allocvec(&(1i32, 2i32)).unwrap(), LONG)
        .unwrap();
    assert_eq!(r.status, Status::Ok);
    assert_eq!(postcard::from_bytes::<i32>(&r.payload).unwrap(), 3);
}

#[cfg(feature = "tokio")]
#[test]
fn async_client_on_a_single_threaded_runtime() {
    let a = addr("async-current-thread");
    let _s = calc().serve(&a).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = util::rpc::connect_async(&a).await;
        // Concurrent calls on one connection, on a single-threaded runtime.
        util::rpc::concurrent_adds(&c, 32).await;
        // A call whose future is dropped leaves the connection usable.
        let slow = c.call::<_, u64>("slow", &300u64, LONG);
        let _ = tokio::time::timeout(Duration::from_millis(20), slow).await;
        assert_eq!(c.call::<_, i32>("add", &(1, 1), LONG).await.unwrap(), 2);
    });
}
