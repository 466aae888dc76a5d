//! Direct messaging between processes: inboxes addressed by pid, verified sender credentials.
mod util;

use std::time::{Duration, Instant};

use ipcx::channel::MessageReceiver;
use ipcx::pattern::Error;
use ipcx::pattern::direct::{Inbox, Outbox, inbox_addr, send_to, send_to_user};
use ipcx::socket::{SocketError, UnixAddr, UnixDatagram};
use ipcx::wait::Wait;

const LONG: Duration = Duration::from_secs(20);

/// One inbox per process: the tests that open one take turns.
static INBOX: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    INBOX.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn child_role() {
    util::role_main(&[
        ("sender", |args| {
            let pid: i32 = args[0].parse().unwrap();
            let n: usize = args[1].parse().unwrap();
            for i in 0..n {
                send_to(pid, format!("msg {i}").as_bytes()).unwrap();
            }
        }),
        ("sender_to_user", |args| {
            let uid: u32 = args[0].parse().unwrap();
            let pid: i32 = args[1].parse().unwrap();
            send_to_user(uid, pid, b"from nobody", Wait::timeout(LONG)).unwrap();
        }),
        ("echo", |args| {
            // Opens its own inbox, tells the parent its pid, answers each letter to its sender.
            let parent: i32 = args[0].parse().unwrap();
            let inbox = Inbox::open().unwrap();
            if send_to(parent, b"ready").is_err() {
                return; // no parent inbox (the dead-process test): just end
            }
            let letter = inbox.recv_timeout(LONG).unwrap();
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&letter.data);
            send_to(letter.from.pid, &reply).unwrap();
        }),
    ]);
}

#[test]
fn letters_carry_the_verified_sender() {
    let _g = lock();
    let inbox = Inbox::open().unwrap();
    let mut child = util::spawn_role("sender", &[&inbox.pid().to_string(), "50"]);
    for i in 0..50 {
        let l = inbox.recv_timeout(LONG).unwrap();
        assert_eq!(l.data, format!("msg {i}").as_bytes());
        assert_eq!(l.from.pid, child.pid());
        assert_eq!(l.from.uid, inbox.uid());
    }
    child.expect_success();
}

#[test]
fn request_and_answer_between_two_inboxes() {
    let _g = lock();
    let inbox = Inbox::open().unwrap();
    let mut child = util::spawn_role("echo", &[&inbox.pid().to_string()]);
    let ready = inbox.recv_timeout(LONG).unwrap();
    assert_eq!(ready.data, b"ready");
    assert_eq!(ready.from.pid, child.pid());
    Outbox::new()
        .unwrap()
        .send_to_timeout(child.pid(), b"hi", LONG)
        .unwrap();
    let answer = inbox.recv_timeout(LONG).unwrap();
    assert_eq!(answer.data, b"echo:hi");
    assert_eq!(answer.from.pid, child.pid());
    child.expect_success();
}

#[test]
fn another_user_is_seen_as_such() {
    if !util::is_root() {
        eprintln!("skipped: needs root to run a child as nobody");
        return;
    }
    let _g = lock();
    let inbox = Inbox::open().unwrap();
    let mut child = util::spawn_role_as_nobody(
        "sender_to_user",
        &[&inbox.uid().to_string(), &inbox.pid().to_string()],
    );
    let l = inbox.recv_timeout(LONG).unwrap();
    assert_eq!(l.data, b"from nobody");
    assert_eq!(l.from.uid, util::NOBODY);
    assert_eq!(l.from.gid, util::NOBODY);
    assert_eq!(l.from.pid, child.pid());
    child.expect_success();
}

#[test]
fn no_inbox_is_not_found() {
    // pid_max is at most 2^22: this pid cannot exist.
    let e = send_to(999_999_999, b"x").unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("Inbox::open"), "{e}");
}

#[test]
fn a_dead_process_inbox_is_gone() {
    let mut child = util::spawn_role("echo", &["999999999"]);
    let pid = child.pid();
    child.kill();
    let e = send_to(pid, b"x").unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
}

#[test]
fn timeout_and_try_recv() {
    let _g = lock();
    let inbox = Inbox::open().unwrap();
    assert!(matches!(inbox.try_recv(), Err(Error::WouldBlock)));
    let t = Instant::now();
    assert!(matches!(
        inbox.recv_timeout(Duration::from_millis(100)),
        Err(Error::Timeout)
    ));
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5));
}

#[test]
fn one_inbox_per_process() {
    let _g = lock();
    let _inbox = Inbox::open().unwrap();
    let e = Inbox::open().unwrap_err();
    assert!(
        matches!(e, Error::Socket(SocketError::AddrInUse { .. })),
        "{e:?}"
    );
}

#[test]
fn oversize_is_too_large() {
    let _g = lock();
    let inbox = Inbox::open().unwrap();
    let out = Outbox::new().unwrap();
    let big = vec![0u8; out.max_message_len().unwrap() + 4096];
    let e = out.send_to(inbox.pid(), &big).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
}

#[test]
fn full_inbox_is_full_for_try_send() {
    let _g = lock();
    let inbox = Inbox::open().unwrap();
    let out = Outbox::new().unwrap();
    let mut sent = 0;
    let err = loop {
        match out.try_send_to(inbox.pid(), &[7u8; 1024]) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 1_000_000, "never full");
    };
    assert!(matches!(err, Error::Full { .. }), "{err:?}");
    // Everything that was accepted is delivered.
    for _ in 0..sent {
        inbox.try_recv().unwrap();
    }
    assert!(matches!(inbox.try_recv(), Err(Error::WouldBlock)));
}

#[test]
fn hostile_letters_with_descriptors_are_dropped() {
    let _g = lock();
    let inbox = Inbox::open().unwrap();
    let raw = UnixDatagram::unbound().unwrap();
    let f = std::fs::File::open("/dev/null").unwrap();
    use std::os::fd::AsFd;
    raw.send_to_wait(b"with fd", &[f.as_fd()], &inbox.addr(), Wait::timeout(LONG))
        .unwrap();
    raw.send_to(b"", &inbox.addr()).unwrap();
    raw.send_to(b"plain", &inbox.addr()).unwrap();
    // The empty letter is a valid letter; the one with a descriptor is skipped.
    assert_eq!(inbox.recv_timeout(LONG).unwrap().data, b"");
    assert_eq!(inbox.recv_timeout(LONG).unwrap().data, b"plain");
}

#[test]
fn inbox_is_a_message_receiver() {
    let _g = lock();
    let mut inbox = Inbox::open().unwrap();
    assert_eq!(
        inbox.addr(),
        UnixAddr::Abstract(format!("ipcx-inbox-{}-{}", inbox.uid(), inbox.pid()).into_bytes())
    );
    assert_eq!(inbox.addr(), inbox_addr(inbox.uid(), inbox.pid()));
    send_to(inbox.pid(), b"m").unwrap();
    let m = MessageReceiver::recv_timeout(&mut inbox, LONG).unwrap();
    assert_eq!(m.data, b"m");
    assert_eq!(m.meta.pid, Some(std::process::id() as i32));
}
