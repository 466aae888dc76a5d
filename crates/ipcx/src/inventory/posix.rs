//! POSIX shared memory, semaphores (`/dev/shm`) and message queues (`/dev/mqueue`).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

use super::holders::Holders;
use super::{Inventory, blank};
use crate::registry::{self, Identity};

pub(super) fn dev_shm(inv: &mut Inventory, holders: &Holders) {
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
                Err(crate::ring::RingError::NotInitialised { .. }) => inv.notes.push(format!(
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

pub(super) fn mqueue(
    inv: &mut Inventory,
    holders: &Holders,
    registry: &HashMap<String, registry::Record>,
) {
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
pub(super) fn read_regular_nonblocking(p: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
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
