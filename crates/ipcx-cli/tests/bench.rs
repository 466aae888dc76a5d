//! `ipcx bench` end to end: the table, the JSON and SVG files, usage errors, output paths
//! checked before the run, and Ctrl-C / a killed parent leaving nothing behind. Timings are
//! never asserted; every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ipcx() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ipcx"));
    c.stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    ipcx().args(args).output().expect("ipcx runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("ipcx-cli-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every row of the standard registry.
const ROWS: [&str; 21] = [
    "limit",
    "futex",
    "eventfd",
    "signal",
    "posix-sem",
    "sysv-sem",
    "mutex-condvar",
    "pipe",
    "fifo",
    "mq",
    "sysv-mq",
    "unix",
    "unix-dgram",
    "unix-seqpacket",
    "tcp",
    "udp",
    "bridge",
    "rpc-unix",
    "rpc-unix-msgpack",
    "rpc-shm",
    "rpc-shm-msgpack",
];

/// Rows and sizes that must show figures (not a skip) in every pattern they offer, and those
/// patterns. `fifo` at 4 KiB is left out until the library stops abandoning a FIFO frame whose
/// send deadline passes half-way ([`KNOWN_FAILING`]).
const MUST_MEASURE: &[(&str, &[u64], &[&str])] = &[
    ("limit", &[64], &["ping-pong"]),
    ("futex", &[64], &["ping-pong"]),
    ("eventfd", &[64], &["ping-pong"]),
    ("signal", &[64], &["ping-pong", "stream"]),
    ("posix-sem", &[64], &["ping-pong"]),
    ("sysv-sem", &[64], &["ping-pong"]),
    ("mutex-condvar", &[64], &["ping-pong"]),
    ("pipe", &[64, 4096], &["ping-pong", "stream"]),
    ("fifo", &[64], &["ping-pong", "stream"]),
    ("mq", &[64, 4096], &["ping-pong", "stream"]),
    ("sysv-mq", &[64, 4096], &["ping-pong", "stream"]),
    ("unix", &[64, 4096], &["ping-pong", "stream"]),
    ("unix-dgram", &[64, 4096], &["ping-pong", "stream"]),
    ("unix-seqpacket", &[64, 4096], &["ping-pong", "stream"]),
    ("tcp", &[64, 4096], &["ping-pong", "stream"]),
    ("udp", &[64, 4096], &["ping-pong", "stream"]),
    ("bridge", &[64, 4096], &["ping-pong", "stream"]),
    ("rpc-unix", &[64, 4096], &["ping-pong"]),
    ("rpc-unix-msgpack", &[64, 4096], &["ping-pong"]),
    ("rpc-shm", &[64, 4096], &["ping-pong"]),
    ("rpc-shm-msgpack", &[64, 4096], &["ping-pong"]),
];

/// Measurements that may fail for now (a library bug being fixed separately: a FIFO frame
/// larger than `PIPE_BUF` is abandoned when its send deadline passes half-way).
const KNOWN_FAILING: &[(&str, u64)] = &[("fifo", 4096)];

fn known_failure(r: &serde_json::Value) -> bool {
    KNOWN_FAILING.iter().any(|(m, size)| {
        r["mechanism"] == *m && r["payload_bytes"] == *size && r.get("error").is_some()
    })
}

fn check_schema(v: &serde_json::Value) {
    assert!(v["ipcx_version"].is_string(), "{v}");
    for k in ["model", "kernel"] {
        assert!(v["machine"][k].is_string(), "{k}: {v}");
    }
    assert!(v["machine"]["cpus"].as_u64().unwrap() >= 1);
    for r in v["results"].as_array().unwrap() {
        assert!(r["mechanism"].is_string(), "{r}");
        assert!(
            r["pattern"] == "ping-pong" || r["pattern"] == "stream",
            "{r}"
        );
        assert!(r["payload_bytes"].is_u64(), "{r}");
        assert_eq!(r["processes"], true, "{r}");
        match (
            r.get("rtt_ns"),
            r.get("throughput"),
            r.get("skipped"),
            r.get("error"),
        ) {
            (Some(rtt), None, None, None) => {
                for k in ["p50", "p99", "p999", "mean"] {
                    assert!(rtt[k].is_number(), "{k}: {r}");
                }
            }
            (None, Some(t), None, None) => {
                assert!(
                    t["msgs_per_s"].is_number() && t["bytes_per_s"].is_number(),
                    "{r}"
                )
            }
            (None, None, Some(s), None) => assert!(!s.as_str().unwrap().is_empty(), "{r}"),
            (None, None, None, Some(_)) if known_failure(r) => {
                eprintln!("known failure: {r}")
            }
            (None, None, None, Some(e)) => panic!("a row failed: {e}"),
            _ => panic!("a result needs figures or a reason: {r}"),
        }
    }
}

#[test]
fn every_row_appears_in_the_table_the_json_and_the_chart() {
    let dir = Scratch::new("all");
    let json = dir.join("out.json");
    let svg = dir.join("out.svg");
    let out = run(&[
        "bench",
        "--iters",
        "20",
        "--sizes",
        "64,4k",
        "--json",
        json.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = v["results"].as_array().unwrap();
    let only_known_failures = results
        .iter()
        .filter(|r| r.get("error").is_some())
        .all(known_failure);
    assert!(
        out.status.success() || (out.status.code() == Some(1) && only_known_failures),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for row in ROWS {
        assert!(
            stdout.contains(&format!("│ {row} ")),
            "{row} missing:\n{stdout}"
        );
    }
    assert!(stdout.contains("unpinned"), "{stdout}");
    assert!(
        stdout.contains("× limit"),
        "the ratio column or its explanation: {stdout}"
    );
    check_schema(&v);
    for (row, sizes, patterns) in MUST_MEASURE {
        for size in *sizes {
            for p in *patterns {
                let r = results
                    .iter()
                    .find(|r| {
                        r["mechanism"] == *row && r["pattern"] == *p && r["payload_bytes"] == *size
                    })
                    .unwrap_or_else(|| panic!("no result for {row} {p} {size}"));
                let figures = if *p == "ping-pong" {
                    "rtt_ns"
                } else {
                    "throughput"
                };
                assert!(
                    r.get(figures).is_some() && r["verified"] == true,
                    "{row} {p} {size} shows no figures: {r}"
                );
            }
        }
    }
    // The limit row turns the ratio column on.
    assert!(
        v["run"]["baseline_p50_ns"].as_u64().is_some_and(|n| n > 0),
        "{}",
        v["run"]
    );
    let names: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["mechanism"].as_str().unwrap())
        .collect();
    for row in ROWS {
        assert!(names.contains(&row), "{row} missing from the JSON");
    }
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.contains("<svg"), "{}", &chart[..chart.len().min(200)]);
}

#[test]
fn the_selftest_row_runs_between_two_processes_pinned() {
    let dir = Scratch::new("self");
    let json = dir.join("out.json");
    let out = run(&[
        "bench",
        "selftest",
        "--iters",
        "50",
        "--sizes",
        "64,4k",
        "--cpus",
        "0,0",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("pinned: parent on CPU 0, peer on CPU 0"),
        "{stdout}"
    );
    assert!(stdout.contains("│ selftest"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    check_schema(&v);
    assert_eq!(v["machine"]["pinned"]["peer_cpu"], 0);
    let measured: Vec<_> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["mechanism"] == "selftest")
        .collect();
    assert_eq!(measured.len(), 4);
    for r in measured {
        assert_eq!(r["verified"], true, "{r}");
        if r["pattern"] == "ping-pong" {
            assert_eq!(r["rtt_ns"]["samples"], 50, "{r}");
        } else {
            assert_eq!(r["throughput"]["messages"], 50, "{r}");
        }
    }
}

#[test]
fn list_names_every_row_and_hides_the_peer_subcommand() {
    let out = run(&["bench", "--list"]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    for row in ROWS {
        assert!(s.lines().any(|l| l.starts_with(row)), "{row}: {s}");
    }
    assert!(!s.contains("selftest"));
    let help = text(&run(&["--help"]).stdout);
    assert!(help.contains("bench"), "{help}");
    assert!(!help.contains("__bench-peer"), "{help}");
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    for (args, needle) in [
        (&["bench", "carrier-pigeon"][..], "valid mechanisms: limit"),
        (&["bench", "--sizes", "4"], "below 8 bytes"),
        (&["bench", "--sizes", "4g"], "invalid size"),
        (&["bench", "--sizes", "64,,4k"], "empty entry"),
        (&["bench", "--cpus", "0"], "PARENT,PEER"),
        (
            &["bench", "--cpus", "0,99999"],
            "CPU 99999 is not available",
        ),
        (&["bench", "--iters", "0"], "0"),
        (&["bench", "--duration", "0s"], "more than zero"),
        (&["bench", "--duration", "soon"], "invalid duration"),
        (&["bench", "--quick", "--iters", "5"], "cannot be used with"),
        (&["bench", "--bogus"], "--bogus"),
    ] {
        let out = run(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn an_unwritable_output_fails_before_the_run() {
    let dir = Scratch::new("unwritable");
    let missing = dir.join("no/such/dir/out.json");
    let out = run(&["bench", "selftest", "--json", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("cannot write --json"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "the run must not start: {}",
        text(&out.stdout)
    );

    let out = run(&["bench", "selftest", "--svg", dir.0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot write --svg"));
    assert!(out.stdout.is_empty());
}

/// The children of `pid` (its direct child processes).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    out
}

/// Whether `pid` still runs (a zombie counts as gone).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn run_dirs(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("ipcx-bench-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// Shared-memory segments and named semaphores of the runs of `pid` (`/dev/shm`).
fn shm_objects(pid: u32) -> Vec<String> {
    let tag = format!("ipcx-bench-{pid}-");
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&tag) || n.starts_with(&format!("sem.{tag}")))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Starts a long selftest run and waits for its peer; returns (parent, peer pid).
fn long_run(json: &Path) -> (Child, u32) {
    let mut child = ipcx()
        .args([
            "bench",
            "selftest",
            "--duration",
            "60s",
            "--sizes",
            "64",
            "--json",
            json.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peer = None;
    let found = wait_until(Duration::from_secs(20), || {
        peer = children_of(pid).first().copied();
        peer.is_some() && !run_dirs(pid).is_empty()
    });
    if !found {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the peer never started");
    }
    // Let it get into the measurement.
    std::thread::sleep(Duration::from_millis(300));
    (child, peer.unwrap())
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ipcx bench did not stop");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_stops_the_peer_and_removes_what_the_run_created() {
    let dir = Scratch::new("int");
    let json = dir.join("out.json");
    let (mut child, peer) = long_run(&json);
    let pid = child.id();
    signal(pid, "-INT");
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let err = {
        use std::io::Read;
        let mut s = String::new();
        child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
        s
    };
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        wait_until(Duration::from_secs(10), || !running(peer)),
        "the peer {peer} is still running"
    );
    assert!(run_dirs(pid).is_empty(), "{:?}", run_dirs(pid));
    assert!(shm_objects(pid).is_empty(), "{:?}", shm_objects(pid));
    assert!(!json.exists(), "an unfinished run leaves no JSON file");
}

#[test]
fn the_peer_dies_with_its_parent() {
    let dir = Scratch::new("kill");
    let json = dir.join("out.json");
    let (mut child, peer) = long_run(&json);
    let pid = child.id();
    signal(pid, "-KILL");
    let _ = child.wait();
    let gone = wait_until(Duration::from_secs(10), || !running(peer));
    for d in run_dirs(pid) {
        let _ = std::fs::remove_dir_all(d);
    }
    // A parent killed with SIGKILL cannot remove what it created: here the shared word of the
    // limit row, which always runs first.
    for n in shm_objects(pid) {
        let _ = std::fs::remove_file(Path::new("/dev/shm").join(n));
    }
    if !gone {
        signal(peer, "-KILL");
        panic!("the peer {peer} outlived its parent");
    }
}
