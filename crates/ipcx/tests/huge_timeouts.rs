//! A timeout too large to be a deadline (`Duration::MAX` from a caller meaning "forever") waits
//! forever, never panics: every channel entry point that takes a `Duration`.
mod util;

use std::io::Write;
use std::time::Duration;

use ipcx::channel::{Endpoint, Error, Options};

/// Sends one message from a sender opened with `connect_timeout(Duration::MAX)` to a receiver
/// already waiting, with `send_timeout` and `recv_timeout` of `Duration::MAX` (both return at
/// once: there is room, and a message is waiting).
fn round_trip(address: &str) {
    let ep = Endpoint::parse(address).unwrap();
    let mut rx = ep.receiver(&Options::new().create(true)).unwrap();
    let mut tx = ep
        .sender(&Options::new().connect_timeout(Duration::MAX))
        .unwrap();
    tx.send_timeout(b"far", Duration::MAX).unwrap();
    assert_eq!(rx.recv_timeout(Duration::MAX).unwrap().data, b"far");
}

#[test]
fn a_shm_ring_takes_duration_max() {
    round_trip(&format!("shm:{}", util::posix_name("maxring")));
}

#[test]
fn a_posix_queue_takes_duration_max() {
    round_trip(&format!("mq:{}", util::posix_name("maxmq")));
}

#[test]
fn a_system_v_queue_takes_duration_max() {
    round_trip(&format!("sysv-mq:{}", util::sysv_key()));
}

#[test]
fn a_unix_socket_takes_duration_max() {
    let dir = util::TempDir::new("maxsock");
    round_trip(&format!("unix:{}", dir.join("s").display()));
}

#[test]
fn an_idle_timeout_of_duration_max_never_drops_a_slow_sender() {
    let dir = util::TempDir::new("maxidle");
    let path = dir.join("s");
    let ep = Endpoint::parse(&format!("unix:{}", path.display())).unwrap();
    let mut rx = ep
        .receiver(&Options::new().idle_timeout(Some(Duration::MAX)))
        .unwrap();
    // A sender that stops in the middle of a frame: the receiver works out when it is due.
    let mut half = std::os::unix::net::UnixStream::connect(&path).unwrap();
    half.write_all(&[1]).unwrap();
    for _ in 0..3 {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Err(Error::Timeout) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
}

#[test]
fn a_fifo_takes_duration_max() {
    let dir = util::TempDir::new("maxfifo");
    round_trip(&format!("fifo:{}", dir.join("f").display()));
}

#[test]
fn a_worker_grace_of_duration_max_never_runs_out() {
    use ipcx::channel::Endpoint;
    use ipcx::pattern::pushpull::{Distributor, DistributorOptions};
    let a = Endpoint::parse(&format!("unix:@{}", util::unique("maxgrace"))).unwrap();
    let opts = DistributorOptions {
        worker_grace: Duration::MAX,
        ..DistributorOptions::default()
    };
    let d = Distributor::bind_with(&a, opts).unwrap();
    d.submit(b"task").unwrap();
    // No worker, a task outstanding: the grace is what the wait is checked against.
    match d.recv_result_timeout(Duration::from_millis(50)) {
        Err(ipcx::pattern::Error::Timeout) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
}
