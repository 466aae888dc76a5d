//! `ipcx bridge FROM TO` between real processes: a matrix of transport kinds, a slow
//! destination, a killed sender, priorities and types kept, SIGTERM cleanup, a Python feeder.

mod util;

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::Duration;

use util::{Bg, Remove, TempDir, free_port, ipcx, run, stderr, stdout, unique};

const WAIT: Duration = Duration::from_secs(30);

/// A transport kind of the matrix, with fresh addresses.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Mq,
    SysvMq,
    Fifo,
    Unix,
    Seqpacket,
    Tcp,
    Udp,
    Shm,
}

/// An endpoint of `kind` for one test, and what to remove should the test fail.
fn endpoint(kind: Kind, dir: &TempDir, cleanup: &mut Vec<String>) -> String {
    let ep = match kind {
        Kind::Mq => format!("mq:/{}", unique("br")),
        Kind::SysvMq => format!("sysv-mq:{}", util::sysv_key()),
        Kind::Fifo => format!("fifo:{}", dir.join(&unique("fifo"))),
        Kind::Unix => format!("unix:@{}", unique("br")),
        Kind::Seqpacket => format!("unix-seqpacket:@{}", unique("br")),
        Kind::Tcp => format!("tcp:127.0.0.1:{}", free_port(false)),
        Kind::Udp => format!("udp:127.0.0.1:{}", free_port(true)),
        Kind::Shm => format!("shm:/{}", unique("br")),
    };
    if matches!(kind, Kind::Mq | Kind::SysvMq | Kind::Shm) {
        cleanup.push(ep.clone());
    }
    ep
}

/// Starts `ipcx bridge FROM TO --json ARGS` and waits for its `ready` line.
fn start_bridge(from: &str, to: &str, args: &[&str]) -> Bg {
    let mut all = vec!["bridge", from, to, "--json", "--timeout", "20s"];
    all.extend_from_slice(args);
    let mut bg = Bg::spawn(&all);
    let ready = bg.read_stdout_line();
    match serde_json::from_str::<serde_json::Value>(&ready) {
        Ok(v) => assert_eq!(v["event"], "ready", "{ready}"),
        Err(e) => {
            let out = bg.wait(WAIT);
            panic!(
                "bridge {from} -> {to}: no ready line ({e}): {ready:?}; stderr: {}",
                stderr(&out)
            )
        }
    }
    bg
}

/// Starts `ipcx recv TO --json --count N` (it binds or creates TO).
fn start_recv(to: &str, count: usize) -> Bg {
    let n = count.to_string();
    Bg::spawn(&["recv", to, "--json", "--count", &n, "--timeout", "20s"])
}

