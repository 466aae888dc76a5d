//! The describe request (`ipcx.describe`): every typed server, thread-based and async, answers
//! it with its name, version and methods, in the caller's codec, over Unix sockets, TCP and
//! shared memory; a client that names no service (`RpcClient::connect_any`) reaches any
//! server and learns what it serves; reserved method names are refused at registration.
mod util;

use ipcx::channel::Codec;
use ipcx::discovery::MethodInfo;
use ipcx::pattern::reqrep::{Client, Hello, Status};
use ipcx::rpc::{DESCRIBE, Description, RpcClient, RpcError, Service};
use serde::Deserialize;
use util::rpc::{LONG, shm_addr, unix_addr};

/// `calc` version 3 with `div`, `add` and `neg` (registered out of order).
fn calc() -> Service {
    Service::new("calc", 3)
        .method("div", util::rpc::div)
        .method("add", util::rpc::add)
        .method("neg", |a: i64| Ok::<_, String>(-a))
}

fn tcp_addr() -> String {
    format!("tcp:127.0.0.1:{}", util::stable_tcp_port())
}

fn methods(names: &[&str]) -> Vec<MethodInfo> {
    names
        .iter()
        .map(|n| MethodInfo::new(n, &["postcard", "msgpack"]))
        .collect()
}

/// What `calc()` says about itself.
fn calc_described(d: &Description) {
    assert_eq!(d.name, "calc");
    assert_eq!(d.version, 3);
    assert_eq!(d.methods, methods(&["add", "div", "neg"]));
}

#[test]
fn a_thread_based_server_describes_itself_in_both_codecs() {
    for a in [unix_addr("describe"), tcp_addr(), shm_addr("describe")] {
        let s = calc().serve(&a).unwrap();
        let a = s.addr().to_string();
        for codec in [Codec::Postcard, Codec::MsgPack] {
            let c = util::wait_for(LONG, || {
                RpcClient::connect_with(&a, "calc", 3, LONG, codec).ok()
            });
            calc_described(&c.describe(LONG).unwrap());
            // The connection goes on serving calls.
            assert_eq!(c.call::<_, i32>("add", &(2, 3), LONG).unwrap(), 5);
        }
    }
}

/// The MessagePack answer as another language reads it: a map with exactly these keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    name: String,
    version: u32,
    methods: Vec<WireMethod>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireMethod {
    name: String,
    codecs: Vec<String>,
}

#[test]
fn the_msgpack_answer_is_a_map_keyed_by_name() {
    let s = calc().serve(&unix_addr("describe-bytes")).unwrap();
    let a = s.addr().to_string();
    let c = util::wait_for(LONG, || {
        Client::connect_hello(&a, &Hello::new("calc", 3, Codec::MsgPack), LONG).ok()
    });
    // The argument is ignored: nil, nothing, or anything else.
    for arg in [&[0xc0][..], &[], &[0x92, 0x01, 0x02]] {
        let r = c.request(DESCRIBE, arg, LONG).unwrap();
        assert_eq!(r.status, Status::Ok);
        // fixmap of 3 entries, the first key "name".
        assert_eq!(&r.payload[..6], b"\x83\xa4name", "{:02x?}", r.payload);
        let w: Wire = rmp_serde::from_slice(&r.payload).unwrap();
        assert_eq!((w.name.as_str(), w.version), ("calc", 3));
        let names: Vec<_> = w.methods.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["add", "div", "neg"]);
        assert!(
            w.methods
                .iter()
                .all(|m| m.codecs == ["postcard", "msgpack"])
        );
    }
    // Other names under the reserved prefix are unknown methods.
    let r = c.request("ipcx.other", &[0xc0], LONG).unwrap();
    assert_eq!(r.status, Status::UnknownMethod);
}

