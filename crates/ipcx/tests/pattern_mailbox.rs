//! What mailboxes do differently over each transport: a POSIX queue's names, limits and
//! lifetime (its creator removes it), a ring's named errors and lifetime (it lives while any
//! handle is open). The behaviours every transport shares are in `pattern_conformance.rs`.
mod util;

use std::time::Duration;

use ipcx::pattern::Error;
use ipcx::pattern::mailbox::{Limits, Mailbox};
use ipcx::pattern::pubsub::Publisher;
use ipcx::ring;

const LONG: Duration = Duration::from_secs(20);

#[test]
fn queue_bad_names_and_limits() {
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
fn queue_creator_removes_it_opener_does_not() {
    let name = util::posix_name("own");
    let mb = Mailbox::create(&name).unwrap();
    drop(Mailbox::open(&name).unwrap());
    Mailbox::open(&name).unwrap();
    drop(mb);
    assert!(Mailbox::open(&name).is_err());
}

#[test]
fn ring_bad_input_gives_named_errors() {
    let e = Mailbox::open("shm:no-slash").unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    let e = Mailbox::create("shm:/a/b").unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");

    let (name, _g) = util::ring_name("mbbad");
    let addr = format!("shm:{name}");
    let mb = Mailbox::create_with_capacity(&addr, 2, 64).unwrap();
    // No priorities on a ring.
    let e = mb.send_wait(b"x", 5, ipcx::wait::Wait::NoWait).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    let e = Mailbox::with(&addr, ipcx::mq::MessageQueue::options()).unwrap_err();
    assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
    // A pub/sub ring is not a mailbox.
    let (pname, _g2) = util::ring_name("notmb");
    let _p = Publisher::bind(&format!("shm:{pname}")).unwrap();
    let e = Mailbox::open(&format!("shm:{pname}")).unwrap_err();
    assert!(matches!(e, Error::Ring(_)), "{e:?}");
}

#[test]
fn ring_lives_while_any_handle_is_open() {
    let (name, _g) = util::ring_name("mblife");
    let addr = format!("shm:{name}");
    let creator = Mailbox::create(&addr).unwrap();
    let opener = Mailbox::open(&addr).unwrap();
    creator.send(b"kept").unwrap();
    drop(creator);
    assert_eq!(opener.recv_timeout(LONG).unwrap(), b"kept");
    drop(opener);
    assert!(matches!(Mailbox::open(&addr), Err(Error::NotFound { .. })));
    assert!(!ring::is_ring(&name));
}
