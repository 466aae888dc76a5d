//! memfds: sharing with another process through the fd, seals that a receiver cannot get around,
//! and anonymous shared mappings.
//!
//! The children here reach the parent's memfd through `/proc/<parent pid>/fd/<n>` (the way a
//! process that inherited or received the fd would hold it); the Unix-socket hand-off uses the
//! same `Memfd::from(OwnedFd)` + `map_read_only()`.
mod util;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use ipcx::shm::{AccessError, Memfd, Seals, ShmError, ShmMap};

const TIMEOUT: Duration = Duration::from_secs(30);
const CONTENT: &[u8] = b"frozen configuration v1";

fn proc_path(args: &[String]) -> String {
    format!("/proc/{}/fd/{}", args[0], args[1])
}

/// In a child: the parent's memfd (`args`: its pid and fd), opened read-write and mapped.
fn map_read_write(args: &[String]) -> ShmMap {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(proc_path(args))
        .unwrap();
    Memfd::from(OwnedFd::from(file)).map().unwrap()
}

fn fd_args(m: &Memfd) -> [String; 2] {
    [std::process::id().to_string(), m.as_raw_fd().to_string()]
}

#[test]
fn child_role() {
    util::role_main(&[
        ("sealed_reader", |args| {
            // What a receiver gets: a read-only fd.
            let ro = Memfd::from(OwnedFd::from(File::open(proc_path(args)).unwrap()));
            assert!(ro.is_sealed_read_only().unwrap());
            let map = ro.map_read_only().unwrap();
            let mut buf = vec![0u8; CONTENT.len()];
            map.read_at(0, &mut buf).unwrap();
            assert_eq!(buf, CONTENT);
            let e = ro.map().unwrap_err();
            assert!(matches!(e, ShmError::PermissionDenied { .. }), "{e}");

            // Even a read-write reopening of the memfd cannot change it.
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(proc_path(args))
                .unwrap();
            let rw = Memfd::from(OwnedFd::from(file.try_clone().unwrap()));
            let e = rw.map().unwrap_err();
            assert!(matches!(e, ShmError::Sealed { .. }), "map writable: {e}");
            let e = (&file).write(b"tamper").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "write(2): {e}");
            let e = file.set_len(1).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "ftruncate: {e}");
            let e = rw.resize(1 << 20).unwrap_err();
            assert!(matches!(e, ShmError::Sealed { .. }), "grow: {e}");
            let e = rw.seal(Seals::FUTURE_WRITE).unwrap_err();
            assert!(matches!(e, ShmError::Sealed { .. }), "more seals: {e}");

            // Nothing changed.
            map.read_at(0, &mut buf).unwrap();
            assert_eq!(buf, CONTENT);
            assert_eq!(ro.size().unwrap(), 4096);
        }),
        ("writer", |args| {
            let map = map_read_write(args);
            let v: u64 = map.read(0).unwrap();
            map.write::<u64>(8, &(v * 10)).unwrap();
        }),
        ("writer_then_hang", |args| {
            let map = map_read_write(args);
            map.write_at(0, b"child was here").unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }),
    ]);
}

#[test]
fn sealed_memfd_handed_to_a_child_cannot_be_modified() {
    let memfd = Memfd::create("ipcx-test-config", 4096).unwrap();
    assert!(memfd.seals().unwrap().is_empty());
    memfd.map().unwrap().write_at(0, CONTENT).unwrap();
    memfd.seal_read_only().unwrap();
    let seals = memfd.seals().unwrap();
    assert!(seals.contains(Seals::GROW | Seals::SHRINK | Seals::WRITE | Seals::SEAL));
    let args = fd_args(&memfd);
    util::spawn_role("sealed_reader", &[&args[0], &args[1]]).expect_success();
    // The owner is bound by the seals too.
    assert!(matches!(memfd.map(), Err(ShmError::Sealed { .. })));
}

