//! `ipcx clean [--dry-run]`: remove what dead processes left behind, and only that.

use std::io::Write;

use ipcx::inventory::{self, JudgeOptions, ObjectName, RemoveError};

use crate::escape::escape;
use crate::json;

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
    /// Print one JSON document instead of text: `dry_run`, `objects` (every object judged:
    /// `name`, `action` (`remove` in a dry run, `removed`, `keep` or `failed`) and `reason`),
    /// and the counts `removed`, `kept`, `failed`.
    #[arg(long)]
    pub json: bool,
}

/// One object as `clean --json` prints it.
#[derive(serde::Serialize)]
struct Verdict {
    name: String,
    action: String,
    reason: String,
}

/// The document `clean --json` prints.
#[derive(serde::Serialize)]
struct Document {
    dry_run: bool,
    objects: Vec<Verdict>,
    removed: u64,
    kept: u64,
    failed: u64,
}

/// What `clean` prints: text lines as it goes, or one JSON document at the end.
struct Report<W: Write> {
    out: W,
    json: Option<Vec<Verdict>>,
    /// Text: also print the objects kept.
    explain: bool,
}

impl<W: Write> Report<W> {
    /// One object: `action` is `remove` (dry run), `removed`, `keep` or `failed`.
    fn object(&mut self, action: &str, name: &str, reason: &str) -> std::io::Result<()> {
        if let Some(objects) = &mut self.json {
            objects.push(Verdict {
                name: name.to_owned(),
                action: action.to_owned(),
                reason: reason.to_owned(),
            });
            return Ok(());
        }
        match action {
            "failed" => {
                eprintln!(
                    "ipcx: could not remove {}: {}",
                    escape(name),
                    escape(reason)
                );
                Ok(())
            }
            "keep" if !self.explain => Ok(()),
            _ => writeln!(self.out, "{action:<7} {}: {}", escape(name), escape(reason)),
        }
    }
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
    let mut report = Report {
        out: std::io::stdout().lock(),
        json: args.json.then(Vec::new),
        explain: args.verbose || args.dry_run,
    };
    let (mut removed, mut kept, mut failed) = (0u64, 0u64, 0u64);
    for v in &verdicts {
        let name = &v.name;
        if !v.stale {
            kept += 1;
            report.object("keep", name, &v.reason)?;
            if v.record_obsolete
                && !args.dry_run
                && let Some(r) = &v.record
            {
                ipcx::registry::forget(r.uid, &r.object);
            }
            continue;
        }
        if args.dry_run {
            report.object("remove", name, &v.reason)?;
            removed += 1;
            continue;
        }
        let result = ObjectName::parse(&v.name)
            .map_err(anyhow::Error::msg)
            .and_then(|n| inventory::remove_checked(&n, v.identity).map_err(Into::into));
        match result {
            Ok(()) => {
                removed += 1;
                report.object("removed", name, &v.reason)?;
                if let Some(r) = &v.record {
                    ipcx::registry::forget(r.uid, &r.object);
                }
            }
            Err(e) if matches!(e.downcast_ref(), Some(RemoveError::Replaced { .. })) => {
                // Replaced between the scan and now: not ours to remove any more.
                kept += 1;
                report.object("keep", name, &e.to_string())?;
            }
            Err(e) => {
                failed += 1;
                report.object("failed", name, &e.to_string())?;
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
    if let Some(objects) = report.json.take() {
        let doc = Document {
            dry_run: args.dry_run,
            objects,
            removed,
            kept,
            failed,
        };
        json::document(&mut report.out, &doc)?;
    } else {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        writeln!(
            report.out,
            "{verb} {removed}, kept {kept}{}",
            if args.verbose || args.dry_run {
                ""
            } else {
                " (--verbose says why)"
            }
        )?;
    }
    if failed > 0 {
        anyhow::bail!("{failed} object(s) could not be removed");
    }
    Ok(())
}
