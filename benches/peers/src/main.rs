//! `ipcx-peers`: `ipcx bench` side by side with other IPC crates and with bare libc.
//!
//! One run measures ipcx's own rows (the `ipcx bench` registry), `iceoryx2`, `ipc-channel`,
//! `interprocess` and the `raw-*` rows with the same harness, and writes one table, one JSON
//! report (the `ipcx bench` schema plus `overhead_vs_raw`) and optionally an SVG chart. Then,
//! for every classic mechanism, it measures the ipcx row and its raw twin interleaved over
//! several rounds (`--rounds`) and reports the ratio of their median p50s.
//!
//! This crate is its own workspace and is never published; see README.md.

mod handoff;
mod iceoryx;
mod interprocess_row;
mod ipc_channel_row;
mod ipcx_rows;
mod overhead;
mod pipe_pair;
mod raw;
mod tarpc_row;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use ipcx_bench::progress::TermProgress;
use ipcx_bench::runner::{self, BenchConfig, Budget, PeerLauncher, RunError};
use ipcx_bench::{Mechanism, PeerArgs, Pinning, Registry};

/// The hidden first argument the parent re-executes itself with.
const PEER_ARG: &str = "__peer";

/// ipcx bench rows side by side with iceoryx2, ipc-channel, interprocess and bare libc.
#[derive(Debug, Parser)]
#[command(name = "ipcx-peers")]
struct Args {
    /// Rows to run (default: all). `limit` always runs. `--list` shows the rows.
    #[arg(value_name = "MECHANISM")]
    mechanisms: Vec<String>,
    /// A short run (about a minute on a 2-core machine, build excluded).
    #[arg(long, conflicts_with = "iters")]
    quick: bool,
    /// Round trips per latency measurement and messages per throughput measurement.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    iters: Option<u64>,
    /// Payload sizes, comma-separated (k = KiB, m = MiB; at least 8 bytes).
    #[arg(long, value_name = "LIST", value_parser = ipcx_bench::units::parse_sizes, default_value = "64,4k,1m")]
    sizes: std::vec::Vec<usize>,
    /// Pin the parent to the first CPU and the peer to the second, e.g. `--cpus 0,1`.
    #[arg(long, value_name = "PARENT,PEER", value_parser = Pinning::parse)]
    cpus: Option<Pinning>,
    /// Rounds of the interleaved ipcx-versus-raw comparison (0 skips it).
    #[arg(long, value_name = "N", default_value_t = 3)]
    rounds: u32,
    /// Write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Draw the results as an SVG chart in FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// List the rows, then exit.
    #[arg(long)]
    list: bool,
}

/// `ipcx bench`'s rows, with this crate's ipcx rows in place of the harness placeholders that
/// have a raw twin here, then the other crates' rows, then the raw rows.
pub fn registry() -> Registry {
    let mut r = Registry::standard();
    let mut fill: Vec<Box<dyn Mechanism>> = ipcx_rows::rows();
    fill.push(Box::new(raw::RawSlots(raw::SlotKind::Spin)));
    for m in fill {
        let placeholder = r
            .get(m.name())
            .is_none_or(|cur| cur.unavailable().is_some());
        if placeholder {
            r.add_arc(Arc::from(m));
        }
    }
    r.add(iceoryx::Iceoryx2);
    r.add(ipc_channel_row::IpcChannel::default());
    r.add(interprocess_row::Interprocess);
    r.add(tarpc_row::Tarpc);
    for m in raw::rows() {
        r.add_arc(Arc::from(m));
    }
    r
}

/// An output file opened (so checked) before the run, written after it.
struct Output {
    path: PathBuf,
    file: File,
}

impl Output {
    fn open(path: &Path) -> anyhow::Result<Output> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Output {
            path: path.to_owned(),
            file,
        })
    }

    fn write(mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.write_all(bytes))
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

