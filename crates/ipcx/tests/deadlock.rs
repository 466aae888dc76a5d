//! Holders, waiters and deadlocks between real processes, as `ipcx::inventory::locks` and
//! `deadlocks` see them through `/proc`.
mod util;

use std::time::Duration;

use ipcx::inventory::{self, Cycle, Lock, LockState, Locks, WaitOp};
use ipcx::sync::{LockError, SharedMutex, SharedSemaphore};
use ipcx::sysv::Key;
use ipcx::sysv::sem::SemaphoreSet;
use util::spawn_role;

const LONG: Duration = Duration::from_secs(20);

#[test]
fn child_role() {
    util::role_main(&[
        ("hold", role_hold),
        ("lock", role_lock),
        ("lock_then_sem", role_lock_then_sem),
        ("sem_then_lock", role_sem_then_lock),
        ("shared_sem_wait", role_shared_sem_wait),
    ]);
}

/// Locks the mutex ARG0 and keeps it.
fn role_hold(args: &[String]) {
    let m = SharedMutex::<u64>::open(&args[0]).unwrap();
    let _g = m.lock().unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

/// Locks the mutex ARG0 (blocking without limit).
fn role_lock(args: &[String]) {
    let m = SharedMutex::<u64>::open(&args[0]).unwrap();
    let _g = m.lock();
    std::thread::sleep(Duration::from_secs(120));
}

/// Locks the mutex ARG0, waits until semaphore 1 of the set with key ARG1 is taken (by
/// `sem_then_lock`), then takes it too: blocks for good once the other side waits for the mutex.
fn role_lock_then_sem(args: &[String]) {
    let m = SharedMutex::<u64>::open(&args[0]).unwrap();
    let set = SemaphoreSet::open(Key(args[1].parse().unwrap())).unwrap();
    let _g = m.lock().unwrap();
    while set.get(1).unwrap() != 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = set.wait(1);
    std::thread::sleep(Duration::from_secs(120));
}

/// Takes semaphore 1 of the set with key ARG1, waits until the mutex ARG0 is held (by
/// `lock_then_sem`), then locks it.
fn role_sem_then_lock(args: &[String]) {
    let m = SharedMutex::<u64>::open(&args[0]).unwrap();
    let set = SemaphoreSet::open(Key(args[1].parse().unwrap())).unwrap();
    set.wait(1).unwrap();
    loop {
        match m.try_lock() {
            Ok(g) => drop(g),
            Err(LockError::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _g = m.lock();
    std::thread::sleep(Duration::from_secs(120));
}

fn role_shared_sem_wait(args: &[String]) {
    let s = SharedSemaphore::open(&args[0]).unwrap();
    let _ = s.wait();
    std::thread::sleep(Duration::from_secs(120));
}

/// Scans until `found` picks something out of the locks (at most 20 s).
fn scan_until<T>(mut found: impl FnMut(&Locks) -> Option<T>) -> T {
    util::wait_for(LONG, || {
        let r = found(&inventory::locks());
        if r.is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    })
}

fn object<'a>(locks: &'a Locks, name: &str) -> Option<&'a Lock> {
    locks.objects.iter().find(|l| l.name == name)
}

#[test]
fn a_held_mutex_shows_its_holder_and_its_waiter() {
    let name = util::posix_name("dl-held");
    let _m = SharedMutex::<u64>::create_new(&name).unwrap();
    let holder = spawn_role("hold", &[&name]);
    let obj = format!("mutex:{name}");
    scan_until(|l| {
        object(l, &obj)
            .filter(|o| o.state == LockState::Held)
            .map(drop)
    });
    let waiter = spawn_role("lock", &[&name]);
    let o = scan_until(|l| object(l, &obj).filter(|o| !o.waiters.is_empty()).cloned());
    let h = o.holder.expect("holder");
    assert_eq!(h.pid, holder.pid());
    // The lock word names the thread; the role runs in a thread of the test harness.
    let tid = h.tid.expect("a mutex records its owning thread");
    assert!(
        std::path::Path::new(&format!("/proc/{}/task/{tid}", holder.pid())).exists(),
        "thread {tid} belongs to the holder"
    );
    assert!(h.alive && !h.inferred);
    assert_eq!(o.waiters.len(), 1, "{o:?}");
    assert_eq!(o.waiters[0].pid, waiter.pid());
    assert_eq!(o.waiters[0].op, WaitOp::Lock);
    // One waits for the other, but nothing waits back: no deadlock involving them.
    let cycles = inventory::deadlocks(&inventory::locks());
    assert!(
        !cycles.iter().any(|c| mentions(c, &obj)),
        "a chain is not a cycle: {cycles:?}"
    );
}

#[test]
fn a_waiter_on_a_shared_semaphore_has_no_holder() {
    let name = util::posix_name("dl-ssem");
    let _s = SharedSemaphore::create_new(&name, 0).unwrap();
    let waiter = spawn_role("shared_sem_wait", &[&name]);
    let obj = format!("shared-sem:{name}");
    let o = scan_until(|l| object(l, &obj).filter(|o| !o.waiters.is_empty()).cloned());
    assert_eq!(o.waiters[0].pid, waiter.pid());
    assert_eq!(o.waiters[0].op, WaitOp::Wait);
    assert!(o.holder.is_none(), "a semaphore has no owner: {o:?}");
    assert_eq!(o.value, Some(0));
    assert_eq!(o.state, LockState::Zero);
}

fn mentions(c: &Cycle, object: &str) -> bool {
    c.steps
        .iter()
        .any(|s| s.holds == object || s.waits_for == object)
}

#[test]
fn a_mutex_and_a_sysv_semaphore_deadlock_two_processes() {
    let name = util::posix_name("dl-pair");
    let key = util::sysv_key();
    let _m = SharedMutex::<u64>::create_new(&name).unwrap();
    let set = SemaphoreSet::options()
        .values(&[1, 1])
        .create_new(true)
        .open(Key(key), 2)
        .unwrap();
    let a = spawn_role("lock_then_sem", &[&name, &key.to_string()]);
    let b = spawn_role("sem_then_lock", &[&name, &key.to_string()]);
    let mutex = format!("mutex:{name}");
    let sem = format!("{}[1]", ipcx::sysv::name("sysv-sem", key, set.id()));
    let cycle = scan_until(|l| {
        inventory::deadlocks(l)
            .into_iter()
            .find(|c| mentions(c, &mutex))
    });
    assert_eq!(cycle.steps.len(), 2, "{cycle}");
    let sa = cycle.steps.iter().find(|s| s.pid == a.pid()).expect("a");
    let sb = cycle.steps.iter().find(|s| s.pid == b.pid()).expect("b");
    assert_eq!((sa.holds.as_str(), sa.waits_for.as_str()), (&*mutex, &*sem));
    assert_eq!((sb.holds.as_str(), sb.waits_for.as_str()), (&*sem, &*mutex));
    assert!(sb.inferred && !sa.inferred, "{cycle:?}");
    let text = cycle.to_string();
    assert!(
        text.contains(&format!(
            "pid {} (thread {}) holds {mutex} and waits for {sem}",
            a.pid(),
            sa.tid
        )) && text.contains(&format!(
            "holds {sem} (inferred: last operator) and waits for {mutex}"
        )),
        "{text}"
    );
}
