//! Every IPC object on the machine, not only ipcx's: what `ipcx ls` shows and `ipcx clean`
//! judges.
//!
//! Sources: `/proc/sysvipc/{shm,sem,msg}` (System V), `/dev/shm` (POSIX shared memory and, as
//! `sem.NAME`, POSIX semaphores), `/dev/mqueue` (POSIX message queues; when it is not mounted,
//! [`Inventory::notes`] says how to mount it) and `/proc/net/unix` (bound Unix sockets). The
//! processes that hold each object open or mapped come from `/proc/*/fd` and `/proc/*/maps`
//! (complete for root, limited to the caller's own processes otherwise), and the creator of an
//! ipcx object from the [owner registry](crate::registry).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use serde::Serialize;

use crate::registry::{self, pid_alive};

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
    mqueue(&mut inv, &holders);
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
    }
}

/// Parses a `/proc/sysvipc` table into rows of named columns.
fn table(path: &str) -> Option<Vec<HashMap<String, String>>> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    Some(
        lines
            .map(|l| {
                header
                    .iter()
                    .cloned()
                    .zip(l.split_whitespace().map(str::to_owned))
                    .collect()
            })
            .collect(),
    )
}

fn num<T: std::str::FromStr>(row: &HashMap<String, String>, col: &str) -> Option<T> {
    row.get(col)?.parse().ok()
}

/// The name of a System V object: by key, or by id for IPC_PRIVATE objects.
pub fn sysv_name(kind: &str, key: i32, id: i32) -> String {
    if key == 0 {
        format!("{kind}:id={id}")
    } else {
        format!("{kind}:0x{:08x}", key as u32)
    }
}

fn sysv(inv: &mut Inventory, holders: &Holders) {
    let pid_opt = |p: Option<i32>| p.filter(|p| *p > 0);
    for (kind, file) in [
        ("sysv-shm", "/proc/sysvipc/shm"),
        ("sysv-sem", "/proc/sysvipc/sem"),
        ("sysv-mq", "/proc/sysvipc/msg"),
    ] {
        let Some(rows) = table(file) else {
            inv.notes.push(format!(
                "{file} is not readable: System V objects are not listed (is /proc mounted?)"
            ));
            continue;
        };
        for row in rows {
            let (Some(key), Some(id), Some(perms), Some(uid)) = (
                num::<i32>(&row, "key"),
                row.get("shmid")
                    .or(row.get("semid"))
                    .or(row.get("msqid"))
                    .and_then(|s| s.parse::<i32>().ok()),
                row.get("perms")
                    .and_then(|p| u32::from_str_radix(p, 8).ok()),
                num::<u32>(&row, "uid"),
            ) else {
                continue;
            };
            let mut o = blank(kind, sysv_name(kind, key, id), uid, perms);
            o.id = Some(id);
            match kind {
                "sysv-shm" => {
                    o.size = num(&row, "size");
                    o.attachments = num(&row, "nattch");
                    o.creator_pid = pid_opt(num(&row, "cpid"));
                    o.last_pid = pid_opt(num(&row, "lpid"));
                    o.holders = holders.sysv_shm(id);
                }
                "sysv-sem" => o.nsems = num(&row, "nsems"),
                _ => {
                    o.size = num(&row, "cbytes");
                    o.messages = num(&row, "qnum");
                    let ls = pid_opt(num(&row, "lspid"));
                    let lr = pid_opt(num(&row, "lrpid"));
                    o.last_pid = lr.or(ls);
                }
            }
            o.creator_alive = o.creator_pid.map(pid_alive);
            o.last_alive = o.last_pid.map(pid_alive);
            inv.objects.push(o);
        }
    }
}

