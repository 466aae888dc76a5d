//! FIFOs between unrelated processes: both directions, open timeouts, path safety, removal,
//! permissions, many-writer atomicity (large frames under the lock), shell interop, and the
//! `fifo:` channel adapter.
mod util;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ipcx::channel::{Endpoint, Error, Options};
use ipcx::fifo::{self, Fifo, FifoError};
use ipcx::pipe::{PipeError, PipeWriter};
use ipcx::wait::Wait;
use util::checked::{check_msg, make_msg};

const BOUND: Duration = Duration::from_secs(20);

#[test]
fn child_role() {
    util::role_main(&[
        ("echo", echo),
        ("atomic_writer", atomic_writer),
        ("expect_denied", expect_denied),
        ("channel_send", channel_send),
        ("half_frame", half_frame),
    ]);
}

/// Message sizes: mostly small, every 7th one large (several times PIPE_BUF).
fn msg_len(id: u32, seq: u32) -> usize {
    if seq % 7 == 3 {
        20_000 + (id as usize * 1000)
    } else {
        16 + (seq as usize * 997 + id as usize * 131) % 4000
    }
}

// ---------------------------------------------------------------------------------------------
// Child roles.

/// Reads `n` messages from FIFO args[0] and writes each back, reversed, into FIFO args[1].
fn echo(args: &[String]) {
    let n: usize = args[2].parse().unwrap();
    let mut rx = fifo::open_reader(&args[0]).unwrap();
    let mut tx = fifo::open_writer_timeout(&args[1], BOUND).unwrap();
    for _ in 0..n {
        let mut m = rx.recv_timeout(BOUND).unwrap();
        m.reverse();
        tx.send(&m).unwrap();
    }
}

/// Opens FIFO args[0] for writing and sends args[2] checksummed messages as writer args[1].
fn atomic_writer(args: &[String]) {
    let id: u32 = args[1].parse().unwrap();
    let n: u32 = args[2].parse().unwrap();
    let mut tx = fifo::open_writer_timeout(&args[0], BOUND).unwrap();
    for seq in 0..n {
        tx.send(&make_msg(id, seq, msg_len(id, seq))).unwrap();
    }
}

/// Runs as nobody: opening FIFO args[0] either way is PermissionDenied.
fn expect_denied(args: &[String]) {
    let err = fifo::open_reader(&args[0]).unwrap_err();
    assert!(matches!(err, FifoError::PermissionDenied { .. }), "{err}");
    let err = fifo::open_writer_timeout(&args[0], Duration::from_secs(2)).unwrap_err();
    assert!(matches!(err, FifoError::PermissionDenied { .. }), "{err}");
}

/// Sends args[1..] through the channel endpoint args[0].
fn channel_send(args: &[String]) {
    let ep = Endpoint::parse(&args[0]).unwrap();
    let opts = Options::new().connect_timeout(BOUND);
    let mut tx = ep.sender(&opts).unwrap();
    for m in &args[1..] {
        tx.send(m.as_bytes()).unwrap();
    }
}

/// Writes half a frame into FIFO args[0] and exits.
fn half_frame(args: &[String]) {
    let mut tx = fifo::open_writer_timeout(&args[0], BOUND).unwrap();
    use std::io::Write;
    tx.write_all(&[0, 0, 0, 10, b'a', b'b']).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn fifo_between_processes_both_directions() {
    let dir = util::TempDir::new("fifo");
    let to_child = Fifo::create(dir.join("in")).unwrap();
    let from_child = Fifo::create(dir.join("out")).unwrap();
    let mut rx = from_child.open_reader().unwrap();
    let mut child = util::spawn_role("echo", &[s(to_child.path()), s(from_child.path()), "30"]);
    let mut tx = to_child.open_writer_wait(Wait::timeout(BOUND)).unwrap();
    for i in 0..30 {
        let m = format!("message {i}");
        tx.send(m.as_bytes()).unwrap();
        let mut back = rx.recv_timeout(BOUND).unwrap();
        back.reverse();
        assert_eq!(back, m.as_bytes());
    }
    child.expect_success();
    assert!(matches!(
        rx.recv_timeout(BOUND),
        Err(PipeError::PeerGone { .. })
    ));
}

#[test]
fn open_writer_without_reader_times_out() {
    let dir = util::TempDir::new("fifo");
    let f = Fifo::create(dir.join("lonely")).unwrap();
    let start = Instant::now();
    let err = fifo::open_writer_timeout(f.path(), Duration::from_millis(100)).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, FifoError::Timeout { .. }), "{err}");
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("no reader on fifo") && msg.contains("start the receiver first"),
        "{msg}"
    );
    let err = fifo::try_open_writer(f.path()).unwrap_err();
    assert!(matches!(err, FifoError::NoReader { .. }), "{err}");
}

