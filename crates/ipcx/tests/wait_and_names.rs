//! Smoke test of the shared test helpers and the child-role mechanism.
mod util;

use std::time::Duration;

#[test]
fn child_role() {
    util::role_main(&[("exit_with", |args| {
        let code: i32 = args[0].parse().unwrap();
        std::process::exit(code);
    })]);
}

#[test]
fn roles_run_in_a_separate_process() {
    let mut ok = util::spawn_role("exit_with", &["0"]);
    assert!(ok.wait_timeout(Duration::from_secs(30)).success());
    let mut bad = util::spawn_role("exit_with", &["7"]);
    assert_eq!(bad.wait_timeout(Duration::from_secs(30)).code(), Some(7));
}

#[test]
fn names_are_unique() {
    assert_ne!(util::posix_name("a"), util::posix_name("a"));
    assert_ne!(util::sysv_key(), util::sysv_key());
}

/// A name of `len` bytes after the '/', unique to this call.
fn name_of_len(len: usize) -> String {
    let tag = util::unique("len");
    format!("/{tag}{}", "n".repeat(len - tag.len()))
}

#[test]
fn name_limits_match_what_the_system_takes() {
    // Shared memory: 254 bytes after the '/' work (and are recorded), 255 are refused before
    // any system call.
    for len in [253, 254] {
        let name = name_of_len(len);
        let shm = ipcx::shm::Shm::create_new(&name, 64).unwrap_or_else(|e| panic!("{len}: {e}"));
        let object = format!("posix-shm:{name}");
        let rec = ipcx::registry::records(false)
            .into_iter()
            .find(|r| r.object == object)
            .unwrap_or_else(|| panic!("{len}: no owner record"));
        assert_eq!(rec.pid, std::process::id() as i32);
        assert!(rec.identity.is_some(), "{len}: no identity recorded");
        drop(shm);
        assert!(
            !ipcx::registry::records(false)
                .iter()
                .any(|r| r.object == object)
        );
    }
    assert!(matches!(
        ipcx::shm::Shm::create_new(&name_of_len(255), 64),
        Err(ipcx::shm::ShmError::InvalidName(_))
    ));
    // Queues: 255.
    let q = ipcx::mq::MessageQueue::create_new(&name_of_len(255)).expect("255-byte queue name");
    q.remove().unwrap();
    assert!(ipcx::name::PosixName::queue(&name_of_len(256)).is_err());
    // Semaphores: 251.
    let s = name_of_len(251);
    drop(ipcx::sem::Semaphore::create_new(&s, 0).expect("251-byte semaphore name"));
    assert!(ipcx::sem::Semaphore::create_new(&name_of_len(252), 0).is_err());
}

#[test]
fn names_with_control_characters_are_refused_before_any_system_call() {
    for bad in ["\u{1b}[2J", "\n", "\r", "\u{7}", "\u{7f}", "\u{9b}"] {
        let name = format!("{}{bad}x", util::posix_name("ctl"));
        let e = ipcx::name::PosixName::new(&name).unwrap_err();
        assert!(e.reason.contains("control character"), "{e}");
        assert!(matches!(
            ipcx::shm::Shm::create_new(&name, 64),
            Err(ipcx::shm::ShmError::InvalidName(_))
        ));
        assert!(ipcx::mq::MessageQueue::create_new(&name).is_err());
        assert!(ipcx::sem::Semaphore::create_new(&name, 0).is_err());
        assert!(!std::path::Path::new("/dev/shm").join(&name[1..]).exists());
    }
}

#[test]
fn a_timeout_too_large_for_a_deadline_waits_forever() {
    use ipcx::wait::Wait;
    assert_eq!(Wait::timeout(Duration::MAX), Wait::Forever);
    assert_eq!(
        Wait::from_timeout(Some(Duration::from_secs(i64::MAX as u64))),
        Wait::Forever
    );
    assert_eq!(Wait::timeout(Duration::MAX).poll_timeout_ms(), -1);
}
