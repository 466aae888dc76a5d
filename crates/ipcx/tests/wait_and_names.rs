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
