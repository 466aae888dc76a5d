//! Typed RPC over shared-memory rings (`shm:/NAME`) between processes: calls, credentials,
//! killed peers, hostile handshakes, and nothing left in /dev/shm.
mod util;

use std::time::{Duration, Instant};

use ipcx::pattern::reqrep::{Client, Status};
use ipcx::pattern::{Error, LinkAddr};
use ipcx::rpc::{CallContext, RpcClient, RpcError, Service};
use ipcx::socket::{UnixAddr, UnixStream};
use util::rpc::{LONG, connect, shm_addr as addr};

fn calc() -> Service {
    util::rpc::calc_add()
        .method("echo", |b: Vec<u8>| Ok::<_, String>(b))
        .method_ctx("slow", |ctx: &CallContext, ms: u64| {
            util::rpc::slow(ctx, ms, CallContext::cancelled, "gave up")
        })
        .method_ctx("whoami", util::rpc::whoami)
}

/// Segments in /dev/shm whose name starts with the address's name.
fn leftovers(a: &str) -> Vec<String> {
    let base = a.trim_start_matches("shm:/");
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(base))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn child_role() {
    util::role_main(&[
        ("server", |args| {
            util::rpc::serve_until_killed(calc(), &args[0])
        }),
        ("slow_caller", |args| {
            let c = RpcClient::connect(&args[0], "calc", 1, LONG).unwrap();
            assert_eq!(c.call::<_, i32>("add", &(1, 1), LONG).unwrap(), 2);
            let _ = c.call::<_, u64>("slow", &10_000u64, LONG);
        }),
    ]);
}

#[test]
fn addresses_parse_and_bad_ones_are_refused() {
    assert_eq!(
        LinkAddr::parse("shm:/calc").unwrap(),
        LinkAddr::Shm("/calc".into())
    );
    assert_eq!(
        LinkAddr::parse("shm:/calc").unwrap().to_string(),
        "shm:/calc"
    );
    for bad in ["shm:calc", "shm:/a/b", "shm:", "shm:/"] {
        let e = LinkAddr::parse(bad).unwrap_err();
        assert!(matches!(e, Error::InvalidAddress { .. }), "{bad}: {e:?}");
    }
    let e = RpcClient::connect(&addr("nobody"), "calc", 1, Duration::from_millis(200)).unwrap_err();
    assert!(
        matches!(e, RpcError::Transport(Error::NotFound { .. })),
        "{e:?}"
    );
}

#[test]
fn calls_over_shared_memory_between_processes() {
    let a = addr("calc");
    let mut server = util::spawn_role("server", &[&a]);
    let c = connect(&a);
    // The rings' names are removed as soon as both ends are attached.
    assert_eq!(leftovers(&a), Vec::<String>::new());
    assert_eq!(c.call::<_, i32>("add", &(1, 2), LONG).unwrap(), 3);
    let big: Vec<u8> = (0..64 * 1024).map(|i| i as u8).collect();
    assert_eq!(c.call::<_, Vec<u8>>("echo", &big, LONG).unwrap(), big);
    // The server sees the client's kernel-verified credentials (from the handshake socket).
    let who: Option<(i32, u32)> = c.call("whoami", &(), LONG).unwrap();
    assert_eq!(who.map(|w| w.0), Some(std::process::id() as i32));
    // Many calls from several threads on one connection.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    assert_eq!(c.call::<_, i32>("add", &(t, i), LONG).unwrap(), t + i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // A second client gets its own rings.
    let c2 = connect(&a);
    assert_eq!(c2.call::<_, i32>("add", &(5, 5), LONG).unwrap(), 10);
    // A call larger than the ring link carries fails before sending.
    let huge = vec![0u8; 2 << 20];
    let e = c.call::<_, Vec<u8>>("echo", &huge, LONG).unwrap_err();
    assert!(matches!(e, RpcError::TooLarge { .. }), "{e:?}");
    assert_eq!(c.call::<_, i32>("add", &(2, 2), LONG).unwrap(), 4);
    server.kill();
    drop((c, c2));
    assert_eq!(leftovers(&a), Vec::<String>::new());
}

