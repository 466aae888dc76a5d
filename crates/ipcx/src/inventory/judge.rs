//! What `ipcx clean` decides about each object ([`judge`]).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

use serde::Serialize;

use super::Inventory;
use crate::registry::{self, Identity, pid_alive};

/// What `ipcx clean` decided about one object, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The object's name.
    pub name: String,
    /// Whether it is provably stale (and will be removed).
    pub stale: bool,
    /// Why.
    pub reason: String,
    /// The registry record that made the case, if any (forgotten once the object is removed).
    #[serde(skip)]
    pub record: Option<registry::Record>,
    /// The record is about an object that no longer exists (the name now belongs to another
    /// one): forget it, keep the object.
    #[serde(skip)]
    pub record_obsolete: bool,
    /// The object's identity when judged: removing it checks that the name still refers to it.
    #[serde(skip)]
    pub identity: Option<Identity>,
}

/// How [`judge`] decides.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct JudgeOptions {
    /// Judge other users' objects too (otherwise they are kept).
    pub all_users: bool,
    /// Judge System V segments that ipcx did not create by what the kernel records (no
    /// attachments, creator and last user dead); otherwise they are kept.
    pub force_foreign: bool,
}

impl JudgeOptions {
    /// Judge other users' objects too.
    pub fn all_users(mut self, yes: bool) -> Self {
        self.all_users = yes;
        self
    }
    /// Judge foreign System V segments by what the kernel records.
    pub fn force_foreign(mut self, yes: bool) -> Self {
        self.force_foreign = yes;
        self
    }
}

/// [`judge_with`] with default options, judging other users' objects when `all_users`.
pub fn judge(inv: &Inventory, all_users: bool) -> Vec<Verdict> {
    judge_with(inv, JudgeOptions::default().all_users(all_users))
}

/// Judges every object: stale only when it can be proven: an ipcx object whose registered
/// creator died, that no live process holds, and that is still the very object recorded (same
/// inode or System V id: a name reused by another program is kept); an ipcx ring whose
/// participants are all dead. A System V segment ipcx did not create (no attachments, creator
/// and last user dead) is stale only with [`JudgeOptions::force_foreign`]. Objects of other
/// users are never stale unless [`JudgeOptions::all_users`].
pub fn judge_with(inv: &Inventory, opts: JudgeOptions) -> Vec<Verdict> {
    let all_users = opts.all_users;
    let me = fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    let records: HashMap<String, registry::Record> = registry::records(all_users)
        .into_iter()
        .map(|r| (r.object.clone(), r))
        .collect();
    let mut out = Vec::new();
    for o in &inv.objects {
        let verdict = |stale: bool, reason: String| Verdict {
            name: o.name.clone(),
            stale,
            reason,
            record: None,
            record_obsolete: false,
            identity: o.identity,
        };
        if o.uid != me && !all_users {
            out.push(verdict(
                false,
                format!(
                    "owned by uid {} (pass --all-users to judge other users' objects)",
                    o.uid
                ),
            ));
            continue;
        }
        let live_holders: Vec<i32> = o
            .holders
            .iter()
            .copied()
            .filter(|p| pid_alive(*p))
            .collect();
        if let Some(r) = records.get(&o.name) {
            let same = match (r.identity, o.identity) {
                (Some(a), Some(b)) => Some(a.same_object(&b)),
                _ => None,
            };
            let mut v = if same == Some(false) {
                let mut v = verdict(
                    false,
                    format!(
                        "the name now belongs to another object than the one ipcx recorded \
                         (created by pid {}): not ipcx's to remove",
                        r.pid
                    ),
                );
                v.record_obsolete = !r.owner_alive();
                v
            } else if r.persistent {
                verdict(
                    false,
                    format!(
                        "made to persist on purpose by ipcx (pid {}); remove it with ipcx rm",
                        r.pid
                    ),
                )
            } else if r.owner_alive() {
                verdict(false, format!("its creator, pid {}, is alive", r.pid))
            } else if !live_holders.is_empty() {
                verdict(
                    false,
                    format!(
                        "its creator, pid {}, died, but pid {:?} still use it",
                        r.pid, live_holders
                    ),
                )
            } else if same.is_none() {
                let why = if r.identity.is_none() {
                    "the record (from an older ipcx) does not say which object it made"
                } else {
                    "the object under this name now cannot be checked against the record"
                };
                verdict(
                    false,
                    format!(
                        "its creator, pid {}, died, but {why}, so it may be another program's \
                         (remove it with ipcx rm if you know it is stale)",
                        r.pid
                    ),
                )
            } else {
                verdict(
                    true,
                    format!(
                        "created by ipcx in pid {}, which died without removing it, and no process uses it",
                        r.pid
                    ),
                )
            };
            v.record = Some(r.clone());
            out.push(v);
            continue;
        }
        let v = match o.kind {
            "shm" => {
                let live: Vec<i32> = o
                    .participants
                    .iter()
                    .filter(|p| p.alive)
                    .map(|p| p.pid)
                    .collect();
                if !live.is_empty() {
                    verdict(false, format!("ring participants pid {live:?} are alive"))
                } else if !live_holders.is_empty() {
                    verdict(false, format!("in use by pid {live_holders:?}"))
                } else {
                    verdict(
                        true,
                        "an ipcx ring whose participants are all dead and that no process maps"
                            .into(),
                    )
                }
            }
            "sysv-shm" => {
                let creator_dead = o.creator_alive == Some(false);
                let last_dead = o.last_alive != Some(true);
                if o.attachments == Some(0) && creator_dead && last_dead && !opts.force_foreign {
                    verdict(
                        false,
                        format!(
                            "not created by ipcx: no attachments, and its creator (pid {}) and \
                             last user are dead, but another program may mean to use it again \
                             (--force-foreign removes such segments)",
                            o.creator_pid.unwrap_or(0),
                        ),
                    )
                } else if o.attachments == Some(0) && creator_dead && last_dead {
                    verdict(
                        true,
                        format!(
                            "no attachments, and its creator (pid {}) and last user ({}) are dead",
                            o.creator_pid.unwrap_or(0),
                            o.last_pid.map_or("none".into(), |p| format!("pid {p}"))
                        ),
                    )
                } else if o.attachments.unwrap_or(0) > 0 {
                    verdict(false, format!("{} attachment(s)", o.attachments.unwrap_or(0)))
                } else {
                    verdict(false, "its creator or last user is alive".into())
                }
            }
            "unix" | "unix-dgram" | "unix-seqpacket" if o.listening != Some(false) => {
                verdict(false, "a live socket (bound by a running process)".into())
            }
            _ if !live_holders.is_empty() => {
                verdict(false, format!("in use by pid {live_holders:?}"))
            }
            "sysv-sem" | "sysv-mq" => verdict(
                false,
                "the kernel records no creator for System V semaphores and queues, and ipcx did not \
                 register one: not provably stale (remove it with ipcx rm if you know it is)"
                    .into(),
            ),
            _ => verdict(
                false,
                "no creator is recorded (not created by ipcx, or made to persist on purpose): \
                 not provably stale (remove it with ipcx rm if you know it is)"
                    .into(),
            ),
        };
        out.push(v);
    }
    out
}
