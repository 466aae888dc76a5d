//! `ipcx clean [--dry-run]`: remove what dead processes left behind, and only that.

use std::io::Write;

use ipcx::inventory::{self, ObjectName};

/// Arguments of `ipcx clean`.
#[derive(Debug, clap::Args)]
pub struct CleanArgs {
    /// Show what would be removed and why, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also judge other users' objects (needs the right to remove them).
    #[arg(long)]
    pub all_users: bool,
    /// Also explain every object that is kept.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Runs `ipcx clean`.
pub fn run(args: CleanArgs) -> anyhow::Result<()> {
    let inv = inventory::scan();
    let verdicts = inventory::judge(&inv, args.all_users);
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    let (mut removed, mut kept) = (0, 0);
    for v in &verdicts {
        if !v.stale {
            kept += 1;
            if args.verbose || args.dry_run {
                writeln!(out, "keep    {}: {}", v.name, v.reason)?;
            }
            continue;
        }
        if args.dry_run {
            writeln!(out, "remove  {}: {}", v.name, v.reason)?;
            removed += 1;
            continue;
        }
        let result = ObjectName::parse(&v.name)
            .map_err(anyhow::Error::msg)
            .and_then(|n| inventory::remove(&n).map_err(Into::into));
        match result {
            Ok(()) => {
                removed += 1;
                writeln!(out, "removed {}: {}", v.name, v.reason)?;
                if let Some(r) = &v.record {
                    ipcx::registry::forget(r.uid, &r.object);
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("ipcx: could not remove {}: {e}", v.name);
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
