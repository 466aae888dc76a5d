//! `ipcx recv` on sockets against hostile and faulty peers, run as real processes: peers that
//! claim huge frames, flood the receiver with idle connections, run as another user, or leave
//! a socket file behind.
mod util;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use util::{Bg, TempDir, run, stderr};

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

/// The resident set of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

#[test]
fn claimed_lengths_cost_the_receiver_only_what_arrives() {
    let dir = TempDir::new();
    let path = dir.join("claims.sock");
    let ep = format!("unix:{path}");
    let mut rx = Bg::spawn(&["recv", &ep, "--count", "4", "--timeout", "20s"]);
    let mut first = connect_when_ready(&path);
    first.write_all(&[0, 0, 0, 5]).unwrap();
    first.write_all(b"first").unwrap();
    assert_eq!(rx.read_stdout_line(), "first");
    let before = rss_kib(rx.pid());
    // Twenty peers each claim a 16 MiB frame, then send one byte of it. A good sender after
    // each step: once its message is out, the receiver has read what the peers sent before.
    let mut hostile: Vec<UnixStream> = (0..20)
        .map(|_| {
            let mut s = connect_when_ready(&path);
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
    eprintln!("receiver RSS: {before} KiB before, {after} KiB with 20 peers claiming 16 MiB each");
    assert!(
        after < before + 16 * 1024,
        "the receiver grew from {before} KiB to {after} KiB"
    );
    drop(hostile);
    let sent = run(&["send", &ep, "last"]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    let out = rx.wait(Duration::from_secs(30));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "last\n");
    assert!(out.status.success(), "{}", stderr(&out));
}
