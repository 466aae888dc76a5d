//! `zenoh:` endpoints between real `ipcx` processes on loopback: peer mode, explicit locators
//! (multicast scouting off), a fresh port per test.
#![cfg(feature = "zenoh")]

mod util;

use std::time::{Duration, Instant};

use util::port::stable_tcp_port;
use util::{Bg, run, run_with_stdin, stderr, stdout, succeeded, unique};

/// A loopback locator on a port of its own.
fn locator() -> String {
    format!("tcp/127.0.0.1:{}", stable_tcp_port())
}

/// A key of its own for one test.
fn key(tag: &str) -> String {
    format!("ipcx-test/{}", unique(tag))
}

/// The JSON records of `out`, one per line.
fn records(out: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn send_reaches_recv() {
    let at = locator();
    let ep = format!("zenoh:{}", key("sr"));
    let rx = Bg::spawn(&[
        "recv",
        &ep,
        "--count",
        "3",
        "--timeout",
        "20s",
        "--zenoh-listen",
        &at,
    ]);
    // The sender retries the connection and waits for the subscriber to match: no sleep.
    succeeded(run(&[
        "send",
        &ep,
        "one",
        "two",
        "three",
        "--zenoh-connect",
        &at,
        "--timeout",
        "20s",
    ]));
    let out = succeeded(rx.wait(Duration::from_secs(30)));
    assert_eq!(stdout(&out), "one\ntwo\nthree\n");
}

#[test]
fn a_wildcard_receiver_reports_each_key() {
    let at = locator();
    let base = key("wild");
    let rx = Bg::spawn(&[
        "recv",
        &format!("zenoh:{base}/**"),
        "--json",
        "--count",
        "3",
        "--timeout",
        "20s",
        "--zenoh-listen",
        &at,
    ]);
    for (sub, msg) in [("a", "first"), ("b/c", "second"), ("a", "\u{1}\u{2}")] {
        succeeded(run(&[
            "send",
            &format!("zenoh:{base}/{sub}"),
            msg,
            "--zenoh-connect",
            &at,
            "--timeout",
            "20s",
        ]));
    }
    let recs = records(&succeeded(rx.wait(Duration::from_secs(30))));
    let got: Vec<(String, String)> = recs
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (format!("{base}/a"), "first".to_owned()),
            (format!("{base}/b/c"), "second".to_owned()),
            (format!("{base}/a"), "\u{1}\u{2}".to_owned()),
        ]
    );
}

#[test]
fn pub_reaches_two_subscribers() {
    let (at1, at2) = (locator(), locator());
    let ep = format!("zenoh:{}", key("ps"));
    let subs: Vec<Bg> = [&at1, &at2]
        .iter()
        .map(|at| {
            Bg::spawn(&[
                "sub",
                &ep,
                "--json",
                "--count",
                "2",
                "--timeout",
                "20s",
                "--zenoh-listen",
                at,
            ])
        })
        .collect();
    succeeded(run(&[
        "pub",
        &ep,
        "tick",
        "tock",
        "--zenoh-connect",
        &at1,
        "--zenoh-connect",
        &at2,
        "--timeout",
        "20s",
    ]));
    for s in subs {
        let recs = records(&succeeded(s.wait(Duration::from_secs(30))));
        let texts: Vec<&str> = recs.iter().map(|r| r["text"].as_str().unwrap()).collect();
        assert_eq!(texts, ["tick", "tock"]);
        assert!(recs.iter().all(|r| r["key"] == ep["zenoh:".len()..]));
    }
}

