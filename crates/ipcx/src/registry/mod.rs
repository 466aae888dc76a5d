//! The owner registry: which live process created which ipcx object.
//!
//! When an ipcx handle creates a named object that it will remove on drop, it records the object
//! with its own pid and process start time in a per-user directory
//! (`/tmp/.ipcx-owners-<uid>/`, mode 0700). Dropping or removing the object, or making it persist
//! ([`persist`]), removes the record. A record whose process is gone (the pid no longer exists,
//! or now belongs to a process with another start time) proves that the object was left behind
//! by a crash: that is what `ipcx clean` removes.
//!
//! A record also holds the object's [`Identity`] (device and inode of a file in `/dev/shm`, of a
//! FIFO or socket file, or of a POSIX queue, taken with `fstat` on a queue descriptor; the id of
//! a System V object), because a name can be reused: after the object was removed, another
//! program may create a new one under the same name. `ipcx clean` removes only the very object
//! that was recorded. Records written by older versions of ipcx hold no identity; they are
//! treated conservatively: such an object is never judged stale (nothing proves it is the one
//! recorded), and `ipcx rm` removes it when you know it is.
//!
//! Record format (one line of text): `PID START [persist] [dev=D ino=I [btime=NS] | sysv-id=ID]
//! [object=NAME]`, with NAME percent-encoded. The record's file name is the percent-encoded
//! object name, or, when that would be too long for a file name, a prefix of it and a hash
//! (the object name is then read from the record itself).
//!
//! The registry is best effort: if the directory cannot be used safely (it is not a directory
//! owned by this user with mode 0700) or a record cannot be written, nothing is recorded, a
//! warning goes to stderr (once per process), and `ipcx clean` will not remove that object.
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

mod identity;
mod ownership;
mod process;

pub use identity::{Identity, identity_of};
pub(crate) use identity::{open_queue, queue_identity};
pub(crate) use ownership::{Ownership, Registration};
pub use process::{parse_start_time, pid_alive, process_start_time};

/// A registry record: an object and the process that created it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Record {
    /// The object, named as `ipcx ls` prints it (e.g. `posix-shm:/frames`).
    pub object: String,
    /// The creating process.
    pub pid: i32,
    /// That process's start time (clock ticks since boot), to tell a recycled pid apart.
    pub start_time: u64,
    /// The uid whose registry holds the record.
    pub uid: u32,
    /// The object was made to outlive its creator on purpose (`persist`): never stale.
    pub persistent: bool,
    /// Which object the name referred to when it was recorded; `None` in records written by
    /// older versions (or when it could not be found out).
    pub identity: Option<Identity>,
}

impl Record {
    /// Whether the creating process still runs (same pid and same start time).
    pub fn owner_alive(&self) -> bool {
        process_start_time(self.pid) == Some(self.start_time)
    }
}

/// The registry directory of `uid`.
pub fn dir_for(uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/.ipcx-owners-{uid}"))
}

pub(crate) fn own_uid() -> u32 {
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// The calling user's registry directory, created if missing.
fn own_dir(create: bool) -> io::Result<PathBuf> {
    private_dir(dir_for(own_uid()), create)
}

/// `dir`, when it is a directory (not a symlink) of the calling user with mode 0700; created
/// if missing and `create`. Shared with the service directory of [`crate::discovery`].
pub(crate) fn private_dir(dir: PathBuf, create: bool) -> io::Result<PathBuf> {
    let uid = own_uid();
    match fs::symlink_metadata(&dir) {
        Ok(m) => {
            if m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0 {
                Ok(dir)
            } else {
                Err(io::Error::other(format!(
                    "{} is not a directory of uid {uid} with mode 0700: not used",
                    dir.display()
                )))
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
            fs::DirBuilder::new().mode(0o700).create(&dir)?;
            private_dir(dir, false)
        }
        Err(e) => Err(e),
    }
}

/// Longest record file name: well under the 255 bytes of a file name, leaving room for the
/// temporary name's `.PID.` prefix.
const ENTRY_MAX: usize = 200;

pub(crate) fn encode(object: &str) -> String {
    let mut s = String::with_capacity(object.len());
    for c in object.chars() {
        match c {
            '%' => s.push_str("%25"),
            '/' => s.push_str("%2F"),
            c if c.is_whitespace() || c.is_control() => {
                let mut b = [0u8; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    s.push_str(&format!("%{byte:02X}"));
                }
            }
            c => s.push(c),
        }
    }
    s
}

pub(crate) fn decode(entry: &str) -> Option<String> {
    let b = entry.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// FNV-1a: a hash that stays the same across versions (record names must).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The record's file name for `object`: always a valid file name no longer than [`ENTRY_MAX`].
/// Exposed for fuzzing.
#[doc(hidden)]
pub fn entry_name(object: &str) -> String {
    let enc = encode(object);
    if enc.len() <= ENTRY_MAX && !enc.starts_with('.') {
        return enc;
    }
    let mut cut = ENTRY_MAX - 20;
    while !enc.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}~{:016x}",
        enc[..cut].trim_start_matches('.'),
        fnv1a(object)
    )
}

/// Records that this process created `object` and will remove it.
pub fn register(object: &str) {
    write_record(object, false)
}

/// Marks `object` as meant to outlive its creator: `ipcx clean` leaves it alone.
pub fn persist(object: &str) {
    write_record(object, true)
}

/// Warns on stderr, once per process, that records cannot be written.
fn warn(object: &str, e: &dyn std::fmt::Display) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "ipcx: warning: cannot record the creator of {object:?} in the owner registry ({e}); \
             `ipcx clean` will not remove it if this process dies"
        );
    }
}

