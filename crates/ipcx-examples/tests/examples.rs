//! Runs every example pair end to end and checks what they print, so that the examples keep
//! working (they are documentation).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

/// A running example: killed on drop; its stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(exe: &str, args: &[&str]) -> Running {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start example");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; returns it.
    fn expect_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + LONG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => panic!("no line with {needle:?}; saw {:?}", self.seen),
            }
        }
    }

    /// Waits for the program to exit successfully; returns everything it printed.
    fn finish(mut self) -> Vec<String> {
        let deadline = Instant::now() + LONG;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            assert!(Instant::now() < deadline, "example did not exit");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(
            status.success(),
            "example failed: {status}; printed {:?}",
            self.seen
        );
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(l);
        }
        std::mem::take(&mut self.seen)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_ok(exe: &str, args: &[&str]) -> String {
    let out = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run example");
    assert!(
        out.status.success(),
        "{exe} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn unique(tag: &str) -> String {
    format!("ipcx-ex{}-{tag}", std::process::id())
}

#[test]
fn direct_sender_and_receiver() {
    let mut rx = Running::start(env!("CARGO_BIN_EXE_direct-receiver"), &["2"]);
    let line = rx.expect_line("send to pid");
    let pid = line.rsplit(' ').next().unwrap().to_owned();
    run_ok(
        env!("CARGO_BIN_EXE_direct-sender"),
        &[&pid, "hello", "world"],
    );
    let out = rx.finish();
    assert!(out.iter().any(|l| l.ends_with(": hello")), "{out:?}");
    assert!(out.iter().any(|l| l.ends_with(": world")), "{out:?}");
    assert!(out.iter().all(|l| !l.starts_with("from pid 0")), "{out:?}");
}

/// The mailbox example at `addr`: three jobs from the producer reach the consumer, in order,
/// and `object` (the queue's file) is gone afterwards.
fn mailbox_round(addr: &str, object: &str) {
    let mut consumer = Running::start(env!("CARGO_BIN_EXE_mailbox-consumer"), &[addr, "3"]);
    consumer.expect_line("ready");
    run_ok(
        env!("CARGO_BIN_EXE_mailbox-producer"),
        &[addr, "build", "test", "deploy"],
    );
    let out = consumer.finish();
    assert_eq!(out[1..], ["got: build", "got: test", "got: deploy"]);
    assert!(!std::path::Path::new(object).exists());
}

#[test]
fn mailbox_producer_and_consumer() {
    let name = format!("/{}", unique("jobs"));
    mailbox_round(&name, &format!("/dev/mqueue{name}"));
}

#[test]
fn mailbox_producer_and_consumer_over_the_ring() {
    let name = format!("/{}", unique("ringjobs"));
    mailbox_round(&format!("shm:{name}"), &format!("/dev/shm{name}"));
}

/// A publisher at `addr` and a subscriber to the `eur.` topic: the subscriber sees exactly the
/// three `eur.` prices.
fn pubsub_round(addr: &str) {
    let mut publisher = Running::start(env!("CARGO_BIN_EXE_pubsub-publisher"), &[addr, "1"]);
    publisher.expect_line("publishing on");
    let sub = Running::start(env!("CARGO_BIN_EXE_pubsub-subscriber"), &[addr, "eur."]);
    let out = sub.finish();
    assert_eq!(out, ["eur.usd = 1.08", "eur.usd = 1.09", "eur.usd = 1.07"]);
    publisher.finish();
}

#[test]
fn pubsub_publisher_and_subscriber() {
    pubsub_round(&format!("unix:@{}", unique("prices")));
}

#[test]
fn pubsub_publisher_and_subscriber_over_the_ring() {
    let name = format!("/{}", unique("ringprices"));
    pubsub_round(&format!("shm:{name}"));
    assert!(!std::path::Path::new(&format!("/dev/shm{name}")).exists());
}

#[test]
fn pool_distributor_and_workers() {
    let addr = format!("unix:@{}", unique("pool"));
    let mut dist = Running::start(env!("CARGO_BIN_EXE_pool-distributor"), &[&addr, "10"]);
    dist.expect_line("distributing on");
    let w1 = Running::start(env!("CARGO_BIN_EXE_pool-worker"), &[&addr]);
    let w2 = Running::start(env!("CARGO_BIN_EXE_pool-worker"), &[&addr]);
    let out = dist.finish();
    assert_eq!(out.iter().filter(|l| l.starts_with("result ")).count(), 10);
    assert_eq!(out.last().map(String::as_str), Some("sum of squares: 385"));
    // The workers exit on their own once the distributor has gone.
    w1.finish();
    w2.finish();
}

/// Every RPC example server answers every RPC example client: sync and async, both ways.
#[test]
fn rpc_servers_and_clients_sync_and_async() {
    let servers = [
        ("calc", env!("CARGO_BIN_EXE_rpc-server")),
        ("calc-async", env!("CARGO_BIN_EXE_rpc-async-server")),
    ];
    let clients = [
        env!("CARGO_BIN_EXE_rpc-client"),
        env!("CARGO_BIN_EXE_rpc-async-client"),
    ];
    for (tag, server_bin) in servers {
        let addr = format!("unix:@{}", unique(tag));
        let mut server = Running::start(server_bin, &[&addr]);
        server.expect_line("serving calc");
        for client_bin in clients {
            assert_eq!(
                run_ok(client_bin, &[&addr]),
                "40 + 2 = 42\n1 / 0 failed: division by zero\n",
                "{client_bin} against {server_bin}"
            );
        }
    }
}
