//! The harness between two real processes, in tiny configurations: ping-pong and streaming
//! correctness, checksum verification (corruption and loss are caught), the JSON schema, CPU
//! pinning, stopping a run, and the peer's lifetime. Timings are never asserted.
//!
//! The peer is this test binary re-executed with only the `peer_role` test selected and the
//! peer arguments in the `IPCX_BENCH_PEER` environment variable.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixListener;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipcx::wait::Wait;
use ipcx_bench::mechanism::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};
use ipcx_bench::progress::NoProgress;
use ipcx_bench::report::Pattern;
use ipcx_bench::runner::{self, BenchConfig, Budget, PeerLauncher, RunError};
use ipcx_bench::selftest::SelfTest;
use ipcx_bench::{BenchResult, PeerArgs, Pinning, Registry, Report};

/// Rows that must measure successfully, and at which payload sizes: every pattern they offer
/// must have verified figures there. Rows and sizes not listed may be skipped (with a reason)
/// but never fail.
///
/// `unix-seqpacket` at 1 MiB is skipped with a reason: a seqpacket message must fit in the
/// socket's send buffer (`wmem_max`, about 208 KiB by default).
///
/// Left out for now: `fifo` at 4 KiB and 1 MiB, `unix` and `tcp` at 1 MiB ([`KNOWN_FAILING`]).
/// Their channel adapters mishandle a frame whose send deadline passes half-way (the FIFO
/// writer abandons it as torn; the stream sockets keep its rest for the next send, which never
/// comes after the last message of a phase), and the harness's short deadlines trigger that on
/// a loaded machine; the library fix is under way. The `signal` row is covered by `tests/signal_row.rs`: a test binary's own
/// threads do not block the signal, so here it is skipped (see
/// `the_signal_row_is_skipped_where_a_thread_does_not_block_its_signal`).
const MUST_SUCCEED: &[(&str, &[usize])] = &[
    ("selftest", &SIZES),
    ("limit", &[64]),
    ("futex", &[64]),
    ("eventfd", &[64]),
    ("posix-sem", &[64]),
    ("sysv-sem", &[64]),
    ("mutex-condvar", &[64]),
    ("pipe", &SIZES),
    ("fifo", &[64]),
    ("unix", &[64, 4096]),
    ("unix-seqpacket", &[64, 4096]),
    ("tcp", &[64, 4096]),
    ("mq", &[64, 4096]),
    ("sysv-mq", &[64, 4096]),
    ("unix-dgram", &[64, 4096]),
    ("udp", &[64, 4096]),
    ("ring-spin", &[64, 4096]),
    ("ring", &[64, 4096]),
    ("shm", &[64, 4096]),
    ("bridge", &[64, 4096]),
    ("rpc-unix", &[64, 4096]),
    ("rpc-unix-msgpack", &[64, 4096]),
    ("rpc-shm", &[64, 4096]),
    ("rpc-shm-msgpack", &[64, 4096]),
];

/// Rows and sizes that may fail until the library stops abandoning a large frame whose send
/// deadline passes half-way (see [`MUST_SUCCEED`]).
const KNOWN_FAILING: &[(&str, usize)] = &[
    ("fifo", 4096),
    ("fifo", 1 << 20),
    ("unix", 1 << 20),
    ("tcp", 1 << 20),
];

/// Payload sizes of the tiny runs.
const SIZES: [usize; 3] = [64, 4096, 1 << 20];

/// Whether `row` must succeed at `size`; rows not listed may be skipped with a reason.
fn must_succeed_at(row: &str, size: usize) -> bool {
    MUST_SUCCEED
        .iter()
        .any(|(r, sizes)| *r == row && sizes.contains(&size))
}

/// What the test-only rows do wrong.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Flip one bit of message 5 after the sender has checksummed it.
    FlipBit,
    /// Never send message 3.
    Drop,
}

/// A row over the self-test transport whose parent side damages what it sends.
#[derive(Debug)]
struct Faulty {
    name: &'static str,
    fault: Fault,
    patterns: [Pattern; 1],
}