/// The record line (without its newline). Exposed for fuzzing.
#[doc(hidden)]
pub fn record_line(
    pid: u32,
    start: u64,
    persistent: bool,
    identity: Option<Identity>,
    object: &str,
) -> String {
    let mut line = format!("{pid} {start}");
    if persistent {
        line.push_str(" persist");
    }
    match identity {
        Some(Identity::File { dev, ino, btime }) => {
            line.push_str(&format!(" dev={dev} ino={ino}"));
            if let Some(b) = btime {
                line.push_str(&format!(" btime={b}"));
            }
        }
        Some(Identity::Sysv { id }) => line.push_str(&format!(" sysv-id={id}")),
        None => {}
    }
    line.push_str(" object=");
    line.push_str(&encode(object));
    line
}

fn write_record(object: &str, persistent: bool) {
    let dir = match own_dir(true) {
        Ok(d) => d,
        Err(e) => return warn(object, &e),
    };
    let me = std::process::id();
    let Some(start) = process_start_time(me as i32) else {
        return warn(object, &"/proc/self/stat is not readable");
    };
    let line = record_line(me, start, persistent, identity_of(object), object);
    if let Err(e) = write_line(&dir, &entry_name(object), &line) {
        warn(object, &e);
    }
}

/// Writes `line` as the file `entry` of `dir`, atomically (a temporary file renamed over it),
/// mode 0600, never through a symlink. Shared with [`crate::discovery`].
pub(crate) fn write_line(dir: &Path, entry: &str, line: &str) -> io::Result<()> {
    let path = dir.join(entry);
    let tmp = dir.join(format!(".{}.{entry}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        writeln!(f, "{line}")?;
        fs::rename(&tmp, &path)
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Forgets `object` (it was removed, or made persistent on purpose).
pub fn unregister(object: &str) {
    if let Ok(dir) = own_dir(false) {
        let _ = fs::remove_file(dir.join(entry_name(object)));
    }
}

/// Parses one record: `entry` is its file name, `text` its content. `None` when it is not a
/// valid record (a hostile or damaged file is skipped, never trusted). Exposed for fuzzing.
#[doc(hidden)]
pub fn parse_record(entry: &str, text: &[u8], uid: u32) -> Option<Record> {
    if entry.starts_with('.') {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    let mut it = text.split_whitespace();
    let pid: i32 = it.next()?.parse().ok()?;
    let start_time: u64 = it.next()?.parse().ok()?;
    if pid <= 0 {
        return None;
    }
    let (mut persistent, mut dev, mut ino, mut btime, mut sysv_id, mut stored) =
        (false, None, None, None, None, None);
    for field in it {
        match field.split_once('=') {
            None if field == "persist" => persistent = true,
            Some(("dev", v)) => dev = Some(v.parse::<u64>().ok()?),
            Some(("ino", v)) => ino = Some(v.parse::<u64>().ok()?),
            Some(("btime", v)) => btime = Some(v.parse::<u64>().ok()?),
            Some(("sysv-id", v)) => sysv_id = Some(v.parse::<i32>().ok()?),
            Some(("object", v)) => stored = Some(decode(v)?),
            // Fields of later versions are skipped.
            _ => {}
        }
    }
    let identity = match (dev, ino, btime, sysv_id) {
        (Some(dev), Some(ino), btime, None) => Some(Identity::File { dev, ino, btime }),
        (None, None, None, Some(id)) => Some(Identity::Sysv { id }),
        (None, None, None, None) => None,
        _ => return None,
    };
    // The file name names the object; a hashed file name must match the object stored inside.
    let object = match stored {
        Some(o) if entry_name(&o) == entry => o,
        Some(_) => return None,
        None => decode(entry)?,
    };
    if entry_name(&object) != entry {
        return None;
    }
    Some(Record {
        object,
        pid,
        start_time,
        uid,
        persistent,
        identity,
    })
}

/// The records of the calling user, or of every user when `all_users` (root reads them all).
pub fn records(all_users: bool) -> Vec<Record> {
    let mut dirs = Vec::new();
    if all_users {
        if let Ok(rd) = fs::read_dir("/tmp") {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(uid) = name.strip_prefix(".ipcx-owners-")
                    && let Ok(uid) = uid.parse::<u32>()
                {
                    dirs.push((dir_for(uid), uid));
                }
            }
        }
    } else if let Ok(d) = own_dir(false) {
        dirs.push((d, own_uid()));
    }
    let mut out = Vec::new();
    for (dir, uid) in dirs {
        // Only trust a directory owned by the uid it is named after.
        if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
            continue;
        }
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let Ok(text) = read_small(&e.path()) else {
                continue;
            };
            out.extend(parse_record(&name, &text, uid));
        }
    }
    out.sort_by(|a, b| a.object.cmp(&b.object));
    out
}

/// Removes the record of `object` from `uid`'s registry (after `ipcx clean` removed it, or found
/// that the name now belongs to another object).
pub fn forget(uid: u32, object: &str) {
    let dir = dir_for(uid);
    if fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
        let _ = fs::remove_file(dir.join(entry_name(object)));
    }
}

