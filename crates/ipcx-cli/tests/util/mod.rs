//! Helpers for tests that run the real `ipcx` binary.
#![allow(dead_code)]

pub mod tls;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[path = "../../../ipcx/tests/util/port.rs"]
pub mod port;
#[path = "../../../ipcx/tests/util/proc.rs"]
pub mod proc;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("ipcx-c{}-{n}-{tag}", std::process::id())
}

/// A unique System V key.
pub fn sysv_key() -> i32 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    (0x1D00_0000 | ((std::process::id() & 0xffff) << 8) | (n & 0xff)) as i32
}

/// The `ipcx` binary.
pub fn ipcx() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ipcx"));
    c.stdin(Stdio::null());
    c
}

/// Runs `ipcx ARGS` to completion (at most 30 s).
pub fn run(args: &[&str]) -> Output {
    let child = ipcx()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ipcx");
    wait_output(child, Duration::from_secs(30))
}

/// Asserts that `ipcx` exited with status 0 (showing its stderr when it did not) and returns
/// its output.
pub fn succeeded(out: Output) -> Output {
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

/// `ipcx recv ENDPOINT --count COUNT --timeout 20s EXTRA...` in the background.
pub fn recv_in_background(ep: &str, count: &str, extra: &[&str]) -> Bg {
    let mut args = vec!["recv", ep, "--count", count, "--timeout", "20s"];
    args.extend_from_slice(extra);
    Bg::spawn(&args)
}

/// Waits for a child's output, killing it after `timeout`. Its stdout and stderr are read
/// while it runs, so a child that prints more than a pipe holds does not block on it.
pub fn wait_output(mut child: Child, timeout: Duration) -> Output {
    fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "ipcx did not finish in {timeout:?}; stderr: {}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// A background `ipcx` killed on drop.
#[derive(Debug)]
pub struct Bg(pub Option<Child>);

impl Bg {
    pub fn spawn(args: &[&str]) -> Bg {
        Bg(Some(
            ipcx()
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn ipcx"),
        ))
    }
    pub fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }
    pub fn wait(mut self, timeout: Duration) -> Output {
        wait_output(self.0.take().unwrap(), timeout)
    }
    /// Reads stderr so far is not possible without blocking; tests use `wait`.
    pub fn read_stdout_line(&mut self) -> String {
        let out = self.0.as_mut().unwrap().stdout.as_mut().unwrap();
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while out.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
            line.push(b[0]);
        }
        String::from_utf8_lossy(&line).into_owned()
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Removes the named objects (as `ipcx rm` takes them) on drop, best effort, so that a failing
/// test leaves nothing behind (a leaked POSIX queue counts against the user's small
/// RLIMIT_MSGQUEUE, and enough of them make every later queue test fail).
#[derive(Debug)]
pub struct Remove(pub Vec<String>);

impl Drop for Remove {
    fn drop(&mut self) {
        for o in &self.0 {
            let _ = run(&["rm", o]);
        }
    }
}

/// Runs `ipcx send ARGS` until it succeeds (the receiver may still be starting), at most 10 s.
pub fn send_when_ready(args: &[&str]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = run(args);
        if out.status.success() || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `ipcx ARGS` with its stdin, stdout and stderr piped.
pub fn spawn_piped(args: &[&str]) -> Child {
    ipcx()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ipcx")
}

/// Runs `ipcx ARGS` with `input` on its stdin (at most 10 s). A failed write is not an error:
/// the command may stop reading once it fails.
pub fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = spawn_piped(args);
    let mut stdin = child.stdin.take().expect("piped stdin");
    let _ = std::io::Write::write_all(&mut stdin, input);
    drop(stdin);
    wait_output(child, Duration::from_secs(10))
}

/// [`run_with_stdin`] again until it succeeds or 10 s have passed (a sender started before
/// its receiver is ready fails); the last output.
pub fn run_with_stdin_when_ready(args: &[&str], input: &[u8]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = run_with_stdin(args, input);
        if out.status.success() || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The resident set of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(unique("dir"));
        std::fs::create_dir(&p).unwrap();
        TempDir(p)
    }
    pub fn join(&self, s: &str) -> String {
        self.0.join(s).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The messages in the POSIX queue `/NAME`, or `None` when it does not exist; asked with
/// `mq_open` (no need for /dev/mqueue to be mounted, which it is not on a fresh machine).
/// Opening an existing queue records nothing in the owner registry.
pub fn mq_messages(name: &str) -> Option<u64> {
    match ipcx::mq::MessageQueue::options()
        .read(true)
        .write(false)
        .open(name)
    {
        Ok(q) => Some(q.attributes().map_or(0, |a| a.current_messages as u64)),
        Err(ipcx::mq::OpenError::NotFound { .. }) => None,
        Err(e) => panic!("mq_open {name}: {e}"),
    }
}

/// Whether the POSIX queue `/NAME` exists (see [`mq_messages`]).
pub fn mq_exists(name: &str) -> bool {
    mq_messages(name).is_some()
}

/// Waits up to 10 s for `cond`; false when it never held.
pub fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// The unprivileged user the hostile side of a test runs as.
pub const NOBODY: u32 = 65534;

/// Whether the tests run as root (only root can start a child as [`NOBODY`]).
pub fn is_root() -> bool {
    ipcx::trust::euid() == 0
}

/// `ipcx ARGS` run as [`NOBODY`]; `None` (with a note) when that cannot start.
pub fn run_as_nobody(args: &[&str]) -> Option<Output> {
    use std::os::unix::process::CommandExt;
    let mut cmd = ipcx();
    cmd.args(args)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match cmd.spawn() {
        Ok(child) => Some(wait_output(child, Duration::from_secs(30))),
        Err(e) => {
            eprintln!("skipped: cannot run ipcx as nobody ({e}); is the binary reachable?");
            None
        }
    }
}

/// The environment variable that names the role a re-executed test binary plays.
const ROLE_ENV: &str = "IPCX_CLI_TEST_ROLE";
/// Its arguments, separated by U+001F.
const ROLE_ARGS_ENV: &str = "IPCX_CLI_TEST_ROLE_ARGS";

/// A role's name and what it runs, given its arguments.
pub type RoleFn = (&'static str, fn(&[String]));

/// Called from a test file's `#[test] fn child_role()`: runs the role named in the
/// environment with its arguments (also from the environment), then exits; returns at once
/// in a normal test run.
pub fn role_main(roles: &[RoleFn]) {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let args: Vec<String> = std::env::var(ROLE_ARGS_ENV)
        .unwrap_or_default()
        .split('\x1f')
        .map(str::to_owned)
        .collect();
    match roles.iter().find(|(name, _)| *name == role) {
        Some((_, f)) => f(&args),
        None => eprintln!("unknown role {role}"),
    }
    std::process::exit(0);
}

/// Starts this test binary as a child playing `role` with `args` (see [`role_main`]); killed
/// when the returned guard drops.
pub fn spawn_role(role: &str, args: &[&str]) -> Role {
    let child = Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "child_role",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(ROLE_ENV, role)
        .env(ROLE_ARGS_ENV, args.join("\x1f"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn role");
    Role(child)
}

/// A child playing a role, killed and reaped on drop.
#[derive(Debug)]
pub struct Role(pub Child);

impl Role {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
