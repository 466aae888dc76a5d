//! Python peers for the interop tests (`tests/interop_python_*.rs`): whether python3 has the
//! modules they need, and running a script.
//!
//! Without the modules a test prints a skip note and returns, unless `IPCX_INTEROP=1`, which
//! makes their absence a failure that says how to install them.

use std::io::{BufReader, Read};
use std::process::{ChildStdout, Command, Stdio};
use std::time::Duration;

use super::ChildGuard;

/// Whether `python3 -c "import MODULES"` works (see the module docs).
pub fn ready(modules: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let msg = format!(
            "python3 cannot import {modules}: pip install {} \
             (IPCX_INTEROP=1 makes this a failure)",
            modules.replace(',', "")
        );
        if std::env::var("IPCX_INTEROP").as_deref() == Ok("1") {
            panic!("IPCX_INTEROP=1 but {msg}");
        }
        eprintln!("skipped: {msg}");
    }
    ok
}

/// Starts `python3 -c SCRIPT ARGS...` with its stdin and stdout piped (stderr goes to the
/// test's): the script is read line by line and written to.
pub fn spawn(script: &str, args: &[&str]) -> (ChildGuard, BufReader<ChildStdout>) {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let out = BufReader::new(child.stdout.take().unwrap());
    (ChildGuard(Some(child)), out)
}

/// Runs `python3 -c SCRIPT ARGS...` to its end (at most 30 s) and asserts that it succeeded
/// (its stderr in the message); returns its pid and stdout.
pub fn run(script: &str, args: &[&str]) -> (i32, String) {
    let child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let mut guard = ChildGuard(Some(child));
    let pid = guard.pid();
    let mut out = guard.child().stdout.take().unwrap();
    let mut err = guard.child().stderr.take().unwrap();
    let status = guard.wait_timeout(Duration::from_secs(30));
    let (mut o, mut e) = (String::new(), String::new());
    out.read_to_string(&mut o).unwrap();
    err.read_to_string(&mut e).unwrap();
    assert!(status.success(), "python failed ({status}):\n{e}");
    (pid, o)
}
