//! POSIX message queues (`ipcx::mq`) and the `mq:/NAME` channel adapter, across processes.
mod util;

use std::time::{Duration, Instant};

use ipcx::channel::{Endpoint, Error as ChanError, Options};
use ipcx::mq::{MessageQueue, OpenError, RecvError, SendError};
use ipcx::trust::Trust;

const LONG: Duration = Duration::from_secs(10);

/// A new queue of `capacity` messages of up to `size` bytes under a unique name (see
/// [`util::mq_name`]).
fn new_queue(
    tag: &str,
    capacity: usize,
    size: usize,
) -> (String, util::Cleanup<impl FnMut()>, MessageQueue) {
    let (name, guard) = util::mq_name(tag);
    let q = MessageQueue::options()
        .capacity(capacity, size)
        .create_new(true)
        .open(&name)
        .unwrap();
    (name, guard, q)
}

/// Whether a queue of this name exists, asked of the kernel with `mq_open` (the /dev/mqueue
/// listing is there only where someone mounted it).
fn exists(name: &str) -> bool {
    match MessageQueue::options()
        .read(true)
        .write(false)
        .trust(Trust::any_user())
        .open(name)
    {
        Ok(_) => true,
        Err(OpenError::NotFound { .. }) => false,
        Err(_) => true,
    }
}

#[test]
fn child_role() {
    util::role_main(&[
        ("send_prios", role_send_prios),
        ("recv_expect", role_recv_expect),
        ("open_denied", role_open_denied),
        ("create_too_big", role_create_too_big),
        ("echo", role_echo),
        ("chan_send", role_chan_send),
        ("create_foreign", role_create_foreign),
        ("send_until_unlinked", role_send_until_unlinked),
        (
            "create_with_mode_under_umask",
            role_create_with_mode_under_umask,
        ),
    ]);
}

/// Run as nobody. args: name. Creates the queue with mode 0666, leaves it in place and puts a
/// forged message in it.
fn role_create_foreign(args: &[String]) {
    let q = MessageQueue::options()
        .mode(0o666)
        .capacity(4, 64)
        .create_new(true)
        .open(&args[0])
        .expect("create as nobody")
        .persist();
    q.send(b"forged", 0).expect("send");
}

/// args: name, capacity. Sends until a send fails; that must be `Unlinked` with the whole
/// capacity stranded, on the message after the queue filled up.
fn role_send_until_unlinked(args: &[String]) {
    let q = MessageQueue::options()
        .read(false)
        .open(&args[0])
        .expect("open");
    let capacity: usize = args[1].parse().unwrap();
    let mut sent = 0;
    let err = loop {
        match q.send(b"m", 0) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(sent, capacity, "sends before the failure");
    match &err {
        SendError::Unlinked { stranded } => assert_eq!(*stranded, capacity),
        other => panic!("expected Unlinked, got {other:?}"),
    }
    assert!(err.to_string().contains("was removed"), "{err}");
    assert_eq!(q.undelivered(), Some(capacity));
}

/// args: name. Creates a queue with mode 0660 under umask 077 and checks its mode.
fn role_create_with_mode_under_umask(args: &[String]) {
    use std::os::unix::fs::PermissionsExt;
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let q = MessageQueue::options()
        .mode(0o660)
        .create_new(true)
        .open(&args[0])
        .expect("create")
        .persist();
    let fd: std::os::fd::OwnedFd = q.into();
    let mode = std::fs::File::from(fd)
        .metadata()
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660, "mode {mode:o}");
}

/// args: name. Sends "low"/1, "high"/9, "mid"/5, "low2"/1.
fn role_send_prios(args: &[String]) {
    let q = MessageQueue::options()
        .read(false)
        .open(&args[0])
        .expect("open");
    for (m, p) in [("low", 1), ("high", 9), ("mid", 5), ("low2", 1)] {
        q.send_timeout(m.as_bytes(), p, LONG).expect("send");
    }
}

/// args: name, then pairs msg prio expected in order.
fn role_recv_expect(args: &[String]) {
    let q = MessageQueue::open(&args[0]).expect("open");
    for pair in args[1..].chunks(2) {
        let (data, prio) = q.recv_timeout(LONG).expect("recv");
        assert_eq!(data, pair[0].as_bytes());
        assert_eq!(prio.to_string(), pair[1]);
    }
}

