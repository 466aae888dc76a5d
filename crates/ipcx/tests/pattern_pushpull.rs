//! Push/pull between processes: every task answered once, credit-based load balancing,
//! redelivery after a worker is killed, no hang when every worker dies, hostile peers.
mod util;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ipcx::channel::Endpoint;
use ipcx::pattern::Error;
use ipcx::pattern::pushpull::{Distributor, DistributorOptions, Worker};
use ipcx::socket::{UnixAddr, UnixListener, UnixStream};

const LONG: Duration = Duration::from_secs(20);

fn addr(tag: &str) -> String {
    format!("unix:@{}", util::unique(tag))
}

fn connect(a: &str, credits: u32) -> Worker {
    let mut w = None;
    assert!(util::wait_until(LONG, || {
        w = Worker::connect(a, credits, LONG).ok();
        w.is_some()
    }));
    w.unwrap()
}

#[test]
fn child_role() {
    util::role_main(&[
        ("worker", |args| {
            // addr name delay_ms: answers "<name>:<task>" after delay_ms; with credits 1,
            // never holds a second task while working on one.
            let mut w = connect(&args[0], 1);
            let delay = Duration::from_millis(args[2].parse().unwrap());
            loop {
                let t = match w.recv_timeout(LONG) {
                    Ok(t) => t,
                    Err(Error::PeerGone { .. }) => return,
                    Err(e) => panic!("{e:?}"),
                };
                std::thread::sleep(delay);
                assert!(
                    matches!(w.try_recv(), Err(Error::WouldBlock)),
                    "a busy worker was handed a second task"
                );
                let mut out = format!("{}:", args[1]).into_bytes();
                out.extend_from_slice(&t.data);
                if w.reply(t.id, &out).is_err() {
                    return;
                }
            }
        }),
        ("hoarder", |args| {
            // Takes tasks and never answers (until killed).
            let _w = connect(&args[0], args[1].parse().unwrap());
            std::thread::sleep(Duration::from_secs(60));
        }),
    ]);
}

fn collect(d: &Distributor, n: usize) -> HashMap<u64, ipcx::pattern::pushpull::TaskResult> {
    let mut got = HashMap::new();
    while got.len() < n {
        let r = d.recv_result_timeout(LONG).unwrap();
        assert!(got.insert(r.id, r).is_none(), "a result came twice");
    }
    assert!(matches!(
        d.recv_result_timeout(Duration::from_millis(100)),
        Err(Error::Timeout)
    ));
    got
}

#[test]
fn every_task_answered_exactly_once_by_a_pool_of_processes() {
    let a = addr("pool");
    let d = Distributor::bind(&a).unwrap();
    let _kids: Vec<_> = (0..3)
        .map(|i| util::spawn_role("worker", &[&a, &format!("w{i}"), "0"]))
        .collect();
    d.wait_for_workers(3, LONG).unwrap();
    let mut ids = HashMap::new();
    for i in 0..200u32 {
        ids.insert(d.submit(format!("{i}").as_bytes()).unwrap(), i);
    }
    let got = collect(&d, 200);
    for (id, r) in &got {
        let s = String::from_utf8(r.data.clone()).unwrap();
        let (_, n) = s.split_once(':').unwrap();
        assert_eq!(n, ids[id].to_string());
        assert_eq!(r.attempt, 1);
    }
    assert_eq!(d.outstanding(), 0);
    assert!(d.take_worker_errors().is_empty());
}

#[test]
fn a_slow_worker_gets_fewer_tasks() {
    let a = addr("balance");
    let d = Distributor::bind(&a).unwrap();
    let _fast = util::spawn_role("worker", &[&a, "fast", "0"]);
    let _slow = util::spawn_role("worker", &[&a, "slow", "40"]);
    d.wait_for_workers(2, LONG).unwrap();
    for i in 0..60u32 {
        d.submit(&i.to_be_bytes()).unwrap();
    }
    let got = collect(&d, 60);
    let slow = got
        .values()
        .filter(|r| r.data.starts_with(b"slow:"))
        .count();
    let fast = got
        .values()
        .filter(|r| r.data.starts_with(b"fast:"))
        .count();
    assert_eq!(slow + fast, 60);
    assert!(slow < fast, "slow {slow}, fast {fast}");
    // Distinct workers, reported by pid.
    let who: HashSet<_> = got.values().map(|r| r.worker.clone()).collect();
    assert!(who.iter().all(|w| w.contains("pid")), "{who:?}");
}

#[test]
fn tasks_of_a_killed_worker_complete_elsewhere() {
    let a = addr("killed");
    let d = Distributor::bind(&a).unwrap();
    let mut hoarder = util::spawn_role("hoarder", &[&a, "2"]);
    d.wait_for_workers(1, LONG).unwrap();
    for i in 0..5u32 {
        d.submit(&i.to_be_bytes()).unwrap();
    }
    assert!(util::wait_until(LONG, || d.in_flight() == 2));
    hoarder.kill();
    let _w = util::spawn_role("worker", &[&a, "w", "0"]);
    let got = collect(&d, 5);
    let retried: Vec<_> = got.values().filter(|r| r.attempt == 2).collect();
    assert_eq!(retried.len(), 2, "{got:?}");
    assert!(got.values().all(|r| r.data.starts_with(b"w:")));
    let errs = d.take_worker_errors();
    assert!(
        errs.iter().any(|e| matches!(e, Error::PeerGone { .. })),
        "{errs:?}"
    );
}