impl Mechanism for Faulty {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "test row that damages what the parent sends"
    }
    fn hidden(&self) -> bool {
        true
    }
    fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }
    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        SelfTest.prepare(ctx)
    }
    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let inner = SelfTest.open(spec, side, payload)?;
        Ok(match side {
            Side::Parent => Box::new(FaultyHalf(inner, self.fault)),
            Side::Peer => inner,
        })
    }
}

struct FaultyHalf(Box<dyn HalfOpen>, Fault);

impl HalfOpen for FaultyHalf {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        Ok(Box::new(FaultyLink {
            inner: self.0.connect(wait)?,
            fault: self.1,
        }))
    }
}

struct FaultyLink {
    inner: Box<dyn Link>,
    fault: Fault,
}

impl Link for FaultyLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        let seq = u64::from_le_bytes(msg[..8].try_into().unwrap());
        match self.fault {
            Fault::FlipBit if seq == 5 => {
                let mut bad = msg.to_vec();
                let last = bad.len() - 1;
                bad[last] ^= 0x01;
                self.inner.send(&bad, wait)
            }
            Fault::Drop if seq == 3 => Ok(()),
            _ => self.inner.send(msg, wait),
        }
    }
    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        self.inner.recv(buf, wait)
    }
}

fn registry() -> Registry {
    let mut r = Registry::standard();
    r.add(Faulty {
        name: "flip-echo",
        fault: Fault::FlipBit,
        patterns: [Pattern::PingPong],
    });
    r.add(Faulty {
        name: "flip-stream",
        fault: Fault::FlipBit,
        patterns: [Pattern::Stream],
    });
    r.add(Faulty {
        name: "drop-stream",
        fault: Fault::Drop,
        patterns: [Pattern::Stream],
    });
    r
}

/// The peer process: runs only when re-executed with `IPCX_BENCH_PEER` set.
#[test]
fn peer_role() {
    if let Some(args) = PeerArgs::from_env() {
        let args = args.expect("peer arguments");
        let code = match ipcx_bench::run_peer(&registry(), &args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("peer: {e}");
                1
            }
        };
        std::process::exit(code);
    }
}

fn launcher() -> PeerLauncher {
    PeerLauncher::with_env(
        std::env::current_exe().unwrap(),
        &["peer_role", "--exact", "--nocapture", "--test-threads=1"],
    )
}

/// The runs of this file one at a time: they look for leftover directories and children.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn tiny(mechanisms: &[&str], sizes: &[usize]) -> BenchConfig {
    BenchConfig {
        mechanisms: mechanisms.iter().map(|s| (*s).to_owned()).collect(),
        sizes: sizes.to_vec(),
        budget: Budget::Iterations(25),
        stall_timeout: Duration::from_secs(5),
        ..BenchConfig::default()
    }
}

fn run(cfg: &BenchConfig) -> Report {
    runner::run(&registry(), cfg, &launcher(), &mut NoProgress).expect("the run completes")
}

fn find<'a>(r: &'a Report, m: &str, p: Pattern, size: usize) -> &'a BenchResult {
    r.results
        .iter()
        .find(|x| x.mechanism == m && x.pattern == p && x.payload_bytes == size as u64)
        .unwrap_or_else(|| panic!("no result for {m} {p} {size}: {:#?}", r.results))
}

/// Leftover run directories of this process.
fn leftover_dirs() -> Vec<String> {
    let prefix = format!("ipcx-bench-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Children of this process that are still around (running or unreaped).
fn children() -> Vec<String> {
    let mut out = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().map(str::to_owned));
        }
    }
    out
}

/// Shared-memory segments and named semaphores of this process's runs (`/dev/shm`).
fn leftover_shm() -> Vec<String> {
    let tag = format!("ipcx-bench-{}-", std::process::id());
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&tag) || n.starts_with(&format!("sem.{tag}")))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_clean() {
    assert!(
        leftover_dirs().is_empty(),
        "left behind: {:?}",
        leftover_dirs()
    );
    assert!(
        leftover_shm().is_empty(),
        "left in /dev/shm: {:?}",
        leftover_shm()
    );
    assert!(children().is_empty(), "peer still around: {:?}", children());
}

