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
use util::proc::io_counter;

const BOUND: Duration = Duration::from_secs(20);

#[test]
fn child_role() {
    util::role_main(&[
        ("echo", echo),
        ("atomic_writer", atomic_writer),
        ("expect_denied", expect_denied),
        ("channel_send", channel_send),
        ("half_frame", half_frame),
        ("batch_writer", batch_writer),
        ("big_writer", big_writer),
        ("large_loop_writer", large_loop_writer),
        ("claim_receiver", claim_receiver),
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

/// Writer args[1] on FIFO args[0]: sends args[2] checksummed messages, prints "batch done" on
/// stdout, waits for one byte on stdin, then sends args[3] more (sequence numbers go on).
fn batch_writer(args: &[String]) {
    use std::io::{Read, Write};
    let id: u32 = args[1].parse().unwrap();
    let first: u32 = args[2].parse().unwrap();
    let second: u32 = args[3].parse().unwrap();
    let mut tx = fifo::open_writer_timeout(&args[0], BOUND).unwrap();
    for seq in 0..first {
        tx.send(&make_msg(id, seq, batch_len(seq))).unwrap();
    }
    let mut out = std::io::stdout();
    writeln!(out, "batch done").unwrap();
    out.flush().unwrap();
    let mut go = [0u8; 1];
    std::io::stdin().read_exact(&mut go).unwrap();
    for seq in first..first + second {
        tx.send(&make_msg(id, seq, batch_len(seq))).unwrap();
    }
}

/// Sizes for [`batch_writer`]: small ones and, every third, one above PIPE_BUF.
fn batch_len(seq: u32) -> usize {
    if seq % 3 == 1 {
        12_000 + seq as usize * 100
    } else {
        100 + seq as usize
    }
}

/// Prints "start" on stdout, then sends one checksummed message of args[1] bytes as writer 9
/// into FIFO args[0] (the test kills it on the way).
fn big_writer(args: &[String]) {
    use std::io::Write;
    let len: usize = args[1].parse().unwrap();
    let mut tx = fifo::open_writer_timeout(&args[0], BOUND).unwrap();
    let msg = make_msg(9, 0, len);
    let mut out = std::io::stdout();
    writeln!(out, "start").unwrap();
    out.flush().unwrap();
    tx.send(&msg).unwrap();
}

/// Sends checksummed messages above PIPE_BUF as writer 7 into FIFO args[0] until killed.
fn large_loop_writer(args: &[String]) {
    let mut tx = fifo::open_writer_timeout(&args[0], BOUND).unwrap();
    for seq in 0.. {
        tx.send(&make_msg(7, seq, 30_000 + (seq as usize % 5) * 7_000))
            .unwrap();
    }
}

/// Receives on the channel endpoint fifo:args[0] (default options) until killed, after
/// printing "ready"; only unrecoverable errors end it.
fn claim_receiver(args: &[String]) {
    use std::io::Write;
    let ep = Endpoint::parse(&format!("fifo:{}", args[0])).unwrap();
    let mut rx = ep.receiver(&Options::new()).unwrap();
    let mut out = std::io::stdout();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(_) | Err(Error::Timeout) => {}
            Err(e) => assert!(e.is_recoverable(), "{e}"),
        }
    }
}

/// Bytes process `pid` has written so far.
fn bytes_written(pid: i32) -> u64 {
    io_counter(pid, "wchar")
}

/// Waits until process `pid` has read at least `total` bytes in all, and a little more for
/// it to act on them (its loop goes round every 50 ms).
fn wait_read(pid: i32, total: u64) {
    assert!(
        util::wait_until(BOUND, || io_counter(pid, "rchar") >= total),
        "process {pid} did not read its input: {} of {total}",
        io_counter(pid, "rchar")
    );
    std::thread::sleep(Duration::from_millis(150));
}

/// Resident memory of process `pid` in KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .unwrap()
}

