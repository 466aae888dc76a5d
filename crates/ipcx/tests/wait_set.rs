//! `WaitSet` between real processes: one set over one source of each kind, each made ready by
//! another process, with exactly the right keys coming back; timers; try-wait on nothing;
//! timeouts; detaching; a peer that dies; level-triggered readiness.
//!
//! Runs without libtest (`harness = false`): the signal source blocks `SIGUSR1`, which must be
//! blocked in every thread before a child sends it.
mod util;

use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ipcx::channel::{Endpoint, Error as ChannelError, Message, MessageReceiver, Options};
use ipcx::pattern::pubsub::{Publisher, Subscriber};
use ipcx::pattern::pushpull::{Distributor, Worker};
use ipcx::pattern::reqrep::{Client, Server, ServerOptions, Status};
use ipcx::signal::{Signal, SignalReceiver};
use ipcx::sync::EventFd;
use ipcx::wait_set::{Key, WaitSet, WaitSetError};
use ipcx::{Wait, pattern};

const LONG: Duration = Duration::from_secs(20);

fn roles() {
    util::role_main(&[
        // ENDPOINT MSG...: sends each MSG on ENDPOINT.
        ("send", |args| {
            let ep = Endpoint::parse(&args[0]).unwrap();
            let mut tx = ep.sender(&util::fault::sender_options()).unwrap();
            for m in &args[1..] {
                tx.send(m.as_bytes()).unwrap();
            }
        }),
        // ENDPOINT MSG...: sends each MSG on ENDPOINT, then stays connected until killed.
        ("send_and_stay", |args| {
            let ep = Endpoint::parse(&args[0]).unwrap();
            let mut tx = ep.sender(&util::fault::sender_options()).unwrap();
            for m in &args[1..] {
                tx.send(m.as_bytes()).unwrap();
            }
            std::thread::sleep(Duration::from_secs(60));
        }),
        // Adds 1 to the eventfd that is its stdin.
        ("eventfd", |_| {
            let fd = std::io::stdin().as_fd_owned();
            EventFd::from_fd(fd).unwrap().write(1).unwrap();
        }),
        // PID: sends SIGUSR1 to PID.
        ("signal", |args| {
            ipcx::signal::send(args[0].parse().unwrap(), Signal::USR1).unwrap();
        }),
        // ADDR: binds a push/pull distributor and stays until killed.
        ("distributor", |args| {
            let _d = Distributor::bind(&args[0]).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }),
        // ADDR: binds a publisher, publishes "news" once a subscriber came, stays until
        // killed.
        ("publisher", |args| {
            let p = Publisher::bind(&args[0]).unwrap();
            util::wait_for(LONG, || (p.subscribers() > 0).then_some(()));
            p.publish(b"t", b"news").unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }),
        // ADDR: one request "ping" to the server at ADDR; checks the reply.
        ("request", |args| {
            let c = util::wait_for(LONG, || Client::connect(&args[0], "ws", 1, LONG).ok());
            let r = c.request("ping", b"x", LONG).unwrap();
            assert_eq!(r.payload, b"pong");
        }),
        // ADDR: connects to a listener and sends one frame.
        ("connect", |args| {
            let ep = Endpoint::parse(&args[0]).unwrap();
            let mut c = util::wait_for(LONG, || ep.connect(Wait::timeout(LONG)).ok());
            c.send_frame_wait(b"hi", Wait::Forever).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }),
    ]);
}

trait AsFdOwned {
    fn as_fd_owned(&self) -> OwnedFd;
}
impl AsFdOwned for std::io::Stdin {
    fn as_fd_owned(&self) -> OwnedFd {
        use std::os::fd::AsFd;
        self.as_fd().try_clone_to_owned().unwrap()
    }
}

/// Runs a child role to completion.
fn run(role: &str, args: &[&str]) {
    let status = util::role_command(role, args).status().unwrap();
    assert!(status.success(), "{role} {args:?}: {status}");
}

