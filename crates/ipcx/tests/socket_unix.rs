//! Unix domain sockets between processes: stream, seqpacket and datagram echo on paths and
//! abstract names, credentials, socket-file handling, timeouts, dead peers, channel adapters.
mod util;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use ipcx::channel::{Endpoint, Error as ChanError, Options};
use ipcx::socket::{
    SocketError, UnixAddr, UnixDatagram, UnixListener, UnixSeqpacket, UnixSeqpacketListener,
    UnixStream,
};
use ipcx::trust::Trust;

const T: Duration = Duration::from_secs(10);

fn addr(s: &str) -> UnixAddr {
    UnixAddr::parse(s).unwrap()
}

fn abstract_name(tag: &str) -> UnixAddr {
    addr(&format!("@{}", util::unique(tag)))
}

#[test]
fn child_role() {
    util::role_main(&[
        ("stream_echo", |a| {
            let mut s = UnixStream::connect(&addr(&a[0])).unwrap();
            for m in [&b"one"[..], b"", b"three"] {
                s.send_frame(m).unwrap();
                assert_eq!(s.recv_frame_timeout(T).unwrap().unwrap(), m);
            }
        }),
        ("seq_echo", |a| {
            let s = UnixSeqpacket::connect(&addr(&a[0])).unwrap();
            for m in [&b"alpha"[..], &[7u8; 5000]] {
                s.send(m).unwrap();
                assert_eq!(s.recv_timeout(T).unwrap().data, m);
            }
        }),
        ("dgram_echo", |a| {
            let me = UnixDatagram::bind(&addr(&a[1])).unwrap();
            me.send_to(b"ping", &addr(&a[0])).unwrap();
            let reply = me.recv_timeout(T).unwrap();
            assert_eq!(reply.data, b"pong");
            assert_eq!(
                reply.credentials.unwrap().pid as u32,
                std::os::unix::process::parent_id()
            );
        }),
        ("stream_hello", |a| {
            let mut s = UnixStream::connect(&addr(&a[0])).unwrap();
            s.send_frame(b"hello").unwrap();
            // Wait for the parent to close.
            let _ = s.recv_frame_timeout(T);
        }),
        ("stream_try_hello", |a| {
            // The listener may already have refused (closed) the connection.
            let mut s = UnixStream::connect(&addr(&a[0])).unwrap();
            let _ = s.send_frame(b"hello");
        }),
        ("seq_send", |a| {
            let s = UnixSeqpacket::connect(&addr(&a[0])).unwrap();
            let _ = s.send(b"forged");
        }),
        ("dgram_send", |a| {
            let s = UnixDatagram::unbound().unwrap();
            s.send_to(b"forged", &addr(&a[0])).unwrap();
        }),
        ("stream_expect_denied", |a| {
            match UnixStream::connect(&addr(&a[0])) {
                Err(SocketError::PermissionDenied { .. }) => {}
                other => panic!("expected PermissionDenied, got {other:?}"),
            }
        }),
        ("stream_then_hang", |a| {
            let mut s = UnixStream::connect(&addr(&a[0])).unwrap();
            s.send_frame(b"first").unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }),
        ("chan_good", |a| {
            let ep = Endpoint::parse(&a[0]).unwrap();
            let mut tx = ep.sender(&Options::new()).unwrap();
            for i in 0..5 {
                tx.send(format!("good {i}").as_bytes()).unwrap();
            }
        }),
        ("chan_oversize", |a| {
            let mut s = UnixStream::connect(&addr(&a[0])).unwrap();
            s.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }),
        ("chan_truncated", |a| {
            let mut s = UnixStream::connect(&addr(&a[0])).unwrap();
            s.write_all(&[0, 0, 0, 100]).unwrap();
            s.write_all(&[9; 10]).unwrap();
        }),
        ("chan_dgram", |a| {
            let ep = Endpoint::parse(&a[0]).unwrap();
            let mut tx = ep.sender(&Options::new()).unwrap();
            tx.send(b"datagram").unwrap();
        }),
    ]);
}

