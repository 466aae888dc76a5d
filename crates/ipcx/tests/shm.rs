//! POSIX shared memory between processes: data both ways, typed values, resize, read-only maps,
//! bounds, sizes, names, missing/existing objects, permissions and ownership.
mod util;

use std::time::Duration;

use ipcx::shm::{AccessError, Shm, ShmError};
use util::Cleanup;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[derive(Debug, Clone, Copy, PartialEq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Sample {
    seq: u64,
    value: f64,
    id: u32,
    flags: u32,
}

const TIMEOUT: Duration = Duration::from_secs(30);

fn unlink_guard(name: &str) -> Cleanup<impl FnMut()> {
    let name = name.to_owned();
    Cleanup(move || {
        let _ = Shm::unlink(&name);
    })
}

#[test]
fn child_role() {
    util::role_main(&[
        // args: name: maps the object read-only and reads (then writes, through a second,
        // writable mapping) until an error: exits 1 on Truncated from both, 2 otherwise
        ("read_until_truncated", |args| {
            let shm = Shm::open(&args[0]).unwrap();
            let (ro, rw) = (shm.map_read_only().unwrap(), shm.map().unwrap());
            let mut buf = vec![0u8; 8192];
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let read = loop {
                match ro.read_at(0, &mut buf) {
                    Ok(()) if std::time::Instant::now() < deadline => {}
                    r => break r,
                }
            };
            let write = rw.write_at(4096, b"after");
            let truncated = |r: &Result<(), ShmError>| matches!(r, Err(ShmError::Truncated));
            let code = if truncated(&read) && truncated(&write) && ro.is_truncated() {
                1
            } else {
                2
            };
            eprintln!("read {read:?}, write {write:?}");
            std::process::exit(code);
        }),
        // args: name: creates the object with mode 666 and leaves it behind
        ("create_666", |args| {
            let _ = Shm::options()
                .size(4096)
                .mode(0o666)
                .create_new(&args[0])
                .unwrap()
                .persist();
        }),
        ("echo", |args| {
            let shm = Shm::open(&args[0]).unwrap();
            assert!(!shm.is_owner());
            let map = shm.map().unwrap();
            let mut buf = [0u8; 4];
            map.read_at(0, &mut buf).unwrap();
            assert_eq!(&buf, b"ping");
            map.write_at(100, b"pong").unwrap();
        }),
        ("typed", |args| {
            let shm = Shm::open(&args[0]).unwrap();
            let map = shm.map().unwrap();
            let mut s: Sample = map.read(8).unwrap();
            assert_eq!(s.id, 7);
            s.seq += 1;
            s.value *= 2.0;
            map.write(64, &s).unwrap();
        }),
        ("resize", |args| {
            let shm = Shm::open(&args[0]).unwrap();
            assert_eq!(shm.size().unwrap(), 4096);
            shm.resize(8192).unwrap();
            shm.map().unwrap().write_at(8000, b"grown").unwrap();
        }),
        ("read_only", |args| {
            let shm = Shm::open_read_only(&args[0]).unwrap();
            assert!(matches!(
                shm.map(),
                Err(ShmError::Access(AccessError::ReadOnly { .. }))
            ));
            assert!(matches!(
                shm.resize(1),
                Err(ShmError::Access(AccessError::ReadOnly { .. }))
            ));
            let map = shm.map_read_only().unwrap();
            let mut buf = [0u8; 2];
            map.read_at(0, &mut buf).unwrap();
            assert_eq!(&buf, b"ro");
            assert!(matches!(
                map.write_at(0, b"x"),
                Err(ShmError::Access(AccessError::ReadOnly { .. }))
            ));
            // A read-write handle mapped read-only refuses writes too.
            let rw = Shm::open(&args[0]).unwrap();
            let map = rw.map_read_only().unwrap();
            assert!(matches!(
                map.write::<u32>(0, &1),
                Err(ShmError::Access(AccessError::ReadOnly { .. }))
            ));
        }),
        ("create_new_exists", |args| {
            let e = Shm::create_new(&args[0], 4096).unwrap_err();
            assert!(matches!(e, ShmError::AlreadyExists { .. }), "{e}");
            let shm = Shm::create(&args[0], 4096).unwrap();
            assert!(
                !shm.is_owner(),
                "create of an existing object must not own it"
            );
        }),
        ("denied", |args| {
            let e = Shm::open(&args[0]).unwrap_err();
            assert!(matches!(e, ShmError::PermissionDenied { .. }), "{e}");
            let e = Shm::open_read_only(&args[0]).unwrap_err();
            assert!(matches!(e, ShmError::PermissionDenied { .. }), "{e}");
            let e = Shm::unlink(&args[0]).unwrap_err();
            assert!(matches!(e, ShmError::PermissionDenied { .. }), "{e}");
        }),
        ("create_and_hang", |args| {
            let shm = Shm::create_new(&args[0], 4096).unwrap();
            let map = shm.map().unwrap();
            map.write_at(1, b"alive").unwrap();
            map.write_at(0, &[1]).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }),
    ]);
}

#[test]
fn write_in_parent_read_in_child_and_back() {
    let name = util::posix_name("echo");
    let _g = unlink_guard(&name);
    let shm = Shm::create_new(&name, 4096).unwrap();
    assert!(shm.is_owner());
    let map = shm.map().unwrap();
    map.write_at(0, b"ping").unwrap();
    util::spawn_role("echo", &[&name]).expect_success();
    let mut buf = [0u8; 4];
    map.read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"pong");
}

#[test]
fn typed_struct_round_trip() {
    let name = util::posix_name("typed");
    let _g = unlink_guard(&name);
    let shm = Shm::create_new(&name, 4096).unwrap();
    let map = shm.map().unwrap();
    let s = Sample {
        seq: 41,
        value: 1.5,
        id: 7,
        flags: 0xdead_beef,
    };
    map.write(8, &s).unwrap();
    util::spawn_role("typed", &[&name]).expect_success();
    let back: Sample = map.read(64).unwrap();
    assert_eq!(
        back,
        Sample {
            seq: 42,
            value: 3.0,
            ..s
        }
    );
}

#[test]
fn resize_is_seen_by_the_other_process() {
    let name = util::posix_name("resize");
    let _g = unlink_guard(&name);
    let shm = Shm::create_new(&name, 4096).unwrap();
    let old = shm.map().unwrap();
    util::spawn_role("resize", &[&name]).expect_success();
    assert_eq!(shm.size().unwrap(), 8192);
    assert_eq!(old.len(), 4096, "existing mappings keep their length");
    let map = shm.map().unwrap();
    assert_eq!(map.len(), 8192);
    let mut buf = [0u8; 5];
    map.read_at(8000, &mut buf).unwrap();
    assert_eq!(&buf, b"grown");
}

#[test]
fn read_only_map_refuses_writes() {
    let name = util::posix_name("ro");
    let _g = unlink_guard(&name);
    let shm = Shm::create_new(&name, 4096).unwrap();
    shm.map().unwrap().write_at(0, b"ro").unwrap();
    util::spawn_role("read_only", &[&name]).expect_success();
}

#[test]
fn offsets_past_the_end_are_out_of_bounds() {
    let name = util::posix_name("oob");
    let _g = unlink_guard(&name);
    let shm = Shm::create_new(&name, 100).unwrap();
    util::region::check_bounds(&shm.map().unwrap(), |e| match e {
        ShmError::Access(a) => Some(a),
        _ => None,
    });
}

#[test]
fn size_zero_is_invalid() {
    let name = util::posix_name("zero");
    let _g = unlink_guard(&name);
    assert!(matches!(
        Shm::create_new(&name, 0),
        Err(ShmError::InvalidSize { size: 0, .. })
    ));
    assert!(matches!(
        Shm::create(&name, 0),
        Err(ShmError::InvalidSize { .. })
    ));
    assert!(matches!(Shm::open(&name), Err(ShmError::NotFound { .. })));
    let shm = Shm::create_new(&name, 10).unwrap();
    assert!(matches!(shm.resize(0), Err(ShmError::InvalidSize { .. })));
}

#[test]
fn invalid_names_are_rejected() {
    let long = format!("/{}", "a".repeat(256));
    for bad in ["", "noslash", "/", "/a/b", "/..", long.as_str()] {
        let e = Shm::create_new(bad, 10).unwrap_err();
        assert!(matches!(e, ShmError::InvalidName(_)), "{bad:?}: {e}");
        assert!(matches!(Shm::open(bad), Err(ShmError::InvalidName(_))));
        assert!(matches!(Shm::unlink(bad), Err(ShmError::InvalidName(_))));
    }
}

#[test]
fn open_missing_is_not_found() {
    let name = util::posix_name("missing");
    let e = Shm::open(&name).unwrap_err();
    assert!(matches!(e, ShmError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains(&name), "{e}");
    assert!(matches!(Shm::unlink(&name), Err(ShmError::NotFound { .. })));
}

#[test]
fn create_new_of_an_existing_name_is_already_exists() {
    let name = util::posix_name("exists");
    let _g = unlink_guard(&name);
    let _shm = Shm::create_new(&name, 4096).unwrap();
    util::spawn_role("create_new_exists", &[&name]).expect_success();
    // The child's `create` did not own the object: it is still there.
    Shm::open(&name).unwrap();
}

#[test]
fn permission_denied_for_another_user() {
    if !util::is_root() {
        eprintln!("skipped: needs root to run the denied side as nobody");
        return;
    }
    let name = util::posix_name("denied");
    let _g = unlink_guard(&name);
    let shm = Shm::create_new(&name, 4096).unwrap();
    // Created 0600 whatever the umask.
    let meta = std::fs::metadata(format!("/dev/shm{name}")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    util::spawn_role_as_nobody("denied", &[&name]).expect_success();
    drop(shm);
}

#[test]
fn options_set_the_exact_mode() {
    let name = util::posix_name("mode");
    let _g = unlink_guard(&name);
    let _shm = Shm::options()
        .mode(0o666)
        .size(10)
        .create_new(&name)
        .unwrap();
    let meta = std::fs::metadata(format!("/dev/shm{name}")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o666
    );
}

#[test]
fn drop_unlinks_and_persist_keeps() {
    let name = util::posix_name("own");
    let _g = unlink_guard(&name);
    let shm = Shm::create_new(&name, 10).unwrap();
    let map = shm.map().unwrap();
    map.write_at(0, b"x").unwrap();
    let opened = Shm::open(&name).unwrap();
    drop(opened); // an opened-only handle never unlinks
    Shm::open(&name).unwrap();
    drop(shm);
    assert!(matches!(Shm::open(&name), Err(ShmError::NotFound { .. })));
    // The mapping outlives the name.
    let mut b = [0u8; 1];
    map.read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"x");

    let shm = Shm::create_new(&name, 10).unwrap().persist();
    assert!(!shm.is_owner());
    drop(shm);
    Shm::open(&name).unwrap();
    Shm::unlink(&name).unwrap();
    assert!(matches!(Shm::open(&name), Err(ShmError::NotFound { .. })));
}

#[test]
fn drop_does_not_unlink_a_replacement() {
    let name = util::posix_name("replaced");
    let _g = unlink_guard(&name);
    let first = Shm::create_new(&name, 10).unwrap();
    Shm::unlink(&name).unwrap();
    let _second = Shm::create_new(&name, 10).unwrap().persist();
    drop(first);
    Shm::open(&name).expect("the replacement must survive the first owner's drop");
}

#[test]
fn killed_creator_leaves_the_object_and_readers_keep_working() {
    let name = util::posix_name("killed");
    let _g = unlink_guard(&name);
    let mut child = util::spawn_role("create_and_hang", &[&name]);
    let mut map = None;
    assert!(
        util::wait_until(TIMEOUT, || {
            if map.is_none() {
                map = Shm::open(&name).and_then(|s| s.map_read_only()).ok();
            }
            map.as_ref().is_some_and(|m| m.read::<u8>(0).unwrap() == 1)
        }),
        "the child never created the object"
    );
    child.kill();
    let map = map.unwrap();
    let mut buf = [0u8; 5];
    map.read_at(1, &mut buf).unwrap();
    assert_eq!(&buf, b"alive");
    // SIGKILL runs no destructor: the name stays until someone unlinks it.
    Shm::unlink(&name).unwrap();
}

/// Another process truncates the object under a reading process: its copies fail with
/// `Truncated` (the process exits 1), never SIGBUS.
#[test]
fn an_object_truncated_under_a_reader_is_an_error_not_sigbus() {
    let name = util::posix_name("trunc");
    let _g = unlink_guard(&name);
    let shm = Shm::create_new(&name, 64 << 10).unwrap();
    let mut child = util::spawn_role("read_until_truncated", &[&name]);
    std::thread::sleep(Duration::from_millis(300));
    util::truncate_shm(&name);
    let status = child.wait_timeout(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{status}");
    drop(shm);
}

/// An object that `nobody` made with mode 666 is refused unless its uid is trusted.
#[test]
fn another_users_object_is_refused_unless_trusted() {
    if !util::is_root() {
        eprintln!("skipped: the hostile side runs as nobody, which needs root");
        return;
    }
    let name = util::posix_name("foreign");
    let _g = unlink_guard(&name);
    util::spawn_role_as_nobody("create_666", &[&name]).expect_success();
    match Shm::open(&name) {
        Err(ShmError::ForeignOwner(e)) => assert_eq!(e.owner, util::NOBODY, "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Shm::create(&name, 4096),
        Err(ShmError::ForeignOwner(_))
    ));
    let shm = Shm::options()
        .trust(ipcx::trust::Trust::own_user().allow_uid(util::NOBODY))
        .open(&name)
        .unwrap();
    assert!(!shm.is_owner());
}
