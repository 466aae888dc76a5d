//! The ring's work queue between real processes (N producers, M consumers, each message to
//! one consumer; killed producers and consumers), async receive, and permissions.
mod util;

use std::time::{Duration, Instant};

use ipcx::ring::{Consumer, Options, Producer, RingError, Subscriber, WaitStrategy};

const LONG: Duration = Duration::from_secs(20);

/// Removes the queue at the end of a test whatever happens.
fn cleanup(name: &str) -> util::Cleanup<impl FnMut()> {
    let n = name.to_owned();
    util::Cleanup(move || {
        let _ = ipcx::ring::remove(&n);
    })
}

fn gone(name: &str) -> bool {
    !std::path::Path::new(&format!("/dev/shm{name}")).exists()
}

/// Message `seq` of producer `id`: `id: u32`, `seq: u64`, then filler (variable length).
fn payload(id: u32, seq: u64) -> Vec<u8> {
    let len = 12 + (seq % 181) as usize;
    let mut v = vec![(seq % 251) as u8; len];
    v[..4].copy_from_slice(&id.to_le_bytes());
    v[4..12].copy_from_slice(&seq.to_le_bytes());
    v
}

/// Checks a message and returns `(id, seq)`.
fn parse(m: &[u8]) -> (u32, u64) {
    assert!(m.len() >= 12, "short message");
    let id = u32::from_le_bytes(m[..4].try_into().unwrap());
    let seq = u64::from_le_bytes(m[4..12].try_into().unwrap());
    assert_eq!(m, &payload(id, seq)[..], "message {id}/{seq}");
    (id, seq)
}

/// Receives until every producer is gone, checking per-producer order; returns what came.
fn consume_all(c: &mut Consumer) -> Vec<(u32, u64)> {
    let mut got = Vec::new();
    let mut last: [Option<u64>; 2] = [None; 2];
    loop {
        match c.recv_timeout(LONG) {
            Ok(m) => {
                let (id, seq) = parse(&m);
                let l = &mut last[id as usize];
                assert!(
                    l.is_none_or(|l| seq > l),
                    "producer {id}: {seq} after {l:?}"
                );
                *l = Some(seq);
                got.push((id, seq));
            }
            Err(RingError::PeerGone { .. }) => return got,
            Err(e) => panic!("consumer: {e}"),
        }
    }
}

fn open_retry<T>(mut f: impl FnMut() -> Result<T, RingError>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match f() {
            Ok(t) => return t,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("open: {e}"),
        }
    }
}

fn marker(path: &str) {
    std::fs::write(path, b"x").unwrap();
}

