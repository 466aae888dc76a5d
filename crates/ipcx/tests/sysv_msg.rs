//! System V message queues (`ipcx::sysv::msg`) and the `sysv-mq:KEY` channel adapter, across
//! processes.
mod util;

use std::time::{Duration, Instant};

use ipcx::channel::{Endpoint, Error as ChanError, Options};
use ipcx::sysv::Key;
use ipcx::sysv::msg::{MessageQueue, OpenError, RecvError, SendError};
use ipcx::trust::Trust;

const LONG: Duration = Duration::from_secs(10);

/// Removes the queue with `key` when the test ends, whatever happens.
fn guard(key: i32) -> util::Cleanup<impl FnMut()> {
    util::Cleanup(move || {
        if let Ok(q) = MessageQueue::options()
            .trust(Trust::any_user())
            .open(Key(key))
        {
            let _ = q.remove();
        }
    })
}

fn exists(key: i32) -> bool {
    !matches!(
        MessageQueue::options()
            .trust(Trust::any_user())
            .open(Key(key)),
        Err(OpenError::NotFound { .. })
    )
}

#[test]
fn child_role() {
    util::role_main(&[
        ("send_types", role_send_types),
        ("recv_select", role_recv_select),
        ("open_denied", role_open_denied),
        ("wait_removed", role_wait_removed),
        ("send_by_id", role_send_by_id),
        ("chan_send", role_chan_send),
        ("create_foreign", role_create_foreign),
    ]);
}

/// Run as nobody. args: key. Creates the queue with mode 0666, leaves it in place and puts a
/// forged message in it.
fn role_create_foreign(args: &[String]) {
    let q = MessageQueue::options()
        .mode(0o666)
        .create_new(true)
        .open(Key(args[0].parse().unwrap()))
        .expect("create as nobody")
        .persist();
    q.send(1, b"forged").expect("send");
}

/// args: key. Sends a/3, b/1, c/2, d/1 in that order.
fn role_send_types(args: &[String]) {
    let q = MessageQueue::open(Key(args[0].parse().unwrap())).expect("open");
    for (m, t) in [("a", 3), ("b", 1), ("c", 2), ("d", 1)] {
        q.send_timeout(t, m.as_bytes(), LONG).expect("send");
    }
}

/// args: key, then triples selector expected_type expected_text.
fn role_recv_select(args: &[String]) {
    let q = MessageQueue::open(Key(args[0].parse().unwrap())).expect("open");
    for t in args[1..].chunks(3) {
        let (ty, data) = q.recv_timeout(t[0].parse().unwrap(), LONG).expect("recv");
        assert_eq!(ty.to_string(), t[1]);
        assert_eq!(data, t[2].as_bytes());
    }
}

