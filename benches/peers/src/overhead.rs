//! The ipcx-versus-raw comparison: each classic mechanism's ipcx row and its `raw-*` twin,
//! ping-pong at one payload size, measured back to back in each round (the order alternating
//! from round to round), over several rounds. Blocking mechanisms are noisy on shared machines
//! (a cross-CPU wake-up dominates, and it drifts), so a single pair of runs proves little: the
//! ratio reported is the median p50 of the ipcx row over the median p50 of the raw row.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use ipcx_bench::runner::{self, BenchConfig, Budget, PeerLauncher};
use ipcx_bench::{
    HalfOpen, LinkError, Mechanism, NoProgress, Pattern, Prepared, Registry, RowContext, Side,
};
use serde::Serialize;

/// The pairs: ipcx row, raw row.
pub const PAIRS: [(&str, &str); 5] = [
    ("pipe", "raw-pipe"),
    ("unix", "raw-unix"),
    ("mq", "raw-mq"),
    ("eventfd", "raw-eventfd"),
    ("futex", "raw-futex"),
];

/// The goal: ipcx within this factor of raw at p50.
pub const GOAL: f64 = 1.10;

/// The budget of each measurement.
#[derive(Debug, Clone, Copy)]
pub enum Per {
    /// This long.
    Time(Duration),
    /// This many round trips.
    Iters(u64),
}

/// A row restricted to ping-pong (the comparison is about latency).
#[derive(Debug)]
struct PingPongOnly(Arc<dyn Mechanism>);

impl Mechanism for PingPongOnly {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn description(&self) -> &str {
        self.0.description()
    }
    fn unavailable(&self) -> Option<String> {
        self.0.unavailable()
    }
    fn check_payload(&self, payload: usize) -> Result<(), String> {
        self.0.check_payload(payload)
    }
    fn patterns(&self) -> &[Pattern] {
        &[Pattern::PingPong]
    }
    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        self.0.prepare(ctx)
    }
    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        self.0.open(spec, side, payload)
    }
}

/// One pair's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PairResult {
    /// The ipcx row.
    pub ipcx: String,
    /// The raw row.
    pub raw: String,
    /// p50 of the ipcx row in each round (ns).
    pub ipcx_p50_ns: Vec<u64>,
    /// p50 of the raw row in each round (ns).
    pub raw_p50_ns: Vec<u64>,
    /// Median of `ipcx_p50_ns`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipcx_median_p50_ns: Option<u64>,
    /// Median of `raw_p50_ns`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_median_p50_ns: Option<u64>,
    /// ipcx median over raw median.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// Whether the ratio is within the goal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within_goal: Option<bool>,
    /// Why a side has no figure in some round (skipped or failed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The whole comparison, as written under `overhead_vs_raw` in the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Overhead {
    /// Payload size of every measurement.
    pub payload_bytes: u64,
    /// Rounds run.
    pub rounds: u32,
    /// Each measurement's budget.
    pub per_measurement: String,
    /// The goal (ipcx p50 / raw p50 at most this).
    pub goal_ratio: f64,
    /// One entry per pair.
    pub pairs: Vec<PairResult>,
}

fn median(v: &[u64]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2
    })
}