#[test]
fn killed_server_fails_the_call_with_peer_gone() {
    let a = addr("killed");
    let mut server = util::spawn_role("server", &[&a]);
    let c = connect(&a);
    assert_eq!(c.call::<_, i32>("add", &(1, 1), LONG).unwrap(), 2);
    util::rpc::killed_server_fails_the_calls(&c, &mut server);
    drop(c);
    assert_eq!(leftovers(&a), Vec::<String>::new());
}

#[test]
fn killed_or_departed_clients_are_noticed_and_the_server_goes_on() {
    let a = addr("vanish");
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let _s = calc()
        .method_ctx("wait_for_gone", move |ctx: &CallContext, _: ()| {
            let t = Instant::now();
            while !ctx.caller_gone() && t.elapsed() < LONG {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = tx.lock().unwrap().send(ctx.caller_gone());
            Ok::<_, String>(())
        })
        .threads(2)
        .serve(&a)
        .unwrap();
    let mut child = util::spawn_role("slow_caller", &[&a]);
    // The child's "slow" call is running: wait until the server has a connection.
    std::thread::sleep(Duration::from_millis(300));
    child.kill();
    // The server keeps serving others.
    let c = connect(&a);
    assert_eq!(c.call::<_, i32>("add", &(3, 4), LONG).unwrap(), 7);
    // A caller that leaves during a call: its handler learns it.
    let c2 = connect(&a);
    let _ = c2.call::<_, ()>("wait_for_gone", &(), Duration::from_millis(200));
    drop(c2);
    assert!(rx.recv_timeout(LONG).unwrap());
    drop(c);
    assert_eq!(leftovers(&a), Vec::<String>::new());
}

#[test]
fn hostile_handshakes_are_refused_and_the_server_goes_on() {
    let a = addr("hostile");
    let name = a.trim_start_matches("shm:");
    let _s = calc().serve(&a).unwrap();
    let sock = UnixAddr::parse(&format!("@ipcx-shm-link{name}")).unwrap();
    let hellos: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        b"IPCXSHM1\x00".to_vec(),
        // Names of rings that do not belong to this server.
        {
            let mut h = b"IPCXSHM1".to_vec();
            for n in ["/other-q", "/other-r"] {
                h.extend_from_slice(&(n.len() as u16).to_be_bytes());
                h.extend_from_slice(n.as_bytes());
            }
            h
        },
        // The right prefix, but no such rings.
        {
            let mut h = b"IPCXSHM1".to_vec();
            for s in ["q", "r"] {
                let n = format!("{name}.link-1-1-{s}");
                h.extend_from_slice(&(n.len() as u16).to_be_bytes());
                h.extend_from_slice(n.as_bytes());
            }
            h
        },
    ];
    for h in hellos {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.send_frame_wait(&h, ipcx::wait::Wait::timeout(LONG))
            .unwrap();
        let answer = s
            .recv_frame_wait(ipcx::wait::Wait::timeout(LONG))
            .unwrap()
            .unwrap();
        assert!(answer.starts_with(b"NO"), "{answer:?}");
    }
    // A client that connects and says nothing holds the acceptor for at most the handshake
    // timeout.
    let _silent = UnixStream::connect(&sock).unwrap();
    let c = connect(&a);
    assert_eq!(c.call::<_, i32>("add", &(1, 2), LONG).unwrap(), 3);
    // The raw request/reply layer runs over the same link.
    let raw = Client::connect(&a, "calc", 1, LONG).unwrap();
    let r = raw.request("nope", b"", LONG).unwrap();
    assert_eq!(r.status, Status::UnknownMethod);
    drop((c, raw));
    assert_eq!(leftovers(&a), Vec::<String>::new());
}

#[test]
fn a_second_server_on_the_same_name_is_refused() {
    let a = addr("twice");
    let _s = calc().serve(&a).unwrap();
    assert!(calc().serve(&a).is_err());
}
