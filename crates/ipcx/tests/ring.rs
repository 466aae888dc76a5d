//! The zero-copy shared-memory ring between real processes: zero-copy pub/sub, broadcast,
//! overwrite mode, a 10^6-message stress run, killed peers, hostile segments, cleanup.
mod util;

use std::time::{Duration, Instant};

use ipcx::ring::{self, Options, Publisher, RingError, Subscriber, WaitStrategy};

const STRESS: u64 = 1_000_000;

fn gone(name: &str) -> bool {
    !std::path::Path::new(&format!("/dev/shm{name}")).exists()
}

/// Removes the ring at the end of a test whatever happens.
fn cleanup(name: &str) -> util::Cleanup<impl FnMut()> {
    let n = name.to_owned();
    util::Cleanup(move || {
        let _ = ipcx::ring::remove(&n);
    })
}

/// Payload of message `i` of length derived from `i` (variable sizes up to 300 bytes).
fn payload(i: u64) -> Vec<u8> {
    let len = 8 + (i % 293) as usize;
    let mut v = vec![(i % 251) as u8; len];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v
}

fn check(i: u64, got: &[u8]) {
    assert_eq!(got, &payload(i)[..], "message {i}");
}

/// Opens a publisher, retrying while the subscriber is not there yet.
fn open_publisher(name: &str, opts: &Options) -> Publisher {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Publisher::open(name, opts) {
            Ok(p) => return p,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("publisher {name}: {e}"),
        }
    }
}

/// Waits until `n` subscribers are attached.
fn wait_subscribers(p: &Publisher, n: usize) {
    assert!(
        util::wait_until(Duration::from_secs(10), || p.subscribers() >= n),
        "subscribers did not attach"
    );
}

