//! Lock-like objects with their holders and waiters, as far as the kernel tells: what
//! `ipcx ls --waiters` shows and [`deadlocks`](super::deadlocks) builds its graph from.
//!
//! | object | holder | waiters |
//! |---|---|---|
//! | `mutex:/NAME` ([`SharedMutex`](crate::sync::SharedMutex)) | the thread id in the robust lock word | threads in a futex wait on the lock word (or, shown apart, on the condition variable) |
//! | `shared-sem:/NAME` ([`SharedSemaphore`](crate::sync::SharedSemaphore)), `posix-sem:/NAME` | none: a semaphore has no owner | threads in a futex wait inside its mapping |
//! | `futex:/NAME` ([`Futex`](crate::sync::Futex)) | none | threads in a futex wait on the word |
//! | `sysv-sem:KEY[I]` | **inferred**: the last process that operated on it (`GETPID`) while it is at zero | threads in `semop`/`semtimedop` whose operations on it cannot proceed; `GETNCNT` + `GETZCNT` count every waiter, seen or not |
//! | `mq:/NAME` | none | threads in `mq_timedreceive` (queue empty) or `mq_timedsend` (queue full) on it; queues appear only when someone waits |
//!
//! The kernel does not record when a wait began, so no waiter comes with a duration. What it
//! does record is when a System V set or a POSIX queue last completed an operation:
//! [`Lock::idle_secs`] says how long the object has made no progress, the sign of a starving
//! waiter.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use serde::Serialize;

use super::tasks::{self, Blocked, Call, Maps, Tasks};
use crate::registry::pid_alive;
use crate::sys::pthread::{self, Kind};

/// Lock-like objects and notes on what could not be looked at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Locks {
    /// Every object found, by name.
    pub objects: Vec<Lock>,
    /// What could not be read (other users' processes and objects), and what to do about it.
    pub notes: Vec<String>,
}

/// One lock-like object.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Lock {
    /// `mutex`, `shared-sem`, `futex`, `posix-sem`, `sysv-sem` or `mq`.
    pub kind: &'static str,
    /// Its name: `mutex:/NAME`, `sysv-sem:0x00000099[1]` (one semaphore of a set), ...
    pub name: String,
    /// Whether it is held.
    pub state: LockState,
    /// Who holds it, when the kernel tells (or, for System V semaphores, when it can be
    /// inferred: see [`Holder::inferred`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
    /// Semaphores: the value; futexes: the word.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    /// The threads seen waiting on it.
    pub waiters: Vec<Waiter>,
    /// System V semaphores: how many wait according to the kernel (`GETNCNT` + `GETZCNT`),
    /// including the waiters of other users that cannot be seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_waiters: Option<u64>,
    /// Seconds since the object last completed an operation, where the kernel records it
    /// (System V semaphore sets: `sem_otime`; POSIX queues: the last send or receive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_secs: Option<u64>,
}

/// Whether a lock-like object is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LockState {
    /// Not held (a mutex), or above zero (a semaphore).
    Free,
    /// Held by [`Lock::holder`].
    Held,
    /// A robust mutex whose owner died holding it: the next locker recovers it.
    OwnerDied,
    /// A robust mutex recovered without being marked consistent: it can never be locked again.
    NotRecoverable,
    /// A semaphore at zero: taken, by no one in particular (a System V semaphore names its
    /// last operator as the inferred holder).
    Zero,
    /// Has no notion of holding (a futex word, a message queue).
    NoOwner,
    /// Could not be read.
    Unknown,
}

impl LockState {
    /// The state as `ls --waiters` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            LockState::Free => "free",
            LockState::Held => "held",
            LockState::OwnerDied => "owner-died",
            LockState::NotRecoverable => "not-recoverable",
            LockState::Zero => "zero",
            LockState::NoOwner => "no-owner",
            LockState::Unknown => "unknown",
        }
    }
}

/// Who holds an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Holder {
    /// The process (0 when the owning thread no longer exists and its process is unknown).
    pub pid: i32,
    /// The owning thread, when the object records one (robust mutexes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    /// Whether the holder still runs.
    pub alive: bool,
    /// A heuristic, not a fact: System V semaphores record the last process that operated on
    /// them, not who decremented them last; that process is taken as the holder while the
    /// semaphore is at zero.
    pub inferred: bool,
}

