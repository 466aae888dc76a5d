//! System V semaphore sets between real processes.
mod util;

use std::time::{Duration, Instant};

use ipcx::sysv::Key;
use ipcx::sysv::sem::{SemOp, SemSetError, SemaphoreSet, VALUE_MAX};

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_secs(10);

#[test]
fn child_role() {
    util::role_main(&[
        ("wait_then_ack", wait_then_ack),
        ("take_both", take_both),
        ("hold_with_undo", hold_with_undo),
        ("expect_removed", expect_removed),
        ("open_denied", open_denied),
        ("create_foreign", |args| {
            let key = Key::new(args[0].parse().unwrap());
            drop(
                SemaphoreSet::options()
                    .create_new(true)
                    .mode(0o666)
                    .values(&[1])
                    .open(key, 1)
                    .unwrap()
                    .persist(),
            );
        }),
    ]);
}

fn open(args: &[String]) -> SemaphoreSet {
    SemaphoreSet::open(Key::new(args[0].parse().unwrap())).unwrap()
}

/// Waits on semaphore 0, then posts semaphore 1.
fn wait_then_ack(args: &[String]) {
    let set = open(args);
    set.wait_timeout(0, LONG).unwrap();
    set.post(1).unwrap();
}

/// Posts 2 (ready), takes 0 and 1 in one atomic operation, posts 2 (done).
fn take_both(args: &[String]) {
    let set = open(args);
    set.post(2).unwrap();
    set.op_timeout(&[SemOp::wait(0), SemOp::wait(1)], LONG)
        .unwrap();
    set.post(2).unwrap();
}

/// Takes semaphore 0 with SEM_UNDO, posts 1, then waits to be killed.
/// With `args[1] == "default"`, through the set-wide undo default instead of the op flag.
fn hold_with_undo(args: &[String]) {
    let mut set = open(args);
    if args[1] == "default" {
        set.set_undo(true);
        set.wait(0).unwrap();
    } else {
        set.op(&[SemOp::wait(0).undo()]).unwrap();
    }
    set.post(1).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    panic!("was not killed");
}

/// Posts 1, then waits on 0 until the set is removed.
fn expect_removed(args: &[String]) {
    let set = open(args);
    set.post(1).unwrap();
    match set.wait_timeout(0, LONG) {
        Err(SemSetError::Removed) => {}
        other => panic!("expected Removed, got {other:?}"),
    }
}

