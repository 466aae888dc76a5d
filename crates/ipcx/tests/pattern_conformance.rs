//! The pattern conformance suite: the same behaviours of each messaging pattern, run over every
//! transport that can carry it, between real processes over real kernel objects.
//!
//! The [`matrix!`] at the end is the table: one row per behaviour, one cell per transport. A
//! cell is a test (`<row>::<transport>`, for example `pubsub_fan_out::tcp`); a cell that cannot
//! run is an ignored test whose reason the test run prints:
//!
//! | pattern | mq | unix | tcp | shm | tls |
//! |---|---|---|---|---|---|
//! | mailbox (N:M, each message to one receiver) | yes | no: not a connection | no | yes | no |
//! | pub/sub (fan-out, topic prefixes, slow or dead subscribers) | no: no connections | yes | yes | yes (ring) | yes (feature `tls`) |
//! | push/pull (distribution, credits, redelivery) | no | yes | yes | yes (ring link) | yes (feature `tls`) |
//! | req/rep (request ids, deadlines, a server that goes away, stray and large replies) | no | yes | yes | yes (ring link) | yes (feature `tls`) |
//!
//! A `tls:` cell runs the same code as the others: only the options beside the address differ
//! (the fixed test certificates, the same in every process: [`conn`], [`pub_opts`],
//! [`dist_opts`], [`rep_opts`]).
//!
//! [`refused_transports`] checks that each pattern refuses the addresses of the transports it
//! does not take with a named error. Behaviour specific to one transport (message priorities
//! and queue lifetime of a POSIX queue, ring segment errors, hostile raw frames on a Unix
//! socket) is tested in `pattern_mailbox.rs`, `pattern_pubsub.rs` and `pattern_pushpull.rs`.
mod util;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipcx::channel::{Codec, ConnectionOptions, Endpoint};
use ipcx::pattern::Error;
use ipcx::pattern::mailbox::Mailbox;
use ipcx::pattern::pubsub::{Publisher, PublisherOptions, SlowPolicy, Subscriber};
use ipcx::pattern::pushpull::{Distributor, DistributorOptions, TaskResult, Worker};
use ipcx::pattern::reqrep::{
    Client, ConnectError, Connection, Hello, Request, Server, ServerOptions, Status,
};
use ipcx::ring;
use ipcx::wait::Wait;

const LONG: Duration = Duration::from_secs(20);
const SHORT: Duration = util::SHORT;

// ---------------------------------------------------------------------------------------------
// Transports and addresses

/// A transport of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    /// POSIX message queues, `mq:/NAME`.
    Mq,
    /// Abstract Unix stream sockets, `unix:@NAME`.
    Unix,
    /// TCP on the loopback, `tcp:127.0.0.1:PORT`.
    Tcp,
    /// Shared-memory rings, `shm:/NAME`.
    Shm,
    /// TLS on the loopback, `tls:127.0.0.1:PORT`.
    Tls,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Mq => "mq",
            Transport::Unix => "unix",
            Transport::Tcp => "tcp",
            Transport::Shm => "shm",
            Transport::Tls => "tls",
        }
    }

    /// A fresh address for the end that binds or creates, and a guard removing what it names
    /// when the test ends (even on failure). TCP binds port 0: the other end connects to the
    /// bound object's `addr()`.
    fn place(self, tag: &str) -> Place {
        match self {
            Transport::Mq => {
                let addr = format!("mq:{}", util::posix_name(tag));
                let a = addr.clone();
                Place::new(addr, move || {
                    let _ = Mailbox::remove(&a);
                })
            }
            Transport::Unix => Place::new(format!("unix:@{}", util::unique(tag)), || {}),
            Transport::Tcp => Place::new("tcp:127.0.0.1:0".into(), || {}),
            Transport::Tls => Place::new("tls:127.0.0.1:0".into(), || {}),
            Transport::Shm => {
                let name = util::posix_name(tag);
                let n = name.clone();
                Place::new(format!("shm:{name}"), move || {
                    let _ = ring::remove(&n);
                })
            }
        }
    }

    /// An address of this transport where nobody listens.
    fn nobody_there(self) -> String {
        match self {
            Transport::Tcp | Transport::Tls => {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let port = l.local_addr().unwrap().port();
                drop(l);
                format!("{}:127.0.0.1:{port}", self.name())
            }
            _ => self.place("nobody").addr,
        }
    }
}

/// An address and the guard that removes its object.
struct Place {
    addr: String,
    _cleanup: util::Cleanup<Box<dyn FnMut()>>,
}

impl Place {
    fn new(addr: String, cleanup: impl FnMut() + 'static) -> Place {
        Place {
            addr,
            _cleanup: util::Cleanup(Box::new(cleanup)),
        }
    }

    /// The ring name of a `shm:/NAME` address.
    fn ring_name(&self) -> &str {
        self.addr.strip_prefix("shm:").expect("a shm: address")
    }
}

/// Where a child process that binds tells its address (TCP ports are chosen at bind time).
struct Announce {
    dir: util::TempDir,
}

impl Announce {
    fn new() -> Announce {
        Announce {
            dir: util::TempDir::new("announce"),
        }
    }
    fn file(&self, tag: &str) -> String {
        self.dir.join(tag).to_str().unwrap().to_owned()
    }
    /// Waits until the child announced on `file` and returns the address.
    fn wait(&self, file: &str) -> String {
        assert!(util::wait_until(LONG, || Path::new(file).exists()));
        std::fs::read_to_string(file).unwrap()
    }
}

