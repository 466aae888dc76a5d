//! Interoperability with Python's `posix_ipc` and `sysv_ipc` modules, both directions.
//!
//! Without the modules the tests print a skip note, unless `IPCX_INTEROP=1`, which makes them
//! fail with the command to install them.
mod util;

use std::time::Duration;

use ipcx::mq::MessageQueue;
use ipcx::sysv::Key;
use ipcx::sysv::msg::MessageQueue as SysvQueue;

const LONG: Duration = Duration::from_secs(20);

/// Whether python3 with posix_ipc and sysv_ipc is available (see the module docs).
fn python_ready() -> bool {
    util::python::ready("posix_ipc, sysv_ipc")
}

/// Runs a python script (bounded by a timeout) with `sys`, `posix_ipc` and `sysv_ipc` imported
/// and `ARG` the queue's name or key, and asserts it succeeded.
fn python(arg: &str, script: &str) {
    let script = format!("import sys, posix_ipc, sysv_ipc\nARG = sys.argv[1]\n{script}");
    util::python::run(&script, &[arg]);
}

/// A unique System V key, and a guard that removes its queue when the test ends.
fn sysv_key() -> (i32, util::Cleanup<impl FnMut()>) {
    let key = util::sysv_key();
    let guard = util::Cleanup(move || {
        if let Ok(q) = SysvQueue::open(Key(key)) {
            let _ = q.remove();
        }
    });
    (key, guard)
}

#[test]
fn posix_ipcx_creates_python_sends_and_receives() {
    if !python_ready() {
        return;
    }
    let (name, _g) = util::mq_name("py");
    let q = MessageQueue::options()
        .capacity(8, 256)
        .create_new(true)
        .open(&name)
        .unwrap();
    q.send(b"from rust", 3).unwrap();
    python(
        &name,
        r#"
q = posix_ipc.MessageQueue(ARG)
assert q.max_messages == 8 and q.max_message_size == 256, (q.max_messages, q.max_message_size)
msg, prio = q.receive(timeout=10)
assert (msg, prio) == (b"from rust", 3), (msg, prio)
q.send(b"low", priority=1)
q.send(b"high", priority=8)
q.close()
"#,
    );
    assert_eq!(q.recv_timeout(LONG).unwrap(), (b"high".to_vec(), 8));
    assert_eq!(q.recv_timeout(LONG).unwrap(), (b"low".to_vec(), 1));
}

#[test]
fn posix_python_creates_ipcx_sends_and_receives() {
    if !python_ready() {
        return;
    }
    let (name, _g) = util::mq_name("pyc");
    python(
        &name,
        r#"
q = posix_ipc.MessageQueue(ARG, posix_ipc.O_CREX, mode=0o600, max_messages=4, max_message_size=64)
q.send(b"py-5", priority=5)
q.send(b"py-9", priority=9)
q.close()
"#,
    );
    let q = MessageQueue::open(&name).unwrap();
    assert!(!q.is_owner());
    let a = q.attributes().unwrap();
    assert_eq!(
        (a.max_messages, a.max_message_size, a.current_messages),
        (4, 64, 2)
    );
    assert_eq!(q.recv().unwrap(), (b"py-9".to_vec(), 9));
    assert_eq!(q.recv().unwrap(), (b"py-5".to_vec(), 5));
    q.send(b"to python", 2).unwrap();
    python(
        &name,
        r#"
q = posix_ipc.MessageQueue(ARG)
msg, prio = q.receive(timeout=10)
assert (msg, prio) == (b"to python", 2), (msg, prio)
q.close()
q.unlink()
"#,
    );
    assert!(matches!(
        MessageQueue::open(&name),
        Err(ipcx::mq::OpenError::NotFound { .. })
    ));
}

#[test]
fn sysv_ipcx_creates_python_sends_and_receives() {
    if !python_ready() {
        return;
    }
    let (key, _g) = sysv_key();
    let q = SysvQueue::create_new(Key(key)).unwrap();
    q.send(4, b"rust type 4").unwrap();
    q.send(2, b"rust type 2").unwrap();
    python(
        &key.to_string(),
        r#"
q = sysv_ipc.MessageQueue(int(ARG))
msg, t = q.receive(type=4)
assert (msg, t) == (b"rust type 4", 4), (msg, t)
msg, t = q.receive(type=0)
assert (msg, t) == (b"rust type 2", 2), (msg, t)
q.send(b"py seven", type=7)
q.send(b"py three", type=3)
"#,
    );
    assert_eq!(q.recv_timeout(-5, LONG).unwrap(), (3, b"py three".to_vec()));
    assert_eq!(q.recv_timeout(0, LONG).unwrap(), (7, b"py seven".to_vec()));
    let st = q.stat().unwrap();
    assert_eq!(st.messages, 0);
}

#[test]
fn sysv_python_creates_ipcx_sends_and_receives() {
    if !python_ready() {
        return;
    }
    let (key, _g) = sysv_key();
    python(
        &key.to_string(),
        r#"
q = sysv_ipc.MessageQueue(int(ARG), sysv_ipc.IPC_CREX, mode=0o600)
q.send(b"py one", type=1)
q.send(b"py five", type=5)
"#,
    );
    let q = SysvQueue::open(Key(key)).unwrap();
    assert!(!q.is_owner());
    assert_eq!(q.recv(5).unwrap(), (5, b"py five".to_vec()));
    assert_eq!(q.recv(0).unwrap(), (1, b"py one".to_vec()));
    q.send(6, b"to python").unwrap();
    python(
        &key.to_string(),
        r#"
q = sysv_ipc.MessageQueue(int(ARG))
msg, t = q.receive(type=6)
assert (msg, t) == (b"to python", 6), (msg, t)
q.remove()
"#,
    );
    assert!(matches!(
        SysvQueue::open(Key(key)),
        Err(ipcx::sysv::msg::OpenError::NotFound { .. })
    ));
}
