//! `ipcx sub` and `ipcx pub` between real processes, over the ring, Unix and TCP.

mod util;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use util::{Bg, Remove, free_port, ipcx, run, stderr, stdout, unique, wait_output};

const WAIT: Duration = Duration::from_secs(30);

/// A fresh topic address of each kind, and what to remove should the test fail.
fn topics() -> (Vec<String>, Remove) {
    let ring = format!("shm:/{}", unique("topic"));
    let all = vec![
        ring.clone(),
        format!("unix:@{}", unique("topic")),
        format!(
            "unix:{}",
            std::env::temp_dir().join(unique("topic")).display()
        ),
        format!("tcp:127.0.0.1:{}", free_port(false)),
    ];
    (all, Remove(vec![ring]))
}

fn lines(out: &str) -> Vec<&str> {
    out.lines().collect()
}

#[test]
fn subscriber_started_first() {
    let (eps, _guard) = topics();
    for ep in &eps {
        // The publisher is not there yet: sub keeps trying to attach.
        let sub = Bg::spawn(&["sub", ep, "--count", "3", "--timeout", "20s"]);
        std::thread::sleep(Duration::from_millis(300));
        let p = run(&["pub", ep, "a", "b", "c"]);
        assert!(p.status.success(), "{ep}: {}", stderr(&p));
        let got = sub.wait(WAIT);
        assert!(got.status.success(), "{ep}: {}", stderr(&got));
        assert_eq!(lines(&stdout(&got)), ["a", "b", "c"], "{ep}");
    }
}

#[test]
fn publisher_started_first() {
    let (eps, _guard) = topics();
    for ep in &eps {
        // pub waits for its first subscriber before publishing.
        let publisher = Bg::spawn(&["pub", ep, "x", "y", "--timeout", "20s"]);
        std::thread::sleep(Duration::from_millis(300));
        let got = run(&["sub", ep, "--count", "2", "--timeout", "20s"]);
        assert!(got.status.success(), "{ep}: {}", stderr(&got));
        assert_eq!(lines(&stdout(&got)), ["x", "y"], "{ep}");
        let p = publisher.wait(WAIT);
        assert!(p.status.success(), "{ep}: {}", stderr(&p));
    }
}

#[test]
fn pub_with_no_subscriber_exits_3() {
    let (eps, _guard) = topics();
    for ep in &eps {
        let start = Instant::now();
        let p = run(&["pub", ep, "lost", "--timeout", "300ms"]);
        assert_eq!(p.status.code(), Some(3), "{ep}: {}", stderr(&p));
        assert!(stderr(&p).contains("no subscriber"), "{}", stderr(&p));
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}

#[test]
fn sub_with_no_publisher_exits_3() {
    let (eps, _guard) = topics();
    for ep in &eps {
        let s = run(&["sub", ep, "--timeout", "300ms"]);
        assert_eq!(s.status.code(), Some(3), "{ep}: {}", stderr(&s));
        assert!(stderr(&s).contains("no publisher"), "{}", stderr(&s));
    }
}

#[test]
fn pub_reads_stdin_lines_and_sub_filters_topics() {
    let ep = format!("unix:@{}", unique("stdin"));
    let sub = Bg::spawn(&[
        "sub",
        &ep,
        "--topic",
        "eur.",
        "--count",
        "2",
        "--timeout",
        "20s",
    ]);
    let other = Bg::spawn(&[
        "sub",
        &ep,
        "--topic",
        "usd.",
        "--count",
        "1",
        "--timeout",
        "2s",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let mut p = ipcx()
        .args(["pub", &ep, "--topic", "eur.usd", "--timeout", "20s"])
        .args(["--subscribers", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(b"1.08\n1.09\n").unwrap();
    let p = wait_output(p, WAIT);
    assert!(p.status.success(), "{}", stderr(&p));
    assert_eq!(lines(&stdout(&sub.wait(WAIT))), ["1.08", "1.09"]);
    // The other subscriber's topic had nothing: it times out.
    assert_eq!(other.wait(WAIT).status.code(), Some(3));
}

#[test]
fn sub_json_schema() {
    let (eps, _guard) = topics();
    for ep in &eps {
        let sub = Bg::spawn(&["sub", ep, "--json", "--count", "2", "--timeout", "20s"]);
        std::thread::sleep(Duration::from_millis(300));
        let p = run(&["pub", ep, "--topic", "t.1", "hello", "wörld"]);
        assert!(p.status.success(), "{ep}: {}", stderr(&p));
        let got = sub.wait(WAIT);
        let objs: Vec<serde_json::Value> = stdout(&got)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            objs,
            [
                serde_json::json!({"topic": "t.1", "text": "hello"}),
                serde_json::json!({"topic": "t.1", "text": "wörld"}),
            ],
            "{ep}"
        );
    }
}

#[test]
fn sub_waits_for_the_next_publisher() {
    let ep = format!("unix:@{}", unique("next"));
    let sub = Bg::spawn(&["sub", &ep, "--count", "2", "--timeout", "20s"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(run(&["pub", &ep, "first"]).status.success());
    std::thread::sleep(Duration::from_millis(200));
    let p = run(&["pub", &ep, "second"]);
    assert!(p.status.success(), "{}", stderr(&p));
    assert_eq!(lines(&stdout(&sub.wait(WAIT))), ["first", "second"]);
}

#[test]
fn a_ring_topic_is_removed_when_both_sides_are_done() {
    let name = unique("ring-gone");
    let ep = format!("shm:/{name}");
    let _guard = Remove(vec![ep.clone()]);
    let sub = Bg::spawn(&["sub", &ep, "--count", "1", "--timeout", "20s"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(run(&["pub", &ep, "only"]).status.success());
    assert!(sub.wait(WAIT).status.success());
    let path = format!("/dev/shm/{name}");
    assert!(
        util::wait_for(|| !std::path::Path::new(&path).exists()),
        "{path} is left behind"
    );
}
