//! POSIX named semaphores between real processes.
mod util;

use std::path::Path;
use std::time::{Duration, Instant};

use ipcx::sem::{NamedSemError, Semaphore, VALUE_MAX};

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_secs(10);

#[test]
fn child_role() {
    util::role_main(&[
        ("waiter", waiter),
        ("post", |args| {
            Semaphore::open(&args[0]).unwrap().post().unwrap()
        }),
        ("open_denied", open_denied),
        ("create_foreign", |args| {
            drop(
                Semaphore::options()
                    .create_new(true)
                    .mode(0o666)
                    .value(1)
                    .open(&args[0])
                    .unwrap()
                    .persist(),
            )
        }),
    ]);
}

/// Opens `args[0]` (the semaphore) and `args[1]` (acknowledgements): posts an ack, waits on the
/// semaphore, posts a second ack.
fn waiter(args: &[String]) {
    let sem = Semaphore::open(&args[0]).unwrap();
    let ack = Semaphore::open(&args[1]).unwrap();
    ack.post().unwrap();
    sem.wait_timeout(LONG).unwrap();
    ack.post().unwrap();
}

/// Runs as nobody: opening a 0600 semaphore of root must be denied.
fn open_denied(args: &[String]) {
    match Semaphore::open(&args[0]) {
        Err(NamedSemError::PermissionDenied { .. }) => {}
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

fn sem_file(name: &str) -> String {
    format!("/dev/shm/sem.{}", &name[1..])
}

#[test]
fn wait_blocks_until_another_process_posts() {
    let name = util::posix_name("pv");
    let ack_name = util::posix_name("pv-ack");
    let sem = Semaphore::create_new(&name, 0).unwrap();
    let ack = Semaphore::create_new(&ack_name, 0).unwrap();
    let mut child = util::spawn_role("waiter", &[&name, &ack_name]);
    // The child has opened both and is about to wait.
    ack.wait_timeout(SHORT).unwrap();
    // It cannot get past the wait before we post.
    assert!(matches!(ack.try_wait(), Err(NamedSemError::WouldBlock)));
    sem.post().unwrap();
    ack.wait_timeout(SHORT).unwrap();
    child.expect_success();
    assert_eq!(sem.value().unwrap(), 0);
}

#[test]
fn post_from_another_process_wakes_a_timed_wait() {
    let name = util::posix_name("post");
    let sem = Semaphore::create_new(&name, 0).unwrap();
    let mut child = util::spawn_role("post", &[&name]);
    sem.wait_timeout(SHORT).unwrap();
    child.expect_success();
}

#[test]
fn try_wait_on_zero_would_block() {
    let name = util::posix_name("try");
    let sem = Semaphore::create_new(&name, 2).unwrap();
    assert_eq!(sem.value().unwrap(), 2);
    sem.try_wait().unwrap();
    sem.try_wait().unwrap();
    assert_eq!(sem.value().unwrap(), 0);
    assert!(matches!(sem.try_wait(), Err(NamedSemError::WouldBlock)));
}

#[test]
fn wait_timeout_returns_timeout_within_bounds() {
    let name = util::posix_name("timeout");
    let sem = Semaphore::create_new(&name, 0).unwrap();
    let start = Instant::now();
    let r = sem.wait_timeout(Duration::from_millis(100));
    let elapsed = start.elapsed();
    assert!(matches!(r, Err(NamedSemError::Timeout)), "{r:?}");
    assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    // A zero timeout does not block.
    assert!(matches!(
        sem.wait_timeout(Duration::ZERO),
        Err(NamedSemError::Timeout)
    ));
}

#[test]
fn invalid_names_are_rejected() {
    for bad in ["noslash", "/a/b", "/", "", "/a\0b"] {
        assert!(
            matches!(
                Semaphore::create(bad, 0),
                Err(NamedSemError::InvalidName(_))
            ),
            "{bad:?}"
        );
        assert!(matches!(
            Semaphore::remove(bad),
            Err(NamedSemError::InvalidName(_))
        ));
    }
    let long = format!("/{}", "x".repeat(252));
    assert!(matches!(
        Semaphore::open(&long),
        Err(NamedSemError::InvalidName(_))
    ));
}

#[test]
fn missing_semaphore_is_not_found() {
    let name = util::posix_name("missing");
    assert!(matches!(
        Semaphore::open(&name),
        Err(NamedSemError::NotFound { .. })
    ));
    assert!(matches!(
        Semaphore::remove(&name),
        Err(NamedSemError::NotFound { .. })
    ));
}

#[test]
fn create_new_on_existing_is_already_exists() {
    let name = util::posix_name("exists");
    let first = Semaphore::create_new(&name, 1).unwrap();
    assert!(first.is_owner());
    assert!(matches!(
        Semaphore::create_new(&name, 1),
        Err(NamedSemError::AlreadyExists { .. })
    ));
    // `create` opens it instead, without taking ownership.
    let second = Semaphore::create(&name, 5).unwrap();
    assert!(!second.is_owner());
    assert_eq!(second.value().unwrap(), 1);
    drop(second);
    assert!(Path::new(&sem_file(&name)).exists());
}

#[test]
fn mode_is_applied_and_other_users_are_denied() {
    let name = util::posix_name("perm");
    let _sem = Semaphore::options()
        .create_new(true)
        .mode(0o600)
        .open(&name)
        .unwrap();
    let meta = std::fs::metadata(sem_file(&name)).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    if !util::is_root() {
        eprintln!("skipping the denied side: needs root to run a child as nobody");
        return;
    }
    util::spawn_role_as_nobody("open_denied", &[&name]).expect_success();
}

#[test]
fn post_at_max_is_overflow() {
    let name = util::posix_name("overflow");
    let sem = Semaphore::create_new(&name, VALUE_MAX).unwrap();
    assert!(matches!(sem.post(), Err(NamedSemError::Overflow)));
    sem.try_wait().unwrap();
    sem.post().unwrap();
    assert!(matches!(
        Semaphore::create_new(&util::posix_name("toobig"), VALUE_MAX + 1),
        Err(NamedSemError::InvalidValue { .. })
    ));
}

#[test]
fn creator_unlinks_on_drop_unless_persisted() {
    let name = util::posix_name("drop");
    let sem = Semaphore::create_new(&name, 0).unwrap();
    let opened = Semaphore::open(&name).unwrap();
    drop(opened);
    assert!(
        Path::new(&sem_file(&name)).exists(),
        "an opener must not unlink"
    );
    drop(sem);
    assert!(!Path::new(&sem_file(&name)).exists());
    assert!(matches!(
        Semaphore::open(&name),
        Err(NamedSemError::NotFound { .. })
    ));

    let kept = util::posix_name("persist");
    let _guard = util::Cleanup(|| {
        let _ = Semaphore::remove(&kept);
    });
    drop(Semaphore::create_new(&kept, 3).unwrap().persist());
    let mut again = Semaphore::open(&kept).unwrap();
    assert_eq!(again.value().unwrap(), 3);
    again.unlink().unwrap();
    assert!(matches!(
        Semaphore::open(&kept),
        Err(NamedSemError::NotFound { .. })
    ));
    // The open handle keeps working after the name is gone.
    again.post().unwrap();
    assert_eq!(again.value().unwrap(), 4);
}

#[test]
fn one_handle_is_shared_between_threads() {
    let name = util::posix_name("threads");
    let sem = std::sync::Arc::new(Semaphore::create_new(&name, 0).unwrap());
    let s2 = sem.clone();
    let t = std::thread::spawn(move || s2.wait_timeout(SHORT));
    sem.post().unwrap();
    t.join().unwrap().unwrap();
}

#[test]
fn foreign_semaphore_is_refused_unless_its_owner_is_trusted() {
    if !util::is_root() {
        eprintln!("skipped: needs root to create the foreign semaphore as nobody");
        return;
    }
    let name = util::posix_name("foreign");
    let _guard = util::Cleanup(|| {
        let _ = Semaphore::remove(&name);
    });
    util::spawn_role_as_nobody("create_foreign", &[&name]).expect_success();
    for e in [
        Semaphore::open(&name).unwrap_err(),
        Semaphore::create(&name, 0).unwrap_err(),
    ] {
        assert!(matches!(e, NamedSemError::ForeignOwner(_)), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(&name), "{text}");
        assert!(text.contains(&format!("uid {}", util::NOBODY)), "{text}");
    }
    assert!(
        Path::new(&sem_file(&name)).exists(),
        "a refused semaphore is left"
    );
    let trusted = Semaphore::options()
        .create(true)
        .trust(ipcx::trust::Trust::own_user().allow_uid(util::NOBODY))
        .open(&name)
        .unwrap();
    assert!(!trusted.is_owner());
    trusted.try_wait().unwrap();
    drop(trusted);
    assert!(Path::new(&sem_file(&name)).exists(), "an opener removed it");
}

#[test]
fn drop_leaves_a_semaphore_that_took_the_name_since() {
    let name = util::posix_name("retaken");
    let _guard = util::Cleanup(|| {
        let _ = Semaphore::remove(&name);
    });
    let first = Semaphore::create_new(&name, 0).unwrap();
    Semaphore::remove(&name).unwrap();
    let second = Semaphore::create_new(&name, 5).unwrap().persist();
    drop(first);
    assert_eq!(
        Semaphore::open(&name).unwrap().value().unwrap(),
        5,
        "the first creator's drop removed the newer semaphore"
    );
    drop(second);
}
