//! What publish/subscribe does differently over each transport: hostile peers on a Unix
//! socket, the wire format's parsers, a ring's named errors. The behaviours every transport
//! shares (fan-out, topics, slow, stuck and killed peers) are in `pattern_conformance.rs`.
mod util;

use std::time::Duration;

use ipcx::pattern::Error;
use ipcx::pattern::mailbox::Mailbox;
use ipcx::pattern::pubsub::{Publisher, Subscriber, parse_hello, parse_message};
use ipcx::ring;
use ipcx::socket::{UnixAddr, UnixListener, UnixStream};

const LONG: Duration = Duration::from_secs(20);
const SHORT: Duration = Duration::from_millis(100);

fn addr(tag: &str) -> String {
    format!("unix:@{}", util::unique(tag))
}

#[test]
fn hostile_peers() {
    // A client that is not a subscriber is dropped; real subscribers are unaffected.
    let a = addr("hostile");
    let p = Publisher::bind(&a).unwrap();
    let ua = UnixAddr::parse(a.strip_prefix("unix:").unwrap()).unwrap();
    let mut raw = UnixStream::connect(&ua).unwrap();
    raw.send_frame(b"GET / HTTP/1.0").unwrap();
    assert!(matches!(raw.recv_frame_timeout(LONG), Ok(None) | Err(_)));
    let mut sub = Subscriber::connect(&a, &[b""], LONG).unwrap();
    p.publish(b"t", b"ok").unwrap();
    assert_eq!(sub.recv_timeout(LONG).unwrap().data, b"ok");

    // A "publisher" that answers garbage is a protocol error.
    let fake = util::unique("fake");
    let l = UnixListener::bind(&UnixAddr::Abstract(fake.clone().into_bytes())).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept_timeout(LONG).unwrap();
        let _ = s.recv_frame_timeout(LONG);
        s.send_frame(b"nope").unwrap();
        std::thread::sleep(Duration::from_millis(100));
    });
    let e = Subscriber::connect(&format!("unix:@{fake}"), &[b""], LONG).unwrap_err();
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
    server.join().unwrap();

    // Nobody there.
    let e = Subscriber::connect(&addr("none"), &[b""], LONG).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let e = Subscriber::connect("http://x", &[b""], LONG).unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    let e = p.publish(&[b'x'; 2000], b"").unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
}

#[test]
fn frame_parsers_reject_malformed_input() {
    assert!(parse_hello(b"").is_err());
    assert!(parse_hello(b"IPCXSUB1").is_err());
    assert!(parse_hello(b"IPCXSUB1\x00\x01\x00\x05ab").is_err());
    assert!(parse_hello(b"IPCXSUB1\xff\xff").is_err());
    assert!(parse_hello(b"IPCXSUB1\x00\x00x").is_err());
    assert_eq!(
        parse_hello(b"IPCXSUB1\x00\x01\x00\x02ab").unwrap(),
        vec![b"ab".to_vec()]
    );
    assert!(parse_message(b"").is_err());
    assert!(parse_message(b"\x02\x00").is_err());
    assert!(parse_message(b"\x02\0\0\0\0\0\0\0\0\x00\x09ab").is_err());
    let (m, t, d) = parse_message(b"\x02\0\0\0\0\0\0\0\x03\x00\x01abc").unwrap();
    assert_eq!((m, t, d), (3, &b"a"[..], &b"bc"[..]));
    for len in 0..64 {
        let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 2) as u8).collect();
        let _ = parse_hello(&junk);
        let _ = parse_message(&junk);
    }
}

#[test]
fn ring_bad_input_gives_named_errors() {
    let e = Publisher::bind("shm:no-slash").unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    let e = Subscriber::connect("shm:no-slash", &[b""], SHORT).unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    let missing = format!("shm:{}", util::posix_name("nopub"));
    let e = Subscriber::connect(&missing, &[b""], SHORT).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");

    let (name, _g) = util::ring_name("psbad");
    let addr = format!("shm:{name}");
    let p = Publisher::bind_ring(&name, &ring::Options::new().max_message(256)).unwrap();
    // One publisher per ring.
    let e = Publisher::bind(&addr).unwrap_err();
    assert!(
        matches!(e, Error::Ring(ring::RingError::PublisherExists { .. })),
        "{e:?}"
    );
    let e = p.publish(b"t", &[0u8; 300]).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
    let e = p.publish(&[b'x'; 2000], b"").unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
    let mut sub = Subscriber::connect(&addr, &[b""], SHORT).unwrap();
    let e = sub
        .connect_also(&format!("unix:@{}", util::unique("nobody")), SHORT)
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let e = sub.connect_also(&missing, SHORT).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    // The subscriber still reads its ring (now through a thread).
    p.publish(b"t", b"still").unwrap();
    assert_eq!(sub.recv_timeout(LONG).unwrap().data, b"still");
    let long = vec![b'x'; 2000];
    let e = Subscriber::connect(&addr, &[&long], SHORT).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
    // A mailbox ring is not a pub/sub ring.
    let (mname, _g2) = util::ring_name("notps");
    let _mb = Mailbox::create(&format!("shm:{mname}")).unwrap();
    let e = Subscriber::connect(&format!("shm:{mname}"), &[b""], SHORT).unwrap_err();
    assert!(matches!(e, Error::Ring(_)), "{e:?}");
}
