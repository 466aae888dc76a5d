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

use crate::registry::{self, Identity, pid_alive};

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

/// Parses the text of a `/proc/sysvipc` table (a header line of column names, then one row a
/// line) into rows of named columns; `None` without a header. Exposed for fuzzing; the scan
/// uses it.
#[doc(hidden)]
pub fn parse_table(text: &[u8]) -> Option<Vec<HashMap<String, String>>> {
    let text = String::from_utf8_lossy(text);
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

/// Parses the text of one `/proc/sysvipc/{shm,sem,msg}` table (`kind` is `sysv-shm`,
/// `sysv-sem` or `sysv-mq`) into objects, with nothing filled in that needs other sources
/// (holders, liveness). Rows that do not parse are skipped. Exposed for fuzzing; the scan uses
/// it.
#[doc(hidden)]
pub fn parse_sysv(kind: &'static str, text: &[u8]) -> Vec<Object> {
    let pid_opt = |p: Option<i32>| p.filter(|p| *p > 0);
    let Some(rows) = parse_table(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
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
        let mut o = blank(kind, crate::sysv::name(kind, key, id), uid, perms);
        o.id = Some(id);
        o.identity = Some(Identity::Sysv { id });
        match kind {
            "sysv-shm" => {
                o.size = num(&row, "size");
                o.attachments = num(&row, "nattch");
                o.creator_pid = pid_opt(num(&row, "cpid"));
                o.last_pid = pid_opt(num(&row, "lpid"));
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
        out.push(o);
    }
    out
}

fn num<T: std::str::FromStr>(row: &HashMap<String, String>, col: &str) -> Option<T> {
    row.get(col)?.parse().ok()
}

fn sysv(inv: &mut Inventory, holders: &Holders) {
    for (kind, file) in [
        ("sysv-shm", "/proc/sysvipc/shm"),
        ("sysv-sem", "/proc/sysvipc/sem"),
        ("sysv-mq", "/proc/sysvipc/msg"),
    ] {
        let Ok(text) = fs::read(file) else {
            inv.notes.push(format!(
                "{file} is not readable: System V objects are not listed (is /proc mounted?)"
            ));
            continue;
        };
        for mut o in parse_sysv(kind, &text) {
            if kind == "sysv-shm"
                && let Some(id) = o.id
            {
                o.holders = holders.sysv_shm(id);
            }
            o.creator_alive = o.creator_pid.map(pid_alive);
            o.last_alive = o.last_pid.map(pid_alive);
            inv.objects.push(o);
        }
    }
}

fn dev_shm(inv: &mut Inventory, holders: &Holders) {
    let files = regular_files(
        inv,
        "/dev/shm",
        "/dev/shm is not readable: POSIX shared memory and semaphores are not listed",
    );
    for (_, m, file) in files {
        let (kind, name) = match file.strip_prefix("sem.") {
            Some(sem) => ("posix-sem", format!("posix-sem:/{sem}")),
            None if crate::ring::is_ring(&format!("/{file}")) => ("shm", format!("shm:/{file}")),
            None => ("posix-shm", format!("posix-shm:/{file}")),
        };
        let mut o = blank(kind, name, m.uid(), m.mode());
        if kind != "posix-sem" {
            o.size = Some(m.len());
        }
        o.identity = Some(Identity::of_file(&m));
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

/// The regular files of `dir`: path, metadata and file name. Notes `unreadable` (and finds
/// nothing) when the directory cannot be read.
fn regular_files(
    inv: &mut Inventory,
    dir: &str,
    unreadable: &str,
) -> Vec<(std::path::PathBuf, fs::Metadata, String)> {
    let Ok(rd) = fs::read_dir(dir) else {
        inv.notes.push(unreadable.into());
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let m = e.metadata().ok().filter(|m| m.is_file())?;
            Some((e.path(), m, e.file_name().to_string_lossy().into_owned()))
        })
        .collect()
}

/// The note `ipcx ls` and `ipcx clean` print when `/dev/mqueue` is not mounted.
pub const MQUEUE_NOT_MOUNTED: &str = "POSIX queues not listed: /dev/mqueue is not mounted \
     (mount -t mqueue none /dev/mqueue); only the queues the owner registry knows are shown";

/// Whether an mqueue file system is mounted on `/dev/mqueue`.
fn mqueue_mounted() -> bool {
    fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines().any(|l| {
                let mut f = l.split_whitespace();
                f.nth(1) == Some("/dev/mqueue") && f.next() == Some("mqueue")
            })
        })
        .unwrap_or(false)
}

fn mqueue(inv: &mut Inventory, holders: &Holders, registry: &HashMap<String, registry::Record>) {
    if !mqueue_mounted() {
        inv.notes.push(MQUEUE_NOT_MOUNTED.into());
        registry_queues(inv, registry);
        return;
    }
    let files = regular_files(
        inv,
        "/dev/mqueue",
        "/dev/mqueue is not readable: POSIX queues are not listed",
    );
    for (path, m, file) in files {
        let mut o = blank("mq", format!("mq:/{file}"), m.uid(), m.mode());
        // The file reads "QSIZE:n NOTIFY:... ": bytes queued.
        if let Ok(text) = read_regular_nonblocking(&path, 4096) {
            o.size = parse_mqueue_qsize(&text);
        }
        o.messages = mq_messages(&format!("/{file}"));
        o.identity = Some(Identity::of_file(&m));
        o.holders = holders.file(m.dev(), m.ino());
        inv.objects.push(o);
    }
}

/// Without `/dev/mqueue`, the queues the owner registry knows are still found, with `mq_open`.
fn registry_queues(inv: &mut Inventory, registry: &HashMap<String, registry::Record>) {
    for r in registry.values() {
        let Some(name) = r.object.strip_prefix("mq:") else {
            continue;
        };
        let Ok(fd) = registry::open_queue(name) else {
            continue;
        };
        let Ok(m) = fs::File::from(fd).metadata() else {
            continue;
        };
        let mut o = blank("mq", r.object.clone(), m.uid(), m.mode());
        o.identity = Some(Identity::of_file(&m));
        o.messages = mq_messages(name);
        inv.objects.push(o);
    }
}

/// The bytes queued, from the text of a `/dev/mqueue` file (`QSIZE:n NOTIFY:...`).
#[doc(hidden)]
pub fn parse_mqueue_qsize(text: &[u8]) -> Option<u64> {
    String::from_utf8_lossy(text)
        .split_whitespace()
        .find_map(|f| f.strip_prefix("QSIZE:"))
        .and_then(|n| n.parse().ok())
}

/// Reads at most `max` bytes of a regular file, opened without following a symlink and without
/// blocking (a FIFO put where a file was expected is refused, never waited on).
fn read_regular_nonblocking(p: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(p)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut v = Vec::new();
    f.take(max).read_to_end(&mut v)?;
    Ok(v)
}

/// Messages queued in a POSIX queue (needs read access to open it; opening does not consume).
fn mq_messages(name: &str) -> Option<u64> {
    let q = crate::mq::MessageQueue::options()
        .read(true)
        .write(false)
        .trust(crate::trust::Trust::any_user())
        .open(name)
        .ok()?;
    Some(q.attributes().ok()?.current_messages as u64)
}

/// One bound Unix socket, as `/proc/net/unix` lists it.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixSocketLine {
    /// `unix`, `unix-dgram` or `unix-seqpacket`.
    pub kind: &'static str,
    /// The socket inode.
    pub inode: u64,
    /// The path (`@NAME` for an abstract socket).
    pub path: String,
    /// Listening (stream, seqpacket).
    pub listening: bool,
}

/// Parses the text of `/proc/net/unix`: the bound sockets, one entry per line that names a
/// path (lines that do not parse are skipped). Exposed for fuzzing; the scan uses it.
#[doc(hidden)]
pub fn parse_proc_net_unix(text: &[u8]) -> Vec<UnixSocketLine> {
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let flags = u32::from_str_radix(f[3], 16).unwrap_or(0);
        let ty = u32::from_str_radix(f[4], 16).unwrap_or(0);
        let Ok(inode) = f[6].parse() else { continue };
        let kind = match ty {
            1 => "unix",
            2 => "unix-dgram",
            5 => "unix-seqpacket",
            _ => continue,
        };
        out.push(UnixSocketLine {
            kind,
            inode,
            path: f[7..].join(" "),
            listening: flags & 0x10000 != 0,
        });
    }
    out
}