#[test]
fn the_selftest_row_measures_and_verifies_every_size_between_two_processes() {
    let _g = serial();
    let sizes = [8, 64, 4096, 1 << 20];
    let r = run(&tiny(&["selftest"], &sizes));
    for size in sizes {
        let p = find(&r, "selftest", Pattern::PingPong, size);
        let rtt = p.rtt_ns.as_ref().unwrap_or_else(|| panic!("{p:?}"));
        assert_eq!(rtt.samples, Some(25), "{p:?}");
        assert!(
            rtt.p50 > 0 && rtt.p50 <= rtt.p99 && rtt.p99 <= rtt.p999,
            "{rtt:?}"
        );
        assert_eq!(p.verified, Some(true));
        let s = find(&r, "selftest", Pattern::Stream, size);
        let t = s.throughput.as_ref().unwrap_or_else(|| panic!("{s:?}"));
        assert_eq!(t.messages, Some(25), "{s:?}");
        assert!(t.msgs_per_s > 0.0 && t.bytes_per_s > 0.0);
        assert_eq!(s.verified, Some(true));
        assert!(p.processes && s.processes);
    }
    // The limit row always runs: it is measured up to 64 B (one cache line), skipped above
    // with that reason, and every p50 gets its ratio to its smallest size.
    assert!(find(&r, "limit", Pattern::PingPong, 64).measured());
    let limit = find(&r, "limit", Pattern::PingPong, 8);
    let floor = limit
        .rtt_ns
        .as_ref()
        .unwrap_or_else(|| panic!("{limit:?}"))
        .p50;
    assert_eq!(r.run.baseline_p50_ns, Some(floor));
    assert!(r.run.ratios_omitted.is_none());
    let big = find(&r, "limit", Pattern::PingPong, 4096);
    assert!(
        big.skipped.as_deref().unwrap().contains("cache line"),
        "{big:?}"
    );
    for x in r.results.iter().filter(|x| x.rtt_ns.is_some()) {
        assert!(x.ratio_to_limit.is_some_and(|v| v > 0.0), "{x:?}");
        // Each ping-pong carries the floor measured just before it, and divides by it.
        let floor = x.floor_p50_ns.unwrap_or_else(|| panic!("no floor: {x:?}"));
        assert!(x.floor_p99_9_ns.is_some_and(|t| t >= floor), "{x:?}");
        let p50 = x.rtt_ns.as_ref().unwrap().p50;
        assert_eq!(x.ratio_to_limit, Some(p50 as f64 / floor as f64), "{x:?}");
    }
    assert_clean();
}

#[test]
fn a_ping_pong_row_in_rounds_pools_them_with_its_floor_slices() {
    let _g = serial();
    // 25 round trips in 3 rounds: 9 each (rounded up), every one recorded in the pool; the
    // stream runs once, in full, in the last round.
    let cfg = BenchConfig {
        rounds: Some(3),
        ..tiny(&["selftest"], &[64])
    };
    let plan = runner::plan(&registry(), &cfg).unwrap();
    assert_eq!((plan.rounds, plan.floors()), (3, 3));
    let r = run(&cfg);
    let p = find(&r, "selftest", Pattern::PingPong, 64);
    let rtt = p.rtt_ns.as_ref().unwrap_or_else(|| panic!("{p:?}"));
    assert_eq!(rtt.samples, Some(27), "{p:?}");
    assert_eq!(p.verified, Some(true));
    let floor = p.floor_p50_ns.unwrap_or_else(|| panic!("no floor: {p:?}"));
    assert!(p.floor_p99_9_ns.is_some_and(|t| t >= floor), "{p:?}");
    let s = find(&r, "selftest", Pattern::Stream, 64);
    let t = s.throughput.as_ref().unwrap_or_else(|| panic!("{s:?}"));
    assert_eq!(t.messages, Some(25), "{s:?}");
    assert_eq!(s.verified, Some(true));
    // A row that cannot run at a size is skipped once per pattern, not once per round.
    let cfg = BenchConfig {
        rounds: Some(3),
        ..tiny(&["udp"], &[1 << 20])
    };
    let r = run(&cfg);
    let n = r.results.iter().filter(|x| x.mechanism == "udp").count();
    assert_eq!(n, 2, "{:?}", r.results);
    assert!(
        r.results
            .iter()
            .filter(|x| x.mechanism == "udp")
            .all(|x| x.skipped.is_some())
    );
    assert_clean();
}