/// Waits and checks that exactly `expected` is ready.
fn expect_ready(set: &mut WaitSet, expected: &[Key]) {
    let ready = set.wait_timeout(LONG).unwrap();
    assert_eq!(ready.keys(), expected);
}

fn expect_nothing(set: &mut WaitSet) {
    assert!(
        matches!(set.try_wait(), Err(WaitSetError::WouldBlock)),
        "{:?}",
        set.try_wait()
    );
}

/// Receives from `rx`, whose key `k` the set reported: a wake-up may first be housekeeping (a
/// connection to accept before its bytes come, a writer that closed), after which the receive
/// says `WouldBlock` and the set is waited on again.
fn recv_ready(set: &mut WaitSet, k: Key, rx: &mut Box<dyn MessageReceiver>, a: &str) -> Message {
    loop {
        match rx.try_recv() {
            Ok(m) => return m,
            Err(ChannelError::WouldBlock) => expect_ready(set, &[k]),
            Err(e) => panic!("{a}: {e}"),
        }
    }
}

/// Once everything was received: at most a few housekeeping wake-ups (the sender's close),
/// each with nothing to receive, and then the set is quiet.
fn settle(set: &mut WaitSet, k: Key, rx: &mut Box<dyn MessageReceiver>, a: &str) {
    for _ in 0..3 {
        match set.try_wait() {
            Err(WaitSetError::WouldBlock) => return,
            Ok(r) => {
                assert_eq!(r.keys(), [k], "{a}");
                assert!(
                    matches!(rx.try_recv(), Err(ChannelError::WouldBlock)),
                    "{a}"
                );
            }
            Err(e) => panic!("{a}: {e}"),
        }
    }
    expect_nothing(set);
}

/// One set over a receiver of every pollable transport, an eventfd, a signalfd and a
/// listener; a child process makes each ready in turn; exactly its key comes back, and
/// consuming it makes the set quiet again.
fn one_of_each_kind(sig: &SignalReceiver) {
    let dir = util::TempDir::new("ws");
    let (mq, _mq_guard) = util::mq_name("ws");
    let (ring, _ring_guard) = util::ring_name("ws");
    let tcp_port = util::stable_tcp_port();
    let udp_port = util::stable_tcp_port();
    let addrs = [
        format!("mq:{mq}"),
        format!("fifo:{}", dir.join("fifo").display()),
        format!("unix:{}", dir.join("stream").display()),
        format!("unix-seqpacket:{}", dir.join("seq").display()),
        format!("unix-dgram:{}", dir.join("dgram").display()),
        format!("tcp:127.0.0.1:{tcp_port}"),
        format!("udp:127.0.0.1:{udp_port}"),
        format!("shm:{ring}"),
    ];
    let mut set = WaitSet::new().unwrap();
    let mut rxs: Vec<(Key, String, Box<dyn MessageReceiver>)> = Vec::new();
    for a in &addrs {
        let ep = Endpoint::parse(a).unwrap();
        let rx = ep.receiver(&util::fault::receiver_options(&ep)).unwrap();
        let k = set.attach(&rx).unwrap();
        rxs.push((k, a.clone(), rx));
    }
    let ev = EventFd::new(0).unwrap();
    let ev_key = set.attach(&ev).unwrap();
    let sig_key = set.attach(sig).unwrap();
    let lst_addr = format!("unix:{}", dir.join("listener").display());
    let listener = Endpoint::parse(&lst_addr).unwrap().bind().unwrap();
    let lst_key = set.attach(&listener).unwrap();
    expect_nothing(&mut set);

    for (k, a, rx) in &mut rxs {
        run("send", &[a, "ping"]);
        expect_ready(&mut set, &[*k]);
        let got = recv_ready(&mut set, *k, rx, a);
        assert_eq!(got.data, b"ping", "{a}");
        settle(&mut set, *k, rx, a);
    }

    let mut cmd = util::role_command("eventfd", &[]);
    cmd.stdin(Stdio::from(OwnedFd::from(ev.try_clone().unwrap())));
    assert!(cmd.status().unwrap().success());
    expect_ready(&mut set, &[ev_key]);
    assert_eq!(ev.try_read().unwrap(), 1);
    expect_nothing(&mut set);

    run("signal", &[&std::process::id().to_string()]);
    expect_ready(&mut set, &[sig_key]);
    assert_eq!(sig.try_recv().unwrap().signal, Signal::USR1);
    expect_nothing(&mut set);

    let mut child = util::spawn_role("connect", &[&lst_addr]);
    expect_ready(&mut set, &[lst_key]);
    let mut conn = listener.accept_wait(Wait::NoWait).unwrap();
    expect_nothing(&mut set);
    // The accepted connection is a source too.
    let conn_key = set.attach(&*conn).unwrap();
    expect_ready(&mut set, &[conn_key]);
    assert_eq!(conn.recv_frame_wait(Wait::NoWait).unwrap().unwrap(), b"hi");
    child.wait_timeout(LONG);
    // The child exited: its end is ready, and the receive says so.
    expect_ready(&mut set, &[conn_key]);
    assert!(matches!(
        conn.recv_frame_wait(Wait::NoWait),
        Ok(None) | Err(_)
    ));
    set.detach(conn_key).unwrap();
    expect_nothing(&mut set);

    // System V queues have no descriptor: refused with a clear error.
    let key = util::sysv_key();
    let ep = Endpoint::parse(&format!("sysv-mq:{key}")).unwrap();
    let rx = ep.receiver(&Options::new()).unwrap();
    let e = set.attach(&rx).unwrap_err();
    assert!(matches!(e, WaitSetError::NotPollable { .. }), "{e}");
    assert!(e.to_string().contains("System V"), "{e}");
    drop(rx);
    let _ = ipcx::sysv::msg::MessageQueue::open(ipcx::sysv::Key(key)).map(|q| q.remove());
}

