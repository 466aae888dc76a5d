//! Mailboxes and publish/subscribe over the shared-memory ring (`shm:/NAME`), between
//! processes: exactly-once delivery, killed peers, every subscriber seeing every message,
//! slow subscribers (lossless or overwrite with a missed count), timeouts and bad input.
mod util;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ipcx::channel::Endpoint;
use ipcx::pattern::Error;
use ipcx::pattern::mailbox::Mailbox;
use ipcx::pattern::pubsub::{Publisher, PublisherOptions, SlowPolicy, Subscriber};
use ipcx::ring;

const LONG: Duration = Duration::from_secs(20);
const SHORT: Duration = Duration::from_millis(100);

/// A unique ring name and a guard that removes it when the test ends, even on failure.
fn ring_name(tag: &str) -> (String, util::Cleanup<impl FnMut()>) {
    let name = util::posix_name(tag);
    let n = name.clone();
    (
        name,
        util::Cleanup(move || {
            let _ = ring::remove(&n);
        }),
    )
}

fn assert_timed(t: Instant) {
    let e = t.elapsed();
    assert!(e >= SHORT && e < Duration::from_secs(5), "{e:?}");
}

#[test]
fn child_role() {
    util::role_main(&[
        ("sender", |args| {
            // jobs tag n: sends tag-0 .. tag-(n-1).
            let jobs = Mailbox::open(&args[0]).unwrap();
            let n: usize = args[2].parse().unwrap();
            for i in 0..n {
                jobs.send_timeout(format!("{}-{i}", args[1]).as_bytes(), LONG)
                    .unwrap();
            }
        }),
        ("receiver", |args| {
            // jobs results [limit]: reports "pid:msg" for each message until "stop" (or
            // `limit` messages, then waits in a receive to be killed).
            let jobs = Mailbox::open(&args[0]).unwrap();
            let results = Mailbox::open(&args[1]).unwrap();
            let limit: usize = args.get(2).map_or(usize::MAX, |s| s.parse().unwrap());
            let mut got = 0;
            while got < limit {
                let m = jobs.recv_timeout(LONG).unwrap();
                if m == b"stop" {
                    return;
                }
                let mut r = format!("{}:", std::process::id()).into_bytes();
                r.extend_from_slice(&m);
                results.send_timeout(&r, LONG).unwrap();
                got += 1;
            }
            // Blocked in a receive when it is killed: nothing more is sent before that.
            let late = jobs.recv_timeout(Duration::from_secs(60));
            panic!("a message reached a receiver due to be killed: {late:?}");
        }),
        ("subscriber", |args| {
            // addr prefix expected: `expected` messages on `prefix`, in order, none missed.
            let mut sub =
                Subscriber::connect(&args[0], &[args[1].as_bytes(), b"end"], LONG).unwrap();
            let expected: usize = args[2].parse().unwrap();
            let slow = args.get(3).is_some_and(|s| s == "slow");
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
                if slow && got % 16 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            assert_eq!(got, expected);
            assert_eq!(sub.total_missed(), 0);
        }),
        ("idle_subscriber", |args| {
            let _sub = Subscriber::connect(&args[0], &[b""], LONG).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }),
        ("lagging_subscriber", |args| {
            // addr flag n: joins, waits for the flag file (the publisher is done), then reads.
            let mut sub = Subscriber::connect(&args[0], &[b""], LONG).unwrap();
            assert!(util::wait_until(LONG, || std::path::Path::new(&args[1]).exists()));
            let n: u64 = args[2].parse().unwrap();
            let (mut next, mut received, mut missed) = (0u64, 0u64, 0u64);
            loop {
                let d = sub.recv_timeout(LONG).unwrap();
                missed += d.missed;
                if d.topic == b"end" {
                    break;
                }
                let i = u64::from_be_bytes(d.data.as_slice().try_into().unwrap());
                assert_eq!(i, next + d.missed, "a gap not reported as missed");
                next = i + 1;
                received += 1;
            }
            assert_eq!(next, n);
            assert_eq!(received + missed, n);
            assert!(
                missed > 0,
                "an overwrite ring this small must have dropped some"
            );
            assert_eq!(sub.total_missed(), missed);
        }),
        ("counter", |args| {
            // addr tag n: waits for one subscriber, publishes tag-0 .. tag-(n-1), then end.
            let p = Publisher::bind(&args[0]).unwrap();
            p.wait_for_subscribers(1, LONG).unwrap();
            let n: usize = args[2].parse().unwrap();
            for i in 0..n {
                p.publish_timeout(b"n", format!("{}-{i}", args[1]).as_bytes(), LONG)
                    .unwrap();
            }
            p.publish_timeout(b"end", args[1].as_bytes(), LONG).unwrap();
            // Dropping it lets the subscriber read the rest (the ring outlives the publisher;
            // a socket publisher flushes first), then tells it the publisher is gone.
        }),
        ("ticker", |args| {
            let p = Publisher::bind(&args[0]).unwrap();
            let mut i = 0u64;
            loop {
                p.publish(b"tick", &i.to_be_bytes()).unwrap();
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        }),
    ]);
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Mailbox>();
    check::<Publisher>();
    fn check_send<T: Send>() {}
    check_send::<Subscriber>();
}

#[test]
fn mailbox_two_senders_two_receivers_each_message_exactly_once() {
    let (jobs_name, _g1) = ring_name("jobs");
    let (results_name, _g2) = ring_name("results");
    let jobs_addr = format!("shm:{jobs_name}");
    let results_addr = format!("shm:{results_name}");
    let jobs = Mailbox::create(&jobs_addr).unwrap();
    let results = Mailbox::create(&results_addr).unwrap();
    assert!(jobs.is_ring());
    let mut receivers: Vec<_> = (0..2)
        .map(|_| util::spawn_role("receiver", &[&jobs_addr, &results_addr]))
        .collect();
    let mut senders: Vec<_> = ["a", "b"]
        .iter()
        .map(|t| util::spawn_role("sender", &[&jobs_addr, t, "200"]))
        .collect();
    let mut seen = HashSet::new();
    for _ in 0..400 {
        let r = String::from_utf8(results.recv_timeout(LONG).unwrap()).unwrap();
        let (_pid, item) = r.split_once(':').unwrap();
        assert!(seen.insert(item.to_owned()), "{item} delivered twice");
    }
    for t in ["a", "b"] {
        for i in 0..200 {
            assert!(seen.contains(&format!("{t}-{i}")), "{t}-{i} lost");
        }
    }
    for s in &mut senders {
        s.expect_success();
    }
    for _ in 0..2 {
        jobs.send_timeout(b"stop", LONG).unwrap();
    }
    for r in &mut receivers {
        r.expect_success();
    }
    // Nothing more arrived: no duplicate came late.
    assert!(matches!(results.try_recv(), Err(Error::WouldBlock)));
}

#[test]
fn mailbox_receiver_killed_the_others_still_get_every_message() {
    let (jobs_name, _g1) = ring_name("kjobs");
    let (results_name, _g2) = ring_name("kresults");
    let jobs_addr = format!("shm:{jobs_name}");
    let results_addr = format!("shm:{results_name}");
    // Few slots: a dead receiver that kept a slot or a place would stall the senders.
    let jobs = Mailbox::create_with_capacity(&jobs_addr, 4, 64).unwrap();
    // Room for every result: the test reads them only after sending.
    let results = Mailbox::create_with_capacity(&results_addr, 128, 64).unwrap();
    let mut victim = util::spawn_role("receiver", &[&jobs_addr, &results_addr, "3"]);
    for i in 0..3 {
        jobs.send_timeout(format!("m-{i}").as_bytes(), LONG)
            .unwrap();
    }
    let mut seen = HashSet::new();
    for _ in 0..3 {
        let r = String::from_utf8(results.recv_timeout(LONG).unwrap()).unwrap();
        assert!(r.starts_with(&format!("{}:", victim.pid())));
        assert!(seen.insert(r.split_once(':').unwrap().1.to_owned()));
    }
    victim.kill();
    let mut survivor = util::spawn_role("receiver", &[&jobs_addr, &results_addr]);
    // Far more than the 4 slots: every one must be freed by the survivor.
    for i in 3..100 {
        jobs.send_timeout(format!("m-{i}").as_bytes(), LONG)
            .unwrap();
    }
    for _ in 3..100 {
        let r = String::from_utf8(results.recv_timeout(LONG).unwrap()).unwrap();
        let (_pid, item) = r.split_once(':').unwrap();
        assert!(seen.insert(item.to_owned()), "{item} delivered twice");
    }
    assert_eq!(seen.len(), 100);
    jobs.send_timeout(b"stop", LONG).unwrap();
    survivor.expect_success();
}

#[test]
fn mailbox_timeouts_full_and_empty() {
    let (name, _g) = ring_name("mbfull");
    let addr = format!("shm:{name}");
    let mb = Mailbox::create_with_capacity(&addr, 2, 64).unwrap();
    assert_eq!(mb.max_message_len(), 64);
    assert!(matches!(mb.try_recv(), Err(Error::WouldBlock)));
    let t = Instant::now();
    assert!(matches!(mb.recv_timeout(SHORT), Err(Error::Timeout)));
    assert_timed(t);
    mb.try_send(b"1").unwrap();
    mb.try_send(b"2").unwrap();
    assert!(matches!(mb.try_send(b"3"), Err(Error::Full { .. })));
    let t = Instant::now();
    assert!(matches!(mb.send_timeout(b"3", SHORT), Err(Error::Timeout)));
    assert_timed(t);
    // Another handle (any process) sees the same queue.
    let other = Mailbox::open(&addr).unwrap();
    assert_eq!(other.recv_timeout(LONG).unwrap(), b"1");
    assert_eq!(mb.recv_timeout(LONG).unwrap(), b"2");
}

#[test]
fn mailbox_bad_input_gives_named_errors() {
    let e = Mailbox::open("shm:no-slash").unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    let e = Mailbox::create("shm:/a/b").unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    let e = Mailbox::open(&format!("shm:{}", util::posix_name("missing"))).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");

    let (name, _g) = ring_name("mbbad");
    let addr = format!("shm:{name}");
    let mb = Mailbox::create_with_capacity(&addr, 2, 64).unwrap();
    let e = mb.send(&[0u8; 65]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooLarge {
                len: 65,
                max: 64,
                ..
            }
        ),
        "{e:?}"
    );
    let e = mb.send_wait(b"x", 5, ipcx::wait::Wait::NoWait).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    assert!(matches!(mb.len(), Err(Error::Unsupported { .. })));
    let e = Mailbox::with(&addr, ipcx::mq::MessageQueue::options()).unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    // A pub/sub ring is not a mailbox.
    let (pname, _g2) = ring_name("notmb");
    let _p = Publisher::bind(&format!("shm:{pname}")).unwrap();
    let e = Mailbox::open(&format!("shm:{pname}")).unwrap_err();
    assert!(matches!(e, Error::Ring(_)), "{e:?}");
}