#[test]
fn rows_that_must_succeed_do() {
    let _g = serial();
    let rows: Vec<&str> = MUST_SUCCEED.iter().map(|(r, _)| *r).collect();
    let r = run(&tiny(&rows, &SIZES));
    let registry = registry();
    for (row, sizes) in MUST_SUCCEED {
        let m = registry.get(row).unwrap();
        for &size in *sizes {
            assert!(must_succeed_at(row, size));
            for &p in m.patterns() {
                let res = find(&r, row, p, size);
                assert!(
                    res.measured() && res.verified == Some(true),
                    "{row} {p} {size}: {res:?}"
                );
            }
        }
    }
    assert_clean();
}

#[test]
fn every_standard_row_succeeds_or_is_skipped_with_a_reason() {
    let _g = serial();
    let started = Instant::now();
    let r = run(&tiny(&[], &SIZES));
    let visible = Registry::standard();
    for name in visible.visible_names() {
        // Rows name the patterns they offer (RPC rows are ping-pong only).
        let patterns = visible.get(name).unwrap().patterns().to_vec();
        for size in SIZES {
            for &p in &patterns {
                let res = find(&r, name, p, size);
                if KNOWN_FAILING.contains(&(name, size)) && res.error.is_some() {
                    eprintln!("known failure: {name} {p} {size}: {res:?}");
                    continue;
                }
                assert!(res.error.is_none(), "{name} {p} {size} failed: {res:?}");
                if res.measured() {
                    assert_eq!(res.verified, Some(true), "{res:?}");
                } else {
                    let why = res.skipped.as_deref().unwrap_or_default();
                    assert!(!why.trim().is_empty(), "{name} {p} {size}: no reason");
                }
            }
        }
    }
    // The size limits that are known in advance are explained.
    let udp = find(&r, "udp", Pattern::PingPong, 1 << 20);
    assert!(udp.skipped.as_deref().unwrap().contains("65507"), "{udp:?}");
    let sysv = find(&r, "sysv-mq", Pattern::PingPong, 1 << 20);
    assert!(
        sysv.skipped.as_deref().unwrap().contains("MSGMAX"),
        "{sysv:?}"
    );
    // Rows that carry only the sequence number say so above a cache line.
    for name in ["futex", "eventfd", "posix-sem", "sysv-sem", "mutex-condvar"] {
        let res = find(&r, name, Pattern::PingPong, 4096);
        let why = res.skipped.as_deref().unwrap_or_default();
        assert!(why.contains("sequence number"), "{name}: {res:?}");
    }
    eprintln!("all rows, tiny: {:.1} s", started.elapsed().as_secs_f64());
    assert_clean();
}

#[test]
fn a_corrupted_byte_fails_the_checksum_in_both_patterns() {
    let _g = serial();
    let r = run(&tiny(&["flip-echo", "flip-stream"], &[64, 4096]));
    for (m, p) in [
        ("flip-echo", Pattern::PingPong),
        ("flip-stream", Pattern::Stream),
    ] {
        for size in [64, 4096] {
            let res = find(&r, m, p, size);
            let e = res.error.as_deref().unwrap_or_else(|| panic!("{res:?}"));
            assert!(e.contains("checksum mismatch"), "{e}");
            assert!(res.rtt_ns.is_none() && res.throughput.is_none());
        }
    }
    assert_eq!(r.failures().count(), 4);
    assert_clean();
}

#[test]
fn a_lost_message_is_reported() {
    let _g = serial();
    let r = run(&tiny(&["drop-stream", "selftest"], &[64]));
    let res = find(&r, "drop-stream", Pattern::Stream, 64);
    let e = res.error.as_deref().unwrap_or_else(|| panic!("{res:?}"));
    assert!(e.contains("message 3 never arrived"), "{e}");
    // The rows after it still run, with the same peer brought back in step.
    assert!(find(&r, "selftest", Pattern::Stream, 64).measured());
    assert_clean();
}

