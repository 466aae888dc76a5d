//! `ipcx ls [--json]`: every IPC object on the machine; `ipcx ls --services [--json]`: every
//! live ipcx service (see [`ipcx::discovery`]); `ipcx ls --waiters [--json]`: every lock-like
//! object with its holder and waiters (see [`ipcx::inventory::locks`]).

use std::io::{self, Write};

use ipcx::discovery::{self, Filter, ServiceInfo};
use ipcx::inventory::{self, Lock, Object};

use crate::escape::escape;
use crate::json;

/// Arguments of `ipcx ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// List the live ipcx services instead (name, kind, endpoint, pid, alive, and the methods
    /// of an RPC service): the calling user's, or every user's when run as root.
    #[arg(long, conflicts_with = "waiters")]
    pub services: bool,
    /// List every lock-like object instead (robust mutexes, semaphores, futexes, and the
    /// queues someone is blocked on) with its holder and the threads waiting on it, as far as
    /// the kernel tells. A System V semaphore's holder is inferred: the last process that
    /// operated on it.
    #[arg(long)]
    pub waiters: bool,
}

/// Runs `ipcx ls`.
pub fn run(args: LsArgs) -> anyhow::Result<()> {
    if args.services {
        return services(args.json);
    }
    if args.waiters {
        return waiters(args.json);
    }
    let inv = inventory::scan();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.json {
        json::document(&mut out, &inv)?;
        return Ok(());
    }
    for note in &inv.notes {
        eprintln!("note: {}", escape(note));
    }
    let rows: Vec<Vec<String>> = inv.objects.iter().map(row).collect();
    let header = [
        "KIND",
        "NAME",
        "OWNER",
        "MODE",
        "SIZE",
        "MSGS",
        "CREATOR",
        "LAST/HOLDERS",
    ];
    table(&mut out, &header, &rows)?;
    if rows.is_empty() {
        writeln!(out, "(no IPC objects)")?;
    }
    Ok(())
}

/// Runs `ipcx ls --services`.
fn services(json: bool) -> anyhow::Result<()> {
    // Root sees every user's services; anyone else their own.
    let root = ipcx::trust::euid() == 0;
    // Records of dead processes are cleaned as they are read, never listed.
    let scan = discovery::scan(&Filter::new().all_users(root));
    for note in &scan.notes {
        eprintln!("note: {}", escape(note));
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if json {
        let doc: Vec<serde_json::Value> = scan.services.iter().map(service_json).collect();
        json::document(&mut out, &doc)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = scan
        .services
        .iter()
        .map(|s| {
            let methods = s
                .methods
                .iter()
                .map(|m| escape(&m.name).into_owned())
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                escape(&s.name).into_owned(),
                s.kind.to_string(),
                escape(&s.endpoint).into_owned(),
                s.pid.to_string(),
                if s.alive { "yes" } else { "no" }.to_owned(),
                if methods.is_empty() {
                    "-".into()
                } else {
                    methods
                },
            ]
        })
        .collect();
    let header = ["NAME", "KIND", "ENDPOINT", "PID", "ALIVE", "METHODS"];
    table(&mut out, &header, &rows)?;
    if rows.is_empty() {
        writeln!(out, "(no ipcx services)")?;
    }
    Ok(())
}

/// Runs `ipcx ls --waiters`.
fn waiters(json: bool) -> anyhow::Result<()> {
    let locks = inventory::locks();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if json {
        json::document(&mut out, &locks)?;
        return Ok(());
    }
    for note in &locks.notes {
        eprintln!("note: {}", escape(note));
    }
    let rows: Vec<Vec<String>> = locks.objects.iter().map(lock_row).collect();
    let header = [
        "KIND", "NAME", "STATE", "VALUE", "HOLDER", "IDLE", "WAITERS",
    ];
    table(&mut out, &header, &rows)?;
    if rows.is_empty() {
        writeln!(out, "(no lock-like objects)")?;
    }
    Ok(())
}

/// `pid 41`, `pid 41 (thread 42)`.
fn thread(pid: i32, tid: Option<i32>) -> String {
    match tid {
        Some(t) if t != pid => format!("pid {pid} (thread {t})"),
        _ => format!("pid {pid}"),
    }
}

fn lock_row(l: &Lock) -> Vec<String> {
    let holder = match l.holder {
        None => "-".to_owned(),
        Some(h) => {
            let mut s = if h.pid > 0 {
                thread(h.pid, h.tid)
            } else {
                format!("thread {}", h.tid.unwrap_or(0))
            };
            if !h.alive {
                s.push_str(" (dead)");
            }
            if h.inferred {
                s.push_str(" (inferred: last operator)");
            }
            s
        }
    };
    let mut waiters: Vec<String> = l
        .waiters
        .iter()
        .map(|w| format!("{} {}", thread(w.pid, Some(w.tid)), w.op.as_str()))
        .collect();
    if let Some(n) = l.kernel_waiters {
        let seen = l.waiters.len() as u64;
        if n > seen {
            waiters.push(format!("{} unseen", n - seen));
        }
    }
    vec![
        l.kind.to_owned(),
        escape(&l.name).into_owned(),
        l.state.as_str().to_owned(),
        l.value.map_or("-".into(), |v| v.to_string()),
        holder,
        l.idle_secs.map_or("-".into(), |s| format!("{s}s")),
        if waiters.is_empty() {
            "-".into()
        } else {
            waiters.join(", ")
        },
    ]
}

/// A service as `ls --services --json` prints it: exactly the keys `name`, `kind`, `endpoint`,
/// `pid`, `alive`, `methods` (each method with its name and codecs; empty unless RPC).
fn service_json(s: &ServiceInfo) -> serde_json::Value {
    let methods: Vec<serde_json::Value> = s
        .methods
        .iter()
        .map(|m| serde_json::json!({"name": m.name, "codecs": m.codecs}))
        .collect();
    serde_json::json!({
        "name": s.name,
        "kind": s.kind.as_str(),
        "endpoint": s.endpoint,
        "pid": s.pid,
        "alive": s.alive,
        "methods": methods,
    })
}

/// Prints `rows` under `header` in aligned columns (the last one unpadded).
fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  ", w = *w));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn row(o: &Object) -> Vec<String> {
    let alive = |pid: Option<i32>, alive: Option<bool>| match (pid, alive) {
        (Some(p), Some(true)) => format!("{p} (alive)"),
        (Some(p), Some(false)) => format!("{p} (dead)"),
        (Some(p), None) => p.to_string(),
        _ => "-".into(),
    };
    let last = if !o.participants.is_empty() {
        o.participants
            .iter()
            .map(|p| {
                let state = if p.alive { "alive" } else { "dead" };
                format!("{} {} ({state})", p.role, p.pid)
            })
            .collect::<Vec<_>>()
            .join(", ")
    } else if o.last_pid.is_some() {
        alive(o.last_pid, o.last_alive)
    } else if !o.holders.is_empty() {
        format!(
            "held by {}",
            o.holders
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    } else {
        "-".into()
    };
    let size = match (o.size, o.nsems) {
        (Some(s), _) => s.to_string(),
        (None, Some(n)) => format!("{n} sems"),
        _ => "-".into(),
    };
    vec![
        o.kind.to_owned(),
        escape(&o.name).into_owned(),
        o.user
            .as_deref()
            .map_or_else(|| o.uid.to_string(), |u| escape(u).into_owned()),
        o.mode.clone(),
        size,
        o.messages.map_or("-".into(), |m| m.to_string()),
        alive(o.creator_pid, o.creator_alive),
        last,
    ]
}
