//! `ipcx deadlock [--json]`: the cycles of the wait-for graph of processes blocked on IPC
//! locks and semaphores (see [`ipcx::inventory::deadlocks`]); exit 1 when there is one.

use std::io::{self, Write};

use ipcx::inventory;

use crate::escape::escape;
use crate::exit::Exit;
use crate::json;

/// Arguments of `ipcx deadlock`.
#[derive(Debug, clap::Args)]
pub struct DeadlockArgs {
    /// Print one JSON document: `{"cycles": [{"text", "steps": [{"pid", "tid", "holds",
    /// "inferred", "waits_for"}]}], "waiting": N, "notes": [...]}`.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ipcx deadlock`.
pub fn run(args: DeadlockArgs) -> anyhow::Result<()> {
    let locks = inventory::locks();
    let cycles = inventory::deadlocks(&locks);
    let waiting: usize = locks
        .objects
        .iter()
        .map(|l| l.waiters.iter().filter(|w| w.op.waits_for_holder()).count())
        .sum();
    let inferred = cycles.iter().any(|c| c.steps.iter().any(|s| s.inferred));
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let doc = serde_json::json!({
            "cycles": cycles
                .iter()
                .map(|c| serde_json::json!({"text": c.to_string(), "steps": c.steps}))
                .collect::<Vec<_>>(),
            "waiting": waiting,
            "notes": locks.notes,
        });
        json::document(&mut out, &doc)?;
    } else {
        for note in &locks.notes {
            eprintln!("note: {}", escape(note));
        }
        for c in &cycles {
            writeln!(out, "deadlock: {}", escape(&c.to_string()))?;
        }
        if cycles.is_empty() {
            let threads = if waiting == 1 { "thread" } else { "threads" };
            writeln!(
                out,
                "no deadlock: {waiting} {threads} seen waiting on IPC locks and semaphores, none in a cycle"
            )?;
        } else if inferred {
            eprintln!(
                "note: a System V semaphore's holder is inferred (the last process that \
                 operated on it, GETPID): check that process before acting"
            );
        }
        out.flush()?;
    }
    if cycles.is_empty() {
        Ok(())
    } else {
        Err(Exit(1).into())
    }
}
