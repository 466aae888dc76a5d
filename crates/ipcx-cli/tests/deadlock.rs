//! `ipcx deadlock` and `ipcx ls --waiters` on processes really blocked on each other's
//! robust mutexes and System V semaphores.
//!
//! The tests of this file run one at a time: `ipcx deadlock` reports every deadlock on the
//! machine, and the one a test makes must not be seen by another that expects none.
mod util;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipcx::sync::{LockError, SharedMutex};
use ipcx::sysv::Key;
use ipcx::sysv::sem::SemaphoreSet;
use serde_json::Value;
use util::{Role, run, spawn_role};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn child_role() {
    util::role_main(&[
        ("hold", role_hold),
        ("lock", role_lock),
        ("lock_then_lock", role_lock_then_lock),
        ("lock_then_sem", role_lock_then_sem),
        ("sem_then_lock", role_sem_then_lock),
    ]);
}

fn pause() {
    std::thread::sleep(Duration::from_secs(120));
}

/// Locks the mutex ARG0 and keeps it.
fn role_hold(args: &[String]) {
    let m = SharedMutex::<u64>::open(&args[0]).unwrap();
    let _g = m.lock().unwrap();
    pause();
}

/// Locks the mutex ARG0, blocking without limit.
fn role_lock(args: &[String]) {
    let m = SharedMutex::<u64>::open(&args[0]).unwrap();
    let _g = m.lock();
    pause();
}