fn unix_sockets(inv: &mut Inventory, holders: &Holders) {
    let Ok(text) = fs::read("/proc/net/unix") else {
        inv.notes
            .push("/proc/net/unix is not readable: Unix sockets are not listed".into());
        return;
    };
    let mut seen = HashMap::new();
    for s in parse_proc_net_unix(&text) {
        // Accepted connections repeat the listener's path: list listeners and bound sockets.
        if s.kind != "unix-dgram" && !s.listening {
            continue;
        }
        let name = format!("{}:{}", s.kind, s.path);
        if seen.contains_key(&name) {
            continue;
        }
        let pids = holders.socket(s.inode);
        let (uid, mode, identity) = if s.path.starts_with('@') {
            let uid = pids.first().and_then(|p| proc_uid(*p)).unwrap_or(0);
            (uid, 0o777, None)
        } else {
            match fs::symlink_metadata(&s.path) {
                Ok(m) if m.file_type().is_socket() => {
                    (m.uid(), m.mode(), Some(Identity::of_file(&m)))
                }
                _ => continue, // the file was removed; the socket lingers unreachable
            }
        };
        let mut o = blank(s.kind, name.clone(), uid, mode);
        o.listening = Some(true);
        o.holders = pids;
        o.identity = identity;
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
        o.identity = Some(Identity::of_file(&m));
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
        // Names of existing objects: any program may have made them, control characters
        // included, and `ipcx rm` must be able to remove them (ipcx never creates such names).
        let posix = |n: &str| -> Result<String, String> {
            crate::name::PosixName::existing(n)
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
            SysvRef::Key(k) => crate::sysv::name(kind, k.0, 0),
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
    /// The name now refers to another object than the one expected (see [`remove_checked`]):
    /// left untouched.
    #[error(
        "{what} is now another object ({found}) than the one expected ({expected}); left untouched"
    )]
    Replaced {
        /// The object.
        what: String,
        /// The identity expected.
        expected: Identity,
        /// The identity found.
        found: Identity,
    },
}