/// A thread waiting on an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Waiter {
    /// Its process.
    pub pid: i32,
    /// The thread.
    pub tid: i32,
    /// What it waits for.
    pub op: WaitOp,
}

/// What a waiter waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum WaitOp {
    /// To take a mutex.
    Lock,
    /// A notification on a mutex's condition variable (not the lock itself: no holder
    /// blocks it).
    Condvar,
    /// To decrement a semaphore, or a change of a futex word.
    Wait,
    /// A System V semaphore to reach zero.
    WaitZero,
    /// A message (the queue is empty).
    Receive,
    /// Room in the queue (it is full).
    Send,
}

impl WaitOp {
    /// The operation as `ls --waiters` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitOp::Lock => "lock",
            WaitOp::Condvar => "condvar",
            WaitOp::Wait => "wait",
            WaitOp::WaitZero => "wait-zero",
            WaitOp::Receive => "receive",
            WaitOp::Send => "send",
        }
    }

    /// Whether the waiter waits for the holder to let go (an edge of the wait-for graph).
    pub fn waits_for_holder(self) -> bool {
        matches!(self, WaitOp::Lock | WaitOp::Wait | WaitOp::WaitZero)
    }
}

/// The most semaphores of one System V set looked at.
const MAX_SEMS: usize = 1024;

/// Scans the machine for lock-like objects, their holders and waiters.
pub fn locks() -> Locks {
    let tasks = Tasks::scan();
    let mut locks = Locks::default();
    let mut maps = Maps::default();
    dev_shm(&mut locks, &tasks.blocked, &mut maps);
    sysv_sems(&mut locks, &tasks.blocked);
    queues(&mut locks, &tasks.blocked);
    if tasks.unreadable > 0 {
        let hint = if crate::trust::euid() == 0 {
            ""
        } else {
            " (run as root to see them; without root, kernel.yama.ptrace_scope = 1 hides \
             every process but your own children)"
        };
        locks.notes.push(format!(
            "{} threads could not be inspected (other users' processes, or processes that \
             forbid tracing): what they wait on is not shown{hint}",
            tasks.unreadable
        ));
    }
    for l in &mut locks.objects {
        l.waiters.sort_by_key(|w| (w.pid, w.tid));
        l.waiters.dedup();
    }
    locks.objects.sort_by(|a, b| a.name.cmp(&b.name));
    locks
}

fn lock(kind: &'static str, name: String, state: LockState) -> Lock {
    Lock {
        kind,
        name,
        state,
        holder: None,
        value: None,
        waiters: Vec::new(),
        kernel_waiters: None,
        idle_secs: None,
    }
}

/// What a `/dev/shm` object is, to place a futex waiter in it.
enum ShmKind {
    Sync(Kind),
    PosixSem,
}

/// ipcx sync segments and POSIX named semaphores, and the futex waiters inside them.
fn dev_shm(locks: &mut Locks, blocked: &[Blocked], maps: &mut Maps) {
    let (Ok(rd), Ok(shm)) = (fs::read_dir("/dev/shm"), fs::metadata("/dev/shm")) else {
        locks
            .notes
            .push("/dev/shm is not readable: mutexes and POSIX semaphores are not listed".into());
        return;
    };
    let mut by_ino: HashMap<u64, (usize, ShmKind)> = HashMap::new();
    let mut unreadable = 0;
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if !m.is_file() {
            continue;
        }
        let file = e.file_name().to_string_lossy().into_owned();
        let bytes = match super::posix::read_regular_nonblocking(&e.path(), 512) {
            Ok(b) => Some(b),
            Err(_) => {
                unreadable += 1;
                None
            }
        };
        let (l, kind) = if let Some(sem) = file.strip_prefix("sem.") {
            let mut l = lock("posix-sem", format!("posix-sem:/{sem}"), LockState::Unknown);
            if let Some(v) = bytes.as_deref().and_then(pthread::sem_value) {
                l.value = Some(v.into());
                l.state = sem_state(v);
            }
            (l, ShmKind::PosixSem)
        } else {
            let Some(bytes) = bytes else { continue };
            let Some(kind) = pthread::observe_kind(&bytes) else {
                continue;
            };
            (sync_lock(&file, kind, &bytes), ShmKind::Sync(kind))
        };
        by_ino.insert(m.ino(), (locks.objects.len(), kind));
        locks.objects.push(l);
    }
    if unreadable > 0 {
        locks.notes.push(format!(
            "{unreadable} objects in /dev/shm are not readable by this user: if they are \
             mutexes or semaphores, their holders and values are not shown"
        ));
    }
    let shm_dev = (rustix::fs::major(shm.dev()), rustix::fs::minor(shm.dev()));
    let layout = pthread::mutex_layout();
    for b in blocked {
        let Call::Futex { uaddr } = b.call else {
            continue;
        };
        let Some(spot) = maps.spot(b.pid, uaddr) else {
            continue;
        };
        let Some((i, kind)) = by_ino.get(&spot.ino).filter(|_| spot.dev == shm_dev) else {
            continue;
        };
        let off = usize::try_from(spot.offset).unwrap_or(usize::MAX);
        let op = match kind {
            ShmKind::Sync(Kind::Mutex) if layout.mutex.contains(&off) => WaitOp::Lock,
            ShmKind::Sync(Kind::Mutex) if layout.cond.contains(&off) => WaitOp::Condvar,
            ShmKind::Sync(Kind::Mutex) => continue,
            ShmKind::Sync(k) if pthread::body_of(*k).contains(&off) => WaitOp::Wait,
            ShmKind::Sync(_) => continue,
            ShmKind::PosixSem => WaitOp::Wait,
        };
        locks.objects[*i].waiters.push(Waiter {
            pid: b.pid,
            tid: b.tid,
            op,
        });
    }
}

