//! The parent side: plans the rows, starts the peer, runs every row and builds the [`Report`].

mod budget;
mod config;
mod error;
mod floor;
mod launcher;
mod measure;
mod peer_process;
mod plan;
mod row;
mod run_dir;
mod watch;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub use budget::{Budget, FLOOR_MAX_ROUND_TRIPS, FLOOR_ROUNDS, FLOOR_TIME, PhaseBudget};
pub use config::BenchConfig;
pub use error::RunError;
pub use launcher::PeerLauncher;
pub use plan::{Plan, PlannedRow, check_cpus, plan};

use floor::{attach_floor, measure_floor};
use peer_process::Peer;
use plan::{floor_source, wants_floor};
use row::{RowEnd, run_row};
use run_dir::RunDir;

use crate::cpu::PinGuard;
use crate::histogram::Recorder;
use crate::mechanism::{LinkError, RowContext};
use crate::progress::{NoProgress, Progress};
use crate::registry::Registry;
use crate::report::{BASELINE, BenchResult, Machine, Pattern, Report, RunInfo};
use crate::{memcpy_ref, units};

/// Runs the plan: starts the peer, measures every row, and returns the report.
pub fn run(
    registry: &Registry,
    cfg: &BenchConfig,
    launcher: &PeerLauncher,
    progress: &mut dyn Progress,
) -> Result<Report, RunError> {
    let plan = plan(registry, cfg)?;
    run_plan(&plan, cfg, launcher, progress)
}

