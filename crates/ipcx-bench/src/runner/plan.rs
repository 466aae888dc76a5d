//! The plan of a run: which rows and sizes run, and the budget of each measurement.

use std::sync::Arc;
use std::time::Duration;

use super::budget::PhaseBudget;
use super::config::BenchConfig;
use super::error::RunError;
use crate::mechanism::Mechanism;
use crate::registry::Registry;
use crate::report::{BASELINE, Pattern, Pinning};
use crate::units;

/// One row and size as planned: run it, or report why not.
#[derive(Debug, Clone)]
pub struct PlannedRow {
    /// The row.
    pub mechanism: Arc<dyn Mechanism>,
    /// Bytes per message.
    pub payload: usize,
    /// Why it will not run.
    pub skip: Option<String>,
    /// The patterns to measure.
    pub patterns: Vec<Pattern>,
}

/// The plan: rows in table order, and the budget of each measurement.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every row and size.
    pub rows: Vec<PlannedRow>,
    /// The budget of each measurement.
    pub phase: PhaseBudget,
    /// The budget of one slice of the `limit` ping-pong measured before each round of a
    /// row's ping-pong (see [`Plan::floors`]).
    pub floor: PhaseBudget,
    /// In how many rounds each ping-pong row with a floor runs (each round after a slice of
    /// the floor; the other patterns run once, in the last round).
    pub rounds: u32,
}

/// The `limit` row and the payload its floors run at: the smallest requested size it carries
/// (64 bytes or fewer when none is).
pub(super) fn floor_source(rows: &[PlannedRow]) -> Option<(Arc<dyn Mechanism>, usize)> {
    let m = rows
        .iter()
        .find(|r| r.mechanism.name() == BASELINE)?
        .mechanism
        .clone();
    if m.unavailable().is_some() || !m.patterns().contains(&Pattern::PingPong) {
        return None;
    }
    let smallest = rows
        .iter()
        .filter(|r| r.mechanism.name() == BASELINE)
        .map(|r| r.payload)
        .min()?;
    let payload = [smallest, 64, units::MIN_PAYLOAD]
        .into_iter()
        .find(|&p| m.check_payload(p).is_ok())?;
    Some((m, payload))
}

/// Whether `row` gets a floor measured next to it: a ping-pong row that runs, other than the
/// `limit` row itself.
pub(super) fn wants_floor(row: &PlannedRow) -> bool {
    row.skip.is_none()
        && row.mechanism.name() != BASELINE
        && row.patterns.contains(&Pattern::PingPong)
}

impl Plan {
    /// How many floor slices the run measures: one before each round of each ping-pong row
    /// other than `limit`, when the plan has a usable `limit` row (none otherwise).
    pub fn floors(&self) -> usize {
        if floor_source(&self.rows).is_none() {
            return 0;
        }
        self.rows.iter().filter(|r| wants_floor(r)).count() * self.rounds.max(1) as usize
    }

    /// Measurements that will run.
    pub fn units(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.skip.is_none())
            .map(|r| r.patterns.len())
            .sum()
    }

    /// A rough estimate of the run's wall time.
    pub fn estimate(&self) -> Duration {
        let per = self.phase.estimate();
        let n = self.units() as u32;
        per.saturating_mul(n)
            + per.saturating_mul(n) / 10
            + self.floor.cost().saturating_mul(self.floors() as u32)
    }
}

/// Checks the configuration and decides what runs.
pub fn plan(registry: &Registry, cfg: &BenchConfig) -> Result<Plan, RunError> {
    let rows = registry.resolve(&cfg.mechanisms).map_err(RunError::Usage)?;
    if cfg.sizes.is_empty() {
        return Err(RunError::Usage("no payload sizes given".into()));
    }
    if let Some(&bad) = cfg.sizes.iter().find(|&&s| s < units::MIN_PAYLOAD) {
        return Err(RunError::Usage(format!(
            "payload size {bad} is below {} bytes",
            units::MIN_PAYLOAD
        )));
    }
    if let Some(pin) = cfg.pin {
        check_cpus(pin)?;
    }
    let mut planned = Vec::new();
    for m in rows {
        for &payload in &cfg.sizes {
            let unavailable = m.unavailable();
            let patterns = if unavailable.is_some() {
                vec![Pattern::PingPong, Pattern::Stream]
            } else {
                m.patterns().to_vec()
            };
            let skip = unavailable.or_else(|| m.check_payload(payload).err());
            planned.push(PlannedRow {
                mechanism: m.clone(),
                payload,
                skip,
                patterns,
            });
        }
    }
    let mut plan = Plan {
        rows: planned,
        phase: PhaseBudget::Count(1),
        floor: cfg.budget.floor_slice(),
        rounds: cfg.budget.floor_rounds(),
    };
    if let Some(n) = cfg.rounds {
        plan.rounds = n.max(1);
        plan.floor = cfg.budget.floor_phase().split(plan.rounds);
    }
    plan.phase = cfg.budget.per_phase(plan.units(), plan.floors());
    Ok(plan)
}

/// Checks that both CPUs may be used by this process.
pub fn check_cpus(pin: Pinning) -> Result<(), RunError> {
    let allowed = rustix::thread::sched_getaffinity(None)
        .map_err(|e| RunError::Harness(format!("reading the CPU affinity: {e}")))?;
    let list: Vec<String> = (0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|&c| allowed.is_set(c))
        .map(|c| c.to_string())
        .collect();
    for cpu in [pin.parent_cpu, pin.peer_cpu] {
        if cpu >= rustix::thread::CpuSet::MAX_CPU || !allowed.is_set(cpu) {
            return Err(RunError::Usage(format!(
                "CPU {cpu} is not available to this process (it may use CPUs {})",
                list.join(",")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::budget::{Budget, FLOOR_ROUNDS, FLOOR_TIME};

    fn cfg(mechanisms: &[&str], sizes: &[usize], budget: Budget) -> BenchConfig {
        BenchConfig {
            mechanisms: mechanisms.iter().map(|s| (*s).to_owned()).collect(),
            sizes: sizes.to_vec(),
            budget,
            ..BenchConfig::default()
        }
    }

    #[test]
    fn a_floor_is_planned_before_each_ping_pong_row_but_the_limit_row() {
        let reg = Registry::standard();
        let p = plan(&reg, &cfg(&["ring", "unix"], &[64, 4096], Budget::Quick)).unwrap();
        // limit 64 B is its own floor, limit 4 KiB is skipped: ring and unix at both sizes,
        // a slice before each round.
        assert_eq!(p.rounds, FLOOR_ROUNDS);
        assert_eq!(p.floors(), 4 * FLOOR_ROUNDS as usize);
        assert_eq!(p.floor, PhaseBudget::Time(FLOOR_TIME / FLOOR_ROUNDS));
        let (m, payload) = floor_source(&p.rows).unwrap();
        assert_eq!((m.name(), payload), (BASELINE, 64));

        // A size the limit row cannot carry: the floors still run, at a size it can.
        let p = plan(&reg, &cfg(&["unix"], &[4096], Budget::Iterations(100))).unwrap();
        assert_eq!((p.rounds, p.floors()), (1, 1));
        assert_eq!(p.floor, PhaseBudget::Count(100));
        assert_eq!(floor_source(&p.rows).unwrap().1, 64);

        // A registry without a limit row (the peers' ipcx-vs-raw rounds): no floors.
        let mut only = Registry::new();
        only.add(crate::selftest::SelfTest);
        let p = plan(&only, &cfg(&["selftest"], &[64], Budget::Iterations(10))).unwrap();
        assert_eq!(p.floors(), 0);
    }
}