#[test]
fn the_json_report_follows_the_schema() {
    let _g = serial();
    let r = run(&tiny(&["selftest", "udp"], &[64, 1 << 20]));
    let text = r.to_json();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["ipcx_version"].is_string());
    assert!(v["machine"]["cpus"].as_u64().unwrap() >= 1);
    assert!(v["machine"]["model"].is_string());
    assert!(v["machine"]["kernel"].is_string());
    assert!(v["machine"]["pinned"].is_null());
    let results = v["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for res in results {
        assert!(res["mechanism"].is_string(), "{res}");
        let pattern = res["pattern"].as_str().unwrap();
        assert!(["ping-pong", "stream"].contains(&pattern), "{res}");
        assert!(res["payload_bytes"].is_u64(), "{res}");
        assert_eq!(res["processes"], true, "{res}");
        let rtt = res.get("rtt_ns");
        let thr = res.get("throughput");
        let skipped = res.get("skipped");
        assert!(
            rtt.is_some() || thr.is_some() || skipped.is_some(),
            "a result must have figures or a reason: {res}"
        );
        if let Some(rtt) = rtt {
            for k in ["p50", "p99", "p999"] {
                assert!(rtt[k].is_u64(), "{k}: {res}");
            }
            assert!(rtt["mean"].is_number(), "{res}");
            assert_eq!(pattern, "ping-pong");
        }
        if let Some(t) = thr {
            assert!(
                t["msgs_per_s"].is_number() && t["bytes_per_s"].is_number(),
                "{res}"
            );
            assert_eq!(pattern, "stream");
        }
        if let Some(s) = skipped {
            assert!(!s.as_str().unwrap().is_empty());
            assert!(rtt.is_none() && thr.is_none());
        }
    }
    assert_eq!(Report::from_json(&text).unwrap(), r);
    assert_clean();
}