fn open_denied(args: &[String]) {
    match SemaphoreSet::open(Key::new(args[0].parse().unwrap())) {
        Err(SemSetError::PermissionDenied { .. }) => {}
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

/// A new set of `n` semaphores under a unique key, and that key as a child argument.
fn new_set(n: usize) -> (SemaphoreSet, String) {
    let key = util::sysv_key();
    let set = SemaphoreSet::create_new(Key::new(key), n).unwrap();
    (set, key.to_string())
}

#[test]
fn wait_blocks_until_another_process_posts() {
    let (set, key) = new_set(2);
    let mut child = util::spawn_role("wait_then_ack", &[&key]);
    let child_pid = child.pid();
    // The child is blocked on semaphore 0: the kernel counts it as a waiter.
    assert!(util::wait_until(SHORT, || set.waiting_count(0).unwrap() == 1));
    set.post(0).unwrap();
    set.wait_timeout(1, SHORT).unwrap();
    child.expect_success();
    assert_eq!(set.get_all().unwrap(), vec![0, 0]);
    // The last operation on 0 was the child's wait; on 1, our wait.
    assert_eq!(set.last_pid(0).unwrap(), child_pid);
    assert_eq!(set.last_pid(1).unwrap(), std::process::id() as i32);
}

#[test]
fn several_operations_apply_atomically() {
    let (set, key) = new_set(3);
    let mut child = util::spawn_role("take_both", &[&key]);
    set.wait_timeout(2, SHORT).unwrap();
    // Make only semaphore 0 available: the child must not take it alone.
    set.post(0).unwrap();
    // The kernel re-examines the waiter and finds it blocked on semaphore 1.
    assert!(util::wait_until(SHORT, || set.waiting_count(1).unwrap() == 1));
    assert_eq!(
        set.get(0).unwrap(),
        1,
        "semaphore 0 must not be taken alone"
    );
    assert!(matches!(set.try_wait(2), Err(SemSetError::WouldBlock)));
    set.post(1).unwrap();
    set.wait_timeout(2, SHORT).unwrap();
    child.expect_success();
    assert_eq!(set.get_all().unwrap(), vec![0, 0, 0]);
}

#[test]
fn sem_undo_gives_back_what_a_killed_process_held() {
    killed_holder_gives_back("op");
}

#[test]
fn set_wide_undo_default_gives_back_too() {
    killed_holder_gives_back("default");
}

fn killed_holder_gives_back(how: &str) {
    let (set, key) = new_set(2);
    set.set(0, 1).unwrap();
    let mut child = util::spawn_role("hold_with_undo", &[&key, how]);
    set.wait_timeout(1, SHORT).unwrap();
    assert_eq!(set.get(0).unwrap(), 0);
    child.kill(); // SIGKILL, then reaped
    assert!(util::wait_until(SHORT, || set.get(0).unwrap() == 1));
    // Without undo nothing is given back.
    set.op(&[SemOp::wait(0)]).unwrap();
    assert_eq!(set.get(0).unwrap(), 0);
}

#[test]
fn timed_operation_times_out_within_bounds() {
    let (set, _key) = new_set(1);
    let start = Instant::now();
    let r = set.wait_timeout(0, Duration::from_millis(100));
    let elapsed = start.elapsed();
    assert!(matches!(r, Err(SemSetError::Timeout)), "{r:?}");
    assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(matches!(set.try_wait(0), Err(SemSetError::WouldBlock)));
    // An op flagged nowait inside a timed call fails at once with WouldBlock.
    let start = Instant::now();
    let r = set.op_timeout(&[SemOp::wait(0).nowait()], Duration::from_secs(5));
    assert!(matches!(r, Err(SemSetError::WouldBlock)), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn waiting_counts_show_waiters() {
    let (set, key) = new_set(2);
    assert_eq!(set.waiting_count(0).unwrap(), 0);
    assert_eq!(set.zero_waiting_count(0).unwrap(), 0);
    let mut child = util::spawn_role("wait_then_ack", &[&key]);
    assert!(util::wait_until(SHORT, || set.waiting_count(0).unwrap() == 1));
    set.post(0).unwrap();
    set.wait_timeout(1, SHORT).unwrap();
    child.expect_success();
    assert_eq!(set.waiting_count(0).unwrap(), 0);
}

#[test]
fn removal_wakes_a_waiter_with_removed() {
    let (mut set, key) = new_set(2);
    let mut child = util::spawn_role("expect_removed", &[&key]);
    set.wait_timeout(1, SHORT).unwrap();
    assert!(util::wait_until(SHORT, || set.waiting_count(0).unwrap() == 1));
    set.remove().unwrap();
    child.expect_success();
    assert!(matches!(set.get(0), Err(SemSetError::Removed)));
    assert!(matches!(
        SemaphoreSet::open(set.key()),
        Err(SemSetError::NotFound { .. })
    ));
}

#[test]
fn values_stat_and_errors() {
    let key = Key::new(util::sysv_key());
    let set = SemaphoreSet::options()
        .create_new(true)
        .mode(0o640)
        .values(&[1, 2, 3])
        .open(key, 3)
        .unwrap();
    assert_eq!(set.len(), 3);
    assert_eq!(set.get_all().unwrap(), vec![1, 2, 3]);
    set.set(1, 7).unwrap();
    assert_eq!(set.get(1).unwrap(), 7);
    set.set_all(&[4, 5, 6]).unwrap();
    assert_eq!(set.get_all().unwrap(), vec![4, 5, 6]);
    assert!(matches!(
        set.set_all(&[1]),
        Err(SemSetError::InvalidSize { .. })
    ));
    assert!(matches!(
        set.get(3),
        Err(SemSetError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        set.op(&[SemOp::post(0), SemOp::post(9)]),
        Err(SemSetError::IndexOutOfRange { .. })
    ));
    set.set(0, VALUE_MAX).unwrap();
    assert!(matches!(set.post(0), Err(SemSetError::Overflow)));

    let st = set.stat().unwrap();
    assert_eq!(st.key, key);
    assert_eq!(st.nsems, 3);
    assert_eq!(st.mode, 0o640);
    assert_eq!(st.uid, rustix_uid());
    assert!(st.otime.is_none(), "no semop has succeeded yet");
    set.op(&[SemOp::wait(2)]).unwrap();
    assert!(set.stat().unwrap().otime.is_some());

    // An opener asking for more semaphores than the set holds.
    assert!(matches!(
        SemaphoreSet::options().open(key, 4),
        Err(SemSetError::InvalidSize { .. })
    ));
    assert!(matches!(
        SemaphoreSet::create_new(key, 3),
        Err(SemSetError::AlreadyExists { .. })
    ));
    let opened = SemaphoreSet::create(key, 3).unwrap();
    assert!(!opened.is_owner());
    assert!(matches!(
        SemaphoreSet::create_new(Key::new(util::sysv_key()), 0),
        Err(SemSetError::InvalidSize { .. })
    ));
}

fn rustix_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap()
}

#[test]
fn missing_set_is_not_found() {
    let key = Key::new(util::sysv_key());
    assert!(matches!(
        SemaphoreSet::open(key),
        Err(SemSetError::NotFound { .. })
    ));
    assert!(matches!(
        SemaphoreSet::remove_key(key),
        Err(SemSetError::NotFound { .. })
    ));
}

#[test]
fn other_users_are_denied() {
    let (_set, key) = new_set(1);
    if !util::is_root() {
        eprintln!("skipping: needs root to run a child as nobody");
        return;
    }
    util::spawn_role_as_nobody("open_denied", &[&key]).expect_success();
}

#[test]
fn creator_removes_on_drop_unless_persisted() {
    let (set, key) = new_set(1);
    let k = set.key();
    let opened = SemaphoreSet::open(k).unwrap();
    drop(opened);
    assert!(SemaphoreSet::open(k).is_ok(), "an opener must not remove");
    drop(set);
    assert!(matches!(
        SemaphoreSet::open(k),
        Err(SemSetError::NotFound { .. })
    ));
    let _ = key;

    let k2 = Key::new(util::sysv_key());
    let _guard = util::Cleanup(|| {
        let _ = SemaphoreSet::remove_key(k2);
    });
    drop(SemaphoreSet::create_new(k2, 1).unwrap().persist());
    let mut again = SemaphoreSet::open(k2).unwrap();
    again.remove().unwrap();
    assert!(matches!(
        SemaphoreSet::open(k2),
        Err(SemSetError::NotFound { .. })
    ));
}

#[test]
fn private_set_is_reached_by_id() {
    let set = SemaphoreSet::create_new(Key::PRIVATE, 1).unwrap();
    let other = SemaphoreSet::from_id(set.id()).unwrap();
    other.post(0).unwrap();
    assert_eq!(set.get(0).unwrap(), 1);
    assert!(!other.is_owner());
}

#[test]
fn foreign_set_is_refused_unless_its_owner_is_trusted() {
    if !util::is_root() {
        eprintln!("skipped: needs root to create the foreign set as nobody");
        return;
    }
    let key = Key::new(util::sysv_key());
    let _guard = util::Cleanup(|| {
        let _ = SemaphoreSet::remove_key(key);
    });
    util::spawn_role_as_nobody("create_foreign", &[&key.0.to_string()]).expect_success();
    for e in [
        SemaphoreSet::open(key).unwrap_err(),
        SemaphoreSet::create(key, 1).unwrap_err(),
    ] {
        assert!(matches!(e, SemSetError::ForeignOwner(_)), "{e:?}");
        assert!(
            e.to_string().contains(&format!("uid {}", util::NOBODY)),
            "{e}"
        );
    }
    let trusted = SemaphoreSet::options()
        .create(true)
        .trust(ipcx::trust::Trust::own_user().allow_uid(util::NOBODY))
        .open(key, 1)
        .unwrap();
    assert!(!trusted.is_owner());
    assert_eq!(trusted.get(0).unwrap(), 1);
    drop(trusted);
    assert!(
        SemaphoreSet::from_id(
            SemaphoreSet::options()
                .trust(ipcx::trust::Trust::any_user())
                .open(key, 0)
                .unwrap()
                .id()
        )
        .is_ok(),
        "an opener removed the set"
    );
}
