//! Bound Unix sockets (`/proc/net/unix`) and the FIFOs and socket files the owner registry knows.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::holders::{Holders, proc_uid};
use super::{Inventory, blank};
use crate::registry::{self, Identity};

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

pub(super) fn unix_sockets(inv: &mut Inventory, holders: &Holders) {
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
pub(super) fn registry_files(
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