#[test]
fn no_hang_when_every_worker_dies() {
    let a = Endpoint::parse(&addr("orphan")).unwrap();
    let opts = DistributorOptions {
        worker_grace: Duration::from_millis(300),
        ..DistributorOptions::default()
    };
    let d = Distributor::bind_with(&a, opts).unwrap();
    let s = a.to_string();
    let mut h1 = util::spawn_role("hoarder", &[&s, "1"]);
    let mut h2 = util::spawn_role("hoarder", &[&s, "1"]);
    d.wait_for_workers(2, LONG).unwrap();
    for i in 0..3u32 {
        d.submit(&i.to_be_bytes()).unwrap();
    }
    assert!(util::wait_until(LONG, || d.in_flight() == 2));
    h1.kill();
    h2.kill();
    let t = Instant::now();
    let e = d.recv_result().unwrap_err();
    assert!(matches!(e, Error::NoWorkers { outstanding: 3 }), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(d.workers(), 0);
    // The tasks stayed queued: a late worker still gets them.
    let _w = util::spawn_role("worker", &[&s, "late", "0"]);
    d.wait_for_workers(1, LONG).unwrap();
    let got = collect(&d, 3);
    assert_eq!(got.len(), 3);
}

#[test]
fn a_result_timeout_with_nothing_there() {
    let d = Distributor::bind(&addr("timeout")).unwrap();
    assert!(matches!(d.try_recv_result(), Err(Error::WouldBlock)));
    let t = Instant::now();
    assert!(matches!(
        d.recv_result_timeout(Duration::from_millis(100)),
        Err(Error::Timeout)
    ));
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5));
}

#[test]
fn hostile_workers_are_dropped_and_their_tasks_redone() {
    let a = addr("hostile");
    let d = Distributor::bind(&a).unwrap();
    let ua = UnixAddr::parse(a.strip_prefix("unix:").unwrap()).unwrap();
    // Garbage instead of a hello.
    let mut raw = UnixStream::connect(&ua).unwrap();
    raw.send_frame(b"\xff\xffnot a hello").unwrap();
    assert!(matches!(raw.recv_frame_timeout(LONG), Ok(None) | Err(_)));
    // Absurd credits: refused.
    let mut raw = UnixStream::connect(&ua).unwrap();
    let mut hello = b"IPCXPP\x00\x01".to_vec();
    hello.extend_from_slice(&u32::MAX.to_be_bytes());
    raw.send_frame(&hello).unwrap();
    let f = raw.recv_frame_timeout(LONG).unwrap().unwrap();
    assert_eq!(f[0], 0x11);
    // A valid hello, then a result for a task it does not hold.
    let mut raw = UnixStream::connect(&ua).unwrap();
    let mut hello = b"IPCXPP\x00\x01".to_vec();
    hello.extend_from_slice(&1u32.to_be_bytes());
    raw.send_frame(&hello).unwrap();
    let w = raw.recv_frame_timeout(LONG).unwrap().unwrap();
    assert_eq!(w[0], 0x10);
    let id = d.submit(b"job").unwrap();
    let t = raw.recv_frame_timeout(LONG).unwrap().unwrap();
    assert_eq!(t[0], 0x01);
    let mut forged = vec![0x02];
    forged.extend_from_slice(&(id + 1000).to_be_bytes());
    raw.send_frame(&forged).unwrap();
    assert!(matches!(raw.recv_frame_timeout(LONG), Ok(None) | Err(_)));
    // The task it held is done by an honest worker.
    let _w = util::spawn_role("worker", &[&a, "honest", "0"]);
    let r = d.recv_result_timeout(LONG).unwrap();
    assert_eq!(
        (r.id, r.data.as_slice(), r.attempt),
        (id, &b"honest:job"[..], 2)
    );
    let errs = d.take_worker_errors();
    assert_eq!(
        errs.iter()
            .filter(|e| matches!(e, Error::Protocol { .. }))
            .count(),
        3,
        "{errs:?}"
    );
}

#[test]
fn a_hostile_distributor_is_a_named_error_for_the_worker() {
    let name = util::unique("fake");
    let ua = UnixAddr::parse(&format!("@{name}")).unwrap();
    let l = UnixListener::bind(&ua).unwrap();
    let fake = std::thread::spawn(move || {
        let (mut s, _) = l.accept_wait(ipcx::wait::Wait::timeout(LONG)).unwrap();
        let _hello = s.recv_frame_timeout(LONG).unwrap();
        s.send_frame(b"\x10\x00\x01\x00\x00").unwrap();
        s.send_frame(b"\x01short").unwrap();
        std::thread::sleep(Duration::from_millis(500));
    });
    let mut w = Worker::connect(&format!("unix:@{name}"), 1, LONG).unwrap();
    let e = w.recv_timeout(LONG).unwrap_err();
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
    fake.join().unwrap();
    let e = Worker::connect(&addr("nobody"), 1, LONG).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let e = Worker::connect(&addr("zero"), 0, LONG).unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
}

#[test]
fn over_tcp_with_several_credits() {
    let d = Distributor::bind("tcp:127.0.0.1:0").unwrap();
    let a = d.addr().to_string();
    let t = std::thread::spawn(move || {
        let mut w = Worker::connect(&a, 4, LONG).unwrap();
        w.run(|t| t.data.iter().rev().copied().collect()).unwrap();
    });
    d.wait_for_workers(1, LONG).unwrap();
    let mut want = HashMap::new();
    for i in 0..50u32 {
        want.insert(d.submit(format!("ab{i}").as_bytes()).unwrap(), i);
    }
    let got = collect(&d, 50);
    for (id, r) in got {
        let s: String = format!("ab{}", want[&id]).chars().rev().collect();
        assert_eq!(r.data, s.as_bytes());
    }
    drop(d);
    t.join().unwrap();
}