fn role_open_denied(args: &[String]) {
    match MessageQueue::open(&args[0]) {
        Err(OpenError::PermissionDenied { name, .. }) => assert_eq!(name, args[0]),
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

/// Run unprivileged: capacities above /proc/sys/fs/mqueue limits are named errors.
fn role_create_too_big(args: &[String]) {
    let msg_max: usize = std::fs::read_to_string("/proc/sys/fs/mqueue/msg_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let size_max: usize = std::fs::read_to_string("/proc/sys/fs/mqueue/msgsize_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let e = MessageQueue::options()
        .capacity(msg_max + 1, 64)
        .create_new(true)
        .open(&args[0])
        .unwrap_err();
    match &e {
        OpenError::CapacityTooLarge {
            limit_file, limit, ..
        } => {
            assert_eq!(*limit_file, "/proc/sys/fs/mqueue/msg_max");
            assert_eq!(*limit as usize, msg_max);
        }
        other => panic!("expected CapacityTooLarge, got {other:?}"),
    }
    assert!(e.to_string().contains("/proc/sys/fs/mqueue/msg_max"), "{e}");
    let e = MessageQueue::options()
        .capacity(1, size_max + 1)
        .create_new(true)
        .open(&args[0])
        .unwrap_err();
    assert!(
        e.to_string().contains("/proc/sys/fs/mqueue/msgsize_max"),
        "{e}"
    );
}

/// args: request queue, reply queue. Receives once, replies with the bytes reversed at
/// priority + 1.
fn role_echo(args: &[String]) {
    let req = MessageQueue::open(&args[0]).expect("open req");
    let rep = MessageQueue::open(&args[1]).expect("open rep");
    let (mut data, prio) = req.recv_timeout(LONG).expect("recv");
    data.reverse();
    rep.send_timeout(&data, prio + 1, LONG).expect("send");
}

/// args: endpoint, priority, messages...
fn role_chan_send(args: &[String]) {
    let opts = Options::new().priority(args[1].parse().unwrap());
    util::send_each(&args[0], &opts, &args[2..], LONG);
}

#[test]
fn priorities_order_messages_across_processes() {
    let (name, _g, q) = new_queue("prio", 8, 64);
    util::spawn_role("send_prios", &[&name]).expect_success();
    let got: Vec<(Vec<u8>, u32)> = (0..4).map(|_| q.try_recv().unwrap()).collect();
    let want = [("high", 9), ("mid", 5), ("low", 1), ("low2", 1)];
    for ((data, prio), (m, p)) in got.iter().zip(want) {
        assert_eq!((data.as_slice(), *prio), (m.as_bytes(), p));
    }
    // Last sender / receiver are not tracked by POSIX queues; the count is.
    assert_eq!(q.attributes().unwrap().current_messages, 0);
}

#[test]
fn child_receives_what_parent_sends() {
    let (name, _g) = util::mq_name("p2c");
    let q = MessageQueue::create_new(&name).unwrap();
    // Queue all three first, so that the order the child sees is fixed by priority.
    q.send(b"a", 0).unwrap();
    q.send(b"b", 7).unwrap();
    q.send(b"c", 0).unwrap();
    util::spawn_role("recv_expect", &[&name, "b", "7", "a", "0", "c", "0"]).expect_success();
    assert_eq!(q.attributes().unwrap().current_messages, 0);
}

#[test]
fn attributes_report_capacity_and_count() {
    let (_name, _g, q) = new_queue("attr", 4, 100);
    q.send(b"one", 0).unwrap();
    q.send(b"two", 3).unwrap();
    let a = q.attributes().unwrap();
    assert_eq!(a.max_messages, 4);
    assert_eq!(a.max_message_size, 100);
    assert_eq!(a.current_messages, 2);
    assert!(!a.nonblocking);
    assert_eq!(q.max_message_size(), 100);
    // Receive into a caller buffer, no allocation.
    let mut buf = [0u8; 100];
    let (n, prio) = q.recv_into(&mut buf).unwrap();
    assert_eq!((&buf[..n], prio), (&b"two"[..], 3));
    let mut small = [0u8; 10];
    assert!(matches!(
        q.try_recv_into(&mut small),
        Err(RecvError::BufferTooSmall {
            len: 10,
            needed: 100
        })
    ));
    assert_eq!(q.attributes().unwrap().current_messages, 1);
}

#[test]
fn full_empty_and_oversize_are_named() {
    let (_name, _g, q) = new_queue("full", 2, 16);
    assert!(matches!(q.try_recv(), Err(RecvError::WouldBlock)));
    q.try_send(b"1", 0).unwrap();
    q.try_send(b"2", 0).unwrap();
    assert!(matches!(q.try_send(b"3", 0), Err(SendError::Full)));
    let e = q.try_send(&[0u8; 17], 0).unwrap_err();
    assert!(
        matches!(e, SendError::TooLarge { len: 17, max: 16 }),
        "{e:?}"
    );
    assert!(e.to_string().contains("mq_msgsize"), "{e}");
    assert!(e.to_string().contains("16"), "{e}");
}

#[test]
fn timeouts_return_within_bounds() {
    let (_name, _g, q) = new_queue("tmo", 1, 16);
    assert!(matches!(
        util::waits_for(util::SHORT, || q.recv_timeout(util::SHORT)),
        Err(RecvError::Timeout)
    ));

    q.send(b"x", 0).unwrap();
    assert!(matches!(
        util::waits_for(util::SHORT, || q.send_timeout(b"y", 0, util::SHORT)),
        Err(SendError::Timeout)
    ));
    // A zero timeout is an immediate timeout, not a block.
    let t = Instant::now();
    assert!(matches!(
        q.send_timeout(b"y", 0, Duration::ZERO),
        Err(SendError::Timeout)
    ));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn names_missing_and_existing_are_named_errors() {
    for bad in ["noslash", "/", "/a/b", ""] {
        assert!(
            matches!(MessageQueue::open(bad), Err(OpenError::InvalidName(_))),
            "{bad}"
        );
        assert!(matches!(
            MessageQueue::create_new(bad),
            Err(OpenError::InvalidName(_))
        ));
    }
    let (name, _g) = util::mq_name("missing");
    let e = MessageQueue::open(&name).unwrap_err();
    assert!(matches!(e, OpenError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains(&name));
    let _q = MessageQueue::create_new(&name).unwrap();
    assert!(matches!(
        MessageQueue::create_new(&name),
        Err(OpenError::AlreadyExists { .. })
    ));
    assert!(matches!(
        MessageQueue::options()
            .capacity(0, 10)
            .create(true)
            .open(&name),
        Err(OpenError::InvalidCapacity { .. })
    ));
}

#[test]
fn permission_denied_for_another_user() {
    if !util::is_root() {
        eprintln!("skipped: needs root to run the denied side as nobody");
        return;
    }
    let (name, _g) = util::mq_name("perm");
    let _q = MessageQueue::create_new(&name).unwrap(); // 0600, owned by root
    util::spawn_role_as_nobody("open_denied", &[&name]).expect_success();
}

#[test]
fn capacity_above_system_limits_names_the_limit() {
    let (name, _g) = util::mq_name("cap");
    if util::is_root() {
        // Root may exceed the /proc limits, so run the check unprivileged.
        util::spawn_role_as_nobody("create_too_big", &[&name]).expect_success();
        // Even root cannot exceed the kernel's hard limit.
        let e = MessageQueue::options()
            .capacity(1, 1 << 30)
            .create_new(true)
            .open(&name)
            .unwrap_err();
        assert!(matches!(e, OpenError::CapacityTooLarge { .. }), "{e:?}");
    } else {
        role_create_too_big(std::slice::from_ref(&name));
    }
    assert!(!exists(&name));
}

#[test]
fn drop_unlinks_only_what_it_created_and_persist_keeps() {
    let (name, _g) = util::mq_name("own");
    let q = MessageQueue::create(&name).unwrap();
    assert!(q.is_owner() && exists(&name));
    let opener = MessageQueue::create(&name).unwrap();
    assert!(!opener.is_owner());
    drop(opener);
    assert!(exists(&name));
    drop(q);
    assert!(!exists(&name));

    let q = MessageQueue::create_new(&name).unwrap().persist();
    drop(q);
    assert!(exists(&name));
    MessageQueue::open(&name).unwrap().remove().unwrap();
    assert!(!exists(&name));
    assert!(matches!(
        MessageQueue::unlink(&name),
        Err(OpenError::NotFound { .. })
    ));
}

#[test]
fn descriptor_converts_to_and_from_owned_fd() {
    use std::os::fd::{AsFd, OwnedFd};
    let (name, _g) = util::mq_name("fd");
    let q = MessageQueue::create_new(&name).unwrap();
    let _ = q.as_fd();
    let fd: OwnedFd = q.into(); // no longer unlinks
    assert!(exists(&name));
    let q = MessageQueue::from(fd);
    q.send(b"via fd", 2).unwrap();
    assert_eq!(q.recv().unwrap(), (b"via fd".to_vec(), 2));
}

#[cfg(feature = "tokio")]
#[test]
fn async_send_and_recv_across_processes() {
    use ipcx::mq::AsyncMessageQueue;
    let (req, _g1) = util::mq_name("areq");
    let (rep, _g2) = util::mq_name("arep");
    util::block_on(async {
        let opts = MessageQueue::options().capacity(1, 32).create_new(true);
        let req_q = AsyncMessageQueue::open(&opts, &req).unwrap();
        let rep_q = AsyncMessageQueue::open(&opts, &rep).unwrap();
        let mut child = util::spawn_role("echo", &[&req, &rep]);
        // Fill the one-slot request queue, then an async send must wait for the child.
        req_q.send(b"abc", 4).await.unwrap();
        let second = tokio::time::timeout(Duration::from_secs(20), req_q.send(b"zz", 0));
        let reply = tokio::time::timeout(Duration::from_secs(20), rep_q.recv());
        let (sent, got) = tokio::join!(second, reply);
        sent.expect("async send timed out").unwrap();
        let (data, prio) = got.expect("async recv timed out").unwrap();
        assert_eq!((data.as_slice(), prio), (&b"cba"[..], 5));
        assert!(req_q.attributes().unwrap().nonblocking);
        child.expect_success();
    });
}

#[test]
fn channel_receiver_creates_and_sender_sends_with_priority() {
    let (name, _g) = util::mq_name("chan");
    let ep = Endpoint::parse(&format!("mq:{name}")).unwrap();
    let mut rx = ep
        .receiver(&Options::new().capacity(4, 128).mode(0o600))
        .unwrap();
    assert!(exists(&name));
    util::spawn_role("chan_send", &[&ep.to_string(), "6", "first", "second"]).expect_success();
    let m = rx.recv_timeout(LONG).unwrap();
    assert_eq!(m.data, b"first");
    assert_eq!(m.meta.priority, Some(6));
    assert_eq!(rx.recv_timeout(LONG).unwrap().data, b"second");
    assert!(matches!(rx.try_recv(), Err(ChanError::WouldBlock)));
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(50)),
        Err(ChanError::Timeout)
    ));
    let mut tx = ep.sender(&Options::new()).unwrap();
    assert_eq!(tx.max_message_len(), Some(128));
    assert!(matches!(
        tx.send(&[0u8; 129]),
        Err(ChanError::TooLarge {
            len: 129,
            max: 128,
            ..
        })
    ));
    for _ in 0..4 {
        tx.try_send(b"x").unwrap();
    }
    assert!(matches!(tx.try_send(b"x"), Err(ChanError::Full { .. })));
    assert!(matches!(
        tx.send_timeout(b"x", Duration::from_millis(50)),
        Err(ChanError::Timeout)
    ));
    drop(tx);
    drop(rx); // created it: removes it
    assert!(!exists(&name));
}

#[test]
fn channel_sender_needs_a_queue_unless_create() {
    let (name, _g) = util::mq_name("chsnd");
    let ep = Endpoint::parse(&format!("mq:{name}")).unwrap();
    util::assert_sender_needs_a_receiver(&ep);
    let mut tx = ep.sender(&Options::new().create(true)).unwrap();
    tx.send(b"kept").unwrap();
    drop(tx);
    assert!(exists(&name), "a sender with --create keeps the queue");
    // A receiver that did not create it leaves it in place too.
    let mut rx = ep.receiver(&Options::new()).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap().data, b"kept");
    drop(rx);
    assert!(exists(&name));
}

#[test]
fn foreign_queue_is_refused_unless_its_owner_is_trusted() {
    if !util::is_root() {
        eprintln!("skipped: needs root to create the foreign queue as nobody");
        return;
    }
    let (name, _g) = util::mq_name("foreign");
    util::spawn_role_as_nobody("create_foreign", &[&name]).expect_success();

    let e = MessageQueue::open(&name).unwrap_err();
    assert!(matches!(e, OpenError::ForeignOwner(_)), "{e:?}");
    let ep = Endpoint::parse(&format!("mq:{name}")).unwrap();
    assert_eq!(ep.to_string(), format!("mq:{name}"));
    util::assert_foreign_owner_refused(&ep, &["--allow-uid"]);
    assert!(exists(&name), "a refused queue is left in place");

    // Trusting nobody explicitly makes it work; the receiver did not create the queue, so it
    // leaves it in place.
    let trusting = Options::new().trust(Trust::own_user().allow_uid(util::NOBODY));
    let mut rx = ep.receiver(&trusting).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap().data, b"forged");
    drop(rx);
    assert!(exists(&name), "a receiver removes only a queue it created");
    MessageQueue::options()
        .trust(Trust::any_user())
        .open(&name)
        .unwrap();
}