/// Reads at most 16 KiB of a regular file, without following a symlink or blocking on a FIFO.
pub(crate) fn read_small(p: &Path) -> io::Result<Vec<u8>> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(p)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut v = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(f, 16 << 10), &mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let long = format!("mq:/{}", "q".repeat(255));
        let spaced = "fifo:/tmp/a b\nc";
        for o in [
            "posix-shm:/a",
            "fifo:/tmp/x%y/z",
            "sysv-mq:0x00000010",
            &long,
            spaced,
        ] {
            let entry = entry_name(o);
            assert!(entry.len() <= ENTRY_MAX, "{entry}");
            assert!(!entry.contains('/') && !entry.starts_with('.'), "{entry}");
            let line = record_line(7, 9, false, None, o);
            let r = parse_record(&entry, line.as_bytes(), 0).unwrap();
            assert_eq!(r.object, o);
        }
        assert_ne!(entry_name(&long), entry_name(&format!("{long}x")));
    }

    #[test]
    fn records_old_and_new() {
        let id = Identity::File {
            dev: 3,
            ino: 44,
            btime: Some(55),
        };
        let line = record_line(12, 34, true, Some(id), "posix-shm:/a");
        let r = parse_record("posix-shm:%2Fa", line.as_bytes(), 5).unwrap();
        assert_eq!((r.pid, r.start_time, r.uid), (12, 34, 5));
        assert!(r.persistent);
        assert_eq!(r.identity, Some(id));
        let sysv = record_line(
            12,
            34,
            false,
            Some(Identity::Sysv { id: 9 }),
            "sysv-shm:0x1",
        );
        let r = parse_record("sysv-shm:0x1", sysv.as_bytes(), 0).unwrap();
        assert_eq!(r.identity, Some(Identity::Sysv { id: 9 }));
        // Written by an older version: no identity.
        let r = parse_record("mq:%2Fq", b"12 34\n", 0).unwrap();
        assert_eq!((r.object.as_str(), r.identity), ("mq:/q", None));
        // A record stored under another object's file name is not believed.
        assert!(parse_record("mq:%2Fq", line.as_bytes(), 0).is_none());
        for bad in [
            &b""[..],
            b"x 1",
            b"1",
            b"-1 5",
            b"1 2 dev=3",
            b"1 2 ino=x",
            b"\xff 1",
        ] {
            assert!(parse_record("mq:%2Fq", bad, 0).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn stat_parsing() {
        let mut stat = b"42 (a) b) S".to_vec();
        for f in 4..=21 {
            stat.extend(format!(" {f}").bytes());
        }
        stat.extend(b" 777 23\n");
        assert_eq!(parse_start_time(&stat), Some(777));
        assert_eq!(parse_start_time(b"1 (x)"), None);
        assert_eq!(parse_start_time(b"1 (x) Z 1 2 3"), None);
        assert_eq!(parse_start_time(b")"), None);
    }

    #[test]
    fn own_process_is_alive_and_register_round_trips() {
        let me = std::process::id() as i32;
        assert!(pid_alive(me));
        assert!(!pid_alive(-1));
        let obj = format!("posix-shm:/ipcx-registry-test-{me}");
        register(&obj);
        let rec = records(false).into_iter().find(|r| r.object == obj);
        if let Some(rec) = rec {
            assert_eq!(rec.pid, me);
            assert!(rec.owner_alive());
        }
        unregister(&obj);
        assert!(!records(false).iter().any(|r| r.object == obj));
    }
}