fn dev_shm(inv: &mut Inventory, holders: &Holders) {
    let Ok(rd) = fs::read_dir("/dev/shm") else {
        inv.notes.push(
            "/dev/shm is not readable: POSIX shared memory and semaphores are not listed".into(),
        );
        return;
    };
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if !m.is_file() {
            continue;
        }
        let file = e.file_name().to_string_lossy().into_owned();
        let (kind, name) = match file.strip_prefix("sem.") {
            Some(sem) => ("posix-sem", format!("posix-sem:/{sem}")),
            None if crate::ring::is_ring(&format!("/{file}")) => ("shm", format!("shm:/{file}")),
            None => ("posix-shm", format!("posix-shm:/{file}")),
        };
        let mut o = blank(kind, name, m.uid(), m.mode());
        if kind != "posix-sem" {
            o.size = Some(m.len());
        }
        o.holders = holders.file(m.dev(), m.ino());
        if kind == "shm" {
            match crate::ring::participants(&format!("/{file}")) {
                Ok(p) => o.participants = p,
                Err(crate::ring::Error::NotInitialised { .. }) => inv.notes.push(format!(
                    "shm:/{} is still being initialised (or its creator died doing so)",
                    file.escape_debug()
                )),
                Err(_) => {}
            }
        }
        inv.objects.push(o);
    }
}

fn mqueue(inv: &mut Inventory, holders: &Holders) {
    let mounted = fs::read_to_string("/proc/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split_whitespace().nth(1) == Some("/dev/mqueue"))
        })
        .unwrap_or(false);
    if !mounted {
        inv.notes.push(
            "/dev/mqueue is not mounted, so POSIX message queues are not listed: \
             mount it with `mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue` (as root)"
                .into(),
        );
        return;
    }
    let Ok(rd) = fs::read_dir("/dev/mqueue") else {
        return;
    };
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        let file = e.file_name().to_string_lossy().into_owned();
        let mut o = blank("mq", format!("mq:/{file}"), m.uid(), m.mode());
        // The file reads "QSIZE:n NOTIFY:... ": bytes queued.
        if let Ok(text) = fs::read_to_string(e.path()) {
            o.size = text
                .split_whitespace()
                .find_map(|f| f.strip_prefix("QSIZE:"))
                .and_then(|n| n.parse().ok());
        }
        o.messages = mq_messages(&format!("/{file}"));
        o.holders = holders.file(m.dev(), m.ino());
        inv.objects.push(o);
    }
}

/// Messages queued in a POSIX queue (needs read access to open it; opening does not consume).
fn mq_messages(name: &str) -> Option<u64> {
    let q = crate::mq::MessageQueue::options()
        .read(true)
        .write(false)
        .open(name)
        .ok()?;
    Some(q.attributes().ok()?.current_messages as u64)
}

fn unix_sockets(inv: &mut Inventory, holders: &Holders) {
    let Ok(text) = fs::read_to_string("/proc/net/unix") else {
        inv.notes
            .push("/proc/net/unix is not readable: Unix sockets are not listed".into());
        return;
    };
    let mut seen = HashMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let flags = u32::from_str_radix(f[3], 16).unwrap_or(0);
        let ty = u32::from_str_radix(f[4], 16).unwrap_or(0);
        let inode: u64 = f[6].parse().unwrap_or(0);
        let path = f[7..].join(" ");
        let listening = flags & 0x10000 != 0;
        let kind = match ty {
            1 => "unix",
            2 => "unix-dgram",
            5 => "unix-seqpacket",
            _ => continue,
        };
        // Accepted connections repeat the listener's path: list listeners and bound sockets.
        if kind != "unix-dgram" && !listening {
            continue;
        }
        let name = format!("{kind}:{path}");
        if seen.contains_key(&name) {
            continue;
        }
        let pids = holders.socket(inode);
        let (uid, mode) = if path.starts_with('@') {
            let uid = pids.first().and_then(|p| proc_uid(*p)).unwrap_or(0);
            (uid, 0o777)
        } else {
            match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_socket() => (m.uid(), m.mode()),
                _ => continue, // the file was removed; the socket lingers unreachable
            }
        };
        let mut o = blank(kind, name.clone(), uid, mode);
        o.listening = Some(true);
        o.holders = pids;
        seen.insert(name, ());
        inv.objects.push(o);
    }
}