#[test]
fn a_pinned_run_says_where_each_process_ran() {
    let _g = serial();
    let allowed = rustix::thread::sched_getaffinity(None).unwrap();
    let cpus: Vec<usize> = (0..64).filter(|&c| allowed.is_set(c)).collect();
    let pin = Pinning {
        parent_cpu: cpus[0],
        peer_cpu: *cpus.last().unwrap(),
    };
    let cfg = BenchConfig {
        pin: Some(pin),
        ..tiny(&["selftest"], &[64])
    };
    // Pinning applies to the calling thread: run on a thread of its own.
    let r = std::thread::spawn(move || run(&cfg)).join().unwrap();
    assert_eq!(r.machine.pinned, Some(pin));
    assert!(
        r.machine.describe().contains("peer on CPU"),
        "{}",
        r.machine.describe()
    );
    assert!(find(&r, "selftest", Pattern::PingPong, 64).measured());

    let bad = BenchConfig {
        pin: Some(Pinning {
            parent_cpu: 0,
            peer_cpu: 100_000,
        }),
        ..tiny(&["selftest"], &[64])
    };
    match runner::run(&registry(), &bad, &launcher(), &mut NoProgress) {
        Err(RunError::Usage(m)) => assert!(m.contains("CPU 100000"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_clean();
}

#[test]
fn unknown_rows_are_usage_errors_that_list_the_valid_ones() {
    match runner::plan(&registry(), &tiny(&["smoke-signals"], &[64])) {
        Err(RunError::Usage(m)) => {
            assert!(
                m.contains("smoke-signals") && m.contains("unix-dgram"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn stopping_a_run_ends_the_peer_and_removes_the_run_directory() {
    let _g = serial();
    let cfg = BenchConfig {
        budget: Budget::Time(Duration::from_secs(60)),
        ..tiny(&["selftest"], &[64])
    };
    let stop = cfg.stop.clone();
    let t0 = Instant::now();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
    });
    let res = runner::run(&registry(), &cfg, &launcher(), &mut NoProgress);
    setter.join().unwrap();
    assert!(matches!(res, Err(RunError::Interrupted)), "{res:?}");
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert_clean();
}

#[test]
fn the_peer_exits_when_the_parent_goes_away() {
    let _g = serial();
    let dir = std::env::temp_dir().join(format!("ipcx-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("control.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let args = PeerArgs {
        control: path.clone(),
        parent_pid: std::process::id() as i32,
        cpu: None,
        stall_ms: 5000,
    };
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["peer_role", "--exact", "--nocapture", "--test-threads=1"])
        .env(PeerArgs::ENV, args.to_env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (conn, _) = listener.accept().unwrap();
    let mut hello = String::new();
    BufReader::new(conn.try_clone().unwrap())
        .read_line(&mut hello)
        .unwrap();
    assert!(hello.contains("hello"), "{hello}");
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the peer outlived its control connection");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_signal_row_is_skipped_where_a_thread_does_not_block_its_signal() {
    let _g = serial();
    let r = run(&tiny(&["signal"], &[64]));
    for p in [Pattern::PingPong, Pattern::Stream] {
        let res = find(&r, "signal", p, 64);
        let why = res.skipped.as_deref().unwrap_or_else(|| panic!("{res:?}"));
        assert!(
            why.contains("not blocked in every thread") && why.contains("block_signals"),
            "{why}"
        );
    }
    assert_clean();
}

/// Waits (at most 30 s) for a segment of this process's runs whose name ends with `suffix`.
fn wait_for_segment(suffix: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if leftover_shm().iter().any(|n| n.ends_with(suffix)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn shared_objects_are_removed_when_the_peer_is_killed_or_the_run_stopped() {
    let _g = serial();
    let cfg = BenchConfig {
        budget: Budget::Time(Duration::from_millis(300)),
        ..tiny(&["futex", "posix-sem", "mutex-condvar"], &[64])
    };
    let stop = cfg.stop.clone();
    let meddler = std::thread::spawn(move || {
        // Kill the peer in the middle of the futex row...
        assert!(wait_for_segment("-futex"), "the futex row never started");
        for pid in children() {
            let pid = rustix::process::Pid::from_raw(pid.parse().unwrap()).unwrap();
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        // ... and stop the run in the middle of the mutex-condvar row (with a new peer).
        assert!(
            wait_for_segment("-mutex"),
            "the mutex-condvar row never started"
        );
        stop.store(true, Ordering::SeqCst);
    });
    let res = runner::run(&registry(), &cfg, &launcher(), &mut NoProgress);
    meddler.join().unwrap();
    assert!(matches!(res, Err(RunError::Interrupted)), "{res:?}");
    assert_clean();
}

#[test]
fn the_one_cpu_rows_pin_both_sides_and_restore_the_mask() {
    let _g = serial();
    let before = rustix::thread::sched_getaffinity(None).unwrap();
    let r = run(&tiny(&["ring-1cpu", "futex-1cpu"], &[64, 4096]));
    assert_eq!(
        rustix::thread::sched_getaffinity(None).unwrap(),
        before,
        "the parent's CPU mask was not restored"
    );
    let one_cpu =
        std::fs::read_to_string("/sys/devices/system/cpu/online").is_ok_and(|s| s.trim() == "0");
    for (row, size) in [("ring-1cpu", 64), ("ring-1cpu", 4096), ("futex-1cpu", 64)] {
        for p in [Pattern::PingPong, Pattern::Stream] {
            if row == "futex-1cpu" && p == Pattern::Stream {
                continue; // the futex row is ping-pong only
            }
            let res = find(&r, row, p, size);
            if one_cpu {
                assert!(res.skipped.is_some(), "{res:?}");
            } else {
                assert!(
                    res.measured() && res.verified == Some(true),
                    "{row} {p} {size}: {res:?}"
                );
            }
        }
    }
    let big = find(&r, "futex-1cpu", Pattern::PingPong, 4096);
    assert!(
        big.skipped
            .as_deref()
            .unwrap_or_default()
            .contains("sequence number"),
        "{big:?}"
    );
    assert_clean();
}

#[test]
fn the_rings_are_removed_when_the_peer_is_killed() {
    let _g = serial();
    let cfg = BenchConfig {
        budget: Budget::Time(Duration::from_millis(300)),
        ..tiny(&["ring-spin", "shm"], &[64])
    };
    let meddler = std::thread::spawn(move || {
        assert!(wait_for_segment("-a2b"), "the ring row never started");
        for pid in children() {
            let pid = rustix::process::Pid::from_raw(pid.parse().unwrap()).unwrap();
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    });
    let r = runner::run(&registry(), &cfg, &launcher(), &mut NoProgress).expect("the run ends");
    meddler.join().unwrap();
    // The row whose peer was killed failed; the run went on with a new peer.
    assert!(
        r.results.iter().any(|x| x.error.is_some()),
        "{:#?}",
        r.results
    );
    assert_clean();
}
