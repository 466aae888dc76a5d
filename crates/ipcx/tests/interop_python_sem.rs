//! Interoperability with Python's `posix_ipc` and `sysv_ipc`: semaphores created by one side
//! are opened, posted and waited on by the other.
//!
//! Skipped (with a note on stderr) when the Python modules are missing, unless `IPCX_INTEROP=1`,
//! in which case their absence is a failure.
mod util;

use std::io::{BufRead, BufReader, Write};
use std::process::ChildStdout;
use std::time::Duration;

use ipcx::sem::Semaphore;
use ipcx::sysv::Key;
use ipcx::sysv::sem::SemaphoreSet;
use util::ChildGuard;

const SHORT: Duration = Duration::from_secs(10);

fn python_available() -> bool {
    util::python::ready("posix_ipc, sysv_ipc")
}

/// Runs `script` with `args`; its stdout is read line by line, its stdin written to.
fn python(script: &str, args: &[&str]) -> (ChildGuard, BufReader<ChildStdout>) {
    util::python::spawn(script, args)
}

/// Reads one line from the script (every script bounds its own waits, so this ends).
fn expect_line(out: &mut BufReader<ChildStdout>, want: &str) {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), want, "unexpected output from the Python peer");
}

fn say_go(child: &mut ChildGuard) {
    let stdin = child.child().stdin.as_mut().unwrap();
    stdin.write_all(b"go\n").unwrap();
    stdin.flush().unwrap();
}

#[test]
fn posix_semaphore_created_by_python_is_used_by_ipcx() {
    if !python_available() {
        return;
    }
    let name = util::posix_name("py-posix");
    let _guard = util::Cleanup(|| {
        let _ = Semaphore::remove(&name);
    });
    let (mut child, mut out) = python(
        r#"
import sys, posix_ipc
s = posix_ipc.Semaphore(sys.argv[1], posix_ipc.O_CREX, mode=0o600, initial_value=0)
print("ready", flush=True)
s.acquire(10)
s.release()
s.close()
print("done", flush=True)
"#,
        &[&name],
    );
    expect_line(&mut out, "ready");
    let mut sem = Semaphore::open(&name).unwrap();
    assert!(!sem.is_owner());
    sem.post().unwrap();
    expect_line(&mut out, "done");
    child.expect_success();
    sem.wait_timeout(SHORT).unwrap();
    assert_eq!(sem.value().unwrap(), 0);
    sem.unlink().unwrap();
}

#[test]
fn posix_semaphore_created_by_ipcx_is_used_by_python() {
    if !python_available() {
        return;
    }
    let name = util::posix_name("ipcx-posix");
    let sem = Semaphore::create_new(&name, 0).unwrap();
    let (mut child, mut out) = python(
        r#"
import sys, posix_ipc
s = posix_ipc.Semaphore(sys.argv[1])
s.release()
sys.stdin.readline()
s.acquire(10)
s.close()
print("got", flush=True)
"#,
        &[&name],
    );
    sem.wait_timeout(SHORT).unwrap();
    sem.post().unwrap();
    say_go(&mut child);
    expect_line(&mut out, "got");
    child.expect_success();
    assert_eq!(sem.value().unwrap(), 0);
}

#[test]
fn sysv_semaphore_created_by_python_is_used_by_ipcx() {
    if !python_available() {
        return;
    }
    let key = util::sysv_key();
    let _guard = util::Cleanup(|| {
        let _ = SemaphoreSet::remove_key(Key::new(key));
    });
    let (mut child, mut out) = python(
        r#"
import sys, sysv_ipc
s = sysv_ipc.Semaphore(int(sys.argv[1]), sysv_ipc.IPC_CREX, mode=0o600, initial_value=0)
print("ready", flush=True)
s.acquire(10)
s.release()
print("done", flush=True)
"#,
        &[&key.to_string()],
    );
    expect_line(&mut out, "ready");
    let mut set = SemaphoreSet::open(Key::new(key)).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set.stat().unwrap().mode, 0o600);
    set.post(0).unwrap();
    expect_line(&mut out, "done");
    child.expect_success();
    set.wait_timeout(0, SHORT).unwrap();
    assert_eq!(set.get(0).unwrap(), 0);
    set.remove().unwrap();
}

#[test]
fn sysv_semaphore_created_by_ipcx_is_used_by_python() {
    if !python_available() {
        return;
    }
    let key = util::sysv_key();
    let set = SemaphoreSet::create_new(Key::new(key), 1).unwrap();
    let (mut child, mut out) = python(
        r#"
import sys, sysv_ipc
s = sysv_ipc.Semaphore(int(sys.argv[1]))
s.release()
sys.stdin.readline()
s.acquire(10)
print("got", flush=True)
"#,
        &[&key.to_string()],
    );
    set.wait_timeout(0, SHORT).unwrap();
    set.post(0).unwrap();
    say_go(&mut child);
    expect_line(&mut out, "got");
    child.expect_success();
    assert_eq!(set.get(0).unwrap(), 0);
}