/// Runs a plan made by [`plan`].
///
/// Blocks the `signal` row's real-time signal ([`crate::signal_row::bench_signal`]) in the
/// calling thread first, and leaves it blocked: call it before this process starts threads of
/// its own, or the `signal` row is skipped.
pub fn run_plan(
    plan: &Plan,
    cfg: &BenchConfig,
    launcher: &PeerLauncher,
    progress: &mut dyn Progress,
) -> Result<Report, RunError> {
    let started = Instant::now();
    // Before this thread starts any other (the peer's reader, the progress bar): the signal
    // row's signal must be blocked in every thread (see `signal_row`).
    crate::signal_row::block_signals()
        .map_err(|e| RunError::Harness(format!("blocking the signal row's signal: {e}")))?;
    let stop_flag = cfg.stop.clone();
    let stop = move || stop_flag.load(Ordering::SeqCst) || ipcx::interrupt::requested();
    // Pinned for this run only: the guard restores the caller's CPU mask when the run ends
    // (a program may run several plans, as the peers comparison does).
    let _pinned = match cfg.pin {
        Some(pin) => Some(
            PinGuard::pin(pin.parent_cpu)
                .map_err(LinkError::Unsupported)
                .map_err(|e| {
                    RunError::Harness(format!(
                        "pinning the parent to CPU {}: {e:?}",
                        pin.parent_cpu
                    ))
                })?,
        ),
        None => None,
    };
    let dir = RunDir::new()?;
    let total: u64 = plan.rows.iter().map(|r| r.patterns.len() as u64).sum();
    progress.begin(total + cfg.sizes.len() as u64);
    let mut peer: Option<Peer> = None;
    let mut results = Vec::new();
    let mut row_no = 0u64;
    let floor_src = floor_source(&plan.rows);
    for row in &plan.rows {
        let name = row.mechanism.name().to_owned();
        if let Some(why) = &row.skip {
            for &p in &row.patterns {
                progress.step(&format!(
                    "{name} {} {p} (skipped)",
                    units::format_size(row.payload as u64)
                ));
                results.push(BenchResult::skipped(&name, p, row.payload, why.clone()));
            }
            continue;
        }
        if stop() {
            progress.finish();
            return Err(RunError::Interrupted);
        }
        if peer.is_none() {
            peer = Some(Peer::spawn(launcher, dir.path(), cfg, &stop)?);
        }
        // The row's ping-pong runs in rounds, each right after a slice of the floor with the
        // same peer process; both pool their round trips. The host moves the vCPUs every few
        // seconds, so a floor measured once, before the row, may come from another placement
        // than the row itself; interleaved, the floor and the row see the same mix.
        let floor_of_row = floor_src.as_ref().filter(|_| wants_floor(row));
        let rounds = if floor_of_row.is_some() {
            plan.rounds.max(1)
        } else {
            1
        };
        let mut floor_pool = Recorder::new();
        let mut row_pool = Recorder::new();
        let mut row_results = Vec::new();
        let mut lost = RowEnd::Fine;
        for round in 0..rounds {
            if let Some((limit, payload)) = floor_of_row {
                row_no += 1;
                let p = peer.as_mut().expect("peer started");
                let end = measure_floor(
                    limit,
                    *payload,
                    dir.path(),
                    row_no,
                    p,
                    plan.floor,
                    cfg,
                    &stop,
                    &mut floor_pool,
                );
                match end {
                    RowEnd::Fine => {}
                    RowEnd::PeerLost => {
                        if let Some(mut old) = peer.take() {
                            old.shutdown(Duration::from_millis(500));
                        }
                        peer = Some(Peer::spawn(launcher, dir.path(), cfg, &stop)?);
                    }
                    RowEnd::Interrupted => {
                        if let Some(mut old) = peer.take() {
                            old.shutdown(Duration::from_secs(2));
                        }
                        progress.finish();
                        return Err(RunError::Interrupted);
                    }
                }
            }
            let p = peer.as_mut().expect("peer started");
            row_no += 1;
            let ctx = RowContext {
                payload: row.payload,
                dir: dir.path().to_owned(),
                tag: format!("ipcx-bench-{}-{row_no}", std::process::id()),
            };
            let last = round + 1 == rounds;
            if last {
                // The last round measures every pattern (the other ones at full length).
                let (res, end) = run_row(
                    row,
                    &ctx,
                    p,
                    plan.phase.split(rounds),
                    plan.phase,
                    cfg,
                    &stop,
                    progress,
                    &mut row_pool,
                );
                row_results = res;
                lost = end;
                break;
            }
            let ping = PlannedRow {
                patterns: vec![Pattern::PingPong],
                ..row.clone()
            };
            let (res, end) = run_row(
                &ping,
                &ctx,
                p,
                plan.phase.split(rounds),
                plan.phase,
                cfg,
                &stop,
                &mut NoProgress,
                &mut row_pool,
            );
            let fine = res.iter().all(|r| r.rtt_ns.is_some());
            if !fine || !matches!(end, RowEnd::Fine) {
                // The row did not run through: its outcome stands for every pattern.
                let why = res
                    .iter()
                    .find_map(|r| r.skipped.clone().or_else(|| r.error.clone()))
                    .unwrap_or_else(|| "interrupted".into());
                let skipped = res.iter().any(|r| r.skipped.is_some());
                for &pattern in &row.patterns {
                    progress.step(&format!(
                        "{name} {} {pattern}",
                        units::format_size(row.payload as u64)
                    ));
                    row_results.push(if skipped {
                        BenchResult::skipped(&name, pattern, row.payload, why.clone())
                    } else {
                        BenchResult::failed(&name, pattern, row.payload, why.clone())
                    });
                }
                lost = end;
                break;
            }
        }
        let floor = floor_pool.summary();
        attach_floor(&mut row_results, floor.as_ref());
        results.extend(row_results);
        match lost {
            RowEnd::Fine => {}
            RowEnd::PeerLost => {
                // Replace the peer for the next rows.
                if let Some(mut old) = peer.take() {
                    old.shutdown(Duration::from_millis(500));
                }
            }
            RowEnd::Interrupted => {
                if let Some(mut old) = peer.take() {
                    old.shutdown(Duration::from_secs(2));
                }
                progress.finish();
                return Err(RunError::Interrupted);
            }
        }
    }
    if let Some(mut p) = peer.take() {
        p.shutdown(Duration::from_secs(2));
    }
    drop(dir);
    // The copy reference, in this (pinned) process with the peer gone.
    let mut memcpy = Vec::new();
    for &payload in &cfg.sizes {
        if stop() {
            progress.finish();
            return Err(RunError::Interrupted);
        }
        progress.step(&format!(
            "memcpy reference {}",
            units::format_size(payload as u64)
        ));
        memcpy.push(memcpy_ref::measure(
            payload,
            memcpy_ref::area_for(payload),
            cfg.budget.memcpy_time(),
        ));
    }
    progress.finish();
    let mut report = Report {
        ipcx_version: ipcx_version(),
        machine: Machine::detect(cfg.pin),
        run: RunInfo {
            budget: cfg.budget.label(),
            sizes: cfg.sizes.iter().map(|&s| s as u64).collect(),
            baseline: BASELINE.into(),
            baseline_p50_ns: None,
            ratios_omitted: None,
            elapsed_s: Some(started.elapsed().as_secs_f64()),
        },
        results,
        memcpy,
    };
    report.compute_ratios();
    Ok(report)
}

/// The version of the ipcx library this harness was built with.
pub fn ipcx_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
