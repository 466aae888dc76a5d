//! Shared helpers for the integration tests: unique object names, guards that remove what a
//! test created even when it fails, and child processes.
//!
//! Child processes re-execute the test binary itself: every test file that needs a peer has a
//! `#[test] fn child_role()` calling [`role_main`], and [`spawn_role`] starts the binary with
//! that single test selected and the role named in the environment. Without the environment
//! variable, `child_role` returns at once.
#![allow(dead_code)]

pub mod checked;
pub mod fault;
pub mod port;
pub mod proc;
pub mod python;
pub mod region;
pub mod rpc;

pub use port::stable_tcp_port;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call: `ipcx-t<pid>-<n>-<tag>`.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("ipcx-t{}-{n}-{tag}", std::process::id())
}

/// A unique POSIX IPC name: `/ipcx-t<pid>-<n>-<tag>`.
pub fn posix_name(tag: &str) -> String {
    format!("/{}", unique(tag))
}

/// A unique POSIX message queue name, and a guard that unlinks the queue when the test ends,
/// whatever happens.
pub fn mq_name(tag: &str) -> (String, Cleanup<impl FnMut()>) {
    let name = posix_name(tag);
    let n = name.clone();
    let guard = Cleanup(move || {
        let _ = ipcx::mq::MessageQueue::unlink(&n);
    });
    (name, guard)
}

/// A unique System V key derived from the pid and a counter (never IPC_PRIVATE).
pub fn sysv_key() -> i32 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    (0x1C00_0000 | ((std::process::id() & 0xffff) << 8) | (n & 0xff)) as i32
}

/// A temporary directory removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a closure on drop: for removing kernel objects when a test fails.
pub struct Cleanup<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for Cleanup<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// A unique ring name (`/ipcx-t…-<tag>`) and a guard that removes the ring when the test
/// ends, even on failure.
pub fn ring_name(tag: &str) -> (String, Cleanup<impl FnMut()>) {
    let name = posix_name(tag);
    let n = name.clone();
    (
        name,
        Cleanup(move || {
            let _ = ipcx::ring::remove(&n);
        }),
    )
}