fn run(args: Args) -> anyhow::Result<bool> {
    // iceoryx2 logs warnings to stderr by default (e.g. about its config file).
    iceoryx2::prelude::set_log_level(iceoryx2::prelude::LogLevel::Error);
    let registry = registry();
    if args.list {
        for m in registry.all().iter().filter(|m| !m.hidden()) {
            let status = m
                .unavailable()
                .map(|w| format!(" [{w}]"))
                .unwrap_or_default();
            println!("{:14} {}{status}", m.name(), m.description());
        }
        return Ok(true);
    }
    let budget = match (args.quick, args.iters) {
        (true, _) => Budget::Quick,
        (_, Some(n)) => Budget::Iterations(n),
        _ => Budget::Default,
    };
    let cfg = BenchConfig {
        mechanisms: args.mechanisms.clone(),
        sizes: args.sizes.clone(),
        budget,
        pin: args.cpus,
        ..BenchConfig::default()
    };
    let plan = runner::plan(&registry, &cfg).map_err(|e| anyhow!("{e}"))?;
    let json = args.json.as_deref().map(Output::open).transpose()?;
    let svg = args.svg.as_deref().map(Output::open).transpose()?;
    ipcx::interrupt::install().context("installing the Ctrl-C handler")?;
    let launcher = PeerLauncher::with_args(
        std::env::current_exe().context("finding this executable to start the peer")?,
        &[PEER_ARG],
    );
    let started = Instant::now();
    // Removes what iceoryx2 leaves in /dev/shm when the run ends.
    let _iox2 = iceoryx::Leftovers::note();
    eprintln!(
        "ipcx-peers: {} measurements, about {} s, then {} round(s) of ipcx vs raw",
        plan.units(),
        plan.estimate().as_secs().max(1),
        args.rounds
    );
    let mut progress = TermProgress::stderr();
    let report = match runner::run_plan(&plan, &cfg, &launcher, &mut progress) {
        Ok(r) => r,
        Err(RunError::Interrupted) => bail!("interrupted: the peer was stopped"),
        Err(e) => return Err(e.into()),
    };
    let overhead = if args.rounds > 0 {
        let size = *cfg.sizes.iter().min().expect("sizes checked by plan");
        let per = match budget {
            Budget::Quick => overhead::Per::Time(Duration::from_millis(300)),
            Budget::Iterations(n) => overhead::Per::Iters(n),
            _ => overhead::Per::Time(Duration::from_secs(1)),
        };
        Some(overhead::run(
            &registry,
            &launcher,
            &cfg,
            size,
            per,
            args.rounds,
        )?)
    } else {
        None
    };
    let mut out = ipcx_bench::table::render(&report);
    if let Some(o) = &overhead {
        out.push('\n');
        out.push_str(&o.render());
    }
    out.push_str(&format!(
        "total time: {:.1} s\n",
        started.elapsed().as_secs_f64()
    ));
    print!("{out}");
    if let Some(f) = json {
        let mut v: serde_json::Value = serde_json::from_str(&report.to_json())?;
        if let (Some(o), Some(map)) = (&overhead, v.as_object_mut()) {
            map.insert("overhead_vs_raw".into(), serde_json::to_value(o)?);
        }
        f.write(format!("{}\n", serde_json::to_string_pretty(&v)?).as_bytes())?;
    }
    if let Some(f) = svg {
        let doc = ipcx_bench::svg::render(&report).map_err(|e| anyhow!(e))?;
        f.write(doc.as_bytes())?;
    }
    Ok(report.failures().count() == 0)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(PEER_ARG) {
        iceoryx2::prelude::set_log_level(iceoryx2::prelude::LogLevel::Error);
        let args = match PeerArgs::parse(&argv[2..]) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("ipcx-peers peer: {e}");
                return ExitCode::from(2);
            }
        };
        return match ipcx_bench::run_peer(&registry(), &args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ipcx-peers peer: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("ipcx-peers: some measurements failed (see the notes under the table)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("ipcx-peers: {e:#}");
            ExitCode::FAILURE
        }
    }
}
