//! Service discovery: which ipcx services live on this machine, and where to reach them.
//!
//! Every ipcx service (an RPC server, a pub/sub publisher, a mailbox, a push/pull distributor,
//! a ring publisher) lists itself while it lives: it holds a [`Registration`], which writes a
//! record when the service starts and removes it when the service stops. A record names the
//! service, its [`Kind`], its endpoint (the address string a client connects to), the process
//! serving it (pid and start time, to tell a recycled pid apart), a version and, for RPC, the
//! methods with the codecs each accepts.
//!
//! Records live in a per-user directory, `/tmp/.ipcx-services-<uid>/` (mode 0700, owned by that
//! user, never followed through a symlink), one small file per service, like the owner
//! [`crate::registry`]. A process killed with SIGKILL cannot remove its record:
//! readers check that the process still runs (same pid, same start time, same pid namespace),
//! never report a dead one as alive, and delete such stale records where they may. A record
//! naming a live process of another user is not believed.
//! [`discover`] returns the live services of the calling user; root can read every user's
//! directory ([`Filter::all_users`]).
//!
//! Records are read as hostile input: a file of 16 KiB or more is refused, a record that
//! does not parse is skipped with a note ([`scan`]), a directory not owned by the user it is
//! named after is not read at all.
//!
//! Listing is best effort: when the directory cannot be used, the service runs unlisted and a
//! warning goes to stderr, once per process.
//!
//! Record format (one line of text): `ipcx-service/1 pid=PID start=START [pidns=INODE]
//! kind=KIND version=V name=NAME endpoint=ENDPOINT [method=CODECS/METHOD]...`, with NAME,
//! ENDPOINT and METHOD percent-encoded and CODECS a comma-separated list (`postcard`,
//! `msgpack`). Fields this version does not know are skipped. The file is named
//! `PID-SEQUENCE`.
//!
//! ```no_run
//! use ipcx::discovery::{discover, Filter, Kind};
//!
//! for s in discover(&Filter::new().name("calc").kind(Kind::Rpc)) {
//!     println!("{} at {} (pid {})", s.name, s.endpoint, s.pid);
//! }
//! ```

use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::registry::{self, decode, encode, process_start_time};

/// The first word of every record (and its format version).
const MAGIC: &str = "ipcx-service/1";

/// A record this long or longer is refused (the reader reads no more than this).
const MAX_RECORD_LEN: usize = 16 << 10;

/// At most this many notes are kept (a directory full of garbage says so in a few lines).
const MAX_NOTES: usize = 32;

/// At most this many records are read from one directory.
const MAX_RECORDS: usize = 4096;

/// What kind of service a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Kind {
    /// An RPC server ([`crate::rpc::Service`]).
    Rpc,
    /// A pub/sub publisher.
    PubSub,
    /// A mailbox.
    Mailbox,
    /// A push/pull distributor.
    PushPull,
    /// A shared-memory ring publisher.
    Ring,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [
        Kind::Rpc,
        Kind::PubSub,
        Kind::Mailbox,
        Kind::PushPull,
        Kind::Ring,
    ];

    /// The kind's name as records and `ipcx ls --services` spell it: `rpc`, `pubsub`,
    /// `mailbox`, `pushpull`, `ring`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Rpc => "rpc",
            Kind::PubSub => "pubsub",
            Kind::Mailbox => "mailbox",
            Kind::PushPull => "pushpull",
            Kind::Ring => "ring",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown service kind {s:?}: one of rpc, pubsub, mailbox, pushpull, ring")
            })
    }
}

/// One method of an RPC service and the codecs it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodInfo {
    /// The method's name.
    pub name: String,
    /// The codecs it accepts (`postcard`; later also `msgpack`).
    pub codecs: Vec<String>,
}

impl MethodInfo {
    /// A method accepting `codecs`.
    pub fn new(name: &str, codecs: &[&str]) -> MethodInfo {
        MethodInfo {
            name: name.to_owned(),
            codecs: codecs.iter().map(|c| (*c).to_owned()).collect(),
        }
    }
}

/// A listed service, as a reader found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// The service's name (an RPC service's name; for the other kinds the name given when it
    /// was made, or its address).
    pub name: String,
    /// What kind of service it is.
    pub kind: Kind,
    /// Where to reach it: an endpoint address such as `unix:@calc` or `shm:/frames`.
    pub endpoint: String,
    /// The serving process.
    pub pid: i32,
    /// That process's start time (clock ticks since boot).
    pub start_time: u64,
    /// The user whose directory holds the record.
    pub uid: u32,
    /// The service's version (0 when it has none).
    pub version: u32,
    /// An RPC service's methods, sorted by name (empty for the other kinds).
    pub methods: Vec<MethodInfo>,
    /// Whether the serving process still runs. [`discover`] returns only live services.
    pub alive: bool,
}

