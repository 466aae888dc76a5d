//! `ipcx sem` and `ipcx shm` refuse semaphores and shared memory another user created, and
//! `--allow-uid` / `--allow-any-uid` widen that, as on send and recv.
mod util;

use util::{NOBODY, Remove, is_root, run, run_as_nobody, stderr, stdout};

/// Asserts that `args` (run as us) is refused because of `nobody`'s ownership, and that the
/// same command with `--allow-uid` (and then `--allow-any-uid`) prints `expected`.
fn refused_then_allowed(args: &[&str], expected: &str) {
    let out = run(args);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("uid {NOBODY}")), "{args:?}: {err}");
    assert!(err.contains("--allow-uid"), "{args:?}: {err}");

    let uid = NOBODY.to_string();
    for extra in [&["--allow-uid", uid.as_str()][..], &["--allow-any-uid"][..]] {
        let all: Vec<&str> = args.iter().copied().chain(extra.iter().copied()).collect();
        let out = run(&all);
        assert!(out.status.success(), "{all:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), expected, "{all:?}");
    }
}

#[test]
fn sem_get_takes_the_trust_flags() {
    if !is_root() {
        eprintln!("skipped: needs root to create the hostile semaphores as nobody");
        return;
    }
    let posix = format!("/{}", util::unique("tfsem"));
    let sysv = format!("sysv-sem:{}", util::sysv_key());
    let _rm = Remove(vec![format!("posix-sem:{posix}"), sysv.clone()]);
    for obj in [&posix, &sysv] {
        let Some(out) = run_as_nobody(&["sem", "create", obj, "--mode", "666", "--value", "2"])
        else {
            return;
        };
        assert!(out.status.success(), "nobody's create: {}", stderr(&out));
        refused_then_allowed(&["sem", "get", obj], "2\n");
    }
}

#[test]
fn sem_post_and_wait_take_the_trust_flags() {
    if !is_root() {
        eprintln!("skipped: needs root to create the hostile semaphore as nobody");
        return;
    }
    let posix = format!("/{}", util::unique("tfsemw"));
    let _rm = Remove(vec![format!("posix-sem:{posix}")]);
    let Some(out) = run_as_nobody(&["sem", "create", &posix, "--mode", "666"]) else {
        return;
    };
    assert!(out.status.success(), "nobody's create: {}", stderr(&out));
    let uid = NOBODY.to_string();
    let out = run(&["sem", "post", &posix]);
    assert_eq!(out.status.code(), Some(1), "post: {}", stderr(&out));
    let out = run(&["sem", "post", &posix, "--allow-uid", &uid]);
    assert!(out.status.success(), "post: {}", stderr(&out));
    let out = run(&["sem", "wait", &posix, "--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(1), "wait: {}", stderr(&out));
    let out = run(&[
        "sem",
        "wait",
        &posix,
        "--timeout",
        "5s",
        "--allow-uid",
        &uid,
    ]);
    assert!(out.status.success(), "wait: {}", stderr(&out));
}

#[test]
fn shm_read_and_write_take_the_trust_flags() {
    if !is_root() {
        eprintln!("skipped: needs root to create the hostile segments as nobody");
        return;
    }
    let posix = format!("/{}", util::unique("tfshm"));
    let sysv = format!("sysv-shm:{}", util::sysv_key());
    let _rm = Remove(vec![format!("posix-shm:{posix}"), sysv.clone()]);
    let uid = NOBODY.to_string();
    for obj in [&posix, &sysv] {
        let Some(out) = run_as_nobody(&["shm", "create", obj, "--size", "5", "--mode", "666"])
        else {
            return;
        };
        assert!(out.status.success(), "nobody's create: {}", stderr(&out));
        let out = run(&["shm", "write", obj, "hello"]);
        assert_eq!(out.status.code(), Some(1), "write: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("uid {NOBODY}")),
            "{}",
            stderr(&out)
        );
        let out = run(&["shm", "write", obj, "hello", "--allow-uid", &uid]);
        assert!(out.status.success(), "write: {}", stderr(&out));
        refused_then_allowed(&["shm", "read", obj], "hello");
    }
}
