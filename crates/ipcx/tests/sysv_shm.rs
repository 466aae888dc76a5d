//! System V shared memory between processes: data both ways, IPC_STAT counts and pids,
//! removal at the last detach (also when the last holder is killed), sizes, keys, errors and
//! permissions.
mod util;

use std::time::Duration;

use ipcx::shm::AccessError;
use ipcx::sysv::Key;
use ipcx::sysv::shm::{Segment, SysvShmError};
use util::Cleanup;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Offsets in the test segments.
const READY: usize = 0; // child -> parent: 1 when attached
const RELEASE: usize = 1; // parent -> child: 1 to detach and exit
const DATA: usize = 64;

fn remove_guard(key: Key) -> Cleanup<impl FnMut()> {
    Cleanup(move || {
        if let Ok(s) = Segment::open(key) {
            let _ = Segment::remove_id(s.id());
        }
    })
}

fn key() -> Key {
    Key::new(util::sysv_key())
}

/// Child: attach the segment with id `args[0]`, check the parent's greeting, answer, signal
/// ready, wait for the release byte (at most 30 s), then read what the parent wrote last.
fn attach_and_hold(args: &[String]) {
    let seg = Segment::from_id(args[0].parse().unwrap()).unwrap();
    let at = seg.attach().unwrap();
    let mut buf = [0u8; 5];
    at.read_at(DATA, &mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    at.write_at(DATA + 16, b"world").unwrap();
    at.write_at(READY, &[1]).unwrap();
    assert!(
        util::wait_until(TIMEOUT, || at.read::<u8>(RELEASE).unwrap() == 1),
        "never released"
    );
    if let Some(expect) = args.get(1) {
        let mut buf = vec![0u8; expect.len()];
        at.read_at(DATA + 32, &mut buf).unwrap();
        assert_eq!(buf, expect.as_bytes());
    }
}

#[test]
fn child_role() {
    util::role_main(&[
        ("attach_and_hold", attach_and_hold),
        ("create_foreign", |args| {
            let key = Key::new(args[0].parse().unwrap());
            let seg = ipcx::sysv::shm::SegmentOptions::new()
                .mode(0o666)
                .size(64)
                .create_new(key)
                .unwrap()
                .persist();
            seg.attach().unwrap().write::<u64>(0, &7).unwrap();
        }),
        ("by_key", |args| {
            let key = Key::new(args[0].parse().unwrap());
            let seg = Segment::open(key).unwrap();
            assert!(!seg.is_owner());
            let at = seg.attach().unwrap();
            let v: u64 = at.read(0).unwrap();
            at.write::<u64>(8, &(v + 1)).unwrap();
        }),
        ("denied", |args| {
            let key = Key::new(args[0].parse().unwrap());
            // shmget with no permission bits requested may succeed; attaching may not.
            match Segment::open(key) {
                Ok(seg) => {
                    let e = seg.attach_read_only().unwrap_err();
                    assert!(matches!(e, SysvShmError::PermissionDenied { .. }), "{e}");
                    let e = seg.stat().unwrap_err();
                    assert!(matches!(e, SysvShmError::PermissionDenied { .. }), "{e}");
                }
                Err(e) => assert!(matches!(e, SysvShmError::PermissionDenied { .. }), "{e}"),
            }
        }),
    ]);
}

#[test]
fn segment_between_processes_with_stat_counts() {
    let key = key();
    let _g = remove_guard(key);
    let seg = Segment::create_new(key, 4096).unwrap();
    assert!(seg.is_owner());
    let st = seg.stat().unwrap();
    assert_eq!(st.size, 4096);
    assert_eq!(st.attach_count, 0);
    assert_eq!(st.creator_pid, std::process::id() as i32);
    assert_eq!(st.key, key);
    assert_eq!(st.mode, 0o600);
    assert!(!st.marked_for_removal);
    assert!(st.attach_time.is_none() && st.change_time.is_some());

    let at = seg.attach().unwrap();
    at.write_at(DATA, b"hello").unwrap();
    assert_eq!(seg.stat().unwrap().attach_count, 1);

    let mut child = util::spawn_role("attach_and_hold", &[&seg.id().to_string(), "bye"]);
    let child_pid = child.pid();
    assert!(util::wait_until(TIMEOUT, || at.read::<u8>(READY).unwrap() == 1));
    let st = seg.stat().unwrap();
    assert_eq!(st.attach_count, 2);
    assert_eq!(st.last_pid, child_pid, "lpid is the last process to attach");
    assert!(st.attach_time.is_some());
    let mut buf = [0u8; 5];
    at.read_at(DATA + 16, &mut buf).unwrap();
    assert_eq!(&buf, b"world");

    at.write_at(DATA + 32, b"bye").unwrap();
    at.write_at(RELEASE, &[1]).unwrap();
    child.expect_success();
    let st = seg.stat().unwrap();
    assert_eq!(st.attach_count, 1);
    assert_eq!(st.last_pid, child_pid, "lpid is the last process to detach");
    assert!(st.detach_time.is_some());
}

#[test]
fn removal_takes_effect_at_the_last_detach() {
    let key = key();
    let _g = remove_guard(key);
    let mut seg = Segment::create_new(key, 4096).unwrap();
    let id = seg.id();
    let at = seg.attach().unwrap();
    at.write_at(DATA, b"hello").unwrap();
    let mut child = util::spawn_role("attach_and_hold", &[&id.to_string(), "after removal"]);
    assert!(util::wait_until(TIMEOUT, || at.read::<u8>(READY).unwrap() == 1));

    seg.remove().unwrap();
    assert!(!seg.is_owner());
    let st = seg.stat().unwrap();
    assert!(st.marked_for_removal);
    assert_eq!(st.key, Key::PRIVATE, "a removed segment loses its key");
    // Another test's fork (before its exec) briefly inherits our attachment: let it pass.
    assert!(
        util::wait_until(TIMEOUT, || seg.stat().unwrap().attach_count == 2),
        "attach count {}",
        seg.stat().unwrap().attach_count
    );
    assert!(matches!(
        Segment::open(key),
        Err(SysvShmError::NotFound { .. })
    ));

    // Both attachments still work: the child reads what we write now.
    at.write_at(DATA + 32, b"after removal").unwrap();
    drop(at);
    assert!(util::wait_until(TIMEOUT, || seg
        .stat()
        .unwrap()
        .attach_count
        == 1));
    at_release(id);
    child.expect_success();
    let e = seg.stat().unwrap_err();
    assert!(matches!(e, SysvShmError::Removed { .. }), "{e}");
    assert!(matches!(seg.attach(), Err(SysvShmError::Removed { .. })));
}

/// Sets the release byte through a fresh attachment (allowed on a removed segment on Linux).
fn at_release(id: i32) {
    let at = Segment::from_id(id).unwrap().attach().unwrap();
    at.write_at(RELEASE, &[1]).unwrap();
}

#[test]
fn killing_the_last_holder_of_a_removed_segment_frees_it() {
    let key = key();
    let _g = remove_guard(key);
    let seg = Segment::create_new(key, 4096).unwrap();
    let id = seg.id();
    {
        let at = seg.attach().unwrap();
        at.write_at(DATA, b"hello").unwrap();
    }
    let mut child = util::spawn_role("attach_and_hold", &[&id.to_string()]);
    assert!(util::wait_until(TIMEOUT, || {
        seg.stat().map(|s| s.attach_count == 1).unwrap_or(false)
    }));
    drop(seg); // the creator removes on drop; the child still holds it
    let st = Segment::from_id(id).unwrap().stat().unwrap();
    assert!(st.marked_for_removal);
    assert_eq!(st.attach_count, 1);
    child.kill(); // SIGKILL: the kernel detaches for the dead process
    assert!(matches!(
        Segment::from_id(id),
        Err(SysvShmError::Removed { .. })
    ));
}

#[test]
fn typed_values_by_key_between_processes() {
    let key = key();
    let _g = remove_guard(key);
    let seg = Segment::create(key, 64).unwrap();
    assert!(seg.is_owner());
    let at = seg.attach().unwrap();
    at.write::<u64>(0, &99).unwrap();
    util::spawn_role("by_key", &[&key.raw().to_string()]).expect_success();
    assert_eq!(at.read::<u64>(8).unwrap(), 100);
    // `create` of an existing segment opens it without owning it.
    assert!(!Segment::create(key, 64).unwrap().is_owner());
}

#[test]
fn sizes_and_existing_segment_too_small() {
    let key = key();
    let _g = remove_guard(key);
    assert!(matches!(
        Segment::create_new(key, 0),
        Err(SysvShmError::InvalidSize { size: 0, .. })
    ));
    assert!(matches!(
        Segment::create_new(key, usize::MAX),
        Err(SysvShmError::InvalidSize { .. })
    ));
    let _seg = Segment::create_new(key, 4096).unwrap();
    let e = Segment::options().size(8192).open(key).unwrap_err();
    assert!(
        matches!(
            e,
            SysvShmError::ExistingTooSmall {
                requested: 8192,
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        Segment::create(key, 8192),
        Err(SysvShmError::ExistingTooSmall { .. })
    ));
    assert_eq!(
        Segment::options()
            .size(100)
            .open(key)
            .unwrap()
            .stat()
            .unwrap()
            .size,
        4096
    );
}

#[test]
fn missing_existing_private_and_bounds_errors() {
    let key = key();
    let _g = remove_guard(key);
    assert!(matches!(
        Segment::open(key),
        Err(SysvShmError::NotFound { .. })
    ));
    assert!(matches!(
        Segment::open(Key::PRIVATE),
        Err(SysvShmError::PrivateKey)
    ));
    let seg = Segment::create_new(key, 100).unwrap();
    let e = Segment::create_new(key, 100).unwrap_err();
    assert!(matches!(e, SysvShmError::AlreadyExists { .. }), "{e}");
    let at = seg.attach().unwrap();
    util::region::check_bounds(&at, |e| match e {
        SysvShmError::Access(a) => Some(a),
        _ => None,
    });
    let ro = seg.attach_read_only().unwrap();
    assert!(matches!(
        ro.write_at(0, b"x"),
        Err(SysvShmError::Access(AccessError::ReadOnly { .. }))
    ));
    at.write_at(0, b"x").unwrap();
    assert_eq!(ro.read::<u8>(0).unwrap(), b'x');
}

#[test]
fn private_segment_shared_by_id() {
    let seg = Segment::create(Key::PRIVATE, 4096).unwrap();
    let _g = Cleanup({
        let id = seg.id();
        move || {
            let _ = Segment::remove_id(id);
        }
    });
    assert!(seg.is_owner());
    let at = seg.attach().unwrap();
    at.write::<u64>(0, &1).unwrap();
    at.write_at(DATA, b"hello").unwrap();
    at.write_at(RELEASE, &[1]).unwrap(); // the child may go as soon as it has answered
    util::spawn_role("attach_and_hold", &[&seg.id().to_string()]).expect_success();
    let mut buf = [0u8; 5];
    at.read_at(DATA + 16, &mut buf).unwrap();
    assert_eq!(&buf, b"world");
}

#[test]
fn drop_removes_and_persist_keeps() {
    let key = key();
    let _g = remove_guard(key);
    let seg = Segment::create_new(key, 64).unwrap();
    drop(Segment::open(key).unwrap()); // opened-only handles never remove
    Segment::open(key).unwrap();
    drop(seg);
    assert!(matches!(
        Segment::open(key),
        Err(SysvShmError::NotFound { .. })
    ));
    let seg = Segment::create_new(key, 64).unwrap().persist();
    let id = seg.id();
    drop(seg);
    assert_eq!(Segment::open(key).unwrap().id(), id);
    Segment::remove_id(id).unwrap();
    assert!(matches!(
        Segment::open(key),
        Err(SysvShmError::NotFound { .. })
    ));
}

#[test]
fn permission_denied_for_another_user() {
    if !util::is_root() {
        eprintln!("skipped: needs root to run the denied side as nobody");
        return;
    }
    let key = key();
    let _g = remove_guard(key);
    let _seg = Segment::create_new(key, 64).unwrap();
    util::spawn_role_as_nobody("denied", &[&key.raw().to_string()]).expect_success();
}

#[test]
fn foreign_segment_is_refused_unless_its_owner_is_trusted() {
    if !util::is_root() {
        eprintln!("skipped: needs root to create the foreign segment as nobody");
        return;
    }
    let key = Key::new(util::sysv_key());
    let _guard = Cleanup(|| {
        if let Ok(seg) = ipcx::sysv::shm::SegmentOptions::new()
            .trust(ipcx::trust::Trust::any_user())
            .open(key)
        {
            let _ = Segment::remove_id(seg.id());
        }
    });
    util::spawn_role_as_nobody("create_foreign", &[&key.0.to_string()]).expect_success();
    for e in [
        Segment::open(key).unwrap_err(),
        Segment::create(key, 64).unwrap_err(),
    ] {
        assert!(matches!(e, SysvShmError::ForeignOwner(_)), "{e:?}");
        assert!(
            e.to_string().contains(&format!("uid {}", util::NOBODY)),
            "{e}"
        );
    }
    let seg = ipcx::sysv::shm::SegmentOptions::new()
        .trust(ipcx::trust::Trust::own_user().allow_uid(util::NOBODY))
        .open(key)
        .unwrap();
    assert!(!seg.is_owner());
    let v: u64 = seg.attach().unwrap().read(0).unwrap();
    assert_eq!(v, 7);
}