#[test]
fn child_role() {
    util::role_main(&[
        // args: name, count, subscribers to wait for, strategy
        ("publish", |args| {
            let strategy = match args[3].as_str() {
                "spin" => WaitStrategy::Spin,
                "block" => WaitStrategy::Block,
                _ => WaitStrategy::SpinThenSleep,
            };
            let mut p = open_publisher(&args[0], &Options::new().strategy(strategy));
            wait_subscribers(&p, args[2].parse().unwrap());
            let n: u64 = args[1].parse().unwrap();
            for i in 0..n {
                let msg = payload(i);
                if i % 2 == 0 {
                    // zero-copy: write in place
                    let mut s = p.loan(msg.len()).unwrap();
                    s.copy_from_slice(&msg);
                    s.send().unwrap();
                } else {
                    p.send_timeout(&msg, Duration::from_secs(20)).unwrap();
                }
            }
        }),
        // args: name, count: subscribes and checks every message (a second subscriber)
        ("subscribe", |args| {
            let mut s = Subscriber::open(&args[0], &Options::new()).unwrap();
            let n: u64 = args[1].parse().unwrap();
            for i in 0..n {
                let m = s.recv_timeout(Duration::from_secs(20)).unwrap();
                check(i, &m);
            }
        }),
        // args: name: publishes forever, slowly enough to be killed mid-way
        ("publish_forever", |args| {
            let mut p = open_publisher(&args[0], &Options::new());
            wait_subscribers(&p, 1);
            for i in 0.. {
                p.send(&payload(i)).unwrap();
                if i % 64 == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }),
        // args: name: subscribes and never reads (holds the ring full), then sleeps
        ("subscribe_and_stall", |args| {
            let _s = Subscriber::open(&args[0], &Options::new()).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }),
        // args: request ring, reply ring, count: sends back every request it receives
        ("echo", |args| {
            let opts = Options::new().capacity(HOT_RING).max_message(4096);
            let mut requests = Subscriber::open(&args[0], &opts).unwrap();
            let mut replies = open_publisher(&args[1], &opts);
            wait_subscribers(&replies, 1);
            for _ in 0..args[2].parse::<u64>().unwrap() {
                let m = requests.recv_timeout(Duration::from_secs(20)).unwrap();
                replies.send_timeout(&m, Duration::from_secs(20)).unwrap();
            }
        }),
        // args: name: creates the ring (mode 666) and leaves it behind
        ("create_666_and_keep", |args| {
            let _ = Subscriber::create_new(&args[0], &Options::new().mode(0o666))
                .unwrap()
                .persist();
        }),
        // args: name: subscribes (creating the ring) and receives until an error: exits 1 on
        // Corrupt, 2 on any other error
        ("subscribe_until_error", |args| {
            let mut s = Subscriber::create(&args[0], &Options::new()).unwrap();
            loop {
                match s.recv_timeout(Duration::from_secs(20)) {
                    Ok(_) => {}
                    Err(RingError::Corrupt { .. }) => std::process::exit(1),
                    Err(e) => {
                        eprintln!("{e}");
                        std::process::exit(2)
                    }
                }
            }
        }),
        // args: name: creates a ring and sleeps (killed by the test)
        ("create_and_sleep", |args| {
            let _s = Subscriber::create_new(&args[0], &Options::new()).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }),
    ]);
}

#[test]
fn zero_copy_between_processes_in_order() {
    let name = util::posix_name("ring-pp");
    let _c = cleanup(&name);
    let mut sub = Subscriber::create_new(&name, &Options::new()).unwrap();
    let mut child = util::spawn_role("publish", &[&name, "5000", "1", "default"]);
    for i in 0..5000 {
        let m = sub.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(m.missed(), 0);
        check(i, &m);
    }
    child.expect_success();
    drop(sub);
    assert!(gone(&name), "the last participant removes the ring");
}

/// A ring of eight hot windows, for the request/reply test.
const HOT_RING: usize = 8 * ring::HOT_WINDOW as usize;

/// Request/reply through two rings small enough to wrap hundreds of times: single round trips
/// (the rings stay empty, so small messages keep to the hot window, with a padding record at
/// each turn), bursts of 40 requests (the echo falls behind: the whole ring) and 2 KiB
/// messages (never in the window) in turn. Every reply comes back intact and in order.
#[test]
fn request_reply_through_the_hot_window_and_bursts() {
    let (req, rep) = (
        util::posix_name("ring-hot-q"),
        util::posix_name("ring-hot-r"),
    );
    let (_c1, _c2) = (cleanup(&req), cleanup(&rep));
    let opts = Options::new().capacity(HOT_RING).max_message(4096);
    let mut replies = Subscriber::create_new(&rep, &opts).unwrap();
    let mut requests = Publisher::create_new(&req, &opts).unwrap();
    const N: u64 = 40_000;
    let mut child = util::spawn_role("echo", &[&req, &rep, &N.to_string()]);
    wait_subscribers(&requests, 1);
    let msg = |i: u64| {
        let mut m = payload(i);
        if i % 1000 >= 900 {
            m.resize(2048, (i % 251) as u8);
        }
        m
    };
    let t = Duration::from_secs(20);
    let mut i = 0;
    while i < N {
        let burst = if i % 1000 < 200 { 40.min(N - i) } else { 1 };
        for k in i..i + burst {
            requests.send_timeout(&msg(k), t).unwrap();
        }
        for k in i..i + burst {
            let got = replies.recv_timeout(t).unwrap();
            assert_eq!(&*got, &msg(k)[..], "reply {k}");
        }
        i += burst;
    }
    child.expect_success();
}

#[test]
fn stress_million_messages_two_subscriber_processes() {
    let name = util::posix_name("ring-stress");
    let _c = cleanup(&name);
    // Small ring: the publisher keeps catching up with the subscribers (wrap, full, wake).
    let opts = Options::new().capacity(64 << 10).max_message(1024);
    let mut sub = Subscriber::create_new(&name, &opts).unwrap();
    let count = STRESS.to_string();
    let mut other = util::spawn_role("subscribe", &[&name, &count]);
    let mut publ = util::spawn_role("publish", &[&name, &count, "2", "default"]);
    let t0 = Instant::now();
    for i in 0..STRESS {
        let m = sub.recv_timeout(Duration::from_secs(20)).unwrap();
        check(i, &m);
    }
    publ.expect_success();
    other.expect_success();
    eprintln!("{STRESS} messages to 2 subscribers in {:?}", t0.elapsed());
}

#[test]
fn broadcast_with_spin_strategy() {
    let name = util::posix_name("ring-spin");
    let _c = cleanup(&name);
    let opts = Options::new()
        .capacity(4096)
        .max_message(512)
        .strategy(WaitStrategy::Spin);
    let mut sub = Subscriber::create_new(&name, &opts).unwrap();
    let mut other = util::spawn_role("subscribe", &[&name, "20000"]);
    let mut publ = util::spawn_role("publish", &[&name, "20000", "2", "spin"]);
    for i in 0..20000 {
        check(i, &sub.recv_timeout(Duration::from_secs(20)).unwrap());
    }
    publ.expect_success();
    other.expect_success();
}

#[test]
fn killed_publisher_gives_peer_gone_after_the_last_message() {
    let name = util::posix_name("ring-killpub");
    let _c = cleanup(&name);
    let mut sub = Subscriber::create_new(&name, &Options::new()).unwrap();
    let mut child = util::spawn_role("publish_forever", &[&name]);
    let mut next = 0u64;
    // Receive for a while, then kill -9 the publisher at a moment of the test's choosing.
    let kill_at = 1000 + (std::process::id() as u64 % 5000);
    loop {
        match sub.recv_timeout(Duration::from_secs(20)) {
            Ok(m) => {
                check(next, &m);
                next += 1;
                if next == kill_at {
                    child.kill();
                    break;
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
    // What was sent before the kill arrives intact and in order; then PeerGone, quickly.
    let t0 = Instant::now();
    loop {
        match sub.recv_timeout(Duration::from_secs(5)) {
            Ok(m) => {
                check(next, &m);
                next += 1;
            }
            Err(RingError::PeerGone { .. }) => break,
            Err(e) => panic!("expected PeerGone, got {e}"),
        }
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[test]
fn killed_subscriber_is_reclaimed_and_the_publisher_goes_on() {
    let name = util::posix_name("ring-killsub");
    let _c = cleanup(&name);
    let opts = Options::new().capacity(4096).max_message(256);
    let mut publ = Publisher::create_new(&name, &opts).unwrap();
    let mut staller = util::spawn_role("subscribe_and_stall", &[&name]);
    wait_subscribers(&publ, 1);
    // Fill the ring: the stalled subscriber holds everything.
    let mut sent = 0;
    loop {
        match publ.try_send(&[7u8; 200]) {
            Ok(()) => sent += 1,
            Err(RingError::Full) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(sent > 0);
    let t0 = Instant::now();
    assert!(matches!(
        publ.send_timeout(&[1u8; 200], Duration::from_millis(100)),
        Err(RingError::Timeout)
    ));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5));
    // kill -9 the subscriber while we block: the send completes within a bound.
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        staller.kill();
    });
    let t0 = Instant::now();
    publ.send_timeout(&[2u8; 200], Duration::from_secs(5))
        .expect("the dead subscriber's place is reclaimed");
    assert!(t0.elapsed() < Duration::from_secs(2));
    killer.join().unwrap();
    assert_eq!(publ.subscribers(), 0);
}

#[test]
fn overwrite_mode_counts_missed_messages() {
    let name = util::posix_name("ring-ovw");
    let _c = cleanup(&name);
    let opts = Options::new()
        .capacity(1024)
        .max_message(64)
        .overwrite(true);
    let mut sub = Subscriber::create_new(&name, &opts).unwrap();
    let mut publ = Publisher::open(&name, &opts).unwrap();
    for i in 0u64..1000 {
        publ.try_send(&i.to_le_bytes()).unwrap(); // never blocks
    }
    let mut got = Vec::new();
    let mut missed = 0;
    while let Ok(m) = sub.try_recv() {
        missed += m.missed();
        got.push(u64::from_le_bytes(m[..8].try_into().unwrap()));
    }
    assert!(!got.is_empty() && got.len() < 1000);
    assert!(
        got.windows(2).all(|w| w[1] == w[0] + 1),
        "a contiguous tail"
    );
    assert_eq!(*got.last().unwrap(), 999);
    assert_eq!(missed + got.len() as u64, 1000);
}

#[test]
fn typed_values_in_place() {
    #[derive(
        zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::KnownLayout, zerocopy::Immutable,
    )]
    #[repr(C)]
    struct Point {
        x: u64,
        y: u64,
    }
    let name = util::posix_name("ring-typed");
    let _c = cleanup(&name);
    let mut sub = Subscriber::create_new(&name, &Options::new()).unwrap();
    let mut publ = Publisher::open(&name, &Options::new()).unwrap();
    let mut s = publ.loan(size_of::<Point>()).unwrap();
    *s.as_value_mut::<Point>().unwrap() = Point { x: 3, y: 4 };
    s.send().unwrap();
    publ.send_value(&Point { x: 5, y: 6 }).unwrap();
    let m = sub.recv().unwrap();
    let p = m.as_value::<Point>().unwrap();
    assert_eq!((p.x, p.y), (3, 4));
    drop(m);
    let p: Point = sub.recv_value().unwrap();
    assert_eq!((p.x, p.y), (5, 6));
}

#[test]
fn named_errors() {
    let name = util::posix_name("ring-err");
    let _c = cleanup(&name);
    assert!(matches!(
        Subscriber::open(&name, &Options::new()),
        Err(RingError::NotFound { .. })
    ));
    assert!(matches!(
        Subscriber::open("bad", &Options::new()),
        Err(RingError::InvalidName(_))
    ));
    assert!(matches!(
        ring::remove(&name),
        Err(RingError::NotFound { .. })
    ));
    let opts = Options::new().max_message(100).max_subscribers(1);
    let mut sub = Subscriber::create_new(&name, &opts).unwrap();
    assert!(matches!(
        Subscriber::create_new(&name, &opts),
        Err(RingError::AlreadyExists { .. })
    ));
    assert!(matches!(
        Subscriber::open(&name, &opts),
        Err(RingError::TooManySubscribers { max: 1, .. })
    ));
    let mut publ = Publisher::open(&name, &opts).unwrap();
    assert!(matches!(
        Publisher::open(&name, &opts),
        Err(RingError::PublisherExists { .. })
    ));
    assert!(matches!(
        publ.send(&[0u8; 101]),
        Err(RingError::TooLarge { len: 101, max: 100 })
    ));
    assert!(matches!(sub.try_recv(), Err(RingError::Empty)));
    let t0 = Instant::now();
    assert!(matches!(
        sub.recv_timeout(Duration::from_millis(100)),
        Err(RingError::Timeout)
    ));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5));
    // A loan dropped without send publishes nothing.
    {
        let _unsent = publ.loan(10).unwrap();
    }
    assert!(matches!(sub.try_recv(), Err(RingError::Empty)));
}

#[test]
fn garbage_and_foreign_segments_are_named_errors() {
    let name = util::posix_name("ring-garbage");
    let _c = cleanup(&name);
    let shm = ipcx::shm::Shm::create_new(&name, 8192).unwrap();
    let map = shm.map().unwrap();
    map.write_at(0, &[0xa5; 4096]).unwrap();
    assert!(matches!(
        Subscriber::open(&name, &Options::new()),
        Err(RingError::NotARing { .. })
    ));
    // The right magic, another version.
    map.write_at(0, b"IPCXRING").unwrap();
    map.write_at(8, &99u32.to_ne_bytes()).unwrap();
    map.write_at(44, &1u32.to_ne_bytes()).unwrap(); // the ready flag
    let expected = match Subscriber::open(&name, &Options::new()) {
        Err(RingError::VersionMismatch {
            found: 99,
            expected,
            ..
        }) => expected,
        other => panic!("{other:?}"),
    };
    // The right version, impossible parameters.
    map.write_at(8, &expected.to_ne_bytes()).unwrap();
    let e = Subscriber::open(&name, &Options::new()).unwrap_err();
    assert!(
        matches!(
            e,
            RingError::Corrupt { .. } | RingError::Incompatible { .. }
        ),
        "{e}"
    );
}

/// Offset of the writer's head word: header (128) + writer cursor (128) + start of Ctl.
const HEAD_OFFSET: usize = 256;

#[test]
fn scribbled_control_words_give_errors_never_crashes() {
    let name = util::posix_name("ring-scribble");
    let _c = cleanup(&name);
    let opts = Options::new().capacity(4096).max_message(256);
    let mut sub = Subscriber::create_new(&name, &opts).unwrap();
    let mut publ = Publisher::open(&name, &opts).unwrap();
    publ.send(b"before").unwrap();
    assert_eq!(&*sub.recv().unwrap(), b"before");
    let shm = ipcx::shm::Shm::open(&name).unwrap();
    let map = shm.map().unwrap();
    // A head far beyond the tail, a misaligned head, then a record header with a huge length.
    for garbage in [u64::MAX - 7, 1 << 40, 17] {
        map.write_at(HEAD_OFFSET, &garbage.to_ne_bytes()).unwrap();
        match sub.try_recv() {
            Err(RingError::Corrupt { .. }) => {}
            other => panic!("head {garbage:#x}: {:?}", other.map(|s| s.len())),
        }
    }
    // Restore a plausible head pointing at a record with a hostile length: record 1 starts
    // where "before" ended (16 + 6 rounded to 32).
    let data_off = map.len() - 4096;
    map.write_at(HEAD_OFFSET, &64u64.to_ne_bytes()).unwrap();
    map.write_at(data_off + 32, &(u32::MAX as u64 | (1 << 32)).to_ne_bytes())
        .unwrap();
    assert!(matches!(sub.try_recv(), Err(RingError::Corrupt { .. })));
    // Random bytes all over the control area and the data: errors or messages, never a crash.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = (x as usize) % (map.len() - 8);
        map.write_at(off & !7, &x.to_ne_bytes()).unwrap();
        let _ = sub.try_recv().map(|s| s.len());
        let _ = publ.try_send(b"x");
    }
}