/// FIFOs and Unix socket files have no kernel-wide table: list the ones the owner registry
/// knows (socket files only when no socket is bound to them any more).
fn registry_files(
    inv: &mut Inventory,
    holders: &Holders,
    registry: &HashMap<String, registry::Record>,
) {
    for r in registry.values() {
        let (kind, path) = if let Some(p) = r.object.strip_prefix("fifo:") {
            ("fifo", p)
        } else if let Some(p) = r.object.strip_prefix("unix:") {
            ("unix", p)
        } else {
            continue;
        };
        if inv.objects.iter().any(|o| {
            o.name == r.object
                || (kind == "unix" && o.name.split_once(':').map(|(_, p)| p) == Some(path))
        }) {
            continue;
        }
        let Ok(m) = fs::symlink_metadata(path) else {
            continue;
        };
        let ft = m.file_type();
        if (kind == "fifo" && !ft.is_fifo()) || (kind == "unix" && !ft.is_socket()) {
            continue;
        }
        let mut o = blank(kind, r.object.clone(), m.uid(), m.mode());
        if kind == "fifo" {
            o.holders = holders.file(m.dev(), m.ino());
        } else {
            o.listening = Some(false);
        }
        inv.objects.push(o);
    }
}

fn proc_uid(pid: i32) -> Option<u32> {
    fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid())
}

/// Which live processes hold which files, sockets and System V segments.
#[derive(Default)]
struct Holders {
    files: HashMap<(u64, u64), Vec<i32>>,
    sockets: HashMap<u64, Vec<i32>>,
    sysv_shm: HashMap<i32, Vec<i32>>,
}

impl Holders {
    fn scan() -> Holders {
        let mut h = Holders::default();
        let Ok(procs) = fs::read_dir("/proc") else {
            return h;
        };
        let shm_dev = fs::metadata("/dev/shm").map(|m| m.dev()).ok();
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(fds) = fs::read_dir(p.path().join("fd")) {
                for fd in fds.flatten() {
                    let Ok(target) = fs::read_link(fd.path()) else {
                        continue;
                    };
                    let t = target.to_string_lossy();
                    if let Some(ino) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']'))
                    {
                        if let Ok(ino) = ino.parse() {
                            push(h.sockets.entry(ino).or_default(), pid);
                        }
                    } else if t.starts_with('/')
                        && let Ok(m) = fs::metadata(fd.path())
                    {
                        push(h.files.entry((m.dev(), m.ino())).or_default(), pid);
                    }
                }
            }
            if let Ok(maps) = fs::read_to_string(p.path().join("maps")) {
                for line in maps.lines() {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    if f.len() < 6 {
                        continue;
                    }
                    let Ok(ino) = f[4].parse::<u64>() else {
                        continue;
                    };
                    if f[5] == "/SYSV00000000" || f[5].starts_with("/SYSV") {
                        // System V segments appear as /SYSV<key> with the shmid as inode.
                        push(h.sysv_shm.entry(ino as i32).or_default(), pid);
                    } else if f[5].starts_with("/dev/shm/")
                        && let Some(dev) = shm_dev
                    {
                        push(h.files.entry((dev, ino)).or_default(), pid);
                    }
                }
            }
        }
        h
    }

    fn file(&self, dev: u64, ino: u64) -> Vec<i32> {
        self.files.get(&(dev, ino)).cloned().unwrap_or_default()
    }
    fn socket(&self, ino: u64) -> Vec<i32> {
        self.sockets.get(&ino).cloned().unwrap_or_default()
    }
    fn sysv_shm(&self, id: i32) -> Vec<i32> {
        self.sysv_shm.get(&id).cloned().unwrap_or_default()
    }
}

