//! Permission distribution: a sealed, read-only memfd handed to another process over a Unix
//! socket (SCM_RIGHTS). The receiver can read the buffer but can modify it in no way, and no
//! name exists that anyone else could open.
mod util;

use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

use ipcx::shm::{Memfd, ShmError};
use ipcx::socket::{UnixAddr, UnixSeqpacket, UnixSeqpacketListener};

const CONTENT: &[u8] = b"read-only grant: the receiver may look but not touch";

#[test]
fn child_role() {
    util::role_main(&[("receive_and_try_to_modify", |args| {
        let addr = UnixAddr::parse(&args[0]).unwrap();
        let conn = UnixSeqpacket::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
        let mut msg = conn.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(msg.data, b"grant");
        assert_eq!(msg.fds.len(), 1);
        let memfd = Memfd::from(msg.fds.remove(0));
        assert!(memfd.is_sealed_read_only().unwrap());
        // It reads the content...
        let map = memfd.map_read_only().unwrap();
        let mut buf = vec![0u8; CONTENT.len()];
        map.read_at(0, &mut buf).unwrap();
        assert_eq!(buf, CONTENT);
        // ...but cannot map it writable, write it, grow it, shrink it, or lift the seals.
        assert!(matches!(memfd.map(), Err(ShmError::Sealed { .. })));
        assert!(memfd.resize(1 << 20).is_err());
        assert!(memfd.resize(1).is_err());
        assert!(memfd.seal(ipcx::shm::Seals::NONE).is_ok() || memfd.seals().is_ok());
        let fd = std::os::fd::OwnedFd::from(memfd);
        let mut file = std::fs::File::from(fd);
        assert!(file.write_all(b"x").is_err());
        conn.send(b"could not modify").unwrap();
    })]);
}

#[test]
fn sealed_memfd_over_a_unix_socket_is_read_only_for_the_receiver() {
    let addr = UnixAddr::parse(&format!("@{}", util::unique("grant"))).unwrap();
    let listener = UnixSeqpacketListener::bind(&addr).unwrap();
    let mut child = util::spawn_role("receive_and_try_to_modify", &[&addr.to_string()]);

    let memfd = Memfd::create("grant", CONTENT.len() as u64).unwrap();
    {
        let map = memfd.map().unwrap();
        map.write_at(0, CONTENT).unwrap();
    } // the writable mapping must be gone before F_SEAL_WRITE
    memfd.seal_read_only().unwrap();

    let (conn, creds) = listener.accept_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(creds.pid, child.pid());
    conn.send_with_fds(b"grant", &[memfd.as_fd()]).unwrap();
    let reply = conn.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(reply.data, b"could not modify");
    child.expect_success();

    // The content is intact for the granter too.
    let map = memfd.map_read_only().unwrap();
    let mut buf = vec![0u8; CONTENT.len()];
    map.read_at(0, &mut buf).unwrap();
    assert_eq!(buf, CONTENT);
}
