//! Every IPC object on the machine, not only ipcx's: what `ipcx ls` shows and `ipcx clean`
//! judges.
//!
//! Sources: `/proc/sysvipc/{shm,sem,msg}` (System V), `/dev/shm` (POSIX shared memory and, as
//! `sem.NAME`, POSIX semaphores), `/dev/mqueue` (POSIX message queues; when it is not mounted,
//! [`Inventory::notes`] says how to mount it) and `/proc/net/unix` (bound Unix sockets). The
//! processes that hold each object open or mapped come from `/proc/*/fd` and `/proc/*/maps`
//! (complete for root, limited to the caller's own processes otherwise), and the creator of an
//! ipcx object from the [owner registry](crate::registry).
//!
//! [`locks`] lists the lock-like objects (robust mutexes, semaphores, futexes, and the queues
//! someone is blocked on) with who holds and who waits on each, from `/proc/PID/task/TID/syscall`
//! and the objects themselves; [`deadlocks`] finds the cycles of the wait-for graph they form.

use std::collections::HashMap;

use serde::Serialize;

use crate::registry::{self, Identity};

/// One IPC object.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Object {
    /// The kind, as the prefix of its name: `posix-shm`, `posix-sem`, `mq`, `sysv-shm`,
    /// `sysv-sem`, `sysv-mq`, `unix`, `unix-dgram`, `unix-seqpacket`.
    pub kind: &'static str,
    /// The name `ipcx rm` accepts, e.g. `posix-shm:/frames`, `sysv-mq:0x000004d2`.
    pub name: String,
    /// System V: the object's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i32>,
    /// Owner uid.
    pub uid: u32,
    /// Owner user name, when `/etc/passwd` knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Permission bits, as octal text (`"0600"`).
    pub mode: String,
    /// Size in bytes (segments), or bytes queued (queues).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Messages queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
    /// Semaphores in a System V set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nsems: Option<u64>,
    /// System V segments: current attachments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<u64>,
    /// The creating process, when known (System V segments; ipcx objects via the registry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator_pid: Option<i32>,
    /// Whether the creator still runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator_alive: Option<bool>,
    /// The last process that used it (System V: last attach/detach, send or receive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_pid: Option<i32>,
    /// Whether that process still runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_alive: Option<bool>,
    /// Live processes that have it open or mapped (as far as this user can see).
    pub holders: Vec<i32>,
    /// Unix sockets: listening (stream/seqpacket) or bound (datagram).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listening: Option<bool>,
    /// ipcx rings (`shm:/NAME`): the publisher and subscribers registered in the segment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<crate::ring::Participant>,
    /// Which object this is (device and inode, or the System V id), to tell it apart from the
    /// object the owner registry recorded under the same name.
    #[serde(skip)]
    pub identity: Option<Identity>,
}

/// The objects found, and notes on what could not be looked at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inventory {
    /// Every object found.
    pub objects: Vec<Object>,
    /// Places that could not be read, and what to do about it.
    pub notes: Vec<String>,
}

/// Scans the machine.
pub fn scan() -> Inventory {
    let mut inv = Inventory::default();
    let holders = Holders::scan();
    let users = Users::load();
    let registry: HashMap<String, registry::Record> = registry::records(true)
        .into_iter()
        .map(|r| (r.object.clone(), r))
        .collect();
    sysv(&mut inv, &holders);
    dev_shm(&mut inv, &holders);
    mqueue(&mut inv, &holders, &registry);
    unix_sockets(&mut inv, &holders);
    registry_files(&mut inv, &holders, &registry);
    for o in &mut inv.objects {
        o.user = users.name(o.uid);
        if o.creator_pid.is_none()
            && let Some(r) = registry.get(&o.name)
        {
            o.creator_pid = Some(r.pid);
            o.creator_alive = Some(r.owner_alive());
        }
    }
    inv.objects
        .sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    inv
}

fn blank(kind: &'static str, name: String, uid: u32, mode: u32) -> Object {
    Object {
        kind,
        name,
        id: None,
        uid,
        user: None,
        mode: format!("{:04o}", mode & 0o7777),
        size: None,
        messages: None,
        nsems: None,
        attachments: None,
        creator_pid: None,
        creator_alive: None,
        last_pid: None,
        last_alive: None,
        holders: Vec::new(),
        listening: None,
        participants: Vec::new(),
        identity: None,
    }
}

mod files;
mod holders;
mod judge;
mod locks;
mod name;
mod posix;
mod remove;
mod sysv;
mod tasks;
mod waitfor;

pub use files::{UnixSocketLine, parse_proc_net_unix};
use files::{registry_files, unix_sockets};
use holders::{Holders, Users};
pub use judge::{JudgeOptions, Verdict, judge, judge_with};
pub use locks::{Holder, Lock, LockState, Locks, WaitOp, Waiter, locks};
pub use name::{OBJECT_KINDS, ObjectName, SysvRef};
pub use posix::{MQUEUE_NOT_MOUNTED, parse_mqueue_qsize};
use posix::{dev_shm, mqueue};
pub use remove::{RemoveError, remove, remove_checked};
use sysv::sysv;
pub use sysv::{parse_sysv, parse_table};
pub use tasks::fuzz_task_parsers;
pub use waitfor::{Cycle, MAX_CYCLES, Step, deadlocks};
