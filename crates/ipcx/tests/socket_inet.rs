//! TCP and UDP between processes: IPv4 and IPv6 round trips, refused connections, timeouts,
//! oversize datagrams, a killed peer, and the tcp/udp channel adapters.
mod util;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipcx::channel::{Endpoint, Error as ChanError, Options};
use ipcx::socket::{MAX_UDP_PAYLOAD_V4, SocketError, TcpListener, TcpStream, UdpSocket};

const T: Duration = Duration::from_secs(10);

#[test]
fn child_role() {
    util::role_main(&[
        ("tcp_echo", |a| {
            let mut s = TcpStream::connect_timeout(a[0].as_str(), T).unwrap();
            for m in [&b"one"[..], b"", &[5u8; 100_000]] {
                s.send_frame(m).unwrap();
                assert_eq!(s.recv_frame_timeout(T).unwrap().unwrap(), m);
            }
        }),
        ("udp_echo", |a| {
            let s = UdpSocket::connect(a[0].as_str()).unwrap();
            s.send_wait(b"ping", ipcx::Wait::Forever).unwrap();
            let (m, _) = s.recv_from_timeout(T).unwrap();
            assert_eq!(m, b"pong");
        }),
        ("tcp_then_hang", |a| {
            let mut s = TcpStream::connect(a[0].as_str()).unwrap();
            s.send_frame(b"first").unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }),
        ("chan_send", |a| {
            let mut tx = Endpoint::parse(&a[0])
                .unwrap()
                .sender(&Options::new())
                .unwrap();
            for i in 0..3 {
                tx.send(format!("m{i}").as_bytes()).unwrap();
            }
        }),
    ]);
}

fn v6_available() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[test]
fn tcp_round_trip_v4_and_v6() {
    for host in ["127.0.0.1:0", "[::1]:0"] {
        if host.starts_with('[') && !v6_available() {
            eprintln!("skipped IPv6: no ::1");
            continue;
        }
        let l = TcpListener::bind(host).unwrap();
        let a = l.local_addr().unwrap();
        let mut child = util::spawn_role("tcp_echo", &[&a.to_string()]);
        let (mut conn, peer) = l.accept_timeout(T).unwrap();
        assert_eq!(peer.ip(), a.ip());
        while let Some(m) = conn.recv_frame_timeout(T).unwrap() {
            conn.send_frame(&m).unwrap();
        }
        child.expect_success();
    }
}

#[test]
fn udp_round_trip_v4_and_v6() {
    for host in ["127.0.0.1:0", "[::1]:0"] {
        if host.starts_with('[') && !v6_available() {
            continue;
        }
        let s = UdpSocket::bind(host).unwrap();
        let a = s.local_addr().unwrap();
        let mut child = util::spawn_role("udp_echo", &[&a.to_string()]);
        let (m, from) = s.recv_from_timeout(T).unwrap();
        assert_eq!(m, b"ping");
        s.send_to(b"pong", from).unwrap();
        child.expect_success();
    }
}

#[test]
fn refused_and_timeouts() {
    // A port nobody listens on: refused fast, with a clear error.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t0 = Instant::now();
    let e = TcpStream::connect_timeout(("127.0.0.1", port), T).unwrap_err();
    assert!(matches!(e, SocketError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("refused"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5));

    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(matches!(l.try_accept(), Err(SocketError::WouldBlock)));
    assert!(matches!(
        util::waits_for(util::SHORT, || l.accept_timeout(util::SHORT)),
        Err(SocketError::Timeout)
    ));

    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(matches!(
        util::waits_for(util::SHORT, || u.recv_from_timeout(util::SHORT)),
        Err(SocketError::Timeout)
    ));
}

#[test]
fn oversize_udp_is_too_large() {
    let r = UdpSocket::bind("127.0.0.1:0").unwrap();
    let s = UdpSocket::connect(r.local_addr().unwrap()).unwrap();
    assert_eq!(s.max_message_len(), MAX_UDP_PAYLOAD_V4);
    let big = vec![0u8; MAX_UDP_PAYLOAD_V4 + 1];
    match s.send(&big) {
        Err(SocketError::TooLarge { len, max, .. }) => {
            assert_eq!((len, max), (MAX_UDP_PAYLOAD_V4 + 1, MAX_UDP_PAYLOAD_V4))
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let ok = vec![1u8; MAX_UDP_PAYLOAD_V4];
    s.send(&ok).unwrap();
    assert_eq!(r.recv_from_timeout(T).unwrap().0.len(), MAX_UDP_PAYLOAD_V4);

    let mut tx = Endpoint::parse(&format!("udp:{}", r.local_addr().unwrap()))
        .unwrap()
        .sender(&Options::new())
        .unwrap();
    assert_eq!(tx.max_message_len(), Some(MAX_UDP_PAYLOAD_V4));
    assert!(matches!(tx.send(&big), Err(ChanError::TooLarge { .. })));
}

#[test]
fn tcp_peer_killed() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    let mut child = util::spawn_role("tcp_then_hang", &[&a.to_string()]);
    let (mut conn, _) = l.accept_timeout(T).unwrap();
    assert_eq!(conn.recv_frame_timeout(T).unwrap().unwrap(), b"first");
    child.kill();
    let end = util::returns_soon(|| conn.recv_frame_timeout(T).unwrap());
    assert_eq!(end, None);
}

#[test]
fn tcp_and_udp_channels() {
    // tcp: a multi-peer receiver with two senders.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ep = format!("tcp:127.0.0.1:{port}");
    let mut rx = Endpoint::parse(&ep)
        .unwrap()
        .receiver(&Options::new())
        .unwrap();
    let mut c1 = util::spawn_role("chan_send", &[&ep]);
    let mut c2 = util::spawn_role("chan_send", &[&ep]);
    let mut got = Vec::new();
    while got.len() < 6 {
        let m = rx.recv_timeout(T).unwrap();
        let peer: SocketAddr = m.meta.peer.as_deref().unwrap().parse().unwrap();
        assert!(peer.ip().is_loopback());
        got.push(String::from_utf8(m.data).unwrap());
    }
    got.sort();
    assert_eq!(got, ["m0", "m0", "m1", "m1", "m2", "m2"]);
    c1.expect_success();
    c2.expect_success();

    // udp
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = u.local_addr().unwrap().port();
    drop(u);
    let ep = format!("udp:127.0.0.1:{port}");
    let mut rx = Endpoint::parse(&ep)
        .unwrap()
        .receiver(&Options::new())
        .unwrap();
    let mut c = util::spawn_role("chan_send", &[&ep]);
    for i in 0..3 {
        let m = rx.recv_timeout(T).unwrap();
        assert_eq!(m.data, format!("m{i}").as_bytes());
        assert!(m.meta.peer.is_some());
    }
    c.expect_success();

    // No tcp receiver: NotFound with a hint.
    drop(rx);
    let e = Endpoint::parse(&format!("tcp:127.0.0.1:{port}"))
        .unwrap()
        .sender(&Options::new())
        .unwrap_err();
    assert!(matches!(e, ChanError::NotFound { .. }), "{e}");
}