/// Which services [`discover`] returns.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    name: Option<String>,
    kind: Option<Kind>,
    all_users: bool,
    include_dead: bool,
}

impl Filter {
    /// Every live service of the calling user.
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Only services of this name.
    pub fn name(mut self, name: &str) -> Filter {
        self.name = Some(name.to_owned());
        self
    }

    /// Only services of this kind.
    pub fn kind(mut self, kind: Kind) -> Filter {
        self.kind = Some(kind);
        self
    }

    /// Every user's services, not only the caller's (the system-wide view: root can read every
    /// user's directory; others get what they may read).
    pub fn all_users(mut self, all: bool) -> Filter {
        self.all_users = all;
        self
    }

    /// Also the records of processes that are gone (and could not be cleaned): `alive` tells
    /// them apart.
    pub fn include_dead(mut self, dead: bool) -> Filter {
        self.include_dead = dead;
        self
    }

    fn accepts(&self, s: &ServiceInfo) -> bool {
        self.name.as_deref().is_none_or(|n| n == s.name)
            && self.kind.is_none_or(|k| k == s.kind)
            && (self.include_dead || s.alive)
    }
}

/// What a [`scan`] found: the services, and notes about what it skipped.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Scan {
    /// The services that pass the filter, sorted by name, then kind, then pid.
    pub services: Vec<ServiceInfo>,
    /// What was skipped and why (an unusable directory, a record that does not parse), at
    /// most 32 notes and a last one counting the rest.
    pub notes: Vec<String>,
}

/// The live services that pass `filter` (see the [module docs](self)).
pub fn discover(filter: &Filter) -> Vec<ServiceInfo> {
    scan(filter).services
}

/// Like [`discover`], with notes about what was skipped. Records of dead processes are
/// removed on the way, from the caller's own directory (and from every directory, for root).
pub fn scan(filter: &Filter) -> Scan {
    let me = registry::own_uid();
    let mut dirs = Vec::new();
    if filter.all_users {
        if let Ok(rd) = fs::read_dir("/tmp") {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(uid) = name.strip_prefix(PREFIX)
                    && let Ok(uid) = uid.parse::<u32>()
                {
                    dirs.push(uid);
                }
            }
        }
        dirs.sort_unstable();
    } else {
        dirs.push(me);
    }
    let mut scan = Scan::default();
    let own_ns = pid_namespace();
    for uid in dirs {
        let dir = dir_for(uid);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() && m.uid() == uid && m.mode() & 0o022 == 0 => {}
            Ok(_) => {
                scan.notes.push(format!(
                    "{} is not a directory of uid {uid} that only it can write: not read",
                    dir.display()
                ));
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                scan.notes.push(format!("{}: {e}", dir.display()));
                continue;
            }
        }
        let may_clean = uid == me || me == 0;
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) => {
                scan.notes.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        for e in rd.flatten().take(MAX_RECORDS) {
            let Ok(entry) = e.file_name().into_string() else {
                continue;
            };
            if entry.starts_with('.') {
                continue;
            }
            let path = e.path();
            let parsed = match registry::read_small(&path) {
                Ok(text) => parse_record(&entry, &text, uid),
                // Removed since the directory was listed (its service stopped): not news.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => Err(e.to_string()),
            };
            let (mut s, ns) = match parsed {
                Ok(r) => r,
                Err(why) => {
                    scan.notes
                        .push(format!("{}: skipped: {why}", path.display()));
                    continue;
                }
            };
            // A pid of another pid namespace cannot be checked from here: not judged.
            if ns.is_some() && own_ns.is_some() && ns != own_ns {
                continue;
            }
            s.alive = process_start_time(s.pid) == Some(s.start_time);
            // A live process of another user is not this user's service: not believed (and
            // not cleaned: it may have changed its user after listing itself).
            if s.alive && !runs_as(s.pid, uid) {
                scan.notes.push(format!(
                    "{}: skipped: pid {} does not run as uid {uid}",
                    path.display(),
                    s.pid
                ));
                continue;
            }
            if !s.alive && may_clean {
                let _ = fs::remove_file(&path);
            }
            if filter.accepts(&s) {
                scan.services.push(s);
            }
        }
    }
    if scan.notes.len() > MAX_NOTES {
        let more = scan.notes.len() - MAX_NOTES;
        scan.notes.truncate(MAX_NOTES);
        scan.notes
            .push(format!("... and {more} more records skipped"));
    }
    scan.services.sort_by(|a, b| {
        (a.name.as_str(), a.kind, a.pid, a.endpoint.as_str()).cmp(&(
            b.name.as_str(),
            b.kind,
            b.pid,
            b.endpoint.as_str(),
        ))
    });
    scan
}

const PREFIX: &str = ".ipcx-services-";

/// The service directory of `uid`.
pub fn dir_for(uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/{PREFIX}{uid}"))
}

