//! Signals between real processes.
//!
//! This test runs without libtest (`harness = false` in Cargo.toml): libtest runs each test in a
//! thread of its own, and a signal sent to the process goes to any thread that does not block
//! it, where SIGUSR1's default action would kill the test binary. Here `main` blocks every
//! signal the tests use before anything else runs (so every thread that may appear inherits the
//! mask), runs the tests one after the other, and re-executes itself with `--role NAME ARGS...`
//! for the peer processes.
mod util;

use std::os::unix::fs::MetadataExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipcx::signal::{self, Process, SigCode, Signal, SignalError, SignalReceiver};
use util::ChildGuard;

const SHORT: Duration = Duration::from_secs(10);

type TestFn = fn();

const TESTS: &[(&str, TestFn)] = &[
    (
        "sigqueue_payload_carries_sender_pid_uid_and_value",
        sigqueue_payload,
    ),
    ("kill_arrives_as_si_user", kill_arrives_as_si_user),
    (
        "realtime_signals_queue_in_order_with_payloads",
        realtime_signals_queue,
    ),
    ("pidfd_queue_carries_payload", pidfd_queue_carries_payload),
    ("pidfd_signals_a_live_child", pidfd_signals_a_live_child),
    (
        "pidfd_of_reaped_child_refuses_to_signal",
        pidfd_of_reaped_child,
    ),
    ("kill_to_missing_pid_is_no_such_process", missing_pid),
    ("recv_timeout_times_out_within_bounds", recv_timeout_bounds),
    ("receiver_blocks_its_signals", receiver_blocks_its_signals),
    #[cfg(feature = "tokio")]
    (
        "async_receiver_and_process_exit",
        async_receiver_and_process_exit,
    ),
];

