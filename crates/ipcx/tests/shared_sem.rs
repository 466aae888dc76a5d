//! Unnamed process-shared POSIX semaphore in a named segment, between processes.
mod util;

use std::time::Duration;

use ipcx::sync::{SegmentError, SemError, SharedMutex, SharedSemaphore};
use util::Cleanup;

const LONG: Duration = Duration::from_secs(20);

#[test]
fn child_role() {
    util::role_main(&[
        ("consume", role_consume),
        ("take_and_hang", role_take_and_hang),
        ("open_denied", role_open_denied),
        ("create_foreign", |args| {
            let opts = ipcx::sync::Options::new().mode(0o666);
            drop(
                SharedSemaphore::create_new_with(&args[0], 1, &opts)
                    .unwrap()
                    .persist(),
            );
        }),
    ]);
}

/// Takes `args[2]` units from `args[0]`, then posts once on `args[1]`.
fn role_consume(args: &[String]) {
    let s = SharedSemaphore::open(&args[0]).unwrap();
    let ack = SharedSemaphore::open(&args[1]).unwrap();
    let n: u32 = args[2].parse().unwrap();
    for _ in 0..n {
        s.wait_timeout(LONG).unwrap();
    }
    ack.post().unwrap();
}

fn role_take_and_hang(args: &[String]) {
    let s = SharedSemaphore::open(&args[0]).unwrap();
    let ack = SharedSemaphore::open(&args[1]).unwrap();
    s.wait_timeout(LONG).unwrap();
    ack.post().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

fn role_open_denied(args: &[String]) {
    match SharedSemaphore::open(&args[0]) {
        Err(SegmentError::PermissionDenied { .. }) => {}
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

fn cleanup(names: Vec<String>) -> Cleanup<impl FnMut()> {
    Cleanup(move || {
        for n in &names {
            let _ = SharedSemaphore::remove(n);
        }
    })
}

#[test]
fn p_and_v_across_processes() {
    let (name, ackn) = (util::posix_name("sem"), util::posix_name("ack"));
    let _c = cleanup(vec![name.clone(), ackn.clone()]);
    let s = SharedSemaphore::create_new(&name, 0).unwrap();
    let ack = SharedSemaphore::create_new(&ackn, 0).unwrap();
    let mut child = util::spawn_role("consume", &[&name, &ackn, "3"]);
    for _ in 0..3 {
        s.post().unwrap();
    }
    ack.wait_timeout(LONG).unwrap();
    assert_eq!(s.value().unwrap(), 0);
    child.expect_success();
}

#[test]
fn try_wait_wait_timeout_and_value() {
    let name = util::posix_name("semt");
    let _c = cleanup(vec![name.clone()]);
    let s = SharedSemaphore::create_new(&name, 2).unwrap();
    assert_eq!(s.value().unwrap(), 2);
    s.try_wait().unwrap();
    s.wait().unwrap();
    assert!(matches!(s.try_wait(), Err(SemError::WouldBlock)));
    assert!(matches!(
        util::waits_for(util::SHORT, || s.wait_timeout(util::SHORT)),
        Err(SemError::Timeout)
    ));
    let opened = SharedSemaphore::open(&name).unwrap();
    opened.post().unwrap();
    assert_eq!(s.value().unwrap(), 1);
}

#[test]
fn a_dead_holder_does_not_give_back_its_unit() {
    let (name, ackn) = (util::posix_name("semd"), util::posix_name("semda"));
    let _c = cleanup(vec![name.clone(), ackn.clone()]);
    let s = SharedSemaphore::create_new(&name, 1).unwrap();
    let ack = SharedSemaphore::create_new(&ackn, 0).unwrap();
    let mut child = util::spawn_role("take_and_hang", &[&name, &ackn]);
    ack.wait_timeout(LONG).unwrap();
    child.kill();
    // Semaphores are not robust: the survivor times out instead of hanging.
    assert!(matches!(
        s.wait_timeout(Duration::from_millis(100)),
        Err(SemError::Timeout)
    ));
}

#[test]
fn named_errors() {
    let name = util::posix_name("seme");
    let _c = cleanup(vec![name.clone()]);
    assert!(matches!(
        SharedSemaphore::create("x", 0),
        Err(SegmentError::InvalidName(_))
    ));
    assert!(matches!(
        SharedSemaphore::open(&name),
        Err(SegmentError::NotFound { .. })
    ));
    let _s = SharedSemaphore::create_new(&name, 0).unwrap();
    assert!(matches!(
        SharedSemaphore::create_new(&name, 0),
        Err(SegmentError::AlreadyExists { .. })
    ));
    assert!(matches!(
        SharedMutex::<u64>::open(&name),
        Err(SegmentError::IncompatibleLayout { .. })
    ));
    if util::is_root() {
        util::spawn_role_as_nobody("open_denied", &[&name]).expect_success();
    }
}

#[test]
fn foreign_segment_is_refused_unless_its_owner_is_trusted() {
    if !util::is_root() {
        eprintln!("skipped: needs root to create the foreign segment as nobody");
        return;
    }
    let name = util::posix_name("foreign");
    let _c = Cleanup(|| {
        let _ = SharedSemaphore::remove(&name);
    });
    util::spawn_role_as_nobody("create_foreign", &[&name]).expect_success();
    for e in [
        SharedSemaphore::open(&name).unwrap_err(),
        SharedSemaphore::create(&name, 0).unwrap_err(),
    ] {
        match &e {
            SegmentError::NotOwner { uid, .. } => assert_eq!(*uid, util::NOBODY),
            other => panic!("expected NotOwner, got {other:?}"),
        }
        assert!(e.to_string().contains("trust"), "{e}");
    }
    let opts =
        ipcx::sync::Options::new().trust(ipcx::trust::Trust::own_user().allow_uid(util::NOBODY));
    let s = SharedSemaphore::open_with(&name, &opts).unwrap();
    assert!(!s.is_owner());
    s.try_wait().unwrap();
    drop(s);
    assert!(
        SharedSemaphore::open_with(&name, &opts).is_ok(),
        "an opener removed the segment"
    );
}