/// Whether the process `pid` runs as `uid` (the owner of `/proc/PID`).
fn runs_as(pid: i32, uid: u32) -> bool {
    fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.uid() == uid)
}

/// This process's pid namespace (the inode of `/proc/self/ns/pid`), when it can be read.
fn pid_namespace() -> Option<u64> {
    fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino())
}

/// The record line (without its newline). Exposed for fuzzing and tests.
#[doc(hidden)]
pub fn record_line(s: &ServiceInfo, pidns: Option<u64>) -> String {
    let mut line = format!("{MAGIC} pid={} start={}", s.pid, s.start_time);
    if let Some(ns) = pidns {
        line.push_str(&format!(" pidns={ns}"));
    }
    line.push_str(&format!(
        " kind={} version={} name={} endpoint={}",
        s.kind,
        s.version,
        encode(&s.name),
        encode(&s.endpoint)
    ));
    for m in &s.methods {
        line.push_str(&format!(
            " method={}/{}",
            m.codecs.join(","),
            encode(&m.name)
        ));
    }
    line
}

/// Parses one record: `entry` is its file name, `text` its content, `uid` the user whose
/// directory holds it. Returns the service (with `alive` false: not checked yet) and the pid
/// namespace it was written in, or why it is not a valid record. Exposed for fuzzing and
/// tests.
#[doc(hidden)]
pub fn parse_record(
    entry: &str,
    text: &[u8],
    uid: u32,
) -> Result<(ServiceInfo, Option<u64>), String> {
    let text = std::str::from_utf8(text).map_err(|_| "not UTF-8 text".to_owned())?;
    let mut it = text.split_ascii_whitespace();
    if it.next() != Some(MAGIC) {
        return Err(format!("does not start with {MAGIC:?}"));
    }
    if text.len() >= MAX_RECORD_LEN {
        return Err(format!("larger than {MAX_RECORD_LEN} bytes"));
    }
    let bad = |field: &str| format!("bad field {:?}", field.chars().take(40).collect::<String>());
    let (mut pid, mut start, mut ns, mut kind, mut version, mut name, mut endpoint) =
        (None, None, None, None, 0u32, None, None);
    let mut methods = Vec::new();
    for field in it {
        let Some((key, v)) = field.split_once('=') else {
            return Err(bad(field));
        };
        let ok = match key {
            "pid" => v
                .parse::<i32>()
                .ok()
                .filter(|p| *p > 0)
                .map(|p| pid = Some(p)),
            "start" => v.parse().ok().map(|t| start = Some(t)),
            "pidns" => v.parse().ok().map(|n| ns = Some(n)),
            "kind" => v.parse().ok().map(|k| kind = Some(k)),
            "version" => v.parse().ok().map(|n| version = n),
            "name" => decode(v).map(|n| name = Some(n)),
            "endpoint" => decode(v).map(|e| endpoint = Some(e)),
            "method" => v.split_once('/').and_then(|(codecs, m)| {
                let codecs: Vec<String> = codecs
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect();
                methods.push(MethodInfo {
                    name: decode(m)?,
                    codecs,
                });
                Some(())
            }),
            // Fields of later versions are skipped.
            _ => Some(()),
        };
        if ok.is_none() {
            return Err(bad(field));
        }
    }
    let missing = |what: &str| format!("no {what}");
    let pid = pid.ok_or_else(|| missing("pid"))?;
    // The file is named after the process that wrote it.
    if entry.split_once('-').map(|(p, _)| p) != Some(&pid.to_string()) {
        return Err(format!("file name does not match pid {pid}"));
    }
    methods.sort_by(|a: &MethodInfo, b| a.name.cmp(&b.name));
    let service = ServiceInfo {
        name: name.ok_or_else(|| missing("name"))?,
        kind: kind.ok_or_else(|| missing("kind"))?,
        endpoint: endpoint.ok_or_else(|| missing("endpoint"))?,
        pid,
        start_time: start.ok_or_else(|| missing("start time"))?,
        uid,
        version,
        methods,
        alive: false,
    };
    Ok((service, ns))
}

/// A service's listing, held for as long as the service runs: made by
/// [`Registration::new`], which writes the record, and removed when dropped.
///
/// Listing is best effort: when the record cannot be written, the service runs unlisted
/// ([`Registration::is_listed`] is false) and a warning goes to stderr once per process.
#[derive(Debug)]
pub struct Registration {
    path: Option<PathBuf>,
    pid: u32,
}