/// The texts of `recv --json` output lines, and the parsed objects.
fn texts(out: &str) -> (Vec<String>, Vec<serde_json::Value>) {
    let objs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let t = objs
        .iter()
        .map(|o| o["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    (t, objs)
}

/// The bridge's last JSON line (its end report).
fn end_report(out: &str) -> serde_json::Value {
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// Waits until the receiver at `to` is there to connect to (sockets) or exists (queues).
fn wait_receiver(kind: Kind) {
    // Receivers bind or create at once; connecting senders retry within the bridge's
    // --timeout, so a short pause only saves retries.
    if matches!(kind, Kind::Udp) {
        std::thread::sleep(Duration::from_millis(200));
    } else {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn forward_three(from_kind: Kind, to_kind: Kind) {
    let dir = TempDir::new();
    let mut cleanup = Vec::new();
    let from = endpoint(from_kind, &dir, &mut cleanup);
    let to = endpoint(to_kind, &dir, &mut cleanup);
    let _guard = Remove(cleanup);
    let rx = start_recv(&to, 3);
    wait_receiver(to_kind);
    let bridge = start_bridge(&from, &to, &["--count", "3"]);
    let sent = run(&["send", &from, "one", "two", "three"]);
    assert!(sent.status.success(), "{from}: {}", stderr(&sent));
    let got = rx.wait(WAIT);
    let (t, _) = texts(&stdout(&got));
    assert_eq!(
        t,
        ["one", "two", "three"],
        "{from} -> {to}: {}",
        stderr(&got)
    );
    let out = bridge.wait(WAIT);
    assert!(out.status.success(), "{from} -> {to}: {}", stderr(&out));
    let end = end_report(&stdout(&out));
    assert_eq!(end["forwarded"], 3, "{end}");
    assert_eq!(end["reason"], "count", "{end}");
}

#[test]
fn matrix_of_transport_kinds() {
    use Kind::*;
    let kinds = [Mq, SysvMq, Fifo, Unix, Seqpacket, Tcp, Shm];
    // Every kind is a source twice and a destination twice, each time with another partner.
    for (i, &from) in kinds.iter().enumerate() {
        for step in [1, 3] {
            let to = kinds[(i + step) % kinds.len()];
            forward_three(from, to);
        }
    }
    // UDP where it makes sense: a few datagrams on the loopback arrive.
    forward_three(Udp, Unix);
    forward_three(Mq, Udp);
}

#[test]
fn slow_destination_loses_nothing_and_keeps_order() {
    let from = format!("unix:@{}", unique("slow-in"));
    let q = format!("/{}", unique("slow-out"));
    let to = format!("mq:{q}");
    let _guard = Remove(vec![to.clone()]);
    // The bridge creates the destination queue (10 messages at most by default) and nobody
    // reads it yet: the bridge must wait, not drop.
    let bridge = start_bridge(&from, &to, &["--count", "60", "--create"]);
    let msgs: Vec<String> = (0..60).map(|i| format!("m{i:02}")).collect();
    let mut args = vec!["send", &from];
    args.extend(msgs.iter().map(String::as_str));
    let sender = Bg::spawn(&args);
    assert!(util::wait_for(
        || util::mq_messages(&q).is_some_and(|n| n >= 10)
    ));
    std::thread::sleep(Duration::from_millis(300));
    assert!(util::mq_messages(&q).unwrap() <= 10);
    let rx = start_recv(&to, 60);
    let got = rx.wait(WAIT);
    assert_eq!(texts(&stdout(&got)).0, msgs, "{}", stderr(&got));
    assert!(sender.wait(WAIT).status.success());
    let out = bridge.wait(WAIT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(end_report(&stdout(&out))["forwarded"], 60);
}

/// A sender process whose stdin we hold: each line written is one message.
fn piped_sender(to: &str) -> Child {
    ipcx()
        .args(["send", to])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ipcx send")
}

#[test]
fn a_killed_sender_does_not_end_the_bridge() {
    let dir = TempDir::new();
    for from in [
        format!("unix:@{}", unique("killed")),
        format!("fifo:{}", dir.join("killed")),
        format!("tcp:127.0.0.1:{}", free_port(false)),
    ] {
        let q = format!("mq:/{}", unique("killed-out"));
        let _guard = Remove(vec![q.clone()]);
        let mut rx = start_recv(&q, 3);
        std::thread::sleep(Duration::from_millis(50));
        let bridge = start_bridge(&from, &q, &["--count", "3"]);
        let mut sender = piped_sender(&from);
        sender.stdin.as_mut().unwrap().write_all(b"a\nb\n").unwrap();
        let first = rx.read_stdout_line();
        let second = rx.read_stdout_line();
        assert!(
            first.contains("\"a\"") && second.contains("\"b\""),
            "{first} {second}"
        );
        sender.kill().unwrap();
        sender.wait().unwrap();
        let sent = run(&["send", &from, "c"]);
        assert!(sent.status.success(), "{from}: {}", stderr(&sent));
        let got = rx.wait(WAIT);
        assert_eq!(texts(&stdout(&got)).0, ["c"], "{from}: {}", stderr(&got));
        let out = bridge.wait(WAIT);
        assert!(out.status.success(), "{from}: {}", stderr(&out));
        assert_eq!(end_report(&stdout(&out))["forwarded"], 3);
    }
}

#[test]
fn a_sender_killed_inside_a_frame_loses_only_that_frame() {
    // Python writes two whole frames and half of a third, then kills itself.
    let name = unique("torn");
    let from = format!("unix:@{name}");
    let q = format!("mq:/{}", unique("torn-out"));
    let _guard = Remove(vec![q.clone()]);
    let mut rx = start_recv(&q, 3);
    std::thread::sleep(Duration::from_millis(50));
    let bridge = start_bridge(&from, &q, &["--count", "3"]);
    let code = format!(
        r#"
import os, signal, socket, struct
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("\0{name}")
for m in (b"x1", b"x2"):
    s.sendall(struct.pack(">I", len(m)) + m)
s.sendall(struct.pack(">I", 100) + b"half")
os.kill(os.getpid(), signal.SIGKILL)
"#
    );
    if !python(&code, false) {
        return;
    }
    let first_two = [rx.read_stdout_line(), rx.read_stdout_line()].join("\n");
    assert_eq!(texts(&first_two).0, ["x1", "x2"]);
    let sent = run(&["send", &from, "x3"]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    let got = rx.wait(WAIT);
    assert_eq!(texts(&stdout(&got)).0, ["x3"]);
    let out = bridge.wait(WAIT);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Runs Python `code`; false (with a note) when python3 is missing. `ok`: it must succeed.
fn python(code: &str, ok: bool) -> bool {
    match std::process::Command::new("python3")
        .args(["-c", code])
        .status()
    {
        Ok(s) => {
            assert!(!ok || s.success(), "python3 failed: {code}");
            true
        }
        Err(e) => {
            eprintln!("skipped: no python3 ({e})");
            false
        }
    }
}

#[test]
fn posix_priorities_are_kept() {
    let from = format!("mq:/{}", unique("prio-in"));
    let to = format!("mq:/{}", unique("prio-out"));
    let _guard = Remove(vec![from.clone(), to.clone()]);
    let rx = start_recv(&to, 3);
    std::thread::sleep(Duration::from_millis(50));
    let bridge = start_bridge(&from, &to, &["--count", "3"]);
    for (m, p) in [("p7", "7"), ("p0", "0"), ("p2", "2")] {
        let sent = run(&["send", &from, m, "--priority", p]);
        assert!(sent.status.success(), "{}", stderr(&sent));
    }
    let got = rx.wait(WAIT);
    let (_, objs) = texts(&stdout(&got));
    assert_eq!(objs.len(), 3, "{}", stderr(&got));
    for o in &objs {
        let text = o["text"].as_str().unwrap();
        assert_eq!(o["priority"].to_string(), text[1..], "{o}");
    }
    assert!(bridge.wait(WAIT).status.success());
}

#[test]
fn sysv_types_are_kept() {
    let from = format!("sysv-mq:{}", util::sysv_key());
    let to = format!("sysv-mq:{}", util::sysv_key());
    let _guard = Remove(vec![from.clone(), to.clone()]);
    let rx = start_recv(&to, 3);
    std::thread::sleep(Duration::from_millis(50));
    let bridge = start_bridge(&from, &to, &["--count", "3"]);
    for (m, t) in [("t5", "5"), ("t1", "1"), ("t9", "9")] {
        let sent = run(&["send", &from, m, "--type", t]);
        assert!(sent.status.success(), "{}", stderr(&sent));
    }
    let got = rx.wait(WAIT);
    let (t, objs) = texts(&stdout(&got));
    assert_eq!(t, ["t5", "t1", "t9"], "{}", stderr(&got));
    for o in &objs {
        let text = o["text"].as_str().unwrap();
        assert_eq!(o["type"].to_string(), text[1..], "{o}");
    }
    assert!(bridge.wait(WAIT).status.success());
}

#[test]
fn sigterm_ends_it_cleanly_and_removes_what_it_created() {
    let dir = TempDir::new();
    let q = unique("term-in");
    let fifo = dir.join("term-fifo");
    let sock = dir.join("term.sock");
    let cases = [
        (format!("mq:/{q}"), None),
        (format!("fifo:{fifo}"), Some(fifo.clone())),
        (format!("unix:{sock}"), Some(sock.clone())),
    ];
    for (from, path) in cases {
        let to = format!("unix:@{}", unique("term-out"));
        let _guard = Remove(vec![from.clone()]);
        let mut rx = start_recv(&to, 1000);
        std::thread::sleep(Duration::from_millis(50));
        let bridge = start_bridge(&from, &to, &[]);
        let exists = || match &path {
            Some(p) => std::path::Path::new(p).exists(),
            None => util::mq_exists(&format!("/{q}")),
        };
        assert!(exists(), "{from} was created");
        let sent = run(&["send", &from, "before"]);
        assert!(sent.status.success());
        assert!(rx.read_stdout_line().contains("before"));
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &bridge.pid().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = bridge.wait(WAIT);
        assert!(out.status.success(), "{from}: {}", stderr(&out));
        let end = end_report(&stdout(&out));
        assert_eq!(end["reason"], "stopped", "{end}");
        assert_eq!(end["forwarded"], 1, "{end}");
        assert!(!exists(), "{from} is removed at exit");
    }
}

#[test]
fn json_reports() {
    let from = format!("unix:@{}", unique("json-in"));
    let to = format!("unix-seqpacket:@{}", unique("json-out"));
    let rx = start_recv(&to, 2);
    std::thread::sleep(Duration::from_millis(50));
    let mut all = vec![
        "bridge",
        from.as_str(),
        to.as_str(),
        "--json",
        "--count",
        "2",
    ];
    all.extend(["--timeout", "20s"]);
    let mut bridge = Bg::spawn(&all);
    let ready: serde_json::Value = serde_json::from_str(&bridge.read_stdout_line()).unwrap();
    assert_eq!(
        ready,
        serde_json::json!({"event": "ready", "from": from, "to": to})
    );
    assert!(run(&["send", &from, "héllo", "x"]).status.success());
    rx.wait(WAIT);
    let out = bridge.wait(WAIT);
    let end = end_report(&stdout(&out));
    assert_eq!(
        end,
        serde_json::json!({"event": "end", "from": from, "to": to, "reason": "count",
            "forwarded": 2, "bytes": 7, "held": 0})
    );
}

#[test]
fn python_socket_feeds_a_bridge() {
    // A program we did not write: Python's socket module speaks the framing (4-byte big-endian
    // length, then the bytes) over TCP into a bridge to a POSIX queue.
    let port = free_port(false);
    let from = format!("tcp:127.0.0.1:{port}");
    let to = format!("mq:/{}", unique("py-out"));
    let _guard = Remove(vec![to.clone()]);
    let rx = start_recv(&to, 3);
    std::thread::sleep(Duration::from_millis(50));
    let bridge = start_bridge(&from, &to, &["--count", "3"]);
    let code = format!(
        r#"
import socket, struct
s = socket.create_connection(("127.0.0.1", {port}))
for m in (b"from", b"python", b"\xff\x00"):
    s.sendall(struct.pack(">I", len(m)) + m)
s.close()
"#
    );
    if !python(&code, true) {
        return;
    }
    let got = rx.wait(WAIT);
    let (t, objs) = texts(&stdout(&got));
    assert_eq!(t[..2], ["from", "python"]);
    assert_eq!(objs[2]["base64"], "/wA=");
    assert!(bridge.wait(WAIT).status.success());
}

#[test]
fn the_destination_restarting_gets_the_message_held() {
    let from = format!("mq:/{}", unique("re-in"));
    let to = format!("unix:@{}", unique("re-out"));
    let _guard = Remove(vec![from.clone()]);
    let rx = start_recv(&to, 1);
    std::thread::sleep(Duration::from_millis(50));
    let bridge = start_bridge(&from, &to, &["--count", "2"]);
    assert!(run(&["send", &from, "first"]).status.success());
    assert_eq!(texts(&stdout(&rx.wait(WAIT))).0, ["first"]);
    // The receiver is gone; the next message waits in the bridge for the next receiver.
    assert!(run(&["send", &from, "second"]).status.success());
    std::thread::sleep(Duration::from_millis(300));
    let rx = start_recv(&to, 1);
    assert_eq!(texts(&stdout(&rx.wait(WAIT))).0, ["second"]);
    let out = bridge.wait(WAIT);
    assert!(out.status.success(), "{}", stderr(&out));
}
