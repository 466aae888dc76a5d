//! eventfd counter and semaphore modes, shared with a child process by inheritance (the child
//! gets the eventfd as its stdin; fd passing over a Unix socket is the usual way).
mod util;

use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ipcx::sync::{EventFd, EventFdError};

const LONG: Duration = Duration::from_secs(20);

#[test]
fn child_role() {
    util::role_main(&[("write", role_write), ("read_ones", role_read_ones)]);
}

/// The eventfd the parent gave us as stdin.
fn inherited() -> EventFd {
    let fd = std::io::stdin().as_fd().try_clone_to_owned().unwrap();
    EventFd::from_fd(fd).unwrap()
}

/// Adds each argument to the counter.
fn role_write(args: &[String]) {
    let ev = inherited();
    for a in args {
        ev.write(a.parse().unwrap()).unwrap();
    }
}

/// Reads `args[0]` times, each read returning 1 (semaphore mode).
fn role_read_ones(args: &[String]) {
    let ev = inherited();
    let n: u32 = args[0].parse().unwrap();
    for _ in 0..n {
        assert_eq!(ev.read_timeout(LONG).unwrap(), 1);
    }
}

fn spawn_with(ev: &EventFd, role: &str, args: &[&str]) -> util::ChildGuard {
    let mut cmd = util::role_command(role, args);
    cmd.stdin(Stdio::from(OwnedFd::from(ev.try_clone().unwrap())));
    util::ChildGuard(Some(cmd.spawn().unwrap()))
}

#[test]
fn counter_mode_across_processes() {
    let ev = EventFd::new(0).unwrap();
    let mut child = spawn_with(&ev, "write", &["3", "4", "5"]);
    let mut sum = 0;
    let deadline = Instant::now() + LONG;
    while sum < 12 {
        assert!(Instant::now() < deadline);
        sum += ev.read_timeout(LONG).unwrap();
    }
    assert_eq!(sum, 12);
    child.expect_success();
    assert!(matches!(ev.try_read(), Err(EventFdError::WouldBlock)));
}

#[test]
fn semaphore_mode_across_processes() {
    let ev = EventFd::semaphore(0).unwrap();
    let mut child = spawn_with(&ev, "read_ones", &["3"]);
    ev.write(3).unwrap();
    child.expect_success();
    assert!(matches!(ev.try_read(), Err(EventFdError::WouldBlock)));
    ev.write(2).unwrap();
    assert_eq!(ev.read().unwrap(), 1);
    assert_eq!(ev.read().unwrap(), 1);
}

#[test]
fn timeouts_and_limits() {
    let ev = EventFd::new(0).unwrap();
    assert!(matches!(
        util::waits_for(util::SHORT, || ev.read_timeout(util::SHORT)),
        Err(EventFdError::Timeout)
    ));
    assert!(matches!(
        ev.write(u64::MAX),
        Err(EventFdError::InvalidValue)
    ));
    ev.write(u64::MAX - 1).unwrap();
    assert!(matches!(ev.try_write(1), Err(EventFdError::WouldBlock)));
    assert!(matches!(
        ev.write_timeout(1, Duration::from_millis(50)),
        Err(EventFdError::Timeout)
    ));
    assert_eq!(ev.read().unwrap(), u64::MAX - 1);
}

#[test]
fn from_fd_rejects_other_descriptors() {
    let f = std::fs::File::open("/proc/self/status").unwrap();
    assert!(matches!(
        EventFd::from_fd(OwnedFd::from(f)),
        Err(EventFdError::NotAnEventFd)
    ));
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn async_read_wakes_on_a_write_from_another_process() {
    let ev = EventFd::new(0).unwrap();
    let mut child = spawn_with(&ev, "write", &["9"]);
    let aev = ipcx::sync::AsyncEventFd::new(ev).unwrap();
    let v = tokio::time::timeout(LONG, aev.read())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, 9);
    aev.write(1).await.unwrap();
    assert_eq!(aev.try_read().unwrap(), 1);
    child.expect_success();
}