/// Waits until process `pid` has written at least `least` bytes and then stopped writing for
/// 200 ms (blocked on a full pipe).
fn wait_blocked_writing(pid: i32, least: u64) {
    let mut last = 0;
    let mut since = Instant::now();
    let deadline = Instant::now() + BOUND;
    loop {
        let now = bytes_written(pid);
        if now != last {
            last = now;
            since = Instant::now();
        } else if now >= least && since.elapsed() >= Duration::from_millis(200) {
            return;
        }
        assert!(Instant::now() < deadline, "writer {pid} did not block");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads one line from a child's piped stdout.
fn read_line(child: &mut util::ChildGuard) -> String {
    use std::io::Read;
    let out = child.child().stdout.as_mut().unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Spawns `role` with its stdin and stdout piped to the test.
fn spawn_piped(role: &str, args: &[&str]) -> util::ChildGuard {
    let mut cmd = util::role_command(role, args);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    util::ChildGuard(Some(cmd.spawn().unwrap()))
}

/// Waits for a line equal to `want` on a child's stdout (the test harness may print first).
fn expect_line(child: &mut util::ChildGuard, want: &str) {
    for _ in 0..20 {
        if read_line(child) == want {
            return;
        }
    }
    panic!("no line {want:?} from the child");
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
    let err = util::waits_for(util::SHORT, || {
        fifo::open_writer_timeout(f.path(), util::SHORT)
    })
    .unwrap_err();
    assert!(matches!(err, FifoError::Timeout { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("no reader on fifo") && msg.contains("start the receiver first"),
        "{msg}"
    );
    let err = fifo::try_open_writer(f.path()).unwrap_err();
    assert!(matches!(err, FifoError::NoReader { .. }), "{err}");
}

/// Asserts that `err` refuses a path because it is a symlink.
fn assert_refused_symlink(err: &FifoError) {
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
}

#[test]
fn symlink_at_path_is_refused_and_left_alone() {
    let dir = util::TempDir::new("fifo");
    let target = dir.join("target");
    std::fs::write(&target, b"precious").unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = Fifo::create(&link).unwrap_err();
    assert_refused_symlink(&err);
    assert_eq!(std::fs::read_link(&link).unwrap(), target);
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");

    // A symlink to a real FIFO is not opened either.
    let real = Fifo::create(dir.join("real")).unwrap();
    let link2 = dir.join("link2");
    std::os::unix::fs::symlink(real.path(), &link2).unwrap();
    let err = fifo::open_reader(&link2).unwrap_err();
    assert_refused_symlink(&err);
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
        assert!(f.is_owner());
        let meta = std::fs::symlink_metadata(&p).unwrap();
        assert!(meta.file_type().is_fifo());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Opening the existing FIFO again: not ours to remove.
        let again = Fifo::create(&p).unwrap();
        assert!(!again.is_owner());
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
    assert!(!ok.is_owner());
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
    let err = util::waits_for(util::SHORT, || rx.recv_timeout(util::SHORT)).unwrap_err();
    assert!(matches!(err, PipeError::Timeout { .. }), "{err}");
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
    let err = util::waits_for(util::SHORT, || rx.recv_timeout(util::SHORT)).unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err}");
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

// ---------------------------------------------------------------------------------------------
// Writers killed in the middle of a message.

#[test]
fn a_writer_killed_mid_message_costs_no_message_of_another_writer() {
    let dir = util::TempDir::new("fifo-kill");
    let f = Fifo::create(dir.join("kill")).unwrap();
    let mut rx = f.open_reader().unwrap();
    // Writer 1 puts a first batch (small and large messages) into the FIFO and waits.
    let mut b = spawn_piped("batch_writer", &[s(f.path()), "1", "4", "6"]);
    expect_line(&mut b, "batch done");
    // Writer 9 starts a 1 MiB message; nothing reads, so it blocks with part of it written.
    let mut a = spawn_piped("big_writer", &[s(f.path()), &(1 << 20).to_string()]);
    expect_line(&mut a, "start");
    let a_pid = a.pid();
    wait_blocked_writing(a_pid, 8192);
    a.kill();
    // Writer 1 sends its second batch after the dead writer's partial message.
    {
        use std::io::Write;
        let stdin = b.child().stdin.as_mut().unwrap();
        stdin.write_all(b"g").unwrap();
        stdin.flush().unwrap();
    }
    let mut next = 0u32;
    let mut truncated = Vec::new();
    loop {
        match rx.recv_timeout(BOUND) {
            Ok(m) => {
                let (id, seq) = check_msg(&m);
                assert_eq!((id, seq), (1, next), "a message was lost or reordered");
                assert_eq!(m.len(), batch_len(seq).max(16));
                next += 1;
            }
            Err(e @ PipeError::TruncatedFrame { .. }) => truncated.push(e.to_string()),
            Err(PipeError::PeerGone { .. }) => break,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(next, 10, "every message of the surviving writer arrives");
    assert_eq!(truncated.len(), 1, "{truncated:?}");
    assert!(
        truncated[0].contains(&format!("pid {a_pid}")),
        "the error names the dead writer: {}",
        truncated[0]
    );
    b.expect_success();
}

#[test]
fn writers_killed_at_random_points_never_tear_another_writers_messages() {
    const TRIALS: u32 = 200;
    const EACH: u32 = 60;
    let dir = util::TempDir::new("fifo-kills");
    let mut torn_reports = 0;
    for trial in 0..TRIALS {
        let f = Fifo::create(dir.join(&format!("k{trial}"))).unwrap();
        let mut rx = f.open_reader().unwrap();
        let mut victim = util::spawn_role("large_loop_writer", &[s(f.path())]);
        let victim_pid = victim.pid();
        let mut good = util::spawn_role("atomic_writer", &[s(f.path()), "1", &EACH.to_string()]);
        // Kill the victim after a varying number of received messages (once the survivor has
        // the FIFO open: it must not see the end of the stream first).
        let kill_after = (trial * 7) % 23;
        let mut received = 0;
        let mut next_good = 0u32;
        let mut next_victim = 0u32;
        loop {
            if received >= kill_after && next_good > 0 {
                victim.kill();
            }
            match rx.recv_timeout(BOUND) {
                Ok(m) => {
                    received += 1;
                    let (id, seq) = check_msg(&m);
                    match id {
                        1 => {
                            assert_eq!(seq, next_good, "trial {trial}: lost or reordered");
                            assert_eq!(m.len(), msg_len(1, seq).max(16));
                            next_good += 1;
                        }
                        7 => {
                            assert_eq!(seq, next_victim, "trial {trial}: victim reordered");
                            next_victim += 1;
                        }
                        _ => panic!("trial {trial}: message from nowhere: writer {id}"),
                    }
                }
                Err(e @ PipeError::TruncatedFrame { .. }) => {
                    assert!(
                        e.to_string().contains(&format!("pid {victim_pid}")),
                        "trial {trial}: {e}"
                    );
                    torn_reports += 1;
                }
                Err(PipeError::PeerGone { .. }) => break,
                Err(e) => panic!("trial {trial}: unexpected error: {e}"),
            }
        }
        victim.kill();
        assert_eq!(
            next_good, EACH,
            "trial {trial}: the surviving writer lost messages"
        );
        good.expect_success();
    }
    println!("{TRIALS} trials, {torn_reports} partial messages of killed writers reported");
}

// ---------------------------------------------------------------------------------------------
// Hostile writers and the receiver's memory.

#[test]
fn a_claimed_length_costs_the_receiver_only_the_bytes_that_arrived() {
    use std::io::Write;
    let dir = util::TempDir::new("fifo-claim");
    let path = dir.join("claim");
    let mut rx = spawn_piped("claim_receiver", &[s(&path)]);
    expect_line(&mut rx, "ready");
    let pid = rx.pid();
    let base = rss_kib(pid);
    let mut read = io_counter(pid, "rchar");
    // Chunks from 2000 writers (distinct ids), each claiming a 16 MiB message and bringing 4
    // bytes of it.
    let mut tx = fifo::open_writer_timeout(&path, BOUND).unwrap();
    let mut wire = Vec::new();
    for n in 0..2000u32 {
        let header = ipcx::pipe::chunk::ChunkHeader {
            writer: ipcx::pipe::chunk::WriterId {
                pid_ns: 0,
                pid: 1_000_000 + n,
                start_time: 0,
                serial: n,
            },
            seq: 0,
            total: 16 << 20,
            offset: 0,
        };
        let mut c = Vec::new();
        ipcx::pipe::chunk::encode_chunk(&header, b"four", &mut c);
        wire.extend_from_slice(&c);
    }
    tx.write_all(&wire).unwrap();
    read += wire.len() as u64;
    wait_read(pid, read);
    let grown = rss_kib(pid).saturating_sub(base);
    println!("2000 chunk claims: receiver grew by {grown} KiB (from {base} KiB)");
    assert!(grown < 4096, "2000 claims of 16 MiB cost {grown} KiB");
    drop(tx);
    // Writer after writer, each a plain header claiming 16 MiB and one byte, kept open while
    // the memory is measured.
    for round in 0..5 {
        let mut tx = fifo::open_writer_timeout(&path, BOUND).unwrap();
        tx.write_all(&[1, 0, 0, 0, b'x']).unwrap();
        read += 5;
        wait_read(pid, read);
        let grown = rss_kib(pid).saturating_sub(base);
        println!("plain claim, round {round}: receiver grew by {grown} KiB");
        assert!(
            grown < 4096,
            "round {round}: a claim of 16 MiB with 1 byte cost {grown} KiB"
        );
    }
}

#[test]
fn channel_receiver_drops_a_message_over_max_buffered_and_goes_on() {
    let dir = util::TempDir::new("fifo-cap");
    let path = dir.join("cap");
    let addr = format!("fifo:{}", s(&path));
    let ep = Endpoint::parse(&addr).unwrap();
    let mut rx = ep.receiver(&Options::new().max_buffered(20_000)).unwrap();
    let big = "b".repeat(50_000);
    let mut tx = util::spawn_role("channel_send", &[&addr, "before", &big, "after"]);
    assert_eq!(rx.recv_timeout(BOUND).unwrap().data, b"before");
    let err = rx.recv_timeout(BOUND).unwrap_err();
    assert!(matches!(err, Error::PeerDropped { .. }), "{err}");
    assert!(err.is_recoverable());
    assert!(err.to_string().contains("20000"), "{err}");
    assert_eq!(rx.recv_timeout(BOUND).unwrap().data, b"after");
    tx.expect_success();
}

#[test]
fn channel_sender_without_reader_fails_at_once_unless_given_time() {
    let dir = util::TempDir::new("fifo-lonely");
    let f = Fifo::create(dir.join("lonely")).unwrap();
    let ep = Endpoint::parse(&format!("fifo:{}", s(f.path()))).unwrap();
    // No timeout: PeerGone at once (run in a thread, so that a hang fails the test).
    let (done_tx, done) = std::sync::mpsc::channel();
    let ep2 = ep.clone();
    std::thread::spawn(move || {
        let _ = done_tx.send(ep2.sender(&Options::new()).map(drop));
    });
    let err = done
        .recv_timeout(BOUND)
        .expect("a sender with no reader hangs")
        .unwrap_err();
    assert!(matches!(err, Error::PeerGone { .. }), "{err}");
    assert!(
        err.to_string().contains("no reader") && err.to_string().contains("start the receiver"),
        "{err}"
    );
    // A timeout waits that long for a reader.
    let start = Instant::now();
    let err = ep
        .sender(&Options::new().connect_timeout(Duration::from_millis(200)))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(200));
    // And finds one that comes in time.
    let mut late = util::spawn_role("channel_send", &[&format!("fifo:{}", s(f.path())), "late"]);
    std::thread::sleep(Duration::from_millis(100));
    let mut rx = f.open_reader().unwrap();
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), b"late");
    late.expect_success();
}

/// Sends each of `msgs` to an echo child through two FIFOs with async ends, checks that each
/// comes back reversed, then that the end of the child's stream is `PeerGone`.
#[cfg(feature = "tokio")]
fn async_echo(tag: &str, msgs: &[Vec<u8>]) {
    util::block_on(async {
        let dir = util::TempDir::new(tag);
        let to_child = Fifo::create(dir.join("in")).unwrap();
        let from_child = Fifo::create(dir.join("out")).unwrap();
        // The reader is async before any writer exists: recv waits for the writer.
        let mut rx = from_child.open_reader().unwrap().into_async().unwrap();
        let n = msgs.len().to_string();
        let mut child = util::spawn_role("echo", &[s(to_child.path()), s(from_child.path()), &n]);
        let tx = to_child.open_writer_wait(Wait::timeout(BOUND)).unwrap();
        let mut tx = tx.into_async().unwrap();
        for m in msgs {
            tx.send(m).await.unwrap();
            let mut back = tokio::time::timeout(BOUND, rx.recv())
                .await
                .unwrap()
                .unwrap();
            back.reverse();
            assert_eq!(&back, m);
        }
        let end = tokio::time::timeout(BOUND, rx.recv()).await.unwrap();
        assert!(matches!(end, Err(PipeError::PeerGone { .. })), "{end:?}");
        child.expect_success();
    });
}

#[cfg(feature = "tokio")]
#[test]
fn async_fifo_reader_and_writer() {
    let msgs: Vec<Vec<u8>> = (0..10).map(|i| format!("async {i}").into_bytes()).collect();
    async_echo("fifo", &msgs);
}

#[cfg(feature = "tokio")]
#[test]
fn async_fifo_reader_and_writer_carry_large_messages_as_chunks() {
    let msgs: Vec<Vec<u8>> = [100_000usize, 10, 300_000]
        .iter()
        .map(|&len| (0..len).map(|i| (i % 251) as u8).collect())
        .collect();
    async_echo("fifo-async-big", &msgs);
}
