//! `ipcx clean [--dry-run]`: remove what dead processes left behind, and only that.

use std::io::Write;

use ipcx::inventory::{self, JudgeOptions, ObjectName, RemoveError};

use crate::escape::escape;

/// Arguments of `ipcx clean`.
#[derive(Debug, clap::Args)]
pub struct CleanArgs {
    /// Show what would be removed and why, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also judge other users' objects (needs the right to remove them).
    #[arg(long)]
    pub all_users: bool,
    /// Also remove System V segments that ipcx did not create when the kernel shows them
    /// abandoned (no attachments, creator and last user dead). Without it they are kept: the
    /// program that made one may mean to attach it again.
    #[arg(long)]
    pub force_foreign: bool,
    /// Also explain every object that is kept.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Runs `ipcx clean`.
pub fn run(args: CleanArgs) -> anyhow::Result<()> {
    let inv = inventory::scan();
    for note in &inv.notes {
        eprintln!("note: {}", escape(note));
    }
    let opts = JudgeOptions::default()
        .all_users(args.all_users)
        .force_foreign(args.force_foreign);
    let verdicts = inventory::judge_with(&inv, opts);
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    let (mut removed, mut kept) = (0, 0);
    for v in &verdicts {
        let name = escape(&v.name);
        if !v.stale {
            kept += 1;
            if args.verbose || args.dry_run {
                writeln!(out, "keep    {name}: {}", escape(&v.reason))?;
            }
            if v.record_obsolete
                && !args.dry_run
                && let Some(r) = &v.record
            {
                ipcx::registry::forget(r.uid, &r.object);
            }
            continue;
        }
        if args.dry_run {
            writeln!(out, "remove  {name}: {}", escape(&v.reason))?;
            removed += 1;
            continue;
        }
        let result = ObjectName::parse(&v.name)
            .map_err(anyhow::Error::msg)
            .and_then(|n| inventory::remove_checked(&n, v.identity).map_err(Into::into));
        match result {
            Ok(()) => {
                removed += 1;
                writeln!(out, "removed {name}: {}", escape(&v.reason))?;
                if let Some(r) = &v.record {
                    ipcx::registry::forget(r.uid, &r.object);
                }
            }
            Err(e) if matches!(e.downcast_ref(), Some(RemoveError::Replaced { .. })) => {
                // Replaced between the scan and now: not ours to remove any more.
                kept += 1;
                writeln!(out, "keep    {name}: {}", escape(&e.to_string()))?;
            }
            Err(e) => {
                failed += 1;
                eprintln!("ipcx: could not remove {name}: {}", escape(&e.to_string()));
            }
        }
    }
    // Records of objects that no longer exist are forgotten.
    let present: std::collections::HashSet<&str> =
        inv.objects.iter().map(|o| o.name.as_str()).collect();
    for r in ipcx::registry::records(args.all_users) {
        if !present.contains(r.object.as_str())
            && (r.persistent || !r.owner_alive())
            && !args.dry_run
            && ipcx::registry::identity_of(&r.object).is_none()
        {
            ipcx::registry::forget(r.uid, &r.object);
        }
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    writeln!(
        out,
        "{verb} {removed}, kept {kept}{}",
        if args.verbose || args.dry_run {
            ""
        } else {
            " (--verbose says why)"
        }
    )?;
    if failed > 0 {
        anyhow::bail!("{failed} object(s) could not be removed");
    }
    Ok(())
}