/// Removes one object, and forgets the owner record this user's registry holds for it.
pub fn remove(obj: &ObjectName) -> Result<(), RemoveError> {
    remove_checked(obj, None)
}

/// Removes one object if it is still the object `expected` (when given): same device and inode,
/// or same System V id, checked right before removing. The owner record of the removed object
/// (this user's) is forgotten.
///
/// Objects in `/dev/shm`, FIFOs and socket files are looked at without being opened (or, to
/// read a ring's header, opened without blocking and without following a symlink), so a FIFO
/// put under a shared-memory name is refused at once, never waited on.
pub fn remove_checked(obj: &ObjectName, expected: Option<Identity>) -> Result<(), RemoveError> {
    let what = obj.to_string();
    let result = remove_inner(obj, &what, expected);
    if let Ok(removed) | Err((_, removed)) = &result
        && let Some(id) = removed
    {
        // Forget the record, whatever name (decimal key, id=) the object was given.
        let kind = what.split_once(':').map_or("", |(k, _)| k);
        for r in registry::records(false) {
            if r.identity.is_some_and(|r| r.same_object(id)) && r.object.starts_with(kind) {
                registry::unregister(&r.object);
            }
        }
    }
    match result {
        Ok(_) => {
            registry::unregister(&what);
            Ok(())
        }
        Err((e, _)) => {
            if matches!(e, RemoveError::NotFound(_)) {
                registry::unregister(&what);
            }
            Err(e)
        }
    }
}