/// Truncates `/dev/shm/NAME` to zero bytes under whoever maps it, as a hostile peer would.
pub fn truncate_shm(name: &str) {
    std::fs::File::options()
        .write(true)
        .open(format!("/dev/shm{name}"))
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// Waits until `/dev/shm/NAME` exists with a size.
pub fn wait_for_shm_file(name: &str) {
    assert!(wait_until(std::time::Duration::from_secs(10), || {
        std::fs::metadata(format!("/dev/shm{name}")).is_ok_and(|m| m.len() > 0)
    }));
}

/// Removes the file `/dev/shm/NAME` when dropped (a truncated ring is no longer recognised as
/// one, so the ring's own cleanup leaves it).
pub fn remove_shm_file(name: &str) -> Cleanup<impl FnMut()> {
    let file = format!("/dev/shm{name}");
    Cleanup(move || {
        let _ = std::fs::remove_file(&file);
    })
}

/// A named child role: the name `spawn_role` selects and the function that runs it.
pub type Role = (&'static str, fn(&[String]));

const ROLE_ENV: &str = "IPCX_TEST_ROLE";
const ARGS_ENV: &str = "IPCX_TEST_ROLE_ARGS";

/// Called from each test file's `#[test] fn child_role()`: runs the role named in the
/// environment, then exits the process (0 on success; a panic exits non-zero).
pub fn role_main(roles: &[Role]) {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let args: Vec<String> = std::env::var(ARGS_ENV)
        .unwrap_or_default()
        .split('\x1f')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let Some((_, f)) = roles.iter().find(|(name, _)| *name == role) else {
        eprintln!("unknown role {role}");
        std::process::exit(97);
    };
    f(&args);
    std::process::exit(0);
}

/// A command that runs `role` with `args` in a new process of this test binary.
pub fn role_command(role: &str, args: &[&str]) -> Command {
    role_command_of(std::env::current_exe().expect("current_exe"), role, args)
}

/// [`role_command`] with the test binary at `exe`.
fn role_command_of(exe: impl AsRef<std::ffi::OsStr>, role: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args([
        "child_role",
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(ROLE_ENV, role)
    .env(ARGS_ENV, args.join("\x1f"))
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    cmd
}

/// Starts `role` in a child process; the returned guard kills it if the test ends first.
pub fn spawn_role(role: &str, args: &[&str]) -> ChildGuard {
    ChildGuard(Some(role_command(role, args).spawn().expect("spawn child")))
}

/// A child process killed and reaped on drop.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child already waited for")
    }
    pub fn pid(&self) -> i32 {
        self.0.as_ref().expect("child").id() as i32
    }
    /// Waits for the child at most `timeout`; panics (after killing it) if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child().try_wait().expect("try_wait") {
                self.0 = None;
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child().kill();
                let _ = self.child().wait();
                self.0 = None;
                panic!("child did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    /// Waits (at most 30 s) and asserts that the child exited with status 0.
    pub fn expect_success(&mut self) {
        let status = self.wait_timeout(Duration::from_secs(30));
        assert!(status.success(), "child failed: {status}");
    }
    /// Kills the child with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `cond` every millisecond until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// Calls `attempt` until it gives a value (every millisecond, for up to `timeout`), and
/// returns it; panics when time runs out (connecting to a server a child is still starting).
pub fn wait_for<T>(timeout: Duration, mut attempt: impl FnMut() -> Option<T>) -> T {
    let mut got = None;
    assert!(
        wait_until(timeout, || {
            got = attempt();
            got.is_some()
        }),
        "nothing within {timeout:?}"
    );
    got.expect("set when wait_until succeeds")
}

/// The timeout of the tests of a wait that gives up.
pub const SHORT: Duration = Duration::from_millis(100);

/// Runs `call`, a wait that must give up after `wait`: asserts that it took at least `wait`
/// and less than 5 s, and returns what it returned.
pub fn waits_for<T>(wait: Duration, call: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = call();
    let took = t.elapsed();
    assert!(
        took >= wait && took < Duration::from_secs(5),
        "a wait of {wait:?} took {took:?}"
    );
    r
}

/// Runs `call`, which must end at once (within 5 s) rather than wait out its timeout, and
/// returns what it returned.
pub fn returns_soon<T>(call: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = call();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    r
}

/// Runs `fut` to its end on a current-thread tokio runtime (timers and I/O enabled).
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(fut)
}

/// In a child: sends each of `msgs` through a channel sender to endpoint `ep` made with
/// `opts`, each within `timeout`.
pub fn send_each(ep: &str, opts: &ipcx::channel::Options, msgs: &[String], timeout: Duration) {
    let ep = ipcx::channel::Endpoint::parse(ep).unwrap();
    let mut tx = ep.sender(opts).expect("sender");
    for m in msgs {
        tx.send_timeout(m.as_bytes(), timeout).expect("send");
    }
}

/// Asserts that a receiver and a sender of `ep`, an object that [`NOBODY`] created, are both
/// refused as another user's, with a message naming the endpoint, the owner's uid and each of
/// `hints`.
pub fn assert_foreign_owner_refused(ep: &ipcx::channel::Endpoint, hints: &[&str]) {
    use ipcx::channel::{Error, Options};
    for e in [
        ep.receiver(&Options::new()).unwrap_err(),
        ep.sender(&Options::new()).unwrap_err(),
    ] {
        assert!(matches!(e, Error::ForeignOwner(_)), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(&ep.to_string()), "{text}");
        assert!(text.contains(&format!("uid {NOBODY}")), "{text}");
        for h in hints {
            assert!(text.contains(h), "{text}");
        }
    }
}

/// Asserts that a sender of `ep`, where no receiver created the object yet, fails as
/// not found and says to start a receiver first or pass `--create`.
pub fn assert_sender_needs_a_receiver(ep: &ipcx::channel::Endpoint) {
    let e = ep.sender(&ipcx::channel::Options::new()).unwrap_err();
    assert!(matches!(e, ipcx::channel::Error::NotFound { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("start a receiver first or pass --create"),
        "{e}"
    );
}

/// The unprivileged identity permission tests run as (`nobody`).
pub const NOBODY: u32 = 65534;

/// Whether this process is root (CI is): root bypasses file-mode checks, so permission tests
/// run their denied side in a child that drops to [`NOBODY`].
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// Like [`spawn_role`], but the child runs as uid/gid [`NOBODY`] (the test must run as root).
///
/// When `nobody` cannot reach this test binary (a checkout under a private home directory),
/// the child runs it from a world-readable temporary directory of its own, removed as soon as
/// the child has started (it runs from its own mapping of the file by then).
pub fn spawn_role_as_nobody(role: &str, args: &[&str]) -> ChildGuard {
    use std::os::unix::process::CommandExt;
    let copy = (!exe_reachable_by_others()).then(ExeForOthers::new);
    let mut cmd = match &copy {
        Some(copy) => role_command_of(&copy.exe, role, args),
        None => role_command(role, args),
    };
    cmd.uid(NOBODY).gid(NOBODY);
    // When the binary had to be copied, a fork by another test thread while the copy was being
    // written briefly holds it open for writing, and exec then fails with ETXTBSY: retry for a
    // moment.
    for _ in 0..200 {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(26) => std::thread::sleep(Duration::from_millis(10)),
            other => return ChildGuard(Some(other.expect("spawn child as nobody"))),
        }
    }
    panic!("spawn child as nobody: the test binary copy stayed busy (ETXTBSY)")
}

/// Whether every directory on the way to this test binary lets others through and the binary
/// lets them run it.
fn exe_reachable_by_others() -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    exe.ancestors()
        .skip(1)
        .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
        && std::fs::metadata(&exe).is_ok_and(|m| m.permissions().mode() & 0o005 == 0o005)
}

/// This test binary in a world-readable directory of its own under `$TMPDIR`: a hard link when
/// the binary's own mode lets others run it (same file system), a copy otherwise. Dropping it
/// removes the directory.
struct ExeForOthers {
    dir: PathBuf,
    exe: PathBuf,
}

impl ExeForOthers {
    fn new() -> ExeForOthers {
        use std::os::unix::fs::PermissionsExt;
        let exe = std::env::current_exe().expect("this test binary's path");
        let dir = std::env::temp_dir().join(unique("nobody-exe"));
        std::fs::create_dir(&dir).expect("a directory for the test binary");
        let this = ExeForOthers {
            exe: dir.join("test-binary"),
            dir,
        };
        std::fs::set_permissions(&this.dir, std::fs::Permissions::from_mode(0o755))
            .expect("opening the directory to others");
        let runnable =
            std::fs::metadata(&exe).is_ok_and(|m| m.permissions().mode() & 0o005 == 0o005);
        if !(runnable && std::fs::hard_link(&exe, &this.exe).is_ok()) {
            std::fs::copy(&exe, &this.exe).expect("copying the test binary");
            std::fs::set_permissions(&this.exe, std::fs::Permissions::from_mode(0o755))
                .expect("letting others run the copy");
        }
        this
    }
}

impl Drop for ExeForOthers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