#[test]
fn symlink_at_path_is_refused_and_left_alone() {
    let dir = util::TempDir::new("fifo");
    let target = dir.join("target");
    std::fs::write(&target, b"precious").unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = Fifo::create(&link).unwrap_err();
    assert!(
        matches!(
            err,
            FifoError::NotAFifo {
                kind: "symlink",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), target);
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");

    // A symlink to a real FIFO is not opened either.
    let real = Fifo::create(dir.join("real")).unwrap();
    let link2 = dir.join("link2");
    std::os::unix::fs::symlink(real.path(), &link2).unwrap();
    let err = fifo::open_reader(&link2).unwrap_err();
    assert!(
        matches!(
            err,
            FifoError::NotAFifo {
                kind: "symlink",
                ..
            }
        ),
        "{err}"
    );
    // A dangling symlink too.
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
    assert!(matches!(
        Fifo::create(&dangling),
        Err(FifoError::NotAFifo { .. })
    ));
    assert!(!dir.join("nowhere").exists());
}

#[test]
fn regular_file_at_path_is_refused_and_left_alone() {
    let dir = util::TempDir::new("fifo");
    let p = dir.join("file");
    std::fs::write(&p, b"keep me").unwrap();
    let err = Fifo::create(&p).unwrap_err();
    assert!(
        matches!(
            err,
            FifoError::NotAFifo {
                kind: "regular file",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("left untouched"), "{err}");
    assert!(matches!(
        fifo::open_reader(&p),
        Err(FifoError::NotAFifo { .. })
    ));
    assert!(matches!(fifo::remove(&p), Err(FifoError::NotAFifo { .. })));
    assert_eq!(std::fs::read(&p).unwrap(), b"keep me");
}

#[test]
fn drop_removes_persist_keeps_remove_removes() {
    let dir = util::TempDir::new("fifo");
    let p = dir.join("f");
    {
        let f = Fifo::create(&p).unwrap();
        assert!(f.created());
        let meta = std::fs::symlink_metadata(&p).unwrap();
        assert!(meta.file_type().is_fifo());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Opening the existing FIFO again: not ours to remove.
        let again = Fifo::create(&p).unwrap();
        assert!(!again.created());
        drop(again);
        assert!(p.exists());
        assert!(matches!(
            Fifo::create_new(&p),
            Err(FifoError::AlreadyExists { .. })
        ));
    }
    assert!(
        std::fs::symlink_metadata(&p).is_err(),
        "drop removes the fifo"
    );

    let f = Fifo::options().mode(0o640).create(&p).unwrap().persist();
    drop(f);
    let meta = std::fs::symlink_metadata(&p).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o640,
        "mode applied exactly"
    );
    let f = Fifo::create(&p).unwrap();
    f.remove().unwrap();
    assert!(std::fs::symlink_metadata(&p).is_err());
    assert!(matches!(
        fifo::open_reader(&p),
        Err(FifoError::NotFound { .. })
    ));
}

#[test]
fn permission_denied_for_another_user() {
    if !util::is_root() {
        eprintln!("skipped: needs root to start a child as nobody");
        return;
    }
    let dir = util::TempDir::new("fifo");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let f = Fifo::create(dir.join("private")).unwrap();
    let mut child = util::spawn_role_as_nobody("expect_denied", &[s(f.path())]);
    child.expect_success();
}

#[test]
fn fifo_owned_by_another_user_is_not_trusted() {
    if !util::is_root() {
        eprintln!("skipped: needs root to chown");
        return;
    }
    let dir = util::TempDir::new("fifo");
    let f = Fifo::create(dir.join("theirs")).unwrap();
    std::os::unix::fs::chown(f.path(), Some(util::NOBODY), Some(util::NOBODY)).unwrap();
    let err = Fifo::create(f.path()).unwrap_err();
    assert!(
        matches!(
            err,
            FifoError::ForeignOwner {
                owner: util::NOBODY,
                ..
            }
        ),
        "{err}"
    );
    let ok = Fifo::options()
        .allow_foreign_owner(true)
        .create(f.path())
        .unwrap();
    assert!(!ok.created());
}

#[test]
fn many_writers_never_interleave_even_large_frames() {
    const WRITERS: u32 = 4;
    const EACH: u32 = 300;
    let dir = util::TempDir::new("fifo");
    let f = Fifo::create(dir.join("many")).unwrap();
    let mut rx = f.open_reader().unwrap();
    let mut children = Vec::new();
    for id in 0..WRITERS {
        let (ids, each) = (id.to_string(), EACH.to_string());
        children.push(util::spawn_role(
            "atomic_writer",
            &[s(f.path()), &ids, &each],
        ));
    }
    let mut next = vec![0u32; WRITERS as usize];
    let mut total = 0;
    while total < WRITERS * EACH {
        let m = rx.recv_timeout(BOUND).unwrap();
        let (id, seq) = check_msg(&m);
        assert_eq!(seq, next[id as usize], "writer {id} out of order");
        assert_eq!(m.len(), msg_len(id, seq).max(16));
        next[id as usize] += 1;
        total += 1;
    }
    for mut c in children {
        c.expect_success();
    }
}

#[test]
fn shell_printf_frame_is_received() {
    let dir = util::TempDir::new("fifo");
    let f = Fifo::create(dir.join("sh")).unwrap();
    let mut rx = f.open_reader().unwrap();
    let script = format!("printf '\\000\\000\\000\\002hi' > '{}'", s(f.path()));
    let mut sh = util::ChildGuard(Some(
        Command::new("sh").args(["-c", &script]).spawn().unwrap(),
    ));
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), b"hi");
    assert!(sh.wait_timeout(BOUND).success());
}

