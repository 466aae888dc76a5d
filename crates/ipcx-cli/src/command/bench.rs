//! `ipcx bench [MECHANISM...]` and its hidden peer, `ipcx __bench-peer`.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use ipcx_bench::progress::TermProgress;
use ipcx_bench::runner::{self, BenchConfig, Budget, PeerLauncher, RunError};
use ipcx_bench::{PeerArgs, Pinning, Registry};

use crate::exit::{Exit, usage};
use crate::parse::parse_positive_duration;

/// The hidden subcommand the parent re-executes itself with.
pub const PEER_SUBCOMMAND: &str = "__bench-peer";

/// Exit status after Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

/// Arguments of `ipcx bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Rows to run (default: all of them). The `limit` row always runs: it is the floor every
    /// p50 is compared with. `--list` shows the rows.
    #[arg(value_name = "MECHANISM")]
    pub mechanisms: Vec<String>,
    /// A short run: about 30 seconds on a 2-core machine (the default run takes under 3
    /// minutes).
    #[arg(long, conflicts_with_all = ["iters", "duration"])]
    pub quick: bool,
    /// Round trips per latency measurement, and messages per throughput measurement.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "duration")]
    pub iters: Option<u64>,
    /// Time per measurement (e.g. 500ms, 2s); a tenth more warms up each latency measurement.
    #[arg(long, value_name = "DUR", value_parser = parse_positive_duration)]
    pub duration: Option<Duration>,
    /// Payload sizes, comma-separated (k = KiB, m = MiB; at least 8 bytes).
    #[arg(long, value_name = "LIST", value_parser = parse_sizes, default_value = "64,4k,1m")]
    pub sizes: Sizes,
    /// Pin the parent to the first CPU and the peer to the second, e.g. `--cpus 0,1`
    /// (unpinned by default: the scheduler places both processes).
    #[arg(long, value_name = "PARENT,PEER", value_parser = Pinning::parse)]
    pub cpus: Option<Pinning>,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also draw the results as an SVG chart in FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// List the rows (and which ones this build can run), then exit.
    #[arg(long)]
    pub list: bool,
    /// Fail a measurement that moves nothing for this long.
    #[arg(long, value_name = "DUR", value_parser = parse_positive_duration, default_value = "10s", hide = true)]
    pub stall_timeout: Duration,
}

/// Payload sizes in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizes(pub Vec<usize>);

fn parse_sizes(s: &str) -> Result<Sizes, String> {
    ipcx_bench::units::parse_sizes(s).map(Sizes)
}

/// Arguments of the hidden peer subcommand (what the parent passes, verbatim).
#[derive(Debug, clap::Args)]
pub struct BenchPeerArgs {
    /// `--control PATH --parent-pid PID [--cpu N] [--stall-ms MS]`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

/// An output file opened (and so checked) before the run; removed again if this command
/// created it and the run did not finish.
struct Output {
    path: PathBuf,
    file: Option<File>,
    created: bool,
}

impl Output {
    fn open(path: &Path, flag: &str) -> anyhow::Result<Output> {
        let existed = std::fs::symlink_metadata(path).is_ok();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot write {flag} {}", path.display()))?;
        Ok(Output {
            path: path.to_owned(),
            file: Some(file),
            created: !existed,
        })
    }

    fn write(mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let mut f = self.file.take().expect("written once");
        f.set_len(0)
            .and_then(|()| f.write_all(bytes))
            .and_then(|()| f.flush())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if self.file.is_some() && self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Runs `ipcx bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let registry = Registry::standard();
    if args.list {
        return list(&registry);
    }
    let budget = match (args.quick, args.iters, args.duration) {
        (true, _, _) => Budget::Quick,
        (_, Some(n), _) => Budget::Iterations(n),
        (_, _, Some(d)) => Budget::Time(d),
        _ => Budget::Default,
    };
    let cfg = BenchConfig {
        mechanisms: args.mechanisms.clone(),
        sizes: args.sizes.0.clone(),
        budget,
        pin: args.cpus,
        stall_timeout: args.stall_timeout,
        ..BenchConfig::default()
    };
    let plan = match runner::plan(&registry, &cfg) {
        Ok(p) => p,
        Err(RunError::Usage(m)) => return Err(usage(m)),
        Err(e) => return Err(e.into()),
    };
    // Check the output paths before spending minutes measuring.
    let json = args
        .json
        .as_deref()
        .map(|p| Output::open(p, "--json"))
        .transpose()?;
    let svg = args
        .svg
        .as_deref()
        .map(|p| Output::open(p, "--svg"))
        .transpose()?;
    ipcx::interrupt::install().context("installing the Ctrl-C handler")?;
    let launcher = PeerLauncher::current_exe(PEER_SUBCOMMAND)
        .context("finding the ipcx executable to start the peer")?;
    let mut progress = TermProgress::stderr();
    if !progress.is_hidden() {
        let rows = plan.rows.iter().filter(|r| r.skip.is_none()).count();
        eprintln!(
            "ipcx bench: {} measurements over {rows} rows and sizes, about {} s; {}",
            plan.units(),
            plan.estimate().as_secs().max(1),
            cfg.pin
                .map_or_else(|| "unpinned".to_owned(), |p| p.to_string())
        );
    }
    let report = match runner::run_plan(&plan, &cfg, &launcher, &mut progress) {
        Ok(r) => r,
        Err(RunError::Interrupted) => {
            drop((json, svg));
            eprintln!(
                "ipcx: bench interrupted: the peer was stopped and the run's objects removed"
            );
            return Err(Exit(EXIT_INTERRUPTED).into());
        }
        Err(RunError::Usage(m)) => return Err(usage(m)),
        Err(e) => return Err(e.into()),
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    out.write_all(ipcx_bench::table::render(&report).as_bytes())?;
    out.flush()?;
    if let Some(f) = json {
        f.write(format!("{}\n", report.to_json()).as_bytes())?;
    }
    if let Some(f) = svg {
        let doc = ipcx_bench::svg::render(&report).map_err(|e| anyhow!(e))?;
        f.write(doc.as_bytes())?;
    }
    let failed = report.failures().count();
    if failed > 0 {
        return Err(anyhow!(
            "{failed} measurement(s) failed (see the notes under the table)"
        ));
    }
    Ok(())
}

fn list(registry: &Registry) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let width = registry
        .all()
        .iter()
        .map(|m| m.name().len())
        .max()
        .unwrap_or(0);
    for m in registry.all().iter().filter(|m| !m.hidden()) {
        let status = match m.unavailable() {
            Some(why) => format!(" [{why}]"),
            None => String::new(),
        };
        writeln!(out, "{:width$}  {}{status}", m.name(), m.description())?;
    }
    if out.is_terminal() {
        writeln!(
            out,
            "\nThe limit row (the floor every ratio is computed against) always runs."
        )?;
    }
    Ok(())
}

/// Runs the hidden peer subcommand.
pub fn run_peer(args: BenchPeerArgs) -> anyhow::Result<()> {
    let peer_args = PeerArgs::parse(&args.args).map_err(usage)?;
    ipcx_bench::run_peer(&Registry::standard(), &peer_args).context("bench peer")?;
    Ok(())
}