fn role_open_denied(args: &[String]) {
    match MessageQueue::open(Key(args[0].parse().unwrap())) {
        Err(OpenError::PermissionDenied { .. }) => {}
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

/// Signals readiness with a type-99 message, then blocks in recv(1) until the queue is
/// removed, which must end it with `Removed`.
fn role_wait_removed(args: &[String]) {
    let q = MessageQueue::open(Key(args[0].parse().unwrap())).expect("open");
    q.send(99, b"ready").expect("send ready");
    match q.recv(1) {
        Err(RecvError::Removed) => {}
        other => panic!("expected Removed, got {other:?}"),
    }
}

/// args: id. Sends through a private queue found by id.
fn role_send_by_id(args: &[String]) {
    let q = MessageQueue::from_id(args[0].parse().unwrap()).expect("from_id");
    assert!(!q.is_owner());
    q.send(7, b"private hello").expect("send");
}

/// args: endpoint, mtype, messages...
fn role_chan_send(args: &[String]) {
    let opts = Options::new().mtype(args[1].parse().unwrap());
    util::send_each(&args[0], &opts, &args[2..], LONG);
}

#[test]
fn receive_by_type_across_processes() {
    let key = util::sysv_key();
    let _g = guard(key);
    let q = MessageQueue::create_new(Key(key)).unwrap();
    util::spawn_role("send_types", &[&key.to_string()]).expect_success();
    // Queue holds, in order: a/3 b/1 c/2 d/1.
    assert_eq!(q.try_recv(2).unwrap(), (2, b"c".to_vec())); // first of type 2
    assert_eq!(q.try_recv(-2).unwrap(), (1, b"b".to_vec())); // lowest type <= 2
    assert_eq!(q.try_recv(0).unwrap(), (3, b"a".to_vec())); // first of any type
    assert!(matches!(q.try_recv(2), Err(RecvError::Empty)));
    assert_eq!(q.try_recv(0).unwrap(), (1, b"d".to_vec()));
    assert!(matches!(q.try_recv(0), Err(RecvError::Empty)));
}

#[test]
fn child_receives_by_type() {
    let key = util::sysv_key();
    let _g = guard(key);
    let q = MessageQueue::create_new(Key(key)).unwrap();
    for (t, m) in [(5, "five"), (2, "two"), (9, "nine"), (2, "two-b")] {
        q.send(t, m.as_bytes()).unwrap();
    }
    util::spawn_role(
        "recv_select",
        &[
            &key.to_string(),
            "9",
            "9",
            "nine", // by type
            "-5",
            "2",
            "two", // lowest type <= 5
            "0",
            "5",
            "five", // first
            "0",
            "2",
            "two-b",
        ],
    )
    .expect_success();
    let st = q.stat().unwrap();
    assert_eq!(st.messages, 0);
}

#[test]
fn stat_reports_counts_pids_owner_and_mode() {
    let key = util::sysv_key();
    let _g = guard(key);
    let q = MessageQueue::options()
        .mode(0o640)
        .create_new(true)
        .open(Key(key))
        .unwrap();
    let st = q.stat().unwrap();
    assert_eq!((st.messages, st.bytes, st.last_send_pid), (0, 0, 0));
    assert_eq!(st.mode, 0o640);
    assert_eq!(st.key, Key(key));
    assert!(st.last_send.is_none() && st.last_change.is_some());
    let mut child = util::spawn_role("send_types", &[&key.to_string()]);
    let child_pid = child.pid();
    child.expect_success();
    let st = q.stat().unwrap();
    assert_eq!(st.messages, 4);
    assert_eq!(st.bytes, 4);
    assert_eq!(st.last_send_pid, child_pid);
    assert!(st.last_send.is_some());
    let me = std::process::id() as i32;
    q.recv(0).unwrap();
    let st = q.stat().unwrap();
    assert_eq!((st.messages, st.last_recv_pid), (3, me));
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    assert_eq!(st.uid, uid.unwrap());
    assert_eq!(st.creator_uid, st.uid);
    assert!(st.max_bytes > 0);
}

#[test]
fn full_empty_invalid_type_and_oversize_are_named() {
    let key = util::sysv_key();
    let _g = guard(key);
    let q = MessageQueue::options()
        .max_bytes(16)
        .create_new(true)
        .open(Key(key))
        .unwrap();
    assert_eq!(q.stat().unwrap().max_bytes, 16);
    assert!(matches!(q.try_recv(0), Err(RecvError::Empty)));
    q.try_send(1, &[1u8; 16]).unwrap();
    assert!(matches!(q.try_send(1, b"x"), Err(SendError::Full)));
    assert!(matches!(
        q.try_send(0, b"x"),
        Err(SendError::InvalidType { mtype: 0 })
    ));
    let e = q.send(-3, b"x").unwrap_err();
    assert!(e.to_string().contains("positive"), "{e}");
    // Larger than the queue's capacity: refused at once, not blocked forever.
    let e = q.send(1, &[0u8; 17]).unwrap_err();
    assert!(
        matches!(
            e,
            SendError::TooLarge {
                len: 17,
                max: 16,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("msg_qbytes"), "{e}");
    // Larger than the system's msgmax.
    let msgmax: usize = std::fs::read_to_string("/proc/sys/kernel/msgmax")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    q.set_max_bytes(msgmax as u64 * 2).unwrap();
    let e = q.try_send(1, &vec![0u8; msgmax + 1]).unwrap_err();
    assert!(
        matches!(e, SendError::TooLarge { max, .. } if max == msgmax),
        "{e:?}"
    );
    assert!(e.to_string().contains("msgmax"), "{e}");
    // A message of exactly msgmax fits and comes back whole.
    q.try_recv(0).unwrap();
    q.try_send(4, &vec![7u8; msgmax]).unwrap();
    let (t, data) = q.try_recv(4).unwrap();
    assert_eq!((t, data.len()), (4, msgmax));
}

/// CPU time (user + system) of the calling thread, from /proc/thread-self/stat.
fn thread_cpu_time() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

#[test]
fn timeouts_return_within_bounds_without_spinning() {
    let key = util::sysv_key();
    let _g = guard(key);
    let q = MessageQueue::options()
        .max_bytes(4)
        .create_new(true)
        .open(Key(key))
        .unwrap();
    assert!(matches!(
        util::waits_for(util::SHORT, || q.recv_timeout(0, util::SHORT)),
        Err(RecvError::Timeout)
    ));

    q.send(1, b"full").unwrap();
    assert!(matches!(
        util::waits_for(util::SHORT, || q.send_timeout(1, b"more", util::SHORT)),
        Err(SendError::Timeout)
    ));

    // A 500 ms timed wait sleeps between polls: far less CPU than the wall time.
    let cpu = thread_cpu_time();
    let t = Instant::now();
    assert!(matches!(
        q.recv_timeout(2, Duration::from_millis(500)),
        Err(RecvError::Timeout)
    ));
    let wall = t.elapsed();
    let used = thread_cpu_time().saturating_sub(cpu);
    assert!(wall >= Duration::from_millis(500));
    assert!(
        used < Duration::from_millis(250),
        "timed wait used {used:?} of CPU"
    );
}

#[test]
fn timed_receive_sees_a_message_sent_during_the_wait() {
    let key = util::sysv_key();
    let _g = guard(key);
    let q = MessageQueue::create_new(Key(key)).unwrap();
    let mut child = util::spawn_role("send_types", &[&key.to_string()]);
    let (t, data) = q.recv_timeout(3, LONG).unwrap();
    assert_eq!((t, data.as_slice()), (3, &b"a"[..]));
    child.expect_success();
}

#[test]
fn missing_existing_and_denied_are_named_errors() {
    let key = util::sysv_key();
    let _g = guard(key);
    let e = MessageQueue::open(Key(key)).unwrap_err();
    assert!(matches!(e, OpenError::NotFound { .. }), "{e:?}");
    let _q = MessageQueue::create_new(Key(key)).unwrap();
    assert!(matches!(
        MessageQueue::create_new(Key(key)),
        Err(OpenError::AlreadyExists { .. })
    ));
    if util::is_root() {
        util::spawn_role_as_nobody("open_denied", &[&key.to_string()]).expect_success();
    } else {
        eprintln!("skipped the permission part: needs root to run it as nobody");
    }
}

#[test]
fn removal_wakes_a_blocked_receiver_with_removed() {
    let key = util::sysv_key();
    let _g = guard(key);
    let q = MessageQueue::create_new(Key(key)).unwrap();
    let mut child = util::spawn_role("wait_removed", &[&key.to_string()]);
    let pid = child.pid();
    assert_eq!(q.recv_timeout(99, LONG).unwrap().1, b"ready");
    // Wait until every thread of the child sleeps (it is then inside msgrcv).
    let asleep = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.flatten().all(|t| {
                    std::fs::read_to_string(t.path().join("stat"))
                        .map(|s| s[s.rfind(')').unwrap_or(0)..].starts_with(") S"))
                        .unwrap_or(false)
                })
            })
            .unwrap_or(false)
    };
    assert!(util::wait_until(LONG, asleep));
    q.remove().unwrap();
    child.expect_success();
}

#[test]
fn drop_removes_only_what_it_created_and_persist_keeps() {
    let key = util::sysv_key();
    let _g = guard(key);
    let q = MessageQueue::create(Key(key)).unwrap();
    assert!(q.is_owner());
    let other = MessageQueue::create(Key(key)).unwrap();
    assert!(!other.is_owner());
    assert_eq!(other.id(), q.id());
    drop(other);
    assert!(exists(key));
    drop(q);
    assert!(!exists(key));

    drop(MessageQueue::create_new(Key(key)).unwrap().persist());
    assert!(exists(key));
    let q = MessageQueue::open(Key(key)).unwrap();
    let id = q.id();
    q.remove().unwrap();
    assert!(!exists(key));
    assert!(matches!(
        MessageQueue::from_id(id),
        Err(OpenError::NoSuchId { .. })
    ));
}

#[test]
fn private_queue_shared_by_id() {
    let q = MessageQueue::private().unwrap();
    assert!(q.is_owner());
    let id = q.id();
    let _g = util::Cleanup(move || {
        if let Ok(q) = MessageQueue::from_id(id) {
            let _ = q.remove();
        }
    });
    util::spawn_role("send_by_id", &[&id.to_string()]).expect_success();
    assert_eq!(
        q.recv_timeout(0, LONG).unwrap(),
        (7, b"private hello".to_vec())
    );
    assert_eq!(q.stat().unwrap().key, Key::PRIVATE);
    drop(q);
    assert!(MessageQueue::from_id(id).is_err());
}

#[test]
fn channel_adapter_sends_types_and_selects() {
    let key = util::sysv_key();
    let _g = guard(key);
    let ep = Endpoint::parse(&format!("sysv-mq:{key}")).unwrap();
    util::assert_sender_needs_a_receiver(&ep);

    let mut rx = ep.receiver(&Options::new().mtype(-4)).unwrap(); // lowest type <= 4
    assert!(exists(key));
    util::spawn_role("chan_send", &[&ep.to_string(), "9", "nine"]).expect_success();
    util::spawn_role("chan_send", &[&ep.to_string(), "3", "three"]).expect_success();
    let m = rx.recv_timeout(LONG).unwrap();
    assert_eq!((m.data.as_slice(), m.meta.mtype), (&b"three"[..], Some(3)));
    assert!(matches!(rx.try_recv(), Err(ChanError::WouldBlock)));
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(50)),
        Err(ChanError::Timeout)
    ));

    let e = ep.sender(&Options::new().mtype(0)).unwrap_err();
    assert!(e.to_string().contains("positive"), "{e}");
    let mut tx = ep.sender(&Options::new()).unwrap();
    let max = tx.max_message_len().unwrap();
    assert!(matches!(
        tx.send(&vec![0u8; max + 1]),
        Err(ChanError::TooLarge { .. })
    ));
    drop(tx);
    drop(rx); // created it: removes it
    assert!(!exists(key));

    // A sender with --create makes a queue that outlives it.
    let mut tx = ep.sender(&Options::new().create(true)).unwrap();
    tx.send(b"default type").unwrap();
    drop(tx);
    let mut rx = ep.receiver(&Options::new()).unwrap();
    let m = rx.recv_timeout(LONG).unwrap();
    assert_eq!(m.meta.mtype, Some(1));
    drop(rx);
    assert!(
        exists(key),
        "a receiver that did not create the queue keeps it"
    );
}

#[test]
fn foreign_queue_is_refused_unless_its_owner_is_trusted() {
    if !util::is_root() {
        eprintln!("skipped: needs root to create the foreign queue as nobody");
        return;
    }
    let key = util::sysv_key();
    let _g = guard(key);
    util::spawn_role_as_nobody("create_foreign", &[&key.to_string()]).expect_success();

    let e = MessageQueue::open(Key(key)).unwrap_err();
    assert!(matches!(e, OpenError::ForeignOwner(_)), "{e:?}");
    let ep = Endpoint::parse(&format!("sysv-mq:{key}")).unwrap();
    assert_eq!(ep.to_string(), format!("sysv-mq:{key}"));
    util::assert_foreign_owner_refused(&ep, &[]);
    assert!(exists(key), "a refused queue is left in place");

    let trusting = Options::new().trust(Trust::own_user().allow_uid(util::NOBODY));
    let mut rx = ep.receiver(&trusting).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap().data, b"forged");
    drop(rx);
    assert!(exists(key), "a receiver removes only a queue it created");
}