fn sem_state(value: u32) -> LockState {
    if value > 0 {
        LockState::Free
    } else {
        LockState::Zero
    }
}

/// An ipcx sync segment from its first bytes.
fn sync_lock(file: &str, kind: Kind, bytes: &[u8]) -> Lock {
    let body = pthread::body_of(kind);
    let word_at = |off: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(
            bytes.get(off..off + 4)?.try_into().ok()?,
        ))
    };
    match kind {
        Kind::Mutex => {
            let layout = pthread::mutex_layout();
            let mut l = lock("mutex", format!("mutex:/{file}"), LockState::Unknown);
            let Some(word) = word_at(layout.lock_word) else {
                return l;
            };
            // The robust futex protocol: FUTEX_WAITERS | FUTEX_OWNER_DIED | owner tid.
            let tid = (word & 0x3fff_ffff) as i32;
            let owner_died = word & 0x4000_0000 != 0;
            let owner = layout.owner_field.and_then(word_at);
            l.state = if owner == Some(0x7fff_ffff) {
                LockState::NotRecoverable
            } else if tid != 0 {
                let pid = tasks::tgid(tid);
                l.holder = Some(Holder {
                    pid: pid.unwrap_or(0),
                    tid: Some(tid),
                    alive: pid.is_some(),
                    inferred: false,
                });
                LockState::Held
            } else if owner_died {
                LockState::OwnerDied
            } else {
                LockState::Free
            };
            l
        }
        Kind::Semaphore => {
            let mut l = lock(
                "shared-sem",
                format!("shared-sem:/{file}"),
                LockState::Unknown,
            );
            if let Some(v) = bytes.get(body.start..).and_then(pthread::sem_value) {
                l.value = Some(v.into());
                l.state = sem_state(v);
            }
            l
        }
        Kind::Futex => {
            let mut l = lock("futex", format!("futex:/{file}"), LockState::NoOwner);
            l.value = word_at(body.start).map(i64::from);
            l
        }
    }
}