#[test]
fn many_messages_arrive_in_order_and_none_is_lost() {
    const N: usize = 100_000;
    let at = locator();
    let ep = format!("zenoh:{}", key("many"));
    let n = N.to_string();
    let rx = Bg::spawn(&[
        "recv",
        &ep,
        "--count",
        &n,
        "--timeout",
        "30s",
        "--zenoh-listen",
        &at,
    ]);
    // Read the receiver's output while it runs: a receiver blocked on a full stdout pipe
    // would stall the flow.
    let rx = std::thread::spawn(move || rx.wait(Duration::from_secs(60)));
    let input: String = (0..N).map(|i| format!("{i}\n")).collect();
    succeeded(run_with_stdin(
        &["send", &ep, "--zenoh-connect", &at, "--timeout", "20s"],
        input.as_bytes(),
    ));
    let out = rx.join().unwrap();
    let got = stdout(&out);
    assert!(
        out.status.success(),
        "{} of {N} arrived: {}",
        got.lines().count(),
        stderr(&out)
    );
    let mut lines = got.lines();
    for i in 0..N {
        assert_eq!(lines.next(), Some(i.to_string().as_str()), "message {i}");
    }
    assert_eq!(lines.next(), None);
}

#[test]
fn a_bridge_carries_a_ring_topic_to_zenoh() {
    let at = locator();
    let ring = format!("shm:/{}", unique("zbr"));
    let _remove = util::Remove(vec![ring.clone()]);
    let ep = format!("zenoh:{}", key("bridge"));
    let rx = Bg::spawn(&[
        "recv",
        &ep,
        "--json",
        "--count",
        "3",
        "--timeout",
        "20s",
        "--zenoh-listen",
        &at,
    ]);
    let mut bridge = Bg::spawn(&[
        "bridge",
        &ring,
        &ep,
        "--json",
        "--count",
        "3",
        "--timeout",
        "20s",
        "--zenoh-connect",
        &at,
    ]);
    let ready = bridge.read_stdout_line();
    assert!(ready.contains("\"ready\""), "{ready}");
    succeeded(run(&["send", &ring, "one", "two", "three"]));
    let recs = records(&succeeded(rx.wait(Duration::from_secs(30))));
    let texts: Vec<&str> = recs.iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    assert!(recs.iter().all(|r| r["key"] == ep["zenoh:".len()..]));
    succeeded(bridge.wait(Duration::from_secs(30)));
}

