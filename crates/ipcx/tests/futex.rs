//! Futex wait/wake on a word in a named segment, between processes.
mod util;

use std::time::{Duration, Instant};

use ipcx::sync::{Futex, FutexError, FutexWake, SegmentError, SharedSemaphore};
use util::Cleanup;

const LONG: Duration = Duration::from_secs(20);

#[test]
fn child_role() {
    util::role_main(&[
        ("waiter", role_waiter),
        ("announce_then_hang", role_announce),
    ]);
}

/// Sleeps on the word while it is 0, then sets it to 2.
fn role_waiter(args: &[String]) {
    let f = Futex::open(&args[0]).unwrap();
    let deadline = Instant::now() + LONG;
    while f.load() == 0 {
        assert!(Instant::now() < deadline);
        match f.wait_timeout(0, LONG) {
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(f.load(), 1);
    f.store(2);
    f.wake_all().unwrap();
}

/// Sets the word to 1, wakes, and never sets it to 2 (it gets killed).
fn role_announce(args: &[String]) {
    let f = Futex::open(&args[0]).unwrap();
    f.store(1);
    f.wake_all().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

fn cleanup(names: Vec<String>) -> Cleanup<impl FnMut()> {
    Cleanup(move || {
        for n in &names {
            let _ = Futex::remove(n);
        }
    })
}

#[test]
fn wait_and_wake_across_processes() {
    let name = util::posix_name("fx");
    let _c = cleanup(vec![name.clone()]);
    let f = Futex::create_new(&name).unwrap();
    let mut child = util::spawn_role("waiter", &[&name]);
    // Wake until the wake reaches a sleeping waiter: proves the child sleeps in the kernel on
    // our word. It re-checks the word (still 0) and sleeps again.
    assert!(util::wait_until(LONG, || f.wake(1).unwrap() == 1));
    f.store(1);
    f.wake_all().unwrap();
    let deadline = Instant::now() + LONG;
    while f.load() != 2 {
        assert!(Instant::now() < deadline, "waiter never answered");
        let _ = f.wait_timeout(1, Duration::from_millis(200));
    }
    child.expect_success();
}

#[test]
fn waiter_whose_waker_died_ends_by_timeout() {
    let name = util::posix_name("fxdead");
    let _c = cleanup(vec![name.clone()]);
    let f = Futex::create_new(&name).unwrap();
    let mut child = util::spawn_role("announce_then_hang", &[&name]);
    let deadline = Instant::now() + LONG;
    while f.load() == 0 {
        assert!(Instant::now() < deadline);
        let _ = f.wait_timeout(0, Duration::from_millis(200));
    }
    child.kill(); // SIGKILL: it will never store 2
    let t = Instant::now();
    assert!(matches!(
        f.wait_timeout(1, Duration::from_millis(200)),
        Err(FutexError::Timeout)
    ));
    let el = t.elapsed();
    assert!(
        el >= Duration::from_millis(200) && el < Duration::from_secs(5),
        "{el:?}"
    );
}

#[test]
fn try_wait_and_value_changed() {
    let name = util::posix_name("fxtry");
    let _c = cleanup(vec![name.clone()]);
    let f = Futex::create_new(&name).unwrap();
    assert!(matches!(f.try_wait(0), Err(FutexError::WouldBlock)));
    assert_eq!(f.try_wait(7).unwrap(), FutexWake::ValueChanged);
    assert_eq!(f.wait(7).unwrap(), FutexWake::ValueChanged);
    assert_eq!(f.fetch_add(3), 0);
    let g = Futex::open(&name).unwrap();
    assert_eq!(g.load(), 3, "a second mapping sees the same word");
    assert_eq!(f.wake_all().unwrap(), 0);
}

#[test]
fn open_errors_are_named() {
    let name = util::posix_name("fxerr");
    let _c = cleanup(vec![name.clone()]);
    assert!(matches!(
        Futex::open(&name),
        Err(SegmentError::NotFound { .. })
    ));
    assert!(matches!(
        Futex::open("bad/name"),
        Err(SegmentError::InvalidName(_))
    ));
    let _s = SharedSemaphore::create_new(&name, 0).unwrap();
    assert!(matches!(
        Futex::open(&name),
        Err(SegmentError::IncompatibleLayout { .. })
    ));
}