#[test]
fn memfd_is_shared_read_write_with_a_child() {
    let memfd = Memfd::create("ipcx-test-shared", 64).unwrap();
    let map = memfd.map().unwrap();
    map.write::<u64>(0, &42).unwrap();
    let args = fd_args(&memfd);
    util::spawn_role("writer", &[&args[0], &args[1]]).expect_success();
    assert_eq!(map.read::<u64>(8).unwrap(), 420);
}

#[test]
fn a_killed_peer_leaves_the_memory_intact() {
    let memfd = Memfd::create("ipcx-test-kill", 64).unwrap();
    let map = memfd.map().unwrap();
    let args = fd_args(&memfd);
    let mut child = util::spawn_role("writer_then_hang", &[&args[0], &args[1]]);
    let mut buf = [0u8; 14];
    assert!(util::wait_until(TIMEOUT, || {
        map.read_at(0, &mut buf).unwrap();
        &buf == b"child was here"
    }));
    child.kill();
    map.write_at(0, b"parent").unwrap();
    map.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf[..6], b"parent");
}

#[test]
fn seal_write_with_a_writable_mapping_is_a_named_error() {
    let memfd = Memfd::create("ipcx-test-busy", 4096).unwrap();
    let map = memfd.map().unwrap();
    let e = memfd.seal(Seals::WRITE).unwrap_err();
    assert!(matches!(e, ShmError::WritableMappingExists { .. }), "{e}");
    assert!(e.to_string().contains("drop every writable"), "{e}");
    drop(map);
    let ro = memfd.map_read_only().unwrap(); // read-only maps do not block the seal
    memfd.seal(Seals::WRITE).unwrap();
    assert!(memfd.seals().unwrap().contains(Seals::WRITE));
    assert_eq!(ro.read::<u8>(0).unwrap(), 0);
}

#[test]
fn grow_and_shrink_seals() {
    let memfd = Memfd::create("ipcx-test-size", 4096).unwrap();
    memfd.seal(Seals::GROW).unwrap();
    assert!(matches!(memfd.resize(8192), Err(ShmError::Sealed { .. })));
    memfd.resize(2048).unwrap();
    memfd.seal(Seals::SHRINK).unwrap();
    assert!(matches!(memfd.resize(1024), Err(ShmError::Sealed { .. })));
    assert_eq!(memfd.size().unwrap(), 2048);
    // Still writable: only the size is frozen.
    memfd.map().unwrap().write_at(2047, b"z").unwrap();
    memfd.seal(Seals::SEAL).unwrap();
    assert!(matches!(
        memfd.seal(Seals::WRITE),
        Err(ShmError::Sealed { .. })
    ));
}

#[test]
fn memfd_sizes_names_and_fd_conversions() {
    assert!(matches!(
        Memfd::create("x", 0),
        Err(ShmError::InvalidSize { .. })
    ));
    assert!(matches!(
        Memfd::create("a\0b", 1),
        Err(ShmError::InvalidName(_))
    ));
    assert!(matches!(
        Memfd::create(&"n".repeat(250), 1),
        Err(ShmError::InvalidName(_))
    ));
    let m = Memfd::create("conv", 10).unwrap();
    let fd: OwnedFd = m.into();
    let m = Memfd::from(fd);
    assert_eq!(m.size().unwrap(), 10);
    let map = m.map().unwrap();
    assert!(matches!(
        map.write_at(8, b"abc"),
        Err(ShmError::Access(AccessError::OutOfBounds { size: 10, .. }))
    ));
}

#[test]
fn anonymous_shared_mapping() {
    let map = ShmMap::anonymous(4096).unwrap();
    assert!(map.is_writable());
    assert_eq!(map.read::<u64>(4088).unwrap(), 0);
    map.write::<u64>(4088, &7).unwrap();
    assert_eq!(map.read::<u64>(4088).unwrap(), 7);
    assert!(matches!(
        ShmMap::anonymous(0),
        Err(ShmError::InvalidSize { .. })
    ));
}