fn test_signals() -> Vec<Signal> {
    vec![
        Signal::USR1,
        Signal::USR2,
        Signal::rtmin(1).unwrap(),
        Signal::rtmin(2).unwrap(),
        Signal::rtmin(3).unwrap(),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--role") {
        run_role(&args[1..]);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        for (name, _) in TESTS {
            println!("{name}: test");
        }
        return;
    }
    // Before anything else (and before any thread exists): block what the tests receive.
    signal::block(&test_signals()).expect("block test signals");

    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let exact = args.iter().any(|a| a == "--exact");
    let selected: Vec<_> = TESTS
        .iter()
        .filter(|(name, _)| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        *name == f.as_str()
                    } else {
                        name.contains(f.as_str())
                    }
                })
        })
        .collect();
    println!("\nrunning {} tests", selected.len());
    let (mut passed, mut failed) = (0, Vec::new());
    for (name, f) in &selected {
        drain();
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    let filtered = TESTS.len() - selected.len();
    println!(
        "\ntest result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; {filtered} filtered out\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}

/// Discards signals left pending by an earlier test.
fn drain() {
    let rx = SignalReceiver::new(&test_signals()).unwrap();
    while rx.try_recv().is_ok() {}
}

// ---- peer processes ----

fn run_role(args: &[String]) {
    let pid = || args[1].parse::<i32>().unwrap();
    let sig = || args[2].parse::<Signal>().unwrap();
    let num = || args[3].parse::<i32>().unwrap();
    match args[0].as_str() {
        "queue" => signal::queue(pid(), sig(), num()).unwrap(),
        "queue_many" => {
            for v in 1..=num() {
                signal::queue(pid(), sig(), v).unwrap();
            }
        }
        "kill" => signal::send(pid(), sig()).unwrap(),
        "pidfd_queue" => {
            let p = Process::from_pid(pid()).unwrap();
            for i in 0..num() {
                p.queue(sig(), 100 + i).unwrap();
            }
        }
        "exit" => {}
        "sleep" => {
            std::thread::sleep(Duration::from_secs(60));
            panic!("was not killed");
        }
        other => panic!("unknown role {other}"),
    }
}

fn spawn(role: &str, args: &[&str]) -> ChildGuard {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .arg("--role")
        .arg(role)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn peer");
    ChildGuard(Some(child))
}

fn my_pid() -> String {
    std::process::id().to_string()
}

fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

// ---- tests ----

fn sigqueue_payload() {
    let rx = SignalReceiver::new(&[Signal::USR1]).unwrap();
    let mut child = spawn("queue", &[&my_pid(), "USR1", "42"]);
    let child_pid = child.pid();
    let info = rx.recv_timeout(SHORT).unwrap();
    child.expect_success();
    assert_eq!(info.signal, Signal::USR1);
    assert_eq!(info.code, SigCode::Queue);
    assert_eq!(info.pid, child_pid);
    assert_eq!(info.uid, my_uid());
    assert_eq!(info.value, 42);
}

fn kill_arrives_as_si_user() {
    let rx = SignalReceiver::new(&[Signal::USR2]).unwrap();
    let mut child = spawn("kill", &[&my_pid(), "SIGUSR2"]);
    let child_pid = child.pid();
    let info = rx.recv_timeout(SHORT).unwrap();
    child.expect_success();
    assert_eq!(info.signal, Signal::USR2);
    assert_eq!(info.code, SigCode::User);
    assert_eq!(info.pid, child_pid);
    assert_eq!(info.uid, my_uid());
}

fn realtime_signals_queue() {
    let sig = Signal::rtmin(1).unwrap();
    let rx = SignalReceiver::new(&[sig]).unwrap();
    let mut child = spawn("queue_many", &[&my_pid(), "RTMIN+1", "5"]);
    let child_pid = child.pid();
    // All five are sent (and pending) before we read any: real-time signals queue.
    child.expect_success();
    for v in 1..=5 {
        let info = rx.recv_timeout(SHORT).unwrap();
        assert_eq!(info.signal, sig);
        assert_eq!(info.code, SigCode::Queue);
        assert_eq!(info.pid, child_pid);
        assert_eq!(info.value, v, "delivered in sending order");
    }
    assert!(matches!(rx.try_recv(), Err(SignalError::WouldBlock)));
}

fn pidfd_queue_carries_payload() {
    let sig = Signal::rtmin(2).unwrap();
    let rx = SignalReceiver::new(&[sig]).unwrap();
    let mut child = spawn("pidfd_queue", &[&my_pid(), &sig.to_string(), "3"]);
    let child_pid = child.pid();
    child.expect_success();
    for i in 0..3 {
        let info = rx.recv_timeout(SHORT).unwrap();
        assert_eq!(info.signal, sig);
        assert_eq!(info.code, SigCode::Queue);
        assert_eq!(info.pid, child_pid);
        assert_eq!(info.uid, my_uid());
        assert_eq!(info.value, 100 + i);
    }
}

fn pidfd_signals_a_live_child() {
    let mut child = spawn("sleep", &[]);
    let p = Process::from_child(child.child()).unwrap();
    assert_eq!(p.pid(), child.pid());
    assert!(!p.has_exited().unwrap());
    assert!(matches!(
        p.wait_exit_timeout(Duration::from_millis(10)),
        Err(SignalError::Timeout)
    ));
    p.send(Signal::TERM).unwrap();
    p.wait_exit_timeout(SHORT).unwrap();
    let status = child.wait_timeout(SHORT);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(Signal::TERM.raw()));
}

fn pidfd_of_reaped_child() {
    let mut child = spawn("exit", &[]);
    let p = Process::from_child(child.child()).unwrap();
    p.wait_exit_timeout(SHORT).unwrap();
    assert!(p.has_exited().unwrap());
    assert!(child.wait_timeout(SHORT).success());
    // Reaped: the pid may now belong to anyone; the pidfd refuses.
    assert!(matches!(
        p.send(Signal::USR1),
        Err(SignalError::Exited { .. })
    ));
    assert!(matches!(
        p.queue(Signal::USR1, 1),
        Err(SignalError::Exited { .. })
    ));
}

fn missing_pid() {
    let pid_max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(4_194_304);
    let pid = pid_max + 1;
    assert!(matches!(
        signal::send(pid, Signal::USR1),
        Err(SignalError::NoSuchProcess { pid: p }) if p == pid
    ));
    assert!(matches!(
        signal::queue(pid, Signal::USR1, 1),
        Err(SignalError::NoSuchProcess { .. })
    ));
    assert!(matches!(
        Process::from_pid(pid),
        Err(SignalError::NoSuchProcess { .. })
    ));
}

fn recv_timeout_bounds() {
    let rx = SignalReceiver::new(&[Signal::USR1]).unwrap();
    assert!(matches!(rx.try_recv(), Err(SignalError::WouldBlock)));
    let start = Instant::now();
    let r = rx.recv_timeout(Duration::from_millis(100));
    let elapsed = start.elapsed();
    assert!(matches!(r, Err(SignalError::Timeout)), "{r:?}");
    assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

fn receiver_blocks_its_signals() {
    let sig = Signal::rtmin(3).unwrap();
    let _rx = SignalReceiver::new(&[sig]).unwrap();
    assert!(signal::is_blocked(sig).unwrap());
    // A signal sent to ourselves is received, not acted upon.
    signal::queue(std::process::id() as i32, sig, 9).unwrap();
    let info = _rx.recv_timeout(SHORT).unwrap();
    assert_eq!((info.signal, info.value), (sig, 9));
    assert_eq!(info.pid, std::process::id() as i32);
}

#[cfg(feature = "tokio")]
fn async_receiver_and_process_exit() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sig = Signal::rtmin(3).unwrap();
        let rx = signal::AsyncSignalReceiver::new(&[sig]).unwrap();
        let mut child = spawn("queue", &[&my_pid(), "RTMIN+3", "77"]);
        let child_pid = child.pid();
        let info = tokio::time::timeout(SHORT, rx.recv())
            .await
            .expect("no signal within 10 s")
            .unwrap();
        assert_eq!((info.signal, info.value, info.pid), (sig, 77, child_pid));
        let p = Process::from_child(child.child()).unwrap();
        tokio::time::timeout(SHORT, p.exited())
            .await
            .expect("child did not exit")
            .unwrap();
        child.expect_success();
    });
}
