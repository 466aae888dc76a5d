//! Robust process-shared mutex and condition variable in a named segment, between processes.
mod util;

use std::time::{Duration, Instant};

use ipcx::sync::{Futex, LockError, Options, SegmentError, SharedMutex, SharedSemaphore};
use util::Cleanup;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct State {
    counter: u64,
    marker: u64,
    ready: u32,
    ack: u32,
}

const LONG: Duration = Duration::from_secs(20);

#[test]
fn child_role() {
    util::role_main(&[
        ("hold", role_hold),
        ("increment", role_increment),
        ("wait_ready", role_wait_ready),
        ("expect_clean", role_expect_clean),
        ("expect_not_recoverable", role_expect_not_recoverable),
        ("open_wrong_type", role_open_wrong_type),
        ("open_denied", role_open_denied),
    ]);
}

/// Takes the lock, leaves the state half-updated, tells the parent (futex), then hangs.
fn role_hold(args: &[String]) {
    let m = SharedMutex::<State>::open(&args[0]).unwrap();
    let f = Futex::open(&args[1]).unwrap();
    let mut g = m.lock_timeout(LONG).unwrap();
    g.marker = 0xdead;
    f.store(1);
    f.wake_all().unwrap();
    std::thread::sleep(Duration::from_secs(60));
    drop(g);
}

fn role_increment(args: &[String]) {
    let m = SharedMutex::<State>::open(&args[0]).unwrap();
    let n: u64 = args[1].parse().unwrap();
    for _ in 0..n {
        let mut g = m.lock_timeout(LONG).unwrap();
        // Non-atomic read-modify-write: only correct under the lock.
        let v = g.counter;
        std::hint::black_box(&mut *g);
        g.counter = v + 1;
    }
}

fn role_wait_ready(args: &[String]) {
    let m = SharedMutex::<State>::open(&args[0]).unwrap();
    let g = m.lock_timeout(LONG).unwrap();
    let (mut g, r) = g.wait_timeout_while(LONG, |s| s.ready == 0).unwrap();
    assert!(!r.timed_out());
    assert_eq!(g.ready, 42);
    g.ack = 1;
    drop(g);
    m.notify_all().unwrap();
}

fn role_expect_clean(args: &[String]) {
    let m = SharedMutex::<State>::open(&args[0]).unwrap();
    let mut g = m.lock_timeout(LONG).unwrap();
    assert_eq!(g.marker, 0, "state was repaired");
    g.counter += 1;
}

fn role_expect_not_recoverable(args: &[String]) {
    let m = SharedMutex::<State>::open(&args[0]).unwrap();
    let t = Instant::now();
    let r = m.lock_timeout(LONG);
    assert!(
        matches!(r, Err(LockError::NotRecoverable)),
        "{r:?} after {:?}",
        t.elapsed()
    );
}

fn role_open_wrong_type(args: &[String]) {
    match SharedMutex::<[u64; 4]>::open(&args[0]) {
        Err(SegmentError::IncompatibleLayout { field, .. }) => assert_eq!(field, "value size"),
        other => panic!("expected IncompatibleLayout, got {other:?}"),
    }
}

