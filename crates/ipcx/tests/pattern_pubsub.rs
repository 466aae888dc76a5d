//! Publish/subscribe between processes: fan-out, topics, joining losslessly, slow subscribers.
mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipcx::channel::Endpoint;
use ipcx::pattern::Error;
use ipcx::pattern::pubsub::{
    Publisher, PublisherOptions, SlowPolicy, Subscriber, parse_hello, parse_message,
};
use ipcx::socket::{UnixAddr, UnixListener, UnixStream};

const LONG: Duration = Duration::from_secs(20);

fn addr(tag: &str) -> String {
    format!("unix:@{}", util::unique(tag))
}

#[test]
fn child_role() {
    util::role_main(&[
        ("subscriber", |args| {
            // addr prefix expected: receives `expected` messages on `prefix`, in order.
            let mut sub =
                Subscriber::connect(&args[0], &[args[1].as_bytes(), b"end"], LONG).unwrap();
            let expected: usize = args[2].parse().unwrap();
            let mut got = 0;
            loop {
                let d = sub.recv_timeout(LONG).unwrap();
                if d.topic == b"end" {
                    break;
                }
                assert!(d.topic.starts_with(args[1].as_bytes()));
                assert_eq!(d.data, format!("{got}").as_bytes(), "order");
                assert_eq!(d.missed, 0);
                got += 1;
            }
            assert_eq!(got, expected);
        }),
        ("publisher", |args| {
            let p = Publisher::bind(&args[0]).unwrap();
            p.wait_for_subscribers(1, LONG).unwrap();
            let mut i = 0u64;
            loop {
                p.publish(b"tick", &i.to_be_bytes()).unwrap();
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        }),
        ("idle_subscriber", |args| {
            let _sub = Subscriber::connect(&args[0], &[b""], LONG).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }),
    ]);
}

#[test]
fn fan_out_to_processes_with_topic_prefixes() {
    let a = addr("fan");
    let p = Publisher::bind(&a).unwrap();
    let mut kids = vec![
        util::spawn_role("subscriber", &[&a, "a.", "100"]),
        util::spawn_role("subscriber", &[&a, "b.", "50"]),
    ];
    p.wait_for_subscribers(2, LONG).unwrap();
    let (mut na, mut nb) = (0, 0);
    for i in 0..150 {
        if i % 3 == 2 {
            p.publish_timeout(b"b.x", format!("{nb}").as_bytes(), LONG)
                .unwrap();
            nb += 1;
        } else {
            p.publish_timeout(b"a.y", format!("{na}").as_bytes(), LONG)
                .unwrap();
            na += 1;
        }
        p.publish_timeout(b"c.nobody", b"-", LONG).unwrap();
    }
    p.publish_timeout(b"end", b"", LONG).unwrap();
    for k in &mut kids {
        k.expect_success();
    }
}

#[test]
fn every_message_reaches_every_subscriber_in_order() {
    let a = addr("all");
    let p = Publisher::bind(&a).unwrap();
    let mut kids: Vec<_> = (0..3)
        .map(|_| util::spawn_role("subscriber", &[&a, "t", "300"]))
        .collect();
    p.wait_for_subscribers(3, LONG).unwrap();
    for i in 0..300 {
        p.publish_timeout(b"t", format!("{i}").as_bytes(), LONG)
            .unwrap();
    }
    p.publish_timeout(b"end", b"", LONG).unwrap();
    for k in &mut kids {
        k.expect_success();
    }
}

#[test]
fn lossless_from_the_moment_it_joined() {
    let a = addr("join");
    let p = Arc::new(Publisher::bind(&a).unwrap());
    let counter = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pub_thread = {
        let (p, counter, stop) = (p.clone(), counter.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let i = counter.load(Ordering::SeqCst);
                // Once the subscriber stops reading, publishing blocks: retry until told to stop.
                match p.publish_timeout(b"n", &i.to_be_bytes(), Duration::from_millis(50)) {
                    Ok(()) => counter.store(i + 1, Ordering::SeqCst),
                    Err(Error::Timeout) => {}
                    Err(e) => panic!("{e:?}"),
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let mut sub = Subscriber::connect(&a, &[b""], LONG).unwrap();
    // Message `joined` may have been in flight while the subscriber joined; every message
    // after it was published after `connect` returned and must arrive.
    let joined = counter.load(Ordering::SeqCst);
    let first = u64::from_be_bytes(sub.recv_timeout(LONG).unwrap().data.try_into().unwrap());
    assert!(first <= joined + 1, "first {first} after joined {joined}");
    for next in first + 1..first + 2001 {
        let d = sub.recv_timeout(LONG).unwrap();
        assert_eq!(u64::from_be_bytes(d.data.try_into().unwrap()), next);
    }
    stop.store(true, Ordering::SeqCst);
    drop(sub);
    pub_thread.join().unwrap();
}

#[test]
fn slow_subscriber_blocks_the_publisher_by_default() {
    let a = Endpoint::parse(&addr("slow")).unwrap();
    let opts = PublisherOptions {
        queue_len: 4,
        ..Default::default()
    };
    let p = Publisher::bind_with(&a, opts).unwrap();
    let mut sub = Subscriber::connect(&a.to_string(), &[b""], LONG).unwrap();
    // The subscriber does not read: queue + socket buffers + its buffer fill, then publish
    // times out, sending nothing.
    let payload = vec![0u8; 4096];
    let mut sent = 0u64;
    let t = Instant::now();
    loop {
        let mut msg = sent.to_be_bytes().to_vec();
        msg.extend_from_slice(&payload);
        match p.publish_timeout(b"x", &msg, Duration::from_millis(100)) {
            Ok(()) => sent += 1,
            Err(Error::Timeout) => break,
            Err(e) => panic!("{e:?}"),
        }
        assert!(t.elapsed() < LONG, "never blocked");
    }
    assert!(matches!(p.try_publish(b"x", b"y"), Err(Error::Full { .. })));
    for i in 0..sent {
        let d = sub.recv_timeout(LONG).unwrap();
        assert_eq!(d.data[..8], i.to_be_bytes());
        assert_eq!(d.missed, 0);
    }
    assert!(matches!(sub.try_recv(), Err(Error::WouldBlock)));
    assert_eq!(sub.total_missed(), 0);
}

#[test]
fn drop_oldest_tells_the_subscriber_what_it_missed() {
    let a = Endpoint::parse(&addr("drop")).unwrap();
    let opts = PublisherOptions {
        queue_len: 4,
        policy: SlowPolicy::DropOldest,
    };
    let p = Publisher::bind_with(&a, opts).unwrap();
    let mut sub = Subscriber::connect(&a.to_string(), &[b""], LONG).unwrap();
    let n = 5000u64;
    let payload = vec![0u8; 1024];
    for i in 0..n {
        let mut msg = i.to_be_bytes().to_vec();
        msg.extend_from_slice(&payload);
        p.try_publish(b"x", &msg).unwrap();
    }
    let mut received = 0u64;
    let mut missed = 0u64;
    let mut last = None;
    loop {
        let d = sub.recv_timeout(LONG).unwrap();
        let i = u64::from_be_bytes(d.data[..8].try_into().unwrap());
        let expect = last.map_or(0, |l| l + 1) + d.missed;
        assert_eq!(i, expect, "gap not accounted for");
        received += 1;
        missed += d.missed;
        last = Some(i);
        if i == n - 1 {
            break;
        }
    }
    assert_eq!(received + missed, n);
    assert!(missed > 0, "nothing was dropped");
    assert_eq!(sub.total_missed(), missed);
}

#[test]
fn killed_publisher_ends_the_subscription() {
    let a = addr("killpub");
    let mut child = util::spawn_role("publisher", &[&a]);
    let mut sub = None;
    assert!(util::wait_until(LONG, || {
        sub = Subscriber::connect(&a, &[b""], LONG).ok();
        sub.is_some()
    }));
    let mut sub = sub.unwrap();
    sub.recv_timeout(LONG).unwrap();
    child.kill();
    let t = Instant::now();
    let e = loop {
        match sub.recv_timeout(LONG) {
            Ok(_) => assert!(t.elapsed() < LONG),
            Err(e) => break e,
        }
    };
    assert!(e.is_peer_gone(), "{e:?}");
    // Every later call says the same, at once.
    assert!(sub.recv_timeout(LONG).unwrap_err().is_peer_gone());
}

#[test]
fn killed_subscriber_does_not_block_the_publisher() {
    let a = Endpoint::parse(&addr("killsub")).unwrap();
    let opts = PublisherOptions {
        queue_len: 4,
        ..Default::default()
    };
    let p = Publisher::bind_with(&a, opts).unwrap();
    let mut child = util::spawn_role("idle_subscriber", &[&a.to_string()]);
    p.wait_for_subscribers(1, LONG).unwrap();
    child.kill();
    let t = Instant::now();
    for i in 0..2000u32 {
        p.publish_timeout(b"x", &[0u8; 4096], LONG)
            .unwrap_or_else(|e| panic!("message {i}: {e:?}"));
    }
    assert!(t.elapsed() < LONG);
    assert!(util::wait_until(LONG, || p.subscribers() == 0));
}

#[test]
fn many_publishers_one_subscriber() {
    let (a1, a2) = (addr("m1"), addr("m2"));
    let p1 = Publisher::bind(&a1).unwrap();
    let p2 = Publisher::bind(&a2).unwrap();
    let mut sub = Subscriber::connect(&a1, &[b"t"], LONG).unwrap();
    sub.connect_also(&a2, LONG).unwrap();
    p1.publish(b"t1", b"one").unwrap();
    p2.publish(b"t2", b"two").unwrap();
    p2.publish(b"other", b"filtered out").unwrap();
    let mut got: Vec<_> = (0..2)
        .map(|_| {
            let d = sub.recv_timeout(LONG).unwrap();
            (d.source, d.topic, d.data)
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (0, b"t1".to_vec(), b"one".to_vec()),
            (1, b"t2".to_vec(), b"two".to_vec())
        ]
    );
    let t = Instant::now();
    assert!(matches!(
        sub.recv_timeout(Duration::from_millis(100)),
        Err(Error::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(100));
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