#[test]
fn mailbox_lives_while_any_handle_is_open() {
    let (name, _g) = ring_name("mblife");
    let addr = format!("shm:{name}");
    let creator = Mailbox::create(&addr).unwrap();
    let opener = Mailbox::open(&addr).unwrap();
    creator.send(b"kept").unwrap();
    drop(creator);
    assert_eq!(opener.recv_timeout(LONG).unwrap(), b"kept");
    drop(opener);
    assert!(matches!(Mailbox::open(&addr), Err(Error::NotFound { .. })));
    // A persisted handle leaves it behind, messages included; remove takes it away.
    Mailbox::create(&addr)
        .unwrap()
        .persist()
        .send(b"x")
        .unwrap();
    assert!(ring::is_ring(&name));
    let again = Mailbox::open(&addr).unwrap().persist();
    assert_eq!(again.try_recv().unwrap(), b"x");
    drop(again);
    Mailbox::remove(&addr).unwrap();
    assert!(matches!(Mailbox::open(&addr), Err(Error::NotFound { .. })));
    assert!(matches!(
        Mailbox::remove(&addr),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn pubsub_two_subscribers_see_every_message_in_order() {
    let (name, _g) = ring_name("ps");
    let addr = format!("shm:{name}");
    let p = Publisher::bind(&addr).unwrap();
    assert_eq!(p.addr(), &Endpoint::parse(&format!("shm:{name}")).unwrap());
    let mut kids = vec![
        util::spawn_role("subscriber", &[&addr, "t.", "500"]),
        util::spawn_role("subscriber", &[&addr, "t.", "500"]),
    ];
    p.wait_for_subscribers(2, LONG).unwrap();
    for i in 0..500 {
        p.publish_timeout(b"t.x", format!("{i}").as_bytes(), LONG)
            .unwrap();
        // Filtered out by both.
        p.publish_timeout(b"other", b"-", LONG).unwrap();
    }
    p.publish_timeout(b"end", b"", LONG).unwrap();
    for k in &mut kids {
        k.expect_success();
    }
}

#[test]
fn pubsub_slow_subscriber_slows_the_publisher_and_loses_nothing() {
    let (name, _g) = ring_name("psslow");
    let addr = format!("shm:{name}");
    // A small ring: the publisher must wait for the slow reader many times over.
    let p = Publisher::bind_ring(
        &name,
        &ring::Options::new()
            .capacity(4096)
            .max_message(256)
            .max_subscribers(4),
    )
    .unwrap();
    let mut slow = util::spawn_role("subscriber", &[&addr, "n", "3000", "slow"]);
    p.wait_for_subscribers(1, LONG).unwrap();
    for i in 0..3000 {
        p.publish_timeout(b"n", format!("{i}").as_bytes(), LONG)
            .unwrap();
    }
    p.publish_timeout(b"end", b"", LONG).unwrap();
    slow.expect_success();
}

#[test]
fn pubsub_full_ring_times_out_until_the_stuck_subscriber_is_killed() {
    let (name, _g) = ring_name("psfull");
    let addr = format!("shm:{name}");
    let p =
        Publisher::bind_ring(&name, &ring::Options::new().capacity(4096).max_message(256)).unwrap();
    let mut idle = util::spawn_role("idle_subscriber", &[&addr]);
    p.wait_for_subscribers(1, LONG).unwrap();
    let mut sent = 0;
    loop {
        match p.try_publish(b"t", &[7u8; 100]) {
            Ok(()) => sent += 1,
            Err(Error::Full { .. }) => break,
            Err(e) => panic!("{e:?}"),
        }
        assert!(sent < 1000, "a 4 KiB ring never filled up");
    }
    assert!(sent > 0);
    let t = Instant::now();
    let e = p.publish_timeout(b"t", &[7u8; 100], SHORT).unwrap_err();
    assert!(matches!(e, Error::Timeout), "{e:?}");
    assert_timed(t);
    idle.kill();
    // The dead subscriber's place is reclaimed: the publisher goes on.
    for _ in 0..100 {
        p.publish_timeout(b"t", &[7u8; 100], LONG).unwrap();
    }
}

#[test]
fn pubsub_overwrite_reports_what_the_subscriber_missed() {
    let (name, _g) = ring_name("psover");
    let addr = format!("shm:{name}");
    let dir = util::TempDir::new("psover");
    let flag = dir.join("published");
    let opts = PublisherOptions {
        policy: SlowPolicy::DropOldest,
        ..Default::default()
    };
    // DropOldest through bind_with makes an overwrite ring (default size); a small one here.
    let p = Publisher::bind_ring(
        &name,
        &ring::Options::new()
            .capacity(4096)
            .max_message(256)
            .overwrite(opts.policy == SlowPolicy::DropOldest),
    )
    .unwrap();
    let n = 5000u64;
    let mut lag = util::spawn_role(
        "lagging_subscriber",
        &[&addr, flag.to_str().unwrap(), &n.to_string()],
    );
    p.wait_for_subscribers(1, LONG).unwrap();
    for i in 0..n {
        // Never waits, whatever the subscriber does.
        p.try_publish(b"n", &i.to_be_bytes()).unwrap();
    }
    p.try_publish(b"end", b"").unwrap();
    std::fs::write(&flag, b"").unwrap();
    lag.expect_success();
}

#[test]
fn pubsub_bind_with_drop_oldest_never_blocks() {
    let (name, _g) = ring_name("psdrop");
    let a = Endpoint::parse(&format!("shm:{name}")).unwrap();
    let opts = PublisherOptions {
        policy: SlowPolicy::DropOldest,
        ..Default::default()
    };
    let p = Publisher::bind_with(&a, opts).unwrap();
    let mut sub = Subscriber::connect(&a.to_string(), &[b""], LONG).unwrap();
    // Far more than the default ring holds, with a subscriber that does not read.
    let big = vec![1u8; 60 << 10];
    for _ in 0..100 {
        p.try_publish(b"x", &big).unwrap();
    }
    p.try_publish(b"last", b"").unwrap();
    let mut missed = 0;
    loop {
        let d = sub.recv_timeout(LONG).unwrap();
        missed += d.missed;
        if d.topic == b"last" {
            break;
        }
    }
    assert!(missed > 0);
    assert_eq!(sub.total_missed(), missed);
}

#[test]
fn pubsub_timeouts_and_a_killed_publisher() {
    let (name, _g) = ring_name("pskill");
    let addr = format!("shm:{name}");
    let mut ticker = util::spawn_role("ticker", &[&addr]);
    let mut sub = None;
    assert!(util::wait_until(LONG, || {
        sub = Subscriber::connect(&addr, &[b"tick"], LONG).ok();
        sub.is_some()
    }));
    let mut sub = sub.unwrap();
    let first = sub.recv_timeout(LONG).unwrap();
    let mut prev = u64::from_be_bytes(first.data.as_slice().try_into().unwrap());
    for _ in 0..5 {
        let d = sub.recv_timeout(LONG).unwrap();
        let i = u64::from_be_bytes(d.data.as_slice().try_into().unwrap());
        assert_eq!(i, prev + 1);
        prev = i;
    }
    ticker.kill();
    let t = Instant::now();
    let end = loop {
        match sub.recv_timeout(LONG) {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(matches!(end, Error::PeerGone { .. }), "{end:?}");
    assert!(t.elapsed() < Duration::from_secs(10));

    // A subscriber of a quiet publisher times out.
    let (quiet, _g2) = ring_name("psquiet");
    let qaddr = format!("shm:{quiet}");
    let _p = Publisher::bind(&qaddr).unwrap();
    let mut s = Subscriber::connect(&qaddr, &[b""], LONG).unwrap();
    assert!(matches!(s.try_recv(), Err(Error::WouldBlock)));
    let t = Instant::now();
    assert!(matches!(s.recv_timeout(SHORT), Err(Error::Timeout)));
    assert_timed(t);
}

#[test]
fn pubsub_bad_input_gives_named_errors() {
    let e = Publisher::bind("shm:no-slash").unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    let e = Subscriber::connect("shm:no-slash", &[b""], SHORT).unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    let missing = format!("shm:{}", util::posix_name("nopub"));
    let e = Subscriber::connect(&missing, &[b""], SHORT).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");

    let (name, _g) = ring_name("psbad");
    let addr = format!("shm:{name}");
    let p = Publisher::bind_ring(&name, &ring::Options::new().max_message(256)).unwrap();
    // One publisher per ring.
    let e = Publisher::bind(&addr).unwrap_err();
    assert!(
        matches!(e, Error::Ring(ring::Error::PublisherExists { .. })),
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
    let (mname, _g2) = ring_name("notps");
    let _mb = Mailbox::create(&format!("shm:{mname}")).unwrap();
    let e = Subscriber::connect(&format!("shm:{mname}"), &[b""], SHORT).unwrap_err();
    assert!(matches!(e, Error::Ring(_)), "{e:?}");
}

#[test]
fn pubsub_one_subscriber_two_ring_publishers_and_a_socket_one() {
    let (a, _ga) = ring_name("nma");
    let (b, _gb) = ring_name("nmb");
    let (ra, rb) = (format!("shm:{a}"), format!("shm:{b}"));
    let sock = format!("unix:@{}", util::unique("nmc"));
    let mut kids = vec![
        util::spawn_role("counter", &[&ra, "a", "300"]),
        util::spawn_role("counter", &[&rb, "b", "300"]),
        util::spawn_role("counter", &[&sock, "c", "300"]),
    ];
    let mut sub = None;
    assert!(util::wait_until(LONG, || {
        sub = Subscriber::connect(&ra, &[b""], LONG).ok();
        sub.is_some()
    }));
    let mut sub = sub.unwrap();
    for addr in [&rb, &sock] {
        assert!(util::wait_until(LONG, || sub
            .connect_also(addr, LONG)
            .is_ok()));
    }
    let mut next = [0usize; 3];
    let mut ended = 0;
    while ended < 3 {
        // A publisher that is done ends its stream with one PeerGone, whenever it exits.
        let d = match sub.recv_timeout(LONG) {
            Err(Error::PeerGone { .. }) => continue,
            r => r.unwrap(),
        };
        assert_eq!(d.missed, 0);
        let tag = ["a", "b", "c"][d.source];
        if d.topic == b"end" {
            assert_eq!(d.data, tag.as_bytes());
            assert_eq!(next[d.source], 300, "{tag} ended early");
            ended += 1;
            continue;
        }
        let want = format!("{tag}-{}", next[d.source]);
        assert_eq!(d.data, want.as_bytes(), "order within one publisher");
        next[d.source] += 1;
    }
    drop(sub);
    for k in &mut kids {
        k.expect_success();
    }
}
