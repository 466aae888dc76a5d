//! One row and size: open both sides, measure each pattern, close.

use std::time::Duration;

use ipcx::wait::Wait;

use super::budget::PhaseBudget;
use super::config::BenchConfig;
use super::error::PhaseError;
use super::measure::{ping_pong, stream};
use super::peer_process::Peer;
use super::plan::PlannedRow;
use super::watch::Watch;
use crate::histogram::Recorder;
use crate::mechanism::{Link, RowContext, Side};
use crate::progress::Progress;
use crate::protocol::{Command, Reply};
use crate::report::{BenchResult, Pattern};
use crate::stall::Stall;
use crate::units;

pub(super) enum RowEnd {
    Fine,
    PeerLost,
    Interrupted,
}

/// Runs one row and size: open both sides, measure each pattern, close. The ping-pong runs
/// for `ping`, the other patterns for `budget`; the ping-pong's round trips are recorded in
/// `pool`, and its result summarises all of `pool` (the rounds of a row so far).
#[allow(clippy::too_many_arguments)]
pub(super) fn run_row(
    row: &PlannedRow,
    ctx: &RowContext,
    peer: &mut Peer,
    ping: PhaseBudget,
    budget: PhaseBudget,
    cfg: &BenchConfig,
    stop: &dyn Fn() -> bool,
    progress: &mut dyn Progress,
    pool: &mut Recorder,
) -> (Vec<BenchResult>, RowEnd) {
    let m = &row.mechanism;
    let name = m.name().to_owned();
    let size = units::format_size(row.payload as u64);
    let all = |f: &dyn Fn(Pattern) -> BenchResult| -> Vec<BenchResult> {
        row.patterns.iter().map(|&p| f(p)).collect()
    };
    let outcome = |e: PhaseError| -> (Vec<BenchResult>, RowEnd) {
        match e {
            PhaseError::Interrupted => (Vec::new(), RowEnd::Interrupted),
            PhaseError::Skip(why) => (
                all(&|p| BenchResult::skipped(&name, p, row.payload, why.clone())),
                RowEnd::Fine,
            ),
            PhaseError::Failed(why) => (
                all(&|p| BenchResult::failed(&name, p, row.payload, why.clone())),
                RowEnd::Fine,
            ),
            PhaseError::PeerLost(why) => (
                all(&|p| BenchResult::failed(&name, p, row.payload, why.clone())),
                RowEnd::PeerLost,
            ),
        }
    };
    let skip_steps = |progress: &mut dyn Progress| {
        for p in &row.patterns {
            progress.step(&format!("{name} {size} {p}"));
        }
    };

    // Set up: the parent's objects, both receiving halves, then both sending halves.
    let prepared = match m.prepare(ctx) {
        Ok(p) => p,
        Err(e) => {
            skip_steps(progress);
            return outcome(e.into());
        }
    };
    let half = match m.open(&prepared.spec, Side::Parent, row.payload) {
        Ok(h) => h,
        Err(e) => {
            skip_steps(progress);
            return outcome(e.into());
        }
    };
    let setup = (|| -> Result<(), PhaseError> {
        peer.send(&Command::Open {
            mechanism: name.clone(),
            spec: prepared.spec.clone(),
            payload: row.payload,
        })?;
        match peer.wait_reply(Duration::from_secs(20), stop)? {
            Reply::Opened => Ok(()),
            Reply::Failed { reason, skip: true } => Err(PhaseError::Skip(reason)),
            Reply::Failed { reason, .. } => Err(PhaseError::Failed(format!("peer: {reason}"))),
            other => Err(PhaseError::PeerLost(format!("unexpected {other:?}"))),
        }
    })();
    if let Err(e) = setup {
        skip_steps(progress);
        return outcome(e);
    }
    let connect_timeout = Duration::from_secs(10);
    let connected = (|| -> Result<Box<dyn Link>, PhaseError> {
        peer.send(&Command::Connect {
            timeout_ms: connect_timeout.as_millis() as u64,
        })?;
        let link = half.connect(Wait::timeout(connect_timeout));
        let reply = peer.wait_reply(connect_timeout + Duration::from_secs(5), stop);
        let link = link.map_err(PhaseError::from)?;
        match reply? {
            Reply::Connected => Ok(link),
            Reply::Failed { reason, skip: true } => Err(PhaseError::Skip(reason)),
            Reply::Failed { reason, .. } => Err(PhaseError::Failed(format!("peer: {reason}"))),
            other => Err(PhaseError::PeerLost(format!("unexpected {other:?}"))),
        }
    })();
    let mut link = match connected {
        Ok(l) => l,
        Err(e) => {
            skip_steps(progress);
            let _ = close(peer, stop);
            return outcome(e);
        }
    };
    if let Some(max) = link.max_payload().filter(|&max| max < row.payload) {
        skip_steps(progress);
        drop(link);
        let _ = close(peer, stop);
        return outcome(PhaseError::Skip(format!(
            "{name} carries at most {max} bytes per message here"
        )));
    }

    let mut results = Vec::new();
    let mut end = RowEnd::Fine;
    let mut earlier: Option<PhaseError> = None;
    for &pattern in &row.patterns {
        progress.step(&format!("{name} {size} {pattern}"));
        if let Some(e) = &earlier {
            let r = match e {
                PhaseError::Skip(why) => {
                    BenchResult::skipped(&name, pattern, row.payload, why.clone())
                }
                PhaseError::Failed(why) | PhaseError::PeerLost(why) => BenchResult::failed(
                    &name,
                    pattern,
                    row.payload,
                    format!("not run: an earlier measurement of this row failed ({why})"),
                ),
                PhaseError::Interrupted => unreachable!("interruptions end the row"),
            };
            results.push(r);
            continue;
        }
        let mut w = Watch {
            peer,
            stop,
            stall: Stall::new(cfg.stall_timeout),
            count: 0,
            answered: false,
        };
        let res = match pattern {
            Pattern::PingPong => {
                ping_pong(link.as_mut(), &mut w, row.payload, ping, pool).map(|s| {
                    let mut r = BenchResult::new(&name, pattern, row.payload);
                    r.rtt_ns = Some(s);
                    r.verified = Some(true);
                    r
                })
            }
            Pattern::Stream => stream(
                link.as_mut(),
                &mut w,
                row.payload,
                budget,
                m.needs_flow_control(),
            )
            .map(|t| {
                let mut r = BenchResult::new(&name, pattern, row.payload);
                r.throughput = Some(t);
                r.verified = Some(true);
                r
            }),
        };
        let answered = w.answered;
        match res {
            Ok(r) => results.push(r),
            Err(PhaseError::Interrupted) => {
                return (results, RowEnd::Interrupted);
            }
            Err(e) => {
                // Bring the peer back in step: stop its loop and wait for its answer.
                if answered {
                } else if !matches!(e, PhaseError::PeerLost(_)) {
                    let resync = peer
                        .send(&Command::Abort)
                        .and_then(|()| peer.wait_reply(Duration::from_secs(5), stop));
                    match resync {
                        Ok(_) => {}
                        Err(PhaseError::Interrupted) => return (results, RowEnd::Interrupted),
                        Err(_) => end = RowEnd::PeerLost,
                    }
                } else {
                    end = RowEnd::PeerLost;
                }
                let r = match &e {
                    PhaseError::Skip(why) => {
                        BenchResult::skipped(&name, pattern, row.payload, why.clone())
                    }
                    PhaseError::Failed(why) | PhaseError::PeerLost(why) => {
                        BenchResult::failed(&name, pattern, row.payload, why.clone())
                    }
                    PhaseError::Interrupted => unreachable!(),
                };
                results.push(r);
                earlier = Some(e);
                if matches!(end, RowEnd::PeerLost) {
                    // The remaining patterns cannot run without the peer.
                    continue;
                }
            }
        }
    }
    drop(link);
    if matches!(end, RowEnd::Fine) {
        match close(peer, stop) {
            Ok(()) => {}
            Err(PhaseError::Interrupted) => end = RowEnd::Interrupted,
            Err(_) => end = RowEnd::PeerLost,
        }
    }
    drop(prepared);
    (results, end)
}

pub(super) fn close(peer: &mut Peer, stop: &dyn Fn() -> bool) -> Result<(), PhaseError> {
    peer.send(&Command::Close)?;
    loop {
        match peer.wait_reply(Duration::from_secs(10), stop)? {
            Reply::Closed => return Ok(()),
            // A late answer to an earlier command: skip it.
            _ => continue,
        }
    }
}