#[test]
fn blocked_send_ends_when_the_queue_is_unlinked() {
    let (name, _g, q) = new_queue("unl", 3, 16);
    let mut child = util::spawn_role("send_until_unlinked", &[&name, "3"]);
    assert!(util::wait_until(LONG, || q
        .attributes()
        .is_ok_and(|a| a.current_messages == 3)));
    drop(q); // the "receiver" goes away: the queue is unlinked with the sender blocked on it
    assert!(child.wait_timeout(LONG).success(), "sender failed");
}

#[test]
fn full_unlinked_queue_reports_what_is_lost() {
    let (name, _g, q) = new_queue("unl2", 2, 16);
    q.send(b"a", 0).unwrap();
    assert_eq!(q.undelivered(), None);
    MessageQueue::unlink(&name).unwrap();
    // Room left: the send goes through (into a queue nobody can open any more) ...
    q.send(b"b", 0).unwrap();
    assert_eq!(q.undelivered(), Some(2));
    // ... and when it would block, it fails at once, for every kind of wait.
    assert!(matches!(
        q.try_send(b"c", 0),
        Err(SendError::Unlinked { stranded: 2 })
    ));
    let t = Instant::now();
    assert!(matches!(
        q.send_timeout(b"c", 0, LONG),
        Err(SendError::Unlinked { stranded: 2 })
    ));
    assert!(t.elapsed() < LONG);
    // A descriptor adopted as it is (perhaps of a queue unlinked on purpose) is not watched.
    let fd: std::os::fd::OwnedFd = q.into();
    let adopted = MessageQueue::from(fd);
    assert!(matches!(adopted.try_send(b"c", 0), Err(SendError::Full)));
    assert_eq!(adopted.undelivered(), None);
}

