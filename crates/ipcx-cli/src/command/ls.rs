//! `ipcx ls [--json]`: every IPC object on the machine.

use std::io::{self, Write};

use ipcx::inventory::{self, Object};

use crate::escape::escape;

/// Arguments of `ipcx ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ipcx ls`.
pub fn run(args: LsArgs) -> anyhow::Result<()> {
    let inv = inventory::scan();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &inv)?;
        writeln!(out)?;
        return Ok(());
    }
    for note in &inv.notes {
        eprintln!("note: {}", escape(note));
    }
    let rows: Vec<[String; 8]> = inv.objects.iter().map(row).collect();
    let header = [
        "KIND",
        "NAME",
        "OWNER",
        "MODE",
        "SIZE",
        "MSGS",
        "CREATOR",
        "LAST/HOLDERS",
    ]
    .map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    if rows.is_empty() {
        writeln!(out, "(no IPC objects)")?;
    }
    Ok(())
}

fn row(o: &Object) -> [String; 8] {
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
    [
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
