//! Load: many messages through every message transport (fifo, mq, sysv-mq, unix stream,
//! unix-dgram, unix-seqpacket, tcp, udp, shm ring) from 4 concurrent sender processes to one
//! receiver process. None may be lost, duplicated, reordered per sender or torn (UDP is
//! excepted from the loss and order checks: it drops datagrams under load by nature, and the
//! test counts them). Each test prints the time and the receiver's peak RSS (`VmHWM` of the
//! receiver process):
//! `load <transport>: messages=N senders=4 time=T s receiver_peak_rss=K KiB lost=L duplicated=D reordered=R torn=X`.
//!
//! A ring has one publisher at a time: its 4 senders start together and take turns (each
//! waits for the publisher place, then sends its share).
//!
//! # How many
//! `IPCX_LOAD_MESSAGES=N` sets the total per transport (default 10^6, the full figure: about
//! 70 s for all transports in a debug build on 2 busy cores with the default two test threads,
//! two minutes with one; unix-dgram is the slowest at about 35 s). For a quick look use fewer,
//! for clean timings run them one at a time in release:
//! ```text
//! IPCX_LOAD_MESSAGES=100000 cargo test -p ipcx --test load -- --nocapture
//! cargo test --release -p ipcx --test load -- --nocapture --test-threads=1
//! ```
mod util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ipcx::channel::{Endpoint, Error, MessageSender};
use util::fault::{self, Checked, Place};

/// Concurrent senders.
const SENDERS: u32 = 4;
/// Bytes per message.
const SIZE: usize = 64;