#[test]
fn drop_leaves_a_queue_that_took_the_name_since() {
    let (name, _g) = util::mq_name("retaken");
    let q = MessageQueue::create_new(&name).unwrap();
    MessageQueue::unlink(&name).unwrap();
    let other = MessageQueue::create_new(&name).unwrap().persist();
    drop(q);
    assert!(
        exists(&name),
        "the creator's drop removed a newer queue of the same name"
    );
    drop(other);
}

#[test]
fn mode_is_exactly_the_one_asked_for() {
    let (name, _g) = util::mq_name("mode");
    util::spawn_role("create_with_mode_under_umask", &[&name]).expect_success();
}

#[test]
fn channel_sender_reports_messages_left_in_a_removed_queue_at_finish() {
    let (name, _g) = util::mq_name("finish");
    let ep = Endpoint::parse(&format!("mq:{name}")).unwrap();
    let rx = ep.receiver(&Options::new().capacity(4, 16)).unwrap();
    let mut tx = ep.sender(&Options::new()).unwrap();
    tx.send(b"a").unwrap();
    tx.finish().unwrap();
    drop(rx); // the receiver created the queue: it is unlinked with "a" still in it
    tx.send(b"b").unwrap(); // room left: accepted, into the void
    let e = tx.finish().unwrap_err();
    assert!(matches!(e, ChanError::PeerGone { .. }), "{e:?}");
    assert!(e.to_string().contains("2 messages"), "{e}");
}