fn role_open_denied(args: &[String]) {
    match SharedMutex::<State>::open(&args[0]) {
        Err(SegmentError::PermissionDenied { .. }) => {}
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

/// Removes the named segments at the end of the test, even when it fails.
fn cleanup(names: Vec<String>) -> Cleanup<impl FnMut()> {
    Cleanup(move || {
        for n in &names {
            let _ = SharedMutex::<State>::remove(n);
        }
    })
}

/// Starts a child that holds the lock and waits until it does.
fn spawn_holder(name: &str, fname: &str, f: &Futex) -> util::ChildGuard {
    let child = util::spawn_role("hold", &[name, fname]);
    let deadline = Instant::now() + LONG;
    while f.load() == 0 {
        assert!(Instant::now() < deadline, "holder never took the lock");
        let _ = f.wait_timeout(0, Duration::from_millis(100));
    }
    child
}

#[test]
fn owner_death_is_reported_and_repairable() {
    let name = util::posix_name("rm");
    let fname = util::posix_name("rmf");
    let _c = cleanup(vec![name.clone(), fname.clone()]);
    let m = SharedMutex::<State>::create_new(&name).unwrap();
    let f = Futex::create_new(&fname).unwrap();

    let mut child = spawn_holder(&name, &fname, &f);
    child.kill(); // SIGKILL while holding the lock

    let g = match m.lock_timeout(LONG) {
        Err(LockError::OwnerDied(mut repair)) => {
            assert_eq!(
                repair.marker, 0xdead,
                "sees the dead owner's half-done update"
            );
            repair.marker = 0;
            repair.mark_consistent().unwrap()
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    };
    drop(g);
    // Later locks are clean, here and in another process.
    drop(m.lock_timeout(LONG).unwrap());
    util::spawn_role("expect_clean", &[&name]).expect_success();
    assert_eq!(m.lock_timeout(LONG).unwrap().counter, 1);
}

#[test]
fn unrepaired_owner_death_makes_the_mutex_not_recoverable() {
    let name = util::posix_name("nr");
    let fname = util::posix_name("nrf");
    let _c = cleanup(vec![name.clone(), fname.clone()]);
    let m = SharedMutex::<State>::create_new(&name).unwrap();
    let f = Futex::create_new(&fname).unwrap();

    let mut child = spawn_holder(&name, &fname, &f);
    child.kill();
    match m.lock_timeout(LONG) {
        Err(LockError::OwnerDied(repair)) => drop(repair), // not marked consistent
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert!(matches!(m.try_lock(), Err(LockError::NotRecoverable)));
    assert!(matches!(
        m.lock_timeout(LONG),
        Err(LockError::NotRecoverable)
    ));
    assert!(matches!(m.lock(), Err(LockError::NotRecoverable)));
    util::spawn_role("expect_not_recoverable", &[&name]).expect_success();
    assert!(matches!(m.try_lock(), Err(LockError::NotRecoverable)));
}

#[test]
fn counter_incremented_by_two_processes() {
    const N: u64 = 2000;
    let name = util::posix_name("cnt");
    let _c = cleanup(vec![name.clone()]);
    let m = SharedMutex::<State>::create_new(&name).unwrap();
    let n = N.to_string();
    let mut a = util::spawn_role("increment", &[&name, &n]);
    let mut b = util::spawn_role("increment", &[&name, &n]);
    a.expect_success();
    b.expect_success();
    assert_eq!(m.lock_timeout(LONG).unwrap().counter, 2 * N);
}

#[test]
fn condvar_wakes_a_waiter_in_another_process() {
    let name = util::posix_name("cv");
    let _c = cleanup(vec![name.clone()]);
    let m = SharedMutex::<State>::create_new(&name).unwrap();
    let mut child = util::spawn_role("wait_ready", &[&name]);
    {
        let mut g = m.lock_timeout(LONG).unwrap();
        g.ready = 42;
    }
    m.notify_all().unwrap();
    let g = m.lock_timeout(LONG).unwrap();
    let (g, r) = g.wait_timeout_while(LONG, |s| s.ack == 0).unwrap();
    assert!(!r.timed_out());
    assert_eq!(g.ack, 1);
    drop(g);
    child.expect_success();
}

#[test]
fn condvar_wait_timeout_times_out_within_bounds() {
    let name = util::posix_name("cvt");
    let _c = cleanup(vec![name.clone()]);
    let m = SharedMutex::<State>::create_new(&name).unwrap();
    let g = m.lock().unwrap();
    let t = Instant::now();
    let (g, r) = g.wait_timeout(Duration::from_millis(100)).unwrap();
    let el = t.elapsed();
    assert!(r.timed_out());
    assert!(
        el >= Duration::from_millis(100) && el < Duration::from_secs(5),
        "{el:?}"
    );
    // The lock is held again after the timeout.
    assert!(matches!(m.try_lock(), Err(LockError::Deadlock)));
    drop(g);
    let t = Instant::now();
    let (_g, r) = m
        .lock()
        .unwrap()
        .wait_timeout_while(Duration::from_millis(100), |s| s.ready == 0)
        .unwrap();
    assert!(r.timed_out());
    assert!(t.elapsed() >= Duration::from_millis(100));
}

#[test]
fn try_lock_and_lock_timeout_on_a_held_lock() {
    let name = util::posix_name("held");
    let fname = util::posix_name("heldf");
    let _c = cleanup(vec![name.clone(), fname.clone()]);
    let m = SharedMutex::<State>::create_new(&name).unwrap();
    let f = Futex::create_new(&fname).unwrap();
    let mut child = spawn_holder(&name, &fname, &f);

    assert!(matches!(m.try_lock(), Err(LockError::WouldBlock)));
    assert!(matches!(
        util::waits_for(util::SHORT, || m.lock_timeout(util::SHORT)),
        Err(LockError::Timeout)
    ));

    child.kill();
    match m.lock_timeout(LONG) {
        Err(LockError::OwnerDied(r)) => drop(r.mark_consistent().unwrap()),
        other => panic!("expected OwnerDied, got {other:?}"),
    }
}

#[test]
fn relocking_in_the_same_thread_is_a_deadlock_error() {
    let name = util::posix_name("dl");
    let _c = cleanup(vec![name.clone()]);
    let m = SharedMutex::<State>::create_new(&name).unwrap();
    let _g = m.lock().unwrap();
    assert!(matches!(m.lock(), Err(LockError::Deadlock)));
    // A second handle to the same segment in this process is the same lock.
    let m2 = SharedMutex::<State>::open(&name).unwrap();
    assert!(matches!(m2.lock(), Err(LockError::Deadlock)));
}

#[test]
fn header_mismatch_is_a_named_error() {
    let name = util::posix_name("hdr");
    let _c = cleanup(vec![name.clone()]);
    let _m = SharedMutex::<State>::create_new(&name).unwrap();
    util::spawn_role("open_wrong_type", &[&name]).expect_success();
    // Another kind of object, another tag.
    assert!(matches!(
        SharedSemaphore::open(&name),
        Err(SegmentError::IncompatibleLayout { field: "kind", .. })
    ));
    assert!(matches!(
        SharedMutex::<State>::open_with(&name, &Options::new().tag(99)),
        Err(SegmentError::IncompatibleLayout {
            field: "type tag",
            ..
        })
    ));
}

/// Creates a raw POSIX shm object holding `bytes`.
fn raw_segment(name: &str, bytes: &[u8]) {
    use rustix::fs::Mode;
    use rustix::shm::OFlags;
    let fd = rustix::shm::open(
        name,
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL,
        Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let mut off = 0;
    while off < bytes.len() {
        off += rustix::io::write(&fd, &bytes[off..]).unwrap();
    }
}

#[test]
fn garbage_segments_are_named_errors() {
    let (big, small, empty) = (
        util::posix_name("gbig"),
        util::posix_name("gsmall"),
        util::posix_name("gempty"),
    );
    let _c = cleanup(vec![big.clone(), small.clone(), empty.clone()]);
    raw_segment(&big, &[0xA5; 8192]);
    raw_segment(&small, &[0x11; 10]);
    raw_segment(&empty, &[]);
    assert!(matches!(
        SharedMutex::<State>::open(&big),
        Err(SegmentError::BadMagic { .. })
    ));
    assert!(matches!(
        SharedMutex::<State>::open(&small),
        Err(SegmentError::TooSmall { .. })
    ));
    let t = Instant::now();
    let opts = Options::new().open_timeout(Duration::from_millis(100));
    assert!(matches!(
        SharedMutex::<State>::open_with(&empty, &opts),
        Err(SegmentError::NotInitialised { .. })
    ));
    assert!(t.elapsed() >= Duration::from_millis(100));
    // create() does not trust an existing garbage object either.
    assert!(matches!(
        SharedMutex::<State>::create(&big),
        Err(SegmentError::BadMagic { .. })
    ));
}

#[test]
fn names_existence_and_ownership() {
    assert!(matches!(
        SharedMutex::<State>::create("no-slash"),
        Err(SegmentError::InvalidName(_))
    ));
    let name = util::posix_name("own");
    let _c = cleanup(vec![name.clone()]);
    assert!(matches!(
        SharedMutex::<State>::open(&name),
        Err(SegmentError::NotFound { .. })
    ));
    let m = SharedMutex::<State>::create(&name).unwrap();
    assert!(m.is_owner());
    assert!(matches!(
        SharedMutex::<State>::create_new(&name),
        Err(SegmentError::AlreadyExists { .. })
    ));
    let opened = SharedMutex::<State>::create(&name).unwrap();
    assert!(!opened.is_owner());
    opened.lock().unwrap().counter = 5;
    drop(opened); // an opener never removes
    assert_eq!(
        SharedMutex::<State>::open(&name)
            .unwrap()
            .lock()
            .unwrap()
            .counter,
        5
    );
    drop(m); // the creator removes
    assert!(matches!(
        SharedMutex::<State>::open(&name),
        Err(SegmentError::NotFound { .. })
    ));
    // persist keeps it; remove deletes it.
    let p = SharedMutex::<State>::create_new(&name).unwrap().persist();
    drop(p);
    assert!(SharedMutex::<State>::open(&name).is_ok());
    SharedMutex::<State>::remove(&name).unwrap();
    assert!(matches!(
        SharedMutex::<State>::remove(&name),
        Err(SegmentError::NotFound { .. })
    ));
}

#[test]
fn permission_denied_for_another_user() {
    if !util::is_root() {
        eprintln!("skipped: needs root to run a child as nobody");
        return;
    }
    let name = util::posix_name("perm");
    let _c = cleanup(vec![name.clone()]);
    let _m = SharedMutex::<State>::create_new(&name).unwrap();
    util::spawn_role_as_nobody("open_denied", &[&name]).expect_success();
}