#[test]
fn stream_echo_on_path_and_abstract_name() {
    let dir = util::TempDir::new("stream");
    for a in [UnixAddr::Path(dir.join("s.sock")), abstract_name("stream")] {
        let l = UnixListener::bind(&a).unwrap();
        let mut child = util::spawn_role("stream_echo", &[&a.to_string()]);
        let (mut conn, who) = l.accept_timeout(T).unwrap();
        assert_eq!(who.pid, child.pid());
        assert_eq!(who.uid, rustix_uid());
        while let Some(m) = conn.recv_frame_timeout(T).unwrap() {
            conn.send_frame(&m).unwrap();
        }
        child.expect_success();
    }
}

#[test]
fn seqpacket_echo_on_path_and_abstract_name() {
    let dir = util::TempDir::new("seq");
    for a in [UnixAddr::Path(dir.join("q.sock")), abstract_name("seq")] {
        let l = UnixSeqpacketListener::bind(&a).unwrap();
        let mut child = util::spawn_role("seq_echo", &[&a.to_string()]);
        let (conn, who) = l.accept_timeout(T).unwrap();
        assert_eq!(who.pid, child.pid());
        loop {
            match conn.recv_timeout(T) {
                Ok(m) => {
                    assert_eq!(m.credentials.unwrap().pid, child.pid());
                    conn.send(&m.data).unwrap();
                }
                Err(e) => {
                    assert!(e.is_peer_gone(), "{e}");
                    break;
                }
            }
        }
        child.expect_success();
    }
}

#[test]
fn datagram_echo_with_credentials() {
    let dir = util::TempDir::new("dgram");
    for (server, client) in [
        (
            UnixAddr::Path(dir.join("d.sock")),
            UnixAddr::Path(dir.join("c.sock")),
        ),
        (abstract_name("dsrv"), abstract_name("dcli")),
    ] {
        let s = UnixDatagram::bind(&server).unwrap();
        let mut child = util::spawn_role("dgram_echo", &[&server.to_string(), &client.to_string()]);
        let m = s.recv_timeout(T).unwrap();
        assert_eq!(m.data, b"ping");
        let c = m.credentials.expect("SCM_CREDENTIALS");
        assert_eq!(c.pid, child.pid());
        assert_eq!(c.uid, rustix_uid());
        assert_eq!(m.from.as_ref(), Some(&client));
        s.send_to(b"pong", &client).unwrap();
        child.expect_success();
    }
}

fn rustix_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap()
}

#[test]
fn credentials_of_a_child_running_as_nobody() {
    if !util::is_root() {
        eprintln!("skipped: needs root to start a child as nobody");
        return;
    }
    // An abstract name: no file permissions in the way; this listener trusts nobody's uid.
    let a = abstract_name("nobody");
    let mut l = UnixListener::bind(&a).unwrap();
    l.set_trust(Trust::own_user().allow_uid(util::NOBODY));
    let mut child = util::spawn_role_as_nobody("stream_hello", &[&a.to_string()]);
    let (mut conn, who) = l.accept_timeout(T).unwrap();
    assert_eq!(who.uid, util::NOBODY);
    assert_eq!(who.gid, util::NOBODY);
    assert_eq!(who.pid, child.pid());
    assert_eq!(conn.recv_frame_timeout(T).unwrap().unwrap(), b"hello");
    drop(conn);
    child.expect_success();

    // A socket file made 0666 lets nobody connect; the default 0600 does not.
    let dir = util::TempDir::new("nobody");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let open = UnixAddr::Path(dir.join("open.sock"));
    let mut l = UnixListener::bind_with_mode(&open, 0o666).unwrap();
    l.set_trust(Trust::any_user());
    let mut child = util::spawn_role_as_nobody("stream_hello", &[&open.to_string()]);
    let (mut conn, who) = l.accept_timeout(T).unwrap();
    assert_eq!(who.uid, util::NOBODY);
    assert_eq!(conn.recv_frame_timeout(T).unwrap().unwrap(), b"hello");
    drop(conn);
    child.expect_success();

    let closed = UnixAddr::Path(dir.join("closed.sock"));
    let _l = UnixListener::bind(&closed).unwrap();
    let mut child = util::spawn_role_as_nobody("stream_expect_denied", &[&closed.to_string()]);
    child.expect_success();
}

