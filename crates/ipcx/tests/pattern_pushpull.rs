//! What push/pull does differently over a Unix socket: hostile workers and a hostile
//! distributor speaking raw frames. The behaviours every transport shares (every task answered
//! once, credits, redelivery after a worker dies, no hang without workers) are in
//! `pattern_conformance.rs`.
mod util;

use std::time::Duration;

use ipcx::pattern::Error;
use ipcx::pattern::pushpull::{Distributor, Worker};
use ipcx::socket::{UnixAddr, UnixListener, UnixStream};

const LONG: Duration = Duration::from_secs(20);

fn addr(tag: &str) -> String {
    format!("unix:@{}", util::unique(tag))
}

#[test]
fn child_role() {
    util::role_main(&[("worker", |args| {
        // addr name: answers "<name>:<task>".
        let mut w = util::wait_for(LONG, || Worker::connect(&args[0], 1, LONG).ok());
        loop {
            let t = match w.recv_timeout(LONG) {
                Ok(t) => t,
                Err(Error::PeerGone { .. }) => return,
                Err(e) => panic!("{e:?}"),
            };
            let mut out = format!("{}:", args[1]).into_bytes();
            out.extend_from_slice(&t.data);
            if w.reply(t.id, &out).is_err() {
                return;
            }
        }
    })]);
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
    let _w = util::spawn_role("worker", &[&a, "honest"]);
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