#[test]
fn clean_removes_a_ring_whose_participants_died() {
    let name = util::posix_name("ring-stale");
    let _c = cleanup(&name);
    let mut child = util::spawn_role("create_and_sleep", &[&name]);
    assert!(util::wait_until(Duration::from_secs(10), || {
        ipcx::ring::participants(&name).is_ok_and(|p| !p.is_empty())
    }));
    let obj = format!("shm:{name}");
    let inv = ipcx::inventory::scan();
    let o = inv.objects.iter().find(|o| o.name == obj).expect("listed");
    assert_eq!(o.kind, "shm");
    assert!(
        o.participants
            .iter()
            .all(|p| p.alive && p.role == "subscriber")
    );
    let v = ipcx::inventory::judge(&inv, false);
    assert!(!v.iter().find(|v| v.name == obj).unwrap().stale);
    child.kill();
    let inv = ipcx::inventory::scan();
    let o = inv
        .objects
        .iter()
        .find(|o| o.name == obj)
        .expect("still there");
    assert!(o.participants.iter().all(|p| !p.alive));
    let v = ipcx::inventory::judge(&inv, false);
    let v = v.iter().find(|v| v.name == obj).unwrap();
    assert!(v.stale, "{}", v.reason);
    let parsed = ipcx::inventory::ObjectName::parse(&obj).unwrap();
    ipcx::inventory::remove(&parsed).unwrap();
    assert!(gone(&name));
}

