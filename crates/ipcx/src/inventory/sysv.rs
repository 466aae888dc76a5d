//! System V objects, from the `/proc/sysvipc` tables.

use std::collections::HashMap;
use std::fs;

use super::holders::Holders;
use super::{Inventory, Object, blank};
use crate::registry::{Identity, pid_alive};

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

pub(super) fn sysv(inv: &mut Inventory, holders: &Holders) {
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