/// Messages per transport: `IPCX_LOAD_MESSAGES`, default 10^6.
fn messages() -> u64 {
    std::env::var("IPCX_LOAD_MESSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

#[test]
fn child_role() {
    util::role_main(&[("load_recv", role_recv), ("load_send", role_send)]);
}

/// Connects, retrying for as long as `patience` (a ring's publisher place is taken while
/// another sender sends its share).
fn connect(ep: &Endpoint, patience: Duration) -> Box<dyn MessageSender> {
    let deadline = Instant::now() + patience;
    loop {
        match ep.sender(&fault::sender_options()) {
            Ok(tx) => return tx,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("{ep}: cannot open a sender: {e}"),
        }
    }
}

/// Sends `count` messages numbered from 0, then prints `sent N` (`error ...` on a failure).
fn role_send(args: &[String]) {
    fault::exit_when_stdin_closes(None);
    let ep = Endpoint::parse(&args[0]).unwrap();
    let id: u32 = args[1].parse().unwrap();
    let count: u64 = args[2].parse().unwrap();
    let mut tx = connect(&ep, Duration::from_secs(3600));
    let mut buf = vec![0u8; SIZE];
    for seq in 0..count {
        fault::fill(&mut buf, id, seq);
        if let Err(e) = tx.send_timeout(&buf, Duration::from_secs(60)) {
            fault::say(&format!("error at {seq}: {e}"));
            std::process::exit(3);
        }
    }
    // Senders with a closing handshake (streams) flush on drop.
    drop(tx);
    fault::say(&format!("sent {count}"));
}

/// The receiver's peak resident set size in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Receives until every sender's share arrived, or, once stdin closes (every sender is done),
/// until nothing arrived for a second; prints the counts and the peak RSS.
fn role_recv(args: &[String]) {
    static SENDERS_DONE: AtomicBool = AtomicBool::new(false);
    fault::exit_when_stdin_closes(Some(Box::new(|| {
        SENDERS_DONE.store(true, Ordering::SeqCst)
    })));
    let ep = Endpoint::parse(&args[0]).unwrap();
    let per_sender: u64 = args[1].parse().unwrap();
    let mut rx = ep
        .receiver(&fault::receiver_options(&ep))
        .unwrap_or_else(|e| panic!("{ep}: receiver: {e}"));
    fault::say("ready");
    let total = per_sender * u64::from(SENDERS);
    let mut seen: Vec<Vec<bool>> = (0..SENDERS)
        .map(|_| vec![false; per_sender as usize])
        .collect();
    let mut highest: Vec<Option<u64>> = vec![None; SENDERS as usize];
    let (mut got, mut duplicated, mut reordered, mut torn) = (0u64, 0u64, 0u64, 0u64);
    let mut errors = 0u64;
    let mut quiet = Instant::now();
    while got < total {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(m) => {
                quiet = Instant::now();
                match fault::check(&m.data) {
                    Ok(Checked::Data { id, seq }) if id < SENDERS && seq < per_sender => {
                        let flag = &mut seen[id as usize][seq as usize];
                        if *flag {
                            duplicated += 1;
                            continue;
                        }
                        *flag = true;
                        got += 1;
                        let h = &mut highest[id as usize];
                        if h.is_some_and(|h| seq < h) {
                            reordered += 1;
                        } else {
                            *h = Some(seq);
                        }
                    }
                    _ => torn += 1,
                }
            }
            Err(Error::Timeout) => {
                if SENDERS_DONE.load(Ordering::SeqCst) && quiet.elapsed() > Duration::from_secs(1) {
                    break;
                }
            }
            Err(e) if e.is_recoverable() => errors += 1,
            Err(e) => panic!("{ep}: receive: {e}"),
        }
    }
    fault::say(&format!(
        "done got={got} lost={} duplicated={duplicated} reordered={reordered} torn={torn} \
         errors={errors} peak_rss_kib={}",
        total - got,
        peak_rss_kib()
    ));
}

/// Parses `key=value` from the receiver's closing line.
fn field(line: &str, key: &str) -> u64 {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

fn run(name: &str) {
    let total = messages();
    let per_sender = total.div_ceil(u64::from(SENDERS));
    let place = Place::new(name);
    let ep = place.endpoint.to_string();
    let mut rx = fault::spawn_piped("load_recv", &[&ep, &per_sender.to_string()]);
    assert_eq!(
        rx.line(Duration::from_secs(30)).as_deref(),
        Some("ready"),
        "{ep}: receiver"
    );
    let t0 = Instant::now();
    let senders: Vec<_> = (0..SENDERS)
        .map(|id| {
            fault::spawn_piped(
                "load_send",
                &[&ep, &id.to_string(), &per_sender.to_string()],
            )
        })
        .collect();
    for (id, s) in senders.into_iter().enumerate() {
        let line = s.line(Duration::from_secs(3600));
        assert_eq!(
            line,
            Some(format!("sent {per_sender}")),
            "{ep}: sender {id}"
        );
    }
    rx.close_stdin();
    let done = rx
        .line(Duration::from_secs(600))
        .unwrap_or_else(|| panic!("{ep}: the receiver did not finish"));
    let took = t0.elapsed();
    let (lost, dup, reord, torn) = (
        field(&done, "lost"),
        field(&done, "duplicated"),
        field(&done, "reordered"),
        field(&done, "torn"),
    );
    eprintln!(
        "load {name}: messages={} senders={SENDERS} time={:.2} s receiver_peak_rss={} KiB \
         lost={lost} duplicated={dup} reordered={reord} torn={torn}",
        per_sender * u64::from(SENDERS),
        took.as_secs_f64(),
        field(&done, "peak_rss_kib"),
    );
    assert_eq!((dup, torn), (0, 0), "{ep}: {done}");
    if name != "udp" {
        assert_eq!((lost, reord), (0, 0), "{ep}: {done}");
    }
}

#[test]
fn load_fifo() {
    run("fifo");
}

#[test]
fn load_mq() {
    run("mq");
}

#[test]
fn load_sysv_mq() {
    run("sysv-mq");
}

#[test]
fn load_unix_stream() {
    run("unix");
}

#[test]
fn load_unix_dgram() {
    run("unix-dgram");
}

#[test]
fn load_unix_seqpacket() {
    run("unix-seqpacket");
}

#[test]
fn load_tcp() {
    run("tcp");
}

#[test]
fn load_udp() {
    run("udp");
}

#[test]
fn load_shm_ring() {
    run("shm");
}