#[test]
fn listeners_and_datagram_sockets_refuse_another_user_by_default() {
    if !util::is_root() {
        eprintln!("skipped: needs root to start a child as nobody");
        return;
    }
    // Stream and seqpacket: the connection is closed at accept, and the accept says who.
    let a = abstract_name("refuse");
    let l = UnixListener::bind(&a).unwrap();
    let mut child = util::spawn_role_as_nobody("stream_try_hello", &[&a.to_string()]);
    match l.accept_timeout(T) {
        Err(SocketError::ForeignPeer { uid, pid, .. }) => {
            assert_eq!(uid, util::NOBODY);
            assert_eq!(pid, child.pid());
        }
        other => panic!("expected ForeignPeer, got {other:?}"),
    }
    child.expect_success();
    let s = abstract_name("refuse-seq");
    let l = UnixSeqpacketListener::bind(&s).unwrap();
    let mut child = util::spawn_role_as_nobody("seq_send", &[&s.to_string()]);
    assert!(matches!(
        l.accept_timeout(T),
        Err(SocketError::ForeignPeer {
            uid: util::NOBODY,
            ..
        })
    ));
    child.expect_success();
    // Datagrams: discarded, with a ForeignPeer error; our own still arrive.
    let d = abstract_name("refuse-dgram");
    let rx = UnixDatagram::bind(&d).unwrap();
    util::spawn_role_as_nobody("dgram_send", &[&d.to_string()]).expect_success();
    assert!(matches!(
        rx.recv_timeout(T),
        Err(SocketError::ForeignPeer {
            uid: util::NOBODY,
            ..
        })
    ));
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"own", &d)
        .unwrap();
    assert_eq!(rx.recv_timeout(T).unwrap().data, b"own");
}

#[test]
fn socket_file_has_mode_0600_and_is_removed_on_drop() {
    let dir = util::TempDir::new("mode");
    let p = dir.join("m.sock");
    let l = UnixListener::bind(&UnixAddr::Path(p.clone())).unwrap();
    let meta = std::fs::symlink_metadata(&p).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    drop(l);
    assert!(!p.exists(), "socket file left behind");

    let d = UnixDatagram::bind_with_mode(&UnixAddr::Path(p.clone()), 0o640).unwrap();
    assert_eq!(
        std::fs::symlink_metadata(&p).unwrap().permissions().mode() & 0o777,
        0o640
    );
    drop(d);
    assert!(!p.exists());

    // Replaced by someone else: not ours any more, left alone.
    let l = UnixSeqpacketListener::bind(&UnixAddr::Path(p.clone())).unwrap();
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, b"other").unwrap();
    drop(l);
    assert_eq!(std::fs::read(&p).unwrap(), b"other");
}

