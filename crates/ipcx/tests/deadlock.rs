//! Holders, waiters and deadlocks between real processes, as `ipcx::inventory::locks` and
//! `deadlocks` see them through `/proc`.
mod util;

use std::time::Duration;

use ipcx::inventory::{self, Cycle, Lock, LockState, Locks, WaitOp};
use ipcx::sem::Semaphore;
use ipcx::sync::{SharedMutex, SharedSemaphore};
use ipcx::sysv::Key;
use ipcx::sysv::sem::SemaphoreSet;
use util::spawn_role;

const LONG: Duration = Duration::from_secs(20);

#[test]
fn child_role() {
    util::role_main(&[
        ("hold", role_hold),
        ("lock", role_lock),
        ("sem_then_sem", role_sem_then_sem),
        ("posix_sem_wait", role_posix_sem_wait),
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

/// Takes semaphore ARG1 of the set with key ARG0, waits until semaphore ARG2 is taken (by
/// another process), then takes it too.
fn role_sem_then_sem(args: &[String]) {
    let set = SemaphoreSet::open(Key(args[0].parse().unwrap())).unwrap();
    let (first, second): (u16, u16) = (args[1].parse().unwrap(), args[2].parse().unwrap());
    set.wait(first).unwrap();
    while set.get(second.into()).unwrap() != 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = set.wait(second);
    std::thread::sleep(Duration::from_secs(120));
}

fn role_posix_sem_wait(args: &[String]) {
    let s = Semaphore::open(&args[0]).unwrap();
    let _ = s.wait();
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
fn a_waiter_on_a_posix_named_semaphore_has_no_holder() {
    let name = util::posix_name("dl-psem");
    // Removed on drop: this handle created it.
    let _s = Semaphore::create_new(&name, 0).unwrap();
    let waiter = spawn_role("posix_sem_wait", &[&name]);
    let obj = format!("posix-sem:{name}");
    let o = scan_until(|l| object(l, &obj).filter(|o| !o.waiters.is_empty()).cloned());
    assert_eq!(o.waiters[0].pid, waiter.pid());
    assert_eq!(o.waiters[0].op, WaitOp::Wait);
    assert!(o.holder.is_none(), "{o:?}");
}

#[test]
fn two_processes_deadlock_on_two_sysv_semaphores() {
    let key = util::sysv_key();
    let set = SemaphoreSet::options()
        .values(&[1, 1])
        .create_new(true)
        .open(Key(key), 2)
        .unwrap();
    let k = key.to_string();
    let a = spawn_role("sem_then_sem", &[&k, "0", "1"]);
    let b = spawn_role("sem_then_sem", &[&k, "1", "0"]);
    let base = ipcx::sysv::name("sysv-sem", key, set.id());
    let (s0, s1) = (format!("{base}[0]"), format!("{base}[1]"));
    let cycle = scan_until(|l| {
        inventory::deadlocks(l)
            .into_iter()
            .find(|c| mentions(c, &s0))
    });
    assert_eq!(cycle.steps.len(), 2, "{cycle}");
    let step = |pid: i32| cycle.steps.iter().find(|s| s.pid == pid).expect("step");
    assert_eq!(
        (
            step(a.pid()).holds.as_str(),
            step(a.pid()).waits_for.as_str()
        ),
        (&*s0, &*s1)
    );
    assert_eq!(
        (
            step(b.pid()).holds.as_str(),
            step(b.pid()).waits_for.as_str()
        ),
        (&*s1, &*s0)
    );
    assert!(
        cycle.steps.iter().all(|s| s.inferred),
        "both holders are inferred: {cycle:?}"
    );
    // The kernel counts each semaphore's waiter, and the scan sees it.
    let locks = inventory::locks();
    for (obj, waiter) in [(&s0, &b), (&s1, &a)] {
        let o = object(&locks, obj).expect("listed");
        assert_eq!(o.kernel_waiters, Some(1), "{o:?}");
        assert_eq!(o.waiters.len(), 1, "{o:?}");
        assert_eq!(o.waiters[0].pid, waiter.pid());
        assert_eq!(
            o.holder.map(|h| h.pid),
            Some(if waiter.pid() == a.pid() {
                b.pid()
            } else {
                a.pid()
            })
        );
    }
}