/// Blocks until someone else holds the mutex `m`.
fn until_held(m: &SharedMutex<u64>) {
    loop {
        match m.try_lock() {
            Ok(g) => drop(g),
            Err(LockError::WouldBlock) => return,
            Err(e) => panic!("{e}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Locks the mutex ARG0, then, once someone else holds ARG1, locks ARG1 too.
fn role_lock_then_lock(args: &[String]) {
    let first = SharedMutex::<u64>::open(&args[0]).unwrap();
    let second = SharedMutex::<u64>::open(&args[1]).unwrap();
    let _g = first.lock().unwrap();
    until_held(&second);
    let _h = second.lock();
    pause();
}

/// Locks the mutex ARG0, then, once semaphore 1 of the set with key ARG1 is taken, takes it
/// too.
fn role_lock_then_sem(args: &[String]) {
    let m = SharedMutex::<u64>::open(&args[0]).unwrap();
    let set = SemaphoreSet::open(Key(args[1].parse().unwrap())).unwrap();
    let _g = m.lock().unwrap();
    while set.get(1).unwrap() != 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = set.wait(1);
    pause();
}

/// Takes semaphore 1 of the set with key ARG1, then, once someone else holds the mutex ARG0,
/// locks it.
fn role_sem_then_lock(args: &[String]) {
    let m = SharedMutex::<u64>::open(&args[0]).unwrap();
    let set = SemaphoreSet::open(Key(args[1].parse().unwrap())).unwrap();
    set.wait(1).unwrap();
    until_held(&m);
    let _g = m.lock();
    pause();
}

/// Runs `ipcx ARGS` until `done` accepts its output (at most 20 s); returns that output.
fn run_until(
    args: &[&str],
    mut done: impl FnMut(&std::process::Output) -> bool,
) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run(args);
        if done(&out) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "ipcx {args:?} never gave the expected output; last: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The cycle of `ipcx deadlock --json` output that mentions `object`.
fn cycle_with(doc: &Value, object: &str) -> Option<Value> {
    doc["cycles"].as_array()?.iter().find_map(|c| {
        c["steps"]
            .as_array()?
            .iter()
            .any(|s| s["holds"] == object || s["waits_for"] == object)
            .then(|| c.clone())
    })
}

fn pids(cycle: &Value) -> BTreeSet<i64> {
    cycle["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_i64().unwrap())
        .collect()
}

fn mutex(tag: &str) -> (String, SharedMutex<u64>) {
    let name = format!("/{}", util::unique(tag));
    let m = SharedMutex::<u64>::create_new(&name).unwrap();
    (name, m)
}

#[test]
fn two_processes_deadlocked_on_a_mutex_and_a_sysv_semaphore() {
    let _s = serial();
    let (name, _m) = mutex("dl-pair");
    let key = util::sysv_key();
    let set = SemaphoreSet::options()
        .values(&[1, 1])
        .create_new(true)
        .open(Key(key), 2)
        .unwrap();
    let a = spawn_role("lock_then_sem", &[&name, &key.to_string()]);
    let b = spawn_role("sem_then_lock", &[&name, &key.to_string()]);
    let obj_m = format!("mutex:{name}");
    let obj_s = format!("{}[1]", ipcx::sysv::name("sysv-sem", key, set.id()));

    let out = run_until(&["deadlock", "--json"], |o| {
        o.status.code() == Some(1) && cycle_with(&json(o), &obj_m).is_some()
    });
    let c = cycle_with(&json(&out), &obj_m).unwrap();
    assert_eq!(pids(&c), BTreeSet::from([a.pid().into(), b.pid().into()]));
    let steps = c["steps"].as_array().unwrap();
    let step = |pid: i32| steps.iter().find(|s| s["pid"] == pid).unwrap();
    assert_eq!(step(a.pid())["holds"], obj_m);
    assert_eq!(step(a.pid())["waits_for"], obj_s);
    assert_eq!(step(b.pid())["holds"], obj_s);
    assert_eq!(
        step(b.pid())["inferred"],
        true,
        "a System V holder is inferred"
    );
    assert_eq!(step(b.pid())["waits_for"], obj_m);

    // The text form: one line per cycle, exit 1, and a note on the inference.
    let out = run(&["deadlock"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(&obj_m))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.starts_with("deadlock: pid "), "{line}");
    for want in [
        format!("pid {} (thread ", a.pid()),
        format!("pid {} (thread ", b.pid()),
        format!("holds {obj_m} and waits for {obj_s}"),
        format!("holds {obj_s} (inferred: last operator) and waits for {obj_m}"),
    ] {
        assert!(line.contains(&want), "{want:?} not in {line}");
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("inferred"));
    kill_all(vec![a, b]);
}

fn kill_all(roles: Vec<Role>) {
    drop(roles);
}

#[test]
fn three_processes_in_a_cycle() {
    let _s = serial();
    let (x, _mx) = mutex("dl-x");
    let (y, _my) = mutex("dl-y");
    let (z, _mz) = mutex("dl-z");
    let a = spawn_role("lock_then_lock", &[&x, &y]);
    let b = spawn_role("lock_then_lock", &[&y, &z]);
    let c = spawn_role("lock_then_lock", &[&z, &x]);
    let obj_x = format!("mutex:{x}");
    let out = run_until(&["deadlock", "--json"], |o| {
        o.status.code() == Some(1) && cycle_with(&json(o), &obj_x).is_some()
    });
    let cycle = cycle_with(&json(&out), &obj_x).unwrap();
    assert_eq!(
        pids(&cycle),
        BTreeSet::from([a.pid().into(), b.pid().into(), c.pid().into()])
    );
    assert_eq!(cycle["steps"].as_array().unwrap().len(), 3);
    let text = cycle["text"].as_str().unwrap();
    for m in [&x, &y, &z] {
        assert!(text.contains(&format!("holds mutex:{m} and")), "{text}");
    }
    kill_all(vec![a, b, c]);
    // Once they are gone, so is the cycle.
    let out = run(&["deadlock", "--json"]);
    assert!(cycle_with(&json(&out), &obj_x).is_none(), "{out:?}");
}

#[test]
fn a_waiter_on_a_held_mutex_is_shown_with_its_holder_and_no_deadlock() {
    let _s = serial();
    let (name, _m) = mutex("dl-wait");
    let holder = spawn_role("hold", &[&name]);
    let obj = format!("mutex:{name}");
    run_until(&["ls", "--waiters", "--json"], |o| {
        find(&json(o), &obj).is_some_and(|l| l["state"] == "held")
    });
    let waiter = spawn_role("lock", &[&name]);
    let out = run_until(&["ls", "--waiters", "--json"], |o| {
        find(&json(o), &obj).is_some_and(|l| l["waiters"].as_array().is_some_and(|w| !w.is_empty()))
    });
    let l = find(&json(&out), &obj).unwrap();
    assert_eq!(l["kind"], "mutex");
    assert_eq!(l["holder"]["pid"], holder.pid());
    assert_eq!(l["holder"]["inferred"], false);
    assert_eq!(l["waiters"][0]["pid"], waiter.pid());
    assert_eq!(l["waiters"][0]["op"], "lock");

    let out = run(&["ls", "--waiters"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|r| r.contains(&obj))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.starts_with("mutex "), "{row}");
    assert!(row.contains(" held "), "{row}");
    assert!(
        row.contains(&format!("pid {} (thread ", holder.pid())),
        "{row}"
    );
    assert!(
        row.contains(&format!("pid {} (thread ", waiter.pid())),
        "{row}"
    );
    assert!(row.ends_with(" lock"), "{row}");

    // A chain, not a cycle: exit 0, and the waiter counted.
    let out = run(&["deadlock", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let doc = json(&out);
    assert_eq!(doc["cycles"], serde_json::json!([]));
    assert!(doc["waiting"].as_u64().unwrap() >= 1, "{doc}");
    let out = run(&["deadlock"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("no deadlock"));
    kill_all(vec![holder, waiter]);
}

fn find(doc: &Value, name: &str) -> Option<Value> {
    doc["objects"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == name)
        .cloned()
}

#[test]
fn hostile_semaphore_names_are_escaped() {
    let _s = serial();
    let file = format!("sem.{}-\u{1b}[2J\u{7}", util::unique("dl-esc"));
    let path = std::path::Path::new("/dev/shm").join(&file);
    std::fs::write(&path, [0u8; 32]).unwrap();
    struct Unlink(std::path::PathBuf);
    impl Drop for Unlink {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _u = Unlink(path);
    let out = run(&["ls", "--waiters"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "raw control characters"
    );
    assert!(text.contains("-\\e[2J\\x07"), "{text}");
    let doc = json(&run(&["ls", "--waiters", "--json"]));
    let name = format!("posix-sem:/{}", &file["sem.".len()..]);
    let l = find(&doc, &name).unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(l["kind"], "posix-sem");
}

#[test]
fn a_starving_sysv_waiter_and_a_queue_receiver_are_shown() {
    let _s = serial();
    let key = util::sysv_key();
    let set = SemaphoreSet::options()
        .values(&[1, 0])
        .create_new(true)
        .open(Key(key), 2)
        .unwrap();
    // A completed operation: from now on the set records how long it has been idle.
    set.wait(0).unwrap();
    let sem = format!("sysv-sem:{key:#x}");
    let waiter = util::Bg::spawn(&["sem", "wait", &sem, "--index", "1", "--timeout", "30s"]);
    let queue = format!("/{}", util::unique("dl-q"));
    let mq = format!("mq:{queue}");
    let _rm = util::Remove(vec![mq.clone()]);
    let receiver = util::Bg::spawn(&["recv", &mq, "--timeout", "30s"]);
    let obj = format!("{}[1]", ipcx::sysv::name("sysv-sem", key, set.id()));
    let waits = |l: &Value, pid: u32| {
        l["waiters"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w["pid"] == pid))
    };
    let out = run_until(&["ls", "--waiters", "--json"], |o| {
        let doc = json(o);
        find(&doc, &obj).is_some_and(|l| waits(&l, waiter.pid()))
            && find(&doc, &mq).is_some_and(|l| waits(&l, receiver.pid()))
    });
    let doc = json(&out);
    let s = find(&doc, &obj).unwrap();
    assert_eq!(s["state"], "zero");
    assert_eq!(s["kernel_waiters"], 1);
    assert_eq!(s["waiters"][0]["op"], "wait");
    assert!(s["idle_secs"].is_u64(), "{s}");
    if !s["holder"].is_null() {
        assert_eq!(s["holder"]["inferred"], true, "{s}");
    }
    let q = find(&doc, &mq).unwrap();
    assert_eq!(q["kind"], "mq");
    assert_eq!(q["waiters"][0]["op"], "receive");
    assert!(q["holder"].is_null(), "a queue has no holder: {q}");
}

#[test]
fn another_users_locks_and_waiters_are_noted_not_errors() {
    let _s = serial();
    if !util::is_root() {
        eprintln!("skipped: needs root to look as nobody at root's processes");
        return;
    }
    let (name, _m) = mutex("dl-nobody");
    let _holder = spawn_role("hold", &[&name]);
    let obj = format!("mutex:{name}");
    run_until(&["ls", "--waiters", "--json"], |o| {
        find(&json(o), &obj).is_some_and(|l| l["state"] == "held")
    });
    let _waiter = spawn_role("lock", &[&name]);
    run_until(&["ls", "--waiters", "--json"], |o| {
        find(&json(o), &obj).is_some_and(|l| l["waiters"].as_array().is_some_and(|w| !w.is_empty()))
    });
    let Some(out) = util::run_as_nobody(&["ls", "--waiters", "--json"]) else {
        return;
    };
    assert!(out.status.success(), "{out:?}");
    let doc = json(&out);
    assert!(
        find(&doc, &obj).is_none(),
        "root's 0600 mutex is not nobody's to read: {doc}"
    );
    let notes = doc["notes"].to_string();
    assert!(notes.contains("could not be inspected"), "{notes}");
    assert!(notes.contains("/dev/shm are not readable"), "{notes}");
    let Some(out) = util::run_as_nobody(&["deadlock"]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("note: "),
        "{out:?}"
    );
}