#[test]
fn stale_socket_is_reclaimed_and_live_one_refused() {
    let dir = util::TempDir::new("stale");
    let a = UnixAddr::Path(dir.join("s.sock"));
    let mut l = UnixListener::bind(&a).unwrap();
    // Live: refused with a named error.
    match UnixListener::bind(&a) {
        Err(SocketError::AddrInUse { .. }) => {}
        other => panic!("expected AddrInUse, got {other:?}"),
    }
    match UnixSeqpacketListener::bind(&a) {
        Err(SocketError::AddrInUse { .. }) => {}
        other => panic!("expected AddrInUse, got {other:?}"),
    }
    // Connecting to a stale file is refused quickly with NotFound.
    l.persist();
    drop(l);
    assert!(dir.join("s.sock").exists());
    let t0 = Instant::now();
    match UnixStream::connect_timeout(&a, T) {
        Err(SocketError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Stale: reclaimed.
    let l = UnixListener::bind(&a).unwrap();
    let mut child = util::spawn_role("stream_hello", &[&a.to_string()]);
    let (mut conn, _) = l.accept_timeout(T).unwrap();
    assert_eq!(conn.recv_frame_timeout(T).unwrap().unwrap(), b"hello");
    drop(conn);
    child.expect_success();

    // Abstract names in use.
    let ab = abstract_name("inuse");
    let _held = UnixDatagram::bind(&ab).unwrap();
    assert!(matches!(
        UnixDatagram::bind(&ab),
        Err(SocketError::AddrInUse { .. })
    ));
}

#[test]
fn non_socket_and_symlink_are_left_untouched() {
    let dir = util::TempDir::new("nonsock");
    let file = dir.join("plain");
    std::fs::write(&file, b"keep me").unwrap();
    for bind in [
        |a: &UnixAddr| UnixListener::bind(a).map(drop),
        |a: &UnixAddr| UnixDatagram::bind(a).map(drop),
        |a: &UnixAddr| UnixSeqpacketListener::bind(a).map(drop),
    ] {
        match bind(&UnixAddr::Path(file.clone())) {
            Err(SocketError::NotASocket { .. }) => {}
            other => panic!("expected NotASocket, got {other:?}"),
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    }
    let e = UnixListener::bind(&UnixAddr::Path(file.clone())).unwrap_err();
    assert!(e.to_string().contains("left untouched"), "{e}");

    // A symlink to a stale socket: not followed, neither removed nor its target.
    let target = dir.join("stale.sock");
    let mut l = UnixListener::bind(&UnixAddr::Path(target.clone())).unwrap();
    l.persist();
    drop(l);
    let link = dir.join("link.sock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    match UnixListener::bind(&UnixAddr::Path(link.clone())) {
        Err(SocketError::NotASocket { .. }) => {}
        other => panic!("expected NotASocket, got {other:?}"),
    }
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::symlink_metadata(&target).is_ok());
    assert!(ipcx::socket::remove_socket_file(&link).is_err());
    assert!(std::fs::symlink_metadata(&link).is_ok());
    ipcx::socket::remove_socket_file(&target).unwrap();
    assert!(ipcx::socket::remove_socket_file(&file).is_err());
}

#[test]
fn missing_peer_and_timeouts() {
    let dir = util::TempDir::new("timeouts");
    let missing = UnixAddr::Path(dir.join("none.sock"));
    let t0 = Instant::now();
    assert!(matches!(
        UnixStream::connect(&missing),
        Err(SocketError::NotFound { .. })
    ));
    assert!(matches!(
        UnixSeqpacket::connect(&abstract_name("none")),
        Err(SocketError::NotFound { .. })
    ));
    assert!(t0.elapsed() < Duration::from_secs(5));

    let l = UnixListener::bind(&abstract_name("acc")).unwrap();
    assert!(matches!(l.try_accept(), Err(SocketError::WouldBlock)));
    assert!(matches!(
        util::waits_for(util::SHORT, || l.accept_timeout(util::SHORT)),
        Err(SocketError::Timeout)
    ));

    let (a, _b) = UnixSeqpacket::pair().unwrap();
    assert!(matches!(a.try_recv(), Err(SocketError::WouldBlock)));
    assert!(matches!(
        util::waits_for(util::SHORT, || a.recv_timeout(util::SHORT)),
        Err(SocketError::Timeout)
    ));

    // A full socket: try_send says WouldBlock, a timed send times out.
    let (a, _b) = UnixDatagram::pair().unwrap();
    let mut n = 0;
    while a.try_send(&[0u8; 1024]).is_ok() {
        n += 1;
        assert!(n < 1_000_000);
    }
    assert!(matches!(a.try_send(b"x"), Err(SocketError::WouldBlock)));
    assert!(matches!(
        util::waits_for(util::SHORT, || a.send_timeout(b"x", util::SHORT)),
        Err(SocketError::Timeout)
    ));
}

#[test]
fn oversize_datagram_is_too_large() {
    let (a, _b) = UnixDatagram::pair().unwrap();
    let max = a.max_message_len().unwrap();
    let big = vec![0u8; max + 100_000];
    match a.send(&big) {
        Err(SocketError::TooLarge { len, .. }) => assert_eq!(len, big.len()),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn peer_killed_mid_conversation() {
    let a = abstract_name("kill");
    let l = UnixListener::bind(&a).unwrap();
    let mut child = util::spawn_role("stream_then_hang", &[&a.to_string()]);
    let (mut conn, _) = l.accept_timeout(T).unwrap();
    assert_eq!(conn.recv_frame_timeout(T).unwrap().unwrap(), b"first");
    child.kill();
    let end = util::returns_soon(|| conn.recv_frame_timeout(T).unwrap());
    assert_eq!(end, None);
    // Sending to the dead peer: PeerGone, no SIGPIPE.
    let mut gone = false;
    for _ in 0..10 {
        match conn.send_frame_timeout(b"anyone?", T) {
            Ok(()) => continue,
            Err(e) => {
                assert!(e.is_peer_gone(), "{e}");
                gone = true;
                break;
            }
        }
    }
    assert!(gone);

    // Seqpacket: the survivor gets PeerGone.
    let (s, peer) = UnixSeqpacket::pair().unwrap();
    drop(peer);
    assert!(s.recv_timeout(T).unwrap_err().is_peer_gone());
    assert!(s.send(b"x").unwrap_err().is_peer_gone());
}

#[test]
fn channel_receiver_serves_many_peers_and_reports_bad_ones() {
    let dir = util::TempDir::new("chan");
    let path = dir.join("c.sock");
    let ep = format!("unix:{}", path.display());
    let mut rx = Endpoint::parse(&ep)
        .unwrap()
        .receiver(&Options::new().max_frame_len(1 << 16))
        .unwrap();
    let mut good = util::spawn_role("chan_good", &[&ep]);
    let mut over = util::spawn_role("chan_oversize", &[&path.display().to_string()]);
    let mut trunc = util::spawn_role("chan_truncated", &[&path.display().to_string()]);
    let mut msgs = Vec::new();
    let (mut too_large, mut truncated) = (0, 0);
    let deadline = Instant::now() + T;
    while (msgs.len() < 5 || too_large < 1 || truncated < 1) && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => {
                assert_eq!(m.meta.pid, Some(good.pid()));
                assert_eq!(m.meta.uid, Some(rustix_uid()));
                msgs.push(String::from_utf8(m.data).unwrap());
            }
            Err(ChanError::Timeout) => {}
            Err(e @ ChanError::FrameTooLarge { .. }) => {
                assert!(e.is_recoverable());
                assert!(
                    e.to_string().contains(&format!("pid {}", over.pid())),
                    "{e}"
                );
                too_large += 1;
            }
            Err(e @ ChanError::TruncatedFrame { .. }) => {
                assert!(e.is_recoverable());
                assert!(
                    e.to_string().contains(&format!("pid {}", trunc.pid())),
                    "{e}"
                );
                truncated += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let want: Vec<String> = (0..5).map(|i| format!("good {i}")).collect();
    assert_eq!(msgs, want);
    assert_eq!((too_large, truncated), (1, 1));
    good.expect_success();
    over.expect_success();
    trunc.expect_success();
    assert!(matches!(rx.try_recv(), Err(ChanError::WouldBlock)));
    drop(rx);
    assert!(!path.exists(), "receiver left its socket file");
}

#[test]
fn channel_seqpacket_and_datagram() {
    for scheme in ["unix-seqpacket", "unix-dgram"] {
        let ep = format!("{scheme}:@{}", util::unique("chan"));
        let mut rx = Endpoint::parse(&ep)
            .unwrap()
            .receiver(&Options::new())
            .unwrap();
        let mut child = util::spawn_role(
            if scheme == "unix-dgram" {
                "chan_dgram"
            } else {
                "chan_good"
            },
            &[&ep],
        );
        let m = rx.recv_timeout(T).unwrap();
        assert_eq!(m.meta.pid, Some(child.pid()));
        assert_eq!(m.meta.uid, Some(rustix_uid()));
        child.expect_success();
    }
}

#[test]
fn channel_sender_without_receiver() {
    let dir = util::TempDir::new("nochan");
    let ep = format!("unix:{}", dir.join("none.sock").display());
    let e = Endpoint::parse(&ep)
        .unwrap()
        .sender(&Options::new())
        .unwrap_err();
    assert!(matches!(e, ChanError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("start `ipcx recv` first"), "{e}");
    let t0 = Instant::now();
    let e = Endpoint::parse(&ep)
        .unwrap()
        .sender(&Options::new().connect_timeout(Duration::from_millis(100)))
        .unwrap_err();
    assert!(matches!(e, ChanError::Timeout), "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(100));
    // A receiver already bound there: AlreadyExists.
    let p = format!("unix:@{}", util::unique("dup"));
    let _rx = Endpoint::parse(&p)
        .unwrap()
        .receiver(&Options::new())
        .unwrap();
    assert!(matches!(
        Endpoint::parse(&p).unwrap().receiver(&Options::new()),
        Err(ChanError::AlreadyExists { .. })
    ));
}

#[cfg(feature = "tokio")]
#[test]
fn async_round_trips_with_credentials() {
    use ipcx::socket::tokio::{
        AsyncFramed, AsyncUnixDatagram, AsyncUnixListener, AsyncUnixSeqpacketListener,
        connect_unix, peer_credentials,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(T, async {
            // Stream: a sync child echoes through an async server.
            let a = abstract_name("astream");
            let l = AsyncUnixListener::bind(&a).unwrap();
            let mut child = util::spawn_role("stream_echo", &[&a.to_string()]);
            let (s, who) = l.accept().await.unwrap();
            assert_eq!(who.pid, child.pid());
            assert_eq!(peer_credentials(&s).unwrap().pid, child.pid());
            let mut conn = AsyncFramed::new(s);
            while let Some(m) = conn.recv_frame().await.unwrap() {
                conn.send_frame(&m).await.unwrap();
            }
            child.expect_success();

            // Async client to a sync-style async server in this process.
            let a2 = abstract_name("astream2");
            let l2 = AsyncUnixListener::bind(&a2).unwrap();
            let c = connect_unix(&a2).await.unwrap();
            let (s2, _) = l2.accept().await.unwrap();
            let (mut c, mut s2) = (AsyncFramed::new(c), AsyncFramed::new(s2));
            c.send_frame(b"async").await.unwrap();
            assert_eq!(s2.recv_frame().await.unwrap().unwrap(), b"async");

            // Seqpacket with a child.
            let q = abstract_name("aseq");
            let l = AsyncUnixSeqpacketListener::bind(&q).unwrap();
            let mut child = util::spawn_role("seq_echo", &[&q.to_string()]);
            let (conn, who) = l.accept().await.unwrap();
            assert_eq!(who.pid, child.pid());
            while let Ok(m) = conn.recv().await {
                conn.send(&m.data).await.unwrap();
            }
            child.expect_success();

            // Datagram: credentials per datagram.
            let d = abstract_name("adgram");
            let srv = AsyncUnixDatagram::bind(&d).unwrap();
            let cli = AsyncUnixDatagram::new(UnixDatagram::unbound().unwrap()).unwrap();
            cli.send_to(b"hi", &d).await.unwrap();
            let m = srv.recv().await.unwrap();
            assert_eq!(m.data, b"hi");
            assert_eq!(m.credentials.unwrap().pid as u32, std::process::id());
        })
        .await
        .expect("async test timed out");
    });
}