type Removal = Result<Option<Identity>, (RemoveError, Option<Identity>)>;

fn remove_inner(obj: &ObjectName, what: &str, expected: Option<Identity>) -> Removal {
    let not_found = || RemoveError::NotFound(what.to_owned());
    let denied = || RemoveError::PermissionDenied(what.to_owned());
    let other = |e: &dyn std::fmt::Display| RemoveError::Other {
        what: what.to_owned(),
        message: e.to_string(),
    };
    let check = |found: Identity| -> Result<(), (RemoveError, Option<Identity>)> {
        match expected {
            Some(e) if !e.same_object(&found) => Err((
                RemoveError::Replaced {
                    what: what.to_owned(),
                    expected: e,
                    found,
                },
                None,
            )),
            _ => Ok(()),
        }
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
    let dev_shm = |n: &str, prefix: &str| {
        std::path::Path::new("/dev/shm").join(format!("{prefix}{}", n.trim_start_matches('/')))
    };
    let no_id = |e: RemoveError| (e, None);
    match obj {
        ObjectName::PosixShm(n) => remove_path(
            &dev_shm(n, ""),
            what,
            "shared-memory object",
            expected,
            |t| t.is_file(),
        ),
        ObjectName::PosixSem(n) => {
            remove_path(&dev_shm(n, "sem."), what, "semaphore", expected, |t| {
                t.is_file()
            })
        }
        ObjectName::Ring(n) => {
            let path = dev_shm(n, "");
            let m = lstat(&path, what).map_err(no_id)?;
            if !m.is_file() || !crate::ring::is_ring(n) {
                return Err(no_id(RemoveError::WrongType {
                    what: what.to_owned(),
                    expected: "ipcx ring",
                }));
            }
            remove_path(&path, what, "ipcx ring", expected, |t| t.is_file())
        }
        ObjectName::SysvShm(r) => {
            let seg = match r {
                SysvRef::Id(id) => crate::sysv::shm::Segment::from_id(*id),
                // Removal is up to the kernel's permission check, whoever owns the segment.
                SysvRef::Key(k) => crate::sysv::shm::SegmentOptions::new()
                    .trust(crate::trust::Trust::any_user())
                    .open(*k),
            }
            .map_err(|e| no_id(shm_err(e)))?;
            let id = Identity::Sysv { id: seg.id() };
            check(id)?;
            crate::sysv::shm::Segment::remove_id(seg.id()).map_err(|e| (shm_err(e), Some(id)))?;
            Ok(Some(id))
        }
        ObjectName::SysvSem(r) => {
            let mut set = match r {
                SysvRef::Id(id) => crate::sysv::sem::SemaphoreSet::from_id(*id),
                SysvRef::Key(k) => crate::sysv::sem::SemaphoreSet::options()
                    .trust(crate::trust::Trust::any_user())
                    .open(*k, 0),
            }
            .map_err(|e| no_id(sem_err(e)))?;
            let id = Identity::Sysv { id: set.id() };
            check(id)?;
            set.remove().map_err(|e| (sem_err(e), Some(id)))?;
            Ok(Some(id))
        }
        ObjectName::Mq(n) => {
            let found = registry::queue_identity(n).ok();
            match found {
                Some(found) => check(found)?,
                // Nothing proves it is still the object expected: leave it.
                None if expected.is_some() => {
                    return Err(no_id(other(
                        &"cannot open it to check that it is still the queue recorded",
                    )));
                }
                None => {}
            }
            remove_mq(n).map_err(|e| (e, found))?;
            Ok(found)
        }
        ObjectName::SysvMq(r) => remove_sysv_mq(*r, expected),
        ObjectName::Fifo(p) => remove_path(p, what, "FIFO", expected, |t| t.is_fifo()),
        ObjectName::UnixSocket(p) => remove_path(p, what, "socket", expected, |t| t.is_socket()),
    }
}

fn lstat(p: &std::path::Path, what: &str) -> Result<fs::Metadata, RemoveError> {
    fs::symlink_metadata(p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RemoveError::NotFound(what.to_owned()),
        std::io::ErrorKind::PermissionDenied => RemoveError::PermissionDenied(what.to_owned()),
        _ => RemoveError::Other {
            what: what.to_owned(),
            message: e.to_string(),
        },
    })
}

