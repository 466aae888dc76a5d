//! Mailboxes: N:M over a POSIX queue, each message delivered to exactly one receiver.
mod util;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ipcx::pattern::Error;
use ipcx::pattern::mailbox::{Limits, Mailbox};

const LONG: Duration = Duration::from_secs(20);

#[test]
fn child_role() {
    util::role_main(&[
        ("producer", |args| {
            let jobs = Mailbox::open(&args[0]).unwrap();
            let tag = &args[1];
            let n: usize = args[2].parse().unwrap();
            for i in 0..n {
                jobs.send_timeout(format!("{tag}-{i}").as_bytes(), LONG)
                    .unwrap();
            }
        }),
        ("consumer", |args| {
            let jobs = Mailbox::open(&args[0]).unwrap();
            let results = Mailbox::open(&args[1]).unwrap();
            loop {
                let m = jobs.recv_timeout(LONG).unwrap();
                if m == b"stop" {
                    return;
                }
                let mut r = format!("{}:", std::process::id()).into_bytes();
                r.extend_from_slice(&m);
                results.send_timeout(&r, LONG).unwrap();
            }
        }),
    ]);
}

#[test]
fn many_senders_many_receivers_each_message_once() {
    let jobs_name = util::posix_name("jobs");
    let results_name = util::posix_name("results");
    let jobs = Mailbox::create(&jobs_name).unwrap();
    let results = Mailbox::create(&results_name).unwrap();
    let consumers: Vec<_> = (0..3)
        .map(|_| util::spawn_role("consumer", &[&jobs_name, &results_name]))
        .collect();
    let mut producers: Vec<_> = ["a", "b"]
        .iter()
        .map(|t| util::spawn_role("producer", &[&jobs_name, t, "60"]))
        .collect();
    let mut seen = HashSet::new();
    let mut by = HashSet::new();
    for _ in 0..120 {
        let r = String::from_utf8(results.recv_timeout(LONG).unwrap()).unwrap();
        let (pid, item) = r.split_once(':').unwrap();
        by.insert(pid.to_owned());
        assert!(seen.insert(item.to_owned()), "{item} delivered twice");
    }
    for t in ["a", "b"] {
        for i in 0..60 {
            assert!(seen.contains(&format!("{t}-{i}")));
        }
    }
    for p in &mut producers {
        p.expect_success();
    }
    for _ in 0..3 {
        jobs.send_timeout(b"stop", LONG).unwrap();
    }
    for mut c in consumers {
        c.expect_success();
    }
    assert!(results.is_empty().unwrap());
    assert!(!by.is_empty());
}

#[test]
fn full_timeout_and_empty() {
    let name = util::posix_name("full");
    let mb = Mailbox::create_with_capacity(&name, 2, 64).unwrap();
    assert_eq!(mb.max_message_len(), 64);
    assert!(matches!(mb.try_recv(), Err(Error::WouldBlock)));
    mb.try_send(b"1").unwrap();
    mb.try_send(b"2").unwrap();
    assert!(matches!(mb.try_send(b"3"), Err(Error::Full { .. })));
    let t = Instant::now();
    assert!(matches!(
        mb.send_timeout(b"3", Duration::from_millis(100)),
        Err(Error::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(100) && t.elapsed() < Duration::from_secs(5));
    assert_eq!(mb.len().unwrap(), 2);
    assert_eq!(mb.recv().unwrap(), b"1");
    assert_eq!(mb.recv().unwrap(), b"2");
    let t = Instant::now();
    assert!(matches!(
        mb.recv_timeout(Duration::from_millis(100)),
        Err(Error::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(100) && t.elapsed() < Duration::from_secs(5));
}

#[test]
fn oversize_and_bad_names() {
    let name = util::posix_name("big");
    let mb = Mailbox::create_with_capacity(&name, 2, 64).unwrap();
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
    let e = Mailbox::open("no-slash").unwrap_err();
    assert!(
        matches!(e, Error::Queue(ipcx::mq::OpenError::InvalidName(_))),
        "{e:?}"
    );
    let e = Mailbox::open(&util::posix_name("missing")).unwrap_err();
    assert!(
        matches!(e, Error::Queue(ipcx::mq::OpenError::NotFound { .. })),
        "{e:?}"
    );
    let limits = Limits::read();
    assert!(limits.msgsize_max >= 128 && limits.msg_max >= 1);
}

#[test]
fn creator_removes_it_opener_does_not() {
    let name = util::posix_name("own");
    let mb = Mailbox::create(&name).unwrap();
    drop(Mailbox::open(&name).unwrap());
    Mailbox::open(&name).unwrap();
    drop(mb);
    assert!(Mailbox::open(&name).is_err());
}