/// A ring truncated under a subscriber process, while it waits and while it reads: the
/// subscriber gets `Corrupt` (it exits 1), never SIGBUS.
#[test]
fn a_ring_truncated_under_a_subscriber_is_corrupt_not_sigbus() {
    for streaming in [false, true] {
        let name = util::posix_name("ring-trunc");
        let _c = cleanup(&name);
        let _f = util::remove_shm_file(&name);
        let mut sub = util::spawn_role("subscribe_until_error", &[&name]);
        util::wait_for_shm_file(&name);
        let _publ = streaming.then(|| util::spawn_role("publish_forever", &[&name]));
        std::thread::sleep(Duration::from_millis(300));
        util::truncate_shm(&name);
        let status = sub.wait_timeout(Duration::from_secs(10));
        assert_eq!(status.code(), Some(1), "streaming {streaming}: {status}");
    }
}

/// A ring that `nobody` made (mode 666, kept after it left) is refused unless its uid is
/// trusted, and a subscriber that only opened it never removes it.
#[test]
fn another_users_ring_is_refused_and_never_removed() {
    if !util::is_root() {
        eprintln!("skipped: the hostile side runs as nobody, which needs root");
        return;
    }
    let name = util::posix_name("ring-foreign");
    let _c = cleanup(&name);
    util::spawn_role_as_nobody("create_666_and_keep", &[&name]).expect_success();
    match Subscriber::open(&name, &Options::new()) {
        Err(RingError::ForeignOwner(e)) => {
            assert_eq!(e.owner, util::NOBODY);
            assert!(e.to_string().contains("65534"), "{e}");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert!(matches!(
        Publisher::open(&name, &Options::new()),
        Err(RingError::ForeignOwner(_))
    ));
    assert!(matches!(
        Subscriber::create(&name, &Options::new()),
        Err(RingError::ForeignOwner(_))
    ));
    assert!(!gone(&name));
    let trust = ipcx::trust::Trust::own_user().allow_uid(util::NOBODY);
    let sub = Subscriber::open(&name, &Options::new().trust(trust)).unwrap();
    drop(sub);
    assert!(
        !gone(&name),
        "a subscriber that did not create the ring removed it"
    );
}

/// A creator and another participant that leave at the same moment never leave the name
/// behind: one of them always sees it is last and removes it. Both threads spin on one flag so
/// that their leaving overlaps as closely as the machine allows.
#[test]
fn creator_and_subscriber_leaving_together_leave_no_name_behind() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let opts = Options::new().capacity(64 * 1024);
    let rounds: u32 = std::env::var("IPCX_LEAVE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let name = format!("/{}", util::unique("leave"));
    let _c = cleanup(&name);
    let ready = AtomicU32::new(0);
    for round in 0..rounds {
        let p = Publisher::create(&name, &opts).unwrap();
        let s = Subscriber::open(&name, &opts).unwrap();
        ready.store(0, Ordering::SeqCst);
        std::thread::scope(|t| {
            t.spawn(|| {
                ready.fetch_add(1, Ordering::SeqCst);
                while ready.load(Ordering::SeqCst) < 2 {
                    std::hint::spin_loop();
                }
                drop(s);
            });
            ready.fetch_add(1, Ordering::SeqCst);
            while ready.load(Ordering::SeqCst) < 2 {
                std::hint::spin_loop();
            }
            drop(p);
        });
        assert!(gone(&name), "round {round}: {name} left behind");
    }
}
