//! `ipcx recv` on sockets against hostile and faulty peers, run as real processes: peers that
//! claim huge frames, flood the receiver with idle connections, run as another user, or leave
//! a socket file behind.
mod util;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use util::{
    Bg, NOBODY, TempDir, is_root, recv_in_background, rss_kib, run, run_as_nobody, stderr, stdout,
};

/// Connects a plain (std) stream to the socket file at `path`, waiting for the receiver to
/// bind it.
fn connect_when_ready(path: &str) -> UnixStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return s,
            Err(e) => {
                assert!(Instant::now() < deadline, "no receiver at {path}: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// A connection to a stream receiver: a socket file's path or a TCP port.
#[derive(Clone)]
enum Target {
    Unix(String),
    Tcp(u16),
}

impl Target {
    fn connect(&self) -> Box<dyn Write> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r: std::io::Result<Box<dyn Write>> = match self {
                Target::Unix(p) => UnixStream::connect(p).map(|s| Box::new(s) as Box<dyn Write>),
                Target::Tcp(port) => std::net::TcpStream::connect(("127.0.0.1", *port))
                    .map(|s| Box::new(s) as Box<dyn Write>),
            };
            match r {
                Ok(s) => return s,
                Err(e) => {
                    assert!(Instant::now() < deadline, "no receiver: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    fn endpoint(&self) -> String {
        match self {
            Target::Unix(p) => format!("unix:{p}"),
            Target::Tcp(port) => format!("tcp:127.0.0.1:{port}"),
        }
    }
}

#[test]
fn claimed_lengths_cost_the_receiver_only_what_arrives() {
    let dir = TempDir::new();
    for target in [
        Target::Unix(dir.join("claims.sock")),
        Target::Tcp(util::free_port(false)),
    ] {
        let ep = target.endpoint();
        let mut rx = Bg::spawn(&["recv", &ep, "--count", "4", "--timeout", "20s"]);
        let mut first = target.connect();
        first.write_all(&[0, 0, 0, 5]).unwrap();
        first.write_all(b"first").unwrap();
        assert_eq!(rx.read_stdout_line(), "first");
        let before = rss_kib(rx.pid());
        // Twenty peers each claim a 16 MiB frame, then send one byte of it. A good sender
        // after each step: once its message is out, the receiver has read what the peers sent
        // before.
        let mut hostile: Vec<Box<dyn Write>> = (0..20)
            .map(|_| {
                let mut s = target.connect();
                s.write_all(&(16u32 << 20).to_be_bytes()).unwrap();
                s
            })
            .collect();
        let sent = run(&["send", &ep, "good"]);
        assert!(sent.status.success(), "{}", stderr(&sent));
        assert_eq!(rx.read_stdout_line(), "good");
        for s in &mut hostile {
            s.write_all(b"x").unwrap();
        }
        let sent = run(&["send", &ep, "still good"]);
        assert!(sent.status.success(), "{}", stderr(&sent));
        assert_eq!(rx.read_stdout_line(), "still good");
        let after = rss_kib(rx.pid());
        eprintln!(
            "{ep}: receiver RSS {before} KiB before, {after} KiB with 20 peers claiming 16 MiB each"
        );
        assert!(
            after < before + 16 * 1024,
            "{ep}: the receiver grew from {before} KiB to {after} KiB"
        );
        drop(hostile);
        let sent = run(&["send", &ep, "last"]);
        assert!(sent.status.success(), "{}", stderr(&sent));
        let out = rx.wait(Duration::from_secs(30));
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "last\n");
    }
}

#[test]
fn the_peer_that_would_pass_the_buffer_cap_is_dropped() {
    let dir = TempDir::new();
    let path = dir.join("cap.sock");
    let ep = format!("unix:{path}");
    let mut rx = recv_in_background(
        &ep,
        "2",
        &["--max-buffered", "1m", "--max-frame", "4194304"],
    );
    // A peer sends 2 MiB of a 3 MiB frame: past the 1 MiB cap.
    let mut big = connect_when_ready(&path);
    big.write_all(&(3u32 << 20).to_be_bytes()).unwrap();
    // The receiver drops the connection part way: the rest of the write fails.
    let _ = big.write_all(&vec![7u8; 2 << 20]);
    let sent = run(&["send", &ep, "good"]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert_eq!(rx.read_stdout_line(), "good");
    let sent = run(&["send", &ep, "after"]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    let out = rx.wait(Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "after\n");
    let err = stderr(&out);
    assert!(
        err.contains("dropped") && err.contains("--max-buffered"),
        "{err}"
    );
}

#[test]
fn peers_of_another_user_are_refused_unless_allowed() {
    if !is_root() {
        eprintln!("skipped: needs root to run a sender as nobody");
        return;
    }
    let nobody = NOBODY.to_string();
    for kind in ["unix", "unix-dgram", "unix-seqpacket"] {
        let ep = format!("{kind}:@{}", util::unique("uid"));
        // Refused by default: only our own message comes out.
        let rx = Bg::spawn(&["recv", &ep, "--count", "1", "--timeout", "20s"]);
        // The hostile sender skips its own check of the receiver's uid.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let sent = run_as_nobody(&["send", &ep, "--allow-any-uid", "forged\nline"])
                .expect("spawn ipcx as nobody");
            if sent.status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "{kind}: {}", stderr(&sent));
            std::thread::sleep(Duration::from_millis(20));
        }
        let sent = run(&["send", &ep, "mine"]);
        assert!(sent.status.success(), "{kind}: {}", stderr(&sent));
        let out = rx.wait(Duration::from_secs(30));
        assert!(out.status.success(), "{kind}: {}", stderr(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "mine\n", "{kind}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("uid {nobody} is not trusted")),
            "{kind}: {err}"
        );

        // Allowed explicitly: nobody's message is delivered, with its uid.
        let rx = recv_in_background(&ep, "1", &["--json", "--allow-uid", &nobody]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let sent = run_as_nobody(&["send", &ep, "--allow-any-uid", "from nobody"])
                .expect("spawn ipcx as nobody");
            if sent.status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "{kind}: {}", stderr(&sent));
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = rx.wait(Duration::from_secs(30));
        assert!(out.status.success(), "{kind}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(v["text"], "from nobody", "{kind}");
        assert_eq!(v["uid"].as_u64(), Some(u64::from(NOBODY)), "{kind}");
    }
}

/// Starts `ipcx ARGS` in the background with at most `nofile` open descriptors.
fn spawn_with_fd_limit(nofile: u32, args: &[&str]) -> Bg {
    Bg(Some(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_ipcx"))
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn ipcx under ulimit -n"),
    ))
}

fn frame(msg: &[u8]) -> Vec<u8> {
    let mut f = (msg.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    f
}

#[test]
fn running_out_of_descriptors_pauses_accepting_and_keeps_serving() {
    let dir = TempDir::new();
    let path = dir.join("fds.sock");
    let ep = format!("unix:{path}");
    let mut rx = spawn_with_fd_limit(64, &["recv", &ep, "--count", "3", "--timeout", "20s"]);
    let mut good = connect_when_ready(&path);
    // More idle connections than the receiver has descriptors for.
    let idle: Vec<UnixStream> = (0..100).map(|_| connect_when_ready(&path)).collect();
    good.write_all(&frame(b"one")).unwrap();
    assert_eq!(rx.read_stdout_line(), "one");
    std::thread::sleep(Duration::from_millis(100));
    // Still serving the connected peer after running out.
    good.write_all(&frame(b"two")).unwrap();
    assert_eq!(rx.read_stdout_line(), "two");
    // Once the idle ones are gone, new senders are served.
    drop(idle);
    let sent = run(&["send", &ep, "--timeout", "10s", "three"]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    let out = rx.wait(Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "three\n");
    let err = stderr(&out);
    assert!(err.contains("out of resources while accepting"), "{err}");
    assert_eq!(err.matches("out of resources").count(), 1, "{err}");
}

#[test]
fn a_peer_stuck_inside_a_frame_is_dropped_and_a_quiet_one_is_not() {
    let dir = TempDir::new();
    let path = dir.join("idle.sock");
    let ep = format!("unix:{path}");
    let mut rx = recv_in_background(&ep, "2", &["--idle-timeout", "300ms"]);
    let mut quiet = connect_when_ready(&path);
    let mut stuck = connect_when_ready(&path);
    stuck.write_all(&[0, 0, 0, 100, b'x']).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    // The stuck peer was dropped: its connection is closed.
    let _ = stuck.write_all(b"more");
    let mut rest = Vec::new();
    stuck
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let closed = std::io::Read::read_to_end(&mut stuck, &mut rest);
    assert!(
        matches!(closed, Ok(0)) || closed.is_err(),
        "still open: {closed:?}"
    );
    // The quiet one is still served.
    quiet.write_all(&frame(b"after the pause")).unwrap();
    assert_eq!(rx.read_stdout_line(), "after the pause");
    quiet.write_all(&frame(b"end")).unwrap();
    let out = rx.wait(Duration::from_secs(30));
    let err = stderr(&out);
    assert!(err.contains("--idle-timeout"), "{err}");
    assert_eq!(err.matches("dropped").count(), 1, "{err}");
}

#[test]
fn past_max_connections_new_senders_wait_for_a_free_slot() {
    let dir = TempDir::new();
    let path = dir.join("max.sock");
    let ep = format!("unix:{path}");
    let mut rx = recv_in_background(&ep, "3", &["--max-connections", "2"]);
    let mut a = connect_when_ready(&path);
    let b = connect_when_ready(&path);
    a.write_all(&frame(b"from a")).unwrap();
    assert_eq!(rx.read_stdout_line(), "from a");
    // A third sender's connection waits in the backlog; its message comes once b leaves.
    let mut c = connect_when_ready(&path);
    c.write_all(&frame(b"from c")).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    a.write_all(&frame(b"from a again")).unwrap();
    assert_eq!(rx.read_stdout_line(), "from a again");
    drop(b);
    assert_eq!(rx.read_stdout_line(), "from c");
    drop((a, c));
    let out = rx.wait(Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Starts `ipcx ARGS` as `nobody` in the background.
fn spawn_as_nobody(args: &[&str]) -> Bg {
    use std::os::unix::process::CommandExt;
    Bg(Some(
        util::ipcx()
            .args(args)
            .uid(NOBODY)
            .gid(NOBODY)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn ipcx as nobody"),
    ))
}

/// A directory everyone may create files in (sticky, like /tmp).
fn shared_dir() -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

#[test]
fn another_users_socket_files_are_never_removed_nor_trusted() {
    if !is_root() {
        eprintln!("skipped: needs root to run a receiver as nobody");
        return;
    }
    let dir = shared_dir();
    let nobody = NOBODY;

    // A stale socket file of nobody's: refused and left in place.
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    std::os::unix::fs::chown(&stale, Some(nobody), Some(nobody)).unwrap();
    let out = run(&["recv", &format!("unix:{stale}"), "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("stale socket file of uid {nobody}")),
        "{}",
        stderr(&out)
    );
    let meta = std::fs::symlink_metadata(&stale).expect("the stale socket file is still there");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), nobody);

    // nobody's live receivers: our receiver refuses the path, and our sender refuses to talk
    // to them unless told to trust nobody.
    for kind in ["unix", "unix-seqpacket", "unix-dgram"] {
        let live = dir.join(&format!("{kind}.sock"));
        let ep = format!("{kind}:{live}");
        let rx = spawn_as_nobody(&[
            "recv",
            &ep,
            "--mode",
            "666",
            "--allow-uid",
            "0",
            "--count",
            "1",
            "--timeout",
            "20s",
        ]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::symlink_metadata(&live).is_err() {
            assert!(Instant::now() < deadline, "nobody's receiver did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = run(&["recv", &ep, "--timeout", "1s"]);
        assert_eq!(out.status.code(), Some(1), "{kind}: {}", stderr(&out));
        assert!(
            live_exists(&live),
            "{kind}: our receiver removed nobody's socket file"
        );
        let out = run(&["send", &ep, "secret"]);
        assert_eq!(out.status.code(), Some(1), "{kind}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("belongs to uid {nobody}")),
            "{kind}: {}",
            stderr(&out)
        );
        let out = run(&[
            "send",
            &ep,
            "--allow-uid",
            &nobody.to_string(),
            "hello nobody",
        ]);
        assert!(out.status.success(), "{kind}: {}", stderr(&out));
        let out = rx.wait(Duration::from_secs(30));
        assert!(out.status.success(), "{kind}: {}", stderr(&out));
        assert_eq!(stdout(&out), "hello nobody\n", "{kind}");
    }
}

fn live_exists(p: &str) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

#[test]
fn sending_to_a_path_that_is_not_a_socket_fails_at_once() {
    let dir = TempDir::new();
    let file = dir.join("plain");
    std::fs::write(&file, b"not a socket").unwrap();
    for kind in ["unix", "unix-dgram", "unix-seqpacket"] {
        let ep = format!("{kind}:{file}");
        for timeout in [None, Some("5s")] {
            let mut args = vec!["send", &ep];
            if let Some(t) = timeout {
                args.extend(["--timeout", t]);
            }
            args.push("msg");
            let t0 = Instant::now();
            let out = run(&args);
            assert_eq!(out.status.code(), Some(1), "{kind}: {}", stderr(&out));
            assert!(stderr(&out).contains("not a socket"), "{}", stderr(&out));
            assert!(
                t0.elapsed() < Duration::from_secs(4),
                "{kind} {timeout:?}: waited {:?}",
                t0.elapsed()
            );
        }
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"not a socket");
}

#[test]
fn udp_recv_counts_what_it_received_and_help_says_udp_loses() {
    let ep = format!("udp:127.0.0.1:{}", util::free_port(true));
    let rx = Bg::spawn(&["recv", &ep, "--count", "3", "--timeout", "20s"]);
    // UDP has no connection: resend until the receiver is there and counts all three.
    let out = util::send_when_ready(&["send", &ep, "one", "two", "three"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rx = Some(rx);
    // The first batch may have gone out before the receiver bound: send again until it has 3.
    let out = loop {
        std::thread::sleep(Duration::from_millis(50));
        let done = rx
            .as_mut()
            .and_then(|b| b.0.as_mut())
            .and_then(|c| c.try_wait().ok().flatten())
            .is_some();
        if done || Instant::now() > deadline {
            break rx.take().unwrap().wait(Duration::from_secs(30));
        }
        let _ = run(&["send", &ep, "again"]);
    };
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 3);
    assert!(
        stderr(&out).contains("received 3 datagram(s)"),
        "{}",
        stderr(&out)
    );
    // Timing out still reports the count.
    let ep = format!("udp:127.0.0.1:{}", util::free_port(true));
    let out = run(&["recv", &ep, "--timeout", "200ms"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("received 0 datagram(s)"),
        "{}",
        stderr(&out)
    );
    for cmd in ["send", "recv"] {
        let help = stdout(&run(&[cmd, "--help"]));
        assert!(
            help.contains("udp") && help.contains("lost"),
            "{cmd}: {help}"
        );
    }
}