/// Unlinks the file `p` (never opened: a FIFO is not waited on, a symlink not followed) if it
/// is of the expected type and, when `expected` is given, still that very file.
fn remove_path(
    p: &std::path::Path,
    what: &str,
    expected_type: &'static str,
    expected: Option<Identity>,
    is: impl Fn(&fs::FileType) -> bool,
) -> Removal {
    let m = lstat(p, what).map_err(|e| (e, None))?;
    if !is(&m.file_type()) {
        return Err((
            RemoveError::WrongType {
                what: what.to_owned(),
                expected: expected_type,
            },
            None,
        ));
    }
    let found = Identity::of_file(&m);
    if let Some(e) = expected
        && !e.same_object(&found)
    {
        return Err((
            RemoveError::Replaced {
                what: what.to_owned(),
                expected: e,
                found,
            },
            None,
        ));
    }
    fs::remove_file(p).map_err(|e| {
        let err = match e.kind() {
            std::io::ErrorKind::NotFound => RemoveError::NotFound(what.to_owned()),
            // /dev/shm and /tmp are sticky: only the owner (or root) may unlink.
            std::io::ErrorKind::PermissionDenied => RemoveError::PermissionDenied(what.to_owned()),
            _ => RemoveError::Other {
                what: what.to_owned(),
                message: e.to_string(),
            },
        };
        (err, Some(found))
    })?;
    Ok(Some(found))
}

fn remove_mq(name: &str) -> Result<(), RemoveError> {
    let what = format!("mq:{name}");
    let pname = crate::name::PosixName::existing(name).map_err(|e| RemoveError::Other {
        what: what.clone(),
        message: e.to_string(),
    })?;
    crate::sys::mq::mq_unlink(&pname).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RemoveError::NotFound(what),
        std::io::ErrorKind::PermissionDenied => RemoveError::PermissionDenied(what),
        _ => RemoveError::Other {
            what,
            message: e.to_string(),
        },
    })
}

fn remove_sysv_mq(r: SysvRef, expected: Option<Identity>) -> Removal {
    use crate::sysv::msg::{ControlError, MessageQueue, OpenError};
    let what = ObjectName::SysvMq(r).to_string();
    let q = match r {
        // Removal is up to the kernel's permission check, whoever owns the queue.
        SysvRef::Key(k) => MessageQueue::options()
            .trust(crate::trust::Trust::any_user())
            .open(k),
        SysvRef::Id(id) => MessageQueue::from_id(id),
    }
    .map_err(|e| {
        let e = match e {
            OpenError::NotFound { .. } | OpenError::NoSuchId { .. } => {
                RemoveError::NotFound(what.clone())
            }
            OpenError::PermissionDenied { .. } => RemoveError::PermissionDenied(what.clone()),
            e => RemoveError::Other {
                what: what.clone(),
                message: e.to_string(),
            },
        };
        (e, None)
    })?;
    let found = Identity::Sysv { id: q.id() };
    if let Some(e) = expected
        && !e.same_object(&found)
    {
        return Err((
            RemoveError::Replaced {
                what,
                expected: e,
                found,
            },
            None,
        ));
    }
    q.remove().map_err(|e| {
        let e = match e {
            ControlError::Removed => RemoveError::NotFound(what.clone()),
            ControlError::PermissionDenied { .. } => RemoveError::PermissionDenied(what.clone()),
            e => RemoveError::Other {
                what: what.clone(),
                message: e.to_string(),
            },
        };
        (e, Some(found))
    })?;
    Ok(Some(found))
}