/// Messages left in a receiver keep it ready, whether they wait in the kernel or were already
/// read into the receiver's own buffer (several frames arriving in one read).
fn level_triggered() {
    let dir = util::TempDir::new("wslevel");
    let (mq, _g) = util::mq_name("wslevel");
    let (ring, _rg) = util::ring_name("wslevel");
    for a in [
        format!("shm:{ring}"),
        format!("unix:{}", dir.join("s").display()),
        format!("fifo:{}", dir.join("f").display()),
        format!("mq:{mq}"),
    ] {
        let ep = Endpoint::parse(&a).unwrap();
        let mut rx = ep.receiver(&util::fault::receiver_options(&ep)).unwrap();
        let mut set = WaitSet::new().unwrap();
        let k = set.attach(&rx).unwrap();
        // The sender stays: no hang-up keeps the receiver ready, only its messages do.
        let _sender = util::spawn_role("send_and_stay", &[&a, "one", "two", "three"]);
        for want in ["one", "two", "three"] {
            // Still ready while messages are left (all three were sent before the first
            // receive; a stream receiver reads them in one go into its own buffer).
            expect_ready(&mut set, &[k]);
            let got = recv_ready(&mut set, k, &mut rx, &a);
            assert_eq!(got.data, want.as_bytes(), "{a}");
        }
        settle(&mut set, k, &mut rx, &a);
    }
}

/// Interval and deadline timers fire with the right keys; a deadline fires once.
fn timers() {
    let mut set = WaitSet::new().unwrap();
    let far = set
        .attach_deadline(Instant::now() + Duration::from_secs(3600))
        .unwrap();
    let deadline = set
        .attach_deadline(Instant::now() + Duration::from_millis(30))
        .unwrap();
    expect_ready(&mut set, &[deadline]);
    // A deadline fires once; the far one has not fired.
    expect_nothing(&mut set);
    set.detach(far).unwrap();
    let tick = set.attach_interval(Duration::from_millis(10)).unwrap();
    for _ in 0..3 {
        expect_ready(&mut set, &[tick]);
    }
    set.detach(tick).unwrap();
    // Nothing else will fire: the timeout ends the wait.
    assert!(matches!(
        set.wait_timeout(Duration::from_millis(50)),
        Err(WaitSetError::Timeout)
    ));
    assert!(matches!(
        set.wait_with(Wait::Until(Instant::now())),
        Err(WaitSetError::Timeout)
    ));
}

