//! The owner registry: which live process created which ipcx object.
//!
//! When an ipcx handle creates a named object that it will remove on drop, it records the object
//! with its own pid and process start time in a per-user directory
//! (`/tmp/.ipcx-owners-<uid>/`, mode 0700). Dropping or removing the object, or making it persist
//! ([`persist`]), removes the record. A record whose process is gone (the pid no longer exists,
//! or now belongs to a process with another start time) proves that the object was left behind
//! by a crash: that is what `ipcx clean` removes.
//!
//! The registry is best effort: if the directory cannot be used safely (it is not a directory
//! owned by this user with mode 0700) nothing is recorded, and `ipcx clean` says so.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A registry record: an object and the process that created it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

fn own_uid() -> u32 {
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// The calling user's registry directory, created if missing; `None` when it cannot be trusted.
fn own_dir(create: bool) -> Option<PathBuf> {
    let uid = own_uid();
    let dir = dir_for(uid);
    match fs::symlink_metadata(&dir) {
        Ok(m) => {
            if m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0 {
                Some(dir)
            } else {
                None
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
            fs::DirBuilder::new().mode(0o700).create(&dir).ok()?;
            own_dir(false)
        }
        Err(_) => None,
    }
}

fn entry_name(object: &str) -> String {
    let mut s = String::with_capacity(object.len());
    for c in object.chars() {
        match c {
            '%' => s.push_str("%25"),
            '/' => s.push_str("%2F"),
            c => s.push(c),
        }
    }
    s
}

fn object_name(entry: &str) -> String {
    entry.replace("%2F", "/").replace("%25", "%")
}

/// Records that this process created `object` and will remove it.
pub fn register(object: &str) {
    write_record(object, false)
}

/// Marks `object` as meant to outlive its creator: `ipcx clean` leaves it alone.
pub fn persist(object: &str) {
    write_record(object, true)
}

fn write_record(object: &str, persistent: bool) {
    let Some(dir) = own_dir(true) else { return };
    let Some(start) = process_start_time(std::process::id() as i32) else {
        return;
    };
    let path = dir.join(entry_name(object));
    let tmp = dir.join(format!(".{}.{}", std::process::id(), entry_name(object)));
    let write = || -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        let flag = if persistent { " persist" } else { "" };
        writeln!(f, "{} {}{flag}", std::process::id(), start)?;
        fs::rename(&tmp, &path)
    };
    if write().is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

/// Forgets `object` (it was removed, or made persistent on purpose).
pub fn unregister(object: &str) {
    if let Some(dir) = own_dir(false) {
        let _ = fs::remove_file(dir.join(entry_name(object)));
    }
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
    } else if let Some(d) = own_dir(false) {
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
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(text) = read_small(&e.path()) else {
                continue;
            };
            let mut it = text.split_whitespace();
            let (Some(pid), Some(start)) = (it.next(), it.next()) else {
                continue;
            };
            let (Ok(pid), Ok(start_time)) = (pid.parse(), start.parse()) else {
                continue;
            };
            out.push(Record {
                object: object_name(&name),
                pid,
                start_time,
                uid,
                persistent: it.next() == Some("persist"),
            });
        }
    }
    out.sort_by(|a, b| a.object.cmp(&b.object));
    out
}

/// Removes the record of `object` from `uid`'s registry (after `ipcx clean` removed it).
pub fn forget(uid: u32, object: &str) {
    let dir = dir_for(uid);
    if fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
        let _ = fs::remove_file(dir.join(entry_name(object)));
    }
}

fn read_small(p: &Path) -> io::Result<String> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)?;
    let mut s = String::new();
    io::Read::read_to_string(&mut io::Read::take(f, 256), &mut s)?;
    Ok(s)
}

/// A process's start time in clock ticks since boot (`/proc/PID/stat` field 22), or `None`
/// when no such process exists.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let rest = &stat[stat.rfind(')')? + 2..];
    // rest starts at field 3 (state); the start time is field 22.
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn pid_alive(pid: i32) -> bool {
    process_start_time(pid).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for o in ["posix-shm:/a", "fifo:/tmp/x%y/z", "sysv-mq:0x00000010"] {
            assert_eq!(object_name(&entry_name(o)), o);
            assert!(!entry_name(o).contains('/'));
        }
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

/// A registry record held by the handle that created an object: recorded on creation,
/// forgotten when dropped (the object was removed), or turned into a "persistent" record by
/// [`Registration::persist`].
#[derive(Debug)]
pub(crate) struct Registration {
    object: String,
    persisted: bool,
}

impl Registration {
    /// Records that this process created `object` and will remove it.
    pub(crate) fn new(object: String) -> Registration {
        register(&object);
        Registration {
            object,
            persisted: false,
        }
    }

    /// The object is kept on purpose: record that, so `ipcx clean` leaves it alone.
    pub(crate) fn persist(mut self) {
        persist(&self.object);
        self.persisted = true;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.persisted {
            unregister(&self.object);
        }
    }
}
