//! The floor next to each row: a slice of the `limit` ping-pong before each round of a row,
//! and the pooled floor recorded in the row's results.

use std::path::Path;
use std::sync::Arc;

use super::budget::PhaseBudget;
use super::config::BenchConfig;
use super::peer_process::Peer;
use super::plan::PlannedRow;
use super::row::{RowEnd, run_row};
use crate::histogram::{Recorder, RttSummary};
use crate::mechanism::{Mechanism, RowContext};
use crate::progress::NoProgress;
use crate::report::{BASELINE, BenchResult, Pattern};

/// Measures one slice of the floor next to a row: a short ping-pong of the `limit` row
/// `limit` at `payload` with the run's peer, as any row is measured (its own word, opened and
/// closed), its round trips recorded in `pool`.
#[allow(clippy::too_many_arguments)]
pub(super) fn measure_floor(
    limit: &Arc<dyn Mechanism>,
    payload: usize,
    dir: &Path,
    row_no: u64,
    peer: &mut Peer,
    budget: PhaseBudget,
    cfg: &BenchConfig,
    stop: &dyn Fn() -> bool,
    pool: &mut Recorder,
) -> RowEnd {
    let row = PlannedRow {
        mechanism: limit.clone(),
        payload,
        skip: None,
        patterns: vec![Pattern::PingPong],
    };
    let ctx = RowContext {
        payload,
        dir: dir.to_owned(),
        tag: format!("ipcx-bench-{}-{row_no}", std::process::id()),
    };
    let (_, end) = run_row(
        &row,
        &ctx,
        peer,
        budget,
        budget,
        cfg,
        stop,
        &mut NoProgress,
        pool,
    );
    end
}

/// Records the floor measured next to a row in its measured ping-pong results; the `limit`
/// row's own results are their own floor.
pub(super) fn attach_floor(results: &mut [BenchResult], floor: Option<&RttSummary>) {
    for r in results
        .iter_mut()
        .filter(|r| r.pattern == Pattern::PingPong)
    {
        let Some(rtt) = &r.rtt_ns else { continue };
        let f = if r.mechanism == BASELINE {
            Some((rtt.p50, rtt.p999))
        } else {
            floor.map(|f| (f.p50, f.p999))
        };
        if let Some((p50, p999)) = f {
            r.floor_p50_ns = Some(p50);
            r.floor_p99_9_ns = Some(p999);
        }
    }
}
