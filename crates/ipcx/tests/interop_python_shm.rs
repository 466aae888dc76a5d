//! Interoperability with Python's `posix_ipc`, `sysv_ipc` and `multiprocessing.shared_memory`:
//! segments created by ipcx are read (and written back) by Python, and segments created by Python
//! are opened and read by ipcx.
//!
//! Without `python3 -c "import posix_ipc, sysv_ipc"` working, the tests print a skip note; with
//! `IPCX_INTEROP=1` they fail instead.
mod util;

use ipcx::shm::Shm;
use ipcx::sysv::Key;
use ipcx::sysv::shm::Segment;
use util::Cleanup;

/// Whether Python with the modules is available; panics under `IPCX_INTEROP=1` when it is not.
fn python_ready() -> bool {
    util::python::ready("posix_ipc, sysv_ipc, multiprocessing.shared_memory")
}

/// Runs a Python script with arguments; asserts success within 30 s; returns its pid and stdout.
fn python(script: &str, args: &[&str]) -> (i32, String) {
    util::python::run(script, args)
}

fn unlink_guard(name: &str) -> Cleanup<impl FnMut()> {
    let name = name.to_owned();
    Cleanup(move || {
        let _ = Shm::unlink(&name);
    })
}

fn remove_guard(key: Key) -> Cleanup<impl FnMut()> {
    Cleanup(move || {
        if let Ok(s) = Segment::open(key) {
            let _ = Segment::remove_id(s.id());
        }
    })
}

const PY_POSIX_READ_WRITE: &str = r#"
import mmap, sys, posix_ipc
m = posix_ipc.SharedMemory(sys.argv[1])
mm = mmap.mmap(m.fd, m.size)
m.close_fd()
assert mm[:9] == b"from ipcx", mm[:9]
mm[100:111] = b"from python"
mm.close()
"#;

const PY_POSIX_CREATE: &str = r#"
import mmap, sys, posix_ipc
m = posix_ipc.SharedMemory(sys.argv[1], posix_ipc.O_CREX, mode=0o600, size=4096)
mm = mmap.mmap(m.fd, m.size)
m.close_fd()
mm[:11] = b"from python"
mm.close()
"#;

const PY_MP_READ_WRITE: &str = r#"
import sys
from multiprocessing import shared_memory, resource_tracker
shm = shared_memory.SharedMemory(name=sys.argv[1])
# Python < 3.13 registers attached segments too and unlinks them at exit: we did not create it.
resource_tracker.unregister(shm._name, "shared_memory")
assert bytes(shm.buf[:9]) == b"from ipcx", bytes(shm.buf[:9])
shm.buf[100:111] = b"from python"
shm.close()
"#;

const PY_MP_CREATE: &str = r#"
import sys
from multiprocessing import shared_memory, resource_tracker
shm = shared_memory.SharedMemory(name=sys.argv[1], create=True, size=4096)
resource_tracker.unregister(shm._name, "shared_memory")  # keep it after exit for ipcx
shm.buf[:11] = b"from python"
shm.close()
"#;

const PY_SYSV_READ_WRITE: &str = r#"
import sys, sysv_ipc
m = sysv_ipc.SharedMemory(int(sys.argv[1]))
assert m.read(9, offset=0) == b"from ipcx"
m.write(b"from python", offset=100)
m.detach()
"#;

const PY_SYSV_CREATE: &str = r#"
import sys, sysv_ipc
m = sysv_ipc.SharedMemory(int(sys.argv[1]), sysv_ipc.IPC_CREX, mode=0o600, size=4096)
m.write(b"from python", offset=0)
m.detach()
"#;

fn read_string(map: &ipcx::shm::ShmMap, offset: usize, len: usize) -> String {
    let mut buf = vec![0u8; len];
    map.read_at(offset, &mut buf).unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn posix_ipcx_creates_python_reads_and_writes_back() {
    if !python_ready() {
        return;
    }
    let name = util::posix_name("py-posix");
    let _g = unlink_guard(&name);
    let shm = Shm::create_new(&name, 4096).unwrap();
    let map = shm.map().unwrap();
    map.write_at(0, b"from ipcx").unwrap();
    python(PY_POSIX_READ_WRITE, &[&name]);
    assert_eq!(read_string(&map, 100, 11), "from python");
}

#[test]
fn posix_python_creates_ipcx_opens_and_reads() {
    if !python_ready() {
        return;
    }
    let name = util::posix_name("py-posix-create");
    let _g = unlink_guard(&name);
    python(PY_POSIX_CREATE, &[&name]);
    let shm = Shm::open_read_only(&name).unwrap();
    assert_eq!(shm.size().unwrap(), 4096);
    assert_eq!(
        read_string(&shm.map_read_only().unwrap(), 0, 11),
        "from python"
    );
    Shm::unlink(&name).unwrap();
}

#[test]
fn multiprocessing_shared_memory_both_ways() {
    if !python_ready() {
        return;
    }
    // ipcx creates, Python attaches, reads, writes back.
    let name = util::posix_name("py-mp");
    let _g = unlink_guard(&name);
    let shm = Shm::create_new(&name, 4096).unwrap();
    let map = shm.map().unwrap();
    map.write_at(0, b"from ipcx").unwrap();
    python(PY_MP_READ_WRITE, &[&name[1..]]);
    assert_eq!(read_string(&map, 100, 11), "from python");
    Shm::open(&name).expect("Python's resource tracker must not unlink our segment");

    // Python creates, ipcx opens and reads.
    let name2 = util::posix_name("py-mp-create");
    let _g2 = unlink_guard(&name2);
    python(PY_MP_CREATE, &[&name2[1..]]);
    let shm2 = Shm::open(&name2).unwrap();
    assert_eq!(read_string(&shm2.map().unwrap(), 0, 11), "from python");
    Shm::unlink(&name2).unwrap();
}

#[test]
fn sysv_ipcx_creates_python_reads_and_writes_back() {
    if !python_ready() {
        return;
    }
    let key = Key::new(util::sysv_key());
    let _g = remove_guard(key);
    let seg = Segment::create_new(key, 4096).unwrap();
    let at = seg.attach().unwrap();
    at.write_at(0, b"from ipcx").unwrap();
    let (pid, _) = python(PY_SYSV_READ_WRITE, &[&key.raw().to_string()]);
    let mut buf = [0u8; 11];
    at.read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"from python");
    let st = seg.stat().unwrap();
    assert_eq!(st.last_pid, pid, "python was the last to detach");
    assert_eq!(st.attach_count, 1);
}

#[test]
fn sysv_python_creates_ipcx_opens_and_reads() {
    if !python_ready() {
        return;
    }
    let key = Key::new(util::sysv_key());
    let _g = remove_guard(key);
    let (pid, _) = python(PY_SYSV_CREATE, &[&key.raw().to_string()]);
    let mut seg = Segment::open(key).unwrap();
    let st = seg.stat().unwrap();
    assert_eq!(st.size, 4096);
    assert_eq!(st.creator_pid, pid);
    assert_eq!(st.mode, 0o600);
    let at = seg.attach_read_only().unwrap();
    let mut buf = [0u8; 11];
    at.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"from python");
    seg.remove().unwrap();
}