fn push(v: &mut Vec<i32>, pid: i32) {
    if !v.contains(&pid) {
        v.push(pid);
    }
}

/// uid -> user name, from /etc/passwd.
struct Users(HashMap<u32, String>);

impl Users {
    fn load() -> Users {
        let text = fs::read_to_string("/etc/passwd").unwrap_or_default();
        Users(
            text.lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    Some((f.get(2)?.parse().ok()?, (*f.first()?).to_owned()))
                })
                .collect(),
        )
    }
    fn name(&self, uid: u32) -> Option<String> {
        self.0.get(&uid).cloned()
    }
}

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
}

/// Judges every object: stale only when it can be proven (a System V segment with no
/// attachments whose creator and last user are dead; an ipcx object whose registered creator
/// died and that no live process holds). Objects of other users are never stale unless
/// `all_users`.
pub fn judge(inv: &Inventory, all_users: bool) -> Vec<Verdict> {
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
            let mut v = if r.persistent {
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
                if o.attachments == Some(0) && creator_dead && last_dead {
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

/// An object name as `ipcx ls` prints it and `ipcx rm` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectName {
    /// `posix-shm:/NAME`
    PosixShm(String),
    /// `posix-sem:/NAME`
    PosixSem(String),
    /// `mq:/NAME`
    Mq(String),
    /// `sysv-shm:KEY` or `sysv-shm:id=ID`
    SysvShm(SysvRef),
    /// `sysv-sem:KEY` or `sysv-sem:id=ID`
    SysvSem(SysvRef),
    /// `sysv-mq:KEY` or `sysv-mq:id=ID`
    SysvMq(SysvRef),
    /// `fifo:PATH`
    Fifo(std::path::PathBuf),
    /// `unix:PATH` (also `unix-dgram:`, `unix-seqpacket:`): the socket file.
    UnixSocket(std::path::PathBuf),
    /// `shm:/NAME`: an ipcx ring.
    Ring(String),
}

/// A System V object, by key or by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysvRef {
    /// By key.
    Key(crate::sysv::Key),
    /// By id (what `IPC_PRIVATE` objects have).
    Id(i32),
}

/// Object kinds `ObjectName::parse` knows, for messages.
pub const OBJECT_KINDS: &str = "posix-shm:/NAME, posix-sem:/NAME, mq:/NAME, sysv-shm:KEY, \
     sysv-sem:KEY, sysv-mq:KEY (or id=ID), fifo:PATH, unix:PATH, shm:/NAME";

impl ObjectName {
    /// Parses an object name.
    pub fn parse(s: &str) -> Result<ObjectName, String> {
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("invalid object {s:?}: expected one of {OBJECT_KINDS}"))?;
        let posix = |n: &str| -> Result<String, String> {
            crate::name::PosixName::new(n)
                .map(|n| n.as_str().to_owned())
                .map_err(|e| e.to_string())
        };
        let sysv = |r: &str| -> Result<SysvRef, String> {
            match r.strip_prefix("id=") {
                Some(id) => id
                    .parse()
                    .map(SysvRef::Id)
                    .map_err(|_| format!("invalid System V id {id:?}")),
                None => crate::sysv::Key::parse(r).map(SysvRef::Key),
            }
        };
        Ok(match kind {
            "posix-shm" => ObjectName::PosixShm(posix(rest)?),
            "posix-sem" => ObjectName::PosixSem(posix(rest)?),
            "mq" => ObjectName::Mq(posix(rest)?),
            "shm" => ObjectName::Ring(posix(rest)?),
            "sysv-shm" => ObjectName::SysvShm(sysv(rest)?),
            "sysv-sem" => ObjectName::SysvSem(sysv(rest)?),
            "sysv-mq" => ObjectName::SysvMq(sysv(rest)?),
            "fifo" if !rest.is_empty() => ObjectName::Fifo(rest.into()),
            "unix" | "unix-dgram" | "unix-seqpacket" if !rest.is_empty() => {
                if rest.starts_with('@') {
                    return Err(format!(
                        "{s}: an abstract socket has no file to remove; it goes when its process closes it"
                    ));
                }
                ObjectName::UnixSocket(rest.into())
            }
            _ => {
                return Err(format!(
                    "invalid object {s:?}: expected one of {OBJECT_KINDS}"
                ));
            }
        })
    }
}