#[test]
fn malformed_keys_and_locators_are_usage_errors() {
    for (args, needle) in [
        (vec!["send", "zenoh:robot/", "x"], "key expression"),
        (vec!["recv", "zenoh:a//b"], "key expression"),
        (
            vec!["send", "zenoh:robot/**", "x"],
            "wildcards are for receiving",
        ),
        (
            vec!["send", "zenoh:a", "x", "--zenoh-connect", "127.0.0.1:7447"],
            "not a Zenoh locator",
        ),
        (
            vec!["recv", "zenoh:a", "--zenoh-listen", "udp/127.0.0.1:7447"],
            "tcp only",
        ),
        (
            vec!["sub", "zenoh:a", "--topic", "x"],
            "key expression is the topic",
        ),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains(".rs:"), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn an_unreachable_peer_fails_within_the_timeout() {
    // A port nobody listens on: bound, then closed.
    let at = locator();
    let start = Instant::now();
    let out = run(&[
        "send",
        &format!("zenoh:{}", key("unreach")),
        "x",
        "--zenoh-connect",
        &at,
        "--timeout",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("no Zenoh peer at {at}")),
        "{}",
        stderr(&out)
    );
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_send_that_no_subscriber_matches_exits_3() {
    let out = run(&[
        "send",
        &format!("zenoh:{}", key("nosub")),
        "lost?",
        "--zenoh-listen",
        &locator(),
        "--timeout",
        "300ms",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no subscriber matches"),
        "{}",
        stderr(&out)
    );
}

/// Whether python3 has Zenoh's own client (`eclipse-zenoh`); without it the interop tests print
/// a skip note, unless `IPCX_INTEROP=1`, which makes its absence a failure.
fn python_zenoh() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import zenoh"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = "python3 cannot import zenoh: pip install eclipse-zenoh==1.10.2";
        assert!(
            std::env::var("IPCX_INTEROP").as_deref() != Ok("1"),
            "IPCX_INTEROP=1 but {msg}"
        );
        eprintln!("skipped: {msg} (IPCX_INTEROP=1 makes this a failure)");
    }
    ok
}

/// A Python session of Zenoh's own client: `LOCATOR MODE` (`listen` or `connect`), multicast
/// scouting off.
const PY_SESSION: &str = r#"
import json, sys, zenoh
def session(locator, how):
    conf = zenoh.Config()
    conf.insert_json5(how + "/endpoints", json.dumps([locator]))
    conf.insert_json5("scouting/multicast/enabled", "false")
    return zenoh.open(conf)
"#;

/// Subscribes to KEYEXPR and prints COUNT samples as `{"key", "hex"}` lines. Arguments:
/// `LOCATOR KEYEXPR COUNT`.
const PY_SUBSCRIBER: &str = r#"
s = session(sys.argv[1], "listen")
sub = s.declare_subscriber(sys.argv[2])
for _ in range(int(sys.argv[3])):
    sample = sub.recv()
    print(json.dumps({"key": str(sample.key_expr), "hex": sample.payload.to_bytes().hex()}), flush=True)
s.close()
"#;

/// Waits for a matching subscriber, then puts each HEX payload under KEY. Arguments:
/// `LOCATOR KEY HEX...`.
const PY_PUBLISHER: &str = r#"
import time
s = session(sys.argv[1], "connect")
pub = s.declare_publisher(sys.argv[2])
deadline = time.monotonic() + 20
while not pub.matching_status.matching:
    assert time.monotonic() < deadline, "no subscriber matched"
    time.sleep(0.01)
for h in sys.argv[3:]:
    pub.put(bytes.fromhex(h))
time.sleep(0.5)
s.close()
"#;

/// `python3 -c PY_SESSION+SCRIPT ARGS...`, its output piped.
fn python(script: &str, args: &[&str]) -> std::process::Child {
    std::process::Command::new("python3")
        .arg("-c")
        .arg(format!("{PY_SESSION}{script}"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn python3")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn zenohs_python_subscriber_receives_what_ipcx_sends() {
    if !python_zenoh() {
        return;
    }
    let at = locator();
    let base = key("py-sub");
    let payloads: [&[u8]; 3] = [b"hello", b"\xff\x00\x01 not utf-8", b""];
    let py = python(PY_SUBSCRIBER, &[&at, &format!("{base}/**"), "3"]);
    let input: Vec<u8> = payloads.join(&b'\n');
    succeeded(run_with_stdin(
        &[
            "send",
            &format!("zenoh:{base}/cam"),
            "--zenoh-connect",
            &at,
            "--timeout",
            "20s",
        ],
        &[input.as_slice(), b"\n"].concat(),
    ));
    let out = util::wait_output(py, Duration::from_secs(30));
    assert!(out.status.success(), "python: {}", stderr(&out));
    let got: Vec<(String, String)> = records(&out)
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["hex"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = payloads
        .iter()
        .map(|p| (format!("{base}/cam"), hex(p)))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn zenohs_python_publisher_reaches_ipcx_recv() {
    if !python_zenoh() {
        return;
    }
    let at = locator();
    let ep = key("py-pub");
    let payloads: [&[u8]; 3] = [b"one", b"\x00\xfe\xff", b"three"];
    let rx = Bg::spawn(&[
        "recv",
        &format!("zenoh:{ep}"),
        "--json",
        "--count",
        "3",
        "--timeout",
        "20s",
        "--zenoh-listen",
        &at,
    ]);
    let hexes: Vec<String> = payloads.iter().map(|p| hex(p)).collect();
    let mut args = vec![at.as_str(), ep.as_str()];
    args.extend(hexes.iter().map(String::as_str));
    let py = util::wait_output(python(PY_PUBLISHER, &args), Duration::from_secs(30));
    assert!(py.status.success(), "python: {}", stderr(&py));
    let recs = records(&succeeded(rx.wait(Duration::from_secs(30))));
    assert_eq!(recs.len(), 3);
    for (r, p) in recs.iter().zip(payloads) {
        assert_eq!(r["key"], ep.as_str());
        let bytes = match r.get("text") {
            Some(t) => t.as_str().unwrap().as_bytes().to_vec(),
            None => base64_decode(r["base64"].as_str().unwrap()),
        };
        assert_eq!(bytes, p);
    }
}

/// Standard base64 (the `base64` field of `recv --json`).
fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
