//! The same-user rule on the connection listeners: an `Endpoint::bind` `Listener`
//! and the sync and async RPC servers refuse a client of another user (run as `nobody`)
//! unless told to trust it.
#![cfg(feature = "tokio")]
mod util;

use ipcx::channel::{ConnectionOptions, Endpoint};
use ipcx::rpc::{AsyncService, RpcClient, RpcError};
use ipcx::trust::Trust;
use ipcx::wait::Wait;
use util::rpc::{LONG, add, runtime, unix_addr};

#[test]
fn child_role() {
    util::role_main(&[
        ("link_hello", |a| {
            let addr = Endpoint::parse(&a[0]).unwrap();
            let mut link = addr.connect(Wait::timeout(LONG)).unwrap();
            let _ = link.send_frame_wait(b"hello", Wait::timeout(LONG));
        }),
        ("call_denied", |a| {
            let e = RpcClient::connect(&a[0], "calc", 1, LONG).unwrap_err();
            match &e {
                RpcError::Denied { message } => {
                    assert!(message.contains("does not trust"), "{message}")
                }
                other => panic!("expected Denied, got {other:?}"),
            }
        }),
        ("call_add", |a| {
            let c = RpcClient::connect(&a[0], "calc", 1, LONG).unwrap();
            assert_eq!(c.call::<_, i32>("add", &(2, 3), LONG).unwrap(), 5);
        }),
    ]);
}

fn skip_unless_root() -> bool {
    if util::is_root() {
        return false;
    }
    eprintln!("skipped: needs root to run a client as nobody");
    true
}

#[test]
fn link_listener_refuses_another_user_unless_trusted() {
    if skip_unless_root() {
        return;
    }
    let a = unix_addr("link");
    let l = Endpoint::parse(&a).unwrap().bind().unwrap();
    let mut child = util::spawn_role_as_nobody("link_hello", &[&a]);
    let e = l.accept_wait(Wait::timeout(LONG)).unwrap_err();
    assert!(e.to_string().contains("not trusted"), "{e}");
    child.expect_success();

    let a = unix_addr("link-trusted");
    let l = Endpoint::parse(&a)
        .unwrap()
        .bind_with(&ConnectionOptions::new().trust(Trust::own_user().allow_uid(util::NOBODY)))
        .unwrap();
    let mut child = util::spawn_role_as_nobody("link_hello", &[&a]);
    let mut link = l.accept_wait(Wait::timeout(LONG)).unwrap();
    assert_eq!(link.peer_credentials().unwrap().uid, util::NOBODY);
    assert_eq!(
        link.recv_frame_wait(Wait::timeout(LONG)).unwrap().unwrap(),
        b"hello"
    );
    child.expect_success();
}

#[test]
fn rpc_servers_deny_another_user_unless_trusted() {
    if skip_unless_root() {
        return;
    }
    // Sync server, default trust: denied, saying why.
    let a = unix_addr("rpc");
    let _s = ipcx::rpc::Service::new("calc", 1)
        .method("add", add)
        .serve(&a)
        .unwrap();
    util::spawn_role_as_nobody("call_denied", &[&a]).expect_success();
    let a = unix_addr("rpc-trusted");
    let _t = ipcx::rpc::Service::new("calc", 1)
        .method("add", add)
        .trust(Trust::own_user().allow_uid(util::NOBODY))
        .serve(&a)
        .unwrap();
    util::spawn_role_as_nobody("call_add", &[&a]).expect_success();

    // Async server: denied by default, served once trusted.
    let rt = runtime();
    let denied = unix_addr("arpc");
    let trusted = unix_addr("arpc-trusted");
    let _servers = rt.block_on(async {
        let d = AsyncService::new("calc", 1)
            .method("add", add)
            .serve_async(&denied)
            .await
            .unwrap();
        let t = AsyncService::new("calc", 1)
            .method("add", add)
            .trust(Trust::own_user().allow_uid(util::NOBODY))
            .serve_async(&trusted)
            .await
            .unwrap();
        (d, t)
    });
    util::spawn_role_as_nobody("call_denied", &[&denied]).expect_success();
    util::spawn_role_as_nobody("call_add", &[&trusted]).expect_success();
    drop(_servers);
}