impl std::fmt::Display for ObjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sysv = |kind: &str, r: &SysvRef| match r {
            SysvRef::Key(k) => sysv_name(kind, k.0, 0),
            SysvRef::Id(id) => format!("{kind}:id={id}"),
        };
        match self {
            ObjectName::PosixShm(n) => write!(f, "posix-shm:{n}"),
            ObjectName::PosixSem(n) => write!(f, "posix-sem:{n}"),
            ObjectName::Mq(n) => write!(f, "mq:{n}"),
            ObjectName::SysvShm(r) => f.write_str(&sysv("sysv-shm", r)),
            ObjectName::SysvSem(r) => f.write_str(&sysv("sysv-sem", r)),
            ObjectName::SysvMq(r) => f.write_str(&sysv("sysv-mq", r)),
            ObjectName::Fifo(p) => write!(f, "fifo:{}", p.display()),
            ObjectName::UnixSocket(p) => write!(f, "unix:{}", p.display()),
            ObjectName::Ring(n) => write!(f, "shm:{n}"),
        }
    }
}

/// Why removing an object failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoveError {
    /// No such object.
    #[error("no {0}: nothing to remove (ipcx ls lists what exists)")]
    NotFound(String),
    /// The caller may not remove it.
    #[error("permission denied removing {0}: only its owner (or root) can")]
    PermissionDenied(String),
    /// The path holds something else (a FIFO name that is a regular file, a symlink...).
    #[error("{what} is not a {expected}; left untouched")]
    WrongType {
        /// The object.
        what: String,
        /// What it should have been.
        expected: &'static str,
    },
    /// Any other failure.
    #[error("removing {what}: {message}")]
    Other {
        /// The object.
        what: String,
        /// What went wrong.
        message: String,
    },
}

/// Removes one object.
pub fn remove(obj: &ObjectName) -> Result<(), RemoveError> {
    use crate::sysv::Key;
    let what = obj.to_string();
    let not_found = || RemoveError::NotFound(what.clone());
    let denied = || RemoveError::PermissionDenied(what.clone());
    let other = |e: &dyn std::fmt::Display| RemoveError::Other {
        what: what.clone(),
        message: e.to_string(),
    };
    let shm_err = |e: crate::sysv::shm::SysvShmError| match e {
        crate::sysv::shm::SysvShmError::NotFound { .. }
        | crate::sysv::shm::SysvShmError::Removed { .. } => not_found(),
        crate::sysv::shm::SysvShmError::PermissionDenied { .. } => denied(),
        e => other(&e),
    };
    let sem_err = |e: crate::sysv::sem::Error| match e {
        crate::sysv::sem::Error::NotFound { .. } | crate::sysv::sem::Error::Removed => not_found(),
        crate::sysv::sem::Error::PermissionDenied { .. } => denied(),
        e => other(&e),
    };
    match obj {
        ObjectName::PosixShm(n) => crate::shm::Shm::unlink(n).map_err(|e| match e {
            crate::shm::ShmError::NotFound { .. } => not_found(),
            crate::shm::ShmError::PermissionDenied { .. } => denied(),
            e => other(&e),
        }),
        ObjectName::PosixSem(n) => crate::sem::Semaphore::remove(n).map_err(|e| match e {
            crate::sem::Error::NotFound { .. } => not_found(),
            crate::sem::Error::PermissionDenied { .. } => denied(),
            e => other(&e),
        }),
        ObjectName::SysvShm(r) => {
            let id = match r {
                SysvRef::Id(id) => *id,
                SysvRef::Key(k) => crate::sysv::shm::Segment::open(Key(k.0))
                    .map_err(shm_err)?
                    .id(),
            };
            crate::sysv::shm::Segment::remove_id(id).map_err(shm_err)
        }
        ObjectName::SysvSem(r) => {
            let mut set = match r {
                SysvRef::Id(id) => crate::sysv::sem::SemaphoreSet::from_id(*id),
                SysvRef::Key(k) => crate::sysv::sem::SemaphoreSet::open(*k),
            }
            .map_err(sem_err)?;
            set.remove().map_err(sem_err)
        }
        ObjectName::Mq(n) => remove_mq(n),
        ObjectName::SysvMq(r) => remove_sysv_mq(*r),
        ObjectName::Fifo(p) => remove_file(p, &what, "FIFO", |t| t.is_fifo()),
        ObjectName::UnixSocket(p) => remove_file(p, &what, "socket", |t| t.is_socket()),
        ObjectName::Ring(n) => crate::ring::remove(n).map_err(|e| match e {
            crate::ring::Error::NotFound { .. } => not_found(),
            crate::ring::Error::PermissionDenied { .. } => denied(),
            crate::ring::Error::NotARing { .. } => RemoveError::WrongType {
                what: what.clone(),
                expected: "ipcx ring",
            },
            e => other(&e),
        }),
    }
}