#[test]
fn child_role() {
    util::role_main(&[
        // args: name, "work" or "sub": creates a work queue (as a consumer) or a ring (as a
        // subscriber) and waits with recv_async: exits 1 on Corrupt, 2 on anything else
        ("recv_async_until_error", |args| {
            #[cfg(feature = "tokio")]
            {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let r = rt.block_on(async {
                    if args[1] == "work" {
                        let mut c = Consumer::create(&args[0], &Options::new()).unwrap();
                        tokio::time::timeout(LONG, c.recv_async())
                            .await
                            .map(|r| r.map(|_| ()))
                    } else {
                        let mut s = Subscriber::create(&args[0], &Options::new()).unwrap();
                        tokio::time::timeout(LONG, s.recv_async())
                            .await
                            .map(|r| r.map(|_| ()))
                    }
                });
                let corrupt = matches!(r, Ok(Err(RingError::Corrupt { .. })));
                eprintln!("{r:?}");
                std::process::exit(if corrupt { 1 } else { 2 });
            }
            #[cfg(not(feature = "tokio"))]
            {
                let _ = args;
                std::process::exit(3);
            }
        }),
        // args: name: creates the queue as a consumer and receives until an error: exits 1 on
        // Corrupt, 2 on any other error
        ("consume_until_error", |args| {
            let mut c = Consumer::create(&args[0], &Options::new()).unwrap();
            loop {
                match c.recv_timeout(LONG) {
                    Ok(_) => {}
                    Err(RingError::Corrupt { .. }) => std::process::exit(1),
                    Err(e) => {
                        eprintln!("{e}");
                        std::process::exit(2)
                    }
                }
            }
        }),
        // args: name, id, count, producers, consumers: waits for them, then sends
        ("produce", |args| {
            let mut p = open_retry(|| Producer::open(&args[0], &Options::new()));
            let id: u32 = args[1].parse().unwrap();
            let n: u64 = args[2].parse().unwrap();
            let (np, nc): (usize, usize) = (args[3].parse().unwrap(), args[4].parse().unwrap());
            assert!(util::wait_until(Duration::from_secs(10), || {
                p.producers() >= np && p.consumers() >= nc
            }));
            for seq in 0..n {
                let m = payload(id, seq);
                if seq % 2 == 0 {
                    let mut s = p.loan(m.len()).unwrap();
                    s.copy_from_slice(&m);
                    s.send().unwrap();
                } else {
                    p.send_timeout(&m, LONG).unwrap();
                }
            }
        }),
        // args: name, out file: consumes until the producers are gone, writes what it got
        ("consume", |args| {
            let mut c = open_retry(|| Consumer::open(&args[0], &Options::new()));
            let got = consume_all(&mut c);
            let bytes: Vec<u8> = got
                .iter()
                .flat_map(|(id, seq)| (u64::from(*id) << 40 | seq).to_le_bytes())
                .collect();
            std::fs::write(&args[1], bytes).unwrap();
        }),
        // args: name: receives forever, a little slowly (killed mid-stream)
        ("consume_slowly", |args| {
            let mut c = open_retry(|| Consumer::open(&args[0], &Options::new()));
            loop {
                let m = c.recv().unwrap();
                parse(&m);
                std::thread::sleep(Duration::from_micros(50));
            }
        }),
        // args: name, marker: receives one message, holds it, says so, sleeps (killed)
        ("receive_and_hold", |args| {
            let mut c = Consumer::open(&args[0], &Options::new()).unwrap();
            let _m = c.recv_timeout(LONG).unwrap();
            marker(&args[1]);
            std::thread::sleep(Duration::from_secs(60));
        }),
        // args: name, marker: sends 3 messages, loans a slot, says so, sleeps (killed)
        ("send_and_loan", |args| {
            let mut p = Producer::open(&args[0], &Options::new()).unwrap();
            for seq in 0..3 {
                p.send(&payload(0, seq)).unwrap();
            }
            let _l = p.loan(16).unwrap();
            marker(&args[1]);
            std::thread::sleep(Duration::from_secs(60));
        }),
        // args: name, count: sends slowly enough that an async receiver sleeps in between
        ("produce_slowly", |args| {
            let mut p = open_retry(|| Producer::open(&args[0], &Options::new()));
            let n: u64 = args[1].parse().unwrap();
            for seq in 0..n {
                p.send(&payload(0, seq)).unwrap();
                if seq % 16 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }),
        // args: name, count: publishes on a publish/subscribe ring, slowly
        ("publish_slowly", |args| {
            let mut p = open_retry(|| ipcx::ring::Publisher::open(&args[0], &Options::new()));
            assert!(util::wait_until(Duration::from_secs(10), || p
                .subscribers()
                >= 1));
            let n: u64 = args[1].parse().unwrap();
            for seq in 0..n {
                p.send(&payload(0, seq)).unwrap();
                if seq % 16 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }),
        // args: pub/sub ring, work queue: both 0600 and owned by root; we are nobody
        ("open_denied", |args| {
            let r = Subscriber::open(&args[0], &Options::new());
            assert!(
                matches!(r, Err(RingError::PermissionDenied { .. })),
                "subscriber: {r:?}"
            );
            let r = Consumer::open(&args[1], &Options::new());
            assert!(
                matches!(r, Err(RingError::PermissionDenied { .. })),
                "consumer: {r:?}"
            );
            let r = Producer::open(&args[1], &Options::new());
            assert!(
                matches!(r, Err(RingError::PermissionDenied { .. })),
                "producer: {r:?}"
            );
        }),
    ]);
}

#[test]
fn two_producers_two_consumers_each_message_exactly_once() {
    const N: u64 = 100_000;
    let name = util::posix_name("ring-work");
    let _c = cleanup(&name);
    let dir = util::TempDir::new("ring-work");
    let out = dir.join("consumer-b");
    let out = out.to_str().unwrap();
    // A small pool: producers keep waiting for free slots, consumers for messages.
    let opts = Options::new().slots(16).max_message(256);
    let mut a = Consumer::create_new(&name, &opts).unwrap();
    let mut b = util::spawn_role("consume", &[&name, out]);
    let n = N.to_string();
    let mut p0 = util::spawn_role("produce", &[&name, "0", &n, "2", "2"]);
    let mut p1 = util::spawn_role("produce", &[&name, "1", &n, "2", "2"]);
    let mine = consume_all(&mut a);
    p0.expect_success();
    p1.expect_success();
    b.expect_success();
    let theirs: Vec<(u32, u64)> = std::fs::read(out)
        .unwrap()
        .chunks(8)
        .map(|c| {
            let v = u64::from_le_bytes(c.try_into().unwrap());
            ((v >> 40) as u32, v & ((1 << 40) - 1))
        })
        .collect();
    eprintln!("consumer a: {}, consumer b: {}", mine.len(), theirs.len());
    let mut all: Vec<(u32, u64)> = mine.into_iter().chain(theirs).collect();
    assert_eq!(
        all.len() as u64,
        2 * N,
        "every message received exactly once"
    );
    all.sort_unstable();
    let expected: Vec<(u32, u64)> = (0..2).flat_map(|id| (0..N).map(move |s| (id, s))).collect();
    assert!(all == expected, "each message exactly once");
    drop(a);
    assert!(gone(&name), "the last participant removes the queue");
}

#[test]
fn consumer_killed_mid_stream_the_others_carry_on() {
    const N: u64 = 50_000;
    let name = util::posix_name("ring-work-kms");
    let _c = cleanup(&name);
    let opts = Options::new().slots(8).max_message(256);
    let mut me = Consumer::create_new(&name, &opts).unwrap();
    let mut other = util::spawn_role("consume_slowly", &[&name]);
    let mut producer = util::spawn_role("produce", &[&name, "0", &N.to_string(), "1", "2"]);
    let mut got: Vec<u64> = Vec::new();
    loop {
        match me.recv_timeout(LONG) {
            Ok(m) => {
                let (id, seq) = parse(&m);
                assert_eq!(id, 0);
                got.push(seq);
                if got.len() < 5000 {
                    // As slow as the other consumer: it gets its share until the kill.
                    std::thread::sleep(Duration::from_micros(50));
                } else if got.len() == 5000 {
                    other.kill();
                }
            }
            Err(RingError::PeerGone { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    producer.expect_success();
    // After the kill, everything goes to us: the last message arrives; nothing twice; in
    // order except (at most) the one message the dead consumer held, delivered again.
    assert_eq!(got.iter().max(), Some(&(N - 1)));
    let mut sorted = got.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), got.len(), "a message arrived twice");
    let out_of_order = got.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(out_of_order <= 1, "{out_of_order} messages out of order");
    eprintln!("{} of {N} messages here", got.len());
}

#[test]
fn killed_consumer_message_is_redelivered_and_its_slot_reclaimed() {
    let name = util::posix_name("ring-work-kc");
    let _c = cleanup(&name);
    let dir = util::TempDir::new("ring-work-kc");
    let held = dir.join("held");
    let opts = Options::new().slots(4).max_message(64);
    let mut p = Producer::create_new(&name, &opts).unwrap();
    let mut me = Consumer::open(&name, &opts).unwrap();
    p.send(&payload(0, 0)).unwrap();
    let mut child = util::spawn_role("receive_and_hold", &[&name, held.to_str().unwrap()]);
    assert!(util::wait_until(LONG, || held.exists()));
    // The child holds message 0 (its slot is taken); the others carry on meanwhile.
    p.send(&payload(0, 1)).unwrap();
    assert_eq!(parse(&me.recv_timeout(LONG).unwrap()), (0, 1));
    assert!(matches!(me.try_recv(), Err(RingError::Empty)));
    child.kill();
    // The dead consumer's message comes back (redelivery), within a bound.
    let t0 = Instant::now();
    assert_eq!(
        parse(&me.recv_timeout(Duration::from_secs(5)).unwrap()),
        (0, 0)
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    // Every slot is usable again.
    for seq in 0..4 {
        p.try_send(&payload(0, 10 + seq)).unwrap();
    }
    assert!(matches!(p.try_send(b"x"), Err(RingError::Full)));
    for seq in 0..4 {
        assert_eq!(parse(&me.recv_timeout(LONG).unwrap()), (0, 10 + seq));
    }
}

#[test]
fn killed_producer_loan_is_reclaimed_and_consumers_drain() {
    let name = util::posix_name("ring-work-kp");
    let _c = cleanup(&name);
    let dir = util::TempDir::new("ring-work-kp");
    let loaned = dir.join("loaned");
    let opts = Options::new().slots(4).max_message(64);
    let mut me = Consumer::create_new(&name, &opts).unwrap();
    let mut child = util::spawn_role("send_and_loan", &[&name, loaned.to_str().unwrap()]);
    assert!(util::wait_until(LONG, || loaned.exists()));
    child.kill();
    // What was sent before the kill arrives; then PeerGone, quickly.
    for seq in 0..3 {
        assert_eq!(parse(&me.recv_timeout(LONG).unwrap()), (0, seq));
    }
    let t0 = Instant::now();
    let r = me.recv_timeout(Duration::from_secs(5));
    assert!(matches!(r, Err(RingError::PeerGone { .. })), "{r:?}");
    drop(r);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    // A new producer: the consumer carries on, and the dead one's loaned slot is free again.
    let mut p = Producer::open(&name, &opts).unwrap();
    for seq in 0..4 {
        p.try_send(&payload(1, seq)).unwrap();
    }
    assert!(matches!(p.try_send(b"x"), Err(RingError::Full)));
    for seq in 0..4 {
        assert_eq!(parse(&me.recv_timeout(LONG).unwrap()), (1, seq));
    }
}

#[test]
fn named_errors_and_timeouts() {
    let name = util::posix_name("ring-work-err");
    let _c = cleanup(&name);
    assert!(matches!(
        Consumer::open(&name, &Options::new()),
        Err(RingError::NotFound { .. })
    ));
    assert!(matches!(
        Producer::open("no-slash", &Options::new()),
        Err(RingError::InvalidName(_))
    ));
    let opts = Options::new()
        .slots(2)
        .max_message(32)
        .max_subscribers(2)
        .strategy(WaitStrategy::Block);
    let mut c = Consumer::create_new(&name, &opts).unwrap();
    assert!(matches!(
        Consumer::create_new(&name, &opts),
        Err(RingError::AlreadyExists { .. })
    ));
    // A work queue is not a publish/subscribe ring.
    assert!(matches!(
        Subscriber::open(&name, &opts),
        Err(RingError::Incompatible { .. })
    ));
    assert!(matches!(c.try_recv(), Err(RingError::Empty)));
    let t0 = Instant::now();
    assert!(matches!(
        c.recv_timeout(Duration::from_millis(100)),
        Err(RingError::Timeout)
    ));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5));
    let mut p = Producer::open(&name, &opts).unwrap();
    assert!(matches!(
        Producer::open(&name, &opts),
        Err(RingError::TooManyParticipants { max: 2, .. })
    ));
    assert!(matches!(
        p.try_send(&[0; 33]),
        Err(RingError::TooLarge { len: 33, max: 32 })
    ));
    p.try_send(b"a").unwrap();
    // A loan dropped without sending gives its slot back.
    drop(p.try_loan(4).unwrap());
    p.try_send(b"b").unwrap();
    assert!(matches!(p.try_send(b"c"), Err(RingError::Full)));
    let t0 = Instant::now();
    assert!(matches!(
        p.send_timeout(b"c", Duration::from_millis(100)),
        Err(RingError::Timeout)
    ));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5));
    let mut s = p.try_loan(0);
    assert!(matches!(s, Err(RingError::Full)));
    drop(s);
    assert_eq!(&*c.try_recv().unwrap(), b"a");
    s = p.try_loan(8);
    let mut s = s.unwrap();
    s.copy_from_slice(b"in place");
    s.send_len(2).unwrap();
    assert_eq!(&*c.try_recv().unwrap(), b"b");
    assert_eq!(&*c.try_recv().unwrap(), b"in");
    drop(p);
    // Every producer left and nothing is queued: PeerGone, not a hang.
    assert!(matches!(c.recv(), Err(RingError::PeerGone { .. })));
}

#[cfg(feature = "tokio")]
#[test]
fn async_receive_across_processes() {
    const N: u64 = 2000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Work queue: an async consumer, a producer process.
    let name = util::posix_name("ring-work-async");
    let _c = cleanup(&name);
    let mut c = Consumer::create_new(&name, &Options::new().slots(8).max_message(256)).unwrap();
    let mut child = util::spawn_role("produce_slowly", &[&name, &N.to_string()]);
    rt.block_on(async {
        for seq in 0..N {
            let m = tokio::time::timeout(LONG, c.recv_async())
                .await
                .expect("no hang")
                .unwrap();
            assert_eq!(parse(&m), (0, seq));
        }
        let r = tokio::time::timeout(LONG, c.recv_async())
            .await
            .expect("no hang");
        assert!(matches!(r, Err(RingError::PeerGone { .. })), "{r:?}");
    });
    child.expect_success();
    // Publish/subscribe: an async subscriber, a publisher process.
    let name = util::posix_name("ring-sub-async");
    let _c = cleanup(&name);
    let mut s = Subscriber::create_new(&name, &Options::new()).unwrap();
    let mut child = util::spawn_role("publish_slowly", &[&name, &N.to_string()]);
    rt.block_on(async {
        for seq in 0..N {
            let m = tokio::time::timeout(LONG, s.recv_async())
                .await
                .expect("no hang")
                .unwrap();
            assert_eq!(parse(&m), (0, seq));
        }
        let r = tokio::time::timeout(LONG, s.recv_async())
            .await
            .expect("no hang");
        assert!(matches!(r, Err(RingError::PeerGone { .. })), "{r:?}");
    });
    child.expect_success();
}

#[test]
fn root_owned_0600_ring_is_denied_to_nobody() {
    if !util::is_root() {
        eprintln!("skipped: needs root (to create as root and open as nobody)");
        return;
    }
    let ring = util::posix_name("ring-perm");
    let work = util::posix_name("ring-work-perm");
    let _c1 = cleanup(&ring);
    let _c2 = cleanup(&work);
    let opts = Options::new().mode(0o600);
    let _s = Subscriber::create_new(&ring, &opts).unwrap();
    let _c = Consumer::create_new(&work, &opts).unwrap();
    util::spawn_role_as_nobody("open_denied", &[&ring, &work]).expect_success();
}

/// A work queue truncated under a consumer process, while it waits and while it takes
/// messages: the consumer gets `Corrupt` (it exits 1), never SIGBUS.
#[test]
fn a_queue_truncated_under_a_consumer_is_corrupt_not_sigbus() {
    for streaming in [false, true] {
        let name = util::posix_name("work-trunc");
        let _c = cleanup(&name);
        let _f = util::remove_shm_file(&name);
        let mut cons = util::spawn_role("consume_until_error", &[&name]);
        util::wait_for_shm_file(&name);
        let _prod =
            streaming.then(|| util::spawn_role("produce", &[&name, "0", "1000000000", "1", "1"]));
        std::thread::sleep(Duration::from_millis(300));
        util::truncate_shm(&name);
        let status = cons.wait_timeout(Duration::from_secs(10));
        assert_eq!(status.code(), Some(1), "streaming {streaming}: {status}");
    }
}

/// The same for async receivers: their helper thread notices the truncation and the receive
/// ends with `Corrupt` instead of waiting forever.
#[cfg(feature = "tokio")]
#[test]
fn a_queue_or_ring_truncated_under_an_async_receiver_is_corrupt() {
    for kind in ["work", "sub"] {
        let name = util::posix_name("async-trunc");
        let _c = cleanup(&name);
        let _f = util::remove_shm_file(&name);
        let mut child = util::spawn_role("recv_async_until_error", &[&name, kind]);
        util::wait_for_shm_file(&name);
        std::thread::sleep(Duration::from_millis(300));
        util::truncate_shm(&name);
        let status = child.wait_timeout(Duration::from_secs(10));
        assert_eq!(status.code(), Some(1), "{kind}: {status}");
    }
}
