//! How much measuring a run gets: the [`Budget`] a user picks, the [`PhaseBudget`] of one
//! measurement, and the floor measured next to each row.

use std::time::Duration;

/// How much measuring each row gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// About 30 s for the whole run on a 2-core machine: at most 0.5 s per measurement.
    Quick,
    /// Under 3 minutes for the whole run: at most 3 s per measurement.
    Default,
    /// This many round trips per latency measurement and messages per throughput measurement.
    Iterations(u64),
    /// This long per measurement.
    Time(Duration),
}

impl Budget {
    /// How it is printed in the report.
    pub fn label(&self) -> String {
        match self {
            Budget::Quick => "quick".into(),
            Budget::Default => "default".into(),
            Budget::Iterations(n) => format!("iters {n}"),
            Budget::Time(d) => format!("duration {:.3} s", d.as_secs_f64()),
        }
    }

    /// The measurement budget when `units` measurements and `floors` adjacent floors are
    /// planned. The floors' time comes out of the run's total (quick and default), so adding
    /// them does not lengthen a run.
    pub(super) fn per_phase(&self, units: usize, floors: usize) -> PhaseBudget {
        let units = units.max(1) as f64;
        let floors_s = self.floor_slice().cost().as_secs_f64() * floors as f64;
        let spread = |total: f64, min: f64, max: f64| {
            // Never less than half the total for the rows themselves.
            let rows = (total - floors_s).max(total / 2.0);
            PhaseBudget::Time(Duration::from_secs_f64((rows / units).clamp(min, max)))
        };
        match *self {
            Budget::Quick => spread(22.0, 0.05, 0.5),
            Budget::Default => spread(140.0, 0.2, 3.0),
            Budget::Iterations(n) => PhaseBudget::Count(n.max(1)),
            Budget::Time(d) => PhaseBudget::Time(d),
        }
    }

    /// The budget of the short `limit` ping-pong measured alongside each row (the floor that
    /// row's ratio divides by, in [`Budget::floor_rounds`] slices): [`FLOOR_TIME`], or the row's own iteration count (at most
    /// [`FLOOR_MAX_ROUND_TRIPS`]) or duration when shorter.
    pub fn floor_phase(&self) -> PhaseBudget {
        match *self {
            Budget::Quick | Budget::Default => PhaseBudget::Time(FLOOR_TIME),
            Budget::Iterations(n) => PhaseBudget::Count(n.clamp(1, FLOOR_MAX_ROUND_TRIPS)),
            Budget::Time(d) => PhaseBudget::Time(d.min(FLOOR_TIME)),
        }
    }

    /// In how many rounds a ping-pong row runs, each after a slice of its floor: several
    /// under a time budget, one under an iteration count (which stays exact).
    pub fn floor_rounds(&self) -> u32 {
        match *self {
            Budget::Quick | Budget::Time(_) => FLOOR_ROUNDS,
            Budget::Default => 2 * FLOOR_ROUNDS,
            Budget::Iterations(_) => 1,
        }
    }

    /// How long the in-process memcpy reference measures each size (after a warm-up of a fifth
    /// of that).
    pub fn memcpy_time(&self) -> Duration {
        match *self {
            Budget::Quick => Duration::from_millis(150),
            Budget::Default => Duration::from_millis(400),
            Budget::Iterations(_) => Duration::from_millis(20),
            Budget::Time(d) => d.clamp(Duration::from_millis(10), Duration::from_millis(500)),
        }
    }

    /// One slice of a row's floor: [`Budget::floor_phase`] spread over its rounds.
    pub fn floor_slice(&self) -> PhaseBudget {
        self.floor_phase().split(self.floor_rounds())
    }
}

/// How long the floor measured next to each row runs (after a warm-up of a tenth of it).
/// Long enough for tens of thousands of cache-line round trips, short next to the tens of
/// seconds a hypervisor keeps the vCPUs in one place.
pub const FLOOR_TIME: Duration = Duration::from_millis(40);

/// The rounds of a ping-pong row and its floor under the quick budget (twice as many under
/// the default one).
pub const FLOOR_ROUNDS: u32 = 8;

/// The most round trips of a floor under [`Budget::Iterations`].
pub const FLOOR_MAX_ROUND_TRIPS: u64 = 50_000;

/// What setting up and closing one floor link costs, on top of its measurement (creating the
/// word, both sides opening it, four control round trips to the peer), for planning.
const FLOOR_SETUP: Duration = Duration::from_millis(2);

