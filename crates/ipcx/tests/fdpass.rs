//! File-descriptor passing (SCM_RIGHTS) between processes.
mod util;

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use ipcx::Wait;
use ipcx::socket::{
    MAX_FDS, SocketError, UnixAddr, UnixDatagram, UnixListener, UnixSeqpacket,
    UnixSeqpacketListener, UnixStream,
};

const T: Duration = Duration::from_secs(10);

fn addr(s: &str) -> UnixAddr {
    UnixAddr::parse(s).unwrap()
}

#[test]
fn child_role() {
    util::role_main(&[
        ("write_through_fd", |a| {
            let s = UnixSeqpacket::connect(&addr(&a[0])).unwrap();
            let mut m = s.recv_timeout(T).unwrap();
            assert_eq!(m.data, b"file");
            let fds = m.take_fds();
            assert_eq!(fds.len(), 1);
            let mut f = std::fs::File::from(fds.into_iter().next().unwrap());
            f.write_all(b"written by the child").unwrap();
            s.send(b"done").unwrap();
        }),
        ("write_pipes", |a| {
            let s = UnixSeqpacket::connect(&addr(&a[0])).unwrap();
            let mut m = s.recv_timeout(T).unwrap();
            for (i, fd) in m.take_fds().into_iter().enumerate() {
                let mut w = std::fs::File::from(fd);
                write!(w, "pipe {i}").unwrap();
            }
            s.send(b"done").unwrap();
        }),
        ("stream_fd", |a| {
            let mut s = UnixStream::connect(&addr(&a[0])).unwrap();
            let mut buf = [0u8; 16];
            let r = s.recv_with_fds(&mut buf, 4).unwrap();
            assert_eq!(&buf[..r.len], b"x");
            let mut f = std::fs::File::from(r.fds.into_iter().next().unwrap());
            f.write_all(b"via stream").unwrap();
            s.send_frame(b"done").unwrap();
        }),
        ("unused_fds_check", unused_fds_check),
        ("truncated_check", truncated_check),
    ]);
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn child_writes_to_a_file_it_received() {
    let dir = util::TempDir::new("fdfile");
    let path = dir.join("out.txt");
    let file = std::fs::File::create(&path).unwrap();
    let a = UnixAddr::Path(dir.join("s.sock"));
    let l = UnixSeqpacketListener::bind(&a).unwrap();
    let mut child = util::spawn_role("write_through_fd", &[&a.to_string()]);
    let (conn, _) = l.accept_timeout(T).unwrap();
    conn.send_with_fds(b"file", &[file.as_fd()]).unwrap();
    drop(file);
    assert_eq!(conn.recv_timeout(T).unwrap().data, b"done");
    child.expect_success();
    assert_eq!(std::fs::read(&path).unwrap(), b"written by the child");
}

#[test]
fn several_fds_in_one_message() {
    let a = addr(&format!("@{}", util::unique("pipes")));
    let l = UnixSeqpacketListener::bind(&a).unwrap();
    let mut child = util::spawn_role("write_pipes", &[&a.to_string()]);
    let (conn, _) = l.accept_timeout(T).unwrap();
    let pipes: Vec<(std::io::PipeReader, std::io::PipeWriter)> =
        (0..3).map(|_| std::io::pipe().unwrap()).collect();
    let ws: Vec<BorrowedFd<'_>> = pipes.iter().map(|(_, w)| w.as_fd()).collect();
    conn.send_with_fds(b"pipes", &ws).unwrap();
    drop(ws);
    let readers: Vec<_> = pipes.into_iter().map(|(r, _w)| r).collect();
    assert_eq!(conn.recv_timeout(T).unwrap().data, b"done");
    child.expect_success();
    for (i, mut r) in readers.into_iter().enumerate() {
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, format!("pipe {i}"));
    }
}

#[test]
fn fds_over_a_stream() {
    let dir = util::TempDir::new("fdstream");
    let path = dir.join("o.txt");
    let file = std::fs::File::create(&path).unwrap();
    let a = addr(&format!("@{}", util::unique("fdstream")));
    let l = UnixListener::bind(&a).unwrap();
    let mut child = util::spawn_role("stream_fd", &[&a.to_string()]);
    let (mut conn, _) = l.accept_timeout(T).unwrap();
    assert_eq!(conn.send_with_fds(b"x", &[file.as_fd()]).unwrap(), 1);
    assert_eq!(conn.recv_frame_timeout(T).unwrap().unwrap(), b"done");
    child.expect_success();
    assert_eq!(std::fs::read(&path).unwrap(), b"via stream");
}

// The two checks below count this process's open descriptors, so each runs alone in a child
// process: other tests of this binary open descriptors in parallel threads.

#[test]
fn unused_fds_are_closed_and_too_many_refused() {
    util::spawn_role("unused_fds_check", &[]).expect_success();
}

#[test]
fn truncated_control_data_is_an_error_and_leaks_nothing() {
    util::spawn_role("truncated_check", &[]).expect_success();
}

fn unused_fds_check(_: &[String]) {
    let (a, b) = UnixDatagram::pair().unwrap();
    let files: Vec<std::fs::File> = (0..5)
        .map(|_| std::fs::File::open("/dev/null").unwrap())
        .collect();
    let before = fd_count();
    let fds: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
    a.send_with_fds(b"five", &fds).unwrap();
    let m = b.recv_timeout(T).unwrap();
    assert_eq!(m.fds.len(), 5);
    assert_eq!(fd_count(), before + 5);
    drop(m);
    assert_eq!(fd_count(), before, "received fds leaked");

    // Credentials come with datagrams.
    a.send(b"who").unwrap();
    let m = b.recv_timeout(T).unwrap();
    assert_eq!(m.credentials.unwrap().pid as u32, std::process::id());

    // More than SCM_MAX_FD: a named error before anything is sent.
    let many: Vec<BorrowedFd<'_>> = (0..=MAX_FDS).map(|i| files[i % 5].as_fd()).collect();
    match a.send_with_fds(b"many", &many) {
        Err(SocketError::TooManyFds { count, max }) => {
            assert_eq!((count, max), (MAX_FDS + 1, 253))
        }
        other => panic!("expected TooManyFds, got {other:?}"),
    }
    assert!(matches!(b.try_recv(), Err(SocketError::WouldBlock)));
}

fn truncated_check(_: &[String]) {
    let (a, b) = UnixSeqpacket::pair().unwrap();
    let files: Vec<OwnedFd> = (0..4)
        .map(|_| std::fs::File::open("/dev/null").unwrap().into())
        .collect();
    let before = fd_count();
    let fds: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
    a.send_with_fds(b"four", &fds).unwrap();
    match b.recv_with_max_fds(1, Wait::timeout(T)) {
        Err(SocketError::ControlTruncated { max_fds: 1, .. }) => {}
        other => panic!("expected ControlTruncated, got {other:?}"),
    }
    assert_eq!(fd_count(), before, "fds leaked after MSG_CTRUNC");
    // The socket stays usable.
    a.send(b"next").unwrap();
    assert_eq!(b.recv_timeout(T).unwrap().data, b"next");
}