/// Writes `addr` to `file` in one step (the reader never sees half of it).
fn announce(file: &str, addr: &str) {
    let tmp = format!("{file}.tmp");
    std::fs::write(&tmp, addr).unwrap();
    std::fs::rename(tmp, file).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The options beside an address: for `tls:`, the fixed test certificates

/// What connecting to (or binding) `addr` needs besides it.
fn conn(addr: &str) -> ConnectionOptions {
    #[cfg(feature = "tls")]
    if addr.starts_with("tls:") {
        return ConnectionOptions::new().tls(util::rpc::tls_fixed());
    }
    let _ = addr;
    ConnectionOptions::new()
}

/// Publisher options for `addr`.
fn pub_opts(addr: &str) -> PublisherOptions {
    #[cfg(feature = "tls")]
    if addr.starts_with("tls:") {
        return PublisherOptions {
            tls: Some(util::rpc::tls_server()),
            ..PublisherOptions::default()
        };
    }
    let _ = addr;
    PublisherOptions::default()
}

/// Distributor options for `addr`.
fn dist_opts(addr: &str) -> DistributorOptions {
    #[cfg(feature = "tls")]
    if addr.starts_with("tls:") {
        return DistributorOptions {
            tls: Some(util::rpc::tls_server()),
            ..DistributorOptions::default()
        };
    }
    let _ = addr;
    DistributorOptions::default()
}

/// Request/reply server options for `addr`.
fn rep_opts(addr: &str) -> ServerOptions {
    #[allow(unused_mut)]
    let mut opts = ServerOptions::new(SERVICE, 1);
    #[cfg(feature = "tls")]
    if addr.starts_with("tls:") {
        opts.tls = Some(util::rpc::tls_server());
    }
    let _ = addr;
    opts
}

fn bind_pub(addr: &str) -> Result<Publisher, Error> {
    Publisher::bind_with(&Endpoint::parse(addr)?, pub_opts(addr))
}

fn bind_dist(addr: &str) -> Result<Distributor, Error> {
    Distributor::bind_with(&Endpoint::parse(addr)?, dist_opts(addr))
}

fn subscribe(addr: &str, topics: &[&[u8]], timeout: Duration) -> Result<Subscriber, Error> {
    Subscriber::connect_with(addr, topics, timeout, &conn(addr))
}

fn work_for(addr: &str, credits: u32, timeout: Duration) -> Result<Worker, Error> {
    Worker::connect_with(addr, credits, timeout, &conn(addr))
}

// ---------------------------------------------------------------------------------------------
// Child processes

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
            // addr prefix expected [slow]: `expected` messages on `prefix`, in order, none
            // missed, until "end".
            let mut sub = subscribe(&args[0], &[args[1].as_bytes(), b"end"], LONG).unwrap();
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
            let _sub = subscribe(&args[0], &[b""], LONG).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }),
        ("lagging_subscriber", |args| {
            // addr flag n: joins, waits for the flag file (the publisher is done), then reads.
            let mut sub = subscribe(&args[0], &[b""], LONG).unwrap();
            assert!(util::wait_until(LONG, || Path::new(&args[1]).exists()));
            let n: u64 = args[2].parse().unwrap();
            let (mut next, mut received, mut missed) = (0u64, 0u64, 0u64);
            loop {
                let d = sub.recv_timeout(LONG).unwrap();
                missed += d.missed;
                if d.topic == b"end" {
                    break;
                }
                let i = u64::from_be_bytes(d.data[..8].try_into().unwrap());
                assert_eq!(i, next + d.missed, "a gap not reported as missed");
                next = i + 1;
                received += 1;
            }
            assert_eq!(next, n);
            assert_eq!(received + missed, n);
            assert!(
                missed > 0,
                "a lagging subscriber this far behind must have missed some"
            );
            assert_eq!(sub.total_missed(), missed);
        }),
        ("counter", |args| {
            // bind announce tag n: waits for one subscriber, publishes tag-0 .. tag-(n-1) on
            // "n" (and a filtered "x" between them), then "end".
            let p = bind_pub(&args[0]).unwrap();
            announce(&args[1], &p.addr().to_string());
            p.wait_for_subscribers(1, LONG).unwrap();
            let n: usize = args[3].parse().unwrap();
            for i in 0..n {
                p.publish_timeout(b"n", format!("{}-{i}", args[2]).as_bytes(), LONG)
                    .unwrap();
                p.publish_timeout(b"x", b"filtered out", LONG).unwrap();
            }
            p.publish_timeout(b"end", args[2].as_bytes(), LONG).unwrap();
            // Dropping it lets the subscriber read the rest (the ring outlives the publisher;
            // a socket publisher flushes first), then tells it the publisher is gone.
        }),
        ("ticker", |args| {
            // bind announce: publishes 0, 1, 2... on "tick" every millisecond until killed.
            let p = bind_pub(&args[0]).unwrap();
            announce(&args[1], &p.addr().to_string());
            let mut i = 0u64;
            loop {
                p.publish(b"tick", &i.to_be_bytes()).unwrap();
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        }),
        ("worker", |args| {
            // addr name delay_ms: answers "<name>:<task>" after delay_ms; with credits 1,
            // never holds a second task while working on one.
            let mut w = connect_worker(&args[0], 1);
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
            // addr credits: takes tasks and never answers (until killed).
            let _w = connect_worker(&args[0], args[1].parse().unwrap());
            std::thread::sleep(Duration::from_secs(60));
        }),
        ("rep_server", |args| {
            // bind announce: answers "echo" with its payload reversed and holds "hang"
            // requests unanswered, until killed.
            let s = rep_server(&args[0]);
            announce(&args[1], &s.addr().to_string());
            let mut held = Vec::new();
            loop {
                let r = s.recv_timeout(LONG).unwrap();
                if r.method == "hang" {
                    held.push(r);
                } else {
                    let out: Vec<u8> = r.payload.iter().rev().copied().collect();
                    r.reply(Status::Ok, &out).unwrap();
                }
            }
        }),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Mailbox

fn mailbox_each_message_to_exactly_one_receiver(t: Transport) {
    let (jobs_p, results_p) = (t.place("jobs"), t.place("results"));
    let jobs = Mailbox::create(&jobs_p.addr).unwrap();
    let results = Mailbox::create(&results_p.addr).unwrap();
    assert_eq!(jobs.is_ring(), t == Transport::Shm);
    let mut receivers: Vec<_> = (0..3)
        .map(|_| util::spawn_role("receiver", &[&jobs_p.addr, &results_p.addr]))
        .collect();
    let mut senders: Vec<_> = ["a", "b"]
        .iter()
        .map(|tag| util::spawn_role("sender", &[&jobs_p.addr, tag, "200"]))
        .collect();
    let mut seen = HashSet::new();
    for _ in 0..400 {
        let r = String::from_utf8(results.recv_timeout(LONG).unwrap()).unwrap();
        let (_pid, item) = r.split_once(':').unwrap();
        assert!(seen.insert(item.to_owned()), "{item} delivered twice");
    }
    for tag in ["a", "b"] {
        for i in 0..200 {
            assert!(seen.contains(&format!("{tag}-{i}")), "{tag}-{i} lost");
        }
    }
    for s in &mut senders {
        s.expect_success();
    }
    for _ in 0..3 {
        jobs.send_timeout(b"stop", LONG).unwrap();
    }
    for r in &mut receivers {
        r.expect_success();
    }
    // Nothing more arrived: no duplicate came late.
    assert!(matches!(results.try_recv(), Err(Error::WouldBlock)));
}

fn mailbox_a_killed_receiver_loses_nothing(t: Transport) {
    let (jobs_p, results_p) = (t.place("kjobs"), t.place("kresults"));
    // Few slots: a dead receiver that kept a slot or a place would stall the senders.
    let jobs = Mailbox::create_with_capacity(&jobs_p.addr, 4, 64).unwrap();
    let results = Mailbox::create(&results_p.addr).unwrap();
    let mut victim = util::spawn_role("receiver", &[&jobs_p.addr, &results_p.addr, "3"]);
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
    let mut survivor = util::spawn_role("receiver", &[&jobs_p.addr, &results_p.addr]);
    std::thread::scope(|s| {
        // Far more than the 4 slots: every one must be freed by the survivor.
        s.spawn(|| {
            for i in 3..100 {
                jobs.send_timeout(format!("m-{i}").as_bytes(), LONG)
                    .unwrap();
            }
        });
        for _ in 3..100 {
            let r = String::from_utf8(results.recv_timeout(LONG).unwrap()).unwrap();
            let (_pid, item) = r.split_once(':').unwrap();
            assert!(seen.insert(item.to_owned()), "{item} delivered twice");
        }
    });
    assert_eq!(seen.len(), 100);
    jobs.send_timeout(b"stop", LONG).unwrap();
    survivor.expect_success();
}

fn mailbox_full_empty_and_timeouts(t: Transport) {
    let place = t.place("full");
    let mb = Mailbox::create_with_capacity(&place.addr, 2, 64).unwrap();
    assert_eq!(mb.max_message_len(), 64);
    assert!(matches!(mb.try_recv(), Err(Error::WouldBlock)));
    let r = util::waits_for(SHORT, || mb.recv_timeout(SHORT));
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    mb.try_send(b"1").unwrap();
    mb.try_send(b"2").unwrap();
    assert!(matches!(mb.try_send(b"3"), Err(Error::Full { .. })));
    let r = util::waits_for(SHORT, || mb.send_timeout(b"3", SHORT));
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    match t {
        // The ring does not count its messages.
        Transport::Shm => assert!(matches!(mb.len(), Err(Error::Unsupported { .. }))),
        _ => assert_eq!(mb.len().unwrap(), 2),
    }
    // Another handle (any process) sees the same queue.
    let other = Mailbox::open(&place.addr).unwrap();
    assert_eq!(other.recv_timeout(LONG).unwrap(), b"1");
    assert_eq!(mb.recv_timeout(LONG).unwrap(), b"2");
    let r = util::waits_for(SHORT, || mb.recv_timeout(SHORT));
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
}

/// Whether `e` is the transport's "no mailbox of that name".
fn mailbox_not_found(t: Transport, e: &Error) -> bool {
    match t {
        Transport::Mq => matches!(e, Error::Queue(ipcx::mq::OpenError::NotFound { .. })),
        _ => matches!(e, Error::NotFound { .. }),
    }
}

fn mailbox_oversize_and_missing(t: Transport) {
    let place = t.place("big");
    let mb = Mailbox::create_with_capacity(&place.addr, 2, 64).unwrap();
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
    let missing = t.nobody_there();
    let e = Mailbox::open(&missing).unwrap_err();
    assert!(mailbox_not_found(t, &e), "{e:?}");
}

fn mailbox_persist_and_remove(t: Transport) {
    let place = t.place("persist");
    let addr = &place.addr;
    // A persisted handle leaves it behind, messages included; remove takes it away.
    Mailbox::create(addr).unwrap().persist().send(b"x").unwrap();
    if t == Transport::Shm {
        assert!(ring::is_ring(place.ring_name()));
    }
    let again = Mailbox::open(addr).unwrap().persist();
    assert_eq!(again.try_recv().unwrap(), b"x");
    drop(again);
    Mailbox::remove(addr).unwrap();
    let e = Mailbox::open(addr).unwrap_err();
    assert!(mailbox_not_found(t, &e), "{e:?}");
    let e = Mailbox::remove(addr).unwrap_err();
    assert!(mailbox_not_found(t, &e), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// Publish/subscribe

/// A publisher that fills up fast: a queue of 4 messages per subscriber on sockets, a 4 KiB
/// ring on shared memory; and a payload length that fills it in a few messages.
fn small_publisher(t: Transport, place: &Place) -> (Publisher, usize) {
    match t {
        Transport::Shm => {
            let opts = ring::Options::new()
                .capacity(4096)
                .max_message(256)
                .max_subscribers(4);
            (Publisher::bind_ring(place.ring_name(), &opts).unwrap(), 100)
        }
        _ => {
            let opts = PublisherOptions {
                queue_len: 4,
                ..pub_opts(&place.addr)
            };
            let p = Publisher::bind_with(&place.addr.parse().unwrap(), opts).unwrap();
            (p, 4096)
        }
    }
}

/// `seq` followed by `len - 8` filler bytes.
fn numbered(seq: u64, len: usize) -> Vec<u8> {
    let mut m = seq.to_be_bytes().to_vec();
    m.resize(len.max(8), 7);
    m
}

/// Publishes numbered messages of `len` bytes to a subscriber that does not read until the
/// publisher's queue (and the socket buffers) or the ring are full and publishing times out,
/// sending nothing; then a try is `Full` and a wait times out on time. Returns how many went.
fn fill_until_blocked(p: &Publisher, len: usize) -> u64 {
    // Blocked means nothing moved for this long: longer than a busy machine may take to let
    // the subscriber's side (decrypting, over TLS) catch up with what is in flight.
    const STALLED: Duration = Duration::from_millis(500);
    let mut sent = 0u64;
    let t0 = Instant::now();
    loop {
        match p.publish_timeout(b"x", &numbered(sent, len), STALLED) {
            Ok(()) => sent += 1,
            Err(Error::Timeout) => break,
            Err(e) => panic!("{e:?}"),
        }
        assert!(t0.elapsed() < LONG, "never blocked");
    }
    assert!(sent > 0);
    assert!(matches!(p.try_publish(b"x", b"y"), Err(Error::Full { .. })));
    let e = util::waits_for(SHORT, || {
        p.publish_timeout(b"x", &numbered(sent, len), SHORT)
    })
    .unwrap_err();
    assert!(matches!(e, Error::Timeout), "{e:?}");
    sent
}

fn pubsub_fan_out_with_topic_prefixes(t: Transport) {
    let place = t.place("fan");
    let p = bind_pub(&place.addr).unwrap();
    let a = p.addr().to_string();
    if !place.addr.ends_with(":0") {
        assert_eq!(a, place.addr);
    }
    // Three subscribers of "a." see every message on it; "c." reaches nobody.
    let mut kids = vec![
        util::spawn_role("subscriber", &[&a, "a.", "400"]),
        util::spawn_role("subscriber", &[&a, "a.", "400"]),
        util::spawn_role("subscriber", &[&a, "a.", "400"]),
        util::spawn_role("subscriber", &[&a, "b.", "200"]),
    ];
    p.wait_for_subscribers(4, LONG).unwrap();
    let (mut na, mut nb) = (0, 0);
    for i in 0..600 {
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

fn pubsub_lossless_from_the_moment_it_joined(t: Transport) {
    let place = t.place("join");
    let p = Arc::new(bind_pub(&place.addr).unwrap());
    let a = p.addr().to_string();
    let counter = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
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
    let mut sub = subscribe(&a, &[b""], LONG).unwrap();
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

fn pubsub_a_stuck_subscriber_holds_the_publisher_back(t: Transport) {
    let place = t.place("stuck");
    let (p, len) = small_publisher(t, &place);
    let mut sub = subscribe(&p.addr().to_string(), &[b""], LONG).unwrap();
    p.wait_for_subscribers(1, LONG).unwrap();
    let sent = fill_until_blocked(&p, len);
    for i in 0..sent {
        let d = sub.recv_timeout(LONG).unwrap();
        assert_eq!(d.data[..8], i.to_be_bytes());
        assert_eq!(d.missed, 0);
    }
    assert!(matches!(sub.try_recv(), Err(Error::WouldBlock)));
    assert_eq!(sub.total_missed(), 0);
}

fn pubsub_a_killed_subscriber_releases_the_publisher(t: Transport) {
    let place = t.place("killsub");
    let (p, len) = small_publisher(t, &place);
    let a = p.addr().to_string();
    let mut idle = util::spawn_role("idle_subscriber", &[&a]);
    p.wait_for_subscribers(1, LONG).unwrap();
    fill_until_blocked(&p, len);
    idle.kill();
    // The dead subscriber is dropped (its ring place reclaimed): the publisher goes on.
    let t0 = Instant::now();
    for i in 0..2000u64 {
        p.publish_timeout(b"t", &numbered(i, len), LONG)
            .unwrap_or_else(|e| panic!("message {i}: {e:?}"));
    }
    assert!(t0.elapsed() < LONG);
    assert!(util::wait_until(LONG, || p.subscribers() == 0));
}

fn pubsub_a_slow_subscriber_loses_nothing(t: Transport) {
    let place = t.place("slow");
    // Small: the publisher must wait for the slow reader many times over.
    let (p, _) = small_publisher(t, &place);
    let a = p.addr().to_string();
    let mut slow = util::spawn_role("subscriber", &[&a, "n", "3000", "slow"]);
    p.wait_for_subscribers(1, LONG).unwrap();
    for i in 0..3000 {
        p.publish_timeout(b"n", format!("{i}").as_bytes(), LONG)
            .unwrap();
    }
    p.publish_timeout(b"end", b"", LONG).unwrap();
    slow.expect_success();
}

fn pubsub_drop_oldest_reports_what_was_missed(t: Transport) {
    let place = t.place("drop");
    let dir = util::TempDir::new("drop");
    let flag = dir.join("published");
    // On shm, DropOldest makes an overwrite ring of the default size.
    let mut opts = pub_opts(&place.addr);
    opts.queue_len = 4;
    opts.policy = SlowPolicy::DropOldest;
    let p = Publisher::bind_with(&place.addr.parse().unwrap(), opts).unwrap();
    let a = p.addr().to_string();
    // Far more than the default ring (or the queue and socket buffers) holds.
    let n = 5000u64;
    let mut lag = util::spawn_role(
        "lagging_subscriber",
        &[&a, flag.to_str().unwrap(), &n.to_string()],
    );
    p.wait_for_subscribers(1, LONG).unwrap();
    for i in 0..n {
        // Never waits, whatever the subscriber does.
        p.try_publish(b"n", &numbered(i, 4096)).unwrap();
    }
    p.try_publish(b"end", b"").unwrap();
    std::fs::write(&flag, b"").unwrap();
    lag.expect_success();
}

fn pubsub_a_killed_publisher_ends_the_subscription(t: Transport) {
    let place = t.place("killpub");
    let ann = Announce::new();
    let file = ann.file("ticker");
    let mut ticker = util::spawn_role("ticker", &[&place.addr, &file]);
    let a = ann.wait(&file);
    let mut sub = util::wait_for(LONG, || subscribe(&a, &[b"tick"], LONG).ok());
    let first = sub.recv_timeout(LONG).unwrap();
    let mut prev = u64::from_be_bytes(first.data.as_slice().try_into().unwrap());
    for _ in 0..5 {
        let d = sub.recv_timeout(LONG).unwrap();
        let i = u64::from_be_bytes(d.data.as_slice().try_into().unwrap());
        assert_eq!(i, prev + 1);
        prev = i;
    }
    ticker.kill();
    let t0 = Instant::now();
    let end = loop {
        match sub.recv_timeout(LONG) {
            Ok(_) => assert!(t0.elapsed() < LONG),
            Err(e) => break e,
        }
    };
    assert!(matches!(end, Error::PeerGone { .. }), "{end:?}");
    assert!(t0.elapsed() < Duration::from_secs(10));
    // Every later call says the same, at once.
    let t0 = Instant::now();
    assert!(sub.recv_timeout(LONG).unwrap_err().is_peer_gone());
    assert!(t0.elapsed() < Duration::from_secs(5));
}

fn pubsub_a_quiet_publisher_times_out(t: Transport) {
    let (place, place2) = (t.place("quiet"), t.place("quiet2"));
    let p = bind_pub(&place.addr).unwrap();
    let mut s = subscribe(&p.addr().to_string(), &[b""], LONG).unwrap();
    assert!(matches!(s.try_recv(), Err(Error::WouldBlock)));
    let r = util::waits_for(SHORT, || s.recv_timeout(SHORT));
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    // The same with two publishers, after reading from both.
    let p2 = bind_pub(&place2.addr).unwrap();
    s.connect_also(&p2.addr().to_string(), LONG).unwrap();
    p.publish(b"t1", b"one").unwrap();
    p2.publish(b"t2", b"two").unwrap();
    let mut got: Vec<_> = (0..2)
        .map(|_| {
            let d = s.recv_timeout(LONG).unwrap();
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
    assert!(matches!(s.try_recv(), Err(Error::WouldBlock)));
    let r = util::waits_for(SHORT, || s.recv_timeout(SHORT));
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
}

/// One subscriber reading publishers at `places` (three processes): each publisher's messages
/// arrive in order, tagged with its source index (the order it was connected in), filtered by
/// topic, and each ends with its "end".
fn one_subscriber_many_publishers(places: &[Place]) {
    let ann = Announce::new();
    let tags = ["a", "b", "c"];
    let mut kids = Vec::new();
    let mut addrs = Vec::new();
    for (place, tag) in places.iter().zip(tags) {
        let file = ann.file(tag);
        kids.push(util::spawn_role(
            "counter",
            &[&place.addr, &file, tag, "300"],
        ));
        addrs.push(ann.wait(&file));
    }
    let mut sub = util::wait_for(LONG, || subscribe(&addrs[0], &[b"n", b"end"], LONG).ok());
    for a in &addrs[1..] {
        assert!(util::wait_until(LONG, || sub.connect_also(a, LONG).is_ok()));
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
        let tag = tags[d.source];
        if d.topic == b"end" {
            assert_eq!(d.data, tag.as_bytes());
            assert_eq!(next[d.source], 300, "{tag} ended early");
            ended += 1;
            continue;
        }
        assert_eq!(d.topic, b"n", "a filtered topic arrived");
        let want = format!("{tag}-{}", next[d.source]);
        assert_eq!(d.data, want.as_bytes(), "order within one publisher");
        next[d.source] += 1;
    }
    drop(sub);
    for k in &mut kids {
        k.expect_success();
    }
}

fn pubsub_one_subscriber_many_publishers(t: Transport) {
    one_subscriber_many_publishers(&[t.place("m1"), t.place("m2"), t.place("m3")]);
}

/// A subscriber may mix transports: two rings and a Unix socket publisher.
#[test]
fn pubsub_one_subscriber_across_transports() {
    one_subscriber_many_publishers(&[
        Transport::Shm.place("nma"),
        Transport::Shm.place("nmb"),
        Transport::Unix.place("nmc"),
    ]);
}

fn pubsub_named_errors(t: Transport) {
    let e = subscribe(&t.nobody_there(), &[b""], SHORT).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let place = t.place("errs");
    let p = bind_pub(&place.addr).unwrap();
    let e = p.publish(&[b'x'; 2000], b"").unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// Push/pull

fn connect_worker(a: &str, credits: u32) -> Worker {
    util::wait_for(LONG, || work_for(a, credits, LONG).ok())
}

fn collect(d: &Distributor, n: usize) -> HashMap<u64, TaskResult> {
    let mut got = HashMap::new();
    while got.len() < n {
        let r = d.recv_result_timeout(LONG).unwrap();
        assert!(got.insert(r.id, r).is_none(), "a result came twice");
    }
    assert!(matches!(d.recv_result_timeout(SHORT), Err(Error::Timeout)));
    got
}

fn pushpull_every_task_answered_once_by_a_pool(t: Transport) {
    let place = t.place("pool");
    let d = bind_dist(&place.addr).unwrap();
    let a = d.addr().to_string();
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

fn pushpull_a_slow_worker_gets_fewer_tasks(t: Transport) {
    let place = t.place("balance");
    let d = bind_dist(&place.addr).unwrap();
    let a = d.addr().to_string();
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
    if t == Transport::Unix {
        // Distinct workers, reported by their kernel-verified pid.
        let who: HashSet<_> = got.values().map(|r| r.worker.clone()).collect();
        assert!(who.iter().all(|w| w.contains("pid")), "{who:?}");
    }
}

fn pushpull_tasks_of_a_killed_worker_complete_elsewhere(t: Transport) {
    let place = t.place("killed");
    let d = bind_dist(&place.addr).unwrap();
    let a = d.addr().to_string();
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

fn pushpull_no_hang_when_every_worker_dies(t: Transport) {
    let place = t.place("orphan");
    let opts = DistributorOptions {
        worker_grace: Duration::from_millis(300),
        ..dist_opts(&place.addr)
    };
    let d = Distributor::bind_with(&place.addr.parse().unwrap(), opts).unwrap();
    let a = d.addr().to_string();
    let mut h1 = util::spawn_role("hoarder", &[&a, "1"]);
    let mut h2 = util::spawn_role("hoarder", &[&a, "1"]);
    d.wait_for_workers(2, LONG).unwrap();
    for i in 0..3u32 {
        d.submit(&i.to_be_bytes()).unwrap();
    }
    assert!(util::wait_until(LONG, || d.in_flight() == 2));
    h1.kill();
    h2.kill();
    let t0 = Instant::now();
    let e = d.recv_result().unwrap_err();
    assert!(matches!(e, Error::NoWorkers { outstanding: 3 }), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(d.workers(), 0);
    // The tasks stayed queued: a late worker still gets them.
    let _w = util::spawn_role("worker", &[&a, "late", "0"]);
    d.wait_for_workers(1, LONG).unwrap();
    let got = collect(&d, 3);
    assert_eq!(got.len(), 3);
}

fn pushpull_a_result_timeout_with_nothing_there(t: Transport) {
    let place = t.place("timeout");
    let d = bind_dist(&place.addr).unwrap();
    assert!(matches!(d.try_recv_result(), Err(Error::WouldBlock)));
    let r = util::waits_for(SHORT, || d.recv_result_timeout(SHORT));
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
}

fn pushpull_several_credits_and_run(t: Transport) {
    let place = t.place("credits");
    let d = bind_dist(&place.addr).unwrap();
    let a = d.addr().to_string();
    let worker = std::thread::spawn(move || {
        let mut w = work_for(&a, 4, LONG).unwrap();
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
    // Closing the distributor ends the worker's run.
    drop(d);
    worker.join().unwrap();
}

fn pushpull_named_errors(t: Transport) {
    let e = work_for(&t.nobody_there(), 1, LONG).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let place = t.place("zero");
    let d = bind_dist(&place.addr).unwrap();
    let e = work_for(&d.addr().to_string(), 0, LONG).unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// Request/reply

const SERVICE: &str = "conformance";

/// Binds a queue-mode server at `addr`.
fn rep_server(addr: &str) -> Server {
    Server::bind(addr, rep_opts(addr)).unwrap()
}

/// Connects a client to the server at `addr`.
fn rep_client(addr: &str) -> Result<Client, ConnectError> {
    let hello = Hello::new(SERVICE, 1, Codec::Postcard);
    Client::connect_with(addr, &hello, LONG, &conn(addr))
}

fn reqrep_replies_reach_their_callers(t: Transport) {
    const THREADS: usize = 8;
    const ROUNDS: usize = 4;
    let place = t.place("ids");
    let server = rep_server(&place.addr);
    let a = server.addr().to_string();
    // Two connections, four callers on each: every round has eight requests outstanding at
    // once, and the server answers them in the reverse order of their arrival.
    let clients = [rep_client(&a).unwrap(), rep_client(&a).unwrap()];
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..ROUNDS {
                let mut batch: Vec<Request> = (0..THREADS)
                    .map(|_| server.recv_timeout(LONG).unwrap())
                    .collect();
                while let Some(r) = batch.pop() {
                    assert_eq!(r.method, "double");
                    assert!(r.deadline.is_some());
                    let out = [r.payload.clone(), r.payload.clone()].concat();
                    r.reply(Status::Ok, &out).unwrap();
                }
            }
        });
        for i in 0..THREADS {
            let c = &clients[i % 2];
            s.spawn(move || {
                for round in 0..ROUNDS {
                    let msg = format!("<{i}.{round}>");
                    let r = c.request("double", msg.as_bytes(), LONG).unwrap();
                    assert_eq!(r.status, Status::Ok);
                    assert_eq!(r.payload, format!("{msg}{msg}").as_bytes());
                }
            });
        }
    });
    assert!(matches!(server.try_recv(), Err(Error::WouldBlock)));
}

fn reqrep_deadlines(t: Transport) {
    let place = t.place("deadline");
    let server = rep_server(&place.addr);
    let c = rep_client(&server.addr().to_string()).unwrap();
    // Nobody answers: the request fails at its deadline.
    let e = util::waits_for(SHORT, || c.request("m", b"late", SHORT)).unwrap_err();
    assert!(matches!(e, Error::Timeout), "{e:?}");
    // The server saw the deadline pass while the request was queued, and skips it.
    let r = util::waits_for(SHORT, || server.recv_timeout(SHORT));
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    // A request in time is served, and sees its deadline ahead.
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = server.recv_timeout(LONG).unwrap();
            assert!(!r.expired());
            let left = r.deadline.unwrap() - Instant::now();
            assert!(left > Duration::from_secs(5) && left <= LONG, "{left:?}");
            r.reply(Status::Ok, b"in time").unwrap();
        });
        let r = c.request("m", b"x", LONG).unwrap();
        assert_eq!(
            (r.status, r.payload.as_slice()),
            (Status::Ok, &b"in time"[..])
        );
    });
}

fn reqrep_a_server_that_goes_away(t: Transport) {
    let place = t.place("gone");
    let ann = Announce::new();
    let file = ann.file("server");
    let mut server = util::spawn_role("rep_server", &[&place.addr, &file]);
    let a = ann.wait(&file);
    let c = util::wait_for(LONG, || rep_client(&a).ok());
    let r = c.request("echo", b"abc", LONG).unwrap();
    assert_eq!((r.status, r.payload.as_slice()), (Status::Ok, &b"cba"[..]));
    std::thread::scope(|s| {
        let pending = s.spawn(|| {
            let t0 = Instant::now();
            let e = c.request("hang", b"", LONG).unwrap_err();
            (e, t0.elapsed())
        });
        std::thread::sleep(SHORT);
        server.kill();
        // The pending call ends when the server dies, long before its deadline.
        let (e, took) = pending.join().unwrap();
        assert!(matches!(e, Error::PeerGone { .. }), "{e:?}");
        assert!(took < Duration::from_secs(10), "{took:?}");
    });
    assert!(util::wait_until(LONG, || c.is_dead()));
    let t0 = Instant::now();
    let e = c.request("echo", b"x", LONG).unwrap_err();
    assert!(matches!(e, Error::PeerGone { .. }), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Nobody serves there any more.
    let e = rep_client(&a).unwrap_err();
    assert!(
        matches!(e, ConnectError::Transport(Error::NotFound { .. })),
        "{e:?}"
    );
}

/// A server that answers a call twice, and answers ids nobody asked for: the client ignores
/// the stray replies, and each call still gets its own.
fn reqrep_stray_replies_are_ignored(t: Transport) {
    let place = t.place("stray");
    let listener = Endpoint::parse(&place.addr)
        .unwrap()
        .bind_with(&conn(&place.addr))
        .unwrap();
    let a = listener.local_addr().unwrap().to_string();
    // Connected inside the scope (the server thread answers the hello), dropped after it (the
    // last stray reply finds the client there).
    let mut client = None;
    std::thread::scope(|s| {
        s.spawn(|| {
            let opts = rep_opts(&place.addr);
            let conn = Connection::accept(&*listener, &opts, Wait::timeout(LONG)).unwrap();
            for _ in 0..3 {
                let (id, payload) = conn
                    .recv_with(Wait::timeout(LONG), |c| (c.id(), c.payload.to_vec()))
                    .unwrap();
                conn.reply(id + 1000, Status::Ok, b"nobody asked").unwrap();
                conn.reply(id, Status::Ok, &payload).unwrap();
                conn.reply(id, Status::AppError, b"again").unwrap();
            }
        });
        let c = client.insert(rep_client(&a).unwrap());
        for i in 0..3 {
            let msg = format!("call {i}");
            let r = c.request("echo", msg.as_bytes(), LONG).unwrap();
            assert_eq!(
                (r.status, r.payload.as_slice()),
                (Status::Ok, msg.as_bytes())
            );
        }
    });
}

/// Replies are not held to the server's request limit, and a reply larger than the
/// connection carries is answered with an error saying so, rather than leaving its caller
/// waiting.
fn reqrep_large_replies(t: Transport) {
    let place = t.place("large");
    let mut opts = rep_opts(&place.addr);
    opts.max_request_len = 4096;
    let server = Server::bind(&place.addr, opts).unwrap();
    let c = rep_client(&server.addr().to_string()).unwrap();
    let too_large = match t {
        Transport::Shm => ipcx::channel::transport::shm::MAX_FRAME,
        _ => ipcx::framing::DEFAULT_MAX_FRAME_LEN,
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            for len in [64 * 1024, too_large] {
                let r = server.recv_timeout(LONG).unwrap();
                r.reply(Status::Ok, &vec![7u8; len]).unwrap();
            }
        });
        let r = c.request("large", b"", LONG).unwrap();
        assert_eq!((r.status, r.payload.len()), (Status::Ok, 64 * 1024));
        let r = c.request("too large", b"", LONG).unwrap();
        let msg = String::from_utf8_lossy(&r.payload);
        assert_eq!(r.status, Status::AppError, "{msg}");
        assert!(msg.contains("larger than a client accepts"), "{msg}");
    });
    assert!(!c.is_dead());
}

// ---------------------------------------------------------------------------------------------
// Transports a pattern does not take

/// Each pattern refuses, with a named error, the addresses of transports it does not take.
#[test]
fn refused_transports() {
    for a in ["unix:@x", "tcp:127.0.0.1:1"] {
        let e = Mailbox::create(a).unwrap_err();
        assert!(
            matches!(e, Error::Queue(ipcx::mq::OpenError::InvalidName(_))),
            "{a}: {e:?}"
        );
    }
    let mq = format!("mq:{}", util::posix_name("refused"));
    let e = bind_pub(&mq).unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    let e = subscribe(&mq, &[b""], SHORT).unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    let e = bind_dist(&mq).unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    let e = work_for(&mq, 1, SHORT).unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    let e = Server::bind(&mq, ServerOptions::new(SERVICE, 1)).unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    let e = Client::connect(&mq, SERVICE, 1, SHORT).unwrap_err();
    assert!(
        matches!(e, ConnectError::Transport(Error::InvalidAddress { .. })),
        "{e:?}"
    );
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Mailbox>();
    check::<Publisher>();
    check::<Distributor>();
    check::<Server>();
    check::<Client>();
    fn check_send<T: Send>() {}
    check_send::<Subscriber>();
    check_send::<Worker>();
}

// ---------------------------------------------------------------------------------------------
// The matrix

/// One test per cell: `run` runs the row's behaviour over the transport; the other kinds are
/// ignored tests that say why the cell cannot run.
macro_rules! cell {
    ($row:ident, $t:ident, run) => {
        #[test]
        fn $t() {
            super::$row(transport!($t));
        }
    };
    ($row:ident, $t:ident, run_tls) => {
        #[test]
        #[cfg_attr(
            not(feature = "tls"),
            ignore = "TLS needs the tls feature (cargo test --features tls)"
        )]
        fn $t() {
            super::$row(transport!($t));
        }
    };
    ($row:ident, $t:ident, not_a_connection) => {
        #[test]
        #[ignore = "a mailbox is a named queue (mq:/NAME or shm:/NAME), not a connection: see refused_transports"]
        fn $t() {}
    };
    ($row:ident, $t:ident, no_connections) => {
        #[test]
        #[ignore = "a POSIX message queue has no connections: mq carries mailboxes only (see refused_transports)"]
        fn $t() {}
    };
}

macro_rules! transport {
    (mq) => {
        Transport::Mq
    };
    (unix) => {
        Transport::Unix
    };
    (tcp) => {
        Transport::Tcp
    };
    (shm) => {
        Transport::Shm
    };
    (tls) => {
        Transport::Tls
    };
}

/// The table: each row a behaviour (a function of the transport), each cell `run` or why not.
macro_rules! matrix {
    ($($row:ident { $($t:ident: $kind:ident),* $(,)? })*) => {
        $(
            mod $row {
                #[allow(unused_imports)]
                use super::Transport;
                $( cell!($row, $t, $kind); )*
            }
        )*
    };
}

/// The cells of a pattern that owns a named queue (mailbox).
macro_rules! queue_row {
    ($($row:ident)*) => {
        matrix! { $($row {
            mq: run, unix: not_a_connection, tcp: not_a_connection, shm: run,
            tls: not_a_connection,
        })* }
    };
}

/// The cells of a connection-oriented pattern (pub/sub, push/pull, req/rep): every
/// transport that carries connections, TLS included.
macro_rules! link_row {
    ($($row:ident)*) => {
        matrix! { $($row {
            mq: no_connections, unix: run, tcp: run, shm: run, tls: run_tls,
        })* }
    };
}

queue_row! {
    mailbox_each_message_to_exactly_one_receiver
    mailbox_a_killed_receiver_loses_nothing
    mailbox_full_empty_and_timeouts
    mailbox_oversize_and_missing
    mailbox_persist_and_remove
}

link_row! {
    pubsub_fan_out_with_topic_prefixes
    pubsub_lossless_from_the_moment_it_joined
    pubsub_a_stuck_subscriber_holds_the_publisher_back
    pubsub_a_killed_subscriber_releases_the_publisher
    pubsub_a_slow_subscriber_loses_nothing
    pubsub_drop_oldest_reports_what_was_missed
    pubsub_a_killed_publisher_ends_the_subscription
    pubsub_a_quiet_publisher_times_out
    pubsub_one_subscriber_many_publishers
    pubsub_named_errors
    pushpull_every_task_answered_once_by_a_pool
    pushpull_a_slow_worker_gets_fewer_tasks
    pushpull_tasks_of_a_killed_worker_complete_elsewhere
    pushpull_no_hang_when_every_worker_dies
    pushpull_a_result_timeout_with_nothing_there
    pushpull_several_credits_and_run
    pushpull_named_errors
    reqrep_replies_reach_their_callers
    reqrep_deadlines
    reqrep_a_server_that_goes_away
    reqrep_stray_replies_are_ignored
    reqrep_large_replies
}