/// Every semaphore of every System V set this user may read, with its waiters.
fn sysv_sems(locks: &mut Locks, blocked: &[Blocked]) {
    let Some(rows) = fs::read("/proc/sysvipc/sem")
        .ok()
        .and_then(|t| super::sysv::parse_table(&t))
    else {
        locks
            .notes
            .push("/proc/sysvipc/sem is not readable: System V semaphores are not listed".into());
        return;
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut denied = Vec::new();
    for row in rows {
        let num = |c: &str| row.get(c).and_then(|v| v.parse::<i64>().ok());
        let (Some(key), Some(id), Some(nsems)) = (num("key"), num("semid"), num("nsems")) else {
            continue;
        };
        let (Ok(key), Ok(id)) = (i32::try_from(key), i32::try_from(id)) else {
            continue;
        };
        let set = crate::sysv::name("sysv-sem", key, id);
        let otime = num("otime").filter(|t| *t > 0);
        let waiting: Vec<&Blocked> = blocked
            .iter()
            .filter(|b| matches!(&b.call, Call::Semop { semid, .. } if *semid == id))
            .collect();
        let n = usize::try_from(nsems).unwrap_or(0);
        if n > MAX_SEMS {
            locks.notes.push(format!(
                "{set} has {n} semaphores: only the first {MAX_SEMS} are shown"
            ));
        }
        for index in 0..n.min(MAX_SEMS) {
            let i = index as i32;
            use crate::sys::sysv_sem as s;
            let val = match s::getval(id, i) {
                Ok(v) => v,
                Err(e) if index == 0 => {
                    if e.raw_os_error() == Some(libc::EACCES) {
                        denied.push(set.clone());
                    }
                    break;
                }
                Err(_) => break,
            };
            let ncnt = s::getncnt(id, i).unwrap_or(0);
            let zcnt = s::getzcnt(id, i).unwrap_or(0);
            let last = s::getpid(id, i).unwrap_or(0);
            let mut l = lock("sysv-sem", format!("{set}[{index}]"), LockState::Free);
            l.value = Some(val.into());
            l.kernel_waiters = Some((ncnt.max(0) + zcnt.max(0)) as u64);
            l.idle_secs = otime.map(|t| now.saturating_sub(t as u64));
            if val == 0 {
                l.state = LockState::Zero;
            }
            if (val == 0 || zcnt > 0) && last > 0 {
                l.holder = Some(Holder {
                    pid: last,
                    tid: None,
                    alive: pid_alive(last),
                    inferred: true,
                });
            }
            for b in &waiting {
                let Call::Semop { ops, .. } = &b.call else {
                    continue;
                };
                let Some(ops) = ops else {
                    continue;
                };
                for &(num, op) in ops {
                    if usize::from(num) != index {
                        continue;
                    }
                    let blocks = match op {
                        0 => val != 0,
                        op if op < 0 => val < -i32::from(op),
                        _ => false,
                    };
                    if blocks {
                        l.waiters.push(Waiter {
                            pid: b.pid,
                            tid: b.tid,
                            op: if op == 0 {
                                WaitOp::WaitZero
                            } else {
                                WaitOp::Wait
                            },
                        });
                    }
                }
            }
            locks.objects.push(l);
        }
        for b in waiting {
            if matches!(&b.call, Call::Semop { ops: None, .. }) {
                locks.notes.push(format!(
                    "pid {} (thread {}) waits on {set}, on a semaphore that could not be read \
                     from its memory",
                    b.pid, b.tid
                ));
            }
        }
    }
    if !denied.is_empty() {
        locks.notes.push(format!(
            "{} System V semaphore sets are not readable by this user (mode): their values and \
             waiters are not shown",
            denied.len()
        ));
    }
}

/// The POSIX queues someone is blocked on.
fn queues(locks: &mut Locks, blocked: &[Blocked]) {
    let mqueue_dev = fs::metadata("/dev/mqueue").ok().map(|m| m.dev());
    let now = SystemTime::now();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for b in blocked {
        let Call::Mq { fd, send } = b.call else {
            continue;
        };
        let Some(link) = tasks::fd_link(b.pid, fd) else {
            continue;
        };
        // The link of a queue's descriptor reads "/NAME".
        if !link.starts_with('/') || link[1..].contains('/') {
            continue;
        }
        let name = format!("mq:{link}");
        let i = *by_name.entry(name.clone()).or_insert_with(|| {
            let mut l = lock("mq", name, LockState::NoOwner);
            // The queue file's modification time is its last send or receive.
            let same_fs = tasks::fd_identity(b.pid, fd).map(|(dev, _)| dev) == mqueue_dev;
            if same_fs
                && let Ok(m) = fs::symlink_metadata(format!("/dev/mqueue{link}"))
                && let Ok(t) = m.modified()
            {
                l.idle_secs = now.duration_since(t).ok().map(|d| d.as_secs());
            }
            locks.objects.push(l);
            locks.objects.len() - 1
        });
        locks.objects[i].waiters.push(Waiter {
            pid: b.pid,
            tid: b.tid,
            op: if send { WaitOp::Send } else { WaitOp::Receive },
        });
    }
}