/// A detached source is never reported, even when ready; the other one is.
fn detach() {
    let (a, b) = (EventFd::new(0).unwrap(), EventFd::new(0).unwrap());
    let mut set = WaitSet::new().unwrap();
    let ka = set.attach(&a).unwrap();
    let kb = set.attach(&b).unwrap();
    set.detach(ka).unwrap();
    a.write(1).unwrap();
    b.write(1).unwrap();
    expect_ready(&mut set, &[kb]);
    assert!(matches!(set.detach(ka), Err(WaitSetError::UnknownKey(k)) if k == ka));
    set.detach(kb).unwrap();
    assert!(set.is_empty());
    assert!(matches!(set.wait(), Err(WaitSetError::Empty)));
}

/// A pull end whose distributor is killed: ready, then its error (not a hang).
fn peer_dies() {
    let addr = format!("unix:@{}", util::unique("wsdist"));
    let mut child = util::spawn_role("distributor", &[&addr]);
    let mut w = util::wait_for(LONG, || Worker::connect(&addr, 1, LONG).ok());
    let mut set = WaitSet::new().unwrap();
    let k = set.attach(&w).unwrap();
    expect_nothing(&mut set);
    child.child().kill().unwrap();
    expect_ready(&mut set, &[k]);
    assert!(matches!(w.try_recv(), Err(pattern::Error::PeerGone { .. })));
}

/// A subscriber: ready with a delivery; after its publisher is killed, ready with the error.
fn subscriber() {
    let (ring, _rg) = util::ring_name("wspub");
    for addr in [
        format!("unix:@{}", util::unique("wspub")),
        format!("shm:{ring}"),
    ] {
        subscriber_over(&addr);
    }
}

fn subscriber_over(addr: &str) {
    let addr = addr.to_owned();
    let mut child = util::spawn_role("publisher", &[&addr]);
    let mut sub = util::wait_for(LONG, || Subscriber::connect(&addr, &[b""], LONG).ok());
    let mut set = WaitSet::new().unwrap();
    let k = set.attach(&sub).unwrap();
    expect_ready(&mut set, &[k]);
    assert_eq!(sub.try_recv().unwrap().data, b"news");
    expect_nothing(&mut set);
    child.child().kill().unwrap();
    expect_ready(&mut set, &[k]);
    assert!(matches!(
        sub.try_recv(),
        Err(pattern::Error::PeerGone { .. })
    ));
}

/// A request/reply server in queue mode: ready while a request waits.
fn reqrep_server() {
    let addr = format!("unix:@{}", util::unique("wsrep"));
    let server = Server::bind(&addr, ServerOptions::new("ws", 1)).unwrap();
    let mut set = WaitSet::new().unwrap();
    let k = set.attach(&server).unwrap();
    expect_nothing(&mut set);
    let mut child = util::spawn_role("request", &[&addr]);
    expect_ready(&mut set, &[k]);
    let req = server.try_recv().unwrap();
    req.reply(Status::Ok, b"pong").unwrap();
    assert!(child.wait_timeout(LONG).success());
    expect_nothing(&mut set);
}

fn main() {
    roles();
    // Before any thread starts: every thread then blocks SIGUSR1.
    let sig = SignalReceiver::new(&[Signal::USR1]).unwrap();
    let tests: [(&str, &dyn Fn()); 7] = [
        ("one_of_each_kind", &|| one_of_each_kind(&sig)),
        ("level_triggered", &level_triggered),
        ("timers", &timers),
        ("detach", &detach),
        ("peer_dies", &peer_dies),
        ("subscriber", &subscriber),
        ("reqrep_server", &reqrep_server),
    ];
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    for (name, f) in tests {
        if filter.as_deref().is_some_and(|p| !name.contains(p)) {
            continue;
        }
        eprint!("test {name} ... ");
        f();
        eprintln!("ok");
    }
}
