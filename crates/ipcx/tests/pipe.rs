//! Anonymous pipes between real processes: stdin/stdout and inherited descriptors, duplex echo,
//! many-writer atomicity, full pipes, dead peers, framing errors, async.
mod util;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipcx::pipe::{
    self, LargeFrames, MAX_ATOMIC_MESSAGE, PIPE_BUF, PipeError, PipeReader, PipeWriter,
};
use ipcx::wait::Wait;
use util::checked::{check_msg, make_msg};

const BOUND: Duration = Duration::from_secs(20);

#[test]
fn child_role() {
    util::role_main(&[
        ("stdin_reader", stdin_reader),
        ("fd_writer", fd_writer),
        ("atomic_writer", atomic_writer),
        ("wait_then_drain", wait_then_drain),
        ("write_forever", write_forever),
        ("raw_writer", raw_writer),
        ("slow_large_reader", slow_large_reader),
    ]);
}

/// Waits a while before reading (so the writer's deadline passes mid-frame), then checks one
/// large frame arrived whole.
fn slow_large_reader(args: &[String]) {
    let mut rx = PipeReader::from_inherited(3).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let len: usize = args[0].parse().unwrap();
    let m = rx.recv_timeout(BOUND).unwrap();
    assert_eq!(m.len(), len);
    assert!(m.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
}

fn msg_len(id: u32, seq: u32, max: usize) -> usize {
    16 + (seq as usize * 997 + id as usize * 131) % (max - 16)
}

// ---------------------------------------------------------------------------------------------
// Child roles.

/// Reads `n` framed messages "msg <i>" from stdin, then expects the end of the stream.
fn stdin_reader(args: &[String]) {
    let n: usize = args[0].parse().unwrap();
    let mut rx = PipeReader::from_inherited(0).unwrap();
    for i in 0..n {
        assert_eq!(
            rx.recv_timeout(BOUND).unwrap(),
            format!("msg {i}").into_bytes()
        );
    }
    assert!(matches!(
        rx.recv_timeout(BOUND),
        Err(PipeError::PeerGone { .. })
    ));
}

/// Writes `n` framed messages "from child <i>" to descriptor `fd`.
fn fd_writer(args: &[String]) {
    let fd: i32 = args[0].parse().unwrap();
    let n: usize = args[1].parse().unwrap();
    let mut tx = PipeWriter::from_inherited(fd).unwrap();
    for i in 0..n {
        tx.send(format!("from child {i}").as_bytes()).unwrap();
    }
}

/// Writes `n` checksummed messages of varying size (up to one atomic write) to `fd`.
fn atomic_writer(args: &[String]) {
    let fd: i32 = args[0].parse().unwrap();
    let id: u32 = args[1].parse().unwrap();
    let n: u32 = args[2].parse().unwrap();
    let mut tx = PipeWriter::from_inherited(fd).unwrap();
    for seq in 0..n {
        tx.send(&make_msg(id, seq, msg_len(id, seq, MAX_ATOMIC_MESSAGE)))
            .unwrap();
    }
}

/// Waits for one byte on descriptor 3, then reads sequence-numbered frames from stdin until
/// the end of the stream, checking the order.
fn wait_then_drain(_: &[String]) {
    let mut go = PipeReader::from_inherited(3).unwrap();
    let mut b = [0u8; 1];
    go.read_exact(&mut b).unwrap();
    let mut rx = PipeReader::from_inherited(0).unwrap();
    let mut expect = 0u32;
    loop {
        match rx.recv_timeout(BOUND) {
            Ok(m) => {
                assert_eq!(m[..4], expect.to_be_bytes());
                expect += 1;
            }
            Err(PipeError::PeerGone { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(expect > 0);
}

/// Writes messages to `fd` forever (until killed).
fn write_forever(args: &[String]) {
    let fd: i32 = args[0].parse().unwrap();
    let mut tx = PipeWriter::from_inherited(fd).unwrap();
    let mut i = 0u64;
    loop {
        tx.send(&i.to_be_bytes()).unwrap();
        i += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Writes the hex-encoded bytes of args[1] raw (no framing) to `fd`, then exits.
fn raw_writer(args: &[String]) {
    let fd: i32 = args[0].parse().unwrap();
    let bytes: Vec<u8> = (0..args[1].len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&args[1][i..i + 2], 16).unwrap())
        .collect();
    let mut tx = PipeWriter::from_inherited(fd).unwrap();
    tx.write_all(&bytes).unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Spawns `role` with `end` as descriptor 3; the parent's copy is closed once spawned.
fn spawn_with_fd3(
    role: &str,
    args: &[&str],
    end: impl Into<std::os::fd::OwnedFd>,
) -> util::ChildGuard {
    let mut cmd = util::role_command(role, args);
    pipe::pass_to_child(&mut cmd, end, 3).unwrap();
    let child = cmd.spawn().expect("spawn");
    drop(cmd);
    util::ChildGuard(Some(child))
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn parent_to_child_via_stdin() {
    let (rx, mut tx) = pipe::pipe().unwrap();
    let mut cmd = util::role_command("stdin_reader", &["50"]);
    cmd.stdin(Stdio::from(rx));
    let mut child = util::ChildGuard(Some(cmd.spawn().unwrap()));
    drop(cmd);
    for i in 0..50 {
        tx.send(format!("msg {i}").as_bytes()).unwrap();
    }
    drop(tx);
    child.expect_success();
}

#[test]
fn child_to_parent_via_inherited_fd() {
    let (mut rx, tx) = pipe::pipe().unwrap();
    let mut child = spawn_with_fd3("fd_writer", &["3", "40"], tx);
    for i in 0..40 {
        assert_eq!(
            rx.recv_timeout(BOUND).unwrap(),
            format!("from child {i}").into_bytes()
        );
    }
    assert!(matches!(
        rx.recv_timeout(BOUND),
        Err(PipeError::PeerGone { .. })
    ));
    child.expect_success();
}

#[test]
fn duplex_echo_through_cat() {
    let (mut ours, theirs) = pipe::duplex().unwrap();
    let (stdin, stdout) = theirs.into_stdio();
    let mut cat = util::ChildGuard(Some(
        Command::new("cat")
            .stdin(stdin)
            .stdout(stdout)
            .spawn()
            .unwrap(),
    ));
    for i in 0..20 {
        let m = format!("echo {i}");
        ours.send(m.as_bytes()).unwrap();
        assert_eq!(ours.recv_wait(Wait::timeout(BOUND)).unwrap(), m.as_bytes());
    }
    // Raw bytes too.
    ours.write_all(b"raw bytes").unwrap();
    let mut buf = [0u8; 9];
    ours.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"raw bytes");
    // Closing our writer ends cat, which closes our reader's peer.
    let (mut r, w) = ours.into_parts();
    drop(w);
    assert!(matches!(
        r.recv_timeout(BOUND),
        Err(PipeError::PeerGone { .. })
    ));
    assert!(cat.wait_timeout(BOUND).success());
}

#[test]
fn large_frame_single_writer_through_cat() {
    let (ours, theirs) = pipe::duplex().unwrap();
    let (stdin, stdout) = theirs.into_stdio();
    let _cat = util::ChildGuard(Some(
        Command::new("cat")
            .stdin(stdin)
            .stdout(stdout)
            .spawn()
            .unwrap(),
    ));
    let (mut r, w) = ours.into_parts();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    // Refused by default: it could interleave with other writers.
    let mut w2 = w.try_clone().unwrap();
    let err = w2.send(&big).unwrap_err();
    assert!(
        matches!(
            err,
            PipeError::NotAtomic {
                max: MAX_ATOMIC_MESSAGE,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("PIPE_BUF"), "{err}");
    drop(w2);
    let mut w = w.with_large_frames(LargeFrames::SingleWriter);
    let expected = big.clone();
    let sender = std::thread::spawn(move || {
        w.send(&big).unwrap();
        w.send(b"after").unwrap();
    });
    assert_eq!(r.recv_timeout(BOUND).unwrap(), expected);
    assert_eq!(r.recv_timeout(BOUND).unwrap(), b"after");
    sender.join().unwrap();
}

#[test]
fn many_writers_never_interleave() {
    const WRITERS: u32 = 4;
    const EACH: u32 = 2000;
    let (mut rx, tx) = pipe::pipe().unwrap();
    let mut children = Vec::new();
    for id in 0..WRITERS {
        let (ids, each) = (id.to_string(), EACH.to_string());
        children.push(spawn_with_fd3(
            "atomic_writer",
            &["3", &ids, &each],
            tx.try_clone().unwrap(),
        ));
    }
    drop(tx);
    let mut next = vec![0u32; WRITERS as usize];
    let mut total = 0;
    loop {
        match rx.recv_timeout(BOUND) {
            Ok(m) => {
                let (id, seq) = check_msg(&m);
                assert_eq!(seq, next[id as usize], "writer {id} out of order");
                next[id as usize] += 1;
                total += 1;
            }
            Err(PipeError::PeerGone { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(total, WRITERS * EACH);
    for mut c in children {
        c.expect_success();
    }
}

#[test]
fn full_pipe_try_send_and_timeout() {
    let (rx, mut tx) = pipe::pipe().unwrap();
    let (go_rx, mut go_tx) = pipe::pipe().unwrap();
    let mut cmd = util::role_command("wait_then_drain", &[]);
    cmd.stdin(Stdio::from(rx));
    pipe::pass_to_child(&mut cmd, go_rx, 3).unwrap();
    let mut child = util::ChildGuard(Some(cmd.spawn().unwrap()));
    drop(cmd);

    let cap = tx.capacity().unwrap();
    assert!(cap >= PIPE_BUF);
    let mut seq = 0u32;
    let msg = |seq: u32| {
        let mut m = seq.to_be_bytes().to_vec();
        m.resize(1000, 0xab);
        m
    };
    loop {
        match tx.try_send(&msg(seq)) {
            Ok(()) => seq += 1,
            Err(PipeError::Full { .. }) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(seq < 10_000, "pipe never filled");
    }
    assert!(
        seq as usize * 1004 >= cap - PIPE_BUF,
        "filled after {seq} frames"
    );
    let err = util::waits_for(util::SHORT, || tx.send_timeout(&msg(seq), util::SHORT)).unwrap_err();
    assert!(matches!(err, PipeError::Timeout { .. }), "{err}");

    // Let the child drain: blocking sends go through again.
    go_tx.write_all(b"g").unwrap();
    for _ in 0..100 {
        tx.send_wait(&msg(seq), Wait::timeout(BOUND)).unwrap();
        seq += 1;
    }
    drop(tx);
    child.expect_success();
}

#[test]
fn capacity_can_be_changed() {
    let (rx, tx) = pipe::pipe().unwrap();
    let got = tx.set_capacity(128 * 1024).unwrap();
    assert!(got >= 128 * 1024);
    assert_eq!(rx.capacity().unwrap(), got);
}

#[test]
fn killed_writer_gives_peer_gone() {
    let (mut rx, tx) = pipe::pipe().unwrap();
    let mut child = spawn_with_fd3("write_forever", &["3"], tx);
    // Handshake: the child is writing.
    rx.recv_timeout(BOUND).unwrap();
    child.kill();
    let start = Instant::now();
    loop {
        match rx.recv_timeout(BOUND) {
            Ok(m) => assert_eq!(m.len(), 8),
            Err(PipeError::PeerGone { .. }) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(start.elapsed() < BOUND);
    }
}

#[test]
fn killed_reader_gives_peer_gone_to_writer() {
    let (rx, mut tx) = pipe::pipe().unwrap();
    let mut sleeper = util::ChildGuard(Some(
        Command::new("sleep")
            .arg("30")
            .stdin(Stdio::from(rx))
            .spawn()
            .unwrap(),
    ));
    tx.send(b"nobody reads this").unwrap();
    sleeper.kill();
    let err = tx.send_timeout(b"x", BOUND).unwrap_err();
    assert!(matches!(err, PipeError::PeerGone { .. }), "{err}");
}

#[test]
fn recv_timeout_with_silent_writer() {
    let (mut rx, tx) = pipe::pipe().unwrap();
    // `sleep` holds the write end (as its stdout) and never writes.
    let _sleeper = util::ChildGuard(Some(
        Command::new("sleep")
            .arg("30")
            .stdout(Stdio::from(tx))
            .spawn()
            .unwrap(),
    ));
    assert!(matches!(rx.try_recv(), Err(PipeError::WouldBlock { .. })));
    let err = util::waits_for(util::SHORT, || rx.recv_timeout(util::SHORT)).unwrap_err();
    assert!(matches!(err, PipeError::Timeout { .. }), "{err}");
}

#[test]
fn truncated_frame_is_detected() {
    let (mut rx, tx) = pipe::pipe().unwrap();
    // Header says 10 bytes; only 2 follow.
    let wire = hex(&[0, 0, 0, 10, b'a', b'b']);
    let mut child = spawn_with_fd3("raw_writer", &["3", &wire], tx);
    let err = rx.recv_timeout(BOUND).unwrap_err();
    assert!(
        matches!(
            err,
            PipeError::TruncatedFrame {
                expected: 14,
                got: 6,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        rx.recv_timeout(BOUND),
        Err(PipeError::PeerGone { .. })
    ));
    child.expect_success();
}

#[test]
fn partial_frame_survives_a_timeout() {
    let (mut rx, mut tx) = pipe::pipe().unwrap();
    let mut cmd = Command::new("sh");
    // Half a frame, a pause, then the rest.
    cmd.args([
        "-c",
        "printf '\\000\\000\\000\\005he' >&3; sleep 0.5; printf 'llo' >&3",
    ]);
    pipe::pass_to_child(&mut cmd, tx.try_clone().unwrap(), 3).unwrap();
    let mut child = util::ChildGuard(Some(cmd.spawn().unwrap()));
    drop(cmd);
    let err = rx.recv_timeout(Duration::from_millis(100)).unwrap_err();
    assert!(matches!(err, PipeError::Timeout { .. }), "{err}");
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), b"hello");
    tx.send(b"next").unwrap();
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), b"next");
    assert!(child.wait_timeout(BOUND).success());
}

#[test]
fn oversize_frames_rejected_on_send_and_receive() {
    let (mut rx, tx) = pipe::pipe().unwrap();
    let mut small = tx.try_clone().unwrap().with_max_frame_len(10);
    let err = small.send(&[0u8; 11]).unwrap_err();
    assert!(
        matches!(
            err,
            PipeError::TooLarge {
                len: 11,
                max: 10,
                ..
            }
        ),
        "{err}"
    );
    drop(small);
    rx.set_max_frame_len(10);
    let wire = ipcx::framing::encode_frame(&[7u8; 100], 1000).unwrap();
    let mut child = spawn_with_fd3("raw_writer", &["3", &hex(&wire)], tx);
    let err = rx.recv_timeout(BOUND).unwrap_err();
    assert!(
        matches!(
            err,
            PipeError::FrameTooLarge {
                len: 100,
                max: 10,
                ..
            }
        ),
        "{err}"
    );
    child.expect_success();
}

#[test]
fn pass_to_child_rejects_stdio_numbers() {
    let (_rx, tx) = pipe::pipe().unwrap();
    let mut cmd = Command::new("true");
    let err = pipe::pass_to_child(&mut cmd, tx, 1).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[cfg(feature = "tokio")]
#[test]
fn async_send_and_recv_between_processes() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Child -> parent, async receive.
        let (rx, tx) = pipe::pipe().unwrap();
        let mut child = spawn_with_fd3("fd_writer", &["3", "30"], tx);
        let mut rx = rx.into_async().unwrap();
        for i in 0..30 {
            let m = tokio::time::timeout(BOUND, rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(m, format!("from child {i}").into_bytes());
        }
        let end = tokio::time::timeout(BOUND, rx.recv()).await.unwrap();
        assert!(matches!(end, Err(PipeError::PeerGone { .. })));
        child.expect_success();

        // Parent -> child, async send.
        let (rx, tx) = pipe::pipe().unwrap();
        let mut cmd = util::role_command("stdin_reader", &["25"]);
        cmd.stdin(Stdio::from(rx));
        let mut child = util::ChildGuard(Some(cmd.spawn().unwrap()));
        drop(cmd);
        let mut tx = tx.into_async().unwrap();
        for i in 0..25 {
            tx.send(format!("msg {i}").as_bytes()).await.unwrap();
        }
        let err = tx.send(&[0u8; PIPE_BUF]).await.unwrap_err();
        assert!(matches!(err, PipeError::NotAtomic { .. }), "{err}");
        drop(tx);
        child.expect_success();
    });
}

#[test]
fn a_started_large_frame_is_completed_past_the_send_deadline() {
    // 1 MiB through a 64 KiB pipe whose reader starts late: the deadline passes after the
    // first bytes went out, and the frame is still delivered whole instead of being torn.
    let (rx, tx) = pipe::pipe().unwrap();
    let len = 1 << 20;
    let mut child = spawn_with_fd3("slow_large_reader", &[&len.to_string()], rx);
    let mut tx = tx.with_large_frames(LargeFrames::SingleWriter);
    let msg: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let t0 = Instant::now();
    tx.send_timeout(&msg, Duration::from_millis(50)).unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(50));
    child.expect_success();
}