#[test]
fn a_client_naming_no_service_reaches_any_server() {
    for a in [unix_addr("describe-any"), shm_addr("describe-any")] {
        let s = calc().serve(&a).unwrap();
        let a = s.addr().to_string();
        for codec in [Codec::Postcard, Codec::MsgPack] {
            let c = util::wait_for(LONG, || {
                RpcClient::connect_any(&a, LONG, codec, &Default::default()).ok()
            });
            calc_described(&c.describe(LONG).unwrap());
            assert_eq!(c.call::<_, i32>("add", &(2, 3), LONG).unwrap(), 5);
            // The arguments travel as the caller encoded them; the result comes back raw.
            if codec == Codec::MsgPack {
                let r = c
                    .call_encoded("add", &[0x92, 0x02, 0x03], ipcx::wait::Wait::Forever)
                    .unwrap();
                assert_eq!(r, [0x05]);
            }
            let e = c.call::<_, i32>("mul", &(2, 3), LONG).unwrap_err();
            match e {
                RpcError::UnknownMethod { service, method } => {
                    assert_eq!((service.as_str(), method.as_str()), (a.as_str(), "mul"));
                }
                e => panic!("{e:?}"),
            }
        }
    }
    // A client that names a service is still held to it.
    let s = calc().serve(&unix_addr("describe-named")).unwrap();
    let e = RpcClient::connect(&s.addr().to_string(), "weather", 3, LONG).unwrap_err();
    assert!(matches!(e, RpcError::WrongService { .. }), "{e:?}");
}

#[test]
fn reserved_method_names_are_refused_at_registration() {
    let e = std::panic::catch_unwind(|| {
        Service::new("calc", 1).method("ipcx.describe", |a: i64| Ok::<_, String>(a))
    })
    .unwrap_err();
    let msg = e.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("\"ipcx.describe\" is reserved") && msg.contains("choose another name"),
        "{msg}"
    );
    assert!(
        std::panic::catch_unwind(|| {
            Service::new("calc", 1).method_ctx("ipcx.x", util::rpc::whoami)
        })
        .is_err()
    );
    // Names that only look alike are fine.
    let _ = Service::new("calc", 1)
        .method("ipcx", |a: i64| Ok::<_, String>(a))
        .method("describe", |a: i64| Ok::<_, String>(a));
}

#[cfg(feature = "tokio")]
#[test]
fn an_async_server_describes_itself_to_sync_and_async_clients() {
    use ipcx::rpc::{AsyncRpcClient, AsyncService, CallContext};

    let rt = util::rpc::runtime();
    for a in [
        unix_addr("describe-async"),
        tcp_addr(),
        shm_addr("describe-async"),
    ] {
        rt.block_on(async {
            let s = AsyncService::from(calc())
                .method_async("twice", |a: i64, _ctx: CallContext| async move {
                    Ok::<_, String>(a * 2)
                })
                .serve_async(&a)
                .await
                .unwrap();
            let a = s.addr().to_string();
            let want = methods(&["add", "div", "neg", "twice"]);
            for codec in [Codec::Postcard, Codec::MsgPack] {
                let c = AsyncRpcClient::connect_with(&a, "calc", 3, LONG, codec)
                    .await
                    .unwrap();
                let d = c.describe(LONG).await.unwrap();
                assert_eq!((d.name.as_str(), d.version), ("calc", 3));
                assert_eq!(d.methods, want);
                let any = AsyncRpcClient::connect_any(&a, LONG, codec, &Default::default())
                    .await
                    .unwrap();
                assert_eq!(any.describe(LONG).await.unwrap(), d);
                assert_eq!(any.call::<_, i64>("twice", &21i64, LONG).await.unwrap(), 42);
                // And a thread-based client, from the blocking pool.
                let a2 = a.clone();
                let d2 = tokio::task::spawn_blocking(move || {
                    RpcClient::connect_any(&a2, LONG, codec, &Default::default())
                        .unwrap()
                        .describe(LONG)
                        .unwrap()
                })
                .await
                .unwrap();
                assert_eq!(d2, d);
            }
            s.shutdown().await;
        });
    }
    let e = std::panic::catch_unwind(|| {
        AsyncService::new("calc", 1)
            .method_async("ipcx.describe", |a: i64, _: CallContext| async move {
                Ok::<_, String>(a)
            })
    });
    assert!(e.is_err());
}