/// Runs the rounds.
pub fn run(
    registry: &Registry,
    launcher: &PeerLauncher,
    base: &BenchConfig,
    payload: usize,
    per: Per,
    rounds: u32,
) -> anyhow::Result<Overhead> {
    let mut pairs: Vec<PairResult> = PAIRS
        .iter()
        .map(|(a, b)| PairResult {
            ipcx: (*a).into(),
            raw: (*b).into(),
            ipcx_p50_ns: Vec::new(),
            raw_p50_ns: Vec::new(),
            ipcx_median_p50_ns: None,
            raw_median_p50_ns: None,
            ratio: None,
            within_goal: None,
            notes: Vec::new(),
        })
        .collect();
    for round in 0..rounds {
        eprintln!("ipcx-peers: ipcx vs raw, round {}/{rounds}", round + 1);
        // Each round: every pair back to back, ipcx first in even rounds, raw first in odd.
        let mut reg = Registry::new();
        let mut names = Vec::new();
        for (a, b) in PAIRS {
            let order = if round % 2 == 0 { [a, b] } else { [b, a] };
            for n in order {
                let m = registry
                    .get(n)
                    .ok_or_else(|| anyhow!("no row {n} in the registry"))?;
                reg.add(PingPongOnly(m));
                names.push(n.to_owned());
            }
        }
        let cfg = BenchConfig {
            mechanisms: names,
            sizes: vec![payload],
            budget: match per {
                Per::Time(d) => Budget::Time(d),
                Per::Iters(n) => Budget::Iterations(n),
            },
            pin: base.pin,
            stall_timeout: base.stall_timeout,
            stop: base.stop.clone(),
            // No floors here (the registry has no limit row): one round per row.
            rounds: None,
        };
        let report = runner::run(&reg, &cfg, launcher, &mut NoProgress)
            .map_err(|e| anyhow!("ipcx vs raw, round {}: {e}", round + 1))?;
        for p in &mut pairs {
            for (name, into) in [(&p.ipcx, &mut p.ipcx_p50_ns), (&p.raw, &mut p.raw_p50_ns)] {
                let r = report
                    .results
                    .iter()
                    .find(|r| &r.mechanism == name && r.pattern == Pattern::PingPong);
                match r {
                    Some(r) if r.rtt_ns.is_some() => {
                        into.push(r.rtt_ns.as_ref().expect("checked").p50);
                    }
                    Some(r) => {
                        let why = r.skipped.clone().or_else(|| r.error.clone());
                        let note = format!("{name}: {}", why.unwrap_or_default());
                        if !p.notes.contains(&note) {
                            p.notes.push(note);
                        }
                    }
                    None => {}
                }
            }
        }
    }
    for p in &mut pairs {
        p.ipcx_median_p50_ns = median(&p.ipcx_p50_ns);
        p.raw_median_p50_ns = median(&p.raw_p50_ns);
        if let (Some(a), Some(b)) = (p.ipcx_median_p50_ns, p.raw_median_p50_ns)
            && b > 0
        {
            let ratio = a as f64 / b as f64;
            p.ratio = Some(ratio);
            p.within_goal = Some(ratio <= GOAL);
        }
    }
    Ok(Overhead {
        payload_bytes: payload as u64,
        rounds,
        per_measurement: match per {
            Per::Time(d) => format!("{:.3} s", d.as_secs_f64()),
            Per::Iters(n) => format!("{n} round trips"),
        },
        goal_ratio: GOAL,
        pairs,
    })
}

fn ns(v: Option<u64>) -> String {
    v.map_or_else(|| "—".into(), |n| ipcx_bench::units::format_ns(n as f64))
}

impl Overhead {
    /// The comparison as text, under the main table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "ipcx vs raw libc: ping-pong p50 at {}, median of {} interleaved round(s) of {} each \
             (goal: ratio ≤ {:.2})",
            ipcx_bench::units::format_size(self.payload_bytes),
            self.rounds,
            self.per_measurement,
            self.goal_ratio
        );
        let _ = writeln!(
            out,
            "{:<9} {:>11} {:<12} {:>11} {:>7}  {:<6} per-round p50s (ipcx / raw)",
            "ipcx row", "median p50", "raw row", "median p50", "ratio", "goal"
        );
        for p in &self.pairs {
            let rounds: Vec<String> = p
                .ipcx_p50_ns
                .iter()
                .zip(&p.raw_p50_ns)
                .map(|(a, b)| {
                    format!(
                        "{} / {}",
                        ipcx_bench::units::format_ns(*a as f64),
                        ipcx_bench::units::format_ns(*b as f64)
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "{:<9} {:>11} {:<12} {:>11} {:>7}  {:<6} {}",
                p.ipcx,
                ns(p.ipcx_median_p50_ns),
                p.raw,
                ns(p.raw_median_p50_ns),
                p.ratio.map_or_else(|| "—".into(), |r| format!("{r:.3}")),
                match p.within_goal {
                    Some(true) => "met",
                    Some(false) => "missed",
                    None => "—",
                },
                rounds.join(", ")
            );
            for n in &p.notes {
                let _ = writeln!(out, "          note: {n}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3, 1, 2]), Some(2));
        assert_eq!(median(&[4, 1, 2, 3]), Some(2));
    }
}