impl Registration {
    /// Lists the service `name` of kind `kind`, reached at `endpoint`, with `version` and (for
    /// RPC) `methods`, as served by this process.
    pub fn new(
        kind: Kind,
        name: &str,
        endpoint: &str,
        version: u32,
        methods: Vec<MethodInfo>,
    ) -> Registration {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        let unlisted = Registration { path: None, pid };
        let dir = match registry::private_dir(dir_for(registry::own_uid()), true) {
            Ok(d) => d,
            Err(e) => {
                warn(name, &e);
                return unlisted;
            }
        };
        let Some(start_time) = process_start_time(pid as i32) else {
            warn(name, &"/proc/self/stat is not readable");
            return unlisted;
        };
        let info = ServiceInfo {
            name: name.to_owned(),
            kind,
            endpoint: endpoint.to_owned(),
            pid: pid as i32,
            start_time,
            uid: 0,
            version,
            methods,
            alive: true,
        };
        let entry = format!("{pid}-{}", SEQ.fetch_add(1, Ordering::Relaxed));
        match registry::write_line(&dir, &entry, &record_line(&info, pid_namespace())) {
            Ok(()) => Registration {
                path: Some(dir.join(entry)),
                pid,
            },
            Err(e) => {
                warn(name, &e);
                unlisted
            }
        }
    }

    /// Whether the record was written (the service can be discovered).
    pub fn is_listed(&self) -> bool {
        self.path.is_some()
    }

    /// The record's file, when listed.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // A forked child does not own its parent's listing.
        if let Some(p) = &self.path
            && self.pid == std::process::id()
        {
            let _ = fs::remove_file(p);
        }
    }
}

/// Lists the service of a pattern or transport reached at `endpoint` (`SCHEME:ADDRESS`), named by
/// its address, with no version and no methods (see [`Registration::new`]).
pub(crate) fn listing(kind: Kind, endpoint: &dyn fmt::Display) -> Registration {
    let endpoint = endpoint.to_string();
    let name = endpoint
        .split_once(':')
        .map_or(endpoint.as_str(), |(_, a)| a);
    Registration::new(kind, name, &endpoint, 0, Vec::new())
}

/// Warns on stderr, once per process, that a service cannot be listed.
fn warn(name: &str, e: &dyn fmt::Display) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "ipcx: warning: cannot list the service {name:?} for discovery ({e}); \
             it runs, but `ipcx ls --services` will not show it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ServiceInfo {
        ServiceInfo {
            name: "calc one%/".into(),
            kind: Kind::Rpc,
            endpoint: "unix:@calc x".into(),
            pid: 42,
            start_time: 7,
            uid: 3,
            version: 2,
            methods: vec![
                MethodInfo::new("add", &["postcard"]),
                MethodInfo::new("mul/x y", &["postcard", "msgpack"]),
            ],
            alive: false,
        }
    }

    #[test]
    fn records_round_trip() {
        let s = sample();
        let line = record_line(&s, Some(99));
        let (back, ns) = parse_record("42-0", line.as_bytes(), 3).unwrap();
        assert_eq!(back, s);
        assert_eq!(ns, Some(99));
        // Unknown fields are skipped.
        let later = format!("{line} colour=blue");
        assert_eq!(parse_record("42-0", later.as_bytes(), 3).unwrap().0, s);
    }

    #[test]
    fn bad_records_are_refused() {
        let line = record_line(&sample(), None);
        assert!(parse_record("43-0", line.as_bytes(), 3).is_err());
        for bad in [
            "",
            "garbage",
            "ipcx-service/1 pid=42",
            "ipcx-service/1 pid=-1 start=1 kind=rpc name=a endpoint=b",
            "ipcx-service/1 pid=42 start=1 kind=nope name=a endpoint=b",
            "ipcx-service/1 pid=42 start=x kind=rpc name=a endpoint=b",
            "ipcx-service/1 pid=42 start=1 kind=rpc name=%zz endpoint=b",
            "ipcx-service/1 pid=42 start=1 kind=rpc name=a endpoint=b method=x",
            "ipcx-service/1 pid=42 start=1 kind=rpc name=a endpoint=b loose",
        ] {
            assert!(parse_record("42-0", bad.as_bytes(), 0).is_err(), "{bad}");
        }
        assert!(parse_record("42-0", b"\xff\xfe", 0).is_err());
    }

    #[test]
    fn kinds_parse() {
        for k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>(), Ok(k));
        }
        assert!("queue".parse::<Kind>().is_err());
    }

    #[test]
    fn own_registration_is_discovered_and_removed() {
        let name = format!("discovery-unit-{}", std::process::id());
        let reg = Registration::new(Kind::Mailbox, &name, "mq:/x", 1, Vec::new());
        if !reg.is_listed() {
            return;
        }
        let found = discover(&Filter::new().name(&name));
        assert_eq!(found.len(), 1);
        assert!(found[0].alive);
        assert_eq!(found[0].kind, Kind::Mailbox);
        assert!(discover(&Filter::new().name(&name).kind(Kind::Rpc)).is_empty());
        drop(reg);
        assert!(discover(&Filter::new().name(&name)).is_empty());
    }
}