fn remove_file(
    p: &std::path::Path,
    what: &str,
    expected: &'static str,
    is: impl Fn(&fs::FileType) -> bool,
) -> Result<(), RemoveError> {
    let m = fs::symlink_metadata(p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RemoveError::NotFound(what.to_owned()),
        std::io::ErrorKind::PermissionDenied => RemoveError::PermissionDenied(what.to_owned()),
        _ => RemoveError::Other {
            what: what.to_owned(),
            message: e.to_string(),
        },
    })?;
    if !is(&m.file_type()) {
        return Err(RemoveError::WrongType {
            what: what.to_owned(),
            expected,
        });
    }
    fs::remove_file(p).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => RemoveError::PermissionDenied(what.to_owned()),
        _ => RemoveError::Other {
            what: what.to_owned(),
            message: e.to_string(),
        },
    })
}

fn remove_mq(name: &str) -> Result<(), RemoveError> {
    let what = format!("mq:{name}");
    crate::mq::MessageQueue::unlink(name).map_err(|e| match e {
        crate::mq::OpenError::NotFound { .. } => RemoveError::NotFound(what),
        crate::mq::OpenError::PermissionDenied { .. } => RemoveError::PermissionDenied(what),
        e => RemoveError::Other {
            what,
            message: e.to_string(),
        },
    })
}

fn remove_sysv_mq(r: SysvRef) -> Result<(), RemoveError> {
    use crate::sysv::msg::{ControlError, MessageQueue, OpenError};
    let what = ObjectName::SysvMq(r).to_string();
    let q = match r {
        SysvRef::Key(k) => MessageQueue::open(k),
        SysvRef::Id(id) => MessageQueue::from_id(id),
    }
    .map_err(|e| match e {
        OpenError::NotFound { .. } | OpenError::NoSuchId { .. } => {
            RemoveError::NotFound(what.clone())
        }
        OpenError::PermissionDenied { .. } => RemoveError::PermissionDenied(what.clone()),
        e => RemoveError::Other {
            what: what.clone(),
            message: e.to_string(),
        },
    })?;
    q.remove().map_err(|e| match e {
        ControlError::Removed => RemoveError::NotFound(what.clone()),
        ControlError::PermissionDenied { .. } => RemoveError::PermissionDenied(what.clone()),
        e => RemoveError::Other {
            what: what.clone(),
            message: e.to_string(),
        },
    })
}