/// The budget of one measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PhaseBudget {
    /// A number of round trips or messages.
    Count(u64),
    /// A duration.
    Time(Duration),
}

impl PhaseBudget {
    /// The warm-up that precedes a latency measurement: a tenth of it.
    pub fn warmup(&self) -> PhaseBudget {
        match *self {
            PhaseBudget::Count(n) => PhaseBudget::Count((n / 10).clamp(1, 10_000)),
            PhaseBudget::Time(d) => PhaseBudget::Time(d / 10),
        }
    }

    pub(super) fn done(&self, count: u64, elapsed: Duration) -> bool {
        match *self {
            PhaseBudget::Count(n) => count >= n,
            PhaseBudget::Time(d) => elapsed >= d,
        }
    }

    /// One of `n` equal parts of this budget (at least one round trip).
    pub fn split(&self, n: u32) -> PhaseBudget {
        let n = n.max(1);
        match *self {
            PhaseBudget::Count(c) => PhaseBudget::Count(c.div_ceil(u64::from(n)).max(1)),
            PhaseBudget::Time(d) => PhaseBudget::Time(d / n),
        }
    }

    /// An estimate of the wall time, for planning.
    pub fn estimate(&self) -> Duration {
        match *self {
            PhaseBudget::Count(n) => Duration::from_micros(50).saturating_mul(n as u32),
            PhaseBudget::Time(d) => d,
        }
    }

    /// An estimate of the wall time of a floor with this budget: warm-up, measurement and
    /// setting up its link.
    pub(super) fn cost(&self) -> Duration {
        let run = match *self {
            // A cache-line round trip, with room for the slow phases.
            PhaseBudget::Count(n) => Duration::from_nanos(500).saturating_mul(n as u32),
            PhaseBudget::Time(d) => d,
        };
        run + run / 10 + FLOOR_SETUP
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_are_short_and_come_out_of_the_run_total() {
        assert_eq!(Budget::Iterations(20).floor_phase(), PhaseBudget::Count(20));
        assert_eq!(
            Budget::Iterations(10_000_000).floor_phase(),
            PhaseBudget::Count(FLOOR_MAX_ROUND_TRIPS)
        );
        assert_eq!(
            Budget::Time(Duration::from_millis(5)).floor_phase(),
            PhaseBudget::Time(Duration::from_millis(5))
        );
        assert_eq!(
            Budget::Time(Duration::from_secs(2)).floor_phase(),
            PhaseBudget::Time(FLOOR_TIME)
        );
        let secs = |b: PhaseBudget| match b {
            PhaseBudget::Time(d) => d.as_secs_f64(),
            PhaseBudget::Count(_) => unreachable!(),
        };
        // 60 measurements and 40 floor slices: the quick run's 22 s less the floors.
        let without = secs(Budget::Quick.per_phase(60, 0));
        let with = secs(Budget::Quick.per_phase(60, 40));
        assert!((without - 22.0 / 60.0).abs() < 1e-9, "{without}");
        let floors = Budget::Quick.floor_slice().cost().as_secs_f64() * 40.0;
        assert!((with - (22.0 - floors) / 60.0).abs() < 1e-9, "{with}");
        // Never below half the total, whatever the number of floors.
        let many = secs(Budget::Quick.per_phase(60, 100_000));
        assert!((many - 11.0 / 60.0).abs() < 1e-9, "{many}");
        assert_eq!(
            Budget::Iterations(7).per_phase(60, 40),
            PhaseBudget::Count(7)
        );
        // Slices: a time budget is split evenly, a count rounded up (never to zero).
        assert_eq!(Budget::Default.floor_rounds(), 2 * FLOOR_ROUNDS);
        assert_eq!(
            Budget::Default.floor_slice(),
            PhaseBudget::Time(FLOOR_TIME / (2 * FLOOR_ROUNDS))
        );
        assert_eq!(Budget::Iterations(9).floor_rounds(), 1);
        assert_eq!(PhaseBudget::Count(10).split(4), PhaseBudget::Count(3));
        assert_eq!(PhaseBudget::Count(1).split(8), PhaseBudget::Count(1));
        assert_eq!(
            PhaseBudget::Time(Duration::from_millis(80)).split(8),
            PhaseBudget::Time(Duration::from_millis(10))
        );
    }
}
