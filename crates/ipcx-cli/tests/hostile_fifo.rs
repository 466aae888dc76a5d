//! `ipcx send` / `ipcx recv` on a FIFO with crashing and hostile writers: a sender killed in the
//! middle of a large message costs no other sender's message, a claimed length costs the
//! receiver only the bytes that arrived, and a sender with no reader fails at once.
mod util;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipcx::signal::{self, Signal};
use util::proc::io_counter;
use util::{Bg, TempDir, ipcx, rss_kib, run, stderr, wait_output};

const BOUND: Duration = Duration::from_secs(20);

/// Waits until the receiver has made its FIFO.
fn wait_exists(path: &str) {
    let deadline = Instant::now() + BOUND;
    while !Path::new(path).exists() {
        assert!(Instant::now() < deadline, "{path} never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until process `pid` has written at least `least` bytes and then written nothing more
/// for 200 ms (blocked on a full pipe).
fn wait_blocked_writing(pid: u32, least: u64) {
    let (mut last, mut since) = (0, Instant::now());
    let deadline = Instant::now() + BOUND;
    loop {
        let now = io_counter(pid, "wchar");
        if now != last {
            (last, since) = (now, Instant::now());
        } else if now >= least && since.elapsed() >= Duration::from_millis(200) {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} did not block");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The lines read from `from`, as they come.
fn lines(from: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line, within [`BOUND`].
fn next_line(lines: &mpsc::Receiver<String>) -> String {
    lines
        .recv_timeout(BOUND)
        .expect("no line within the time bound (a message was lost?)")
}

#[test]
fn a_sender_killed_mid_message_costs_no_message_of_another_sender() {
    let dir = TempDir::new();
    let path = dir.join("kill.fifo");
    let ep = format!("fifo:{path}");
    let mut rx = Bg::spawn(&["recv", &ep]);
    let child: &mut Child = rx.0.as_mut().unwrap();
    let printed = lines(child.stdout.take().unwrap());
    let errors = lines(child.stderr.take().unwrap());
    wait_exists(&path);
    let rx_pid = rx.pid() as i32;

    // A first sender's small and large messages arrive. The FIFO exists before the receiver
    // opens it: the sender waits for a reader rather than racing it.
    let big_b = "b".repeat(20_000);
    let out = run(&["send", &ep, "b0", &big_b, "b2", "--timeout", "20s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for want in ["b0", big_b.as_str(), "b2"] {
        assert_eq!(next_line(&printed), want);
    }

    // The receiver stops reading; a sender starts a 1 MiB message, fills the FIFO and blocks
    // part-way; it is killed there.
    signal::send(rx_pid, Signal::STOP).unwrap();
    let mut dead = ipcx()
        .args(["send", &ep])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dead_pid = dead.id();
    let mut line = "a".repeat(1 << 20);
    line.push('\n');
    let mut stdin = dead.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(line.as_bytes());
    });
    wait_blocked_writing(dead_pid, 8192);
    dead.kill().unwrap();
    dead.wait().unwrap();
    feeder.join().unwrap();

    // Another sender's small and large messages come after the dead one's partial message.
    let big_c = "c".repeat(30_000);
    let next = Bg::spawn(&["send", &ep, "c0", &big_c, "c2"]);
    signal::send(rx_pid, Signal::CONT).unwrap();
    for want in ["c0", big_c.as_str(), "c2"] {
        assert_eq!(next_line(&printed), want, "a message was lost or torn");
    }
    let out = next.wait(BOUND);
    assert!(out.status.success(), "{}", stderr(&out));

    // The dead sender's message is reported, naming it; the receiver goes on serving.
    let deadline = Instant::now() + BOUND;
    let report = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = errors
            .recv_timeout(left)
            .expect("no report of the dead sender");
        if line.contains(&format!("pid {dead_pid}")) {
            break line;
        }
    };
    assert!(report.contains("still serving"), "{report}");
    let out = run(&["send", &ep, "last"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(next_line(&printed), "last");
    signal::send(rx_pid, Signal::TERM).unwrap();
    let out = rx.wait(BOUND);
    assert!(out.status.success());
    assert_eq!(printed.try_iter().count(), 0, "nothing else was printed");
}

#[test]
fn a_claimed_length_costs_the_receiver_only_the_bytes_that_arrived() {
    let dir = TempDir::new();
    let path = dir.join("claim.fifo");
    let ep = format!("fifo:{path}");
    let rx = Bg::spawn(&["recv", &ep]);
    wait_exists(&path);
    let pid = rx.pid();
    // Let it settle into its receive loop.
    std::thread::sleep(Duration::from_millis(200));
    let base = rss_kib(pid);
    let mut read = io_counter(pid, "rchar");
    // Writer after writer, each a header claiming 16 MiB and one byte, kept open while the
    // receiver's memory is measured.
    for round in 0..10 {
        let mut tx = ipcx::fifo::open_writer_timeout(&path, BOUND).unwrap();
        tx.write_all(&[1, 0, 0, 0, b'x']).unwrap();
        read += 5;
        let deadline = Instant::now() + BOUND;
        while io_counter(pid, "rchar") < read {
            assert!(Instant::now() < deadline, "the receiver does not read");
            std::thread::sleep(Duration::from_millis(2));
        }
        // The receive loop goes round every 100 ms: let it act on what it read.
        std::thread::sleep(Duration::from_millis(250));
        let grown = rss_kib(pid).saturating_sub(base);
        println!("round {round}: receiver at {base} KiB grew by {grown} KiB");
        assert!(
            grown < 4096,
            "round {round}: a claim of 16 MiB with 1 byte cost {grown} KiB"
        );
    }
    signal::send(pid as i32, Signal::TERM).unwrap();
    let out = rx.wait(BOUND);
    assert!(
        stderr(&out).contains("ended inside a frame"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn send_to_a_fifo_without_reader_fails_at_once_unless_given_time() {
    let dir = TempDir::new();
    let path = dir.join("lonely.fifo");
    let ep = format!("fifo:{path}");
    let _fifo = ipcx::fifo::Fifo::create(&path).unwrap();

    let child = ipcx()
        .args(["send", &ep, "x"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, BOUND);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no reader") && stderr(&out).contains("start the receiver first"),
        "{}",
        stderr(&out)
    );

    // --timeout waits that long for a reader: none comes, exit 3.
    let start = Instant::now();
    let out = run(&["send", &ep, "x", "--timeout", "300ms"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(start.elapsed() >= Duration::from_millis(300));

    // One comes in time: the message is delivered.
    let sender = Bg::spawn(&["send", &ep, "late reader", "--timeout", "20s"]);
    std::thread::sleep(Duration::from_millis(200));
    let mut reader = ipcx::fifo::open_reader(&path).unwrap();
    assert_eq!(reader.recv_timeout(BOUND).unwrap(), b"late reader");
    let out = sender.wait(BOUND);
    assert!(out.status.success(), "{}", stderr(&out));
}