#[test]
fn recv_on_fifo_without_writer_times_out() {
    let dir = util::TempDir::new("fifo");
    let f = Fifo::create(dir.join("quiet")).unwrap();
    let mut rx = f.open_reader().unwrap();
    assert!(matches!(rx.try_recv(), Err(PipeError::WouldBlock { .. })));
    let start = Instant::now();
    let err = rx.recv_timeout(Duration::from_millis(100)).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, PipeError::Timeout { .. }), "{err}");
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn writer_gets_peer_gone_when_reader_leaves() {
    let dir = util::TempDir::new("fifo");
    let f = Fifo::create(dir.join("gone")).unwrap();
    let rx = f.open_reader().unwrap();
    let mut tx: PipeWriter = fifo::open_writer_timeout(f.path(), BOUND).unwrap();
    drop(rx);
    let err = tx.send(b"x").unwrap_err();
    assert!(matches!(err, PipeError::PeerGone { .. }), "{err}");
}

#[test]
fn invalid_and_missing_paths() {
    assert!(matches!(
        Fifo::create(""),
        Err(FifoError::InvalidPath { .. })
    ));
    let dir = util::TempDir::new("fifo");
    assert!(matches!(
        Fifo::create(dir.join("no/such/dir")),
        Err(FifoError::NotFound { .. })
    ));
    assert!(matches!(
        fifo::open_writer_timeout(dir.join("missing"), Duration::from_millis(10)),
        Err(FifoError::NotFound { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Channel adapter.

#[test]
fn channel_receiver_serves_writer_after_writer() {
    let dir = util::TempDir::new("fifo");
    let path = dir.join("chan");
    let addr = format!("fifo:{}", s(&path));
    let ep = Endpoint::parse(&addr).unwrap();
    let mut rx = ep.receiver(&Options::new()).unwrap();
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_fifo()
    );

    let mut first = util::spawn_role("channel_send", &[&addr, "one", "two"]);
    assert_eq!(rx.recv_timeout(BOUND).unwrap().data, b"one");
    assert_eq!(rx.recv_timeout(BOUND).unwrap().data, b"two");
    first.expect_success();

    // A writer that dies mid-frame: a recoverable error, then the receiver goes on.
    let mut half = util::spawn_role("half_frame", &[s(&path)]);
    let err = rx.recv_timeout(BOUND).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TruncatedFrame {
                expected: 14,
                got: 6,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_recoverable());
    half.expect_success();

    let mut second = util::spawn_role("channel_send", &[&addr, "three"]);
    let m = rx.recv_timeout(BOUND).unwrap();
    assert_eq!(m.data, b"three");
    assert_eq!(m.meta, Default::default());
    second.expect_success();

    drop(rx);
    assert!(
        std::fs::symlink_metadata(&path).is_err(),
        "receiver removes what it created"
    );
}

#[test]
fn channel_receiver_timeout_and_existing_path_rules() {
    let dir = util::TempDir::new("fifo");
    let path = dir.join("chan");
    let ep = Endpoint::parse(&format!("fifo:{}", s(&path))).unwrap();
    let mut rx = ep.receiver(&Options::new()).unwrap();
    assert!(matches!(rx.try_recv(), Err(Error::WouldBlock)));
    let start = Instant::now();
    let err = rx.recv_timeout(Duration::from_millis(100)).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, Error::Timeout), "{err}");
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(5),
        "{took:?}"
    );
    drop(rx);

    let file = dir.join("file");
    std::fs::write(&file, b"x").unwrap();
    let ep = Endpoint::parse(&format!("fifo:{}", s(&file))).unwrap();
    let err = ep.receiver(&Options::new()).unwrap_err();
    assert!(err.to_string().contains("not a fifo"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn channel_sender_rules() {
    let dir = util::TempDir::new("fifo");
    let path = dir.join("chan");
    let addr = format!("fifo:{}", s(&path));
    let ep = Endpoint::parse(&addr).unwrap();

    // Missing FIFO: NotFound with a hint.
    let err = ep.sender(&Options::new()).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("ipcx recv") && err.to_string().contains("--create"),
        "{err}"
    );

    // --create with no reader: the FIFO is made (and kept), the open times out.
    let opts = Options::new()
        .create(true)
        .connect_timeout(Duration::from_millis(100));
    let start = Instant::now();
    let err = ep.sender(&opts).unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_fifo()
    );

    // With a receiver: messages flow; the receiver going away is PeerGone.
    let mut rx = ep.receiver(&Options::new()).unwrap();
    let mut tx = ep.sender(&opts).unwrap();
    tx.send(b"hello").unwrap();
    assert_eq!(rx.recv_timeout(BOUND).unwrap().data, b"hello");
    let big = vec![1u8; 50_000]; // above PIPE_BUF, below the pipe capacity (one thread)
    tx.send(&big).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rx.recv_timeout(BOUND).unwrap().data, big);
    drop(rx);
    // Another test's fork (before its exec) may briefly hold a copy of the read end; the
    // sender sees the reader gone once that copy is closed.
    let mut err = None;
    assert!(util::wait_until(BOUND, || match tx.send(b"lost") {
        Ok(()) => false,
        Err(e) => {
            err = Some(e);
            true
        }
    }));
    let err = err.unwrap();
    assert!(matches!(err, Error::PeerGone { .. }), "{err}");
    // The receiver found the FIFO (did not create it), so it is still there.
    assert!(path.exists());
    fifo::remove(&path).unwrap();
}

#[cfg(feature = "tokio")]
#[test]
fn async_fifo_reader_and_writer() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = util::TempDir::new("fifo");
        let to_child = Fifo::create(dir.join("in")).unwrap();
        let from_child = Fifo::create(dir.join("out")).unwrap();
        // The reader is async before any writer exists: recv waits for the writer.
        let mut rx = from_child.open_reader().unwrap().into_async().unwrap();
        let mut child = util::spawn_role("echo", &[s(to_child.path()), s(from_child.path()), "10"]);
        let tx = to_child.open_writer_wait(Wait::timeout(BOUND)).unwrap();
        let mut tx = tx.into_async().unwrap();
        for i in 0..10 {
            let m = format!("async {i}");
            tx.send(m.as_bytes()).await.unwrap();
            let mut back = tokio::time::timeout(BOUND, rx.recv())
                .await
                .unwrap()
                .unwrap();
            back.reverse();
            assert_eq!(back, m.as_bytes());
        }
        let end = tokio::time::timeout(BOUND, rx.recv()).await.unwrap();
        assert!(matches!(end, Err(PipeError::PeerGone { .. })), "{end:?}");
        child.expect_success();
    });
}

#[test]
fn a_writer_that_connects_while_the_fifo_is_created_loses_nothing() {
    // A writer already waiting for the FIFO (here a shell that opens it as soon as it exists)
    // must stay waiting until a real reader opens, and then deliver its frame: creating the
    // FIFO must not open (and close) a transient read end that it would write into.
    let dir = util::TempDir::new("fifo-early");
    let path = dir.join("early.fifo");
    let script = format!(
        "while [ ! -p '{p}' ]; do sleep 0.001; done; printf '\\000\\000\\000\\005early' > '{p}'",
        p = path.display()
    );
    let mut sh = std::process::Command::new("sh")
        .args(["-c", &script])
        .spawn()
        .unwrap();
    let fifo = ipcx::fifo::Fifo::create(&path).unwrap();
    // Give the writer every chance to slip into a transient reader.
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        sh.try_wait().unwrap().is_none(),
        "the writer found a reader that is not ours"
    );
    let mut rx = fifo.open_reader().unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), b"early");
    assert!(sh.wait().unwrap().success());
}
