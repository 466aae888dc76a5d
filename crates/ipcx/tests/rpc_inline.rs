//! RPC calls run on the thread that read them (no hand-off), between processes, over rings
//! and Unix sockets: a lone caller is served by one connection thread, concurrent calls on one
//! connection are all answered to the right caller, a slow handler does not hold up other
//! calls of its connection, a panicking handler leaves the connection working, and a caller
//! killed mid-call is noticed by its handler.
mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ipcx::rpc::{CallContext, RpcClient, RpcError, Service};
use util::rpc::{LONG, shm_addr, unix_addr};

fn service() -> Service {
    let slow_running = Arc::new(AtomicBool::new(false));
    let flag = slow_running.clone();
    Service::new("inline", 1)
        .method("echo", |b: Vec<u8>| Ok::<_, String>(b))
        .method("add", |a: (i64, i64)| Ok::<_, String>(a.0 + a.1))
        // The thread that ran the call: its name and id.
        .method("thread", |_: ()| {
            let t = std::thread::current();
            Ok::<_, String>((t.name().unwrap_or("").to_owned(), format!("{:?}", t.id())))
        })
        .method_ctx("slow", move |ctx: &CallContext, ms: u64| {
            flag.store(true, Ordering::SeqCst);
            let until = Instant::now() + Duration::from_millis(ms);
            while Instant::now() < until && !ctx.cancelled() {
                std::thread::sleep(Duration::from_millis(2));
            }
            flag.store(false, Ordering::SeqCst);
            Ok::<_, String>(ms)
        })
        .method("slow_running", move |_: ()| {
            Ok::<_, String>(slow_running.load(Ordering::SeqCst))
        })
        .method("boom", |_: ()| -> Result<(), String> {
            panic!("handler exploded")
        })
}

fn connect(a: &str) -> RpcClient {
    util::rpc::connect_to(a, "inline")
}

#[test]
fn child_role() {
    util::role_main(&[
        ("server", |args| {
            util::rpc::serve_until_killed(service(), &args[0])
        }),
        ("holding_caller", |args| {
            let c = RpcClient::connect(&args[0], "inline", 1, LONG).unwrap();
            let _ = c.call::<_, ()>("hold", &(), LONG);
        }),
    ]);
}

fn lone_caller_is_served_by_one_connection_thread(a: &str) {
    let _server = util::spawn_role("server", &[a]);
    let c = connect(a);
    for i in 0..500i64 {
        assert_eq!(c.call::<_, i64>("add", &(i, 1), LONG).unwrap(), i + 1);
        let payload = vec![i as u8; (i as usize * 37) % 3000];
        assert_eq!(
            c.call::<_, Vec<u8>>("echo", &payload, LONG).unwrap(),
            payload
        );
        if i % 50 == 0 {
            // The call ran on the thread that read it from the connection, not on a pool.
            let (name, _id): (String, String) = c.call("thread", &(), LONG).unwrap();
            assert_eq!(name, "ipcx-rep-conn");
        }
    }
}

#[test]
fn lone_caller_over_rings() {
    lone_caller_is_served_by_one_connection_thread(&shm_addr("lone"));
}

#[test]
fn lone_caller_over_a_unix_socket() {
    lone_caller_is_served_by_one_connection_thread(&unix_addr("lone"));
}

fn concurrent_calls_reach_their_callers(a: &str) {
    let _server = util::spawn_role("server", &[a]);
    let c = connect(a);
    let threads: Vec<_> = (0..8i64)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..200i64 {
                    if i % 50 == 0 {
                        // Slow calls make replies come back out of order.
                        assert_eq!(c.call::<_, u64>("slow", &3u64, LONG).unwrap(), 3);
                    }
                    assert_eq!(
                        c.call::<_, i64>("add", &(t * 1000, i), LONG).unwrap(),
                        t * 1000 + i
                    );
                    let mine = format!("caller {t} call {i}").into_bytes();
                    assert_eq!(c.call::<_, Vec<u8>>("echo", &mine, LONG).unwrap(), mine);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn concurrent_calls_on_one_connection_over_rings() {
    concurrent_calls_reach_their_callers(&shm_addr("many"));
}

#[test]
fn concurrent_calls_on_one_connection_over_a_unix_socket() {
    concurrent_calls_reach_their_callers(&unix_addr("many"));
}

fn slow_handler_does_not_hold_up_the_connection(a: &str) {
    let _server = util::spawn_role("server", &[a]);
    let c = connect(a);
    let c2 = c.clone();
    let slow = std::thread::spawn(move || c2.call::<_, u64>("slow", &10_000u64, LONG));
    // The slow call runs; other calls on the same connection are answered meanwhile.
    assert!(util::wait_until(LONG, || c
        .call::<_, bool>("slow_running", &(), LONG)
        .unwrap()));
    for i in 0..20i64 {
        assert_eq!(c.call::<_, i64>("add", &(i, i), LONG).unwrap(), 2 * i);
    }
    assert!(c.call::<_, bool>("slow_running", &(), LONG).unwrap());
    assert!(!slow.is_finished(), "the slow call is still running");
    drop(_server);
    let _ = slow.join().unwrap();
}

#[test]
fn slow_handler_does_not_hold_up_its_connection_over_rings() {
    slow_handler_does_not_hold_up_the_connection(&shm_addr("slow"));
}

#[test]
fn slow_handler_does_not_hold_up_its_connection_over_a_unix_socket() {
    slow_handler_does_not_hold_up_the_connection(&unix_addr("slow"));
}

#[test]
fn a_panicking_handler_leaves_the_connection_working() {
    for a in [shm_addr("boom"), unix_addr("boom")] {
        let _server = util::spawn_role("server", &[&a]);
        let c = connect(&a);
        for _ in 0..3 {
            let e = c.call::<_, ()>("boom", &(), LONG).unwrap_err();
            assert!(matches!(e, RpcError::HandlerPanicked { .. }), "{e:?}");
            assert_eq!(c.call::<_, i64>("add", &(2, 3), LONG).unwrap(), 5);
        }
    }
}

#[test]
fn a_caller_killed_mid_call_is_noticed_by_its_handler() {
    for a in [shm_addr("killed"), unix_addr("killed")] {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (gone_tx, gone_rx) = std::sync::mpsc::channel();
        let (started_tx, gone_tx) = (
            std::sync::Mutex::new(started_tx),
            std::sync::Mutex::new(gone_tx),
        );
        let _s = service()
            .method_ctx("hold", move |ctx: &CallContext, _: ()| {
                let _ = started_tx.lock().unwrap().send(());
                let t = Instant::now();
                while !ctx.caller_gone() && t.elapsed() < LONG {
                    std::thread::sleep(Duration::from_millis(2));
                }
                let _ = gone_tx.lock().unwrap().send(ctx.caller_gone());
                Ok::<_, String>(())
            })
            .serve(&a)
            .unwrap();
        let mut child = util::spawn_role("holding_caller", &[&a]);
        // The child's call is running on the server (its connection's only thread).
        started_rx.recv_timeout(LONG).unwrap();
        child.kill();
        assert!(
            gone_rx.recv_timeout(LONG).unwrap(),
            "the handler saw its caller go"
        );
        // The server goes on.
        let c = connect(&a);
        assert_eq!(c.call::<_, i64>("add", &(3, 4), LONG).unwrap(), 7);
    }
}
